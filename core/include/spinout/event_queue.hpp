// spinout::EventQueue: the session's future actions (starts, sets, bus and
// channel writes, automation starts) in a binary heap ordered by frame, then by
// the order they were queued. Entries are small and fixed-size; the capacity is
// fixed at construction, so push and pop never allocate.
// Real-time: called from the audio thread (the plugin's run()) and the renderer.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace spinout {

struct QueuedEvent {
    enum Kind : std::uint8_t {
        start,           // the instance in `slot` (pfields kept in the slot table)
        setControl,      // k-arg `index` of the instance in `slot` = value
        setInstrControl, // k-arg `index` of every instance of template `target` = value
        writeBus,        // control bus `target` = value
        writeChannel,    // channel `target` (the session's channel id) = value
        automation,      // automation record `target` starts
        stop,            // the instance in `slot` stops (kept in its slot, never queued)
    };
    Kind kind = start;
    std::int64_t frame = 0;
    std::uint64_t seq = 0;        // set by push: equal frames keep their order
    int slot = -1;                // an instance's slot (-1: none): acts only while it lives
    std::uint32_t generation = 0; // that slot's generation when queued
    int target = 0;
    int index = 0;
    double value = 0;
};

class EventQueue {
public:
    explicit EventQueue(std::size_t capacity) { heap_.reserve(capacity); }

    std::size_t size() const noexcept { return heap_.size(); }
    std::size_t capacity() const noexcept { return heap_.capacity(); }
    bool empty() const noexcept { return heap_.empty(); }
    bool full() const noexcept { return heap_.size() == heap_.capacity(); }

    // False when full. Within the reserved capacity: no allocation.
    bool push(QueuedEvent e) noexcept {
        if (full()) return false;
        e.seq = ++seq_;
        heap_.push_back(e);
        std::push_heap(heap_.begin(), heap_.end(), later);
        return true;
    }

    // The earliest event's frame; only when not empty.
    std::int64_t nextFrame() const noexcept { return heap_.front().frame; }

    // Removes the earliest event; only when not empty.
    QueuedEvent pop() noexcept {
        std::pop_heap(heap_.begin(), heap_.end(), later);
        const QueuedEvent e = heap_.back();
        heap_.pop_back();
        return e;
    }

    // Every queued event, in no particular order.
    template <class F> void forEach(F&& f) const {
        for (const auto& e : heap_)
            f(e);
    }

private:
    // The heap's order: std::push_heap keeps the greatest first, so "greater" is earlier.
    static bool later(const QueuedEvent& a, const QueuedEvent& b) noexcept {
        return a.frame != b.frame ? a.frame > b.frame : a.seq > b.seq;
    }

    std::vector<QueuedEvent> heap_;
    std::uint64_t seq_ = 0;
};

} // namespace spinout
