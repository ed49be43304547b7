// spinout::Session: csoundengine's Session over one Engine, the front that
// users of the C++ API and Processor see. It keeps the instr templates
// (compiled on demand at a priority: instr priority*1000 + index, so a higher
// priority runs later in each cycle) and drives three parts: the slot table
// (one slot per instance: its k-args row, heartbeat and generation), the event
// queue (future starts, sets, writes and automation) and the bus pool. The
// support orchestra (support.orc) gives Csound the tables and instrs they use.
//
// Threads: the *At functions and performCycle() are real-time safe and run on
// the audio thread; everything that compiles, makes tables or throws does not.
#pragma once

#include "spinout/bus_pool.hpp"
#include "spinout/engine.hpp"
#include "spinout/event_queue.hpp"
#include "spinout/instr.hpp"
#include "spinout/journal.hpp"
#include "spinout/slot_table.hpp"
#include "spinout/spec.hpp"

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace spinout {

class SessionError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A value for a named arg at sched time.
using SchedValue = std::variant<double, std::string, Bus>;
using SchedArgs = std::vector<std::pair<std::string, SchedValue>>;

// A handle to a scheduled instance.
struct Synth {
    int slot = -1;
    std::uint32_t generation = 0;
    double p1 = 0;
    bool valid() const noexcept { return slot >= 0; }
};

// Where a named arg lands: a pfield (p5, ...) or a control index.
struct ArgRef {
    bool control = false;
    int index = -1;
    bool valid() const noexcept { return index >= 0; }
};

// An arg given when a prepared event starts (a MIDI note's pitch, say).
struct ArgOverride {
    ArgRef ref;
    double value = 0;
};

// An event ready to start without allocating: instr number, pfields and
// control values resolved once, off the audio thread.
struct PreparedEvent {
    int templateIndex = -1;
    int instrNum = 0;
    int numPfields = 0;
    std::array<double, kMaxPfields> pfields{};
    std::vector<double> controls;
    std::uint64_t explicitControls = 0; // given as args: port values do not replace them
    std::vector<Bus> buses;
};

struct SessionOptions {
    int numPriorities = 10;
    int numSlots = 1024;  // simultaneous instances (scheduled or playing)
    int maxControls = 32; // k-args per instr (at most 64)
    int numAudioBuses = 64;
    int numControlBuses = 256;
    int numPorts = 256;          // rows of the port table (automatable host values)
    int maxPendingEvents = 4096; // the event queue's capacity, starts included
    int maxAutomations = 1024;   // automations waiting to start
    int numPairs = 16384;        // breakpoint numbers (times and values) of automation at once
    bool journal = false;        // keep the journal (for a .csd); allocates, so never in a plugin
};

// The support code every session compiles first (buses, control tables, internal instrs).
std::string supportOrchestra(const SessionOptions& options = {});

// A table read from a sound file.
struct SoundTable {
    int number = 0;
    double sr = 0;
    int nchnls = 0;
    std::int64_t frames = 0;
    // Its first two channels as tables of one channel each, for the sample player (a
    // mono table's own number, and -1).
    std::array<int, 2> channels = {0, -1};
    double duration() const { return sr > 0 ? static_cast<double>(frames) / sr : 0.0; }
};

// The p2 and p3 (seconds) that make Csound play an instance from frame `start` for
// `frames` frames exactly, when they end its init pass: Csound takes the start within the
// cycle from p2, and the end from p2 + p3 (up to a cycle) and from p3 (the frames of the last
// cycle), in doubles, so values near the exact ones can land a sample early or a cycle late.
// Nothing when no values do (it does not happen for ksmps above 1; then Csound's own stands).
struct ExactTiming {
    double p2 = 0, p3 = 0;
};
std::optional<ExactTiming> exactTiming(std::int64_t start, std::int64_t frames, int ksmps,
                                       double sr) noexcept;

// Where a piece of a session's own code comes from (not spinout's): what a CodeGate places
// its findings by.
struct CodeSource {
    enum Kind { include, globals, init, body } kind = globals;
    std::string name;    // include: the file as the session names it; init, body: the instr
    int headerLines = 0; // body: the lines spinout writes between "instr N" and the body
};

// The session's own code on its way to Csound: each piece is shown to the gate before
// Csound reads it (its preprocessor reads #include'd files), then as Csound parsed it in
// this session's engine; what the gate admits is that same tree, compiled. False refuses:
// nothing of the piece is compiled. Processor's policy check is the one gate (policy.hpp).
class CodeGate {
public:
    virtual ~CodeGate() = default;
    virtual bool beforeParse(const CodeSource& source, std::string_view text) = 0;
    virtual bool admit(const CodeSource& source, const OrcParse& parsed) = 0;
};

// A piece of session code the gate refused (the gate holds the reasons).
class CodeRefused : public SessionError {
public:
    using SessionError::SessionError;
};

class Session {
public:
    explicit Session(Engine& engine, SessionOptions options = {});
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    Engine& engine() noexcept { return engine_; }
    const SessionOptions& options() const noexcept { return options_; }

    // Templates -------------------------------------------------------------
    const Instr& defInstr(const std::string& name, const std::string& body,
                          const ArgList& args = {}, const std::string& init = "",
                          const std::string& doc = "", std::optional<int> priority = std::nullopt);
    const Instr& registerInstr(Instr instr);
    const Instr* getInstr(const std::string& name) const;
    std::vector<std::string> instrNames() const;
    // Compiles the template at a priority (done by sched when needed).
    void prepareSched(const std::string& name, int priority = 1);
    int instrnum(const std::string& name, int priority = 1) const;
    int templateIndex(const std::string& name) const;
    // The template of an instr number (priority*1000 + index), or nullptr.
    const Instr* templateOfInstrNum(int instrNum) const;

    // Global code and include files, compiled now. compile() is for spinout's own code:
    // the session's goes through compileSessionCode, past the gate when there is one.
    void compile(const std::string& code, const std::string& what = "global code");
    // Csound's error, if any; a refusal throws CodeRefused.
    std::optional<CsoundError> compileSessionCode(const CodeSource& source, const std::string& code,
                                                  const std::string& what);
    void includeFile(const std::string& path);
    // Until set back to nullptr, the session's code (include files, globals, instr init code
    // and bodies) compiles only past `gate`, which must outlive that.
    void setCodeGate(CodeGate* gate) noexcept { gate_ = gate; }

    // Real-time events at absolute frames -------------------------------------
    // Resolves an event's args once (priority 0: the template's own, else 1).
    PreparedEvent prepare(const std::string& name, int priority = 0, const SchedArgs& args = {});
    ArgRef argRef(const std::string& name, const std::string& arg) const;
    // Real-time safe. Frames are absolute, not before the coming cycle. A set or write
    // for the coming cycle takes effect at once; later ones wait in the queue. A start
    // returns an invalid Synth and a set or write false when slots or the queue are
    // full. A stop never fails: it is kept in the instance's slot.
    Synth startAt(const PreparedEvent& event, std::int64_t frame, double dur,
                  std::span<const ArgOverride> overrides = {}) noexcept;
    void stopAt(const Synth& synth, std::int64_t frame, bool release = true) noexcept;
    bool setAt(const Synth& synth, int control, double value, std::int64_t frame) noexcept;
    // Sets a k-arg of every playing instance of an instr, and of those that start later
    // without giving it.
    bool setInstrControlAt(int templateIndex, int control, double value,
                           std::int64_t frame) noexcept;
    bool writeBusAt(const Bus& bus, double value, std::int64_t frame) noexcept;
    // A control channel the session may write at a frame (writeChannelAt).
    int channelId(const std::string& name);
    bool writeChannelAt(int channel, double value, std::int64_t frame) noexcept;
    // The port table: values the host automates (automatePort) and reads back.
    double portValue(int port) const noexcept;
    void setPortValue(int port, double value) noexcept;
    // Not real-time safe (makes a table): automation whose pairs' times count from
    // `frame` (it begins at the first pair's time).
    void automateAt(const Synth& synth, int control, std::span<const double> pairs,
                    AutomationMode mode, std::int64_t frame, bool overtake = false);
    void automateBusAt(const Bus& bus, std::span<const double> pairs, AutomationMode mode,
                       std::int64_t frame, bool overtake = false);
    // `ahead`: the curve is read that many seconds ahead of the cycle it runs in.
    void automatePortAt(int port, std::span<const double> pairs, AutomationMode mode,
                        std::int64_t frame, bool overtake = false, double ahead = 0);

    // csoundengine's API: times in seconds from now ---------------------------
    // priority 0: the template's own, else 1. dur -1: until stopped.
    Synth sched(const std::string& name, double delay = 0, double dur = -1, int priority = 0,
                const SchedArgs& args = {});
    // Changes a k-arg now (effective from the next cycle) or at a delay.
    void set(const Synth& synth, const std::string& param, double value, double delay = 0);
    // pairs: time0, value0, time1, value1, ... (times relative to the start).
    void automate(const Synth& synth, const std::string& param, std::span<const double> pairs,
                  AutomationMode mode = {}, double delay = 0, bool overtake = false);
    // Releases the instance (its release tail plays) or removes it if not started.
    void unsched(const Synth& synth, double delay = 0);
    void unschedAll(bool future = false);
    bool isPlaying(const Synth& synth) const;
    bool isScheduled(const Synth& synth) const; // playing or waiting to start
    std::vector<Synth> activeSynths() const;
    // Current value of a k-arg of an instance.
    double getControl(const Synth& synth, const std::string& param) const;

    // Buses -----------------------------------------------------------------
    Bus assignBus(BusKind kind = BusKind::audio, std::optional<double> value = std::nullopt);
    void releaseBus(const Bus& bus);
    void writeBus(const Bus& bus, double value, double delay = 0);
    double readBus(const Bus& bus) const;
    void automateBus(const Bus& bus, std::span<const double> pairs, AutomationMode mode = {},
                     double delay = 0, bool overtake = false);
    int busRefCount(const Bus& bus) const noexcept { return buses_.refCount(bus); }
    // Where a control bus's value lives: it stays valid for the session's life.
    const double& controlBusValue(const Bus& bus) const noexcept {
        return kbus_[static_cast<std::size_t>(bus.token)];
    }

    // Tables ----------------------------------------------------------------
    int makeTable(std::span<const double> data) { return engine_.makeTable(data); }
    int makeTable(std::size_t size) { return engine_.makeTable(size); }
    SoundTable readSoundfile(const std::string& path, int channel = 0);
    // What a table made from a sound file holds (`path` given when it interleaves channels:
    // its first two are then read again, one to a table).
    SoundTable describeSoundTable(int number, const std::string& path = {});
    // Plays a table read by readSoundfile at its own pitch times speed, from `skip`
    // seconds in. dur 0: to its end. pan -1: to `chan` alone; 0..1: left to right.
    Synth playSample(const SoundTable& table, double delay = 0, double dur = 0, int chan = 1,
                     double gain = 1, double speed = 1, bool loop = false, double pan = -1,
                     double skip = 0);

    // Journal ----------------------------------------------------------------
    void setJournal(bool on);
    const Journal& journal() const noexcept { return journal_; }

    // Time ------------------------------------------------------------------
    // Hands the events due in the next cycle to Csound and performs it. Real-time safe.
    bool performCycle() noexcept;
    std::int64_t frame() const noexcept { return engine_.frame(); }
    // Performs a cycle before the host's first with the start of `only` alone (the voices'
    // warm-up: warm_up.hpp), and goes back to frame 0 (Engine::rewind); everything else
    // queued waits for the host's first cycle. Its slot is freed after that cycle, as if it
    // had run in it. Only at frame 0, with nothing playing. Not real-time.
    void performCycleBeforeStart(const Synth& only);
    double time() const noexcept { return static_cast<double>(frame()) / engine_.sr(); }
    // Instances playing or waiting to start.
    int activeCount() const noexcept { return static_cast<int>(slots_.active().size()); }
    bool queueEmpty() const noexcept { return queue_.empty(); }
    // Allocates now the instances that stops and automation will need, so that the
    // audio thread does not.
    void preallocate(int events = 64);
    // Starts one of the support orchestra's always-on instrs (support.hpp) in the coming
    // cycle, for the session's life (the host-time instr).
    void startSupportInstr(int number);

private:
    struct Template {
        Instr instr;
        int index;
        std::map<int, bool> compiledAt; // priority -> compiled
        std::vector<double> portValues; // setInstrControlAt, for later instances
        std::uint64_t portSet = 0;      // which of portValues were set
        bool own = false;               // spinout's (the sample player): compiled past no gate
    };
    // An automation waiting to start: its pfields (p2 set at dispatch).
    using AutomationEvent = std::array<double, 13>;
    // An action of the coming cycle, put in Csound's score order before dispatch.
    struct Due {
        QueuedEvent event;
        bool hostWrite = false; // table and channel writes go first
        double p1 = 0, p3 = 0;  // the score order of events
    };

    const Template& templ(const std::string& name) const;
    Template& templ(const std::string& name);
    std::int64_t frameAt(double delay) const;
    double nextP1(int instrNum) noexcept;
    int stringId(const std::string& s);
    const InstrArg& control(const Synth& synth, const std::string& param) const;
    void scheduleAutomation(int table, int index, std::span<const double> pairs,
                            AutomationMode mode, std::int64_t frame, bool overtake, int slot,
                            std::uint32_t generation, double ahead = 0);
    bool inComingCycle(std::int64_t frame) const noexcept;
    int allocPairs(int size, std::int64_t end);
    bool enqueue(const QueuedEvent& e) noexcept;
    bool write(const QueuedEvent& q) noexcept;
    void apply(const QueuedEvent& q) noexcept;
    void collectDue(std::int64_t end) noexcept;
    void dispatchDue() noexcept; // the coming cycle's events, to Csound in its score order
    void dispatch(const Due& d) noexcept;
    void defer(const Due& d) noexcept;
    void start(int slot, std::int64_t frame) noexcept;
    void applyInstrControl(int templateIndex, int control, double value) noexcept;
    void freeSlot(int slot) noexcept;
    // Every host-side write into Csound's tables and channels goes through here (journaled).
    void store(int table, int index, double value) noexcept;
    void storeChannel(int channel, double value) noexcept;
    void sendEvent(std::span<const double> pfields, std::int64_t frame,
                   bool journal = true) noexcept;
    void startAlwaysOn(bool journal); // alwaysOn_, from frame 0
    std::vector<int> alwaysOn_; // instrs playing from frame 0 to the end (startSupportInstr adds)

    Engine& engine_;
    CodeGate* gate_ = nullptr;
    SessionOptions options_;
    SlotTable slots_;
    EventQueue queue_;
    BusPool buses_;
    Journal journal_;
    std::vector<std::unique_ptr<Template>> templates_;
    std::map<std::string, Template*> byName_;
    std::vector<AutomationEvent> automations_;
    std::vector<int> freeAutomations_;
    std::vector<Due> due_; // reserved: the coming cycle's actions
    std::uint32_t nextInstance_ = 0;
    std::map<std::string, int> strings_;
    std::vector<std::pair<std::string, double*>> channels_;
    int audioBusCountChannel_ = -1;
    // Csound's tables: numbers and data
    int ctlTable_ = 0, aliveTable_ = 0, genTable_ = 0, kbusTable_ = 0, portTable_ = 0;
    int timingTable_ = 0, pairsTable_ = 0;
    std::span<double> ctl_, alive_, gen_, kbus_, ports_, pairs_;
    // the pairs table's blocks in use, by offset; each until its automation is over
    struct PairsBlock {
        int offset = 0, size = 0;
        std::int64_t end = 0;
    };
    std::vector<PairsBlock> pairBlocks_;
};

} // namespace spinout
