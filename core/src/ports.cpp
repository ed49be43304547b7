// Port maths: clamping, steps, scales and units of a session's ports.
#include "spinout/ports.hpp"

#include <algorithm>
#include <cmath>

namespace spinout {

double clampPortValue(const PortSpec& port, double value) noexcept {
    if (std::isnan(value)) value = port.def;
    value = std::clamp(value, port.min, port.max);
    if (port.scale == PortScale::integer || port.scale == PortScale::enumeration)
        value = std::round(value);
    if (port.scale == PortScale::toggle) value = value >= 0.5 ? 1 : 0;
    return value;
}

double portValueFromUnit(const PortSpec& port, double unit) noexcept {
    unit = std::isnan(unit) ? 0.0 : std::clamp(unit, 0.0, 1.0);
    const double v = port.scale == PortScale::log ? port.min * std::pow(port.max / port.min, unit)
                                                  : port.min + unit * (port.max - port.min);
    return clampPortValue(port, v);
}

const std::vector<std::string>& lv2Units() {
    static const std::vector<std::string> units = {
        "bar",   "beat", "bpm",  "cent", "cm",  "coef", "db",  "degree",
        "frame", "hz",   "inch", "khz",  "km",  "m",    "mhz", "midiNote",
        "mile",  "min",  "mm",   "ms",   "oct", "pc",   "s",   "semitone12TET"};
    return units;
}

bool isLv2Unit(const std::string& unit) {
    const auto& units = lv2Units();
    return std::find(units.begin(), units.end(), unit) != units.end();
}

} // namespace spinout
