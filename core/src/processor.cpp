// spinout::Processor: builds a session from its spec and adapts host blocks,
// MIDI and ports to the session's cycles.
#include "spinout/processor.hpp"

#include "spinout/ports.hpp"
#include "spinout/support.hpp"
#include "spinout/warm_up.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <sstream>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

namespace spinout {

namespace {

[[noreturn]] void fail(const SourcePos& pos, const std::string& message) {
    throw SessionFileError({{pos, message}});
}

// Flush denormals to zero for the scope of a block (FTZ and DAZ).
class DenormalGuard {
public:
    // Writing MXCSR is slow next to reading it: write only when it changes.
    DenormalGuard() noexcept {
#if defined(__SSE__)
        saved_ = _mm_getcsr();
        if ((saved_ & 0x8040) != 0x8040) _mm_setcsr(saved_ | 0x8040);
#endif
    }
    ~DenormalGuard() {
#if defined(__SSE__)
        if ((saved_ & 0x8040) != 0x8040) _mm_setcsr(saved_);
#endif
    }
    DenormalGuard(const DenormalGuard&) = delete;
    DenormalGuard& operator=(const DenormalGuard&) = delete;

private:
    unsigned saved_ = 0;
};

} // namespace

Processor::Processor(const SessionSpec& spec, ProcessorOptions options)
    : spec_(spec), options_(std::move(options)), ksmps_(spec.ksmps) {
    // The policy check reads each piece of the session's code as the engine parses it,
    // and only what it admits is compiled (policy.hpp): at load, and whenever an instr is
    // compiled again later (at another priority).
    gate_ = std::make_unique<PolicyGate>(spec_, options_.grants);
    auto& gate = *gate_;
    try {
        if (!gate.checkFiles()) throw SessionFileError(gate.diagnostics());
        build(gate);
    } catch (...) {
        if (options_.watchdog != nullptr) options_.watchdog->watch(nullptr);
        // A refusal, or an error the check names first (code Csound cannot parse): the
        // whole check's report, every piece read on a scratch instance.
        if (auto report = checkPolicy(spec_, options_.grants); !report.empty())
            throw SessionFileError(std::move(report));
        if (!gate.diagnostics().empty()) throw SessionFileError(gate.diagnostics());
        throw;
    }
}

Processor::~Processor() {
    // before the engine goes: the watchdog may be reading it
    if (options_.watchdog != nullptr) options_.watchdog->watch(nullptr);
}

void Processor::build(PolicyGate& gate) {
    EngineOptions eo;
    eo.sr = options_.sr;
    eo.ksmps = ksmps_;
    eo.nchnls = spec_.audioOutputs;
    eo.nchnlsIn = spec_.audioInputs;
    eo.a4 = spec_.a4;
    eo.searchDir = spec_.dir;
    eo.journal = options_.session.journal;
    eo.reserveEventNodes = options_.realTime;
    const SourcePos filePos{spec_.path, 0, 0};
    try {
        engine_ = std::make_unique<Engine>(eo);
    } catch (const EngineError& e) {
        fail(filePos, e.what());
    }
    session_ = std::make_unique<Session>(*engine_, options_.session);
    if (options_.watchdog != nullptr)
        options_.watchdog->watch(engine_.get(), [this] { return whereStuck(); });
    auto& s = *session_;
    s.preallocate();
    s.setCodeGate(&gate);

    for (std::size_t i = 0; i < spec_.includes.size(); ++i) {
        const auto& inc = spec_.includes[i];
        const SourcePos pos = i < spec_.includePos.size() ? spec_.includePos[i] : filePos;
        // the policy check's rule, again where the file is read
        if (!options_.grants.has(Permission::read))
            if (auto why = outsideFolder(spec_.dir, inc))
                fail(pos,
                     fmt::format("include file '{}' needs the 'read' permission: {}", inc, *why));
        compiling_ = {spec_.path, 0, 0};
        try {
            s.includeFile(inc);
        } catch (const SessionError& e) {
            fail(pos, e.what());
        }
    }
    if (!spec_.globals.empty()) {
        compiling_ = {spec_.path, spec_.globalsLine, 1};
        if (auto err = s.compileSessionCode({CodeSource::globals, ""}, spec_.globals,
                                            "[engine] globals")) {
            const int line = err->line > 0 ? spec_.globalsLine + err->line - 1 : spec_.globalsLine;
            fail({spec_.path, line, 1}, "in [engine] globals: " + err->message);
        }
    }
    compiling_ = {};
    makeTables(spec_.tables); // before the instrs: their code reads gi_NAME
    for (const auto& is : spec_.instrs) {
        try {
            s.registerInstr(*is.instr);
            s.prepareSched(is.name, is.priority.value_or(1));
        } catch (const InstrError& e) {
            const int line = e.line > 0 ? is.bodyLine + e.line - 1 : is.pos.line;
            fail({spec_.path, line, 1}, e.what());
        } catch (const SessionError& e) {
            fail(is.pos, e.what());
        }
    }
    for (const auto& b : spec_.buses) {
        buses_.push_back(b.kind == BusKind::control ? s.assignBus(b.kind, b.value)
                                                    : s.assignBus(b.kind));
    }
    buildHostTime(); // before the ports: a port in beats takes the tempo
    buildPorts();    // then the warm-up, the chain and the voices start with their values
    buildPrograms();
    warmUpVoices(); // before the chain: it may perform a cycle and rewind

    for (const auto& run : spec_.runs) {
        try {
            const auto e = s.prepare(run.instr, run.priority.value_or(0), schedArgs(run.args));
            if (!s.startAt(e, 0, -1).valid()) fail(run.pos, "no room to start the instance");
        } catch (const SessionError& e) {
            fail(run.pos, e.what());
        } catch (const InstrError& e) {
            fail(run.pos, e.what());
        }
    }

    buildVoices();
}

void Processor::buildPorts() {
    auto& s = *session_;
    for (const auto& ps : spec_.ports) {
        Port p;
        try {
            switch (ps.target.kind) {
            case PortTarget::control:
                p.templateIndex = s.templateIndex(ps.target.instr);
                p.control = s.argRef(ps.target.instr, ps.target.name).index;
                break;
            case PortTarget::bus:
                if (ps.output)
                    p.source = &s.controlBusValue(busNamed(ps.target.name, ps.pos));
                else
                    p.bus = busNamed(ps.target.name, ps.pos);
                break;
            case PortTarget::channel:
                if (ps.output)
                    p.source = engine_->controlChannel(ps.target.name);
                else
                    p.channel = s.channelId(ps.target.name);
                break;
            }
        } catch (const SessionError& e) {
            fail(ps.pos, e.what());
        } catch (const EngineError& e) {
            fail(ps.pos, e.what());
        }
        p.pending = !ps.output; // an output shows its source, read after each block
        ports_.push_back(p);
        if (ps.to != BeatConversion::none) tempoPorts_.push_back(ports_.size() - 1);
        if (ps.output) continue;
        double value = ps.def;
        for (const auto& [index, v] : options_.portValues)
            if (index == ports_.size() - 1) value = v;
        ports_.back().value = ports_.back().hostValue =
            clampPortValue(ps, static_cast<float>(value));
        applyPort(ports_.size() - 1, ports_.back().value, 0);
    }
}

void Processor::buildHostTime() {
    hostTime_ = spec_.hostTime;
    if (!hostTime_) return;
    auto& s = *session_;
    const char* names[] = {support::host::kBpm,         support::host::kBeat,
                           support::host::kBar,         support::host::kBarBeat,
                           support::host::kBeatsPerBar, support::host::kBeatUnit,
                           support::host::kSpeed,       support::host::kSeconds};
    for (std::size_t i = 0; i < clockChannels_.size(); ++i)
        clockChannels_[i] = s.channelId(names[i]);
    playingChannel_ = s.channelId(support::host::kPlaying);
    positionChannel_ = s.channelId(support::kHostPositionChannel);
    s.startSupportInstr(support::kHostTimeInstr);
    writeClock(0); // a stopped transport at 120 bpm in 4/4 until the host says more
}

// Every input port's value for each preset (its own, else the default): a program change
// sounds as the LV2 preset does, from any state.
void Processor::buildPrograms() {
    for (const auto& preset : spec_.presets) {
        std::vector<std::pair<std::size_t, double>> values;
        for (std::size_t i = 0; i < spec_.ports.size(); ++i) {
            const auto& port = spec_.ports[i];
            if (port.output) continue;
            double v = port.def;
            for (const auto& [symbol, value] : preset.values)
                if (symbol == port.symbol) v = value;
            values.emplace_back(i, v);
        }
        programs_.push_back(std::move(values));
    }
}

void Processor::buildVoices() {
    if (!spec_.midi) return;
    auto& s = *session_;
    const auto& m = *spec_.midi;
    try {
        voiceEvent_ = std::make_unique<PreparedEvent>(
            s.prepare(m.instr, m.priority.value_or(0), schedArgs(m.args)));
        if (!m.pitch.empty()) pitchArg_ = s.argRef(m.instr, m.pitch);
        if (!m.velocity.empty()) velocityArg_ = s.argRef(m.instr, m.velocity);
    } catch (const SessionError& e) {
        fail(m.pos, e.what());
    } catch (const InstrError& e) {
        fail(m.pos, e.what());
    }
    // Released and stolen voices sound on through their release: up to two tails per
    // voice (see keepTail).
    voices_.resize(static_cast<std::size_t>(m.voices));
    tails_.reserve(static_cast<std::size_t>(m.voices) * 2);
}

void Processor::warmUpVoices() {
    // Offline (a journal is an export's, never a real-time host's), Csound may allocate
    // when a note starts: no warm-up, as in an exported .csd.
    if (!spec_.midi || !options_.realTime || options_.session.journal) return;
    auto& s = *session_;
    const auto& m = *spec_.midi;
    // Csound allocates an instance, and much of what it needs, on the instance's first
    // init pass: every instance the voices can need is made and inited now, in a cycle of
    // its own when the session schedules nothing at load (warm_up.hpp).
    int instances = m.voices * 3;
    for (const auto& run : spec_.runs)
        if (run.instr == m.instr) ++instances;
    try {
        const auto event = s.prepare(m.instr, m.priority.value_or(0), schedArgs(m.args));
        warmUpInstances(s, event, instances, !schedulesAtLoad(spec_));
    } catch (const SessionError& e) {
        fail(m.pos, e.what());
    } catch (const InstrError& e) {
        fail(m.pos, e.what());
    }
}

Bus Processor::busNamed(const std::string& name, const SourcePos& pos) const {
    for (std::size_t i = 0; i < spec_.buses.size(); ++i)
        if (spec_.buses[i].name == name) return buses_[i];
    fail(pos, fmt::format("no bus named '{}'", name));
}

namespace {

// Csound code that makes a table as the global gi_NAME: journaled like all code, so an
// exported .csd makes the same table with the same number.
std::string tableCode(const TableSpec& t) {
    const auto var = "gi_" + t.name;
    switch (t.source) {
    case TableSpec::fromValues: {
        // GEN02 takes a long list poorly: the values are written at init after it
        std::string code = fmt::format("{} ftgen 0, 0, -{}, -2, 0\n", var, t.values.size());
        for (std::size_t i = 0; i < t.values.size(); ++i)
            if (t.values[i] != 0)
                code += fmt::format("tabw_i {}, {}, {}\n", csoundNumber(t.values[i]), i, var);
        return code;
    }
    case TableSpec::fromGen: {
        std::string args;
        for (double v : t.values)
            args += ", " + csoundNumber(v);
        return fmt::format("{} ftgen 0, 0, {}, {}{}\n", var, t.size, t.gen, args);
    }
    case TableSpec::fromFile:
        return fmt::format("{} ftgen 0, 0, 0, -1, {}, 0, 0, {}\n", var, csoundString(t.path),
                           t.channel);
    }
    return {};
}

} // namespace

void Processor::makeTables(std::span<const TableSpec> tables) {
    for (const auto& t : tables) {
        // a sound file stays in the folder of the file that names it, unless `read`
        if (t.source == TableSpec::fromFile && !options_.grants.has(Permission::read)) {
            const auto folder =
                std::filesystem::absolute(std::filesystem::path(t.pos.file)).parent_path();
            if (auto why = outsideFolder(folder.string(), t.file))
                fail(t.pos, fmt::format("[table.{}]: the sound file '{}' needs the 'read' "
                                        "permission: {}",
                                        t.name, t.file, *why));
        }
        if (auto err = engine_->compile(tableCode(t)))
            fail(t.pos, fmt::format("[table.{}]: {}", t.name, err->message));
        SoundTable info;
        try {
            const auto number =
                static_cast<int>(engine_->evalCode(fmt::format("return gi_{}", t.name)));
            // a table Csound could not make is an error, never an empty table
            if (number <= 0 || engine_->table(number).empty())
                throw EngineError("Csound made no table");
            info = session_->describeSoundTable(
                number, t.source == TableSpec::fromFile && t.channel == 0 ? t.path : "");
        } catch (const EngineError& e) {
            fail(t.pos,
                 fmt::format("[table.{}]: Csound could not make the table: {}", t.name, e.what()));
        }
        tables_.emplace_back(t.name, info);
    }
}

Bus Processor::bus(const std::string& name) const {
    const int i = spec_.busIndex(name);
    if (i < 0) throw SessionError(fmt::format("no bus named '{}'", name));
    return buses_[static_cast<std::size_t>(i)];
}

const SoundTable* Processor::table(const std::string& name) const {
    for (const auto& [n, t] : tables_)
        if (n == name) return &t;
    return nullptr;
}

SchedArgs Processor::schedArgs(const SpecArgs& args) const {
    SchedArgs out;
    for (const auto& [name, v] : args) {
        if (!v.bus.empty())
            out.emplace_back(name, busNamed(v.bus, v.pos));
        else if (!v.table.empty()) {
            const auto* t = table(v.table);
            if (t == nullptr) fail(v.pos, fmt::format("no table named '{}'", v.table));
            out.emplace_back(name, static_cast<double>(t->number));
        } else if (const auto* d = std::get_if<double>(&v.value))
            out.emplace_back(name, *d);
        else
            out.emplace_back(name, std::get<std::string>(v.value));
    }
    return out;
}

void Processor::changePort(std::size_t index, double value) noexcept {
    auto& p = ports_[index];
    p.hostValue = value;
    // a port is a float, in a host as here: the renderer's values land where a host's do
    p.value = clampPortValue(spec_.ports[index], static_cast<float>(value));
    p.pending = true;
}

void Processor::applyPreset(const PresetSpec& preset) noexcept {
    for (const auto& [symbol, value] : preset.values) {
        const int i = spec_.portIndex(symbol);
        if (i >= 0) setPort(static_cast<std::size_t>(i), value);
    }
}

// What a port's target gets for its value: an enum's value for the choice, beats as
// time at the host's tempo.
double Processor::targetValue(std::size_t index, double value) const noexcept {
    const auto& ps = spec_.ports[index];
    if (!ps.choiceValues.empty()) {
        const auto last = static_cast<double>(ps.choiceValues.size() - 1);
        value = ps.choiceValues[static_cast<std::size_t>(std::clamp(value, 0.0, last))];
    }
    switch (ps.to) {
    case BeatConversion::none:
        return value;
    case BeatConversion::seconds:
        return beatsToSeconds(value, clock_.bpm);
    case BeatConversion::ms:
        return beatsToSeconds(value, clock_.bpm) * 1000;
    }
    return value;
}

// `frame` lies in the coming cycle: the session applies the value at once.
void Processor::applyPort(std::size_t index, double value, std::int64_t frame) noexcept {
    auto& p = ports_[index];
    p.pending = false;
    const double target = targetValue(index, value);
    if (p.templateIndex >= 0)
        session_->setInstrControlAt(p.templateIndex, p.control, target, frame);
    else if (p.bus.valid())
        session_->writeBusAt(p.bus, target, frame);
    else if (p.channel >= 0)
        session_->writeChannelAt(p.channel, target, frame);
    // what an automation with overtake starts from
    session_->setPortValue(static_cast<int>(index), value);
    p.automationValue = value;
}

void Processor::automatePort(std::size_t index, std::span<const double> pairs, AutomationMode mode,
                             std::int64_t hostFrame, bool overtake) {
    if (index >= ports_.size()) throw SessionError("no such port");
    if (pairs.size() < 2) throw SessionError("automation pairs must be time, value, ...");
    // Csound computes the curve (the one implementation of the shapes) into the port
    // table during a cycle, and the port takes it at the next cycle's start: so the
    // automation runs one cycle ahead of the cycles where the port follows it.
    const auto begin =
        hostFrame + static_cast<std::int64_t>(std::llround(pairs[0] * engine_->sr()));
    const auto cycleStart = begin - begin % ksmps_;
    auto& p = ports_[index];
    p.automated = anyAutomated_ = true;
    if (cycleStart - ksmps_ >= engine_->frame()) { // start it a cycle early
        session_->automatePortAt(static_cast<int>(index), pairs, mode,
                                 hostFrame - (begin - (cycleStart - ksmps_)), overtake);
        return;
    }
    // It begins in the coming cycle (too late to start early): the port takes the first
    // value now, and the curve is read one cycle ahead from here.
    if (!overtake) {
        p.value = clampPortValue(spec_.ports[index], static_cast<float>(pairs[1]));
        applyPort(index, p.value, engine_->frame());
    }
    const double cycle = static_cast<double>(ksmps_) / engine_->sr();
    session_->automatePortAt(static_cast<int>(index), pairs, mode,
                             hostFrame - (begin - engine_->frame()), overtake, cycle);
}

int Processor::activeVoices() const noexcept {
    return static_cast<int>(
        std::count_if(voices_.begin(), voices_.end(), [](const Voice& v) { return v.active; }));
}

void Processor::release(Voice& v, std::int64_t frame) noexcept {
    session_->stopAt(v.synth, frame, true); // kept in the voice's slot: never lost
    v.active = false;
    v.sustained = false;
    keepTail(v.synth, frame);
}

// At most tails_.capacity() released voices sound at once, so that voices and tails
// never need more instances than build() warmed: past that the oldest tail stops now
// (a stop sorts before a start of the same frame, so its instance is free for it).
void Processor::keepTail(const Synth& synth, std::int64_t frame) noexcept {
    std::erase_if(tails_, [&](const Synth& t) { return !session_->isScheduled(t); });
    if (tails_.capacity() == 0) return;
    if (tails_.size() == tails_.capacity()) {
        session_->stopAt(tails_.front(), frame, false);
        tails_.erase(tails_.begin());
    }
    tails_.push_back(synth);
}

void Processor::noteOn(int note, int velocity, std::int64_t frame) noexcept {
    if (!voiceEvent_ || voices_.empty()) return;
    for (auto& v : voices_)
        if (v.active && v.note == note) release(v, frame); // retrigger
    Voice* target = nullptr;
    for (auto& v : voices_)
        if (!v.active) {
            target = &v;
            break;
        }
    if (target == nullptr) { // steal the oldest
        target =
            &*std::min_element(voices_.begin(), voices_.end(),
                               [](const Voice& a, const Voice& b) { return a.order < b.order; });
        release(*target, frame);
    }
    const ArgOverride args[] = {{pitchArg_, note + bend_}, {velocityArg_, velocity / 127.0}};
    target->synth = session_->startAt(*voiceEvent_, frame, -1, args);
    target->note = note;
    target->active = target->synth.valid();
    target->sustained = false;
    target->order = ++voiceOrder_;
}

void Processor::noteOff(int note, std::int64_t frame) noexcept {
    for (auto& v : voices_) {
        if (!v.active || v.note != note || v.sustained) continue;
        if (sustain_)
            v.sustained = true;
        else
            release(v, frame);
    }
}

void Processor::handleMidi(const MidiMessage& m, std::int64_t frame) noexcept {
    if (m.size < 2) return;
    const int status = m.data[0] & 0xF0;
    const int d1 = m.data[1] & 0x7F;
    const int d2 = m.size > 2 ? m.data[2] & 0x7F : 0;
    switch (status) {
    case 0x90:
        if (d2 > 0)
            noteOn(d1, d2, frame);
        else
            noteOff(d1, frame);
        break;
    case 0x80:
        noteOff(d1, frame);
        break;
    case 0xB0:
        if (d1 == 64) {
            sustain_ = d2 >= 64;
            if (!sustain_)
                for (auto& v : voices_)
                    if (v.active && v.sustained) release(v, frame);
        } else if (d1 == 120 || d1 == 123) {
            for (auto& v : voices_)
                if (v.active) release(v, frame);
        }
        for (std::size_t i = 0; i < ports_.size(); ++i) {
            const auto& ps = spec_.ports[i];
            if (ps.midiCC && *ps.midiCC == d1) {
                ports_[i].value = portValueFromUnit(ps, d2 / 127.0);
                applyPort(i, ports_[i].value, frame);
            }
        }
        break;
    case 0xC0:
        applyProgram(d1, frame);
        break;
    case 0xE0: {
        const double range = spec_.midi ? spec_.midi->bendRange : 0;
        bend_ = ((d2 << 7 | d1) - 8192) / 8192.0 * range;
        if (pitchArg_.control)
            for (auto& v : voices_)
                if (v.synth.valid())
                    session_->setAt(v.synth, pitchArg_.index, v.note + bend_, frame);
        break;
    }
    default:
        break;
    }
}

// A program change: the preset's values, as an LV2 preset gives them, land at `frame`.
// The host's port values stay as they were, so a port keeps the preset's value until
// the host moves it again (change detection in setPort).
void Processor::applyProgram(int program, std::int64_t frame) noexcept {
    if (program < 0 || static_cast<std::size_t>(program) >= programs_.size()) return;
    for (const auto& [index, value] : programs_[static_cast<std::size_t>(program)]) {
        auto& p = ports_[index];
        // a float, as the port of a host would carry it (the renderer's --preset too)
        p.value = clampPortValue(spec_.ports[index], static_cast<float>(value));
        applyPort(index, p.value, frame);
    }
}

void advanceClock(HostClock& c, int frames, double sr) noexcept {
    if (c.speed == 0) return;
    const double n = frames;
    const double step = c.speed * c.bpm / 60 * n / sr;
    c.beat += step;
    c.barBeat += step;
    if (c.beatsPerBar > 0) {
        const double wrap = std::floor(c.barBeat / c.beatsPerBar);
        c.barBeat -= wrap * c.beatsPerBar;
        c.bar += wrap;
    }
    c.seconds += c.speed * n / sr;
}

// The clock's values as the session's channels hold them from `frame` (the coming
// cycle's start) on; the position count tells the host-time instr not to move them on
// in that cycle.
void Processor::writeClock(std::int64_t frame) noexcept {
    const double values[] = {clock_.bpm,         clock_.beat,     clock_.bar,   clock_.barBeat,
                             clock_.beatsPerBar, clock_.beatUnit, clock_.speed, clock_.seconds};
    for (std::size_t i = 0; i < clockChannels_.size(); ++i)
        session_->writeChannelAt(clockChannels_[i], values[i], frame);
    session_->writeChannelAt(playingChannel_, clock_.speed != 0 ? 1.0 : 0.0, frame);
    positions_ += 1;
    session_->writeChannelAt(positionChannel_, positions_, frame);
}

// A position at `frame` (in the coming cycle): the values it gives, taken back to the
// cycle's start at its tempo and speed, so that positions a host sends at every block
// give the same steady beat as one position does. Values that are not finite, or out
// of range, are left out.
void Processor::handlePosition(const HostTime& t, std::int64_t frame) noexcept {
    if (!hostTime_) return;
    const std::int64_t start = engine_->frame();
    const double back =
        static_cast<double>(std::max<std::int64_t>(0, frame - start)) / engine_->sr();
    const auto given = [&](HostTime::Field f, double v) { return t.has(f) && std::isfinite(v); };
    HostClock c = clock_;
    if (given(HostTime::bpmField, t.bpm) && t.bpm > 0) c.bpm = std::clamp(t.bpm, 1.0, 1000.0);
    if (given(HostTime::beatsPerBarField, t.beatsPerBar) && t.beatsPerBar > 0)
        c.beatsPerBar = std::clamp(t.beatsPerBar, 1.0 / 64, 1024.0);
    if (given(HostTime::beatUnitField, t.beatUnit) && t.beatUnit > 0)
        c.beatUnit = std::clamp(t.beatUnit, 1.0, 256.0);
    if (given(HostTime::speedField, t.speed)) c.speed = std::clamp(t.speed, -16.0, 16.0);
    const double beatsBack = c.speed * c.bpm / 60 * back;
    const bool bar = given(HostTime::barField, t.bar);
    const bool barBeat = given(HostTime::barBeatField, t.barBeat);
    if (bar) c.bar = t.bar;
    if (barBeat) c.barBeat = t.barBeat - beatsBack;
    if (given(HostTime::beatField, t.beat)) {
        c.beat = t.beat - beatsBack;
        if (!bar && !barBeat) { // a host that counts beats only: the bar follows from them
            c.bar = std::floor(c.beat / c.beatsPerBar);
            c.barBeat = c.beat - c.bar * c.beatsPerBar;
        }
    } else if (bar && barBeat) {
        c.beat = c.bar * c.beatsPerBar + c.barBeat;
    }
    const double wrap = std::floor(c.barBeat / c.beatsPerBar);
    c.barBeat -= wrap * c.beatsPerBar;
    c.bar += wrap;
    if (t.has(HostTime::frameField))
        c.seconds = static_cast<double>(t.frame) / engine_->sr() - c.speed * back;
    const bool tempoChanged = c.bpm != clock_.bpm;
    clock_ = c;
    writeClock(start);
    // ports in beats follow the tempo from the position's cycle on
    if (tempoChanged)
        for (const auto index : tempoPorts_)
            if (!spec_.ports[index].output) applyPort(index, ports_[index].value, frame);
}

void Processor::cycle() noexcept {
    session_->performCycle();
    if (hostTime_) advanceClock(clock_, ksmps_, engine_->sr());
    if (!anyAutomated_) return;
    // automation moved these ports during the cycle: they take the value from the next
    for (std::size_t i = 0; i < ports_.size(); ++i) {
        auto& p = ports_[i];
        if (!p.automated) continue;
        const double v = session_->portValue(static_cast<int>(i));
        if (v == p.automationValue) continue;
        p.value = clampPortValue(spec_.ports[i], static_cast<float>(v));
        applyPort(i, p.value, engine_->frame());
        p.automationValue = v;
    }
}

void Processor::process(const float* const* inputs, float* const* outputs, std::uint32_t nframes,
                        std::span<const MidiMessage> midi,
                        std::span<const TimePosition> positions) noexcept {
    DenormalGuard ftz;
    const std::int64_t blockStart = frame_;
    for (std::size_t i = 0; i < ports_.size(); ++i)
        if (ports_[i].pending) applyPort(i, ports_[i].value, blockStart);
    const int nin = spec_.audioInputs;
    const int nout = spec_.audioOutputs;
    double* spin = engine_->spin();
    std::size_t mi = 0, ti = 0;
    std::uint32_t pos = 0;
    while (pos < nframes) {
        const auto n =
            std::min<std::uint32_t>(nframes - pos, static_cast<std::uint32_t>(ksmps_ - fill_));
        // positions and MIDI inside this stretch go to the queue before its cycle is
        // performed; a position first, so a note or a preset of its frame has its tempo
        for (; ti < positions.size() && positions[ti].frame < pos + n; ++ti)
            handlePosition(positions[ti].time, blockStart + positions[ti].frame);
        for (; mi < midi.size() && midi[mi].frame < pos + n; ++mi)
            handleMidi(midi[mi], blockStart + midi[mi].frame);
        const auto f0 = static_cast<std::size_t>(fill_);
        for (int ch = 0; ch < nin; ++ch) {
            double* dst = spin + f0 * static_cast<std::size_t>(nin) + static_cast<std::size_t>(ch);
            const float* src = inputs != nullptr ? inputs[ch] : nullptr;
            for (std::uint32_t i = 0; i < n; ++i)
                dst[i * static_cast<std::size_t>(nin)] = src != nullptr ? src[pos + i] : 0.0f;
        }
        for (int ch = 0; ch < nout; ++ch) {
            // spout holds the previous cycle until the next one is performed
            const double* src = engine_->spout() + f0 * static_cast<std::size_t>(nout) +
                                static_cast<std::size_t>(ch);
            float* dst = outputs[ch] + pos;
            for (std::uint32_t i = 0; i < n; ++i)
                dst[i] = static_cast<float>(src[i * static_cast<std::size_t>(nout)]);
        }
        fill_ += static_cast<int>(n);
        pos += n;
        frame_ += n;
        if (fill_ == ksmps_) {
            cycle();
            fill_ = 0;
        }
    }
    // messages stamped past the block (a host's mistake) still count, at its end
    const std::int64_t last = blockStart + (nframes > 0 ? nframes - 1 : 0);
    for (; ti < positions.size(); ++ti)
        handlePosition(positions[ti].time, last);
    for (; mi < midi.size(); ++mi)
        handleMidi(midi[mi], blockStart + (nframes > 0 ? nframes - 1 : 0));
    // output ports show their source as the last cycle left it
    for (auto& p : ports_)
        if (p.source != nullptr) p.value = std::isfinite(*p.source) ? *p.source : 0.0;
}

} // namespace spinout

namespace spinout {

namespace {

// "INIT ERROR in instr 2002 (opcode oscili.a) line 11: Invalid ftable no. 99"
struct CsoundRuntimeError {
    std::string_view kind; // "init" or "perf"
    int instr = 0;
    std::string_view opcode;
    int line = 0;
    std::string_view message;
};

std::optional<CsoundRuntimeError> parseRuntimeError(std::string_view text) {
    CsoundRuntimeError e;
    if (text.rfind("INIT ERROR in instr ", 0) == 0)
        e.kind = "init";
    else if (text.rfind("PERF ERROR in instr ", 0) == 0)
        e.kind = "perf";
    else
        return std::nullopt;
    text.remove_prefix(std::string_view("INIT ERROR in instr ").size());
    auto number = [&](int& out) {
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
        if (ec != std::errc()) return false;
        text.remove_prefix(static_cast<std::size_t>(end - text.data()));
        return true;
    };
    if (!number(e.instr)) return std::nullopt;
    if (text.rfind(" (opcode ", 0) == 0) {
        text.remove_prefix(9);
        const auto close = text.find(')');
        if (close == std::string_view::npos) return std::nullopt;
        e.opcode = text.substr(0, close);
        text.remove_prefix(close + 1);
    }
    if (text.rfind(" line ", 0) == 0) {
        text.remove_prefix(6);
        number(e.line);
    }
    const auto colon = text.find(':');
    e.message = colon == std::string_view::npos ? text : text.substr(colon + 1);
    while (!e.message.empty() && e.message.front() == ' ')
        e.message.remove_prefix(1);
    return e;
}

} // namespace

std::pair<SourcePos, std::string> Processor::locate(int instr, int line) const {
    SourcePos pos{spec_.path, 0, 0};
    std::string where;
    if (const Instr* t = session_->templateOfInstrNum(instr)) {
        where = fmt::format("instr '{}'", t->name());
        if (const auto* is = spec_.instr(t->name())) {
            pos = is->pos;
            const int bodyLine = line - 1 - t->headerLines();
            if (line > 0 && bodyLine >= 1) pos = {spec_.path, is->bodyLine + bodyLine - 1, 1};
        }
    } else if (instr == 0) {
        where = "the session's global code";
        if (compiling_.line > 0 && line > 0) pos = {spec_.path, compiling_.line + line - 1, 1};
    } else if (instr < support::kPriorityStride) {
        where = "spinout's support code";
    } else {
        where = fmt::format("instr {}", instr);
    }
    return {pos, where};
}

void Processor::drainMessages(const std::function<void(MessageLevel, const char*)>& onMessage,
                              const std::function<void(const Diagnostic&)>& onError) {
    std::string why; // Csound's last "cannot" or "failed": what it says before an error
    engine_->messages().drain([&](MessageLevel level, const char* text) {
        if (onMessage) onMessage(level, text);
        if (level == MessageLevel::error)
            if (const auto d = runtimeError(text, why)) onError(*d);
        const std::string_view t(text);
        if (t.find("ailed") != t.npos || t.find("annot") != t.npos) why = text;
    });
}

std::optional<Diagnostic> Processor::runtimeError(std::string_view csoundMessage,
                                                  std::string_view before) const {
    const auto e = parseRuntimeError(csoundMessage);
    if (!e) return std::nullopt;
    const std::string opcode =
        e->opcode.empty() ? std::string()
                          : fmt::format(" in {}", e->opcode.substr(0, e->opcode.find('.')));
    SourcePos pos{spec_.path, 0, 0};
    std::string where;
    if (const Instr* t = session_->templateOfInstrNum(e->instr)) {
        where = fmt::format("instr '{}'", t->name());
        if (const auto* is = spec_.instr(t->name())) {
            pos = is->pos;
            const int bodyLine = e->line - 1 - t->headerLines();
            if (e->line > 0 && bodyLine >= 1) pos = {spec_.path, is->bodyLine + bodyLine - 1, 1};
        }
    } else if (e->instr == 0) {
        where = "the session's global code";
        // Csound names the line within the piece of global code it ran: [engine] globals'
        // when that line there calls the opcode (includes and init code are compiled apart)
        std::istringstream lines(spec_.globals);
        std::string text;
        for (int n = 1; e->line > 0 && std::getline(lines, text); ++n)
            if (n == e->line && !e->opcode.empty() &&
                text.find(e->opcode.substr(0, e->opcode.find('.'))) != std::string::npos) {
                where = "[engine] globals";
                pos = {spec_.path, spec_.globalsLine + n - 1, 1};
            }
    } else if (e->instr < support::kPriorityStride) {
        where = "spinout's support code";
    } else {
        where = fmt::format("instr {}", e->instr);
    }
    // what Csound said before, when it explains the error ("ftable 107: Failed to open ...")
    std::string detail(before);
    if (const auto colon = detail.rfind(": "); colon != std::string::npos)
        detail = detail.substr(colon + 2);
    if (!detail.empty() && detail.find("ERROR") == std::string::npos)
        detail = fmt::format(" ({})", detail);
    else
        detail.clear();
    return Diagnostic{
        pos, fmt::format("{}: {} error{}: {}{}", where, e->kind, opcode, e->message, detail)};
}

std::string Processor::whereStuck() const {
    if (!engine_ || !session_) return {};
    const auto r = engine_->runningAt();
    if (!r) return {};
    auto [pos, where] = locate(r->instr, r->line);
    // Csound's names for expressions and jumps ("##add", "cggoto") mean nothing to users
    const std::string opcode = r->opcode.substr(0, r->opcode.find('.'));
    if (!opcode.empty() && std::isalpha(static_cast<unsigned char>(opcode[0])) != 0 &&
        opcode.find("goto") == std::string::npos)
        where += fmt::format(" (in '{}')", opcode);
    where += r->init ? ", in an init pass" : ", in a performance cycle";
    if (pos.line <= 0) return where;
    return Diagnostic{pos, where}.str();
}

} // namespace spinout
