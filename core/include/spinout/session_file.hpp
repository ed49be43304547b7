// The session file (TOML) parsed into a SessionSpec. The contract is the
// README's session format reference; every error names file, line and column,
// and all errors of a file are reported together.
#pragma once

#include "spinout/spec.hpp"

#include <cstddef>
#include <string>

namespace spinout {

// Limits checked before anything is built, so that an oversized session is refused in
// a fraction of a second instead of taking minutes and gigabytes: the file's size (toml++
// needs about 20 times the text in memory) and the number of instrs (each is compiled into
// Csound; instr numbers leave room for 998 templates at each priority, and spinout keeps
// some for itself).
inline constexpr std::size_t kMaxSessionBytes = 4u << 20;
inline constexpr int kMaxSessionInstrs = 990;

// Parses and checks a session file; throws SessionFileError with every error found.
SessionSpec parseSessionFile(const std::string& path);
SessionSpec parseSessionText(const std::string& text, const std::string& path);

} // namespace spinout
