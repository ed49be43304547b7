// The session's buses and their reference counts.
#include "spinout/bus_pool.hpp"

#include <algorithm>

namespace spinout {

BusPool::BusPool(int audioBuses, int controlBuses) {
    refs_[0].assign(static_cast<std::size_t>(audioBuses), 0);
    refs_[1].assign(static_cast<std::size_t>(controlBuses), 0);
}

std::optional<Bus> BusPool::assign(BusKind kind) {
    auto& r = refs(kind);
    auto it = std::find(r.begin(), r.end(), 0);
    if (it == r.end()) return std::nullopt;
    *it = 1;
    return Bus{kind, static_cast<int>(it - r.begin())};
}

int BusPool::capacity(BusKind kind) const noexcept {
    return static_cast<int>(refs(kind).size());
}

int BusPool::refCount(const Bus& bus) const noexcept {
    const auto& r = refs(bus.kind);
    if (bus.token < 0 || bus.token >= static_cast<int>(r.size())) return 0;
    return r[static_cast<std::size_t>(bus.token)];
}

void BusPool::addRef(const Bus& bus) noexcept {
    if (refCount(bus) > 0) ++refs(bus.kind)[static_cast<std::size_t>(bus.token)];
}

void BusPool::dropRef(const Bus& bus) noexcept {
    if (refCount(bus) > 0) --refs(bus.kind)[static_cast<std::size_t>(bus.token)];
}

int BusPool::audioBusesInUse() const noexcept {
    const auto& r = refs_[0];
    const auto last = std::find_if(r.rbegin(), r.rend(), [](int n) { return n > 0; });
    return static_cast<int>(r.rend() - last);
}

} // namespace spinout
