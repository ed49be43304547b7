#include "spinout/session.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

namespace spinout {

namespace {

// Instr numbers: internal instrs below every template, the bus clearer after all.
constexpr int kSilenceInstr = 1;
constexpr int kAutomationInstr = 2;
constexpr int kStopInstr = 3;
constexpr int kPriorityStride = 1000;
// the bus clearer runs after the last priority: instr (numPriorities + 1) * 1000

constexpr const char* kAudioBusCountChannel = "spinout.audio_buses";
constexpr const char* kPlaySampleInstr = "_playsample";

// Support code shared by every template. {0}: slots, {1}: max controls,
// {2}: audio buses, {3}: control buses, {4}: the bus clearer's instr number.
// The tables' numbers reach the host through channels: fixed high numbers would
// size Csound's table of tables to them (8 MB for a number near a million).
constexpr const char* kSupportCode = R"(
giSpinoutMaxCtl = {1}
giSpinoutCtl ftgen 0, 0, -{0}*{1}, -2, 0
giSpinoutAlive ftgen 0, 0, -{0}, -2, -1
giSpinoutGen ftgen 0, 0, -{0}, -2, 0
giSpinoutKBus ftgen 0, 0, -{3}, -2, 0
chnset giSpinoutCtl, "spinout.table.control"
chnset giSpinoutAlive, "spinout.table.heartbeat"
chnset giSpinoutGen, "spinout.table.generation"
chnset giSpinoutKBus, "spinout.table.controlbus"
gaSpinoutBus[] init {2}

opcode busin, a, k
  kbus xin
  xout gaSpinoutBus[kbus]
endop

opcode busin, k, k
  kbus xin
  xout tab:k(kbus, giSpinoutKBus)
endop

opcode busout, 0, ka
  kbus, asig xin
  gaSpinoutBus[kbus] = asig
endop

opcode busout, 0, kk
  kbus, kval xin
  tabw kval, kbus, giSpinoutKBus
endop

opcode busmix, 0, ka
  kbus, asig xin
  gaSpinoutBus[kbus] = gaSpinoutBus[kbus] + asig
endop

opcode busmix, 0, kk
  kbus, kval xin
  tabw tab:k(kbus, giSpinoutKBus) + kval, kbus, giSpinoutKBus
endop

; Csound 6.18's outch misplaces a sample-accurate onset when it is the first to
; write spout in a cycle; this instance writes silence first, every cycle.
instr 1
  a__zero init 0
  outch 1, a__zero
endin

; Automation: p4 target index, p5 target table, p6 pairs table (time, value, ...),
; p7 shape (0 linear, 1 cos, 2 expon, 3 smooth), p8 exponent, p9 overtake,
; p10 slot (-1: none), p11 generation of that slot.
instr 2
  itarget = p4
  iftarget = p5
  ipairs = p6
  ishape = p7
  iexp = p8
  islot = p10
  igen = p11
  inum = ftlen(ipairs) / 2
  if p9 == 1 then
    tabw_i tab_i(itarget, iftarget), 1, ipairs
  endif
  ftfree ipairs, 1
  kcount init 0
  if islot >= 0 then
    if tab:k(islot, giSpinoutGen) != igen then
      turnoff
    endif
  endif
  kt = kcount * ksmps / sr
  kcount += 1
  kidx init 0
  while kidx < inum - 2 && kt >= tab:k(kidx*2 + 2, ipairs) do
    kidx += 1
  od
  kv0 = tab:k(kidx*2 + 1, ipairs)
  if inum < 2 then
    kv = kv0
  else
    kt0 = tab:k(kidx*2, ipairs)
    kt1 = tab:k(kidx*2 + 2, ipairs)
    kv1 = tab:k(kidx*2 + 3, ipairs)
    kx = kt1 > kt0 ? limit((kt - kt0) / (kt1 - kt0), 0, 1) : 1
    if ishape == 1 then
      kx = (1 - cos(kx * $M_PI)) / 2
    elseif ishape == 2 then
      kx = pow(kx, iexp)
    elseif ishape == 3 then
      kx = kx * kx * (3 - 2 * kx)
    endif
    kv = kv0 + (kv1 - kv0) * kx
  endif
  tabw kv, itarget, iftarget
endin

; Stop: p4 the fractional p1 to turn off, p5 1 to let its release play.
instr 3
  turnoff2_i p4, 4, p5
endin

; Host writes replayed from a score (an exported .csd): p4 table, p5 index, p6 value
instr 4
  tabw_i p6, p5, p4
endin

; p4 channel name, p5 value
instr 5
  S__name strget p4
  chnset p5, S__name
endin

; Audio buses hold one cycle: cleared after the last priority.
instr {4}
  kn chnget "spinout.audio_buses"
  a__zero init 0
  ki = 0
  while ki < kn do
    gaSpinoutBus[ki] = a__zero
    ki += 1
  od
endin
)";

constexpr const char* kPlaySampleBody = R"(
|itab, ichan=1, kgain=1, kspeed=1, kpan=-1, iloop=0|
ichans = ftchnls(itab)
iend = nsamp(itab)
if ichans == 1 then
  a1 loscil3 kgain, kspeed, itab, 1, iloop, 0, iend
  if kpan < 0 then
    outch ichan, a1
  else
    outch ichan, a1 * cos(kpan * $M_PI_2), ichan + 1, a1 * sin(kpan * $M_PI_2)
  endif
else
  a1, a2 loscil3 kgain, kspeed, itab, 1, iloop, 0, iend
  outch ichan, a1, ichan + 1, a2
endif
)";

} // namespace

AutomationMode AutomationMode::parse(std::string_view text) {
    const std::string s(text);
    if (s == "linear") return {linear, 1};
    if (s == "cos") return {cos, 1};
    if (s == "smooth") return {smooth, 1};
    // expon(X), X a finite number. By hand: std::stod threw its own exceptions past the
    // score parser ("expon(e)"), and std::regex recurses once per character.
    if (text.starts_with("expon(") && text.ends_with(")")) {
        auto x = text.substr(6, text.size() - 7);
        const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
        while (!x.empty() && space(x.front()))
            x.remove_prefix(1);
        while (!x.empty() && space(x.back()))
            x.remove_suffix(1);
        if (x.starts_with('+') && !x.starts_with("+-")) x.remove_prefix(1);
        double v = 0;
        const auto [end, ec] = std::from_chars(x.data(), x.data() + x.size(), v);
        if (ec == std::errc() && end == x.data() + x.size() && std::isfinite(v) &&
            x.find_first_not_of("-+0123456789.eE") == std::string_view::npos)
            return {expon, v};
    }
    throw SessionError(
        fmt::format("unknown automation mode '{}' (linear, cos, expon(X), smooth)", s));
}

Session::Session(Engine& engine, SessionOptions options) : engine_(engine), options_(options) {
    if (options_.numPriorities < 1 || options_.numPriorities > 29)
        throw SessionError("numPriorities must be between 1 and 29");
    slots_.resize(static_cast<std::size_t>(options_.numSlots));
    freeSlots_.reserve(slots_.size());
    for (int i = options_.numSlots - 1; i >= 0; --i)
        freeSlots_.push_back(i);
    activeSlots_.reserve(slots_.size());
    pending_.reserve(static_cast<std::size_t>(options_.maxPendingEvents));
    busRefs_[0].assign(static_cast<std::size_t>(options_.numAudioBuses), 0);
    busRefs_[1].assign(static_cast<std::size_t>(options_.numControlBuses), 0);
    journalOn_ = options_.journal;
    if (journalOn_ && engine_.journal().empty())
        throw SessionError("a journaling session needs an engine journaling from its start");
    compileSupport();
    static const Instr playSample(kPlaySampleInstr, kPlaySampleBody, {}, "", "plays a sound table");
    registerInstr(playSample); // parsed once per process
}

Session::~Session() = default;

void Session::compileSupport() {
    const auto code =
        fmt::format(kSupportCode, options_.numSlots, options_.maxControls, options_.numAudioBuses,
                    options_.numControlBuses, busClearInstr());
    if (auto err = engine_.compile(code))
        throw SessionError("the session's support code failed to compile: " + err->message);
    auto number = [&](const char* channel) { return static_cast<int>(engine_.control(channel)); };
    ctlTable_ = number("spinout.table.control");
    aliveTable_ = number("spinout.table.heartbeat");
    genTable_ = number("spinout.table.generation");
    kbusTable_ = number("spinout.table.controlbus");
    ctl_ = engine_.table(ctlTable_);
    alive_ = engine_.table(aliveTable_);
    gen_ = engine_.table(genTable_);
    kbus_ = engine_.table(kbusTable_);
    audioBusCountChannel_ = channelId(kAudioBusCountChannel);
    const double silence[] = {kSilenceInstr, 0, -1};
    const double clear[] = {static_cast<double>(busClearInstr()), 0, -1};
    sendEvent(silence, 0);
    sendEvent(clear, 0);
}

// Templates ------------------------------------------------------------------

const Instr& Session::defInstr(const std::string& name, const std::string& body,
                               const ArgList& args, const std::string& init, const std::string& doc,
                               std::optional<int> priority) {
    return registerInstr(Instr(name, body, args, init, doc, priority));
}

const Instr& Session::registerInstr(Instr instr) {
    if (byName_.count(instr.name()) != 0)
        throw SessionError(fmt::format("instr '{}' is already defined", instr.name()));
    if (static_cast<int>(instr.controls().size()) > options_.maxControls)
        throw SessionError(fmt::format("instr '{}' has {} k-args, more than the {} allowed",
                                       instr.name(), instr.controls().size(),
                                       options_.maxControls));
    if (static_cast<int>(templates_.size()) + 1 >= kPriorityStride)
        throw SessionError("too many instr templates");
    if (!instr.init().empty())
        compile(instr.init(), fmt::format("init code of '{}'", instr.name()));
    const auto numControls = instr.controls().size();
    auto t = std::make_unique<Template>(Template{std::move(instr),
                                                 static_cast<int>(templates_.size()) + 1,
                                                 {},
                                                 std::vector<double>(numControls, 0.0),
                                                 std::vector<bool>(numControls, false)});
    auto* raw = t.get();
    templates_.push_back(std::move(t));
    byName_[raw->instr.name()] = raw;
    if (raw->instr.priority()) prepareSched(raw->instr.name(), *raw->instr.priority());
    return raw->instr;
}

const Instr* Session::getInstr(const std::string& name) const {
    auto it = byName_.find(name);
    return it == byName_.end() ? nullptr : &it->second->instr;
}

std::vector<std::string> Session::instrNames() const {
    std::vector<std::string> names;
    for (const auto& t : templates_)
        if (t->instr.name() != kPlaySampleInstr) names.push_back(t->instr.name());
    return names;
}

const Session::Template& Session::templ(const std::string& name) const {
    auto it = byName_.find(name);
    if (it == byName_.end()) throw SessionError(fmt::format("unknown instr '{}'", name));
    return *it->second;
}

int Session::instrnum(const std::string& name, int priority) const {
    if (priority < 1 || priority > options_.numPriorities)
        throw SessionError(
            fmt::format("priority {} is out of range (1 to {})", priority, options_.numPriorities));
    return priority * kPriorityStride + templ(name).index;
}

Session::Template& Session::templ(const std::string& name) {
    return const_cast<Template&>(std::as_const(*this).templ(name));
}

int Session::templateIndex(const std::string& name) const {
    return templ(name).index;
}

void Session::prepareSched(const std::string& name, int priority) {
    const int number = instrnum(name, priority);
    auto& t = templ(name);
    if (t.compiledAt[priority]) return;
    if (auto err = engine_.compile(t.instr.code(number))) {
        const int bodyLine = err->line > 0 ? err->line - 1 - t.instr.headerLines() : 0;
        if (bodyLine > 0)
            throw InstrError(
                fmt::format("instr '{}', line {} of its body: {}", name, bodyLine, err->message),
                bodyLine);
        throw InstrError(fmt::format("instr '{}': {}", name, err->message));
    }
    t.compiledAt[priority] = true;
}

void Session::compile(const std::string& code, const std::string& what) {
    if (auto err = engine_.compile(code)) {
        if (err->line > 0)
            throw SessionError(fmt::format("{}, line {}: {}", what, err->line, err->message));
        throw SessionError(fmt::format("{}: {}", what, err->message));
    }
}

// The file's text is compiled (not an #include line), so an exported .csd stands alone.
void Session::includeFile(const std::string& path) {
    std::filesystem::path full(path);
    if (full.is_relative() && !engine_.options().searchDir.empty())
        full = std::filesystem::path(engine_.options().searchDir) / full;
    std::ifstream in(full, std::ios::binary);
    if (!in) throw SessionError(fmt::format("cannot read the include file '{}'", full.string()));
    std::ostringstream text;
    text << in.rdbuf();
    compile(text.str(), fmt::format("include file '{}'", path));
}

// Slots -----------------------------------------------------------------------

int Session::allocSlot() noexcept {
    if (freeSlots_.empty()) reap();
    if (freeSlots_.empty()) return -1;
    const int slot = freeSlots_.back();
    freeSlots_.pop_back();
    auto& s = slots_[static_cast<std::size_t>(slot)];
    s = Slot{s.generation + 1};
    s.inUse = true;
    store(genTable_, slot, s.generation);
    store(aliveTable_, slot, -1);
    activeSlots_.push_back(slot);
    return slot;
}

void Session::freeSlot(int slot) {
    auto& s = slots_[static_cast<std::size_t>(slot)];
    if (!s.inUse) return;
    for (int i = 0; i < s.numBuses; ++i)
        dropBusRef(s.buses[static_cast<std::size_t>(i)]);
    s.inUse = false;
    s.numBuses = 0;
    store(genTable_, slot, 0);
    auto it = std::find(activeSlots_.begin(), activeSlots_.end(), slot);
    if (it != activeSlots_.end()) {
        *it = activeSlots_.back();
        activeSlots_.pop_back();
    }
    freeSlots_.push_back(slot);
}

// An instance is over once it has started and skipped a heartbeat.
void Session::reap() noexcept {
    const double cycles = static_cast<double>(engine_.frame() / engine_.ksmps());
    for (std::size_t i = 0; i < activeSlots_.size();) {
        const int slot = activeSlots_[i];
        const auto& s = slots_[static_cast<std::size_t>(slot)];
        if (s.dispatched && s.startFrame < engine_.frame() &&
            alive_[static_cast<std::size_t>(slot)] != cycles) {
            freeSlot(slot); // swaps the last active slot into i
            continue;
        }
        ++i;
    }
}

const Session::Slot* Session::slotOf(const Synth& synth) const {
    if (synth.slot < 0 || synth.slot >= options_.numSlots) return nullptr;
    const auto& s = slots_[static_cast<std::size_t>(synth.slot)];
    if (!s.inUse || s.generation != synth.generation) return nullptr;
    return &s;
}

Session::Slot& Session::liveSlot(const Synth& synth) {
    auto* s = slotOf(synth);
    if (s == nullptr) throw SessionError("the synth is no longer scheduled");
    return const_cast<Slot&>(*s);
}

bool Session::isScheduled(const Synth& synth) const {
    return slotOf(synth) != nullptr;
}

bool Session::isPlaying(const Synth& synth) const {
    const auto* s = slotOf(synth);
    return s != nullptr && s->dispatched && s->startFrame < engine_.frame();
}

std::vector<Synth> Session::activeSynths() const {
    std::vector<Synth> out;
    for (int slot : activeSlots_) {
        const auto& s = slots_[static_cast<std::size_t>(slot)];
        if (s.dispatched && s.startFrame < engine_.frame())
            out.push_back({slot, s.generation, s.p1});
    }
    std::sort(out.begin(), out.end(), [&](const Synth& a, const Synth& b) {
        return slots_[static_cast<std::size_t>(a.slot)].startFrame <
               slots_[static_cast<std::size_t>(b.slot)].startFrame;
    });
    return out;
}

// Events -----------------------------------------------------------------------

std::int64_t Session::frameAt(double delay) const {
    if (!(delay >= 0)) throw SessionError(fmt::format("delay must be 0 or more, not {}", delay));
    return engine_.frame() + static_cast<std::int64_t>(std::llround(delay * engine_.sr()));
}

double Session::nextP1(int instrNum) {
    // Unique fractional p1: Csound ties a held note to the next event sharing its p1.
    nextInstance_ = nextInstance_ % 999999 + 1;
    return instrNum + nextInstance_ / 1e6;
}

int Session::stringId(const std::string& s) {
    auto it = strings_.find(s);
    if (it != strings_.end()) return it->second;
    const int id = static_cast<int>(strings_.size()) + 1;
    compile(fmt::format("strset {}, {}\n", id, csoundString(s)), "string argument");
    strings_[s] = id;
    return id;
}

void Session::enqueue(const Pending& p) {
    if (!tryEnqueue(p))
        throw SessionError(
            fmt::format("too many pending events (more than {})", options_.maxPendingEvents));
}

bool Session::tryEnqueue(const Pending& p) noexcept {
    if (pending_.size() >= static_cast<std::size_t>(options_.maxPendingEvents)) return false;
    Pending q = p;
    q.seq = ++seq_;
    auto it = std::upper_bound(pending_.begin(), pending_.end(), q,
                               [](const Pending& a, const Pending& b) {
                                   return a.frame != b.frame ? a.frame < b.frame : a.seq < b.seq;
                               });
    pending_.insert(it, q); // within the reserved capacity: no allocation
    return true;
}

PreparedEvent Session::prepare(const std::string& name, int priority, const SchedArgs& args) {
    const auto& t = templ(name);
    if (priority == 0) priority = t.instr.priority().value_or(1);
    prepareSched(name, priority);
    if (t.instr.maxPfield() > kMaxPfields)
        throw SessionError(fmt::format("instr '{}' uses more than {} pfields", name, kMaxPfields));
    PreparedEvent e;
    e.templateIndex = t.index;
    e.instrNum = instrnum(name, priority);
    e.numPfields = t.instr.maxPfield();
    e.controls.assign(t.instr.controls().size(), 0.0);
    e.explicitControls.assign(t.instr.controls().size(), false);
    for (const auto& c : t.instr.controls())
        e.controls[static_cast<std::size_t>(c.index)] = std::get<double>(c.value);
    for (const auto& a : t.instr.pfields())
        e.pfields[static_cast<std::size_t>(a.index - 1)] =
            a.isString() ? stringId(std::get<std::string>(a.value)) : std::get<double>(a.value);

    for (const auto& [argName, value] : args) {
        const InstrArg* a = t.instr.arg(argName);
        int pfield = 0;
        if (a == nullptr && argName.size() > 1 && argName[0] == 'p') {
            pfield = std::atoi(argName.c_str() + 1);
            if (pfield < 5 || pfield > t.instr.maxPfield())
                throw SessionError(fmt::format("instr '{}' has no pfield {}", name, argName));
        } else if (a == nullptr) {
            throw SessionError(fmt::format("instr '{}' has no arg '{}'", name, argName));
        }
        double number = 0;
        if (const auto* d = std::get_if<double>(&value)) {
            if (a != nullptr && a->isString())
                throw SessionError(fmt::format("arg '{}' of '{}' takes a string", argName, name));
            number = *d;
        } else if (const auto* s = std::get_if<std::string>(&value)) {
            if (a == nullptr || !a->isString())
                throw SessionError(fmt::format("arg '{}' of '{}' takes a number", argName, name));
            number = stringId(*s);
        } else {
            const auto& bus = std::get<Bus>(value);
            if (busRefCount(bus) <= 0)
                throw SessionError(
                    fmt::format("arg '{}' of '{}': the bus was released", argName, name));
            if (e.buses.size() >= std::tuple_size_v<decltype(Slot::buses)>)
                throw SessionError(fmt::format("instr '{}': more than 8 bus args", name));
            e.buses.push_back(bus);
            number = bus.token;
        }
        if (a != nullptr && a->isControl()) {
            e.controls[static_cast<std::size_t>(a->index)] = number;
            e.explicitControls[static_cast<std::size_t>(a->index)] = true;
            for (const auto& pf : t.instr.pfields()) // a pset k-arg also keeps its pfield
                if (pf.name == a->name) e.pfields[static_cast<std::size_t>(pf.index - 1)] = number;
        } else {
            e.pfields[static_cast<std::size_t>((a != nullptr ? a->index : pfield) - 1)] = number;
        }
    }
    return e;
}

ArgRef Session::argRef(const std::string& name, const std::string& arg) const {
    const auto* a = templ(name).instr.arg(arg);
    if (a == nullptr) throw SessionError(fmt::format("instr '{}' has no arg '{}'", name, arg));
    if (a->isString()) throw SessionError(fmt::format("arg '{}' of '{}' is a string", arg, name));
    return {a->isControl(), a->index};
}

Synth Session::startAt(const PreparedEvent& e, std::int64_t frame, double dur,
                       std::span<const ArgOverride> overrides) noexcept {
    if (pending_.size() >= static_cast<std::size_t>(options_.maxPendingEvents)) return {};
    for (const auto& b : e.buses)
        if (busRefCount(b) <= 0) return {};
    const int slot = allocSlot();
    if (slot < 0) return {};
    const auto& t = *templates_[static_cast<std::size_t>(e.templateIndex - 1)];
    auto& s = slots_[static_cast<std::size_t>(slot)];
    s.startFrame = frame;
    s.endFrame = dur < 0 ? -1 : frame + static_cast<std::int64_t>(std::llround(dur * engine_.sr()));
    s.tmpl = &t;
    s.p1 = nextP1(e.instrNum);
    for (const auto& b : e.buses) {
        addBusRef(b);
        s.buses[static_cast<std::size_t>(s.numBuses++)] = b;
    }
    Pending p;
    p.kind = Pending::start;
    p.frame = frame;
    p.numPfields = e.numPfields;
    std::copy(e.pfields.begin(), e.pfields.begin() + e.numPfields, p.pfields.begin());
    // control row: defaults and args, then what ports set, then this start's own args
    const int row = slot * options_.maxControls;
    for (std::size_t i = 0; i < e.controls.size(); ++i)
        store(ctlTable_, row + static_cast<int>(i),
              (t.portSet[i] && !e.explicitControls[i]) ? t.portValues[i] : e.controls[i]);
    for (const auto& o : overrides) {
        if (!o.ref.valid()) continue;
        if (o.ref.control) {
            store(ctlTable_, row + o.ref.index, o.value);
            for (const auto& pf : t.instr.pfields()) // a pset k-arg also keeps its pfield
                if (pf.isControl() &&
                    pf.name == t.instr.controls()[static_cast<std::size_t>(o.ref.index)].name)
                    p.pfields[static_cast<std::size_t>(pf.index - 1)] = o.value;
        } else {
            p.pfields[static_cast<std::size_t>(o.ref.index - 1)] = o.value;
        }
    }
    p.slot = slot;
    p.generation = s.generation;
    p.pfields[0] = s.p1;
    p.pfields[2] = dur;
    p.pfields[3] = slot;
    tryEnqueue(p); // room was checked above
    return {slot, s.generation, s.p1};
}

Synth Session::sched(const std::string& name, double delay, double dur, int priority,
                     const SchedArgs& args) {
    if (dur == 0 || (dur < 0 && dur != -1))
        throw SessionError(fmt::format("dur must be positive or -1, not {}", dur));
    const auto frame = frameAt(delay);
    const auto e = prepare(name, priority, args);
    auto synth = startAt(e, frame, dur);
    if (!synth.valid()) {
        if (pending_.size() >= static_cast<std::size_t>(options_.maxPendingEvents))
            throw SessionError(
                fmt::format("too many pending events (more than {})", options_.maxPendingEvents));
        throw SessionError(
            fmt::format("too many instances: all {} slots are in use", options_.numSlots));
    }
    return synth;
}

bool Session::stopAt(const Synth& synth, std::int64_t frame, bool release) noexcept {
    if (slotOf(synth) == nullptr) return true; // already over
    Pending p;
    p.kind = Pending::stop;
    p.frame = frame;
    p.slot = synth.slot;
    p.generation = synth.generation;
    p.pfields[0] = kStopInstr;
    p.pfields[3] = synth.p1;
    p.pfields[4] = release ? 1 : 0;
    p.numPfields = 5;
    return tryEnqueue(p);
}

bool Session::setAt(const Synth& synth, int control, double value, std::int64_t frame) noexcept {
    if (slotOf(synth) == nullptr) return true;
    Pending p;
    p.kind = Pending::setTable;
    p.frame = frame;
    p.slot = synth.slot;
    p.generation = synth.generation;
    p.table = ctlTable_;
    p.index = synth.slot * options_.maxControls + control;
    p.pfields[0] = value;
    return tryEnqueue(p);
}

bool Session::setInstrControlAt(int templateIndex, int control, double value,
                                std::int64_t frame) noexcept {
    Pending p;
    p.kind = Pending::setInstr;
    p.frame = frame;
    p.table = templateIndex;
    p.index = control;
    p.pfields[0] = value;
    return tryEnqueue(p);
}

bool Session::writeBusAt(const Bus& bus, double value, std::int64_t frame) noexcept {
    Pending p;
    p.kind = Pending::setTable;
    p.frame = frame;
    p.table = kbusTable_;
    p.index = bus.token;
    p.pfields[0] = value;
    return tryEnqueue(p);
}

int Session::channelId(const std::string& name) {
    for (std::size_t i = 0; i < channels_.size(); ++i)
        if (channels_[i].first == name) return static_cast<int>(i);
    channels_.emplace_back(name, engine_.controlChannel(name));
    return static_cast<int>(channels_.size()) - 1;
}

bool Session::writeChannelAt(int channel, double value, std::int64_t frame) noexcept {
    Pending p;
    p.kind = Pending::setChannel;
    p.frame = frame;
    p.index = channel;
    p.pfields[0] = value;
    return tryEnqueue(p);
}

void Session::setJournal(bool on) {
    journalOn_ = on;
    engine_.setJournal(on);
}

void Session::store(int table, int index, double value) noexcept {
    const auto i = static_cast<std::size_t>(index);
    if (table == ctlTable_)
        ctl_[i] = value;
    else if (table == kbusTable_)
        kbus_[i] = value;
    else if (table == genTable_)
        gen_[i] = value;
    else if (table == aliveTable_)
        alive_[i] = value;
    if (journalOn_) {
        JournalEntry j{engine_.frame(), JournalEntry::tableWrite};
        j.table = table;
        j.index = index;
        j.value = value;
        journal_.push_back(std::move(j));
    }
}

void Session::storeChannel(int channel, double value) noexcept {
    const auto& [name, ptr] = channels_[static_cast<std::size_t>(channel)];
    *ptr = value;
    if (journalOn_) {
        JournalEntry j{engine_.frame(), JournalEntry::channelWrite};
        j.channel = name;
        j.value = value;
        journal_.push_back(std::move(j));
    }
}

// Hands an event to Csound at `frame`, which lies in the coming cycle.
void Session::sendEvent(std::span<const double> pfields, std::int64_t frame) noexcept {
    const std::int64_t offset = std::max<std::int64_t>(0, frame - engine_.frame());
    std::array<double, kMaxPfields> p{};
    std::copy(pfields.begin(), pfields.end(), p.begin());
    // Csound places an API event with a positive delay one cycle late; a negative
    // delay of (offset - ksmps) lands it at `offset` in the coming cycle. Csound
    // truncates the start to a sample: a quarter sample keeps 23.99999 from becoming 23.
    p[1] =
        offset == 0 ? 0.0 : (static_cast<double>(offset - engine_.ksmps()) + 0.25) / engine_.sr();
    engine_.scoreEvent('i', std::span<const double>(p.data(), pfields.size()));
    if (journalOn_) {
        JournalEntry j;
        j.frame = engine_.frame() + offset;
        j.pfields.assign(pfields.begin(), pfields.end());
        journal_.push_back(std::move(j));
    }
}

const InstrArg& Session::control(const Synth& synth, const std::string& param) const {
    const auto* s = slotOf(synth);
    if (s == nullptr) throw SessionError("the synth is no longer scheduled");
    const auto& instr = s->tmpl->instr;
    const InstrArg* a = instr.arg(param);
    if (a == nullptr && !param.empty() && param[0] != 'k') a = instr.arg("k" + param);
    if (a == nullptr)
        throw SessionError(fmt::format("instr '{}' has no arg '{}'", instr.name(), param));
    if (!a->isControl())
        throw SessionError(fmt::format("arg '{}' of '{}' is fixed at init; only k-args change "
                                       "while playing",
                                       a->name, instr.name()));
    return *a;
}

void Session::set(const Synth& synth, const std::string& param, double value, double delay) {
    const auto& c = control(synth, param);
    const int index = synth.slot * options_.maxControls + c.index;
    if (delay == 0) {
        store(ctlTable_, index, value);
        return;
    }
    if (!setAt(synth, c.index, value, frameAt(delay)))
        throw SessionError("too many pending events");
}

double Session::getControl(const Synth& synth, const std::string& param) const {
    const auto& c = control(synth, param);
    return ctl_[static_cast<std::size_t>(synth.slot * options_.maxControls + c.index)];
}

void Session::scheduleAutomation(int table, int index, std::span<const double> pairs,
                                 AutomationMode mode, double delay, bool overtake, int slot,
                                 std::uint32_t generation) {
    if (pairs.size() < 2 || pairs.size() % 2 != 0)
        throw SessionError("automation pairs must be time, value, time, value, ...");
    for (std::size_t i = 2; i < pairs.size(); i += 2)
        if (pairs[i] < pairs[i - 2]) throw SessionError("automation times must not decrease");
    // Times are relative to the first breakpoint, which is when the automation starts.
    std::vector<double> shifted(pairs.begin(), pairs.end());
    for (std::size_t i = 0; i < shifted.size(); i += 2)
        shifted[i] -= pairs[0];
    Pending p;
    p.kind = Pending::event;
    p.frame = frameAt(delay + pairs[0]);
    p.slot = slot;
    p.generation = generation;
    const int pairsTable = engine_.makeTable(shifted);
    const double cycle = static_cast<double>(engine_.ksmps()) / engine_.sr();
    const double values[] = {nextP1(kAutomationInstr),
                             0,
                             shifted[shifted.size() - 2] + 2 * cycle,
                             static_cast<double>(index),
                             static_cast<double>(table),
                             static_cast<double>(pairsTable),
                             static_cast<double>(mode.shape),
                             mode.exponent,
                             overtake ? 1.0 : 0.0,
                             static_cast<double>(slot),
                             static_cast<double>(generation)};
    std::copy(std::begin(values), std::end(values), p.pfields.begin());
    p.numPfields = static_cast<int>(std::size(values));
    enqueue(p);
}

void Session::automate(const Synth& synth, const std::string& param, std::span<const double> pairs,
                       AutomationMode mode, double delay, bool overtake) {
    const auto& c = control(synth, param);
    scheduleAutomation(ctlTable_, synth.slot * options_.maxControls + c.index, pairs, mode, delay,
                       overtake, synth.slot, synth.generation);
}

void Session::unsched(const Synth& synth, double delay) {
    if (!stopAt(synth, frameAt(delay))) throw SessionError("too many pending events");
}

void Session::unschedAll(bool future) {
    std::vector<Synth> targets;
    for (int slot : activeSlots_) {
        const auto& s = slots_[static_cast<std::size_t>(slot)];
        if (s.tmpl == nullptr) continue;
        if (s.dispatched || future) targets.push_back({slot, s.generation, s.p1});
    }
    for (const auto& t : targets)
        unsched(t);
}

// Buses ---------------------------------------------------------------------------

Bus Session::assignBus(BusKind kind, std::optional<double> value) {
    if (kind == BusKind::audio && value)
        throw SessionError("an audio bus has no value; give a value only to a control bus");
    auto& refs = busRefs_[kind == BusKind::audio ? 0 : 1];
    auto it = std::find(refs.begin(), refs.end(), 0);
    if (it == refs.end())
        throw SessionError(fmt::format("no free {} bus (all {} in use)",
                                       kind == BusKind::audio ? "audio" : "control", refs.size()));
    *it = 1;
    Bus bus{kind, static_cast<int>(it - refs.begin())};
    if (kind == BusKind::control) {
        store(kbusTable_, bus.token, value.value_or(0.0));
    } else {
        const auto last = std::find_if(refs.rbegin(), refs.rend(), [](int r) { return r > 0; });
        storeChannel(audioBusCountChannel_, static_cast<double>(refs.rend() - last));
    }
    return bus;
}

int Session::busRefCount(const Bus& bus) const {
    const auto& refs = busRefs_[bus.kind == BusKind::audio ? 0 : 1];
    if (bus.token < 0 || bus.token >= static_cast<int>(refs.size())) return 0;
    return refs[static_cast<std::size_t>(bus.token)];
}

void Session::addBusRef(const Bus& bus) {
    ++busRefs_[bus.kind == BusKind::audio ? 0 : 1][static_cast<std::size_t>(bus.token)];
}

void Session::dropBusRef(const Bus& bus) {
    auto& r = busRefs_[bus.kind == BusKind::audio ? 0 : 1][static_cast<std::size_t>(bus.token)];
    if (r > 0) --r;
}

void Session::releaseBus(const Bus& bus) {
    if (busRefCount(bus) <= 0) throw SessionError("the bus is not assigned");
    dropBusRef(bus);
}

void Session::writeBus(const Bus& bus, double value, double delay) {
    if (bus.kind != BusKind::control) throw SessionError("only a control bus can be written");
    if (busRefCount(bus) <= 0) throw SessionError("the bus is not assigned");
    if (delay == 0) {
        store(kbusTable_, bus.token, value);
        return;
    }
    if (!writeBusAt(bus, value, frameAt(delay))) throw SessionError("too many pending events");
}

double Session::readBus(const Bus& bus) const {
    if (bus.kind != BusKind::control) throw SessionError("only a control bus can be read");
    if (busRefCount(bus) <= 0) throw SessionError("the bus is not assigned");
    return kbus_[static_cast<std::size_t>(bus.token)];
}

void Session::automateBus(const Bus& bus, std::span<const double> pairs, AutomationMode mode,
                          double delay, bool overtake) {
    if (bus.kind != BusKind::control) throw SessionError("only a control bus can be automated");
    if (busRefCount(bus) <= 0) throw SessionError("the bus is not assigned");
    scheduleAutomation(kbusTable_, bus.token, pairs, mode, delay, overtake, -1, 0);
}

// Tables -------------------------------------------------------------------------

SoundTable Session::readSoundfile(const std::string& path, int channel) {
    SoundTable t;
    t.number = engine_.readSoundFile(path, channel);
    t.sr = engine_.evalCode(fmt::format("return ftsr({})", t.number));
    t.nchnls = static_cast<int>(engine_.evalCode(fmt::format("return ftchnls({})", t.number)));
    t.frames =
        static_cast<std::int64_t>(engine_.evalCode(fmt::format("return nsamp({})", t.number)));
    return t;
}

Synth Session::playSample(const SoundTable& table, double delay, double dur, int chan, double gain,
                          double speed, bool loop, double pan) {
    if (speed <= 0) throw SessionError("playSample: speed must be positive");
    if (dur == 0) dur = loop ? -1 : table.duration() / speed;
    return sched(kPlaySampleInstr, delay, dur, 1,
                 {{"itab", static_cast<double>(table.number)},
                  {"ichan", static_cast<double>(chan)},
                  {"kgain", gain},
                  {"kspeed", speed},
                  {"kpan", pan},
                  {"iloop", loop ? 1.0 : 0.0}});
}

// Time ----------------------------------------------------------------------------

void Session::dispatch(Pending& p) noexcept {
    const std::int64_t now = engine_.frame();
    const std::int64_t offset = std::max<std::int64_t>(0, p.frame - now);
    const bool guarded = p.slot >= 0;
    const bool current = guarded && slots_[static_cast<std::size_t>(p.slot)].inUse &&
                         slots_[static_cast<std::size_t>(p.slot)].generation == p.generation;
    switch (p.kind) {
    case Pending::setTable:
        if (guarded && !current) return;
        store(p.table, p.index, p.pfields[0]);
        return;
    case Pending::setInstr: {
        auto& t = *templates_[static_cast<std::size_t>(p.table - 1)];
        t.portValues[static_cast<std::size_t>(p.index)] = p.pfields[0];
        t.portSet[static_cast<std::size_t>(p.index)] = true;
        for (int slot : activeSlots_)
            if (slots_[static_cast<std::size_t>(slot)].tmpl == &t)
                store(ctlTable_, slot * options_.maxControls + p.index, p.pfields[0]);
        return;
    }
    case Pending::setChannel:
        storeChannel(p.index, p.pfields[0]);
        return;
    case Pending::stop: {
        if (!current) return;
        auto& s = slots_[static_cast<std::size_t>(p.slot)];
        if (!s.dispatched) { // never started: drop it
            for (auto& q : pending_)
                if (q.kind == Pending::start && q.slot == p.slot) q.slot = -2;
            freeSlot(p.slot);
            return;
        }
        break;
    }
    case Pending::start: {
        if (p.slot == -2) return; // unscheduled before it started
        auto& s = slots_[static_cast<std::size_t>(p.slot)];
        s.dispatched = true;
        s.startFrame = now + offset;
        break;
    }
    case Pending::event:
        if (guarded && !current) return;
        break;
    }
    sendEvent(std::span<const double>(p.pfields.data(), static_cast<std::size_t>(p.numPfields)),
              p.frame);
}

void Session::preallocate(int events) {
    // Instances of the internal instrs that a note-off or an automation starts
    compile(fmt::format("prealloc {}, {}\nprealloc {}, {}\n", kStopInstr, events, kAutomationInstr,
                        events / 4),
            "prealloc");
}

double Session::scheduledEnd() const {
    std::int64_t end = 0;
    for (int slot : activeSlots_)
        end = std::max(end, slots_[static_cast<std::size_t>(slot)].endFrame);
    for (const auto& p : pending_) {
        end = std::max(end, p.frame);
        if (p.kind == Pending::event) // automation: p3 is its length
            end = std::max(end, p.frame + static_cast<std::int64_t>(p.pfields[2] * engine_.sr()));
    }
    return static_cast<double>(end) / engine_.sr();
}

namespace {

// Csound's score sorts events of one time by instr number (whole part), then p3;
// the events of a cycle are handed over in that order, so that instances init
// (and draw random numbers) in the order the exported .csd gives them.
template <class P> bool scoreOrder(const P& a, const P& b) {
    if (a.frame != b.frame) return a.frame < b.frame;
    const bool ea = a.kind != P::setTable && a.kind != P::setInstr && a.kind != P::setChannel;
    const bool eb = b.kind != P::setTable && b.kind != P::setInstr && b.kind != P::setChannel;
    if (!ea || !eb) return ea < eb; // host writes first, in their order
    const auto ia = static_cast<long>(a.pfields[0]), ib = static_cast<long>(b.pfields[0]);
    if (ia != ib) return ia < ib;
    return a.pfields[2] < b.pfields[2];
}

} // namespace

bool Session::performCycle() noexcept {
    const std::int64_t end = engine_.frame() + engine_.ksmps();
    std::size_t due = 0;
    while (due < pending_.size() && pending_[due].frame < end)
        ++due;
    // a stable insertion sort of the few due events: no allocation
    for (std::size_t i = 1; i < due; ++i)
        for (std::size_t j = i; j > 0 && scoreOrder(pending_[j], pending_[j - 1]); --j)
            std::swap(pending_[j], pending_[j - 1]);
    // Dispatch may mark later starts as dropped; iterate by index.
    for (std::size_t i = 0; i < due; ++i)
        dispatch(pending_[i]);
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(due));
    const bool ok = engine_.performKsmps();
    reap();
    return ok;
}

} // namespace spinout
