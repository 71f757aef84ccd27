// The data path's buffers (proxy/io_buffer.hpp): a pool hands out big and small ones and
// takes them back, upgrade keeps unread bytes (and, when asked, the small buffer a head was
// parsed from), shrink gives a big one back for a small one, trim frees what no request
// needed, and a head past the pool's size grows on the heap.
#include "proxy/io_buffer.hpp"

#include <string>

#include <gtest/gtest.h>

namespace veer::proxy {
namespace {

void fill(io_buffer& b, std::string_view bytes) { b.append(bytes); }

TEST(IoBuffer, PoolHandsOutBothSizesAndReusesWhatComesBack) {
    buffer_pool pool;
    auto big = pool.get();
    auto small = pool.get_small();
    EXPECT_EQ(big.capacity(), buffer_size);
    EXPECT_EQ(small.capacity(), small_buffer_size);
    const char* big_memory = big.view().data();
    fill(big, "leftover");
    pool.put(big);
    EXPECT_FALSE(big);
    auto again = pool.get();
    EXPECT_EQ(again.view().data(), big_memory) << "the freed buffer is reused";
    EXPECT_TRUE(again.empty()) << "and comes back empty";
    pool.put(again);
    pool.put(small);
}

TEST(IoBuffer, UpgradeKeepsUnreadBytesAndTheHeadsBuffer) {
    buffer_pool pool;
    auto in = pool.get_small();
    fill(in, "GET / HTTP/1.1\r\n\r\nbody-start");
    in.consume(18);  // the head was parsed
    const char* head_memory = in.view().data() - 18;
    io_buffer head;
    pool.upgrade(in, &head);
    EXPECT_EQ(in.capacity(), buffer_size);
    EXPECT_EQ(in.view(), "body-start");
    ASSERT_TRUE(head);
    EXPECT_EQ(std::string_view(head_memory, 18), "GET / HTTP/1.1\r\n\r\n") << "still readable";
    pool.upgrade(in, &head);  // already big: nothing changes
    EXPECT_EQ(in.view(), "body-start");
    pool.put(head);
    pool.put(in);
}

TEST(IoBuffer, ShrinkSwapsOnlyAnEmptyBigBuffer) {
    buffer_pool pool;
    auto b = pool.get();
    fill(b, "x");
    pool.shrink(b);
    EXPECT_EQ(b.capacity(), buffer_size) << "unread bytes stay where they are";
    b.consume(1);
    pool.shrink(b);
    EXPECT_EQ(b.capacity(), small_buffer_size);
    pool.put(b);
}

TEST(IoBuffer, TrimFreesWhatNoRequestNeededWithinTwoCalls) {
    buffer_pool pool;
    std::vector<io_buffer> burst;
    for (int i = 0; i < 10; ++i)
        burst.push_back(pool.get());
    for (auto& b : burst)
        pool.put(b);
    EXPECT_EQ(pool.trim(), 0u) << "all ten were in use since the last trim";
    auto one = pool.get();  // a steady load of one
    pool.put(one);
    EXPECT_EQ(pool.trim(), 9u) << "one was needed at once: nine were not";
    EXPECT_EQ(pool.trim(), 1u) << "none since: the last goes too";
    EXPECT_EQ(pool.trim(), 0u);
}

TEST(IoBuffer, HeadPastThePoolSizeGrowsAndIsNotPooled) {
    buffer_pool pool;
    auto b = pool.get();
    fill(b, std::string(100, 'h'));
    b.consume(40);
    b.grow(64 * 1024);
    EXPECT_EQ(b.capacity(), 64u * 1024);
    EXPECT_EQ(b.view(), std::string(60, 'h'));
    pool.put(b);  // not a pool size: freed
    EXPECT_FALSE(b);
}

TEST(IoBuffer, MoveLeavesTheSourceEmpty) {
    auto a = io_buffer::mapped(buffer_size);
    fill(a, "abc");
    io_buffer b = std::move(a);
    EXPECT_FALSE(a);
    EXPECT_EQ(b.view(), "abc");
    a = std::move(b);
    EXPECT_EQ(a.view(), "abc");
}

}  // namespace
}  // namespace veer::proxy
