// The score file parser: one function per kind of entry ([table.NAME], [[event]],
// [[sample]], [[set]], [[automate]], [[unsched]]), checked against the session's
// instrs, ports and buses.
#include "spinout/score_file.hpp"

#include "spinout/sample_player.hpp"
#include "toml_reader.hpp"

#include <toml++/toml.h>

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

namespace spinout {

double Score::end() const {
    double end = 0;
    for (const auto& e : events)
        end = std::max(end, e.time + std::max(e.dur, 0.0));
    for (const auto& s : samples)
        end = std::max(end, s.time + std::max(s.dur, 0.0));
    for (const auto& s : sets)
        end = std::max(end, s.time);
    for (const auto& a : automations)
        end = std::max(end, a.time + (a.pairs.size() >= 2 ? a.pairs[a.pairs.size() - 2] : 0.0));
    for (const auto& u : unscheds)
        end = std::max(end, u.time);
    return end;
}

namespace {

using detail::Reader;

// What the entries of one score are checked against.
struct ScoreContext {
    Reader& r;
    const SessionSpec& session;
    Score& score;
    struct Started {
        double time = 0;
        const Instr* instr = nullptr;
    };
    std::unordered_map<std::string, Started> ids = {}; // events and samples by id

    const Instr* instr(const std::string& name) const {
        const auto* is = session.instr(name);
        return is == nullptr ? nullptr : is->instr.get();
    }
    void addId(const std::string& id, double time, const Instr* in, const SourcePos& pos,
               const std::string& where) {
        if (!id.empty() && !ids.emplace(id, Started{time, in}).second)
            r.error(pos, fmt::format("{}: duplicate id '{}'", where, id));
    }
    // The instr of the event (or sample) with this id, or an error; it must have started by
    // `time`.
    const Instr* eventInstr(const std::string& id, double time, const SourcePos& pos,
                            const std::string& where) {
        if (auto it = ids.find(id); it != ids.end()) {
            if (time < it->second.time)
                r.error(pos, fmt::format("{} at {} s comes before event '{}' starts ({} s)", where,
                                         time, id, it->second.time));
            return it->second.instr;
        }
        std::vector<std::string> known;
        for (const auto& [name, started] : ids)
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
    // A table of the score's own or of the session's.
    const TableSpec* table(const std::string& name) const {
        for (const auto& t : score.tables)
            if (t.name == name) return &t;
        return session.table(name);
    }
    std::vector<std::string> tables() const {
        std::vector<std::string> names;
        for (const auto& t : session.tables)
            names.push_back(t.name);
        for (const auto& t : score.tables)
            names.push_back(t.name);
        return names;
    }
    double time(const toml::table& t, const std::string& where) {
        const double v = r.number(t, "time", where).value_or(0);
        if (v < 0) r.error(r.pos(*t.get("time")), fmt::format("{}: time must be 0 or more", where));
        return v;
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
        e.time = c.time(*t, where);
        e.dur = r.number(*t, "dur", where).value_or(-1);
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
        detail::checkArgs(r, c.session, e.instr, e.args, where, c.score.tables);
        c.addId(e.id, e.time, c.instr(e.instr), e.pos, where);
        c.score.events.push_back(std::move(e));
    }
}

void parseSamples(ScoreContext& c, const toml::table& root) {
    auto& r = c.r;
    for (const auto* t : r.arrayOfTables(root, "sample")) {
        const std::string where = "[[sample]]";
        r.checkKeys(*t,
                    {"id", "table", "time", "dur", "chan", "gain", "speed", "pan", "skip", "loop"},
                    where);
        ScoreSample s;
        s.pos = r.pos(*t);
        s.id = r.string(*t, "id", where).value_or("");
        s.table = r.string(*t, "table", where, true).value_or("");
        s.time = c.time(*t, where);
        s.dur = r.number(*t, "dur", where).value_or(0);
        s.chan = r.integer(*t, "chan", where, 1, 64).value_or(1);
        s.gain = r.number(*t, "gain", where).value_or(1);
        s.speed = r.number(*t, "speed", where).value_or(1);
        s.pan = r.number(*t, "pan", where).value_or(-1);
        s.skip = r.number(*t, "skip", where).value_or(0);
        s.loop = r.boolean(*t, "loop", where).value_or(false);
        if (s.dur < 0 && s.dur != -1)
            r.error(s.pos,
                    "[[sample]]: dur must be positive, 0 (to its end) or -1 (until the end)");
        if (!(s.speed > 0)) r.error(s.pos, "[[sample]]: speed must be above 0");
        if (s.skip < 0) r.error(s.pos, "[[sample]]: skip must be 0 or more");
        if (!(s.pan == -1 || (s.pan >= 0 && s.pan <= 1)))
            r.error(s.pos, "[[sample]]: pan is 0 (left) to 1 (right), or -1 (chan alone)");
        const auto* table = c.table(s.table);
        if (!s.table.empty() && table == nullptr)
            r.error(r.pos(*t->get("table")), fmt::format("[[sample]]: no table named '{}'{}",
                                                         s.table, didYouMean(s.table, c.tables())));
        else if (table != nullptr && table->source != TableSpec::fromFile)
            r.error(r.pos(*t->get("table")),
                    fmt::format("[[sample]]: table '{}' is not read from a sound file", s.table));
        c.addId(s.id, s.time, &samplePlayer(), s.pos, where);
        c.score.samples.push_back(std::move(s));
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
        s.time = c.time(*t, where);
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
        r.checkKeys(*t, {"event", "port", "bus", "param", "pairs", "time", "mode", "overtake"},
                    where);
        ScoreAutomation a;
        a.pos = r.pos(*t);
        a.event = r.string(*t, "event", where).value_or("");
        a.port = r.string(*t, "port", where).value_or("");
        a.bus = r.string(*t, "bus", where).value_or("");
        a.param = r.string(*t, "param", where).value_or("");
        a.time = c.time(*t, where);
        a.overtake = r.boolean(*t, "overtake", where).value_or(false);
        const auto mode = r.string(*t, "mode", where).value_or("linear");
        if (const auto m = AutomationMode::parse(mode))
            a.mode = *m;
        else
            r.error(r.pos(*t->get("mode")),
                    fmt::format("[[automate]]: unknown mode '{}' (linear, cos, expon(X) with X "
                                "above 0, smooth)",
                                mode));
        const int targets =
            (a.event.empty() ? 0 : 1) + (a.port.empty() ? 0 : 1) + (a.bus.empty() ? 0 : 1);
        if (targets != 1) {
            r.error(a.pos, "[[automate]] names one of: an event (with param), a port, a bus");
        } else if (!a.event.empty()) {
            if (a.param.empty()) r.error(a.pos, "[[automate]] of an event needs 'param'");
            const auto* instr = c.eventInstr(a.event, a.time, a.pos, where);
            if (instr != nullptr && !a.param.empty()) c.checkControl(*instr, a.param, a.pos, where);
        } else if (!a.port.empty()) {
            std::vector<std::string> symbols;
            for (const auto& p : c.session.ports)
                if (!p.output) symbols.push_back(p.symbol);
            const auto* port = c.session.port(a.port);
            if (port == nullptr || port->output)
                r.error(a.pos, fmt::format("[[automate]]: no input port '{}'{}", a.port,
                                           didYouMean(a.port, symbols)));
        } else {
            std::vector<std::string> buses;
            for (const auto& b : c.session.buses)
                if (b.kind == BusKind::control) buses.push_back(b.name);
            const auto* bus = c.session.bus(a.bus);
            if (bus == nullptr || bus->kind != BusKind::control)
                r.error(a.pos, fmt::format("[[automate]]: no control bus '{}'{}", a.bus,
                                           didYouMean(a.bus, buses)));
        }
        if (!a.param.empty() && a.event.empty())
            r.error(a.pos, "[[automate]]: 'param' goes with an event");
        a.pairs = r.numbers(*t, "pairs", where);
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

void parseUnscheds(ScoreContext& c, const toml::table& root) {
    auto& r = c.r;
    for (const auto* t : r.arrayOfTables(root, "unsched")) {
        const std::string where = "[[unsched]]";
        r.checkKeys(*t, {"event", "all", "time", "release"}, where);
        ScoreUnsched u;
        u.pos = r.pos(*t);
        u.event = r.string(*t, "event", where).value_or("");
        u.all = r.boolean(*t, "all", where).value_or(false);
        u.time = c.time(*t, where);
        u.release = r.boolean(*t, "release", where).value_or(true);
        if (u.all == !u.event.empty())
            r.error(u.pos, "[[unsched]] names an event, or says all = true");
        else if (!u.event.empty())
            c.eventInstr(u.event, u.time, u.pos, where);
        c.score.unscheds.push_back(std::move(u));
    }
}

} // namespace

Score parseScoreText(const std::string& text, const std::string& path, const SessionSpec& session) {
    Reader r(path, text);
    const toml::table root = detail::parseToml(text, path);
    r.checkKeys(root, {"table", "event", "sample", "set", "automate", "unsched"}, "the score");
    Score score;
    const auto dir = std::filesystem::absolute(std::filesystem::path(path)).parent_path().string();
    detail::parseTables(r, root, dir, score.tables);
    for (const auto& t : score.tables)
        if (session.table(t.name) != nullptr)
            r.error(t.pos, fmt::format("[table.{}]: the session has a table of that name", t.name));
    ScoreContext context{r, session, score};
    parseEvents(context, root);
    parseSamples(context, root);
    parseSets(context, root);
    parseAutomations(context, root);
    parseUnscheds(context, root);
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
