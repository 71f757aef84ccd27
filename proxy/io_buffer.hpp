// The byte buffers of the data path: a request borrows them from its worker's pool while
// it is in progress, so that idle connections hold no large buffer.
#pragma once

#include <algorithm>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

namespace veer::proxy {

// A byte buffer with a read and a write position, borrowed from the worker's pool while a
// request is in progress so that idle connections hold no large buffer.
class io_buffer {
public:
    io_buffer() = default;
    io_buffer(std::unique_ptr<char[]> data, std::size_t capacity)
        : data_(std::move(data)), capacity_(capacity) {}
    explicit operator bool() const { return data_ != nullptr; }
    std::string_view view() const { return {data_.get() + begin_, end_ - begin_}; }
    std::size_t size() const { return end_ - begin_; }
    bool empty() const { return begin_ == end_; }
    void consume(std::size_t n) {
        begin_ += n;
        if (begin_ == end_) begin_ = end_ = 0;
    }
    // Room to read into at the end, moving unread bytes to the front when that makes room.
    char* space(std::size_t& n) {
        if (end_ == capacity_ && begin_ > 0) {
            std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
            end_ -= begin_;
            begin_ = 0;
        }
        n = capacity_ - end_;
        return data_.get() + end_;
    }
    void commit(std::size_t n) { end_ += n; }
    // Copies bytes in at the end; the caller made sure they fit.
    void append(std::string_view bytes) {
        std::size_t room = 0;
        std::memcpy(space(room), bytes.data(), bytes.size());
        commit(bytes.size());
    }
    // The n consumed bytes right before the unread ones, to put something in front of
    // them; null if fewer than n were consumed.
    char* room_before(std::size_t n) { return begin_ >= n ? data_.get() + begin_ - n : nullptr; }
    std::size_t capacity() const { return capacity_; }
    // Moves the unread bytes into a larger buffer (a head bigger than the pool's buffers).
    void grow(std::size_t capacity) {
        auto bigger = std::make_unique<char[]>(capacity);
        std::memcpy(bigger.get(), data_.get() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
        data_ = std::move(bigger);
        capacity_ = capacity;
    }
    std::unique_ptr<char[]> release() {
        begin_ = end_ = 0;
        return std::move(data_);
    }

private:
    std::unique_ptr<char[]> data_;
    std::size_t capacity_ = 0;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
};

// A request in progress borrows two of these (client and upstream bytes). 32 KiB: a head
// with the body bytes that follow, and a 16 KiB response with its head in one read; a
// larger head grows its buffer up to max_header_bytes.
inline constexpr std::size_t buffer_size = 32 * 1024;
// A keep-alive connection waits for its next request with one of these: most request heads
// fit, and 256 waiting connections hold 1 MiB instead of 8.
inline constexpr std::size_t small_buffer_size = 4 * 1024;

// The worker's free buffers of both sizes.
class buffer_pool {
public:
    io_buffer get() { return big_.get(); }
    io_buffer get_small() { return small_.get(); }
    void put(io_buffer& b) {
        if (!b) return;
        const auto capacity = b.capacity();
        auto p = b.release();
        if (capacity == buffer_size) big_.put(std::move(p));
        if (capacity == small_buffer_size) small_.put(std::move(p));
    }
    // A small (or no) buffer becomes a big one with the same unread bytes: a body or a
    // tunnel reads in big pieces. The small one goes to `old` if given (what was parsed
    // from it is still in use), else back to the pool.
    void upgrade(io_buffer& b, io_buffer* old = nullptr) {
        if (b.capacity() >= buffer_size) return;
        auto big = get();
        big.append(b.view());
        if (old) {
            put(*old);
            *old = std::move(b);
        } else {
            put(b);
        }
        b = std::move(big);
    }
    // An empty big buffer becomes a small one, for a wait.
    void shrink(io_buffer& b) {
        if (b.capacity() != buffer_size || !b.empty()) return;
        put(b);
        b = get_small();
    }
    // Frees the buffers no request needed since the last call (the fewest that were free
    // at any moment): a steady load, however many requests it has in flight, allocates
    // none, and a burst's buffers leave within two calls. Returns how many it freed.
    std::size_t trim() { return big_.trim() + small_.trim(); }

    static constexpr std::size_t max_free = 1024;  // 32 + 4 MiB per thread at the very most

private:
    class free_list {
    public:
        explicit free_list(std::size_t size) : size_(size) {}
        io_buffer get() {
            if (free_.empty()) {
                low_water_ = 0;
                return io_buffer(std::make_unique<char[]>(size_), size_);
            }
            auto p = std::move(free_.back());
            free_.pop_back();
            low_water_ = std::min(low_water_, free_.size());
            return io_buffer(std::move(p), size_);
        }
        void put(std::unique_ptr<char[]> p) {
            if (free_.size() < max_free) free_.push_back(std::move(p));
        }
        std::size_t trim() {
            const std::size_t unused = std::min(low_water_, free_.size());
            free_.resize(free_.size() - unused);
            low_water_ = free_.size();
            return unused;
        }

    private:
        std::size_t size_;
        std::vector<std::unique_ptr<char[]>> free_;
        std::size_t low_water_ = 0;
    };
    free_list big_{buffer_size};
    free_list small_{small_buffer_size};
};

}  // namespace veer::proxy
