// spinout::SlotTable: one slot per scheduled or playing instance. A slot holds
// what the session needs to start, stop and free the instance: its pfields
// until it starts, its fractional p1, when it starts and stops, the buses it
// refers to, and a generation that tells a reused slot from the instance that
// had it before. The instance's k-args live in Csound's control table, row =
// slot; its heartbeat (written by the instance every cycle) tells when it ended.
// Real-time: every function here runs on the audio thread without allocating.
#pragma once

#include "spinout/bus_pool.hpp"

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace spinout {

inline constexpr int kMaxPfields = 64;
inline constexpr int kMaxBusArgs = 8;

struct Slot {
    std::uint32_t generation = 0;
    bool inUse = false;
    bool started = false; // handed to Csound
    std::int64_t startFrame = 0;
    std::int64_t endFrame = -1;  // -1: until stopped
    std::int64_t stopFrame = -1; // a pending stop (-1: none); never lost, never queued
    bool stopRelease = true;     // the pending stop lets the release play
    double p1 = 0;
    int templateIndex = -1;
    std::uint64_t explicitControls = 0; // k-args given at sched: ports do not override them
    std::array<Bus, kMaxBusArgs> buses{};
    int numBuses = 0;
    int numPfields = 0;
    std::array<double, kMaxPfields> pfields{}; // the start event, until it starts
};

class SlotTable {
public:
    explicit SlotTable(int numSlots);

    int size() const noexcept { return static_cast<int>(slots_.size()); }
    Slot& operator[](int slot) noexcept { return slots_[static_cast<std::size_t>(slot)]; }
    const Slot& operator[](int slot) const noexcept {
        return slots_[static_cast<std::size_t>(slot)];
    }
    // The slot when it still holds the instance of that generation.
    const Slot* live(int slot, std::uint32_t generation) const noexcept;
    // Slots in use, in no particular order.
    std::span<const int> active() const noexcept { return active_; }
    bool full() const noexcept { return free_.empty(); }

    // A fresh slot of a new generation; -1 when every slot is in use.
    int alloc() noexcept;
    void free(int slot) noexcept;
    // Frees every started instance that skipped its heartbeat for `cycle` (it ended),
    // calling onFree(slot) first.
    template <class F>
    void reap(std::span<const double> heartbeats, double cycle, std::int64_t now, F&& onFree) {
        for (std::size_t i = 0; i < active_.size();) {
            const int slot = active_[i];
            const auto& s = slots_[static_cast<std::size_t>(slot)];
            if (s.started && s.startFrame < now &&
                heartbeats[static_cast<std::size_t>(slot)] != cycle) {
                onFree(slot);
                free(slot); // swaps the last active slot into i
                continue;
            }
            ++i;
        }
    }

private:
    std::vector<Slot> slots_;
    std::vector<int> free_;
    std::vector<int> active_;
};

} // namespace spinout
