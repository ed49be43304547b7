// A pass over TOML text before toml++ 3.3 parses it, because toml++ reaches
// __builtin_unreachable (undefined behaviour) when it asks whether certain non-ASCII
// characters are whitespace (toml++ issues #190 and #295; fixed upstream by
// returning false). That happens in two places only: a non-ASCII character outside
// strings and comments (always a syntax error in TOML 1.0), and right after a
// backslash in a multi-line basic string. Internal to the core; offline and worker
// threads only (it allocates).
#pragma once

#include <string>

namespace spinout::detail {

// The text to give toml++: `text`, or a copy where a non-ASCII character that
// follows a line-ending backslash in a """string""" is written as its \u escape
// (the same value). Throws SessionFileError, naming the line and column, for a
// non-ASCII character outside strings and comments or after a backslash.
std::string guardTomlText(const std::string& text, const std::string& path);

} // namespace spinout::detail
