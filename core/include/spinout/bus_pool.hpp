// spinout::BusPool: the session's audio and control buses and their reference
// counts. A bus is free again once nothing refers to it: neither the code that
// assigned it nor an instance that was given it. The values live in Csound (a
// control bus table, a global audio array); this part only counts.
// Real-time: addRef/dropRef run on the audio thread; assign and release do not.
#pragma once

#include "spinout/spec.hpp"

#include <array>
#include <optional>
#include <vector>

namespace spinout {

// A bus token with its kind. Pass it as an arg to give an instance the bus.
struct Bus {
    BusKind kind = BusKind::audio;
    int token = -1;
    bool valid() const noexcept { return token >= 0; }
};

class BusPool {
public:
    BusPool(int audioBuses, int controlBuses);

    // The lowest free bus of a kind, now referred to once; nothing when all are in use.
    std::optional<Bus> assign(BusKind kind);
    int capacity(BusKind kind) const noexcept;
    int refCount(const Bus& bus) const noexcept;
    void addRef(const Bus& bus) noexcept;
    void dropRef(const Bus& bus) noexcept;
    // One past the highest audio bus in use: what the bus clearer clears.
    int audioBusesInUse() const noexcept;

private:
    std::vector<int>& refs(BusKind kind) noexcept { return refs_[kind == BusKind::audio ? 0 : 1]; }
    const std::vector<int>& refs(BusKind kind) const noexcept {
        return refs_[kind == BusKind::audio ? 0 : 1];
    }
    std::array<std::vector<int>, 2> refs_;
};

} // namespace spinout
