// quotedString: see quoted.hpp.
#include "spinout/quoted.hpp"

#include <fmt/format.h>

namespace spinout {

std::string quotedString(std::string_view text) {
    std::string out = "\"";
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        switch (ch) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        default:
            if (c < 0x20 || c == 0x7F)
                out += fmt::format("\\u{:04X}", c);
            else
                out += ch;
        }
    }
    return out + "\"";
}

} // namespace spinout
