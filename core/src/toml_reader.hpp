// Reading a TOML file of spinout's (a session or a score), collecting every error
// with its file, line and column. Internal to the core: both parsers use it.
#pragma once

#include "spinout/spec.hpp"
#include "spinout/suggest.hpp"
#include "toml_guard.hpp"

#include <toml++/toml.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace spinout::detail {

// Reads one file, collecting every error instead of stopping at the first.
class Reader {
public:
    // `text` is the file's, or a part of it starting on line `firstLine`.
    Reader(std::string file, std::string_view text, int firstLine = 1)
        : file_(std::move(file)), offset_(firstLine - 1) {
        std::istringstream in{std::string(text)};
        std::string l;
        while (std::getline(in, l))
            lines_.push_back(l);
    }

    SourcePos pos(const toml::node& n) const {
        const auto& s = n.source();
        return {file_, static_cast<int>(s.begin.line) + offset_, static_cast<int>(s.begin.column)};
    }
    SourcePos pos(const toml::key& k) const {
        const auto& s = k.source();
        return {file_, static_cast<int>(s.begin.line) + offset_, static_cast<int>(s.begin.column)};
    }
    SourcePos filePos() const { return {file_, 0, 0}; }

    void error(SourcePos p, std::string message) {
        errors_.push_back({std::move(p), std::move(message)});
    }
    const std::vector<Diagnostic>& errors() const { return errors_; }
    bool failed() const { return !errors_.empty(); }

    // Errors for keys that are not in `allowed`, with the closest suggested.
    void checkKeys(const toml::table& t, const std::vector<std::string>& allowed,
                   const std::string& where) {
        for (const auto& [k, v] : t) {
            const std::string key(k.str());
            if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
            error(pos(k), fmt::format("unknown key '{}' in {}{}", key, where,
                                      didYouMean(key, allowed, "keys")));
        }
    }

    std::optional<std::string> string(const toml::table& t, const char* key,
                                      const std::string& where, bool required = false) {
        const auto* n = t.get(key);
        if (n == nullptr) {
            if (required) error(pos(t), fmt::format("{} needs '{}'", where, key));
            return std::nullopt;
        }
        if (!n->is_string()) {
            error(pos(*n), fmt::format("'{}' in {} must be a string", key, where));
            return std::nullopt;
        }
        return n->as_string()->get();
    }

    std::optional<double> number(const toml::table& t, const char* key, const std::string& where,
                                 bool required = false) {
        const auto* n = t.get(key);
        if (n == nullptr) {
            if (required) error(pos(t), fmt::format("{} needs '{}'", where, key));
            return std::nullopt;
        }
        return numberOf(*n, fmt::format("'{}' in {}", key, where));
    }

    // A finite number (TOML's nan and inf are errors: no value reaching Csound is either).
    std::optional<double> numberOf(const toml::node& n, const std::string& what) {
        double v = 0;
        if (n.is_integer())
            v = static_cast<double>(n.as_integer()->get());
        else if (n.is_floating_point())
            v = n.as_floating_point()->get();
        else {
            error(pos(n), fmt::format("{} must be a number", what));
            return std::nullopt;
        }
        if (!std::isfinite(v)) {
            error(pos(n), fmt::format("{} must be a finite number, not {}", what, v));
            return std::nullopt;
        }
        return v;
    }

    std::optional<int> integer(const toml::table& t, const char* key, const std::string& where,
                               int lo, int hi) {
        const auto* n = t.get(key);
        if (n == nullptr) return std::nullopt;
        if (!n->is_integer()) {
            error(pos(*n), fmt::format("'{}' in {} must be a whole number", key, where));
            return std::nullopt;
        }
        const auto v = n->as_integer()->get();
        if (v < lo || v > hi) {
            error(pos(*n), fmt::format("'{}' in {} must be between {} and {}, not {}", key, where,
                                       lo, hi, v));
            return std::nullopt;
        }
        return static_cast<int>(v);
    }

    const toml::table* table(const toml::table& t, const char* key, const std::string& where) {
        const auto* n = t.get(key);
        if (n == nullptr) return nullptr;
        if (!n->is_table()) {
            error(pos(*n), fmt::format("'{}' in {} must be a table", key, where));
            return nullptr;
        }
        return n->as_table();
    }

    // The tables of an array of tables ([[key]]); an error when `key` is something else.
    std::vector<const toml::table*> arrayOfTables(const toml::table& t, const char* key) {
        std::vector<const toml::table*> out;
        const auto* n = t.get(key);
        if (n == nullptr) return out;
        if (!n->is_array_of_tables()) {
            error(pos(*n), fmt::format("'{}' must be an array of tables: [[{}]]", key, key));
            return out;
        }
        for (const auto& x : *n->as_array())
            out.push_back(x.as_table());
        return out;
    }

    // The file line of the first line of a multi-line string value.
    int firstTextLine(const toml::node& n) const {
        const auto p = pos(n);
        const int local = p.line - offset_;
        if (local <= 0 || static_cast<std::size_t>(local) > lines_.size()) return p.line;
        const auto& l = lines_[static_cast<std::size_t>(local - 1)];
        const auto col = static_cast<std::size_t>(std::max(p.column - 1, 0));
        for (const char* delim : {"'''", "\"\"\""}) {
            if (l.compare(col, 3, delim) == 0) {
                const auto rest = l.substr(col + 3);
                if (rest.find_first_not_of(" \t\r") == std::string::npos) return p.line + 1;
            }
        }
        return p.line;
    }

    // Args as a table { name = value, pN = value } or positional, [v5, v6, ...] from p5 on.
    SpecArgs args(const toml::table& t, const char* key, const std::string& where) {
        SpecArgs out;
        const auto* n = t.get(key);
        if (n == nullptr) return out;
        if (const auto* list = n->as_array()) {
            int pfield = 5;
            for (const auto& v : *list) {
                const auto name = fmt::format("p{}", pfield++);
                if (auto sv = argValue(v, name, where)) out.emplace_back(name, std::move(*sv));
            }
            return out;
        }
        const auto* a = table(t, key, where);
        if (a == nullptr) return out;
        for (const auto& [k, v] : *a)
            if (auto sv = argValue(v, std::string(k.str()), where))
                out.emplace_back(std::string(k.str()), std::move(*sv));
        return out;
    }

    // A number, a boolean (1 or 0), a string, "bus:NAME" or "table:NAME".
    std::optional<SpecValue> argValue(const toml::node& v, const std::string& name,
                                      const std::string& where) {
        SpecValue sv;
        sv.pos = pos(v);
        if (v.is_number()) {
            const auto d = numberOf(v, fmt::format("arg '{}' in {}", name, where));
            if (!d) return std::nullopt;
            sv.value = *d;
        } else if (v.is_boolean()) {
            sv.value = v.as_boolean()->get() ? 1.0 : 0.0;
        } else if (v.is_string()) {
            const auto s = v.as_string()->get();
            if (s.rfind("bus:", 0) == 0) sv.bus = s.substr(4);
            if (s.rfind("table:", 0) == 0) sv.table = s.substr(6);
            sv.value = s;
        } else {
            error(pos(v), fmt::format("arg '{}' in {} must be a number, a string, \"bus:NAME\" or "
                                      "\"table:NAME\"",
                                      name, where));
            return std::nullopt;
        }
        return sv;
    }

    // An optional boolean key.
    std::optional<bool> boolean(const toml::table& t, const char* key, const std::string& where) {
        const auto* n = t.get(key);
        if (n == nullptr) return std::nullopt;
        if (!n->is_boolean()) {
            error(pos(*n), fmt::format("'{}' in {} must be true or false", key, where));
            return std::nullopt;
        }
        return n->as_boolean()->get();
    }

    // An optional array of finite numbers.
    std::vector<double> numbers(const toml::table& t, const char* key, const std::string& where) {
        std::vector<double> out;
        const auto* n = t.get(key);
        if (n == nullptr) return out;
        if (!n->is_array()) {
            error(pos(*n), fmt::format("'{}' in {} must be an array of numbers", key, where));
            return out;
        }
        for (const auto& x : *n->as_array())
            if (const auto v = numberOf(x, fmt::format("each of '{}' in {}", key, where)))
                out.push_back(*v);
        return out;
    }

    // Moves this reader's errors to the end of `out`.
    void takeErrors(std::vector<Diagnostic>& out) {
        out.insert(out.end(), errors_.begin(), errors_.end());
        errors_.clear();
    }

private:
    std::string file_;
    int offset_ = 0; // lines before the text this reader reads
    std::vector<std::string> lines_;
    std::vector<Diagnostic> errors_;
};

// The file's table, or a SessionFileError naming the syntax error's line and column
// (`text` may be a part of the file starting on line `firstLine`).
inline toml::table parseToml(std::string_view text, const std::string& path, int firstLine = 1) {
    std::string guarded;
    try {
        guarded = guardTomlText(std::string(text), path);
    } catch (const SessionFileError& e) { // its lines count from the part's first
        auto ds = e.diagnostics();
        for (auto& d : ds)
            d.pos.line += firstLine - 1;
        throw SessionFileError(std::move(ds));
    }
    try {
        return toml::parse(guarded, path);
    } catch (const toml::parse_error& e) {
        const auto& s = e.source();
        throw SessionFileError({{{path, static_cast<int>(s.begin.line) + firstLine - 1,
                                  static_cast<int>(s.begin.column)},
                                 fmt::format("TOML syntax error: {}", e.description())}});
    }
}

// A part of a TOML file that starts with a table header ([x] or [[x]]), or the keys
// before the first header.
struct TomlChunk {
    std::size_t begin = 0, size = 0;
    int line = 1;       // the line it starts on
    std::string header; // what the header names ("event", "table.kick"); "" before any
};

// The file cut before each table header: a line that starts with '[' outside strings and
// outside values that span lines. Each part parses on its own, so a file of any length is
// read a part at a time (toml++ keeps a whole document's tree, 15 times its text).
inline std::vector<TomlChunk> splitAtHeaders(std::string_view text) {
    std::vector<TomlChunk> chunks{{0, 0, 1, {}}};
    enum { none, basic, literal } multiline = none; // inside """ or '''
    int depth = 0;                                  // inside [ ] or { } of a value
    int line = 1;
    std::string arrayName; // the name of the last [[name]] header
    auto startsWith = [&](std::size_t at, std::string_view s) {
        return text.substr(at, s.size()) == s;
    };
    for (std::size_t i = 0; i < text.size(); ++line) {
        auto eol = text.find('\n', i);
        if (eol == std::string_view::npos) eol = text.size();
        const auto first = text.find_first_not_of(" \t", i);
        if (multiline == none && depth == 0 && first < eol && text[first] == '[') {
            auto name = text.substr(first, eol - first);
            const bool array = name.substr(0, 2) == "[[";
            name = name.substr(0, name.find(']'));
            std::string header;
            for (char c : name)
                if (c != '[' && c != ' ' && c != '\t' && c != '"' && c != '\'') header += c;
            // [x.args] after [[x]] belongs to that entry: the part goes on
            const bool sub = !array && !arrayName.empty() && header.rfind(arrayName + ".", 0) == 0;
            if (!sub) {
                chunks.back().size = i - chunks.back().begin;
                chunks.push_back({i, 0, line, header});
                arrayName = array ? header : std::string();
            }
            i = eol + 1;
            continue;
        }
        for (std::size_t k = i; k < eol; ++k) {
            const char c = text[k];
            if (multiline == basic) {
                if (c == '\\')
                    ++k;
                else if (startsWith(k, "\"\"\""))
                    multiline = none, k += 2;
                continue;
            }
            if (multiline == literal) {
                if (startsWith(k, "'''")) multiline = none, k += 2;
                continue;
            }
            if (c == '#') break;
            if (startsWith(k, "\"\"\"")) {
                multiline = basic, k += 2;
            } else if (startsWith(k, "'''")) {
                multiline = literal, k += 2;
            } else if (c == '"' || c == '\'') { // a string on this line
                for (++k; k < eol && text[k] != c; ++k)
                    if (c == '"' && text[k] == '\\') ++k;
            } else if (c == '[' || c == '{') {
                ++depth;
            } else if ((c == ']' || c == '}') && depth > 0) {
                --depth;
            }
        }
        i = eol + 1;
    }
    chunks.back().size = text.size() - chunks.back().begin;
    return chunks;
}

// Errors for args that the instr does not have, of the wrong type, or naming no bus or
// table (the session's, or one of `moreTables`, a score's own).
void checkArgs(Reader& r, const SessionSpec& spec, const std::string& instrName,
               const SpecArgs& args, const std::string& where,
               const std::vector<TableSpec>& moreTables = {});

// [table.NAME] tables of a session or score file; files resolve against `dir`.
void parseTables(Reader& r, const toml::table& root, const std::string& dir,
                 std::vector<TableSpec>& tables);

} // namespace spinout::detail
