// A string written into a text format spinout generates: the trust file and bundle grants
// (TOML), the plugins' Turtle. Not real-time.
#pragma once

#include <string>
#include <string_view>

namespace spinout {

// The text between double quotes, with " \ and control characters escaped (\" \\ \n \r \t,
// \uXXXX for the others): a TOML basic string and a Turtle STRING_LITERAL_QUOTE both read
// it back as the same text. UTF-8 passes as it is. (Not a Csound string.)
std::string quotedString(std::string_view text);

} // namespace spinout
