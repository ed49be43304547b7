// spinout::Engine: RAII over one Csound instance, driven by its host through
// the spin/spout buffers, one performKsmps() per ksmps frames.
// This header and engine.cpp are the only places that know the Csound API.
// Threads: performKsmps(), scoreEvent(), spin()/spout(), channels and tables already made
// are real-time safe (the audio thread); everything that creates, compiles or evaluates
// is not (instantiation, the worker, the command).
#pragma once

#include "spinout/message_ring.hpp"

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

struct CSOUND_;

namespace spinout {

struct EngineOptions {
    int sr = 48000;
    int ksmps = 64;
    int nchnls = 2;   // output channels (spout)
    int nchnlsIn = 0; // input channels (spin)
    double a4 = 440.0;
    // Folder that relative paths in Csound code resolve against (SSDIR, SFDIR, INCDIR).
    std::string searchDir;
    std::vector<std::string> extraOptions;
    bool journal = false; // record compiled code from the first line (see journal())
    // Fill Csound's pool of event nodes (kEventsPerCycle of 16 KB) at start, so that
    // events handed over from a real-time thread never allocate. Off for a host whose
    // loop may allocate (the offline tools): 4 MB made and freed for nothing.
    bool reserveEventNodes = true;
};

// A Csound compile error: Csound's own text and the line inside the compiled code.
struct CsoundError {
    std::string message;
    int line = 0;         // 1-based line in the compiled text, 0 when Csound named none
    bool refused = false; // compileChecked: Csound parsed it, the caller refused it
};

struct OrcParse;

class EngineError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Engine {
public:
    explicit Engine(EngineOptions options);
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    const EngineOptions& options() const noexcept { return options_; }
    int sr() const noexcept { return options_.sr; }
    int ksmps() const noexcept { return options_.ksmps; }
    int nchnls() const noexcept { return options_.nchnls; }
    int nchnlsIn() const noexcept { return options_.nchnlsIn; }

    // Compiles orchestra code (global statements and instrs) into the running engine.
    std::optional<CsoundError> compile(std::string_view code);
    // Compiles code only if `admit` accepts what Csound's parser made of it, here, in the
    // state this engine is in: the tree `admit` reads is the one compiled, nothing is
    // parsed twice, and an #include'd file is read once. The session's own code comes this
    // way, past the policy check (Processor). Refused: an error with `refused` set.
    std::optional<CsoundError> compileChecked(std::string_view code,
                                              const std::function<bool(const OrcParse&)>& admit);
    // Evaluates code at init time and returns the value of its `return` statement.
    double evalCode(std::string_view code);

    // One control cycle. Real-time safe. False once Csound stopped performing.
    bool performKsmps() noexcept;
    // Work done so far: cycles performed and pieces of code compiled or evaluated. Any
    // thread may read it: a watchdog tells a session that hangs from one that works by it.
    std::uint64_t progress() const noexcept { return progress_.load(std::memory_order_relaxed); }

    // What Csound is running, for a watchdog on another thread while the thread that
    // drives this engine is stuck inside Csound (an endless loop in the session's code).
    // Read from Csound's private state without a lock: only for the diagnosis of a
    // process about to end. Nothing when it cannot tell.
    struct Running {
        bool init = false;  // in an init pass (else in a performance cycle)
        int instr = 0;      // Csound's instr number; 0 for global code
        std::string opcode; // as Csound names it ("##add", "oscili.a")
        int line = 0;       // in the code compiled for that instr; 0 when unknown
    };
    std::optional<Running> runningAt() const;
    // Interleaved ksmps * nchnlsIn input frames, written by the host before performKsmps.
    double* spin() noexcept { return spin_; }
    // Interleaved ksmps * nchnls output frames, valid after performKsmps.
    const double* spout() const noexcept { return spout_; }
    // Frames performed so far.
    std::int64_t frame() const noexcept;
    // Back to frame 0 after cycles performed before the host's first (the voices' warm-up):
    // every instance ends and every pending event goes; tables, channels, compiled code and
    // what instances allocated stay. spout is silent again. Not real-time.
    void rewind();

    // A score event ('i', 'f', 'e', ...) with numeric pfields; p[1] (p2) is the delay in
    // seconds from now. Real-time safe while at most kEventsPerCycle events are handed
    // over between two performKsmps: Csound keeps that many event nodes from the start.
    bool scoreEvent(char type, std::span<const double> pfields) noexcept;
    // Csound allocates a node (16 KB: room for PMAX pfields) for each event it holds and
    // keeps it for reuse; the constructor fills this pool, a host keeps within it.
    static constexpr int kEventsPerCycle = 256;

    // Channels, created on first use and cached: the returned pointers stay valid.
    double* controlChannel(const std::string& name);
    double* audioChannel(const std::string& name); // ksmps samples
    void setControl(const std::string& name, double value) { *controlChannel(name) = value; }
    double control(const std::string& name) { return *controlChannel(name); }
    void setString(const std::string& name, const std::string& value);
    std::string getString(const std::string& name);

    // Tables. Numbers are Csound's; data spans stay valid until the table is freed.
    int makeTable(std::size_t size);
    int makeTable(std::span<const double> data);
    // Reads a sound file with GEN1 (channel 0: all channels, interleaved).
    int readSoundFile(const std::string& path, int channel = 0);
    std::span<double> table(int number) noexcept;
    void freeTable(int number);

    // Records every compile and evalCode text, in order, for a standalone .csd.
    void setJournal(bool on) { journalOn_ = on; }
    struct CodeEntry {
        bool eval = false; // evalCode (a `return` expression) rather than compile
        std::string text;
    };
    const std::vector<CodeEntry>& journal() const { return journal_; }

    // Csound's random generators (the seeds of random, rnd and birnd, grain, pluck and the
    // score's `~`; the Mersenne Twister of unirand, gauss and the noise opcodes), kept
    // and put back around code whose draws nothing after it may see: the voices' warm-up
    // (warm_up.hpp), so that the notes draw what a fresh Csound draws, as in a render.
    // Orchestra code calls them as the opcodes below (no arguments, at init); real-time
    // safe. Csound has no API for them: found in its private state by what a new instance
    // holds (engine.cpp); when not found, randomStateFound() is false and they do nothing.
    static constexpr const char* kKeepRandomOpcode = "spinout__keep_random";
    static constexpr const char* kRestoreRandomOpcode = "spinout__restore_random";
    void keepRandom() noexcept;
    void restoreRandom() noexcept;
    bool randomStateFound() const noexcept;
    struct RandomState; // where they are and what was kept (engine.cpp)

    // Csound's messages, forwarded without allocation from the performing thread.
    MessageRing& messages() noexcept { return messages_; }

    // Internal: called by the message callback.
    void onMessage(int attr, const char* text, std::size_t len) noexcept;

private:
    double* channel(const std::string& name, int type);
    void reserveEventNodes();
    std::optional<CsoundError> captureErrors(int status);

    EngineOptions options_;
    CSOUND_* cs_ = nullptr;
    double* spin_ = nullptr;
    double* spout_ = nullptr;
    std::unordered_map<std::string, double*> channels_;
    MessageRing messages_;
    std::array<char, MessageRing::kTextSize - 1> line_{};
    std::size_t lineLength_ = 0;
    bool capturing_ = false;
    bool startingUp_ = true;
    bool muted_ = false; // messages dropped (rewind's "SECTION 1:")
    bool journalOn_ = false;
    std::vector<CodeEntry> journal_;
    std::string captured_;
    std::atomic<std::uint64_t> progress_{0};
    std::unique_ptr<RandomState> random_;
};

// What Csound's own parser makes of orchestra code, for the policy check: every opcode
// call (statements and function calls alike, after Csound expands expressions), with its
// arguments as literals or names. Built from the TREE of csoundParseOrc, in the engine
// that compiles that tree (Engine::compileChecked) or on a scratch instance that is never
// started (OrcParser); either way nothing the code says has run yet.
struct OrcArg {
    enum Kind { number, string, variable, other } kind = other;
    std::string text;   // a number as written, a string literal with its quotes, a name
    double value = 0;   // kind == number
    bool array = false; // a variable written with [] (an array)
};

struct OrcCall {
    std::string opcode; // "oscili", "##add", "=", or a UDO's name
    std::vector<OrcArg> outputs;
    std::vector<OrcArg> inputs;
    int line = 0;          // in the parsed text (or in an #include'd file: see included)
    bool included = false; // the call stands in a file the text #includes
    std::string scope;     // "" for global code, "instr N", "opcode NAME"
};

// An instr the code defines.
struct OrcInstr {
    std::string name;      // as written: a number or a name
    int line = 0;          // as OrcCall::line
    bool included = false; // it stands in a file the text #includes
};

struct OrcParse {
    bool ok = false;
    std::string error; // Csound's messages when the parse failed
    int errorLine = 0; // 0 when Csound named none
    std::vector<OrcCall> calls;
    std::vector<OrcInstr> instrs;
    std::vector<std::string> udos; // opcodes the code defines
    // Their signatures in the same order, as "NAME,OUTTYPES,INTYPES" ("gain,a,ak").
    std::vector<std::string> udoSignatures;
    // UDOs that took the place of an opcode of the same name and signature (Csound's
    // "redefined opcode"): of Csound's own, of spinout's, or of an earlier UDO.
    std::vector<std::string> redefined;
};

// A scratch Csound instance (never started) that parses pieces of code in the order an
// engine would compile them: UDOs, macros and global variables of earlier pieces are
// known to later ones. Csound's messages are captured, never printed.
class OrcParser {
public:
    // `includeDir`: the folder Csound searches for #include'd files (INCDIR), as Engine.
    explicit OrcParser(const std::string& includeDir = "");
    ~OrcParser();
    OrcParser(const OrcParser&) = delete;
    OrcParser& operator=(const OrcParser&) = delete;

    OrcParse parse(std::string_view code);
    // False once Csound gave up mid-parse (its state is then unknown): parse no more.
    bool usable() const noexcept { return usable_; }

    // Internal: called by the message callback.
    void onMessage(const char* text, std::size_t len);

private:
    CSOUND_* cs_ = nullptr;
    bool usable_ = true;
    std::string captured_;
    std::vector<std::string> globals_; // declarations of the globals seen so far
};

// The opcodes of the running Csound (built-ins and plugin libraries), one entry per
// overload, names without their ".suffix"; operators (names not starting with a letter)
// are not in it.
struct OpcodeEntry {
    std::string name;
    std::string outTypes;
    std::string inTypes;
};
std::vector<OpcodeEntry> csoundOpcodes();

// Formats a number so that Csound parses it back to the same double.
std::string csoundNumber(double value);
// A Csound orchestra string literal that Csound reads back as `text`, byte for byte,
// whatever it holds: nothing in it reaches the preprocessor (see engine.cpp).
std::string csoundString(std::string_view text);

} // namespace spinout
