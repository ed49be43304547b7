// spinout::Instr: a template's args (inline, args map, pset), the p4 rule, and the
// Csound code it compiles to. Not real-time: templates are parsed and compiled at load.
#include "spinout/instr.hpp"

#include "spinout/support.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <sstream>
#include <variant>

namespace spinout {

namespace {

std::string trim(std::string_view s) {
    const auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) return {};
    const auto e = s.find_last_not_of(" \t\r\n");
    return std::string(s.substr(b, e - b + 1));
}

std::vector<std::string> splitLines(const std::string& text) {
    std::vector<std::string> lines;
    std::string line;
    std::istringstream in(text);
    while (std::getline(in, line))
        lines.push_back(line);
    return lines;
}

std::string joinLines(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines)
        out += l + '\n';
    return out;
}

// Splits on commas outside quotes.
std::vector<std::string> splitArgs(std::string_view s) {
    std::vector<std::string> parts;
    std::string cur;
    char quote = 0;
    for (char c : s) {
        if (quote != 0) {
            if (c == quote) quote = 0;
        } else if (c == '"' || c == '\'') {
            quote = c;
        } else if (c == ',') {
            parts.push_back(trim(cur));
            cur.clear();
            continue;
        }
        cur += c;
    }
    if (!trim(cur).empty() || !parts.empty()) parts.push_back(trim(cur));
    return parts;
}

std::optional<double> parseNumber(const std::string& s) {
    double v = 0;
    const auto* end = s.data() + s.size();
    auto [ptr, ec] = std::from_chars(s.data(), end, v);
    // from_chars reads "nan" and "inf": no value reaching Csound may be either
    if (ec != std::errc() || ptr != end || !std::isfinite(v)) return std::nullopt;
    return v;
}

bool isIdent(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
}

bool validArgName(const std::string& name) {
    if (name.empty() || (name[0] != 'i' && name[0] != 'k' && name[0] != 'S')) return false;
    return std::all_of(name.begin(), name.end(), isIdent);
}

// Whether code reads p4, as `p4` or `p(4)`. (Hand-written: std::regex is slow
// enough to show in the command's start-up.)
bool readsP4(const std::string& code) {
    for (std::size_t i = 0; i < code.size(); ++i) {
        if (code[i] != 'p' || (i > 0 && isIdent(code[i - 1]))) continue;
        std::size_t j = i + 1;
        if (j < code.size() && code[j] == '4' && (j + 1 == code.size() || !isIdent(code[j + 1])))
            return true;
        while (j < code.size() && std::isspace(static_cast<unsigned char>(code[j])))
            ++j;
        if (j >= code.size() || code[j] != '(') continue;
        ++j;
        while (j < code.size() && std::isspace(static_cast<unsigned char>(code[j])))
            ++j;
        if (j >= code.size() || code[j] != '4') continue;
        ++j;
        while (j < code.size() && std::isspace(static_cast<unsigned char>(code[j])))
            ++j;
        if (j < code.size() && code[j] == ')') return true;
    }
    return false;
}

// `NAME = pN`, `NAME init pN` or `NAME strget pN` (NAME an i, k or S variable):
// the name and N, or nothing.
std::optional<std::pair<std::string, int>> pfieldAssignment(const std::string& code) {
    const auto t = trim(code);
    std::size_t i = 0;
    while (i < t.size() && isIdent(t[i]))
        ++i;
    const std::string name = t.substr(0, i);
    if (!validArgName(name)) return std::nullopt;
    while (i < t.size() && std::isspace(static_cast<unsigned char>(t[i])))
        ++i;
    if (i < t.size() && t[i] == '=') {
        ++i;
    } else {
        std::size_t w = i;
        while (w < t.size() && isIdent(t[w]))
            ++w;
        const auto word = t.substr(i, w - i);
        if (word != "init" && word != "strget") return std::nullopt;
        i = w;
    }
    while (i < t.size() && std::isspace(static_cast<unsigned char>(t[i])))
        ++i;
    if (i + 1 >= t.size() || t[i] != 'p') return std::nullopt;
    const auto digits = t.substr(i + 1);
    if (digits.empty() || digits.size() > 4 ||
        !std::all_of(digits.begin(), digits.end(),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }))
        return std::nullopt;
    return std::pair{name, std::stoi(digits)};
}

// Where a line of Csound code starts: inside a /* comment or a {{ string, or neither.
struct Carry {
    bool inComment = false;
    bool inLongString = false;
};

// The code of a line without its comments and string literals ("..." and {{...}}).
std::string codeOnly(const std::string& line, Carry& carry) {
    std::string out;
    char quote = 0;
    auto at = [&](std::size_t i, const char* two) {
        return i + 1 < line.size() && line[i] == two[0] && line[i + 1] == two[1];
    };
    for (std::size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        if (carry.inComment || carry.inLongString) {
            if (at(i, carry.inComment ? "*/" : "}}")) {
                carry = {};
                ++i;
            }
            continue;
        }
        if (quote != 0) {
            if (c == '\\')
                ++i;
            else if (c == quote)
                quote = 0;
            continue;
        }
        if (c == '"') {
            quote = c;
            continue;
        }
        if (c == ';' || at(i, "//")) break;
        if (at(i, "/*") || at(i, "{{")) {
            (c == '/' ? carry.inComment : carry.inLongString) = true;
            ++i;
            continue;
        }
        out += c;
    }
    return out;
}

} // namespace

std::optional<HeaderStatement> hostHeaderStatement(const std::string& code) {
    static const std::vector<std::string> names = {"sr",       "kr",    "ksmps", "nchnls",
                                                   "nchnls_i", "0dbfs", "A4"};
    Carry carry;
    const auto lines = splitLines(code);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const auto t = trim(codeOnly(lines[i], carry));
        for (const auto& name : names) {
            if (t.rfind(name, 0) != 0) continue;
            auto rest = trim(std::string_view(t).substr(name.size()));
            if (rest.empty() || rest[0] != '=' || (rest.size() > 1 && rest[1] == '=')) continue;
            return HeaderStatement{static_cast<int>(i) + 1, name};
        }
    }
    return std::nullopt;
}

// Scans as Csound's preprocessor does: a "..." string runs to the next unescaped quote,
// across lines; ; and // comment to the end of the line; /* */ and {{ }} may span lines.
namespace {

// The 1-based line of position `at` in `text`.
int lineAt(const std::string& text, std::size_t at) {
    return 1 +
           static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(at), '\n'));
}

// The length of the `#define` token at `i` as Csound's preprocessor reads it (`#`, spaces
// or tabs, `define`: DEFINE in csound_pre.lex), or 0.
std::size_t defineTokenAt(std::string_view code, std::size_t i) {
    if (i >= code.size() || code[i] != '#') return 0;
    const auto word = code.find_first_not_of(" \t", i + 1);
    if (word == std::string_view::npos || code.compare(word, 6, "define") != 0) return 0;
    return word + 6 - i;
}

// Where the parts of a `#define NAME #body#` stand in the code.
struct DefineParts {
    std::size_t nameAt = 0, nameEnd = 0;
    std::size_t bodyAt = 0, bodyEnd = 0; // between the two #
    std::size_t end = 0;                 // past the closing #
};

// A well-formed `#define NAME #body#` (no args) starting at `at`: its parts, or why not.
// Csound reads the body raw; its text comes back wherever $NAME is used, so a body must
// hold nothing that opens or closes a string or comment there.
std::variant<DefineParts, std::string> defineAt(const std::string& code, std::size_t at) {
    auto i = at + defineTokenAt(code, at);
    const auto nameAt = code.find_first_not_of(" \t", i);
    if (nameAt == i || nameAt == std::string::npos) return std::string("a #define without a name");
    i = nameAt;
    while (i < code.size() &&
           (std::isalnum(static_cast<unsigned char>(code[i])) != 0 || code[i] == '_'))
        ++i;
    if (i == nameAt) return std::string("a #define without a name");
    // Csound gives up on a name that starts with a digit (found by fuzzing: it leaks)
    if (std::isdigit(static_cast<unsigned char>(code[nameAt])) != 0)
        return std::string("a #define whose name starts with a digit");
    const auto nameEnd = i;
    if (i < code.size() && code[i] == '(')
        return std::string("a macro with arguments (#define NAME(...)) is not supported");
    i = code.find_first_not_of(" \t", i);
    if (i == std::string::npos || code[i] != '#')
        return std::string("a #define whose body does not start with #");
    const auto end = code.find('#', i + 1);
    if (end == std::string::npos) return std::string("a #define whose body is never closed with #");
    const std::string_view body(code.data() + i + 1, end - i - 1);
    for (const std::string_view bad : {"\"", "{{", "}}", "/*", "*/", "//", ";", "\\"})
        if (body.find(bad) != std::string_view::npos)
            return fmt::format("a #define whose body holds {} (it comes back wherever the "
                               "macro is used)",
                               bad);
    return DefineParts{nameAt, nameEnd, i + 1, end, end + 1};
}

// What Csound's preprocessor acts on wherever it stands, strings and comments included.
std::optional<ParserTrap> directiveTrap(const std::string& code) {
    if (const auto nul = code.find('\0'); nul != std::string::npos)
        return ParserTrap{lineAt(code, nul), "byte 0x00: Csound's parser stops reading there"};
    for (const std::string_view d :
         {"#exit", "###", "#ifdef", "#ifndef", "#else", "#end", "#undef"})
        if (const auto at = code.find(d); at != std::string::npos)
            return ParserTrap{lineAt(code, at),
                              fmt::format("'{}': preprocessor conditionals and stops are not "
                                          "supported in session code",
                                          d)};
    for (auto at = findDefine(code, 0); at != std::string::npos; at = findDefine(code, at + 1))
        if (const auto define = defineAt(code, at); std::holds_alternative<std::string>(define))
            return ParserTrap{lineAt(code, at), std::get<std::string>(define)};
    for (auto at = code.find("#include"); at != std::string::npos;
         at = code.find("#include", at + 1))
        if (!includeNameAt(code, at))
            return ParserTrap{lineAt(code, at),
                              "a malformed #include: give #include \"file\" on one line"};
    return std::nullopt;
}

} // namespace

std::size_t findDefine(std::string_view code, std::size_t from) {
    for (auto at = code.find('#', from); at != std::string_view::npos; at = code.find('#', at + 1))
        if (defineTokenAt(code, at) != 0) return at;
    return std::string_view::npos;
}

std::vector<MacroDefinition> macroDefinitions(const std::string& code) {
    std::vector<MacroDefinition> out;
    for (auto at = findDefine(code, 0); at != std::string::npos; at = findDefine(code, at + 1)) {
        const auto define = defineAt(code, at);
        if (!std::holds_alternative<DefineParts>(define)) continue;
        const auto& d = std::get<DefineParts>(define);
        out.push_back({code.substr(d.nameAt, d.nameEnd - d.nameAt),
                       code.substr(d.bodyAt, d.bodyEnd - d.bodyAt), lineAt(code, at), at});
    }
    return out;
}

std::vector<MacroUse> macroUses(std::string_view code) {
    std::vector<MacroUse> out;
    const auto start = [](char c) {
        return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
    };
    const auto more = [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    };
    int line = 1;
    std::size_t counted = 0;
    for (auto at = code.find('$'); at != std::string_view::npos; at = code.find('$', at + 1)) {
        if (at + 1 >= code.size() || !start(code[at + 1])) continue;
        auto end = at + 2;
        while (end < code.size() && more(code[end]))
            ++end;
        line += static_cast<int>(std::count(code.begin() + static_cast<long>(counted),
                                            code.begin() + static_cast<long>(at), '\n'));
        counted = at;
        out.push_back({std::string(code.substr(at + 1, end - at - 1)), line, at});
    }
    return out;
}

std::optional<IncludeName> includeNameAt(std::string_view text, std::size_t pos) {
    auto i = pos + std::string_view("#include").size();
    const bool str = text.compare(i, 3, "str") == 0;
    if (str) i += 3;
    i = text.find_first_not_of(" \t", i);
    if (i == std::string_view::npos || text[i] == '\n' || text[i] == '\r') return std::nullopt;
    const char term = text[i];
    if (str && term != '"') return std::nullopt; // not an #includestr Csound acts on
    const auto end = text.find_first_of(std::string{term, '\n'}, i + 1);
    if (end == std::string_view::npos || text[end] != term) return std::nullopt;
    return IncludeName{std::string(text.substr(i + 1, end - i - 1)), end + 1};
}

std::optional<ParserTrap> parserTrap(const std::string& code, std::string* view,
                                     std::string* directives) {
    if (auto trap = directiveTrap(code)) return trap;
    // Csound's preprocessor ends a ; comment at a lone CR, but a \ continuation's comment
    // and an #include's line run on to the LF (found by attack: code hidden from the check)
    for (auto cr = code.find('\r'); cr != std::string::npos; cr = code.find('\r', cr + 1))
        if (cr + 1 == code.size() || code[cr + 1] != '\n')
            return ParserTrap{lineAt(code, cr), "a carriage return without a line feed: "
                                                "Csound's preprocessor ends lines there in "
                                                "some places and not in others"};
    enum { code_, quoted, lineComment, blockComment, braces } state = code_;
    int line = 1;
    int opened = 0;
    auto at = [&](std::size_t i, std::string_view s) { return code.compare(i, s.size(), s) == 0; };
    std::string seen = view != nullptr ? code : std::string();
    std::string dirs = directives != nullptr ? code : std::string();
    // `strings`: in the directives view only (a string's text, where no directive acts)
    const auto blank = [&](std::size_t i, std::size_t n = 1, bool strings = false) {
        for (std::string* v : {&seen, &dirs}) {
            if (v->empty() || (strings && v == &seen)) continue;
            for (std::size_t k = i; k < i + n && k < v->size(); ++k)
                if ((*v)[k] != '\n' && (*v)[k] != '\r') (*v)[k] = ' ';
        }
    };
    for (std::size_t i = 0; i < code.size(); ++i) {
        const char c = code[i];
        if (c == '\xff') return ParserTrap{line, "byte 0xff: the code is not UTF-8 text"};
        if (c == '\n' || c == '\r') { // a lone CR ends Csound's line comments too
            if (c == '\n') ++line;
            if (state == lineComment) state = code_;
            continue;
        }
        switch (state) {
        case code_:
            if (defineTokenAt(code, i) != 0) { // its body is read raw (checked by directiveTrap)
                const auto end = std::get<DefineParts>(defineAt(code, i)).end;
                line += static_cast<int>(std::count(code.begin() + static_cast<long>(i),
                                                    code.begin() + static_cast<long>(end), '\n'));
                i = end - 1;
            } else if (at(i, "#include")) {
                // Csound reads the name, then drops the rest of the line unread
                const auto include = includeNameAt(code, i);
                const auto lf = std::min(code.find('\n', i), code.size());
                if (!include) return ParserTrap{line, "a malformed #include"};
                // Csound reads on to the line's end, past the end of an #include'd file's
                // text into nothing (a crash, found by attack)
                if (lf == code.size())
                    return ParserTrap{line, "an #include without a line feed after it"};
                // Csound opens the file with \ as /, but its #includes from the folder
                // before the last / (found by attack: the check read another file)
                if (include->name.find('\\') != std::string::npos)
                    return ParserTrap{line, "a \\ in an #include's name: Csound reads it as / "
                                            "for the file, not for the files that one includes"};
                if (include->end < lf) blank(include->end, lf - include->end);
                i = lf - 1;
            } else if (c == '\\') {
                // a line continuation; Csound takes \/ or \" for an escape, so that in \//*
                // or \"/* the /* is a comment
                const auto j = code.find_first_not_of(" \t\r", i + 1);
                const bool continuation = j == std::string::npos || code[j] == '\n' ||
                                          (j > i + 1 && (code[j] == ';' || at(j, "//")));
                if (!continuation)
                    return ParserTrap{line, "a \\ outside a string continues the line: only "
                                            "spaces and a comment may follow it"};
            } else if (c == '"' || at(i, "/*") || at(i, "{{")) {
                state = c == '"' ? quoted : c == '/' ? blockComment : braces;
                opened = line;
                if (c != '"') blank(i++, 2);
            } else if (c == ';' || at(i, "//")) {
                state = lineComment;
                blank(i);
            }
            break;
        case quoted:
            if (c == '\\') {
                // \ then ; (spaces between or not) is a line continuation even here, and its
                // comment swallows the rest of the line, the closing quote with it
                const auto j = code.find_first_not_of(" \t", i + 1);
                if (j != std::string::npos && code[j] == ';')
                    return ParserTrap{line, "a \\ before ; in a string: Csound takes it for a "
                                            "line continuation and its comment"};
                const bool escape = i + 1 < code.size() && code[i + 1] != '\n';
                blank(i, escape ? 2 : 1, true);
                if (escape) ++i;
            } else if (c == '"') {
                state = code_;
            } else {
                blank(i, 1, true);
            }
            break;
        case blockComment:
        case braces:
            if (at(i, state == blockComment ? "*/" : "}}")) {
                state = code_;
                blank(i++, 2);
            } else {
                blank(i);
            }
            break;
        case lineComment:
            blank(i);
            break;
        }
    }
    if (state != blockComment && state != braces && state != quoted) {
        if (view != nullptr) *view = std::move(seen);
        if (directives != nullptr) *directives = std::move(dirs);
    }
    switch (state) {
    case blockComment:
        return ParserTrap{opened, "a comment opened with /* is never closed with */"};
    case braces:
        return ParserTrap{opened, "a string opened with {{ is never closed with }}"};
    case quoted:
        return ParserTrap{opened, "a string opened with \" is never closed with \""};
    default:
        return std::nullopt;
    }
}

Instr::Instr(std::string name, std::string body, const ArgList& args, std::string init,
             std::string doc, std::optional<int> priority)
    : name_(std::move(name)), body_(std::move(body)), init_(std::move(init)), doc_(std::move(doc)),
      priority_(priority) {
    // [A-Za-z_][A-Za-z0-9_.-]*, by hand: std::regex recurses once per character, and a
    // long name (200 kB) overflowed the stack
    auto letter = [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    };
    const bool valid =
        !name_.empty() && letter(name_[0]) && std::all_of(name_.begin(), name_.end(), [&](char c) {
            return letter(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
        });
    if (!valid) throw InstrError(fmt::format("invalid instr name '{}'", name_));
    if (trim(body_).empty()) throw InstrError(fmt::format("instr '{}' has an empty body", name_));
    if (priority_ && *priority_ < 1)
        throw InstrError(fmt::format("instr '{}': priority must be 1 or more", name_));
    codeBody_ = body_;
    checkReservedP4();
    parseInlineArgs();
    parsePset();
    applyArgMap(args);
    index();
}

void Instr::checkReservedP4() const {
    Carry carry;
    const auto lines = splitLines(body_);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (readsP4(codeOnly(lines[i], carry)))
            throw InstrError(fmt::format("instr '{}' uses p4, which is reserved; named "
                                         "arguments start at p5",
                                         name_),
                             static_cast<int>(i) + 1);
    }
}

void Instr::parseInlineArgs() {
    auto lines = splitLines(codeBody_);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const auto t = trim(lines[i]);
        if (t.empty()) continue;
        if (t.front() != '|') return; // inline args may only be the first code line
        if (t.size() < 2 || t.back() != '|')
            throw InstrError(
                fmt::format("instr '{}': the inline args line must end with '|'", name_),
                static_cast<int>(i) + 1);
        for (const auto& part : splitArgs(std::string_view(t).substr(1, t.size() - 2))) {
            if (part.empty())
                throw InstrError(fmt::format("instr '{}': empty entry in the inline args", name_),
                                 static_cast<int>(i) + 1);
            const auto eq = part.find('=');
            const auto argName = trim(part.substr(0, eq));
            if (!validArgName(argName))
                throw InstrError(fmt::format("instr '{}': invalid arg name '{}' (names start "
                                             "with i, k or S)",
                                             name_, argName),
                                 static_cast<int>(i) + 1);
            if (arg(argName) != nullptr)
                throw InstrError(fmt::format("instr '{}': arg '{}' declared twice", name_, argName),
                                 static_cast<int>(i) + 1);
            ArgValue value = argName.front() == 'S' ? ArgValue(std::string()) : ArgValue(0.0);
            if (eq != std::string::npos) {
                const auto text = trim(part.substr(eq + 1));
                if (text.size() >= 2 && (text.front() == '"' || text.front() == '\'') &&
                    text.back() == text.front()) {
                    value = text.substr(1, text.size() - 2);
                } else if (auto num = parseNumber(text)) {
                    value = *num;
                } else {
                    throw InstrError(
                        fmt::format("instr '{}': default of '{}' must be a number or a "
                                    "quoted string, not '{}'",
                                    name_, argName, text),
                        static_cast<int>(i) + 1);
                }
            }
            if ((argName.front() == 'S') != std::holds_alternative<std::string>(value))
                throw InstrError(fmt::format("instr '{}': arg '{}' takes a {}", name_, argName,
                                             argName.front() == 'S' ? "string" : "number"),
                                 static_cast<int>(i) + 1);
            args_.push_back({argName, value, 0});
        }
        lines[i] = ""; // keep the line numbering of the body
        codeBody_ = joinLines(lines);
        return;
    }
}

void Instr::parsePset() {
    auto lines = splitLines(codeBody_);
    Carry carry;
    bool changed = false;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const auto code = trim(codeOnly(lines[i], carry));
        if (code.rfind("pset", 0) == 0 && code.size() > 4 &&
            std::isspace(static_cast<unsigned char>(code[4]))) {
            const auto values = splitArgs(code.substr(5));
            psetDefaults_.clear();
            for (std::size_t j = 4; j < values.size(); ++j) {
                auto v = parseNumber(values[j]);
                if (!v)
                    throw InstrError(fmt::format("instr '{}': pset value '{}' is not a number",
                                                 name_, values[j]),
                                     static_cast<int>(i) + 1);
                psetDefaults_.push_back(*v);
            }
        } else if (const auto assignment = pfieldAssignment(code)) {
            const auto& [argName, p] = *assignment;
            if (p < 5 || arg(argName) != nullptr) continue;
            InstrArg a{argName, argName.front() == 'S' ? ArgValue(std::string()) : ArgValue(0.0),
                       p};
            args_.push_back(a);
            if (a.isControl()) {
                // A k-variable set from a pfield becomes a dynamic control: its pfield
                // still carries the initial value, the control table the current one.
                lines[i] = fmt::format("{} tab i__base + {{ctl:{}}}, {}", argName, argName,
                                       support::kControlTable);
                changed = true;
            }
        }
    }
    for (auto& a : args_) {
        if (a.index >= 5 && !a.isString() &&
            static_cast<std::size_t>(a.index - 5) < psetDefaults_.size())
            a.value = psetDefaults_[static_cast<std::size_t>(a.index - 5)];
    }
    if (changed) codeBody_ = joinLines(lines);
}

void Instr::applyArgMap(const ArgList& args) {
    for (const auto& [argName, value] : args) {
        if (!validArgName(argName))
            throw InstrError(fmt::format("instr '{}': invalid arg name '{}' (names start with "
                                         "i, k or S)",
                                         name_, argName));
        if ((argName.front() == 'S') != std::holds_alternative<std::string>(value))
            throw InstrError(fmt::format("instr '{}': arg '{}' takes a {}", name_, argName,
                                         argName.front() == 'S' ? "string" : "number"));
        // a named capture: clang 14 (the sanitized build) cannot capture a structured binding
        auto it = std::find_if(args_.begin(), args_.end(),
                               [&name = argName](const InstrArg& a) { return a.name == name; });
        if (it != args_.end())
            it->value = value;
        else
            args_.push_back({argName, value, 0});
    }
}

void Instr::index() {
    int nextPfield = 5;
    for (const auto& a : args_)
        nextPfield = std::max(nextPfield, a.index + 1);
    nextPfield = std::max(nextPfield, 5 + static_cast<int>(psetDefaults_.size()));
    int nextControl = 0;
    for (auto& a : args_) {
        if (a.isControl()) {
            const int pfield = a.index; // nonzero: mirrored in a pset pfield
            const std::string placeholder = fmt::format("{{ctl:{}}}", a.name);
            a.index = nextControl++;
            if (pfield >= 5) {
                auto pos = codeBody_.find(placeholder);
                if (pos != std::string::npos)
                    codeBody_.replace(pos, placeholder.size(), std::to_string(a.index));
                pfields_.push_back({a.name, a.value, pfield});
                maxPfield_ = std::max(maxPfield_, pfield);
            }
            controls_.push_back(a);
        } else {
            if (a.index < 5) a.index = nextPfield++;
            pfields_.push_back(a);
            maxPfield_ = std::max(maxPfield_, a.index);
        }
    }
    maxPfield_ = std::max(maxPfield_, 4 + static_cast<int>(psetDefaults_.size()));
    std::sort(pfields_.begin(), pfields_.end(),
              [](const InstrArg& a, const InstrArg& b) { return a.index < b.index; });
}

const InstrArg* Instr::arg(std::string_view argName) const {
    for (const auto& a : args_)
        if (a.name == argName) return &a;
    return nullptr;
}

int Instr::headerLines() const {
    int n = 4; // slot, base, heartbeat (2 lines)
    for (const auto& c : controls_)
        n += c.isControl() ? 2 : 0;
    for (const auto& p : pfields_)
        if (!p.isControl()) ++n;
    // pset-mirrored controls take a line for their pfield init
    return n;
}

std::string Instr::code(int number) const {
    std::string out = fmt::format("instr {}\n", number);
    out += "i__slot = p4\n";
    out += fmt::format("i__base = i__slot * {}\n", support::kMaxControls);
    out += "k__hb timek\n";
    out += fmt::format("tabw k__hb, i__slot, {}\n", support::kHeartbeatTable);
    for (const auto& c : controls_) {
        // i-time value first, so opcodes that read a k-arg at init see it
        out += fmt::format("{} init tab_i(i__base + {}, {})\n", c.name, c.index,
                           support::kControlTable);
        out += fmt::format("{} tab i__base + {}, {}\n", c.name, c.index, support::kControlTable);
    }
    for (const auto& p : pfields_) {
        if (p.isControl()) continue;
        if (p.isString())
            out += fmt::format("{} strget p{}\n", p.name, p.index);
        else
            out += fmt::format("{} = p{}\n", p.name, p.index);
    }
    out += codeBody_;
    if (!codeBody_.empty() && codeBody_.back() != '\n') out += '\n';
    // Csound takes the start within the cycle from p2 and the end from p2 + p3 after the
    // init pass: the host gives the values for exact frames here, after the body has seen
    // the event's own p3.
    out += fmt::format("i__p3 tab_i i__slot * 2 + 1, {0}\nif i__p3 > 0 then\n"
                       "  p2 = tab_i(i__slot * 2, {0})\n  p3 = i__p3\nendif\n",
                       support::kTimingTable);
    out += "endin\n";
    return out;
}

} // namespace spinout
