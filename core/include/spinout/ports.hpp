// Port maths: what a value sent to a session's port becomes (range, steps,
// scales, units). One place for the plugin, the renderer and the Turtle writer.
#pragma once

#include "spinout/spec.hpp"

#include <string>
#include <vector>

namespace spinout {

// A value brought into the port's range and onto its steps; NaN gives the default,
// infinities the ends of the range.
double clampPortValue(const PortSpec& port, double value) noexcept;
// The port value a normalized 0..1 position (a MIDI CC / 127) stands for.
double portValueFromUnit(const PortSpec& port, double unit) noexcept;

// The LV2 units a port may name (units:NAME).
const std::vector<std::string>& lv2Units();
bool isLv2Unit(const std::string& unit);

} // namespace spinout
