// The session file parser: one function per TOML table, each adding what it
// reads to the SessionSpec and every error to the Reader.
#include "spinout/session_file.hpp"
#include "spinout/text_file.hpp"

#include "plugin_meta.hpp"
#include "spinout/ports.hpp"
#include "spinout/ttl.hpp"
#include "toml_reader.hpp"

#include <toml++/toml.h>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace spinout {

using detail::checkArgs;
using detail::Reader;

namespace {

bool validSymbol(const std::string& s) {
    if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0])) != 0) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
    });
}

std::vector<std::string> namesOf(const auto& items) {
    std::vector<std::string> names;
    for (const auto& i : items)
        names.push_back(i.name);
    return names;
}

// [session].permissions = ["exec", ...]: what the session needs beyond making sound.
void parsePermissions(Reader& r, const toml::table& session, SessionSpec& spec) {
    const auto* n = session.get("permissions");
    if (n == nullptr) return;
    if (!n->is_array()) {
        r.error(r.pos(*n), "permissions must be an array of names, e.g. [\"write\"]");
        return;
    }
    std::vector<std::string> names;
    for (auto p : kAllPermissions)
        names.emplace_back(permissionName(p));
    for (const auto& x : *n->as_array()) {
        const auto name = x.is_string() ? x.as_string()->get() : std::string();
        if (const auto p = parsePermission(name))
            spec.permissions.emplace_back(*p, r.pos(x));
        else
            r.error(r.pos(x), fmt::format("unknown permission '{}'{}",
                                          x.is_string() ? name : "(not a string)",
                                          didYouMean(name, names, "permissions")));
    }
}

void parseSessionTable(Reader& r, const toml::table& root, SessionSpec& spec) {
    const auto* s = r.table(root, "session", "the file");
    if (s == nullptr) {
        r.error(r.filePos(), "the session file needs a [session] table");
        return;
    }
    const std::string where = "[session]";
    r.checkKeys(*s,
                {"name", "uri", "kind", "doc", "audio_inputs", "audio_outputs", "author", "license",
                 "version", "category", "permissions", "host_time"},
                where);
    spec.name = r.string(*s, "name", where, true).value_or("");
    spec.uri = r.string(*s, "uri", where, true).value_or("");
    // the uri goes into Turtle and names presets as URI#preset-NAME
    auto uriProblem = iriProblem(spec.uri);
    if (uriProblem.empty() && spec.uri.find('#') != std::string::npos)
        uriProblem = "it has a '#' (its presets are URI#preset-NAME)";
    if (!spec.uri.empty() && !uriProblem.empty())
        r.error(r.pos(*s->get("uri")),
                fmt::format("uri '{}' is not a plugin URI: {}", spec.uri, uriProblem));
    const auto kind = r.string(*s, "kind", where).value_or("instrument");
    if (kind == "instrument")
        spec.kind = SessionSpec::instrument;
    else if (kind == "effect")
        spec.kind = SessionSpec::effect;
    else
        r.error(r.pos(*s->get("kind")),
                fmt::format("kind must be \"instrument\" or \"effect\", not \"{}\"", kind));
    spec.doc = r.string(*s, "doc", where).value_or("");
    spec.audioInputs = r.integer(*s, "audio_inputs", where, 0, 64)
                           .value_or(spec.kind == SessionSpec::effect ? 2 : 0);
    spec.audioOutputs = r.integer(*s, "audio_outputs", where, 1, 64).value_or(2);
    detail::parsePluginMeta(r, *s, spec);
    parsePermissions(r, *s, spec);
    spec.hostTime = r.boolean(*s, "host_time", where).value_or(false);
}

// What Csound must not see of a session's code: what its parser mishandles (parserTrap), and
// sr, ksmps, nchnls, 0dbfs or A4, which come from the host and the session's keys (in Csound
// code they would be ignored silently: the engine's header is compiled first).
void checkCode(Reader& r, const std::string& code, SourcePos first, const std::string& where) {
    if (const auto trap = parserTrap(code)) {
        auto at = first;
        at.line += trap->line - 1;
        r.error(at, fmt::format("{}: {}", where, trap->message));
        return;
    }
    const auto h = hostHeaderStatement(code);
    if (!h) return;
    static const std::map<std::string, std::string> instead = {
        {"sr", "the sample rate is the host's (the command: --sr)"},
        {"kr", "the control rate follows from [engine] ksmps"},
        {"ksmps", "give [engine] ksmps (the command: --ksmps)"},
        {"nchnls", "give [session] audio_outputs"},
        {"nchnls_i", "give [session] audio_inputs"},
        {"0dbfs", "0dbfs is always 1 in spinout"},
        {"A4", "give [engine] a4"}};
    first.line += h->line - 1;
    r.error(first, fmt::format("{}: '{} = ...' is not for session code: {}", where, h->name,
                               instead.at(h->name)));
}

void parseEngine(Reader& r, const toml::table& root, SessionSpec& spec) {
    const auto* e = r.table(root, "engine", "the file");
    if (e == nullptr) return;
    const std::string where = "[engine]";
    r.checkKeys(*e, {"ksmps", "a4", "includes", "globals"}, where);
    spec.ksmps = r.integer(*e, "ksmps", where, 1, 8192).value_or(64);
    spec.a4 = r.number(*e, "a4", where).value_or(440);
    if (spec.a4 <= 0) r.error(r.pos(*e->get("a4")), "a4 must be positive");
    if (const auto* inc = e->get("includes")) {
        if (!inc->is_array()) {
            r.error(r.pos(*inc), "includes must be an array of file names");
        } else {
            for (const auto& x : *inc->as_array()) {
                if (!x.is_string()) {
                    r.error(r.pos(x), "includes must be file names");
                    continue;
                }
                const auto name = x.as_string()->get();
                const auto full = std::filesystem::path(spec.dir) / name;
                if (!std::filesystem::exists(full)) {
                    r.error(r.pos(x), fmt::format("include file '{}' not found (looked in {})",
                                                  name, spec.dir));
                } else if (const auto rel = std::filesystem::path(name).lexically_normal();
                           rel.is_relative() && *rel.begin() != ".." &&
                           std::filesystem::is_regular_file(full) &&
                           std::filesystem::file_size(full) <= kMaxSessionBytes) {
                    // (only inside the session's folder: what lies outside is the policy's)
                    checkCode(r, readTextFile(full).value_or(""), {full.string(), 1, 1},
                              fmt::format("include file '{}'", name));
                }
                spec.includes.push_back(name);
                spec.includePos.push_back(r.pos(x));
            }
        }
    }
    if (const auto* g = e->get("globals")) {
        spec.globals = r.string(*e, "globals", where).value_or("");
        // blank lines only are no code (Csound's parser fails on "no input")
        if (spec.globals.find_first_not_of(" \t\r\n") == std::string::npos) spec.globals.clear();
        spec.globalsLine = r.firstTextLine(*g);
        checkCode(r, spec.globals, {spec.path, spec.globalsLine, 1}, "[engine] globals");
    }
}

void parseBuses(Reader& r, const toml::table& root, SessionSpec& spec) {
    const auto* buses = r.table(root, "bus", "the file");
    if (buses == nullptr) return;
    for (const auto& [k, v] : *buses) {
        const std::string where = fmt::format("[bus.{}]", k.str());
        if (!v.is_table()) {
            r.error(r.pos(v), fmt::format("{} must be a table", where));
            continue;
        }
        const auto& t = *v.as_table();
        r.checkKeys(t, {"kind", "value"}, where);
        BusSpec b;
        b.name = std::string(k.str());
        b.pos = r.pos(k);
        const auto kind = r.string(t, "kind", where).value_or("audio");
        if (kind == "control")
            b.kind = BusKind::control;
        else if (kind != "audio")
            r.error(
                r.pos(*t.get("kind")),
                fmt::format("{}: kind must be \"audio\" or \"control\", not \"{}\"", where, kind));
        if (auto value = r.number(t, "value", where)) {
            if (b.kind == BusKind::audio)
                r.error(r.pos(*t.get("value")),
                        fmt::format("{}: an audio bus has no value", where));
            b.value = *value;
        }
        spec.buses.push_back(b);
    }
}

void parseInstrs(Reader& r, const toml::table& root, SessionSpec& spec) {
    const auto* instrs = r.table(root, "instr", "the file");
    if (instrs == nullptr) {
        r.error(r.filePos(), "the session declares no [instr.NAME]");
        return;
    }
    if (instrs->size() > static_cast<std::size_t>(kMaxSessionInstrs)) {
        // named at the first instr past the limit, in the file's order
        std::vector<SourcePos> where;
        for (const auto& [k, v] : *instrs)
            where.push_back(r.pos(k));
        std::nth_element(where.begin(), where.begin() + kMaxSessionInstrs, where.end(),
                         [](const SourcePos& a, const SourcePos& b) {
                             return a.line != b.line ? a.line < b.line : a.column < b.column;
                         });
        // alone: what names the instrs past it would only repeat it
        throw SessionFileError({{where[kMaxSessionInstrs],
                                 fmt::format("too many instrs: {} (a session has at most {})",
                                             instrs->size(), kMaxSessionInstrs)}});
    }
    for (const auto& [k, v] : *instrs) {
        const std::string name(k.str());
        const std::string where = fmt::format("[instr.{}]", name);
        if (!v.is_table()) {
            r.error(r.pos(v), fmt::format("{} must be a table", where));
            continue;
        }
        const auto& t = *v.as_table();
        r.checkKeys(t, {"priority", "body", "doc", "init", "args"}, where);
        InstrSpec is;
        is.name = name;
        is.pos = r.pos(k);
        is.priority = r.integer(t, "priority", where, 1, 10);
        is.doc = r.string(t, "doc", where).value_or("");
        is.init = r.string(t, "init", where).value_or("");
        if (const auto* init = t.get("init")) {
            is.initLine = r.firstTextLine(*init);
            checkCode(r, is.init, {r.filePos().file, is.initLine, 1},
                      fmt::format("{} init", where));
        }
        auto body = r.string(t, "body", where, true);
        if (!body) continue;
        is.body = *body;
        is.bodyLine = r.firstTextLine(*t.get("body"));
        if (const auto trap = parserTrap(is.body))
            r.error({r.filePos().file, is.bodyLine + trap->line - 1, 1},
                    fmt::format("{} body: {}", where, trap->message));
        for (const auto& [argName, sv] : r.args(t, "args", where)) {
            if (!sv.bus.empty()) {
                r.error(sv.pos, fmt::format("{}: a default cannot be a bus", where));
                continue;
            }
            if (const auto* d = std::get_if<double>(&sv.value))
                is.args.emplace_back(argName, *d);
            else
                is.args.emplace_back(argName, std::get<std::string>(sv.value));
        }
        try {
            is.instr = std::make_shared<const Instr>(is.name, is.body, is.args, is.init, is.doc,
                                                     is.priority);
        } catch (const InstrError& e) {
            SourcePos p = is.pos;
            if (e.line > 0) p = {p.file, is.bodyLine + e.line - 1, 1};
            r.error(p, e.what());
            continue;
        }
        spec.instrs.push_back(std::move(is));
    }
}

void parseRuns(Reader& r, const toml::table& root, SessionSpec& spec) {
    for (const auto* t : r.arrayOfTables(root, "run")) {
        const std::string where = "[[run]]";
        r.checkKeys(*t, {"instr", "priority", "args"}, where);
        RunSpec rs;
        rs.pos = r.pos(*t);
        rs.instr = r.string(*t, "instr", where, true).value_or("");
        rs.priority = r.integer(*t, "priority", where, 1, 10);
        rs.args = r.args(*t, "args", where);
        if (!rs.instr.empty() && spec.instr(rs.instr) == nullptr)
            r.error(r.pos(*t->get("instr")),
                    fmt::format("[[run]]: unknown instr '{}'{}", rs.instr,
                                didYouMean(rs.instr, namesOf(spec.instrs))));
        checkArgs(r, spec, rs.instr, rs.args, where);
        spec.runs.push_back(std::move(rs));
    }
}

void parseMidi(Reader& r, const toml::table& root, SessionSpec& spec) {
    const auto* m = r.table(root, "midi", "the file");
    if (m == nullptr) {
        if (spec.kind == SessionSpec::instrument && !r.failed())
            r.error(r.filePos(), "an instrument needs a [midi] table to start voices");
        return;
    }
    const std::string where = "[midi]";
    r.checkKeys(*m, {"instr", "pitch", "velocity", "voices", "bend_range", "priority", "args"},
                where);
    MidiSpec ms;
    ms.pos = r.pos(*m);
    ms.instr = r.string(*m, "instr", where, true).value_or("");
    ms.pitch = r.string(*m, "pitch", where).value_or("");
    ms.velocity = r.string(*m, "velocity", where).value_or("");
    ms.voices = r.integer(*m, "voices", where, 1, 256).value_or(32);
    ms.bendRange = r.number(*m, "bend_range", where).value_or(2);
    ms.priority = r.integer(*m, "priority", where, 1, 10);
    ms.args = r.args(*m, "args", where);
    if (ms.bendRange < 0 || ms.bendRange > 48)
        r.error(r.pos(*m->get("bend_range")), "bend_range must be between 0 and 48 semitones");
    if (spec.kind == SessionSpec::effect)
        r.error(ms.pos, "[midi] starts voices; it belongs to kind = \"instrument\"");
    if (const auto* is = spec.instr(ms.instr)) {
        const Instr& instr = *is->instr;
        for (const auto& [key, arg] : {std::pair{"pitch", ms.pitch}, {"velocity", ms.velocity}}) {
            if (arg.empty()) continue;
            const auto* a = instr.arg(arg);
            if (a == nullptr || a->isString())
                r.error(r.pos(*m->get(key)),
                        fmt::format("[midi]: {} arg '{}' is not a numeric arg of instr '{}'", key,
                                    arg, ms.instr));
        }
        checkArgs(r, spec, ms.instr, ms.args, where);
    } else if (!ms.instr.empty()) {
        r.error(r.pos(*m->get("instr")), fmt::format("[midi]: unknown instr '{}'{}", ms.instr,
                                                     didYouMean(ms.instr, namesOf(spec.instrs))));
    }
    spec.midi = ms;
}

PortTarget parseTarget(Reader& r, const SessionSpec& spec, const std::string& text, SourcePos p,
                       const std::string& where) {
    PortTarget t;
    if (text.rfind("bus:", 0) == 0) {
        t.kind = PortTarget::bus;
        t.name = text.substr(4);
        const auto* b = spec.bus(t.name);
        if (b == nullptr)
            r.error(p, fmt::format("{}: no bus named '{}'{}", where, t.name,
                                   didYouMean(t.name, namesOf(spec.buses))));
        else if (b->kind != BusKind::control)
            r.error(p, fmt::format("{}: bus '{}' is an audio bus; a port drives a control bus",
                                   where, t.name));
        return t;
    }
    if (text.rfind("chn:", 0) == 0) {
        t.kind = PortTarget::channel;
        t.name = text.substr(4);
        if (t.name.empty()) r.error(p, fmt::format("{}: the channel needs a name", where));
        // the name goes into Csound code and into an exported .csd's score, as a string
        const auto odd = std::find_if(t.name.begin(), t.name.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) == 0 &&
                   std::string_view("_.:-").find(c) == std::string_view::npos;
        });
        if (odd != t.name.end())
            r.error(p, fmt::format("{}: a channel's name is letters, digits and _ . : - "
                                   "(not '{}')",
                                   where, t.name));
        return t;
    }
    const auto dot = text.find('.');
    if (dot == std::string::npos) {
        r.error(p,
                fmt::format("{}: target '{}' must be \"instr.karg\", \"bus:NAME\" or \"chn:NAME\"",
                            where, text));
        return t;
    }
    t.instr = text.substr(0, dot);
    t.name = text.substr(dot + 1);
    const auto* is = spec.instr(t.instr);
    if (is == nullptr) {
        r.error(p, fmt::format("{}: target '{}' names no instr '{}'{}", where, text, t.instr,
                               didYouMean(t.instr, namesOf(spec.instrs))));
        return t;
    }
    const Instr& instr = *is->instr;
    const auto* a = instr.arg(t.name);
    if (a == nullptr)
        r.error(p, fmt::format("{}: instr '{}' has no arg '{}'{}", where, t.instr, t.name,
                               didYouMean(t.name, namesOf(instr.args()))));
    else if (!a->isControl())
        r.error(p,
                fmt::format("{}: '{}' is an init-time arg; a port needs a k-arg", where, t.name));
    return t;
}

// The range, scale and choices of a port, checked together.
void parsePortRange(Reader& r, const toml::table& t, PortSpec& ps, const std::string& where) {
    const auto scale = r.string(t, "scale", where).value_or("linear");
    static const std::map<std::string, PortScale> scales = {{"linear", PortScale::linear},
                                                            {"log", PortScale::log},
                                                            {"integer", PortScale::integer},
                                                            {"toggle", PortScale::toggle},
                                                            {"enum", PortScale::enumeration}};
    if (auto it = scales.find(scale); it != scales.end())
        ps.scale = it->second;
    else
        r.error(r.pos(*t.get("scale")),
                fmt::format("port '{}': scale must be linear, log, integer, toggle or enum, not "
                            "'{}'",
                            ps.symbol, scale));
    if (const auto* c = t.get("choices")) {
        if (!c->is_array())
            r.error(r.pos(*c), "choices must be an array of strings");
        else
            for (const auto& x : *c->as_array()) {
                if (x.is_string())
                    ps.choices.push_back(x.as_string()->get());
                else
                    r.error(r.pos(x), "choices must be strings");
            }
    }
    const bool enumeration = ps.scale == PortScale::enumeration;
    const double lastChoice = std::max<double>(0, static_cast<double>(ps.choices.size()) - 1);
    ps.min = r.number(t, "min", where).value_or(0);
    ps.max = r.number(t, "max", where).value_or(enumeration ? lastChoice : 1);
    ps.def = r.number(t, "default", where).value_or(ps.min);
    const auto at = [&](const char* k) { return t.get(k) ? r.pos(*t.get(k)) : ps.pos; };
    if (!(ps.min < ps.max))
        r.error(at("min"), fmt::format("port '{}': min ({}) must be below max ({})", ps.symbol,
                                       ps.min, ps.max));
    else if (ps.def < ps.min || ps.def > ps.max)
        r.error(at("default"), fmt::format("port '{}': default {} is outside {} .. {}", ps.symbol,
                                           ps.def, ps.min, ps.max));
    if (ps.scale == PortScale::log && ps.min <= 0)
        r.error(at("min"), fmt::format("port '{}': a log scale needs min above 0", ps.symbol));
    if (ps.scale == PortScale::toggle && (ps.min != 0 || ps.max != 1))
        r.error(at("min"), fmt::format("port '{}': a toggle goes from 0 to 1", ps.symbol));
    if (enumeration) {
        if (ps.choices.empty())
            r.error(ps.pos, fmt::format("port '{}': scale = \"enum\" needs choices", ps.symbol));
        else if (ps.min != 0 || ps.max != lastChoice)
            r.error(at("max"), fmt::format("port '{}': {} choices take min 0 and max {}", ps.symbol,
                                           ps.choices.size(), ps.choices.size() - 1));
    } else if (!ps.choices.empty()) {
        r.error(at("choices"),
                fmt::format("port '{}': choices go with scale = \"enum\"", ps.symbol));
    }
}

// `to = "s"` or "ms" on a port in beats: its target gets the time the beats last at the
// host's tempo. `values` on an enum port: what its target gets for each choice.
void parseBeatConversion(Reader& r, const toml::table& t, PortSpec& ps, const std::string& where) {
    if (t.contains("values")) {
        ps.choiceValues = r.numbers(t, "values", where);
        const auto at = r.pos(*t.get("values"));
        if (ps.scale != PortScale::enumeration)
            r.error(at, fmt::format("port '{}': values go with scale = \"enum\" (one per choice)",
                                    ps.symbol));
        else if (ps.choiceValues.size() != ps.choices.size())
            r.error(at, fmt::format("port '{}': {} values for {} choices", ps.symbol,
                                    ps.choiceValues.size(), ps.choices.size()));
    }
    const auto to = r.string(t, "to", where);
    if (!to) return;
    const auto at = r.pos(*t.get("to"));
    if (*to == "s")
        ps.to = BeatConversion::seconds;
    else if (*to == "ms")
        ps.to = BeatConversion::ms;
    else
        r.error(at,
                fmt::format("port '{}': to must be \"s\" or \"ms\", not \"{}\"", ps.symbol, *to));
    if (ps.unit != "beat")
        r.error(at, fmt::format("port '{}': to = \"{}\" converts beats: it needs unit = \"beat\"",
                                ps.symbol, *to));
    if (ps.output)
        r.error(at, fmt::format("output port '{}' shows its source as it is: no to", ps.symbol));
}

void parsePorts(Reader& r, const toml::table& root, SessionSpec& spec) {
    for (const auto* item : r.arrayOfTables(root, "port")) {
        const auto& t = *item;
        const std::string where = "[[port]]";
        r.checkKeys(t,
                    {"symbol", "name", "target", "source", "min", "max", "default", "unit", "scale",
                     "choices", "values", "to", "midi_cc"},
                    where);
        PortSpec ps;
        ps.pos = r.pos(t);
        ps.symbol = r.string(t, "symbol", where, true).value_or("");
        if (!ps.symbol.empty()) {
            const auto at = r.pos(*t.get("symbol"));
            if (!validSymbol(ps.symbol))
                r.error(at, fmt::format("port symbol '{}' must be letters, digits and _ (not "
                                        "first a digit)",
                                        ps.symbol));
            if (spec.port(ps.symbol) != nullptr)
                r.error(at, fmt::format("duplicate port symbol '{}'", ps.symbol));
            // the plugin's own ports have these symbols (an atom port may come with host time)
            if (ps.symbol == "latency" || ps.symbol == "events" || ps.symbol == "notify")
                r.error(at, fmt::format("port symbol '{}' is reserved", ps.symbol));
        }
        ps.name = r.string(t, "name", where).value_or(ps.symbol);
        // an input port has a target; an output port a source it shows the host
        ps.output = t.contains("source");
        const char* key = ps.output ? "source" : "target";
        if (ps.output && t.contains("target"))
            r.error(ps.pos, fmt::format("port '{}' has a target (an input port) and a source (an "
                                        "output port): give one",
                                        ps.symbol));
        if (const auto target = r.string(t, key, where, true)) {
            ps.targetText = *target;
            ps.target = parseTarget(r, spec, *target, r.pos(*t.get(key)),
                                    fmt::format("port '{}'", ps.symbol));
            if (ps.output && ps.target.kind == PortTarget::control)
                r.error(r.pos(*t.get(key)),
                        fmt::format("output port '{}': a source is \"bus:NAME\" (a control bus) "
                                    "or \"chn:NAME\"",
                                    ps.symbol));
        }
        if (ps.output && t.contains("midi_cc"))
            r.error(r.pos(*t.get("midi_cc")),
                    fmt::format("output port '{}' cannot follow a MIDI CC", ps.symbol));
        parsePortRange(r, t, ps, where);
        ps.unit = r.string(t, "unit", where).value_or("");
        if (!ps.unit.empty() && !isLv2Unit(ps.unit))
            r.error(r.pos(*t.get("unit")), fmt::format("port '{}': unknown unit '{}'{}", ps.symbol,
                                                       ps.unit, didYouMean(ps.unit, lv2Units())));
        parseBeatConversion(r, t, ps, where);
        ps.midiCC = r.integer(t, "midi_cc", where, 0, 127);
        spec.ports.push_back(std::move(ps));
    }
    // A port converted from beats needs the host's tempo: the session takes it.
    const auto* session = root.get_as<toml::table>("session");
    const auto* declared = session != nullptr ? session->get("host_time") : nullptr;
    for (const auto& ps : spec.ports) {
        if (ps.to == BeatConversion::none) continue;
        if (declared != nullptr && !spec.hostTime)
            r.error(r.pos(*declared),
                    fmt::format("host_time = false, but port '{}' converts beats at the host's "
                                "tempo (to = ...)",
                                ps.symbol));
        spec.hostTime = true;
    }
}

// A preset's value for a port: a number, a boolean, or one of an enum port's choices.
std::optional<double> presetValue(Reader& r, const toml::node& v, const PortSpec& port,
                                  const std::string& where) {
    if (port.output) {
        r.error(r.pos(v), fmt::format("{}: '{}' is an output port; a preset sets inputs", where,
                                      port.symbol));
        return std::nullopt;
    }
    if (v.is_boolean()) return v.as_boolean()->get() ? 1.0 : 0.0;
    if (v.is_string() && port.scale == PortScale::enumeration) {
        const auto& choice = v.as_string()->get();
        auto it = std::find(port.choices.begin(), port.choices.end(), choice);
        if (it == port.choices.end()) {
            r.error(r.pos(v), fmt::format("{}: '{}' is not a choice of port '{}'{}", where, choice,
                                          port.symbol, didYouMean(choice, port.choices)));
            return std::nullopt;
        }
        return static_cast<double>(it - port.choices.begin());
    }
    const auto value = r.numberOf(v, fmt::format("{}: the value of '{}'", where, port.symbol));
    if (value && (*value < port.min || *value > port.max)) {
        r.error(r.pos(v), fmt::format("{}: {} = {} is outside {} .. {}", where, port.symbol, *value,
                                      port.min, port.max));
        return std::nullopt;
    }
    return value;
}

void parsePresets(Reader& r, const toml::table& root, SessionSpec& spec) {
    const auto* presets = r.table(root, "preset", "the file");
    if (presets == nullptr) return;
    std::vector<std::string> keys = {"label"};
    for (const auto& p : spec.ports)
        keys.push_back(p.symbol);
    for (const auto& [k, v] : *presets) {
        const std::string where = fmt::format("[preset.{}]", k.str());
        if (!v.is_table()) {
            r.error(r.pos(v), fmt::format("{} must be a table", where));
            continue;
        }
        PresetSpec ps;
        ps.name = std::string(k.str());
        ps.pos = r.pos(k);
        ps.label = r.string(*v.as_table(), "label", where).value_or(ps.name);
        for (const auto& [pk, pv] : *v.as_table()) {
            const std::string key(pk.str());
            if (key == "label") continue;
            const auto* port = spec.port(key);
            if (port == nullptr) {
                r.error(r.pos(pk),
                        fmt::format("{}: no port '{}'{}", where, key, didYouMean(key, keys)));
                continue;
            }
            if (const auto value = presetValue(r, pv, *port, where))
                ps.values.emplace_back(key, *value);
        }
        spec.presets.push_back(std::move(ps));
    }
    // toml++ keeps a table's keys sorted; program changes count presets in file order
    std::stable_sort(
        spec.presets.begin(), spec.presets.end(), [](const PresetSpec& a, const PresetSpec& b) {
            return a.pos.line != b.pos.line ? a.pos.line < b.pos.line : a.pos.column < b.pos.column;
        });
}

} // namespace

void detail::checkArgs(Reader& r, const SessionSpec& spec, const std::string& instrName,
                       const SpecArgs& args, const std::string& where,
                       const std::vector<TableSpec>& moreTables) {
    const auto* is = spec.instr(instrName);
    if (is == nullptr) return;
    const Instr& instr = *is->instr;
    std::vector<std::string> names;
    for (const auto& a : instr.args())
        names.push_back(a.name);
    std::vector<std::string> tables = namesOf(spec.tables);
    for (const auto& t : moreTables)
        tables.push_back(t.name);
    for (const auto& [name, sv] : args) {
        const auto* a = instr.arg(name);
        bool isString = a != nullptr && a->isString();
        if (a == nullptr) {
            // pN: a pfield by number, p5 up to the highest the instr reads
            int pfield = 0;
            const auto [end, ec] =
                std::from_chars(name.data() + std::min<std::size_t>(1, name.size()),
                                name.data() + name.size(), pfield);
            const bool numbered = name.size() > 1 && name[0] == 'p' && ec == std::errc() &&
                                  end == name.data() + name.size();
            if (!numbered) {
                r.error(sv.pos, fmt::format("{}: instr '{}' has no arg '{}'{}", where, instrName,
                                            name, didYouMean(name, names)));
                continue;
            }
            if (instr.maxPfield() < 5) {
                r.error(sv.pos, fmt::format("{}: instr '{}' reads no pfields (its k-args are "
                                            "given by name), not {}",
                                            where, instrName, name));
                continue;
            }
            if (pfield < 5 || pfield > instr.maxPfield()) {
                r.error(sv.pos, fmt::format("{}: instr '{}' reads pfields p5 to p{}, not {}{}",
                                            where, instrName, instr.maxPfield(), name,
                                            pfield == 4 ? " (p4 is reserved)" : ""));
                continue;
            }
            for (const auto& pf : instr.pfields())
                if (pf.index == pfield) isString = pf.isString();
        }
        if (!sv.bus.empty()) {
            if (spec.bus(sv.bus) == nullptr)
                r.error(sv.pos, fmt::format("{}: no bus named '{}'{}", where, sv.bus,
                                            didYouMean(sv.bus, namesOf(spec.buses))));
            else if (isString)
                r.error(sv.pos, fmt::format("{}: arg '{}' takes a string, not a bus", where, name));
        } else if (!sv.table.empty()) {
            if (std::find(tables.begin(), tables.end(), sv.table) == tables.end())
                r.error(sv.pos, fmt::format("{}: no table named '{}'{}", where, sv.table,
                                            didYouMean(sv.table, tables)));
            else if (isString)
                r.error(sv.pos,
                        fmt::format("{}: arg '{}' takes a string, not a table", where, name));
        } else if (isString != std::holds_alternative<std::string>(sv.value)) {
            r.error(sv.pos, fmt::format("{}: arg '{}' takes a {}", where, name,
                                        isString ? "string" : "number"));
        }
    }
}

void detail::parseTables(Reader& r, const toml::table& root, const std::string& dir,
                         std::vector<TableSpec>& tables) {
    const auto* all = r.table(root, "table", "the file");
    if (all == nullptr) return;
    // GEN routines that read only numbers: the ones that read files are `file = ...`
    static const std::vector<int> numericGens = {2,  3,  5,  6,  7,  8,  9,  10, 11, 13,
                                                 14, 15, 16, 17, 19, 20, 21, 25, 27, 30,
                                                 31, 32, 33, 34, 40, 41, 42, 51, 52};
    for (const auto& [k, v] : *all) {
        const std::string where = fmt::format("[table.{}]", k.str());
        if (!v.is_table()) {
            r.error(r.pos(v), fmt::format("{} must be a table", where));
            continue;
        }
        const auto& t = *v.as_table();
        r.checkKeys(t, {"values", "gen", "size", "args", "file", "channel"}, where);
        TableSpec ts;
        ts.name = std::string(k.str());
        ts.pos = r.pos(k);
        if (!validSymbol(ts.name))
            r.error(ts.pos, fmt::format("{}: a table's name must be letters, digits and _ (it "
                                        "becomes the Csound variable gi_{})",
                                        where, ts.name));
        const int sources = (t.contains("values") ? 1 : 0) + (t.contains("gen") ? 1 : 0) +
                            (t.contains("file") ? 1 : 0);
        if (sources != 1) {
            r.error(ts.pos, fmt::format("{} needs one of values = [...], gen = N (with size and "
                                        "args) or file = \"NAME\"",
                                        where));
            continue;
        }
        if (t.contains("values")) {
            ts.source = TableSpec::fromValues;
            ts.values = r.numbers(t, "values", where);
            if (ts.values.empty()) r.error(ts.pos, fmt::format("{}: values is empty", where));
        } else if (t.contains("gen")) {
            ts.source = TableSpec::fromGen;
            ts.gen = r.integer(t, "gen", where, -99, 99).value_or(0);
            if (std::find(numericGens.begin(), numericGens.end(), std::abs(ts.gen)) ==
                numericGens.end())
                r.error(r.pos(*t.get("gen")),
                        fmt::format("{}: GEN{:02} is not one of the numeric GEN routines a table "
                                    "may name (a sound file is file = \"NAME\")",
                                    where, std::abs(ts.gen)));
            ts.size = r.integer(t, "size", where, 1, kMaxTableSize).value_or(0);
            if (ts.size == 0) r.error(ts.pos, fmt::format("{} needs size", where));
            ts.values = r.numbers(t, "args", where);
            if (ts.values.empty())
                r.error(ts.pos, fmt::format("{}: GEN{:02} needs its args = [...]", where,
                                            std::abs(ts.gen)));
        } else {
            ts.source = TableSpec::fromFile;
            ts.file = r.string(t, "file", where).value_or("");
            ts.channel = r.integer(t, "channel", where, 0, 64).value_or(0);
            ts.path = (std::filesystem::path(dir) / ts.file).lexically_normal().string();
            if (!ts.file.empty() && !std::filesystem::exists(ts.path))
                r.error(r.pos(*t.get("file")),
                        fmt::format("{}: sound file '{}' not found (looked in {})", where, ts.file,
                                    dir));
        }
        tables.push_back(std::move(ts));
    }
}

namespace {

[[noreturn]] void tooLarge(const std::string& path, std::size_t bytes) {
    throw SessionFileError(
        {{{path, 0, 0},
          fmt::format("the session file is {:.1f} MiB; a session is at most {} MiB",
                      static_cast<double>(bytes) / 1048576.0, kMaxSessionBytes >> 20)}});
}

} // namespace

SessionSpec parseSessionText(const std::string& text, const std::string& path) {
    if (text.size() > kMaxSessionBytes) tooLarge(path, text.size());
    Reader r(path, text);
    const toml::table root = detail::parseToml(text, path);
    SessionSpec spec;
    spec.path = path;
    spec.text = text;
    spec.dir = std::filesystem::absolute(std::filesystem::path(path)).parent_path().string();
    r.checkKeys(root,
                {"session", "engine", "instr", "table", "bus", "run", "midi", "port", "preset"},
                "the file");
    parseSessionTable(r, root, spec);
    parseEngine(r, root, spec);
    parseBuses(r, root, spec);
    detail::parseTables(r, root, spec.dir, spec.tables);
    parseInstrs(r, root, spec);
    parseRuns(r, root, spec);
    parseMidi(r, root, spec);
    parsePorts(r, root, spec);
    parsePresets(r, root, spec);
    if (r.failed()) throw SessionFileError(r.errors());
    return spec;
}

SessionSpec parseSessionFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw SessionFileError({{{path, 0, 0}, "cannot read the session file"}});
    const std::string text = readUpTo(in, kMaxSessionBytes); // a pipe or a device too
    if (text.size() > kMaxSessionBytes) {
        std::error_code ec;
        const auto size = std::filesystem::file_size(path, ec);
        tooLarge(path, ec ? text.size() : static_cast<std::size_t>(size));
    }
    return parseSessionText(text, path);
}

} // namespace spinout
