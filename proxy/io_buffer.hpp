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

// A request in progress borrows two of these (client and upstream bytes).
inline constexpr std::size_t buffer_size = 32 * 1024;

class buffer_pool {
public:
    explicit buffer_pool(std::size_t size) : size_(size) {}
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
    void put(io_buffer& b) {
        if (!b) return;
        const bool pooled = b.capacity() == size_;
        auto p = b.release();
        if (pooled && free_.size() < max_free) free_.push_back(std::move(p));
    }
    // Frees the buffers no request needed since the last call (the fewest that were free
    // at any moment): a steady load, however many requests it has in flight, allocates
    // none, and a burst's buffers leave within two calls. Returns how many it freed.
    std::size_t trim() {
        const std::size_t unused = std::min(low_water_, free_.size());
        free_.resize(free_.size() - unused);
        low_water_ = free_.size();
        return unused;
    }

    static constexpr std::size_t max_free = 1024;  // 32 MiB per thread at the very most

private:
    std::size_t size_;
    std::vector<std::unique_ptr<char[]>> free_;
    std::size_t low_water_ = 0;
};

}  // namespace veer::proxy
