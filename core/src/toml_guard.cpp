// See toml_guard.hpp: keeps toml++ 3.3 away from its unreachable code on
// non-ASCII characters, by following TOML's strings and comments.
#include "toml_guard.hpp"

#include "spinout/session_file.hpp"

#include <fmt/format.h>

#include <vector>

namespace spinout::detail {

namespace {

// The code point of the UTF-8 sequence at `at` and its length; length 0 when the
// sequence is not valid UTF-8 (toml++ rejects those itself).
std::pair<char32_t, std::size_t> decode(const std::string& s, std::size_t at) {
    const auto b = [&](std::size_t k) -> unsigned {
        return at + k < s.size() ? static_cast<unsigned char>(s[at + k]) : 0u;
    };
    const unsigned c = b(0);
    std::size_t len = 0;
    char32_t cp = 0;
    unsigned lo = 0x80, hi = 0xBF; // the valid range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
        if (c == 0xE0) lo = 0xA0; // no overlong forms
        if (c == 0xED) hi = 0x9F; // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F; // nothing above U+10FFFF
    } else {
        return {0, 0};
    }
    for (std::size_t k = 1; k < len; ++k) {
        const unsigned x = b(k);
        if (k == 1 ? (x < lo || x > hi) : (x & 0xC0) != 0x80) return {0, 0};
        cp = cp << 6 | (x & 0x3F);
    }
    return {cp, len};
}

bool isSpace(char c) {
    return c == ' ' || c == '\t';
}

} // namespace

std::string guardTomlText(const std::string& text, const std::string& path) {
    const std::size_t n = text.size();
    std::string out; // filled only when something is rewritten
    std::size_t copied = 0;
    int line = 1;
    std::size_t lineStart = 0;
    auto newline = [&](std::size_t at) {
        ++line;
        lineStart = at + 1;
    };
    auto fail = [&](std::size_t at, const std::string& where) {
        int column = 1; // in code points, as toml++ counts them
        for (std::size_t k = lineStart; k < at; ++k)
            column += (static_cast<unsigned char>(text[k]) & 0xC0) != 0x80;
        const auto [cp, len] = decode(text, at);
        const std::string what =
            len > 0
                ? fmt::format("'{}' (U+{:04X})", text.substr(at, len), static_cast<unsigned>(cp))
                : fmt::format("byte 0x{:02X}", static_cast<unsigned char>(text[at]));
        throw SessionFileError(
            {{{path, line, column}, fmt::format("TOML syntax error: {} {}", what, where)}});
    };
    auto opens = [&](std::size_t at, const char* three) { return text.compare(at, 3, three) == 0; };

    enum { normal, comment, basic, literal, multiBasic, multiLiteral } state = normal;
    // Outside strings: whether a value may start here (after '=', in an array), the open
    // arrays and inline tables, and whether we are in a bare value (a number or date),
    // which toml++ scans up to a value terminator, quotes included.
    bool value = false;
    bool bare = false;
    std::vector<char> nest;
    auto terminates = [](char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == ']' || c == '}' || c == ',' || c == '#';
    };
    std::size_t i = opens(0, "\xEF\xBB\xBF") ? 3 : 0; // a byte order mark may open the file
    while (i < n) {
        const char c = text[i];
        if (c == '\n') {
            newline(i);
            if (state == comment || state == basic || state == literal) state = normal;
            if (state == normal) {
                bare = false;
                if (nest.empty()) value = false; // arrays go on over lines
            }
            ++i;
            continue;
        }
        switch (state) {
        case normal:
            if (bare && !terminates(c)) {
                if (static_cast<unsigned char>(c) >= 0x80) fail(i, "in a number or date");
                break;
            }
            bare = false;
            if (c == '#') {
                state = comment;
            } else if (c == '"' || c == '\'') {
                const bool multi = opens(i, c == '"' ? "\"\"\"" : "'''");
                state = c == '"' ? (multi ? multiBasic : basic) : (multi ? multiLiteral : literal);
                if (multi) i += 2;
                value = false;
            } else if (static_cast<unsigned char>(c) >= 0x80) {
                fail(i, "outside a string or comment");
            } else if (c == '=') {
                value = true;
            } else if (c == '[' || c == '{') {
                const bool nested = value; // else a table header
                if (nested) nest.push_back(c);
                value = nested && c == '['; // an array's first element
            } else if (c == ']' || c == '}') {
                if (!nest.empty() && nest.back() == (c == ']' ? '[' : '{')) nest.pop_back();
                value = false;
            } else if (c == ',') {
                value = !nest.empty() && nest.back() == '[';
            } else if (c != ' ' && c != '\t' && c != '\r') {
                bare = value && ((c >= '0' && c <= '9') || c == '+' || c == '-');
                value = false;
            }
            break;
        case comment:
            break;
        case basic:
            if (c == '\\' && i + 1 < n && text[i + 1] != '\n')
                ++i; // the escaped character cannot close the string
            else if (c == '"')
                state = normal;
            break;
        case literal:
            if (c == '\'') state = normal;
            break;
        case multiBasic:
        case multiLiteral:
            if (c == (state == multiBasic ? '"' : '\'') &&
                opens(i, state == multiBasic ? "\"\"\"" : "'''")) {
                i += 3;
                for (int extra = 0; extra < 2 && i < n && text[i] == c; ++extra)
                    ++i; // up to two quotes more belong to the string
                state = normal;
                continue;
            }
            if (state == multiBasic && c == '\\') {
                std::size_t j = i + 1;
                while (j < n && isSpace(text[j]))
                    ++j;
                if (j < n &&
                    (text[j] == '\n' || (text[j] == '\r' && j + 1 < n && text[j + 1] == '\n'))) {
                    // a line-ending backslash: toml++ skips whitespace and newlines, then
                    // asks whether the next character is whitespace
                    while (j < n && (isSpace(text[j]) || text[j] == '\r' || text[j] == '\n')) {
                        if (text[j] == '\n') newline(j);
                        ++j;
                    }
                    if (j < n && static_cast<unsigned char>(text[j]) >= 0x80) {
                        const auto [cp, len] = decode(text, j);
                        if (len > 0) {
                            out.append(text, copied, j - copied);
                            out += cp > 0xFFFF
                                       ? fmt::format("\\U{:08X}", static_cast<unsigned>(cp))
                                       : fmt::format("\\u{:04X}", static_cast<unsigned>(cp));
                            copied = j + len;
                            j += len;
                        }
                    }
                    i = j;
                    continue;
                }
                // toml++ skips spaces after any backslash before it looks for the line
                // break, and asks whether the character after them is whitespace
                if (j < n && static_cast<unsigned char>(text[j]) >= 0x80)
                    fail(j, "after '\\' (not an escape sequence)");
                ++i; // the escaped character cannot close the string
            }
            break;
        }
        ++i;
    }
    if (copied == 0) return text;
    out.append(text, copied, std::string::npos);
    return out;
}

} // namespace spinout::detail
