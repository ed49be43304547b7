#include "spinout/session_file.hpp"

#include "toml_reader.hpp"

#include <toml++/toml.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

namespace spinout {

std::string Diagnostic::str() const {
    if (pos.line > 0) return fmt::format("{}:{}:{}: {}", pos.file, pos.line, pos.column, message);
    return fmt::format("{}: {}", pos.file, message);
}

namespace {

std::string joinDiagnostics(const std::vector<Diagnostic>& ds) {
    std::string out;
    for (const auto& d : ds)
        out += (out.empty() ? "" : "\n") + d.str();
    return out;
}

} // namespace

SessionFileError::SessionFileError(std::vector<Diagnostic> diagnostics)
    : std::runtime_error(joinDiagnostics(diagnostics)), diagnostics_(std::move(diagnostics)) {}

std::string closestName(const std::string& word, const std::vector<std::string>& candidates) {
    auto distance = [](const std::string& a, const std::string& b) {
        std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
        for (std::size_t j = 0; j <= b.size(); ++j)
            prev[j] = j;
        for (std::size_t i = 1; i <= a.size(); ++i) {
            cur[0] = i;
            for (std::size_t j = 1; j <= b.size(); ++j)
                cur[j] = std::min(
                    {prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
            std::swap(prev, cur);
        }
        return prev[b.size()];
    };
    std::string best;
    std::size_t bestD = std::max<std::size_t>(2, word.size() / 3) + 1;
    for (const auto& c : candidates) {
        const auto d = distance(word, c);
        if (d < bestD) {
            bestD = d;
            best = c;
        }
    }
    return best;
}

std::string didYouMean(const std::string& hint) {
    return hint.empty() ? std::string() : fmt::format("; did you mean '{}'?", hint);
}

using detail::checkArgs;
using detail::Reader;

namespace {

const std::set<std::string> kLv2Units = {
    "bar",   "beat", "bpm",  "cent", "cm",  "coef", "db",  "degree",
    "frame", "hz",   "inch", "khz",  "km",  "m",    "mhz", "midiNote",
    "mile",  "min",  "mm",   "ms",   "oct", "pc",   "s",   "semitone12TET"};

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
        auto body = r.string(t, "body", where, true);
        if (!body) continue;
        is.body = *body;
        is.bodyLine = r.firstTextLine(*t.get("body"));
        for (const auto& [name2, sv] : r.args(t, "args", where)) {
            if (!sv.bus.empty()) {
                r.error(sv.pos, fmt::format("{}: a default cannot be a bus", where));
                continue;
            }
            if (const auto* d = std::get_if<double>(&sv.value))
                is.args.emplace_back(name2, *d);
            else
                is.args.emplace_back(name2, std::get<std::string>(sv.value));
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

PortTarget parseTarget(Reader& r, const SessionSpec& spec, const std::string& text, SourcePos p,
                       const std::string& where) {
    PortTarget t;
    if (text.rfind("bus:", 0) == 0) {
        t.kind = PortTarget::bus;
        t.name = text.substr(4);
        const auto* b = spec.bus(t.name);
        if (b == nullptr)
            r.error(p, fmt::format("{}: no bus named '{}'", where, t.name));
        else if (b->kind != BusKind::control)
            r.error(p, fmt::format("{}: bus '{}' is an audio bus; a port drives a control bus",
                                   where, t.name));
        return t;
    }
    if (text.rfind("chn:", 0) == 0) {
        t.kind = PortTarget::channel;
        t.name = text.substr(4);
        if (t.name.empty()) r.error(p, fmt::format("{}: the channel needs a name", where));
        return t;
    }
    const auto dot = text.find('.');
    if (dot == std::string::npos) {
        r.error(p, fmt::format("{}: target '{}' must be \"instr.karg\", \"bus:NAME\" or "
                               "\"chn:NAME\"",
                               where, text));
        return t;
    }
    t.instr = text.substr(0, dot);
    t.name = text.substr(dot + 1);
    const auto* is = spec.instr(t.instr);
    if (is == nullptr) {
        std::vector<std::string> names;
        for (const auto& i : spec.instrs)
            names.push_back(i.name);
        const auto hint = closestName(t.instr, names);
        r.error(p, fmt::format("{}: target '{}' names no instr '{}'{}", where, text, t.instr,
                               didYouMean(hint)));
        return t;
    }
    const Instr& instr = *is->instr;
    const auto* a = instr.arg(t.name);
    if (a == nullptr) {
        std::vector<std::string> names;
        for (const auto& x : instr.args())
            names.push_back(x.name);
        const auto hint = closestName(t.name, names);
        r.error(p, fmt::format("{}: instr '{}' has no arg '{}'{}", where, t.instr, t.name,
                               didYouMean(hint)));
    } else if (!a->isControl()) {
        r.error(p,
                fmt::format("{}: '{}' is an init-time arg; a port needs a k-arg", where, t.name));
    }
    return t;
}

void parsePorts(Reader& r, const toml::table& root, SessionSpec& spec) {
    const auto* n = root.get("port");
    if (n == nullptr) return;
    if (!n->is_array_of_tables()) {
        r.error(r.pos(*n), "'port' must be an array of tables: [[port]]");
        return;
    }
    static const std::regex symbolRe(R"(^[A-Za-z_][A-Za-z0-9_]*$)");
    for (const auto& item : *n->as_array()) {
        const auto& t = *item.as_table();
        const std::string where = "[[port]]";
        r.checkKeys(t,
                    {"symbol", "name", "target", "min", "max", "default", "unit", "scale",
                     "choices", "midi_cc"},
                    where);
        PortSpec ps;
        ps.pos = r.pos(t);
        ps.symbol = r.string(t, "symbol", where, true).value_or("");
        if (!ps.symbol.empty() && !std::regex_match(ps.symbol, symbolRe))
            r.error(
                r.pos(*t.get("symbol")),
                fmt::format("port symbol '{}' must be letters, digits and _ (not first a digit)",
                            ps.symbol));
        if (!ps.symbol.empty() && spec.port(ps.symbol) != nullptr)
            r.error(r.pos(*t.get("symbol")), fmt::format("duplicate port symbol '{}'", ps.symbol));
        if (ps.symbol == "latency")
            r.error(r.pos(*t.get("symbol")), "port symbol 'latency' is reserved");
        ps.name = r.string(t, "name", where).value_or(ps.symbol);
        const auto target = r.string(t, "target", where, true);
        if (target) {
            ps.targetText = *target;
            ps.target = parseTarget(r, spec, *target, r.pos(*t.get("target")),
                                    fmt::format("port '{}'", ps.symbol));
        }
        const auto scale = r.string(t, "scale", where).value_or("linear");
        static const std::map<std::string, PortScale> scales = {{"linear", PortScale::linear},
                                                                {"log", PortScale::log},
                                                                {"integer", PortScale::integer},
                                                                {"toggle", PortScale::toggle},
                                                                {"enum", PortScale::enumeration}};
        if (auto it = scales.find(scale); it != scales.end())
            ps.scale = it->second;
        else
            r.error(
                r.pos(*t.get("scale")),
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
        const bool toggle = ps.scale == PortScale::toggle;
        const bool enumeration = ps.scale == PortScale::enumeration;
        ps.min = r.number(t, "min", where).value_or(0);
        ps.max = r.number(t, "max", where)
                     .value_or(enumeration
                                   ? std::max<double>(0, static_cast<double>(ps.choices.size()) - 1)
                                   : 1);
        ps.def = r.number(t, "default", where).value_or(ps.min);
        const auto at = [&](const char* k) { return t.get(k) ? r.pos(*t.get(k)) : ps.pos; };
        if (!(ps.min < ps.max))
            r.error(at("min"), fmt::format("port '{}': min ({}) must be below max ({})", ps.symbol,
                                           ps.min, ps.max));
        else if (ps.def < ps.min || ps.def > ps.max)
            r.error(at("default"), fmt::format("port '{}': default {} is outside {} .. {}",
                                               ps.symbol, ps.def, ps.min, ps.max));
        if (ps.scale == PortScale::log && ps.min <= 0)
            r.error(at("min"), fmt::format("port '{}': a log scale needs min above 0", ps.symbol));
        if (toggle && (ps.min != 0 || ps.max != 1))
            r.error(at("min"), fmt::format("port '{}': a toggle goes from 0 to 1", ps.symbol));
        if (enumeration) {
            if (ps.choices.empty())
                r.error(ps.pos,
                        fmt::format("port '{}': scale = \"enum\" needs choices", ps.symbol));
            else if (ps.min != 0 || ps.max != static_cast<double>(ps.choices.size()) - 1)
                r.error(at("max"),
                        fmt::format("port '{}': {} choices take min 0 and max {}", ps.symbol,
                                    ps.choices.size(), ps.choices.size() - 1));
        } else if (!ps.choices.empty()) {
            r.error(at("choices"),
                    fmt::format("port '{}': choices go with scale = \"enum\"", ps.symbol));
        }
        ps.unit = r.string(t, "unit", where).value_or("");
        if (!ps.unit.empty() && kLv2Units.count(ps.unit) == 0) {
            std::vector<std::string> units(kLv2Units.begin(), kLv2Units.end());
            const auto hint = closestName(ps.unit, units);
            r.error(at("unit"), fmt::format("port '{}': unknown unit '{}'{}", ps.symbol, ps.unit,
                                            didYouMean(hint)));
        }
        ps.midiCC = r.integer(t, "midi_cc", where, 0, 127);
        spec.ports.push_back(std::move(ps));
    }
}

void parsePresets(Reader& r, const toml::table& root, SessionSpec& spec) {
    const auto* presets = r.table(root, "preset", "the file");
    if (presets == nullptr) return;
    std::vector<std::string> symbols;
    for (const auto& p : spec.ports)
        symbols.push_back(p.symbol);
    for (const auto& [k, v] : *presets) {
        const std::string where = fmt::format("[preset.{}]", k.str());
        if (!v.is_table()) {
            r.error(r.pos(v), fmt::format("{} must be a table", where));
            continue;
        }
        PresetSpec ps;
        ps.name = std::string(k.str());
        ps.pos = r.pos(k);
        ps.label = ps.name;
        for (const auto& [pk, pv] : *v.as_table()) {
            const std::string key(pk.str());
            if (key == "label") {
                if (pv.is_string())
                    ps.label = pv.as_string()->get();
                else
                    r.error(r.pos(pv), fmt::format("{}: label must be a string", where));
                continue;
            }
            const auto* port = spec.port(key);
            if (port == nullptr) {
                auto candidates = symbols;
                candidates.push_back("label");
                const auto hint = closestName(key, candidates);
                r.error(r.pos(pk), fmt::format("{}: no port '{}'{}", where, key, didYouMean(hint)));
                continue;
            }
            double value = 0;
            if (pv.is_integer())
                value = static_cast<double>(pv.as_integer()->get());
            else if (pv.is_floating_point())
                value = pv.as_floating_point()->get();
            else if (pv.is_boolean())
                value = pv.as_boolean()->get() ? 1 : 0;
            else if (pv.is_string() && port->scale == PortScale::enumeration) {
                auto it =
                    std::find(port->choices.begin(), port->choices.end(), pv.as_string()->get());
                if (it == port->choices.end()) {
                    r.error(r.pos(pv), fmt::format("{}: '{}' is not a choice of port '{}'", where,
                                                   pv.as_string()->get(), key));
                    continue;
                }
                value = static_cast<double>(it - port->choices.begin());
            } else {
                r.error(r.pos(pv), fmt::format("{}: value of '{}' must be a number", where, key));
                continue;
            }
            if (value < port->min || value > port->max) {
                r.error(r.pos(pv), fmt::format("{}: {} = {} is outside {} .. {}", where, key, value,
                                               port->min, port->max));
                continue;
            }
            ps.values.emplace_back(key, value);
        }
        spec.presets.push_back(std::move(ps));
    }
}

} // namespace

const InstrSpec* SessionSpec::instr(const std::string& n) const {
    for (const auto& i : instrs)
        if (i.name == n) return &i;
    return nullptr;
}
const BusSpec* SessionSpec::bus(const std::string& n) const {
    for (const auto& b : buses)
        if (b.name == n) return &b;
    return nullptr;
}
const PortSpec* SessionSpec::port(const std::string& symbol) const {
    for (const auto& p : ports)
        if (p.symbol == symbol) return &p;
    return nullptr;
}
int SessionSpec::portIndex(const std::string& symbol) const {
    for (std::size_t i = 0; i < ports.size(); ++i)
        if (ports[i].symbol == symbol) return static_cast<int>(i);
    return -1;
}
const PresetSpec* SessionSpec::preset(const std::string& n) const {
    for (const auto& p : presets)
        if (p.name == n) return &p;
    return nullptr;
}

double clampPortValue(const PortSpec& port, double value) {
    if (std::isnan(value)) value = port.def;
    value = std::clamp(value, port.min, port.max);
    if (port.scale == PortScale::integer || port.scale == PortScale::enumeration)
        value = std::round(value);
    if (port.scale == PortScale::toggle) value = value >= 0.5 ? 1 : 0;
    return value;
}

double portValueFromUnit(const PortSpec& port, double unit) {
    unit = std::clamp(unit, 0.0, 1.0);
    const double v = port.scale == PortScale::log ? port.min * std::pow(port.max / port.min, unit)
                                                  : port.min + unit * (port.max - port.min);
    return clampPortValue(port, v);
}

void detail::checkArgs(detail::Reader& r, const SessionSpec& spec, const std::string& instrName,
                       const SpecArgs& args, const std::string& where) {
    const auto* is = spec.instr(instrName);
    if (is == nullptr) return;
    Instr instr(is->name, is->body, is->args);
    std::vector<std::string> names;
    for (const auto& a : instr.args())
        names.push_back(a.name);
    for (const auto& [name, sv] : args) {
        const auto* a = instr.arg(name);
        if (a == nullptr) {
            const auto hint = closestName(name, names);
            r.error(sv.pos, fmt::format("{}: instr '{}' has no arg '{}'{}", where, instrName, name,
                                        didYouMean(hint)));
            continue;
        }
        if (!sv.bus.empty()) {
            if (spec.bus(sv.bus) == nullptr)
                r.error(sv.pos, fmt::format("{}: no bus named '{}'", where, sv.bus));
            else if (a->isString())
                r.error(sv.pos, fmt::format("{}: arg '{}' takes a string, not a bus", where, name));
        } else if (a->isString() != std::holds_alternative<std::string>(sv.value)) {
            r.error(sv.pos, fmt::format("{}: arg '{}' takes a {}", where, name,
                                        a->isString() ? "string" : "number"));
        }
    }
}

namespace {

[[noreturn]] void tooLarge(const std::string& path, std::size_t bytes) {
    throw SessionFileError(
        {{{path, 0, 0},
          fmt::format("the session file is {:.1f} MiB; a session is at most {} MiB",
                      bytes / 1048576.0, kMaxSessionBytes >> 20)}});
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
    r.checkKeys(root, {"session", "engine", "instr", "bus", "run", "midi", "port", "preset"},
                "the file");

    // [session]
    if (const auto* s = r.table(root, "session", "the file")) {
        const std::string where = "[session]";
        r.checkKeys(*s, {"name", "uri", "kind", "doc", "audio_inputs", "audio_outputs"}, where);
        spec.name = r.string(*s, "name", where, true).value_or("");
        spec.uri = r.string(*s, "uri", where, true).value_or("");
        if (!spec.uri.empty() && spec.uri.find(':') == std::string::npos)
            r.error(r.pos(*s->get("uri")), fmt::format("uri '{}' is not a URI (e.g. "
                                                       "\"urn:spinout:NAME\")",
                                                       spec.uri));
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
    } else {
        r.error(r.filePos(), "the session file needs a [session] table");
    }

    // [engine]
    if (const auto* e = r.table(root, "engine", "the file")) {
        const std::string where = "[engine]";
        r.checkKeys(*e, {"ksmps", "a4", "includes", "globals"}, where);
        spec.ksmps = r.integer(*e, "ksmps", where, 1, 8192).value_or(64);
        spec.a4 = r.number(*e, "a4", where).value_or(440);
        if (spec.a4 <= 0) r.error(r.pos(*e->get("a4")), "a4 must be positive");
        if (const auto* inc = e->get("includes")) {
            if (!inc->is_array())
                r.error(r.pos(*inc), "includes must be an array of file names");
            else
                for (const auto& x : *inc->as_array()) {
                    if (!x.is_string()) {
                        r.error(r.pos(x), "includes must be file names");
                        continue;
                    }
                    const auto name = x.as_string()->get();
                    const auto full = std::filesystem::path(spec.dir) / name;
                    if (!std::filesystem::exists(full))
                        r.error(r.pos(x), fmt::format("include file '{}' not found (looked in {})",
                                                      name, spec.dir));
                    spec.includes.push_back(name);
                }
        }
        if (const auto* g = e->get("globals")) {
            spec.globals = r.string(*e, "globals", where).value_or("");
            spec.globalsLine = r.firstTextLine(*g);
        }
    }

    // [bus.NAME]
    if (const auto* buses = r.table(root, "bus", "the file")) {
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
                r.error(r.pos(*t.get("kind")),
                        fmt::format("{}: kind must be \"audio\" or \"control\", not \"{}\"", where,
                                    kind));
            if (auto value = r.number(t, "value", where)) {
                if (b.kind == BusKind::audio)
                    r.error(r.pos(*t.get("value")),
                            fmt::format("{}: an audio bus has no value", where));
                b.value = *value;
            }
            spec.buses.push_back(b);
        }
    }

    parseInstrs(r, root, spec);

    // [[run]]
    if (const auto* n = root.get("run")) {
        if (!n->is_array_of_tables())
            r.error(r.pos(*n), "'run' must be an array of tables: [[run]]");
        else
            for (const auto& item : *n->as_array()) {
                const auto& t = *item.as_table();
                const std::string where = "[[run]]";
                r.checkKeys(t, {"instr", "priority", "args"}, where);
                RunSpec rs;
                rs.pos = r.pos(t);
                rs.instr = r.string(t, "instr", where, true).value_or("");
                rs.priority = r.integer(t, "priority", where, 1, 10);
                rs.args = r.args(t, "args", where);
                if (!rs.instr.empty() && spec.instr(rs.instr) == nullptr)
                    r.error(r.pos(*t.get("instr")),
                            fmt::format("[[run]]: unknown instr '{}'", rs.instr));
                checkArgs(r, spec, rs.instr, rs.args, where);
                spec.runs.push_back(std::move(rs));
            }
    }

    // [midi]
    if (const auto* m = r.table(root, "midi", "the file")) {
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
            for (const auto& [key, arg] :
                 {std::pair{"pitch", ms.pitch}, {"velocity", ms.velocity}}) {
                if (arg.empty()) continue;
                const auto* a = instr.arg(arg);
                if (a == nullptr || a->isString())
                    r.error(r.pos(*m->get(key)), fmt::format("[midi]: {} arg '{}' is not a numeric "
                                                             "arg of instr '{}'",
                                                             key, arg, ms.instr));
            }
            checkArgs(r, spec, ms.instr, ms.args, where);
        } else if (!ms.instr.empty()) {
            r.error(r.pos(*m->get("instr")), fmt::format("[midi]: unknown instr '{}'", ms.instr));
        }
        spec.midi = ms;
    } else if (spec.kind == SessionSpec::instrument && !r.failed()) {
        r.error(r.filePos(), "an instrument needs a [midi] table to start voices");
    }

    parsePorts(r, root, spec);
    parsePresets(r, root, spec);
    if (r.failed()) throw SessionFileError(r.errors());
    return spec;
}

SessionSpec parseSessionFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw SessionFileError({{{path, 0, 0}, "cannot read the session file"}});
    // read no more than one byte past the limit: the size of a pipe or device is unknown
    std::string text(kMaxSessionBytes + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxSessionBytes) {
        std::error_code ec;
        const auto size = std::filesystem::file_size(path, ec);
        tooLarge(path, ec ? text.size() : static_cast<std::size_t>(size));
    }
    return parseSessionText(text, path);
}

} // namespace spinout
