// The session's slots: allocation, reuse and the generation guard.
#include "spinout/slot_table.hpp"

#include <algorithm>

namespace spinout {

SlotTable::SlotTable(int numSlots) : slots_(static_cast<std::size_t>(numSlots)) {
    free_.reserve(slots_.size());
    for (int i = numSlots - 1; i >= 0; --i)
        free_.push_back(i);
    active_.reserve(slots_.size());
}

const Slot* SlotTable::live(int slot, std::uint32_t generation) const noexcept {
    if (slot < 0 || slot >= size()) return nullptr;
    const auto& s = slots_[static_cast<std::size_t>(slot)];
    return s.inUse && s.generation == generation ? &s : nullptr;
}

int SlotTable::alloc() noexcept {
    if (free_.empty()) return -1;
    const int slot = free_.back();
    free_.pop_back();
    auto& s = slots_[static_cast<std::size_t>(slot)];
    const auto generation = s.generation + 1;
    s = Slot{};
    s.generation = generation;
    s.inUse = true;
    active_.push_back(slot);
    return slot;
}

void SlotTable::free(int slot) noexcept {
    auto& s = slots_[static_cast<std::size_t>(slot)];
    if (!s.inUse) return;
    s.inUse = false;
    s.numBuses = 0;
    auto it = std::find(active_.begin(), active_.end(), slot);
    if (it != active_.end()) {
        *it = active_.back();
        active_.pop_back();
    }
    free_.push_back(slot);
}

} // namespace spinout
