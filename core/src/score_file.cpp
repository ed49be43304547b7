#include "spinout/score_file.hpp"

#include "toml_reader.hpp"

#include <toml++/toml.h>

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace spinout {

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
    detail::Reader r(path, text);
    const toml::table root = detail::parseToml(text, path);
    auto number = [&](const toml::table& t, const char* key, double def, const std::string& where) {
        return r.number(t, key, where).value_or(def);
    };
    auto string = [&](const toml::table& t, const char* key, const std::string& where) {
        return r.string(t, key, where).value_or("");
    };
    auto tables = [&](const char* key) {
        std::vector<const toml::table*> out;
        const auto* n = root.get(key);
        if (n == nullptr) return out;
        if (!n->is_array_of_tables()) {
            r.error(r.pos(*n), fmt::format("'{}' must be an array of tables: [[{}]]", key, key));
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
            r.error(r.pos(v),
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
        r.checkKeys(*t, {"id", "instr", "time", "dur", "priority", "args"}, where);
        ScoreEvent e;
        e.pos = r.pos(*t);
        e.id = string(*t, "id", where);
        e.instr = string(*t, "instr", where);
        e.time = number(*t, "time", 0, where);
        e.dur = number(*t, "dur", -1, where);
        if (e.time < 0) r.error(e.pos, "[[event]]: time must be 0 or more");
        if (e.dur == 0 || (e.dur < 0 && e.dur != -1))
            r.error(e.pos, "[[event]]: dur must be positive or -1 (until the end)");
        if (const auto* p = t->get("priority")) {
            if (!p->is_integer() || p->as_integer()->get() < 1 || p->as_integer()->get() > 10)
                r.error(r.pos(*p), "[[event]]: priority must be a whole number from 1 to 10");
            else
                e.priority = static_cast<int>(p->as_integer()->get());
        }
        auto instr = instrOf(e.instr);
        if (!instr) {
            std::vector<std::string> names;
            for (const auto& i : session.instrs)
                names.push_back(i.name);
            const auto hint = closestName(e.instr, names);
            r.error(t->get("instr") ? r.pos(*t->get("instr")) : e.pos,
                    fmt::format("[[event]]: unknown instr '{}'{}", e.instr, didYouMean(hint)));
        }
        if (const auto* a = t->get("args")) {
            if (!a->is_table())
                r.error(r.pos(*a), "[[event]]: args must be a table");
            else
                for (const auto& [ak, av] : *a->as_table()) {
                    SpecValue sv;
                    sv.pos = r.pos(av);
                    const std::string name(ak.str());
                    if (av.is_integer())
                        sv.value = static_cast<double>(av.as_integer()->get());
                    else if (av.is_floating_point())
                        sv.value = av.as_floating_point()->get();
                    else if (av.is_string()) {
                        sv.value = av.as_string()->get();
                        if (av.as_string()->get().rfind("bus:", 0) == 0)
                            sv.bus = av.as_string()->get().substr(4);
                    } else {
                        r.error(
                            sv.pos,
                            fmt::format("[[event]]: arg '{}' must be a number or a string", name));
                        continue;
                    }
                    e.args.emplace_back(name, sv);
                }
        }
        detail::checkArgs(r, session, e.instr, e.args, where); // names, types, buses
        if (!e.id.empty() && std::any_of(score.events.begin(), score.events.end(),
                                         [&](const ScoreEvent& x) { return x.id == e.id; }))
            r.error(e.pos, fmt::format("[[event]]: duplicate id '{}'", e.id));
        score.events.push_back(std::move(e));
    }
    auto eventInstr = [&](const std::string& id, SourcePos pos,
                          const std::string& where) -> std::optional<Instr> {
        for (const auto& e : score.events)
            if (e.id == id) return instrOf(e.instr);
        r.error(pos, fmt::format("{}: no event with id '{}'", where, id));
        return std::nullopt;
    };
    auto checkControl = [&](const Instr& instr, const std::string& param, SourcePos pos,
                            const std::string& where) {
        const auto* a = instr.arg(param);
        if (a == nullptr)
            r.error(pos, fmt::format("{}: instr '{}' has no arg '{}'", where, instr.name(), param));
        else if (!a->isControl())
            r.error(pos,
                    fmt::format("{}: '{}' is fixed at init; only k-args change", where, param));
    };
    for (const auto* t : tables("set")) {
        const std::string where = "[[set]]";
        r.checkKeys(*t, {"event", "time", "args"}, where);
        ScoreSet s;
        s.pos = r.pos(*t);
        s.event = string(*t, "event", where);
        s.time = number(*t, "time", 0, where);
        auto instr = eventInstr(s.event, s.pos, where);
        if (const auto* a = t->get("args"); a != nullptr && a->is_table()) {
            for (const auto& [ak, av] : *a->as_table()) {
                if (!av.is_number()) {
                    r.error(r.pos(av), "[[set]]: values must be numbers");
                    continue;
                }
                const std::string name(ak.str());
                if (instr) checkControl(*instr, name, r.pos(av), where);
                s.args.emplace_back(name, av.is_integer()
                                              ? static_cast<double>(av.as_integer()->get())
                                              : av.as_floating_point()->get());
            }
        } else {
            r.error(s.pos, "[[set]] needs args = { karg = value, ... }");
        }
        score.sets.push_back(std::move(s));
    }
    for (const auto* t : tables("automate")) {
        const std::string where = "[[automate]]";
        r.checkKeys(*t, {"event", "port", "param", "pairs", "time", "mode"}, where);
        ScoreAutomation a;
        a.pos = r.pos(*t);
        a.event = string(*t, "event", where);
        a.port = string(*t, "port", where);
        a.param = string(*t, "param", where);
        a.time = number(*t, "time", 0, where);
        try {
            const auto mode = string(*t, "mode", where);
            a.mode = AutomationMode::parse(mode.empty() ? "linear" : mode);
        } catch (const SessionError& e) {
            r.error(t->get("mode") ? r.pos(*t->get("mode")) : a.pos, e.what());
        }
        if (a.event.empty() == a.port.empty())
            r.error(a.pos, "[[automate]] names either an event or a port");
        else if (!a.event.empty()) {
            if (auto instr = eventInstr(a.event, a.pos, where))
                checkControl(*instr, a.param, a.pos, where);
        } else if (session.port(a.port) == nullptr) {
            r.error(a.pos, fmt::format("[[automate]]: no port '{}'", a.port));
        }
        if (const auto* p = t->get("pairs"); p != nullptr && p->is_array()) {
            for (const auto& x : *p->as_array()) {
                if (x.is_integer())
                    a.pairs.push_back(static_cast<double>(x.as_integer()->get()));
                else if (x.is_floating_point())
                    a.pairs.push_back(x.as_floating_point()->get());
                else
                    r.error(r.pos(x), "[[automate]]: pairs must be numbers");
            }
        }
        if (a.pairs.size() < 2 || a.pairs.size() % 2 != 0)
            r.error(a.pos, "[[automate]]: pairs must be time, value, time, value, ...");
        for (std::size_t i = 2; i < a.pairs.size(); i += 2)
            if (a.pairs[i] < a.pairs[i - 2])
                r.error(a.pos, "[[automate]]: times must not decrease");
        score.automations.push_back(std::move(a));
    }
    if (r.failed()) throw SessionFileError(r.errors());
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
