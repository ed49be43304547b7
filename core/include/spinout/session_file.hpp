// The session file (TOML) parsed into a SessionSpec. The contract is the
// README's session format reference; every error names file, line and column,
// and all errors of a file are reported together.
#pragma once

#include "spinout/spec.hpp"

#include <string>

namespace spinout {

// Parses and checks a session file; throws SessionFileError with every error found.
SessionSpec parseSessionFile(const std::string& path);
SessionSpec parseSessionText(const std::string& text, const std::string& path);

} // namespace spinout
