// A session described as JSON, for scripts: `spinout info --json` prints it and the
// Python module's Session.info() returns it parsed.
#pragma once

#include "spinout/spec.hpp"

#include <string>

namespace spinout {

// The session's metadata, instrs (args with kind, default and pfield or control index),
// buses, MIDI mapping, ports and presets, in the order the parsed session holds them (ports in file
// order). Always valid JSON (UTF-8; bytes that are not UTF-8 become U+FFFD). `indent` < 0 gives one
// line.
std::string sessionJson(const SessionSpec& spec, int indent = 2);

} // namespace spinout
