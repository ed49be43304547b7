// spinout::Session: templates, the csoundengine-style API, and the cycle that
// hands the due actions to Csound in score order.
#include "spinout/session.hpp"
#include "spinout/text_file.hpp"

#include "spinout/sample_player.hpp"
#include "spinout/support.hpp"

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

constexpr std::uint64_t bit(int i) {
    return std::uint64_t{1} << i;
}

[[noreturn]] void throwCompileError(const CsoundError& err, const std::string& what) {
    if (err.refused) throw CodeRefused(fmt::format("{}: {}", what, err.message));
    if (err.line > 0)
        throw SessionError(fmt::format("{}, line {}: {}", what, err.line, err.message));
    throw SessionError(fmt::format("{}: {}", what, err.message));
}

} // namespace

SamplePlay samplePlay(const SoundTable& table, double dur, int chan, double gain, double speed,
                      bool loop, double pan, double skip) {
    if (!(speed > 0) || !std::isfinite(speed))
        throw SessionError(fmt::format("a sample's speed must be above 0, not {}", speed));
    if (!(skip >= 0) || skip >= table.duration())
        throw SessionError(
            fmt::format("skip {} s is past the sample's {} s", skip, table.duration()));
    if (!std::isfinite(gain) || !(pan >= -1 && pan <= 1) || chan < 1)
        throw SessionError("a sample's gain must be finite, its pan -1 or 0 to 1, its channel 1 "
                           "or more");
    SamplePlay p;
    p.dur = dur != 0 ? dur : (loop ? -1 : (table.duration() - skip) / speed);
    p.args = {{"itab", static_cast<double>(table.channels[0])},
              {"itab2", static_cast<double>(table.channels[1])},
              {"ichan", static_cast<double>(chan)},
              {"kgain", gain},
              {"kspeed", speed},
              {"kpan", pan},
              {"iskip", skip},
              {"iloop", loop ? 1.0 : 0.0}};
    return p;
}

std::optional<ExactTiming> exactTiming(std::int64_t start, std::int64_t frames, int ksmps,
                                       double sr) noexcept {
    if (start < 0 || frames <= 0 || ksmps <= 0) return std::nullopt;
    const double kr = sr / ksmps;
    const auto k = static_cast<std::int64_t>(ksmps);
    const auto end = start + frames;
    const auto lastCycle = (end + k - 1) / k; // the cycle the instance stops before
    // What Csound (6.18 insert.c) makes of p2 and p3 after the init pass, in its doubles:
    // the start within its cycle, the frames cut from the last cycle, the cycle it ends at.
    auto works = [&](double p2, double p3) {
        const auto startFrame = static_cast<std::int64_t>(p2 * sr);
        if (p2 < 0 || p3 <= 0 || startFrame % k != start % k) return false;
        const auto tail =
            (static_cast<std::int64_t>(static_cast<int>(p3 * sr)) + startFrame % k) % k;
        return tail == end % k && static_cast<std::int64_t>(std::ceil((p2 + p3) * kr)) == lastCycle;
    };
    // With margins of a quarter and a half sample: p2 a whole number of cycles earlier (or
    // p3 shorter) when the end falls on a cycle boundary, where p2 + p3 must not pass it.
    const double quarter = 0.25, half = 0.5;
    for (const auto& [p2Frames, p3Frames] :
         {std::pair{static_cast<double>(start) + quarter, static_cast<double>(frames) + half},
          std::pair{static_cast<double>(start - k) + quarter, static_cast<double>(frames) + half},
          std::pair{static_cast<double>(start) + quarter,
                    static_cast<double>(frames - k) + half}}) {
        if (works(p2Frames / sr, p3Frames / sr)) return ExactTiming{p2Frames / sr, p3Frames / sr};
    }
    // a note shorter than a cycle that ends on a cycle boundary: p2 + p3 exactly at it
    double p2 = static_cast<double>(start) / sr, p3 = static_cast<double>(frames) / sr;
    for (int i = 0; i < 8; ++i, p2 = std::nextafter(p2, 1e300)) {
        double q = p3;
        for (int j = 0; j < 8; ++j, q = std::nextafter(q, 1e300))
            if (works(p2, q)) return ExactTiming{p2, q};
    }
    return std::nullopt;
}

const Instr& samplePlayer() {
    // A phase (lphasor: a start, a loop) read with cubic interpolation (table3), a table
    // a channel. (loscil3 leaves the right channel's first frames unwritten when a note
    // starts inside a cycle, and loscilx clears its own pointers there: both in 6.18.)
    static const Instr player(kSamplePlayer, R"(
|itab, itab2=-1, ichan=1, kgain=1, kspeed=1, kpan=-1, iskip=0, iloop=0|
iframes = nsamp(itab)
istart = limit(iskip * ftsr(itab), 0, iframes - 1)
aphs lphasor kspeed * ftsr(itab) / sr, 0, iframes, iloop, istart
a1 = table3:a(aphs, itab) * kgain
if itab2 >= 0 then
  a2 = table3:a(aphs, itab2) * kgain
  outch ichan, a1, ichan + 1, a2
elseif kpan < 0 then
  outch ichan, a1
else
  outch ichan, a1 * cos(kpan * 1.5707963267948966), ichan + 1, a1 * sin(kpan * 1.5707963267948966)
endif
)",
                              {}, "", "plays a table read from a sound file");
    return player;
}

Session::Session(Engine& engine, SessionOptions options)
    : engine_(engine), options_(options), slots_(options.numSlots),
      queue_(static_cast<std::size_t>(options.maxPendingEvents)),
      buses_(options.numAudioBuses, options.numControlBuses) {
    if (options_.numPriorities < 1 || options_.numPriorities > 29)
        throw SessionError("numPriorities must be between 1 and 29");
    if (options_.maxControls < 1 || options_.maxControls > 64)
        throw SessionError("maxControls must be between 1 and 64");
    automations_.resize(static_cast<std::size_t>(options_.maxAutomations));
    for (int i = options_.maxAutomations - 1; i >= 0; --i)
        freeAutomations_.push_back(i);
    due_.reserve(static_cast<std::size_t>(options_.maxPendingEvents + options_.numSlots));
    journal_.setOn(options_.journal);
    if (journal_.on() && engine_.journal().empty())
        throw SessionError("a journaling session needs an engine journaling from its start");

    support::Sizes sizes;
    sizes.slots = options_.numSlots;
    sizes.maxControls = options_.maxControls;
    sizes.audioBuses = options_.numAudioBuses;
    sizes.controlBuses = options_.numControlBuses;
    sizes.ports = options_.numPorts;
    sizes.pairs = options_.numPairs;
    sizes.numPriorities = options_.numPriorities;
    if (auto err = engine_.compile(support::orchestra(sizes)))
        throw SessionError("the session's support code failed to compile: " + err->message);
    auto table = [&](const char* channel, int& number) {
        number = static_cast<int>(engine_.control(channel));
        return engine_.table(number);
    };
    ctl_ = table(support::kControlTableChannel, ctlTable_);
    alive_ = table(support::kHeartbeatTableChannel, aliveTable_);
    gen_ = table(support::kGenerationTableChannel, genTable_);
    kbus_ = table(support::kControlBusTableChannel, kbusTable_);
    ports_ = table(support::kPortTableChannel, portTable_);
    table(support::kTimingTableChannel, timingTable_);
    pairs_ = table(support::kPairsTableChannel, pairsTable_);
    audioBusCountChannel_ = channelId(support::kAudioBusCountChannel);
    // The internal instrs that play from frame 0 to the end: the silence that every
    // cycle's output starts from, and the clearing of the audio buses.
    alwaysOn_ = {support::kSilenceInstr, support::busClearInstr(options_.numPriorities)};
    startAlwaysOn(true);
    registerInstr(samplePlayer());
    templates_.back()->own = true;
}

void Session::startAlwaysOn(bool journal) {
    for (const int number : alwaysOn_) {
        const double p[] = {static_cast<double>(number), 0, -1};
        sendEvent(p, 0, journal);
    }
}

Session::~Session() = default;

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
    if (static_cast<int>(templates_.size()) >= support::kMaxTemplates)
        throw SessionError(
            fmt::format("too many instr templates (at most {})", support::kMaxTemplates));
    if (!instr.init().empty()) {
        const auto what = fmt::format("init code of '{}'", instr.name());
        if (auto err = compileSessionCode({CodeSource::init, instr.name()}, instr.init(), what))
            throwCompileError(*err, what);
    }
    const auto numControls = instr.controls().size();
    auto t = std::make_unique<Template>(Template{std::move(instr),
                                                 static_cast<int>(templates_.size()) + 1,
                                                 {},
                                                 std::vector<double>(numControls, 0.0),
                                                 0});
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
        if (t->instr.name() != kSamplePlayer) names.push_back(t->instr.name());
    return names;
}

const Session::Template& Session::templ(const std::string& name) const {
    auto it = byName_.find(name);
    if (it == byName_.end()) throw SessionError(fmt::format("unknown instr '{}'", name));
    return *it->second;
}

Session::Template& Session::templ(const std::string& name) {
    return const_cast<Template&>(std::as_const(*this).templ(name));
}

int Session::instrnum(const std::string& name, int priority) const {
    if (priority < 1 || priority > options_.numPriorities)
        throw SessionError(
            fmt::format("priority {} is out of range (1 to {})", priority, options_.numPriorities));
    return support::templateInstr(priority, templ(name).index);
}

int Session::templateIndex(const std::string& name) const {
    return templ(name).index;
}

const Instr* Session::templateOfInstrNum(int instrNum) const {
    const int priority = instrNum / support::kPriorityStride;
    const int index = instrNum % support::kPriorityStride;
    if (priority < 1 || priority > options_.numPriorities || index < 1 ||
        index > static_cast<int>(templates_.size()))
        return nullptr;
    return &templates_[static_cast<std::size_t>(index - 1)]->instr;
}

void Session::prepareSched(const std::string& name, int priority) {
    const int number = instrnum(name, priority);
    auto& t = templ(name);
    if (t.compiledAt[priority]) return;
    const CodeSource source{CodeSource::body, name, t.instr.headerLines()};
    const auto code = t.instr.code(number);
    if (auto err = t.own ? engine_.compile(code)
                         : compileSessionCode(source, code, fmt::format("instr '{}'", name))) {
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
    if (auto err = engine_.compile(code)) throwCompileError(*err, what);
}

std::optional<CsoundError> Session::compileSessionCode(const CodeSource& source,
                                                       const std::string& code,
                                                       const std::string& what) {
    if (gate_ == nullptr) return engine_.compile(code);
    if (!gate_->beforeParse(source, code))
        throw CodeRefused(fmt::format("{}: refused by the policy check", what));
    auto err = engine_.compileChecked(
        code, [&](const OrcParse& parsed) { return gate_->admit(source, parsed); });
    if (err && err->refused) throw CodeRefused(fmt::format("{}: {}", what, err->message));
    return err;
}

// The file's text is compiled (not an #include line), so an exported .csd stands alone.
void Session::includeFile(const std::string& path) {
    std::filesystem::path full(path);
    if (full.is_relative() && !engine_.options().searchDir.empty())
        full = std::filesystem::path(engine_.options().searchDir) / full;
    const auto text = readTextFile(full);
    if (!text) throw SessionError(fmt::format("cannot read the include file '{}'", full.string()));
    const auto what = fmt::format("include file '{}'", path);
    if (auto err = compileSessionCode({CodeSource::include, path}, *text, what))
        throwCompileError(*err, what);
}

// Preparing and starting events ------------------------------------------------

double Session::nextP1(int instrNum) noexcept {
    // A unique fractional p1 among the live instances: Csound ties a held note to the
    // next event that shares its p1.
    for (;;) {
        nextInstance_ = nextInstance_ % 999999 + 1;
        const double p1 = instrNum + nextInstance_ / 1e6;
        const bool taken = std::any_of(slots_.active().begin(), slots_.active().end(),
                                       [&](int slot) { return slots_[slot].p1 == p1; });
        if (!taken) return p1;
    }
}

int Session::stringId(const std::string& s) {
    auto it = strings_.find(s);
    if (it != strings_.end()) return it->second;
    const int id = static_cast<int>(strings_.size()) + 1;
    compile(fmt::format("strset {}, {}\n", id, csoundString(s)), "string argument");
    strings_[s] = id;
    return id;
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
            // a pfield a named arg reads is that arg (a pset k-arg's control too)
            for (const auto& pf : t.instr.pfields())
                if (pf.index == pfield) a = t.instr.arg(pf.name);
        } else if (a == nullptr) {
            throw SessionError(fmt::format("instr '{}' has no arg '{}'", name, argName));
        }
        double number = 0;
        if (const auto* d = std::get_if<double>(&value)) {
            if (a != nullptr && a->isString())
                throw SessionError(fmt::format("arg '{}' of '{}' takes a string", argName, name));
            if (!std::isfinite(*d))
                throw SessionError(fmt::format("arg '{}' of '{}' must be a finite number, not {}",
                                               argName, name, *d));
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
            if (e.buses.size() >= static_cast<std::size_t>(kMaxBusArgs))
                throw SessionError(
                    fmt::format("instr '{}': more than {} bus args", name, kMaxBusArgs));
            e.buses.push_back(bus);
            number = bus.token;
        }
        if (a != nullptr && a->isControl()) {
            e.controls[static_cast<std::size_t>(a->index)] = number;
            e.explicitControls |= bit(a->index);
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
    if (queue_.full()) return {};
    for (const auto& b : e.buses)
        if (busRefCount(b) <= 0) return {};
    const int slot = slots_.alloc();
    if (slot < 0) return {};
    const auto& t = *templates_[static_cast<std::size_t>(e.templateIndex - 1)];
    auto& s = slots_[slot];
    s.templateIndex = e.templateIndex;
    s.p1 = nextP1(e.instrNum);
    s.startFrame = frame;
    s.endFrame = dur < 0 ? -1 : frame + static_cast<std::int64_t>(std::llround(dur * engine_.sr()));
    s.explicitControls = e.explicitControls;
    for (const auto& b : e.buses) {
        buses_.addRef(b);
        s.buses[static_cast<std::size_t>(s.numBuses++)] = b;
    }
    s.numPfields = e.numPfields;
    std::copy(e.pfields.begin(), e.pfields.begin() + e.numPfields, s.pfields.begin());
    store(genTable_, slot, s.generation);
    store(aliveTable_, slot, -1);
    // The control row: defaults and args now; what ports set is added when it starts.
    const int row = slot * options_.maxControls;
    for (std::size_t i = 0; i < e.controls.size(); ++i)
        store(ctlTable_, row + static_cast<int>(i), e.controls[i]);
    for (const auto& o : overrides) {
        if (!o.ref.valid()) continue;
        if (o.ref.control) {
            store(ctlTable_, row + o.ref.index, o.value);
            s.explicitControls |= bit(o.ref.index);
            const auto& name = t.instr.controls()[static_cast<std::size_t>(o.ref.index)].name;
            for (const auto& pf : t.instr.pfields()) // a pset k-arg also keeps its pfield
                if (pf.isControl() && pf.name == name)
                    s.pfields[static_cast<std::size_t>(pf.index - 1)] = o.value;
        } else {
            s.pfields[static_cast<std::size_t>(o.ref.index - 1)] = o.value;
        }
    }
    s.pfields[0] = s.p1;
    s.pfields[2] = dur;
    s.pfields[3] = slot;
    QueuedEvent q;
    q.kind = QueuedEvent::start;
    q.frame = frame;
    q.slot = slot;
    q.generation = s.generation;
    queue_.push(q); // room was checked above
    return {slot, s.generation, s.p1};
}

void Session::stopAt(const Synth& synth, std::int64_t frame, bool release) noexcept {
    if (slots_.live(synth.slot, synth.generation) == nullptr) return; // already over
    auto& s = slots_[synth.slot];
    if (!s.started && frame <= s.startFrame) { // never started: it never will
        freeSlot(synth.slot);
        return;
    }
    // one stop per instance: the earliest, and without release if either says so
    s.stopRelease = (s.stopFrame < 0 || s.stopRelease) && release;
    if (s.stopFrame < 0 || frame < s.stopFrame) s.stopFrame = frame;
}

bool Session::inComingCycle(std::int64_t frame) const noexcept {
    return frame < engine_.frame() + engine_.ksmps();
}

bool Session::enqueue(const QueuedEvent& e) noexcept {
    return queue_.push(e);
}

// A set or a write: at once when it falls in the coming cycle, else queued for its cycle.
bool Session::write(const QueuedEvent& q) noexcept {
    if (!inComingCycle(q.frame)) return enqueue(q);
    apply(q);
    return true;
}

// A set or a write, now (before the coming cycle is performed).
void Session::apply(const QueuedEvent& q) noexcept {
    switch (q.kind) {
    case QueuedEvent::setControl: {
        if (slots_.live(q.slot, q.generation) == nullptr) return;
        auto& s = slots_[q.slot];
        if (!s.started) s.explicitControls |= bit(q.index); // a port value must not replace it
        store(ctlTable_, q.slot * options_.maxControls + q.index, q.value);
        return;
    }
    case QueuedEvent::setInstrControl:
        applyInstrControl(q.target, q.index, q.value);
        return;
    case QueuedEvent::writeBus:
        store(kbusTable_, q.target, q.value);
        return;
    case QueuedEvent::writeChannel:
        storeChannel(q.target, q.value);
        return;
    default:
        return;
    }
}

bool Session::setAt(const Synth& synth, int control, double value, std::int64_t frame) noexcept {
    if (slots_.live(synth.slot, synth.generation) == nullptr) return true;
    QueuedEvent q;
    q.kind = QueuedEvent::setControl;
    q.frame = frame;
    q.slot = synth.slot;
    q.generation = synth.generation;
    q.index = control;
    q.value = value;
    return write(q);
}

void Session::applyInstrControl(int templateIndex, int control, double value) noexcept {
    auto& t = *templates_[static_cast<std::size_t>(templateIndex - 1)];
    t.portValues[static_cast<std::size_t>(control)] = value;
    t.portSet |= bit(control);
    for (int slot : slots_.active())
        if (slots_[slot].started && slots_[slot].templateIndex == templateIndex)
            store(ctlTable_, slot * options_.maxControls + control, value);
}

bool Session::setInstrControlAt(int templateIndex, int control, double value,
                                std::int64_t frame) noexcept {
    QueuedEvent q;
    q.kind = QueuedEvent::setInstrControl;
    q.frame = frame;
    q.target = templateIndex;
    q.index = control;
    q.value = value;
    return write(q);
}

bool Session::writeBusAt(const Bus& bus, double value, std::int64_t frame) noexcept {
    QueuedEvent q;
    q.kind = QueuedEvent::writeBus;
    q.frame = frame;
    q.target = bus.token;
    q.value = value;
    return write(q);
}

int Session::channelId(const std::string& name) {
    for (std::size_t i = 0; i < channels_.size(); ++i)
        if (channels_[i].first == name) return static_cast<int>(i);
    channels_.emplace_back(name, engine_.controlChannel(name));
    return static_cast<int>(channels_.size()) - 1;
}

bool Session::writeChannelAt(int channel, double value, std::int64_t frame) noexcept {
    QueuedEvent q;
    q.kind = QueuedEvent::writeChannel;
    q.frame = frame;
    q.target = channel;
    q.value = value;
    return write(q);
}

double Session::portValue(int port) const noexcept {
    return ports_[static_cast<std::size_t>(port)];
}

void Session::setPortValue(int port, double value) noexcept {
    store(portTable_, port, value);
}

// Automation ------------------------------------------------------------------

void Session::scheduleAutomation(int table, int index, std::span<const double> pairs,
                                 AutomationMode mode, std::int64_t frame, bool overtake, int slot,
                                 std::uint32_t generation, double ahead) {
    if (pairs.size() < 2 || pairs.size() % 2 != 0)
        throw SessionError("automation pairs must be time, value, time, value, ...");
    for (std::size_t i = 2; i < pairs.size(); i += 2)
        if (pairs[i] < pairs[i - 2]) throw SessionError("automation times must not decrease");
    for (double v : pairs)
        if (!std::isfinite(v)) throw SessionError("automation pairs must be finite numbers");
    if (freeAutomations_.empty())
        throw SessionError(fmt::format("too many automations waiting to start (more than {})",
                                       options_.maxAutomations));
    if (queue_.full())
        throw SessionError(
            fmt::format("too many pending events (more than {})", options_.maxPendingEvents));
    const double cycle = static_cast<double>(engine_.ksmps()) / engine_.sr();
    const auto begin = frame + static_cast<std::int64_t>(std::llround(pairs[0] * engine_.sr()));
    const double length = pairs[pairs.size() - 2] - pairs[0] + 2 * cycle;
    // The pairs go to the session's pairs table, where the automation instr reads them:
    // written now (journaled, so an exported .csd writes them too), kept until it is over.
    const auto size = static_cast<int>(pairs.size());
    const int offset =
        allocPairs(size, begin + static_cast<std::int64_t>(std::ceil(length * engine_.sr())) +
                             engine_.ksmps());
    if (offset < 0)
        throw SessionError(fmt::format("automation of {} breakpoints: more than the {} "
                                       "numbers the session holds for automation at once",
                                       pairs.size() / 2, options_.numPairs));
    for (int i = 0; i < size; i += 2) { // times relative to the first breakpoint
        store(pairsTable_, offset + i, pairs[static_cast<std::size_t>(i)] - pairs[0]);
        store(pairsTable_, offset + i + 1, pairs[static_cast<std::size_t>(i) + 1]);
    }
    const int record = freeAutomations_.back();
    freeAutomations_.pop_back();
    automations_[static_cast<std::size_t>(record)] = {support::kAutomationInstr + 0.0,
                                                      0,
                                                      length,
                                                      static_cast<double>(index),
                                                      static_cast<double>(table),
                                                      static_cast<double>(offset),
                                                      static_cast<double>(size),
                                                      static_cast<double>(mode.shape),
                                                      mode.exponent,
                                                      overtake ? 1.0 : 0.0,
                                                      static_cast<double>(slot),
                                                      static_cast<double>(generation),
                                                      ahead};
    QueuedEvent q;
    q.kind = QueuedEvent::automation;
    q.frame = begin;
    q.slot = slot;
    q.generation = generation;
    q.target = record;
    enqueue(q);
}

// First fit in the pairs table, among blocks whose automation is not over by now.
int Session::allocPairs(int size, std::int64_t end) {
    const auto now = engine_.frame();
    std::erase_if(pairBlocks_, [&](const PairsBlock& b) { return b.end <= now; });
    int at = 0;
    auto it = pairBlocks_.begin();
    for (; it != pairBlocks_.end(); ++it) {
        if (it->offset - at >= size) break;
        at = it->offset + it->size;
    }
    if (at + size > options_.numPairs) return -1;
    pairBlocks_.insert(it, PairsBlock{at, size, end});
    return at;
}

void Session::automateAt(const Synth& synth, int control, std::span<const double> pairs,
                         AutomationMode mode, std::int64_t frame, bool overtake) {
    if (slots_.live(synth.slot, synth.generation) == nullptr)
        throw SessionError("the synth is no longer scheduled");
    scheduleAutomation(ctlTable_, synth.slot * options_.maxControls + control, pairs, mode, frame,
                       overtake, synth.slot, synth.generation);
}

void Session::automateBusAt(const Bus& bus, std::span<const double> pairs, AutomationMode mode,
                            std::int64_t frame, bool overtake) {
    if (bus.kind != BusKind::control) throw SessionError("only a control bus can be automated");
    if (busRefCount(bus) <= 0) throw SessionError("the bus is not assigned");
    scheduleAutomation(kbusTable_, bus.token, pairs, mode, frame, overtake, -1, 0);
}

void Session::automatePortAt(int port, std::span<const double> pairs, AutomationMode mode,
                             std::int64_t frame, bool overtake, double ahead) {
    if (port < 0 || port >= options_.numPorts) throw SessionError("no such port");
    scheduleAutomation(portTable_, port, pairs, mode, frame, overtake, -1, 0, ahead);
}

// csoundengine's API ------------------------------------------------------------

std::int64_t Session::frameAt(double delay) const {
    if (!(delay >= 0) || !std::isfinite(delay))
        throw SessionError(fmt::format("delay must be 0 or more, not {}", delay));
    return engine_.frame() + static_cast<std::int64_t>(std::llround(delay * engine_.sr()));
}

Synth Session::sched(const std::string& name, double delay, double dur, int priority,
                     const SchedArgs& args) {
    if (!std::isfinite(dur) || dur == 0 || (dur < 0 && dur != -1))
        throw SessionError(fmt::format("dur must be positive or -1, not {}", dur));
    const auto frame = frameAt(delay);
    const auto e = prepare(name, priority, args);
    auto synth = startAt(e, frame, dur);
    if (!synth.valid()) {
        if (queue_.full())
            throw SessionError(
                fmt::format("too many pending events (more than {})", options_.maxPendingEvents));
        throw SessionError(
            fmt::format("too many instances: all {} slots are in use", options_.numSlots));
    }
    return synth;
}

const InstrArg& Session::control(const Synth& synth, const std::string& param) const {
    const auto* s = slots_.live(synth.slot, synth.generation);
    if (s == nullptr) throw SessionError("the synth is no longer scheduled");
    const auto& instr = templates_[static_cast<std::size_t>(s->templateIndex - 1)]->instr;
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
    if (!std::isfinite(value))
        throw SessionError(
            fmt::format("'{}' must be set to a finite number, not {}", param, value));
    if (!setAt(synth, c.index, value, frameAt(delay)))
        throw SessionError("too many pending events");
}

double Session::getControl(const Synth& synth, const std::string& param) const {
    const auto& c = control(synth, param);
    return ctl_[static_cast<std::size_t>(synth.slot * options_.maxControls + c.index)];
}

void Session::automate(const Synth& synth, const std::string& param, std::span<const double> pairs,
                       AutomationMode mode, double delay, bool overtake) {
    automateAt(synth, control(synth, param).index, pairs, mode, frameAt(delay), overtake);
}

void Session::unsched(const Synth& synth, double delay) {
    stopAt(synth, frameAt(delay));
}

void Session::unschedAll(bool future) {
    std::vector<Synth> targets;
    for (int slot : slots_.active()) {
        const auto& s = slots_[slot];
        if (s.started || future) targets.push_back({slot, s.generation, s.p1});
    }
    for (const auto& t : targets)
        unsched(t);
}

bool Session::isScheduled(const Synth& synth) const {
    return slots_.live(synth.slot, synth.generation) != nullptr;
}

bool Session::isPlaying(const Synth& synth) const {
    const auto* s = slots_.live(synth.slot, synth.generation);
    return s != nullptr && s->started && s->startFrame < engine_.frame();
}

std::vector<Synth> Session::activeSynths() const {
    std::vector<Synth> out;
    for (int slot : slots_.active()) {
        const auto& s = slots_[slot];
        if (s.started && s.startFrame < engine_.frame()) out.push_back({slot, s.generation, s.p1});
    }
    std::sort(out.begin(), out.end(), [&](const Synth& a, const Synth& b) {
        return slots_[a.slot].startFrame < slots_[b.slot].startFrame;
    });
    return out;
}

// Buses ---------------------------------------------------------------------------

Bus Session::assignBus(BusKind kind, std::optional<double> value) {
    if (kind == BusKind::audio && value)
        throw SessionError("an audio bus has no value; give a value only to a control bus");
    const auto bus = buses_.assign(kind);
    if (!bus)
        throw SessionError(fmt::format("no free {} bus (all {} in use)",
                                       kind == BusKind::audio ? "audio" : "control",
                                       buses_.capacity(kind)));
    if (kind == BusKind::control)
        store(kbusTable_, bus->token, value.value_or(0.0));
    else
        storeChannel(audioBusCountChannel_, buses_.audioBusesInUse());
    return *bus;
}

void Session::releaseBus(const Bus& bus) {
    if (busRefCount(bus) <= 0) throw SessionError("the bus is not assigned");
    buses_.dropRef(bus);
}

void Session::writeBus(const Bus& bus, double value, double delay) {
    if (bus.kind != BusKind::control) throw SessionError("only a control bus can be written");
    if (busRefCount(bus) <= 0) throw SessionError("the bus is not assigned");
    if (!writeBusAt(bus, value, frameAt(delay))) throw SessionError("too many pending events");
}

double Session::readBus(const Bus& bus) const {
    if (bus.kind != BusKind::control) throw SessionError("only a control bus can be read");
    if (busRefCount(bus) <= 0) throw SessionError("the bus is not assigned");
    return kbus_[static_cast<std::size_t>(bus.token)];
}

void Session::automateBus(const Bus& bus, std::span<const double> pairs, AutomationMode mode,
                          double delay, bool overtake) {
    automateBusAt(bus, pairs, mode, frameAt(delay), overtake);
}

// Tables -------------------------------------------------------------------------

SoundTable Session::readSoundfile(const std::string& path, int channel) {
    return describeSoundTable(engine_.readSoundFile(path, channel), channel == 0 ? path : "");
}

SoundTable Session::describeSoundTable(int number, const std::string& path) {
    SoundTable t;
    t.number = number;
    t.sr = engine_.evalCode(fmt::format("return ftsr({})", number));
    t.nchnls = static_cast<int>(engine_.evalCode(fmt::format("return ftchnls({})", number)));
    t.frames = static_cast<std::int64_t>(engine_.evalCode(fmt::format("return nsamp({})", number)));
    t.channels = {number, -1};
    if (t.nchnls >= 2 && !path.empty())
        t.channels = {engine_.readSoundFile(path, 1), engine_.readSoundFile(path, 2)};
    return t;
}

Synth Session::playSample(const SoundTable& table, double delay, double dur, int chan, double gain,
                          double speed, bool loop, double pan, double skip) {
    const auto play = samplePlay(table, dur, chan, gain, speed, loop, pan, skip);
    return sched(kSamplePlayer, delay, play.dur, 1, play.args);
}

// Host writes -------------------------------------------------------------------

void Session::setJournal(bool on) {
    journal_.setOn(on);
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
    else if (table == portTable_)
        ports_[i] = value;
    else if (table == timingTable_)
        engine_.table(timingTable_)[i] = value;
    else if (table == pairsTable_)
        pairs_[i] = value;
    journal_.tableWrite(engine_.frame(), table, index, value);
}

void Session::storeChannel(int channel, double value) noexcept {
    const auto& [name, ptr] = channels_[static_cast<std::size_t>(channel)];
    *ptr = value;
    journal_.channelWrite(engine_.frame(), name, value);
}

void Session::startSupportInstr(int number) {
    const double p[] = {static_cast<double>(number), 0, -1};
    sendEvent(p, engine_.frame());
    if (engine_.frame() == 0) alwaysOn_.push_back(number); // a rewind ends it: started again
}

// Hands an event to Csound at `frame`, which lies in the coming cycle.
void Session::sendEvent(std::span<const double> pfields, std::int64_t frame,
                        bool journal) noexcept {
    const std::int64_t offset = std::max<std::int64_t>(0, frame - engine_.frame());
    std::array<double, kMaxPfields> p{};
    std::copy(pfields.begin(), pfields.end(), p.begin());
    // Csound places an API event with a positive delay one cycle late; a negative
    // delay of (offset - ksmps) lands it in the coming cycle (templates then set their
    // exact p2 and p3 at the end of their init pass: see exactTiming). Csound truncates
    // the start to a sample: a quarter sample keeps 23.99999 from becoming 23. An event at
    // the cycle's start is no exception: Csound inits a cycle's events in the order of
    // their delays, and a note that starts there must init before its stop later in the
    // same cycle (with +0.25 it came after, and the stop found nothing: a stuck note).
    const auto shift = engine_.ksmps();
    p[1] = (static_cast<double>(offset - shift) + 0.25) / engine_.sr();
    engine_.scoreEvent('i', std::span<const double>(p.data(), pfields.size()));
    if (journal) journal_.event(engine_.frame() + offset, pfields);
}

// The cycle ----------------------------------------------------------------------

void Session::freeSlot(int slot) noexcept {
    auto& s = slots_[slot];
    for (int i = 0; i < s.numBuses; ++i)
        buses_.dropRef(s.buses[static_cast<std::size_t>(i)]);
    store(genTable_, slot, 0);
    slots_.free(slot);
}

void Session::start(int slot, std::int64_t frame) noexcept {
    auto& s = slots_[slot];
    s.started = true;
    s.startFrame = std::max(frame, engine_.frame());
    // Ports give the k-args the event did not: their values now, at its start.
    const auto& t = *templates_[static_cast<std::size_t>(s.templateIndex - 1)];
    const auto unset = t.portSet & ~s.explicitControls;
    if (unset != 0)
        for (std::size_t i = 0; i < t.portValues.size(); ++i)
            if ((unset & bit(static_cast<int>(i))) != 0)
                store(ctlTable_, slot * options_.maxControls + static_cast<int>(i),
                      t.portValues[i]);
    // The p2 and p3 its init pass ends with (the template's code sets them): the exact
    // start and end, whatever time Csound was told to count from. Journaled: a .csd's
    // events end their init the same way.
    const double dur = s.pfields[2];
    const auto timing =
        dur > 0 ? exactTiming(s.startFrame, static_cast<std::int64_t>(dur * engine_.sr()),
                              engine_.ksmps(), engine_.sr())
                : std::nullopt;
    store(timingTable_, slot * 2, timing ? timing->p2 : 0.0);
    store(timingTable_, slot * 2 + 1, timing ? timing->p3 : 0.0);
    sendEvent(std::span<const double>(s.pfields.data(), static_cast<std::size_t>(s.numPfields)),
              frame);
}

void Session::collectDue(std::int64_t end) noexcept {
    due_.clear();
    while (!queue_.empty() && queue_.nextFrame() < end) {
        Due d{queue_.pop()};
        switch (d.event.kind) {
        case QueuedEvent::start: {
            const auto& s = slots_[d.event.slot];
            d.p1 = s.p1;
            d.p3 = s.pfields[2];
            break;
        }
        case QueuedEvent::automation: {
            const auto& a = automations_[static_cast<std::size_t>(d.event.target)];
            d.p1 = a[0];
            d.p3 = a[2];
            break;
        }
        default:
            d.hostWrite = true;
            break;
        }
        due_.push_back(d);
    }
    for (int slot : slots_.active()) {
        auto& s = slots_[slot];
        if (s.stopFrame < 0 || s.stopFrame >= end) continue;
        Due d;
        d.event.kind = QueuedEvent::stop;
        d.event.frame = s.stopFrame;
        d.event.slot = slot;
        d.event.generation = s.generation;
        d.event.value = s.stopRelease ? 1 : 0;
        d.p1 = support::kStopInstr;
        due_.push_back(d);
        s.stopFrame = -1;
    }
}

void Session::dispatch(const Due& d) noexcept {
    const auto& e = d.event;
    const bool live = e.slot < 0 || slots_.live(e.slot, e.generation) != nullptr;
    switch (e.kind) {
    case QueuedEvent::setControl:
    case QueuedEvent::setInstrControl:
    case QueuedEvent::writeBus:
    case QueuedEvent::writeChannel:
        apply(e);
        return;
    case QueuedEvent::start:
        if (live && !slots_[e.slot].started) start(e.slot, e.frame);
        return;
    case QueuedEvent::stop: {
        if (!live) return;
        const double p[] = {support::kStopInstr, 0, 0, slots_[e.slot].p1, e.value};
        sendEvent(p, e.frame);
        return;
    }
    case QueuedEvent::automation: {
        // Sent even for an instance that ended: the instr sees the generation change,
        // stops, and frees its breakpoint table.
        sendEvent(automations_[static_cast<std::size_t>(e.target)], e.frame);
        freeAutomations_.push_back(e.target);
        return;
    }
    }
}

// An action past the cycle's event limit: it waits for the next cycle.
void Session::defer(const Due& d) noexcept {
    if (d.event.kind == QueuedEvent::stop) {
        auto& s = slots_[d.event.slot];
        if (s.generation == d.event.generation && s.inUse) {
            s.stopFrame = d.event.frame;
            s.stopRelease = d.event.value != 0;
        }
        return;
    }
    queue_.push(d.event); // it was taken from the queue this cycle: there is room
}

bool Session::performCycle() noexcept {
    dispatchDue();
    const bool ok = engine_.performKsmps();
    const double cycle = static_cast<double>(engine_.frame() / engine_.ksmps());
    slots_.reap(alive_, cycle, engine_.frame(), [&](int slot) {
        auto& s = slots_[slot];
        for (int i = 0; i < s.numBuses; ++i)
            buses_.dropRef(s.buses[static_cast<std::size_t>(i)]);
        store(genTable_, slot, 0);
    });
    return ok;
}

void Session::dispatchDue() noexcept {
    const std::int64_t now = engine_.frame();
    collectDue(now + engine_.ksmps());
    // Csound's score order, so that instances init (and draw random numbers) in the order
    // an exported .csd gives them: by frame, host writes first, then by instr number
    // (whole part) and p3; equal ones in the order they were queued.
    std::sort(due_.begin(), due_.end(), [](const Due& a, const Due& b) {
        if (a.event.frame != b.event.frame) return a.event.frame < b.event.frame;
        if (a.hostWrite != b.hostWrite) return a.hostWrite;
        if (!a.hostWrite) {
            const auto ia = static_cast<long>(a.p1), ib = static_cast<long>(b.p1);
            if (ia != ib) return ia < ib;
            if (a.p3 != b.p3) return a.p3 < b.p3;
        }
        return a.event.seq < b.event.seq;
    });
    // Csound holds Engine::kEventsPerCycle event nodes: more events in one cycle would
    // allocate, so the rest wait for the next cycle (a stop sorts before a start of its
    // frame, so a cut never puts a start before the stop that makes room for it).
    // Only what reaches Csound counts: not the start of an instance stopped before it
    // started (a note stolen in the same cycle), nor the stop of one that is over.
    auto reachesCsound = [&](const Due& d) {
        if (d.hostWrite) return false;
        const auto* s = slots_.live(d.event.slot, d.event.generation);
        if (d.event.kind == QueuedEvent::start) return s != nullptr && !s->started;
        if (d.event.kind == QueuedEvent::stop) return s != nullptr;
        return true;
    };
    int events = 0;
    for (const auto& d : due_) {
        const bool counts = reachesCsound(d);
        if (counts && events == Engine::kEventsPerCycle) {
            defer(d);
            continue;
        }
        if (counts) ++events;
        dispatch(d);
    }
}

void Session::performCycleBeforeStart(const Synth& only) {
    if (engine_.frame() != 0) throw SessionError("a cycle before the start, after it");
    // Host writes (tables, channels) go first in any cycle: made now, they are there for
    // the start as in the first cycle. Every other event waits for the host's first cycle
    // (the rewind would end what it started).
    collectDue(engine_.ksmps());
    for (const auto& d : due_)
        if (d.hostWrite) dispatch(d);
    for (const auto& d : due_) {
        if (d.hostWrite) continue;
        if (d.event.kind == QueuedEvent::start && d.event.slot == only.slot &&
            d.event.generation == only.generation)
            dispatch(d);
        else
            defer(d);
    }
    engine_.performKsmps();
    // No reaping: what ended frees its slot after the host's first cycle (heartbeats).
    engine_.rewind();
    startAlwaysOn(false); // the rewind ended them; the journal has them from frame 0
}

void Session::preallocate(int events) {
    // Instances of the internal instrs that a stop or an automation starts
    compile(fmt::format("prealloc {}, {}\nprealloc {}, {}\n", support::kStopInstr, events,
                        support::kAutomationInstr, events / 4),
            "prealloc");
}

} // namespace spinout
