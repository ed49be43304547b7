// The score file parser. The text is cut at its table headers and read a part at a
// time: [table.NAME] first, then [[event]] and [[sample]] (they name the ids), then
// [[set]], [[automate]] and [[unsched]], each entry checked against the session's instrs,
// ports and buses. What stays is the text and an index; Score::event() and its siblings
// read an entry again when it plays.
#include "spinout/score_file.hpp"

#include "spinout/sample_player.hpp"
#include "toml_reader.hpp"

#include <toml++/toml.h>

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

namespace spinout {

using detail::Reader;

// Reads the entries of one part of a score, checked; the Score's state (ids, tables)
// is what they are checked against.
struct ScoreReader {
    Reader& r;
    const SessionSpec& session;
    const Score& score;

    const Instr* instr(const std::string& name) const {
        const auto* is = session.instr(name);
        return is == nullptr ? nullptr : is->instr.get();
    }
    // The instr of the event (or sample) with this id, or an error; it must have started by
    // `time`.
    const Instr* eventInstr(const std::string& id, double time, const SourcePos& pos,
                            const std::string& where) {
        if (auto it = score.ids_.find(id); it != score.ids_.end()) {
            if (time < it->second.time)
                r.error(pos, fmt::format("{} at {} s comes before event '{}' starts ({} s)", where,
                                         time, id, it->second.time));
            return it->second.instr;
        }
        std::vector<std::string> known;
        for (const auto& [name, started] : score.ids_)
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
        for (const auto& t : score.tables_)
            if (t.name == name) return &t;
        return session.table(name);
    }
    std::vector<std::string> tables() const {
        std::vector<std::string> names;
        for (const auto& t : session.tables)
            names.push_back(t.name);
        for (const auto& t : score.tables_)
            names.push_back(t.name);
        return names;
    }
    double time(const toml::table& t, const std::string& where) {
        return seconds(t, "time", where, 0).value_or(0);
    }
    // Seconds from 0 to kMaxSeconds (times past that do not fit a frame count).
    std::optional<double> seconds(const toml::table& t, const char* key, const std::string& where,
                                  std::optional<double> otherwise) {
        const auto v = r.number(t, key, where);
        if (!v) return otherwise;
        if (*v < 0 || *v > kMaxSeconds) {
            r.error(r.pos(*t.get(key)), fmt::format("{}: {} must be from 0 to {} s, not {}", where,
                                                    key, kMaxSeconds, *v));
            return otherwise;
        }
        return v;
    }

    ScoreEvent event(const toml::table& t) {
        const std::string where = "[[event]]";
        r.checkKeys(t, {"id", "instr", "time", "dur", "priority", "args"}, where);
        ScoreEvent e;
        e.pos = r.pos(t);
        e.id = r.string(t, "id", where).value_or("");
        e.instr = r.string(t, "instr", where, true).value_or("");
        e.time = time(t, where);
        e.dur = r.number(t, "dur", where).value_or(-1);
        if (e.dur > kMaxSeconds)
            r.error(e.pos, fmt::format("[[event]]: dur must be at most {} s", kMaxSeconds));
        else if (e.dur == 0 || (e.dur < 0 && e.dur != -1))
            r.error(e.pos, "[[event]]: dur must be positive or -1 (until the end)");
        e.priority = r.integer(t, "priority", where, 1, 10);
        if (!e.instr.empty() && instr(e.instr) == nullptr) {
            std::vector<std::string> names;
            for (const auto& i : session.instrs)
                names.push_back(i.name);
            r.error(r.pos(*t.get("instr")), fmt::format("[[event]]: unknown instr '{}'{}", e.instr,
                                                        didYouMean(e.instr, names)));
        }
        e.args = r.args(t, "args", where);
        detail::checkArgs(r, session, e.instr, e.args, where, score.tables_);
        return e;
    }

    ScoreSample sample(const toml::table& t) {
        const std::string where = "[[sample]]";
        r.checkKeys(t,
                    {"id", "table", "time", "dur", "chan", "gain", "speed", "pan", "skip", "loop"},
                    where);
        ScoreSample s;
        s.pos = r.pos(t);
        s.id = r.string(t, "id", where).value_or("");
        s.table = r.string(t, "table", where, true).value_or("");
        s.time = time(t, where);
        s.dur = r.number(t, "dur", where).value_or(0);
        if (s.dur > kMaxSeconds)
            r.error(s.pos, fmt::format("[[sample]]: dur must be at most {} s", kMaxSeconds));
        s.chan = r.integer(t, "chan", where, 1, 64).value_or(1);
        s.gain = r.number(t, "gain", where).value_or(1);
        s.speed = r.number(t, "speed", where).value_or(1);
        s.pan = r.number(t, "pan", where).value_or(-1);
        s.skip = r.number(t, "skip", where).value_or(0);
        s.loop = r.boolean(t, "loop", where).value_or(false);
        if (s.dur < 0 && s.dur != -1)
            r.error(s.pos,
                    "[[sample]]: dur must be positive, 0 (to its end) or -1 (until the end)");
        if (!(s.speed > 0)) r.error(s.pos, "[[sample]]: speed must be above 0");
        if (s.chan > session.audioOutputs)
            r.error(s.pos,
                    fmt::format("[[sample]]: chan {} is past the session's {} output{}", s.chan,
                                session.audioOutputs, session.audioOutputs == 1 ? "" : "s"));
        if (s.skip < 0) r.error(s.pos, "[[sample]]: skip must be 0 or more");
        if (!(s.pan == -1 || (s.pan >= 0 && s.pan <= 1)))
            r.error(s.pos, "[[sample]]: pan is 0 (left) to 1 (right), or -1 (chan alone)");
        const auto* found = table(s.table);
        if (!s.table.empty() && found == nullptr)
            r.error(r.pos(*t.get("table")), fmt::format("[[sample]]: no table named '{}'{}",
                                                        s.table, didYouMean(s.table, tables())));
        else if (found != nullptr && found->source != TableSpec::fromFile)
            r.error(r.pos(*t.get("table")),
                    fmt::format("[[sample]]: table '{}' is not read from a sound file", s.table));
        return s;
    }

    ScoreSet set(const toml::table& t) {
        const std::string where = "[[set]]";
        r.checkKeys(t, {"event", "time", "args"}, where);
        ScoreSet s;
        s.pos = r.pos(t);
        s.event = r.string(t, "event", where, true).value_or("");
        s.time = time(t, where);
        const auto* in = s.event.empty() ? nullptr : eventInstr(s.event, s.time, s.pos, where);
        const auto* args = t.get("args");
        if (args == nullptr || !args->is_table()) {
            r.error(s.pos, "[[set]] needs args = { karg = value, ... }");
            return s;
        }
        for (const auto& [ak, av] : *args->as_table()) {
            const std::string name(ak.str());
            const auto value = r.numberOf(av, fmt::format("[[set]]: the value of '{}'", name));
            if (!value) continue;
            if (in != nullptr) checkControl(*in, name, r.pos(av), where);
            s.args.emplace_back(name, *value);
        }
        return s;
    }

    ScoreAutomation automation(const toml::table& t) {
        const std::string where = "[[automate]]";
        r.checkKeys(t, {"event", "port", "bus", "param", "pairs", "time", "mode", "overtake"},
                    where);
        ScoreAutomation a;
        a.pos = r.pos(t);
        a.event = r.string(t, "event", where).value_or("");
        a.port = r.string(t, "port", where).value_or("");
        a.bus = r.string(t, "bus", where).value_or("");
        a.param = r.string(t, "param", where).value_or("");
        a.time = time(t, where);
        a.overtake = r.boolean(t, "overtake", where).value_or(false);
        const auto mode = r.string(t, "mode", where).value_or("linear");
        if (const auto m = AutomationMode::parse(mode))
            a.mode = *m;
        else
            r.error(r.pos(*t.get("mode")),
                    fmt::format("[[automate]]: unknown mode '{}' (linear, cos, expon(X) with X "
                                "above 0, smooth)",
                                mode));
        const int targets =
            (a.event.empty() ? 0 : 1) + (a.port.empty() ? 0 : 1) + (a.bus.empty() ? 0 : 1);
        if (targets != 1) {
            r.error(a.pos, "[[automate]] names one of: an event (with param), a port, a bus");
        } else if (!a.event.empty()) {
            if (a.param.empty()) r.error(a.pos, "[[automate]] of an event needs 'param'");
            const auto* in = eventInstr(a.event, a.time, a.pos, where);
            if (in != nullptr && !a.param.empty()) checkControl(*in, a.param, a.pos, where);
        } else if (!a.port.empty()) {
            std::vector<std::string> symbols;
            for (const auto& p : session.ports)
                if (!p.output) symbols.push_back(p.symbol);
            const auto* port = session.port(a.port);
            if (port == nullptr || port->output)
                r.error(a.pos, fmt::format("[[automate]]: no input port '{}'{}", a.port,
                                           didYouMean(a.port, symbols)));
        } else {
            std::vector<std::string> buses;
            for (const auto& b : session.buses)
                if (b.kind == BusKind::control) buses.push_back(b.name);
            const auto* bus = session.bus(a.bus);
            if (bus == nullptr || bus->kind != BusKind::control)
                r.error(a.pos, fmt::format("[[automate]]: no control bus '{}'{}", a.bus,
                                           didYouMean(a.bus, buses)));
        }
        if (!a.param.empty() && a.event.empty())
            r.error(a.pos, "[[automate]]: 'param' goes with an event");
        a.pairs = r.numbers(t, "pairs", where);
        if (a.pairs.size() < 2 || a.pairs.size() % 2 != 0)
            r.error(a.pos, "[[automate]]: pairs must be time, value, time, value, ...");
        for (std::size_t i = 2; i < a.pairs.size(); i += 2)
            if (a.pairs[i] < a.pairs[i - 2])
                r.error(a.pos, "[[automate]]: times must not decrease");
        if (a.pairs.size() >= 2 && (a.pairs[0] < 0 || a.pairs[a.pairs.size() - 2] > kMaxSeconds))
            r.error(a.pos, fmt::format("[[automate]]: times must be from 0 to {} s", kMaxSeconds));
        return a;
    }

    ScoreUnsched unsched(const toml::table& t) {
        const std::string where = "[[unsched]]";
        r.checkKeys(t, {"event", "all", "time", "release"}, where);
        ScoreUnsched u;
        u.pos = r.pos(t);
        u.event = r.string(t, "event", where).value_or("");
        u.all = r.boolean(t, "all", where).value_or(false);
        u.time = time(t, where);
        u.release = r.boolean(t, "release", where).value_or(true);
        if (u.all == !u.event.empty())
            r.error(u.pos, "[[unsched]] names an event, or says all = true");
        else if (!u.event.empty())
            eventInstr(u.event, u.time, u.pos, where);
        return u;
    }
};

namespace {

// The TOML key of each kind of entry.
constexpr const char* kKeys[] = {"event", "sample", "set", "automate", "unsched"};

// A part of the text parsed; nothing when it has a syntax error (recorded in `errors`).
std::optional<toml::table> parsePart(const std::string& text, const ScorePart& part,
                                     const std::string& path, std::vector<Diagnostic>& errors) {
    try {
        return detail::parseToml(std::string_view(text).substr(part.begin, part.size), path,
                                 part.line);
    } catch (const SessionFileError& e) {
        errors.insert(errors.end(), e.diagnostics().begin(), e.diagnostics().end());
        return std::nullopt;
    }
}

// What an entry adds to the score's end.
double endOf(const ScoreEvent& e) {
    return e.time + std::max(e.dur, 0.0);
}
double endOf(const ScoreSample& s) {
    return s.time + std::max(s.dur, 0.0);
}
double endOf(const ScoreSet& s) {
    return s.time;
}
double endOf(const ScoreAutomation& a) {
    return a.time + (a.pairs.size() >= 2 ? a.pairs[a.pairs.size() - 2] : 0.0);
}
double endOf(const ScoreUnsched& u) {
    return u.time;
}

} // namespace

Score::Score(std::string text, std::string path, const SessionSpec& session)
    : text_(std::move(text)), path_(std::move(path)), session_(&session) {
    std::vector<Diagnostic> errors;
    auto chunks = detail::splitAtHeaders(text_);
    // Which parts each pass reads: a header says what its part holds; a part whose header
    // says something else (or nothing) is read in every pass, where its keys are checked.
    enum Pass { tables, starts, changes, passes };
    auto passOf = [](const std::string& header) -> int {
        if (header.rfind("table", 0) == 0) return tables;
        if (header == "event" || header == "sample") return starts;
        if (header == "set" || header == "automate" || header == "unsched") return changes;
        return -1;
    };
    std::vector<std::int8_t> passOfPart;
    parts_.reserve(chunks.size());
    passOfPart.reserve(chunks.size());
    for (const auto& c : chunks) {
        parts_.push_back({c.begin, c.size, c.line});
        passOfPart.push_back(static_cast<std::int8_t>(passOf(c.header)));
    }
    std::vector<detail::TomlChunk>().swap(chunks); // what is left of them is parts_
    const auto dir = std::filesystem::absolute(std::filesystem::path(path_)).parent_path().string();
    for (int pass = tables; pass < passes; ++pass) {
        for (std::size_t i = 0; i < parts_.size(); ++i) {
            const int own = passOfPart[i];
            if (own != -1 && own != pass) continue;
            if (parts_[i].size == 0) continue;
            // syntax errors once, in the first pass that reads the part
            std::vector<Diagnostic> syntax;
            const auto root = parsePart(text_, parts_[i], path_, syntax);
            if (pass == (own == -1 ? tables : own))
                errors.insert(errors.end(), syntax.begin(), syntax.end());
            if (!root) continue;
            Reader r(path_, std::string_view(text_).substr(parts_[i].begin, parts_[i].size),
                     parts_[i].line);
            if (pass == tables) {
                r.checkKeys(*root, {"table", "event", "sample", "set", "automate", "unsched"},
                            "the score");
                const auto before = tables_.size();
                detail::parseTables(r, *root, dir, tables_);
                for (auto t = before; t < tables_.size(); ++t) {
                    if (session.table(tables_[t].name) != nullptr)
                        r.error(tables_[t].pos, fmt::format("[table.{}]: the session has a table "
                                                            "of that name",
                                                            tables_[t].name));
                    for (std::size_t u = 0; u < t; ++u)
                        if (tables_[u].name == tables_[t].name)
                            r.error(tables_[t].pos,
                                    fmt::format("[table.{}] is declared twice", tables_[t].name));
                }
            } else {
                ScoreReader reader{r, session, *this};
                auto addId = [&](const std::string& id, double time, const Instr* in,
                                 const SourcePos& pos, const char* where) {
                    if (!id.empty() && !ids_.emplace(id, Started{time, in}).second)
                        r.error(pos, fmt::format("{}: duplicate id '{}'", where, id));
                };
                for (int kind = 0; kind < 5; ++kind) {
                    const bool isStart = kind == ScoreEntry::event || kind == ScoreEntry::sample;
                    if (isStart != (pass == starts)) continue;
                    const auto items = r.arrayOfTables(*root, kKeys[kind]);
                    for (std::uint32_t item = 0; item < items.size(); ++item) {
                        const auto& t = *items[item];
                        ScoreEntry entry{static_cast<ScoreEntry::Kind>(kind), 0,
                                         static_cast<std::uint32_t>(i), item};
                        auto note = [&](const auto& e) {
                            entry.time = e.time;
                            end_ = std::max(end_, endOf(e));
                        };
                        switch (entry.kind) {
                        case ScoreEntry::event: {
                            const auto e = reader.event(t);
                            note(e);
                            addId(e.id, e.time, reader.instr(e.instr), e.pos, "[[event]]");
                            break;
                        }
                        case ScoreEntry::sample: {
                            const auto s = reader.sample(t);
                            note(s);
                            addId(s.id, s.time, &samplePlayer(), s.pos, "[[sample]]");
                            break;
                        }
                        case ScoreEntry::set:
                            note(reader.set(t));
                            break;
                        case ScoreEntry::automation:
                            note(reader.automation(t));
                            break;
                        case ScoreEntry::unsched:
                            note(reader.unsched(t));
                            break;
                        }
                        entries_.push_back(entry);
                    }
                }
            }
            r.takeErrors(errors);
        }
    }
    if (!errors.empty()) {
        std::stable_sort(
            errors.begin(), errors.end(),
            [](const Diagnostic& a, const Diagnostic& b) { return a.pos.line < b.pos.line; });
        throw SessionFileError(std::move(errors));
    }
    // the file's order
    std::stable_sort(entries_.begin(), entries_.end(),
                     [](const ScoreEntry& a, const ScoreEntry& b) {
                         return a.part != b.part ? a.part < b.part : a.item < b.item;
                     });
}

namespace {

// Reads an entry again from its part of the text (it was checked when the score was read).
template <class T, class F>
T readEntry(const std::string& text, const std::vector<ScorePart>& parts, const std::string& path,
            const ScoreEntry& e, const char* key, F&& read) {
    const auto& part = parts[e.part];
    std::vector<Diagnostic> errors;
    const auto root = parsePart(text, part, path, errors);
    if (!root) throw SessionFileError(std::move(errors));
    Reader r(path, std::string_view(text).substr(part.begin, part.size), part.line);
    const auto items = r.arrayOfTables(*root, key);
    return read(r, *items.at(e.item));
}

} // namespace

ScoreEvent Score::event(const ScoreEntry& e) const {
    return readEntry<ScoreEvent>(text_, parts_, path_, e, "event",
                                 [&](Reader& r, const toml::table& t) {
                                     ScoreReader reader{r, *session_, *this};
                                     return reader.event(t);
                                 });
}

ScoreSample Score::sample(const ScoreEntry& e) const {
    return readEntry<ScoreSample>(text_, parts_, path_, e, "sample",
                                  [&](Reader& r, const toml::table& t) {
                                      ScoreReader reader{r, *session_, *this};
                                      return reader.sample(t);
                                  });
}

ScoreSet Score::set(const ScoreEntry& e) const {
    return readEntry<ScoreSet>(text_, parts_, path_, e, "set",
                               [&](Reader& r, const toml::table& t) {
                                   ScoreReader reader{r, *session_, *this};
                                   return reader.set(t);
                               });
}

ScoreAutomation Score::automation(const ScoreEntry& e) const {
    return readEntry<ScoreAutomation>(text_, parts_, path_, e, "automate",
                                      [&](Reader& r, const toml::table& t) {
                                          ScoreReader reader{r, *session_, *this};
                                          return reader.automation(t);
                                      });
}

ScoreUnsched Score::unsched(const ScoreEntry& e) const {
    return readEntry<ScoreUnsched>(text_, parts_, path_, e, "unsched",
                                   [&](Reader& r, const toml::table& t) {
                                       ScoreReader reader{r, *session_, *this};
                                       return reader.unsched(t);
                                   });
}

Score parseScoreText(const std::string& text, const std::string& path, const SessionSpec& session) {
    return Score(text, path, session);
}

Score parseScoreFile(const std::string& path, const SessionSpec& session) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) throw SessionFileError({{{path, 0, 0}, "cannot read the score file"}});
    std::string text(static_cast<std::size_t>(std::max<std::streamoff>(0, in.tellg())), '\0');
    in.seekg(0);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    return Score(std::move(text), path, session);
}

} // namespace spinout
