#include "spinout/score_file.hpp"

#include <toml++/toml.h>

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace spinout {

namespace {

SourcePos at(const std::string& file, const toml::node& n) {
    return {file, static_cast<int>(n.source().begin.line),
            static_cast<int>(n.source().begin.column)};
}

} // namespace

double Score::end() const {
    double end = 0;
    for (const auto& e : events)
        end = std::max(end, e.time + std::max(e.dur, 0.0));
    for (const auto& s : sets)
        end = std::max(end, s.time);
    for (const auto& a : automations)
        end = std::max(end, a.time + (a.pairs.size() >= 2 ? a.pairs[a.pairs.size() - 2] : 0.0));
    return end;
}

Score parseScoreText(const std::string& text, const std::string& path, const SessionSpec& session) {
    std::vector<Diagnostic> errors;
    auto error = [&](SourcePos p, std::string m) {
        errors.push_back({std::move(p), std::move(m)});
    };
    toml::table root;
    try {
        root = toml::parse(text, path);
    } catch (const toml::parse_error& e) {
        throw SessionFileError({{{path, static_cast<int>(e.source().begin.line),
                                  static_cast<int>(e.source().begin.column)},
                                 fmt::format("TOML syntax error: {}", e.description())}});
    }
    auto checkKeys = [&](const toml::table& t, const std::vector<std::string>& allowed,
                         const std::string& where) {
        for (const auto& [k, v] : t) {
            const std::string key(k.str());
            if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
            const auto hint = closestName(key, allowed);
            error(at(path, v),
                  fmt::format("unknown key '{}' in {}{}", key, where, didYouMean(hint)));
        }
    };
    auto number = [&](const toml::table& t, const char* key, double def, const std::string& where) {
        const auto* n = t.get(key);
        if (n == nullptr) return def;
        if (n->is_integer()) return static_cast<double>(n->as_integer()->get());
        if (n->is_floating_point()) return n->as_floating_point()->get();
        error(at(path, *n), fmt::format("'{}' in {} must be a number", key, where));
        return def;
    };
    auto string = [&](const toml::table& t, const char* key, const std::string& where) {
        const auto* n = t.get(key);
        if (n == nullptr) return std::string();
        if (!n->is_string()) {
            error(at(path, *n), fmt::format("'{}' in {} must be a string", key, where));
            return std::string();
        }
        return n->as_string()->get();
    };
    auto tables = [&](const char* key) {
        std::vector<const toml::table*> out;
        const auto* n = root.get(key);
        if (n == nullptr) return out;
        if (!n->is_array_of_tables()) {
            error(at(path, *n), fmt::format("'{}' must be an array of tables: [[{}]]", key, key));
            return out;
        }
        for (const auto& x : *n->as_array())
            out.push_back(x.as_table());
        return out;
    };
    for (const auto& [k, v] : root) {
        const std::string key(k.str());
        if (key != "event" && key != "set" && key != "automate") {
            const auto hint = closestName(key, {"event", "set", "automate"});
            error(at(path, v),
                  fmt::format("unknown key '{}' in the score{}", key,
                              hint.empty() ? " (event, set, automate)"
                                           : fmt::format("; did you mean '{}'?", hint)));
        }
    }
    auto instrOf = [&](const std::string& name) -> std::optional<Instr> {
        const auto* is = session.instr(name);
        if (is == nullptr) return std::nullopt;
        return *is->instr;
    };

    Score score;
    for (const auto* t : tables("event")) {
        const std::string where = "[[event]]";
        checkKeys(*t, {"id", "instr", "time", "dur", "priority", "args"}, where);
        ScoreEvent e;
        e.pos = at(path, *t);
        e.id = string(*t, "id", where);
        e.instr = string(*t, "instr", where);
        e.time = number(*t, "time", 0, where);
        e.dur = number(*t, "dur", -1, where);
        if (e.time < 0) error(e.pos, "[[event]]: time must be 0 or more");
        if (e.dur == 0 || (e.dur < 0 && e.dur != -1))
            error(e.pos, "[[event]]: dur must be positive or -1 (until the end)");
        if (const auto* p = t->get("priority")) {
            if (!p->is_integer() || p->as_integer()->get() < 1 || p->as_integer()->get() > 10)
                error(at(path, *p), "[[event]]: priority must be a whole number from 1 to 10");
            else
                e.priority = static_cast<int>(p->as_integer()->get());
        }
        auto instr = instrOf(e.instr);
        if (!instr) {
            std::vector<std::string> names;
            for (const auto& i : session.instrs)
                names.push_back(i.name);
            const auto hint = closestName(e.instr, names);
            error(t->get("instr") ? at(path, *t->get("instr")) : e.pos,
                  fmt::format("[[event]]: unknown instr '{}'{}", e.instr, didYouMean(hint)));
        }
        if (const auto* a = t->get("args")) {
            if (!a->is_table())
                error(at(path, *a), "[[event]]: args must be a table");
            else
                for (const auto& [ak, av] : *a->as_table()) {
                    SpecValue sv;
                    sv.pos = at(path, av);
                    const std::string name(ak.str());
                    if (av.is_integer())
                        sv.value = static_cast<double>(av.as_integer()->get());
                    else if (av.is_floating_point())
                        sv.value = av.as_floating_point()->get();
                    else if (av.is_string()) {
                        sv.value = av.as_string()->get();
                        if (av.as_string()->get().rfind("bus:", 0) == 0) {
                            sv.bus = av.as_string()->get().substr(4);
                            if (session.bus(sv.bus) == nullptr)
                                error(sv.pos, fmt::format("[[event]]: no bus named '{}'", sv.bus));
                        }
                    } else {
                        error(
                            sv.pos,
                            fmt::format("[[event]]: arg '{}' must be a number or a string", name));
                        continue;
                    }
                    if (instr) {
                        const auto* arg = instr->arg(name);
                        if (arg == nullptr) {
                            std::vector<std::string> names;
                            for (const auto& x : instr->args())
                                names.push_back(x.name);
                            const auto hint = closestName(name, names);
                            error(sv.pos, fmt::format("[[event]]: instr '{}' has no arg '{}'{}",
                                                      e.instr, name, didYouMean(hint)));
                        } else if (sv.bus.empty() &&
                                   arg->isString() !=
                                       std::holds_alternative<std::string>(sv.value)) {
                            error(sv.pos, fmt::format("[[event]]: arg '{}' takes a {}", name,
                                                      arg->isString() ? "string" : "number"));
                        }
                    }
                    e.args.emplace_back(name, sv);
                }
        }
        if (!e.id.empty() && std::any_of(score.events.begin(), score.events.end(),
                                         [&](const ScoreEvent& x) { return x.id == e.id; }))
            error(e.pos, fmt::format("[[event]]: duplicate id '{}'", e.id));
        score.events.push_back(std::move(e));
    }
    auto eventInstr = [&](const std::string& id, SourcePos pos,
                          const std::string& where) -> std::optional<Instr> {
        for (const auto& e : score.events)
            if (e.id == id) return instrOf(e.instr);
        error(pos, fmt::format("{}: no event with id '{}'", where, id));
        return std::nullopt;
    };
    auto checkControl = [&](const Instr& instr, const std::string& param, SourcePos pos,
                            const std::string& where) {
        const auto* a = instr.arg(param);
        if (a == nullptr)
            error(pos, fmt::format("{}: instr '{}' has no arg '{}'", where, instr.name(), param));
        else if (!a->isControl())
            error(pos, fmt::format("{}: '{}' is fixed at init; only k-args change", where, param));
    };
    for (const auto* t : tables("set")) {
        const std::string where = "[[set]]";
        checkKeys(*t, {"event", "time", "args"}, where);
        ScoreSet s;
        s.pos = at(path, *t);
        s.event = string(*t, "event", where);
        s.time = number(*t, "time", 0, where);
        auto instr = eventInstr(s.event, s.pos, where);
        if (const auto* a = t->get("args"); a != nullptr && a->is_table()) {
            for (const auto& [ak, av] : *a->as_table()) {
                if (!av.is_number()) {
                    error(at(path, av), "[[set]]: values must be numbers");
                    continue;
                }
                const std::string name(ak.str());
                if (instr) checkControl(*instr, name, at(path, av), where);
                s.args.emplace_back(name, av.is_integer()
                                              ? static_cast<double>(av.as_integer()->get())
                                              : av.as_floating_point()->get());
            }
        } else {
            error(s.pos, "[[set]] needs args = { karg = value, ... }");
        }
        score.sets.push_back(std::move(s));
    }
    for (const auto* t : tables("automate")) {
        const std::string where = "[[automate]]";
        checkKeys(*t, {"event", "port", "param", "pairs", "time", "mode"}, where);
        ScoreAutomation a;
        a.pos = at(path, *t);
        a.event = string(*t, "event", where);
        a.port = string(*t, "port", where);
        a.param = string(*t, "param", where);
        a.time = number(*t, "time", 0, where);
        try {
            a.mode = AutomationMode::parse(
                string(*t, "mode", where).empty() ? "linear" : string(*t, "mode", where));
        } catch (const SessionError& e) {
            error(t->get("mode") ? at(path, *t->get("mode")) : a.pos, e.what());
        }
        if (a.event.empty() == a.port.empty())
            error(a.pos, "[[automate]] names either an event or a port");
        else if (!a.event.empty()) {
            if (auto instr = eventInstr(a.event, a.pos, where))
                checkControl(*instr, a.param, a.pos, where);
        } else if (session.port(a.port) == nullptr) {
            error(a.pos, fmt::format("[[automate]]: no port '{}'", a.port));
        }
        if (const auto* p = t->get("pairs"); p != nullptr && p->is_array()) {
            for (const auto& x : *p->as_array()) {
                if (x.is_integer())
                    a.pairs.push_back(static_cast<double>(x.as_integer()->get()));
                else if (x.is_floating_point())
                    a.pairs.push_back(x.as_floating_point()->get());
                else
                    error(at(path, x), "[[automate]]: pairs must be numbers");
            }
        }
        if (a.pairs.size() < 2 || a.pairs.size() % 2 != 0)
            error(a.pos, "[[automate]]: pairs must be time, value, time, value, ...");
        for (std::size_t i = 2; i < a.pairs.size(); i += 2)
            if (a.pairs[i] < a.pairs[i - 2]) error(a.pos, "[[automate]]: times must not decrease");
        score.automations.push_back(std::move(a));
    }
    if (!errors.empty()) throw SessionFileError(errors);
    return score;
}

Score parseScoreFile(const std::string& path, const SessionSpec& session) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw SessionFileError({{{path, 0, 0}, "cannot read the score file"}});
    std::ostringstream ss;
    ss << in.rdbuf();
    return parseScoreText(ss.str(), path, session);
}

} // namespace spinout
