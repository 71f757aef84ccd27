// nghttp2's per-thread free lists (proxy/h2_memory): blocks are reused, a burst's blocks
// leave within two trims, and a list never keeps more than its cap.
#include "proxy/h2_memory.hpp"

#include <cstring>
#include <vector>

#include <gtest/gtest.h>

namespace veer::proxy {
namespace {

std::vector<void*> take(std::size_t count, std::size_t size) {
    auto* mem = h2_memory();
    std::vector<void*> blocks;
    for (std::size_t i = 0; i < count; ++i) {
        blocks.push_back(mem->malloc(size, mem->mem_user_data));
        std::memset(blocks.back(), 0xab, size);  // the whole payload is usable
    }
    return blocks;
}

void give(const std::vector<void*>& blocks) {
    auto* mem = h2_memory();
    for (auto* p : blocks)
        mem->free(p, mem->mem_user_data);
}

void trim_all() {
    while (h2_memory_trim() > 0 || h2_memory_free_blocks() > 0) {}
}

TEST(H2Memory, FreedBlocksAreReusedAndABurstLeavesWithinTwoTrims) {
    trim_all();
    give(take(1000, 100));
    EXPECT_EQ(h2_memory_free_blocks(), 1000u);

    const auto again = take(1000, 120);  // same class (128 bytes): all from the list
    EXPECT_EQ(h2_memory_free_blocks(), 0u);
    give(again);

    EXPECT_EQ(h2_memory_trim(), 0u);  // all were in use since the last trim: kept
    EXPECT_EQ(h2_memory_trim(), 1000u);  // none was needed since: freed
    EXPECT_EQ(h2_memory_free_blocks(), 0u);
}

TEST(H2Memory, BlocksAStreamKeepsUsingStayAcrossTrims) {
    trim_all();
    give(take(50, 64));
    h2_memory_trim();  // frees nothing yet: the low water started at 0
    EXPECT_EQ(h2_memory_free_blocks(), 50u);
    give(take(20, 64));  // only 20 taken at once: 30 were never needed
    EXPECT_EQ(h2_memory_trim(), 30u);
    EXPECT_EQ(h2_memory_free_blocks(), 20u);
}

TEST(H2Memory, AListKeepsAtMostItsCap) {
    trim_all();
    give(take(1000, 4096));  // 4 MiB freed at once; the class keeps 512 KiB
    EXPECT_EQ(h2_memory_free_blocks(), 128u);
    trim_all();
}

TEST(H2Memory, ReallocKeepsTheBytesAcrossClasses) {
    auto* mem = h2_memory();
    auto* p = static_cast<char*>(mem->malloc(10, mem->mem_user_data));
    std::memcpy(p, "0123456789", 10);
    p = static_cast<char*>(mem->realloc(p, 5000, mem->mem_user_data));  // past the classes
    EXPECT_EQ(std::memcmp(p, "0123456789", 10), 0);
    p = static_cast<char*>(mem->realloc(p, 200, mem->mem_user_data));
    EXPECT_EQ(std::memcmp(p, "0123456789", 10), 0);
    mem->free(p, mem->mem_user_data);
    trim_all();
}

}  // namespace
}  // namespace veer::proxy
