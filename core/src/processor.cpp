#include "spinout/processor.hpp"

#include "spinout/warm_up.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
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
    build();
}

Processor::~Processor() = default;

void Processor::build() {
    EngineOptions eo;
    eo.sr = options_.sr;
    eo.ksmps = ksmps_;
    eo.nchnls = spec_.audioOutputs;
    eo.nchnlsIn = spec_.audioInputs;
    eo.a4 = spec_.a4;
    eo.searchDir = spec_.dir;
    eo.journal = options_.session.journal;
    const SourcePos filePos{spec_.path, 0, 0};
    try {
        engine_ = std::make_unique<Engine>(eo);
    } catch (const EngineError& e) {
        fail(filePos, e.what());
    }
    session_ = std::make_unique<Session>(*engine_, options_.session);
    auto& s = *session_;
    s.preallocate();
    declareWarmUpFlag(s);

    for (const auto& inc : spec_.includes) {
        try {
            s.includeFile(inc);
        } catch (const SessionError& e) {
            fail(filePos, e.what());
        }
    }
    if (!spec_.globals.empty()) {
        if (auto err = engine_->compile(spec_.globals)) {
            const int line = err->line > 0 ? spec_.globalsLine + err->line - 1 : spec_.globalsLine;
            fail({spec_.path, line, 1}, "in [engine] globals: " + err->message);
        }
    }
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

    // Ports first: the chain and the voices start with their values.
    for (const auto& ps : spec_.ports) {
        Port p;
        try {
            switch (ps.target.kind) {
            case PortTarget::control:
                p.templateIndex = s.templateIndex(ps.target.instr);
                p.control = s.argRef(ps.target.instr, ps.target.name).index;
                break;
            case PortTarget::bus:
                p.bus = busNamed(ps.target.name, ps.pos);
                break;
            case PortTarget::channel:
                p.channel = s.channelId(ps.target.name);
                break;
            }
        } catch (const SessionError& e) {
            fail(ps.pos, e.what());
        }
        p.value = p.hostValue = clampPortValue(ps, static_cast<float>(ps.def));
        ports_.push_back(p);
        applyPort(ports_.back(), p.value, 0);
    }

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

    if (spec_.midi) {
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
        // voice (see keepTail). Csound allocates an instance, and much of what it needs,
        // on the instance's first init pass: all of them are made and inited now.
        voices_.resize(static_cast<std::size_t>(m.voices));
        tails_.reserve(static_cast<std::size_t>(m.voices) * 2);
        int instances = m.voices * 3;
        for (const auto& run : spec_.runs)
            if (run.instr == m.instr) ++instances;
        try {
            warmUpInstances(s, *voiceEvent_, instances);
        } catch (const SessionError& e) {
            fail(m.pos, e.what());
        }
    }
}

Bus Processor::busNamed(const std::string& name, const SourcePos& pos) const {
    for (std::size_t i = 0; i < spec_.buses.size(); ++i)
        if (spec_.buses[i].name == name) return buses_[i];
    fail(pos, fmt::format("no bus named '{}'", name));
}

SchedArgs Processor::schedArgs(const SpecArgs& args) const {
    SchedArgs out;
    for (const auto& [name, v] : args) {
        if (!v.bus.empty())
            out.emplace_back(name, busNamed(v.bus, v.pos));
        else if (const auto* d = std::get_if<double>(&v.value))
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

void Processor::applyPort(Port& p, double value, std::int64_t frame) noexcept {
    p.pending = false;
    if (p.templateIndex >= 0)
        session_->setInstrControlAt(p.templateIndex, p.control, value, frame);
    else if (p.bus.valid())
        session_->writeBusAt(p.bus, value, frame);
    else if (p.channel >= 0)
        session_->writeChannelAt(p.channel, value, frame);
}

int Processor::activeVoices() const noexcept {
    return static_cast<int>(
        std::count_if(voices_.begin(), voices_.end(), [](const Voice& v) { return v.active; }));
}

void Processor::release(Voice& v, std::int64_t frame) noexcept {
    session_->stopAt(v.synth, frame, true);
    v.active = false;
    v.sustained = false;
    keepTail(v.synth, frame);
}

// At most tails_.capacity() released voices sound at once, so that voices and tails
// never need more instances than build() warmed: past that the oldest tail stops now
// (a stop sorts before a start of the same frame, so its instance is free for it).
void Processor::keepTail(const Synth& synth, std::int64_t frame) noexcept {
    tails_.erase(std::remove_if(tails_.begin(), tails_.end(),
                                [&](const Synth& t) { return !session_->isScheduled(t); }),
                 tails_.end());
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
                applyPort(ports_[i], ports_[i].value, frame);
            }
        }
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

void Processor::warmUp() {
    if (frame_ != 0 || origin_ != 0) return;
    const DenormalGuard ftz;
    session_->performCycle(); // inits the chain, allocates what Csound allocates at init
    origin_ = session_->frame();
}

void Processor::cycle() noexcept {
    session_->performCycle();
}

void Processor::process(const float* const* inputs, float* const* outputs, std::uint32_t nframes,
                        std::span<const MidiMessage> midi) noexcept {
    DenormalGuard ftz;
    // host frames map to the engine's with the origin warmUp() may have moved
    const std::int64_t blockStart = frame_ + origin_;
    for (auto& p : ports_)
        if (p.pending) applyPort(p, p.value, blockStart);
    const int nin = spec_.audioInputs;
    const int nout = spec_.audioOutputs;
    double* spin = engine_->spin();
    std::size_t mi = 0;
    std::uint32_t pos = 0;
    while (pos < nframes) {
        const auto n =
            std::min<std::uint32_t>(nframes - pos, static_cast<std::uint32_t>(ksmps_ - fill_));
        // MIDI inside this stretch goes to the queue before its cycle is performed
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
    for (; mi < midi.size(); ++mi)
        handleMidi(midi[mi], blockStart + (nframes > 0 ? nframes - 1 : 0));
}

} // namespace spinout
