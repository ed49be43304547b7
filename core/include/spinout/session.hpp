// spinout::Session: csoundengine's Session semantics over one Engine.
//
// Instr templates are compiled on demand at a priority (instr number
// priority*1000 + template index), so a higher priority runs later in each
// cycle. Every scheduled instance gets a slot, passed as p4: a row of the
// control table holding its k-args (`set` and `automate` write there, without
// calling Csound), a heartbeat the instance writes every cycle (so the session
// knows when it ended, release included) and a generation that guards stale
// automation. Events are kept by the session and handed to Csound in the cycle
// where they start, at their exact frame.
#pragma once

#include "spinout/engine.hpp"
#include "spinout/instr.hpp"

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

enum class BusKind { audio, control };

// A bus token with its kind. Pass it as an arg to give an instance the bus.
struct Bus {
    BusKind kind = BusKind::audio;
    int token = -1;
    bool valid() const { return token >= 0; }
};

// A value for a named arg at sched time.
using SchedValue = std::variant<double, std::string, Bus>;
using SchedArgs = std::vector<std::pair<std::string, SchedValue>>;

// A handle to a scheduled instance.
struct Synth {
    int slot = -1;
    std::uint32_t generation = 0;
    double p1 = 0;
    bool valid() const { return slot >= 0; }
};

// How automation moves between two breakpoints.
struct AutomationMode {
    enum Shape { linear, cos, expon, smooth } shape = linear;
    double exponent = 1.0;
    // "linear", "cos", "expon(X)", "smooth"
    static AutomationMode parse(std::string_view text);
};

// Where a named arg lands: a pfield (p5, ...) or a control index.
struct ArgRef {
    bool control = false;
    int index = -1;
    bool valid() const { return index >= 0; }
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
    std::array<double, 64> pfields{};
    std::vector<double> controls;
    std::vector<bool> explicitControls; // given as args: port overrides do not apply
    std::vector<Bus> buses;
};

struct SessionOptions {
    int numPriorities = 10;
    int numSlots = 1024;  // simultaneous instances (scheduled or playing)
    int maxControls = 32; // k-args per instr
    int numAudioBuses = 64;
    int numControlBuses = 256;
    int maxPendingEvents = 4096;
    bool journal = false; // keep the journal (for a .csd); allocates, so never in a plugin
};

// The support code every session compiles first (buses, control tables, internal instrs).
std::string supportOrchestra(const SessionOptions& options = {});

// A table read from a sound file.
struct SoundTable {
    int number = 0;
    double sr = 0;
    int nchnls = 0;
    std::int64_t frames = 0;
    double duration() const { return sr > 0 ? static_cast<double>(frames) / sr : 0.0; }
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

    // Global code and include files, compiled now.
    void compile(const std::string& code, const std::string& what = "global code");
    void includeFile(const std::string& path);

    // Events ----------------------------------------------------------------
    // Resolves an event's args once (priority 0: the template's own, else 1).
    PreparedEvent prepare(const std::string& name, int priority = 0, const SchedArgs& args = {});
    ArgRef argRef(const std::string& name, const std::string& arg) const;
    // Real-time safe: start, stop and set at an absolute frame (not before the
    // coming cycle). They return false / an invalid Synth when slots or the queue are full.
    Synth startAt(const PreparedEvent& event, std::int64_t frame, double dur,
                  std::span<const ArgOverride> overrides = {}) noexcept;
    bool stopAt(const Synth& synth, std::int64_t frame, bool release = true) noexcept;
    bool setAt(const Synth& synth, int control, double value, std::int64_t frame) noexcept;
    // Sets a k-arg of every playing and future instance of an instr.
    bool setInstrControlAt(int templateIndex, int control, double value,
                           std::int64_t frame) noexcept;
    bool writeBusAt(const Bus& bus, double value, std::int64_t frame) noexcept;
    int templateIndex(const std::string& name) const;

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
    int busRefCount(const Bus& bus) const;

    // Tables ----------------------------------------------------------------
    int makeTable(std::span<const double> data) { return engine_.makeTable(data); }
    int makeTable(std::size_t size) { return engine_.makeTable(size); }
    SoundTable readSoundfile(const std::string& path, int channel = 0);
    // Plays a table read by readSoundfile at its own pitch. dur 0: its length.
    Synth playSample(const SoundTable& table, double delay = 0, double dur = 0, int chan = 1,
                     double gain = 1, double speed = 1, bool loop = false, double pan = -1);

    // Journal -----------------------------------------------------------------
    // What the session handed to Csound and wrote into its tables, frame by frame:
    // with the engine's code journal, enough for a standalone .csd.
    struct JournalEntry {
        std::int64_t frame = 0;
        enum Kind { event, tableWrite, channelWrite } kind = event;
        std::vector<double> pfields; // event
        int table = 0;               // tableWrite
        int index = 0;               // tableWrite
        double value = 0;            // tableWrite, channelWrite
        std::string channel;         // channelWrite
    };
    void setJournal(bool on);
    const std::vector<JournalEntry>& journal() const { return journal_; }
    // A control channel the session may write at a frame (writeChannelAt).
    int channelId(const std::string& name);
    bool writeChannelAt(int channel, double value, std::int64_t frame) noexcept;

    // Time ------------------------------------------------------------------
    // Hands the events due in the next cycle to Csound and performs it. Real-time safe.
    bool performCycle() noexcept;
    std::int64_t frame() const noexcept { return engine_.frame(); }
    // Allocates now the instances that note-offs and automation will need, so that
    // the audio thread does not.
    void preallocate(int events = 64);
    double time() const noexcept { return static_cast<double>(frame()) / engine_.sr(); }
    // When the last scheduled event with a finite duration ends, in seconds.
    double scheduledEnd() const;

private:
    struct Template {
        Instr instr;
        int index;
        std::map<int, bool> compiledAt; // priority -> compiled
        std::vector<double> portValues; // setInstrControlAt, for future instances
        std::vector<bool> portSet;
    };
    struct Slot {
        std::uint32_t generation = 0;
        bool inUse = false;
        bool dispatched = false;
        std::int64_t startFrame = 0;
        std::int64_t endFrame = -1; // -1: until stopped
        double p1 = 0;
        const Template* tmpl = nullptr;
        int priority = 0;
        std::array<Bus, 8> buses{};
        int numBuses = 0;
    };
    static constexpr int kMaxPfields = 64;
    struct Pending {
        enum Kind { start, stop, setTable, setInstr, setChannel, event } kind = event;
        std::int64_t frame = 0;
        std::uint64_t seq = 0;
        int slot = -1; // start / stop / setTable guard
        std::uint32_t generation = 0;
        int table = 0; // setTable; setInstr: template index
        int index = 0; // setTable, setInstr: control index

        int numPfields = 0;
        std::array<double, kMaxPfields> pfields{};
    };

    void compileSupport();
    int busClearInstr() const { return (options_.numPriorities + 1) * 1000; }
    const Template& templ(const std::string& name) const;
    Template& templ(const std::string& name);
    int allocSlot() noexcept; // -1 when every slot is taken
    void freeSlot(int slot);
    void reap() noexcept;
    void enqueue(const Pending& p);
    bool tryEnqueue(const Pending& p) noexcept;
    void dispatch(Pending& p) noexcept;
    std::int64_t frameAt(double delay) const;
    double nextP1(int instrNum);
    int stringId(const std::string& s);
    const InstrArg& control(const Synth& synth, const std::string& param) const;
    Slot& liveSlot(const Synth& synth);
    const Slot* slotOf(const Synth& synth) const;
    void scheduleAutomation(int table, int index, std::span<const double> pairs,
                            AutomationMode mode, double delay, bool overtake, int slot,
                            std::uint32_t generation);
    void addBusRef(const Bus& bus);
    // Every host-side write into Csound's tables goes through here (journaled).
    void store(int table, int index, double value) noexcept;
    void storeChannel(int channel, double value) noexcept;
    void sendEvent(std::span<const double> pfields, std::int64_t frame) noexcept;
    void dropBusRef(const Bus& bus);

    Engine& engine_;
    SessionOptions options_;
    std::vector<std::unique_ptr<Template>> templates_;
    std::map<std::string, Template*> byName_;
    std::vector<Slot> slots_;
    std::vector<int> freeSlots_;
    std::vector<int> activeSlots_;
    std::vector<Pending> pending_;
    std::uint64_t seq_ = 0;
    std::uint32_t nextInstance_ = 0;
    std::map<std::string, int> strings_;
    std::array<std::vector<int>, 2> busRefs_;
    int audioBusCountChannel_ = -1;
    std::vector<std::pair<std::string, double*>> channels_;
    bool journalOn_ = false;
    std::vector<JournalEntry> journal_;
    // Csound's tables, numbers and data
    int ctlTable_ = 0, aliveTable_ = 0, genTable_ = 0, kbusTable_ = 0;
    std::span<double> ctl_, alive_, gen_, kbus_;
};

} // namespace spinout
