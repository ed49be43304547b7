// The score file parser: one function per kind of entry ([[event]], [[set]],
// [[automate]]), checked against the session's instrs and ports.
#include "spinout/score_file.hpp"

#include "toml_reader.hpp"

#include <toml++/toml.h>

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <unordered_map>

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

namespace {

using detail::Reader;

// What the entries of one score are checked against.
struct ScoreContext {
    Reader& r;
    const SessionSpec& session;
    Score& score;
    std::unordered_map<std::string, std::size_t> ids = {}; // event id -> index in score.events

    const Instr* instr(const std::string& name) const {
        const auto* is = session.instr(name);
        return is == nullptr ? nullptr : is->instr.get();
    }
    // The instr of the event with this id, or an error; the event must have started by `time`.
    const Instr* eventInstr(const std::string& id, double time, const SourcePos& pos,
                            const std::string& where) {
        if (auto it = ids.find(id); it != ids.end()) {
            const auto& e = score.events[it->second];
            if (time < e.time)
                r.error(pos, fmt::format("{} at {} s comes before event '{}' starts ({} s)", where,
                                         time, id, e.time));
            return instr(e.instr);
        }
        std::vector<std::string> known;
        for (const auto& [name, index] : ids)
            known.push_back(name);
        std::sort(known.begin(), known.end());
        r.error(pos, fmt::format("{}: no event with id '{}'{}", where, id, didYouMean(id, known)));
        return nullptr;
    }
    void checkControl(const Instr& in, const std::string& param, const SourcePos& pos,
                      const std::string& where) {
        const auto* a = in.arg(param);
        if (a == nullptr) {
            std::vector<std::string> names;
            for (const auto& x : in.controls())
                names.push_back(x.name);
            r.error(pos, fmt::format("{}: instr '{}' has no arg '{}'{}", where, in.name(), param,
                                     didYouMean(param, names)));
        } else if (!a->isControl()) {
            r.error(pos,
                    fmt::format("{}: '{}' is fixed at init; only k-args change", where, param));
        }
    }
};

void parseEvents(ScoreContext& c, const toml::table& root) {
    auto& r = c.r;
    for (const auto* t : r.arrayOfTables(root, "event")) {
        const std::string where = "[[event]]";
        r.checkKeys(*t, {"id", "instr", "time", "dur", "priority", "args"}, where);
        ScoreEvent e;
        e.pos = r.pos(*t);
        e.id = r.string(*t, "id", where).value_or("");
        e.instr = r.string(*t, "instr", where, true).value_or("");
        e.time = r.number(*t, "time", where).value_or(0);
        e.dur = r.number(*t, "dur", where).value_or(-1);
        if (e.time < 0) r.error(e.pos, "[[event]]: time must be 0 or more");
        if (e.dur == 0 || (e.dur < 0 && e.dur != -1))
            r.error(e.pos, "[[event]]: dur must be positive or -1 (until the end)");
        e.priority = r.integer(*t, "priority", where, 1, 10);
        if (!e.instr.empty() && c.instr(e.instr) == nullptr) {
            std::vector<std::string> names;
            for (const auto& i : c.session.instrs)
                names.push_back(i.name);
            r.error(r.pos(*t->get("instr")), fmt::format("[[event]]: unknown instr '{}'{}", e.instr,
                                                         didYouMean(e.instr, names)));
        }
        e.args = r.args(*t, "args", where);
        detail::checkArgs(r, c.session, e.instr, e.args, where); // names, types, buses
        if (!e.id.empty() && !c.ids.emplace(e.id, c.score.events.size()).second)
            r.error(e.pos, fmt::format("[[event]]: duplicate id '{}'", e.id));
        c.score.events.push_back(std::move(e));
    }
}

void parseSets(ScoreContext& c, const toml::table& root) {
    auto& r = c.r;
    for (const auto* t : r.arrayOfTables(root, "set")) {
        const std::string where = "[[set]]";
        r.checkKeys(*t, {"event", "time", "args"}, where);
        ScoreSet s;
        s.pos = r.pos(*t);
        s.event = r.string(*t, "event", where, true).value_or("");
        s.time = r.number(*t, "time", where).value_or(0);
        if (s.time < 0) r.error(s.pos, "[[set]]: time must be 0 or more");
        const auto* instr = s.event.empty() ? nullptr : c.eventInstr(s.event, s.time, s.pos, where);
        const auto* args = t->get("args");
        if (args == nullptr || !args->is_table()) {
            r.error(s.pos, "[[set]] needs args = { karg = value, ... }");
            c.score.sets.push_back(std::move(s));
            continue;
        }
        for (const auto& [ak, av] : *args->as_table()) {
            const std::string name(ak.str());
            const auto value = r.numberOf(av, fmt::format("[[set]]: the value of '{}'", name));
            if (!value) continue;
            if (instr != nullptr) c.checkControl(*instr, name, r.pos(av), where);
            s.args.emplace_back(name, *value);
        }
        c.score.sets.push_back(std::move(s));
    }
}

void parseAutomations(ScoreContext& c, const toml::table& root) {
    auto& r = c.r;
    for (const auto* t : r.arrayOfTables(root, "automate")) {
        const std::string where = "[[automate]]";
        r.checkKeys(*t, {"event", "port", "param", "pairs", "time", "mode"}, where);
        ScoreAutomation a;
        a.pos = r.pos(*t);
        a.event = r.string(*t, "event", where).value_or("");
        a.port = r.string(*t, "port", where).value_or("");
        a.param = r.string(*t, "param", where).value_or("");
        a.time = r.number(*t, "time", where).value_or(0);
        if (a.time < 0) r.error(a.pos, "[[automate]]: time must be 0 or more");
        const auto mode = r.string(*t, "mode", where).value_or("linear");
        if (const auto m = AutomationMode::parse(mode))
            a.mode = *m;
        else
            r.error(r.pos(*t->get("mode")),
                    fmt::format("[[automate]]: unknown mode '{}' (linear, cos, expon(X) with X "
                                "above 0, smooth)",
                                mode));
        if (a.event.empty() == a.port.empty()) {
            r.error(a.pos, "[[automate]] names either an event or a port");
        } else if (!a.event.empty()) {
            if (a.param.empty()) r.error(a.pos, "[[automate]] of an event needs 'param'");
            const auto* instr = c.eventInstr(a.event, a.time, a.pos, where);
            if (instr != nullptr && !a.param.empty()) c.checkControl(*instr, a.param, a.pos, where);
        } else if (c.session.port(a.port) == nullptr) {
            std::vector<std::string> symbols;
            for (const auto& p : c.session.ports)
                symbols.push_back(p.symbol);
            r.error(a.pos, fmt::format("[[automate]]: no port '{}'{}", a.port,
                                       didYouMean(a.port, symbols)));
        }
        if (const auto* p = t->get("pairs"); p != nullptr && p->is_array()) {
            for (const auto& x : *p->as_array())
                if (const auto v = r.numberOf(x, "[[automate]]: each of pairs"))
                    a.pairs.push_back(*v);
        }
        if (a.pairs.size() < 2 || a.pairs.size() % 2 != 0)
            r.error(a.pos, "[[automate]]: pairs must be time, value, time, value, ...");
        for (std::size_t i = 2; i < a.pairs.size(); i += 2)
            if (a.pairs[i] < a.pairs[i - 2])
                r.error(a.pos, "[[automate]]: times must not decrease");
        if (!a.pairs.empty() && a.pairs[0] < 0)
            r.error(a.pos, "[[automate]]: times must be 0 or more");
        c.score.automations.push_back(std::move(a));
    }
}

} // namespace

Score parseScoreText(const std::string& text, const std::string& path, const SessionSpec& session) {
    Reader r(path, text);
    const toml::table root = detail::parseToml(text, path);
    r.checkKeys(root, {"event", "set", "automate"}, "the score");
    Score score;
    ScoreContext context{r, session, score};
    parseEvents(context, root);
    parseSets(context, root);
    parseAutomations(context, root);
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
