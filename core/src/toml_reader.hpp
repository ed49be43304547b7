// Reading a TOML file of spinout's (a session or a score), collecting every error
// with its file, line and column. Internal to the core: both parsers use it.
#pragma once

#include "spinout/session_file.hpp"
#include "toml_guard.hpp"

#include <toml++/toml.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace spinout::detail {

// Reads one file, collecting every error instead of stopping at the first.
class Reader {
public:
    Reader(std::string file, const std::string& text) : file_(std::move(file)) {
        std::istringstream in(text);
        std::string l;
        while (std::getline(in, l))
            lines_.push_back(l);
    }

    SourcePos pos(const toml::node& n) const {
        const auto& s = n.source();
        return {file_, static_cast<int>(s.begin.line), static_cast<int>(s.begin.column)};
    }
    SourcePos pos(const toml::key& k) const {
        const auto& s = k.source();
        return {file_, static_cast<int>(s.begin.line), static_cast<int>(s.begin.column)};
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
            const auto hint = closestName(key, allowed);
            error(pos(k),
                  fmt::format("unknown key '{}' in {}{}", key, where,
                              hint.empty() ? fmt::format(" (keys: {})", fmt::join(allowed, ", "))
                                           : fmt::format("; did you mean '{}'?", hint)));
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
        if (n->is_integer()) return static_cast<double>(n->as_integer()->get());
        if (n->is_floating_point()) return n->as_floating_point()->get();
        error(pos(*n), fmt::format("'{}' in {} must be a number", key, where));
        return std::nullopt;
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

    // The file line of the first line of a multi-line string value.
    int firstTextLine(const toml::node& n) const {
        const auto p = pos(n);
        if (p.line <= 0 || static_cast<std::size_t>(p.line) > lines_.size()) return p.line;
        const auto& l = lines_[static_cast<std::size_t>(p.line - 1)];
        const auto col = static_cast<std::size_t>(std::max(p.column - 1, 0));
        for (const char* delim : {"'''", "\"\"\""}) {
            if (l.compare(col, 3, delim) == 0) {
                const auto rest = l.substr(col + 3);
                if (rest.find_first_not_of(" \t\r") == std::string::npos) return p.line + 1;
            }
        }
        return p.line;
    }

    SpecArgs args(const toml::table& t, const char* key, const std::string& where) {
        SpecArgs out;
        const auto* a = table(t, key, where);
        if (a == nullptr) return out;
        for (const auto& [k, v] : *a) {
            SpecValue sv;
            sv.pos = pos(v);
            if (v.is_integer())
                sv.value = static_cast<double>(v.as_integer()->get());
            else if (v.is_floating_point())
                sv.value = v.as_floating_point()->get();
            else if (v.is_boolean())
                sv.value = v.as_boolean()->get() ? 1.0 : 0.0;
            else if (v.is_string()) {
                const auto s = v.as_string()->get();
                if (s.rfind("bus:", 0) == 0) sv.bus = s.substr(4);
                sv.value = s;
            } else {
                error(pos(v),
                      fmt::format("arg '{}' in {} must be a number, a string or \"bus:NAME\"",
                                  k.str(), where));
                continue;
            }
            out.emplace_back(std::string(k.str()), sv);
        }
        return out;
    }

private:
    std::string file_;
    std::vector<std::string> lines_;
    std::vector<Diagnostic> errors_;
};

// The file's table, or a SessionFileError naming the syntax error's line and column.
inline toml::table parseToml(const std::string& text, const std::string& path) {
    try {
        return toml::parse(guardTomlText(text, path), path);
    } catch (const toml::parse_error& e) {
        const auto& s = e.source();
        throw SessionFileError(
            {{{path, static_cast<int>(s.begin.line), static_cast<int>(s.begin.column)},
              fmt::format("TOML syntax error: {}", e.description())}});
    }
}

// Errors for args that the instr does not have, of the wrong type, or naming no bus.
void checkArgs(Reader& r, const SessionSpec& spec, const std::string& instrName,
               const SpecArgs& args, const std::string& where);

} // namespace spinout::detail
