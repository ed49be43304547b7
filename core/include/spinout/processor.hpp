// spinout::Processor: the one block adapter that the plugin and the renderer
// both drive. Any host block size in, fixed ksmps cycles inside, a constant
// latency of ksmps frames; MIDI and port changes land at their exact frame.
// What the renderer needs beyond a plugin (score events, port automation) is
// here too, so both hosts share one path. So are the host's tempo and transport
// (host.* channels, ports in beats) and program changes (a preset at a frame).
//
// Threads: process() and everything it calls are real-time safe (the plugin's
// audio thread). The constructor, automatePort() and runtimeError() are not
// (instantiation, the worker, the renderer's loop). The constructor warms the voices in a
// cycle of its own when it can (warm_up.hpp); the first process() runs the session's first
// cycle: the chain's init pass (and the voices' warm-up when it could not).
#pragma once

#include "spinout/engine.hpp"
#include "spinout/policy.hpp"
#include "spinout/session.hpp"
#include "spinout/spec.hpp"
#include "spinout/watchdog.hpp"

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace spinout {

struct MidiMessage {
    std::uint32_t frame = 0; // within the block
    std::uint8_t size = 0;
    std::uint8_t data[3] = {0, 0, 0};
};

// The host's tempo and transport at a frame, as LV2's time:Position gives them. A host
// sends what changed: `fields` says which values are given; the others keep theirs.
struct HostTime {
    enum Field : std::uint32_t {
        bpmField = 1u << 0,
        beatField = 1u << 1,
        barField = 1u << 2,
        barBeatField = 1u << 3,
        beatsPerBarField = 1u << 4,
        beatUnitField = 1u << 5,
        speedField = 1u << 6,
        frameField = 1u << 7,
        allFields = (1u << 8) - 1,
    };
    std::uint32_t fields = 0;
    double bpm = 120;       // beats a minute (a beat is a beatUnit note)
    double beat = 0;        // beats since the start; else bar * beatsPerBar + barBeat
    double bar = 0;         // bars since the start
    double barBeat = 0;     // beats into the bar
    double beatsPerBar = 4; // the meter: beatsPerBar / beatUnit
    double beatUnit = 4;
    double speed = 0;       // 1 rolling, 0 stopped (time:speed)
    std::int64_t frame = 0; // the transport's position, in frames
    bool has(Field f) const noexcept { return (fields & f) != 0; }
};

// A HostTime at a frame of the block (the change lands in the cycle that holds it).
struct TimePosition {
    std::uint32_t frame = 0;
    HostTime time;
};

// Where the host's transport stands at the start of a cycle: what the host.* channels
// hold (support.hpp names them).
struct HostClock {
    double bpm = 120;
    double beat = 0;
    double bar = 0;
    double barBeat = 0;
    double beatsPerBar = 4;
    double beatUnit = 4;
    double speed = 0;
    double seconds = 0;
};

// Moves a clock on by `frames` at its tempo and speed: the sums the support
// orchestra's host-time instr does every cycle, in the same order.
void advanceClock(HostClock& clock, int frames, double sr) noexcept;
// A value in beats as seconds at a tempo.
inline double beatsToSeconds(double beats, double bpm) noexcept {
    return beats * 60 / bpm;
}

struct ProcessorOptions {
    int sr = 48000;
    SessionOptions session;
    // What the user granted the session: nothing unless they say so. The policy check reads
    // each piece of the session's code as Csound parsed it, before it is compiled, and what
    // spinout reads for it (includes, sound files of [table.NAME]) stays in its folder
    // without `read`.
    Grants grants;
    // process() runs in a real-time thread (a plugin host): Csound's pool of event nodes
    // is filled at load (EngineOptions::reserveEventNodes) and the voices' instances are
    // made and inited at load (warm_up.hpp). The offline tools set false: their loop may
    // allocate, and what they write is the same (the warm-up leaves nothing a note hears
    // when init code with effects beyond its instance checks giSpinoutWarmUp).
    bool realTime = true;
    // The offline tools' watchdog, told about the engine while it exists (null: none).
    Watchdog* watchdog = nullptr;
    // Ports' values from the start (port index, value), in place of their defaults: a
    // render's preset and --set. What loads (the [[run]] chain's first init pass) sees
    // them, as the first cycle does. A later value for the same port wins.
    std::vector<std::pair<std::size_t, double>> portValues;
};

class Processor {
public:
    // Builds the session: compiles globals and instrs, each piece past the policy check
    // (options.grants), assigns buses, prepares the voices and queues the [[run]] chain.
    // Errors name the session file's line; a refusal stops the load before the refused
    // piece compiles, and the SessionFileError holds the whole check's report.
    Processor(const SessionSpec& spec, ProcessorOptions options = {});
    ~Processor();

    const SessionSpec& spec() const noexcept { return spec_; }
    // What loaded but the user should know, in the session's terms: code the plugin's
    // voice warm-up runs with effects a render does not have (WarmUpTraces).
    const std::vector<Diagnostic>& warnings() const { return gate_->warnings(); }
    Engine& engine() noexcept { return *engine_; }
    Session& session() noexcept { return *session_; }
    int latency() const noexcept { return ksmps_; }
    int numInputs() const noexcept { return spec_.audioInputs; }
    int numOutputs() const noexcept { return spec_.audioOutputs; }
    // Frames taken from the host so far.
    std::int64_t frame() const noexcept { return frame_; }

    // Port values, taken at the start of the next block when they changed.
    std::size_t numPorts() const noexcept { return ports_.size(); }
    void setPort(std::size_t index, double value) noexcept {
        // change detection, inline: a host sets every port every block
        if (index < ports_.size() && value != ports_[index].hostValue &&
            ports_[index].source == nullptr)
            changePort(index, value);
    }
    // An input port's value as applied; an output port's as the last block left it.
    double port(std::size_t index) const noexcept { return ports_[index].value; }
    void applyPreset(const PresetSpec& preset) noexcept;
    // Presets by program number (file order), resolved to every input port's value.
    std::size_t numPrograms() const noexcept { return programs_.size(); }
    // Whether the session takes the host's tempo and transport; the clock as it stands
    // at the start of the coming cycle.
    bool takesHostTime() const noexcept { return hostTime_; }
    const HostClock& hostClock() const noexcept { return clock_; }
    // Moves a port along a curve from a host frame on, as a host's automation does:
    // the port takes the curve's value at each cycle's start. pairs: time, value, ...
    // in seconds from `hostFrame`; the port waits for the first pair's time.
    void automatePort(std::size_t index, std::span<const double> pairs, AutomationMode mode,
                      std::int64_t hostFrame, bool overtake = false);

    // inputs: numInputs() channels, outputs: numOutputs() channels of nframes.
    // MIDI messages and time positions sorted by frame. A position lands in the cycle
    // that holds its frame (a control value moves once a cycle in Csound), as the
    // values it gives stood at that cycle's start. A program change N applies the
    // N-th preset at its frame.
    void process(const float* const* inputs, float* const* outputs, std::uint32_t nframes,
                 std::span<const MidiMessage> midi = {},
                 std::span<const TimePosition> positions = {}) noexcept;

    int activeVoices() const noexcept;
    // Args from a session or score file, with "bus:NAME" given as that bus and
    // "table:NAME" as that table's number.
    SchedArgs schedArgs(const SpecArgs& args) const;
    // Makes tables ([table.NAME] of a session or score) as Csound's gi_NAME. Off the
    // audio thread; errors name the file's line.
    void makeTables(std::span<const TableSpec> tables);
    const SoundTable* table(const std::string& name) const;
    // The session file's bus of that name (throws SessionError when there is none).
    Bus bus(const std::string& name) const;
    // A Csound runtime error (INIT ERROR, PERF ERROR) in the session's terms: the
    // template's name and the session file's line instead of instrument numbers.
    // Nothing for any other message.
    // `before`: what Csound said before it that may say why ("... Failed to open file x").
    std::optional<Diagnostic> runtimeError(std::string_view csoundMessage,
                                           std::string_view before = {}) const;
    // Empties Csound's message ring: each message to onMessage, and each runtime error, in
    // the session's terms, to onError as well. Off the audio thread (worker, renderer).
    void drainMessages(const std::function<void(MessageLevel, const char*)>& onMessage,
                       const std::function<void(const Diagnostic&)>& onError);
    // For a watchdog, on its own thread, while the thread that drives this processor is
    // stuck inside Csound: the instr, opcode and session line running now ("" unknown).
    std::string whereStuck() const;

private:
    struct Port {
        double value = 0;     // in range, as applied
        double hostValue = 0; // as the host last set it (change detection)
        bool pending = true;
        bool automated = false;     // automatePort() moves it: read back every cycle
        double automationValue = 0; // the curve's last value read back
        int templateIndex = -1;     // instr.karg target
        int control = -1;
        Bus bus;                        // bus:NAME target
        int channel = -1;               // chn:NAME target
        const double* source = nullptr; // an output port's bus or channel
    };
    struct Voice {
        Synth synth;
        int note = -1;
        bool active = false;    // sounding and counting against the voice limit
        bool sustained = false; // released while the pedal is down
        std::uint64_t order = 0;
    };

    void build(PolicyGate& gate);
    void buildPorts();
    void buildVoices();
    void warmUpVoices();
    void buildHostTime();
    void buildPrograms();
    void changePort(std::size_t index, double value) noexcept;
    double targetValue(std::size_t index, double value) const noexcept;
    void handlePosition(const HostTime& t, std::int64_t frame) noexcept;
    void writeClock(std::int64_t frame) noexcept;
    void applyProgram(int program, std::int64_t frame) noexcept;
    Bus busNamed(const std::string& name, const SourcePos& pos) const;
    // Csound's instr number and line in its compiled code, as the session's place.
    std::pair<SourcePos, std::string> locate(int instr, int line) const;
    void applyPort(std::size_t index, double value, std::int64_t frame) noexcept;
    void handleMidi(const MidiMessage& m, std::int64_t frame) noexcept;
    void noteOn(int note, int velocity, std::int64_t frame) noexcept;
    void noteOff(int note, std::int64_t frame) noexcept;
    void release(Voice& v, std::int64_t frame) noexcept;
    void keepTail(const Synth& synth, std::int64_t frame) noexcept;
    void cycle() noexcept;

    SessionSpec spec_;
    ProcessorOptions options_;
    int ksmps_ = 64;
    std::unique_ptr<PolicyGate> gate_; // the session compiles its code past it (policy.hpp)
    std::unique_ptr<Engine> engine_;
    std::unique_ptr<Session> session_;
    std::vector<Port> ports_;
    bool anyAutomated_ = false;
    std::vector<Bus> buses_; // by index of spec_.buses
    std::vector<std::pair<std::string, SoundTable>> tables_;
    SourcePos compiling_; // the file line of the global code being compiled, during build()
    // voices
    std::unique_ptr<PreparedEvent> voiceEvent_;
    ArgRef pitchArg_, velocityArg_;
    std::vector<Voice> voices_;
    std::vector<Synth> tails_; // released voices still sounding, oldest first
    std::uint64_t voiceOrder_ = 0;
    bool sustain_ = false;
    double bend_ = 0; // semitones
    // the host's tempo and transport
    bool hostTime_ = false;
    HostClock clock_;
    std::array<int, 8> clockChannels_{}; // channel ids, in HostClock's order
    int playingChannel_ = -1;
    int positionChannel_ = -1;
    double positions_ = 0;                // positions written (the position count)
    std::vector<std::size_t> tempoPorts_; // ports converted from beats
    // program N: (port, value) for every input port
    std::vector<std::vector<std::pair<std::size_t, double>>> programs_;
    // block adaptation
    std::int64_t frame_ = 0; // frames taken from the host so far
    int fill_ = 0;           // frames of the current cycle already taken
};

} // namespace spinout
