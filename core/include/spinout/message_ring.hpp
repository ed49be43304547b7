// A single-producer single-consumer ring of fixed-size text records.
// Real-time safe on the producer side: no allocation, no lock, drops when full.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <string>

namespace spinout {

enum class MessageLevel { info, warning, error };

class MessageRing {
public:
    static constexpr std::size_t kRecords = 256;
    static constexpr std::size_t kTextSize = 480;

    struct Record {
        MessageLevel level = MessageLevel::info;
        char text[kTextSize] = {};
    };

    // Producer side: copies at most kTextSize-1 bytes of text.
    bool push(MessageLevel level, const char* text, std::size_t len) noexcept {
        const auto head = head_.load(std::memory_order_relaxed);
        const auto next = (head + 1) % kRecords;
        if (next == tail_.load(std::memory_order_acquire)) {
            dropped_.fetch_add(1, std::memory_order_relaxed);
            return false;
        }
        auto& r = records_[head];
        r.level = level;
        len = len < kTextSize - 1 ? len : kTextSize - 1;
        std::memcpy(r.text, text, len);
        r.text[len] = '\0';
        head_.store(next, std::memory_order_release);
        return true;
    }

    // Consumer side: calls f(level, const char*) for every pending record.
    template <class F> std::size_t drain(F&& f) {
        std::size_t n = 0;
        auto tail = tail_.load(std::memory_order_relaxed);
        while (tail != head_.load(std::memory_order_acquire)) {
            f(records_[tail].level, static_cast<const char*>(records_[tail].text));
            tail = (tail + 1) % kRecords;
            tail_.store(tail, std::memory_order_release);
            ++n;
        }
        return n;
    }

    bool empty() const noexcept {
        return tail_.load(std::memory_order_acquire) == head_.load(std::memory_order_acquire);
    }

    std::size_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }

private:
    std::array<Record, kRecords> records_{};
    std::atomic<std::size_t> head_{0};
    std::atomic<std::size_t> tail_{0};
    std::atomic<std::size_t> dropped_{0};
};

} // namespace spinout
