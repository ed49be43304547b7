// spinout::Engine: one Csound instance through the Csound API (the only file that
// includes csound.h). Threads: performKsmps, scoreEvent and the message callback run
// on the audio thread (the plugin's run()) and allocate nothing; creating, compiling
// and destroying run at instantiation, in the worker or in the command.
#include "spinout/engine.hpp"

#include <csound/csound.h>

#include <fmt/format.h>

#include <dlfcn.h>
#include <link.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

// Last: its macros (OK, Str, FL...) would break the standard headers. Only for the
// public layout of struct CSOUND and of an instance (INSDS, OPDS), read by runningAt().
#include <csound/csdl.h>

namespace spinout {

namespace {

void messageCallback(CSOUND* cs, int attr, const char* format, va_list args) {
    auto* engine = static_cast<Engine*>(csoundGetHostData(cs));
    if (engine == nullptr) return;
    char text[MessageRing::kTextSize];
    const int n = std::vsnprintf(text, sizeof text, format, args);
    if (n <= 0) return;
    const auto len =
        static_cast<std::size_t>(n) < sizeof text ? static_cast<std::size_t>(n) : sizeof text - 1;
    engine->onMessage(attr, text, len);
}

void silentCallback(CSOUND*, int, const char*, va_list) {}

// Process-wide settings stay Csound's own: a default message callback set here would
// point into spinout.so after a host unloads the plugin, and the next Csound instance
// another part of the process creates would call it. Each instance gets its callback
// right after csoundCreate, which prints nothing before that.
void initializeCsound() {
    static std::once_flag once;
    std::call_once(once,
                   [] { csoundInitialize(CSOUNDINIT_NO_SIGNAL_HANDLER | CSOUNDINIT_NO_ATEXIT); });
}

// Csound dlopens every library of its plugin folder for each instance and dlcloses them
// when the instance is destroyed, so with no other instance alive they are unloaded and
// loaded again by the next one. Not every library they pull in survives that: libjack
// (needed by librtjack and librtpa) creates three pthread keys when it is loaded and
// does not delete them when it is unloaded, so each create/destroy cycle leaked three of
// the process's 1024 keys, and after about 340 instantiate/cleanup cycles of the plugin
// Csound failed with "pthread_key_create() failed with error 11". Pinning the modules
// (RTLD_NODELETE) once the first instance has loaded them keeps them, and what they pull
// in, loaded until the process ends: loaded once, initialised once.
bool isCsoundModule(void* handle, const char* path) {
    for (const char* entry : {"csoundModuleCreate", "csound_opcode_init", "csound_fgen_init"}) {
        void* sym = dlsym(handle, entry);
        Dl_info info;
        // dlsym also searches the library's dependencies: the symbol must be its own
        if (sym != nullptr && dladdr(sym, &info) != 0 && info.dli_fname != nullptr &&
            std::string(info.dli_fname) == path)
            return true;
    }
    return false;
}

void pinCsoundModules() {
    std::vector<std::string> loaded;
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* data) {
            if (info->dlpi_name != nullptr && info->dlpi_name[0] != '\0')
                static_cast<std::vector<std::string>*>(data)->emplace_back(info->dlpi_name);
            return 0;
        },
        &loaded);
    for (const auto& path : loaded) { // dlopen is not called under dl_iterate_phdr's lock
        void* handle = dlopen(path.c_str(), RTLD_LAZY | RTLD_NOLOAD);
        if (handle == nullptr) continue;
        if (isCsoundModule(handle, path.c_str())) {
            if (void* pinned = dlopen(path.c_str(), RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE))
                dlclose(pinned);
        }
        dlclose(handle);
    }
}

// Every Csound instance of the process is made here: the first one's modules are pinned,
// so the policy check's parser, made and destroyed before the engine, does not unload
// them for the engine to load again (a hundred libraries).
CSOUND* createCsound(void* hostData) {
    initializeCsound();
    CSOUND* cs = csoundCreate(hostData);
    if (cs == nullptr) throw EngineError("could not create a Csound instance");
    static std::once_flag pinned;
    std::call_once(pinned, pinCsoundModules);
    return cs;
}

// Csound names the failing line as "line N" in its error text.
int errorLine(const std::string& text) {
    static const std::regex lineRe(R"(line (\d+))");
    std::smatch m;
    if (std::regex_search(text, m, lineRe)) return std::stoi(m[1].str());
    return 0;
}

} // namespace

std::string csoundNumber(double value) {
    if (std::isnan(value) || std::isinf(value)) return "0";
    return fmt::format("{}", value); // shortest form that round-trips
}

std::string csoundString(std::string_view text) {
    // Csound's preprocessor acts inside strings too (#include, #exit, ###, $NAME, a
    // backslash before ; continues the line, a lone CR ends it), before the lexer reads it:
    // every byte but letters, digits, space and inert punctuation goes as a three-digit
    // octal escape, which only Csound's unquoting turns back into the byte. A CR written
    // as itself once let a string argument end the line and run code (found by attack).
    static constexpr std::string_view inert = " _-.,:/+=@%&*()[]<>?!~'|^";
    std::string out = "\"";
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if ((byte < 0x80 && std::isalnum(byte) != 0) || inert.find(c) != std::string_view::npos)
            out += c;
        else
            out += fmt::format("\\{:03o}", byte);
    }
    out += '"';
    return out;
}

// Csound's random generators live in struct CSOUND's private part (csoundCore.h), which
// the installed header declares only for Csound's own build:
// - holdrand (random, jitter, dust...), randSeed1 and randSeed2 (grain, the score's `~`):
//   three ints, then csRandState, a pointer to randState_;
// - rndfrac (rnd, birnd), randState_ (the Mersenne Twister of unirand, gauss, noise...),
//   ugens4_rand_16 and ugens4_rand_15 (pluck): in CsoundTail below, declared as Csound
//   6.18 declares that stretch of the struct.
// Csound gives them fixed values when it creates an instance (Top/csound.c, OOps/random.c):
// holdrand 2345678, randSeed1 15937, rndfrac 0.5, the twister seeded with 5489 (mti 624,
// mt[0] 5489), ugens4's 1000 and 1000. Found by those values: the three ints between the
// public part and rtPlay_userdata, a later field whose address the API hands out; the rest
// through csRandState. Only a layout that holds every one of those values is written to.
// (An opcode library's own state, such as oscbnk's seed for rnd31 with seed 0, which it
// takes from the clock, is not among them.)
namespace {

struct CsoundTail {
    double rndfrac;
    void* logbase2ToPvFileTable[9];
    int pvNumFiles, pvErrorCode;
    int enableHostImplementedAudioIO, enableHostImplementedMIDIIO, hostRequestedBufferSize;
    char engineStatus, stdinAssignFlag, stdoutAssignFlag, orcnameMode;
    int useOnlyOrchfile;
    void* csmoduleDbToSfIdCopyright[5];
    int sfIdScopyright;
    void* sfIdSoftwareToLprdaddr[7];
    int currentLPCSlot, maxLpcSlot;
    void* chnDb;
    int opcodedirWasOK, disableCsdOptions;
    CsoundRandMTState randState;
    int performState;
    int ugens4Rand16, ugens4Rand15;
};

} // namespace

struct Engine::RandomState {
    int* seeds = nullptr; // holdrand, randSeed1, randSeed2
    CsoundTail* tail = nullptr;
    std::array<int, 3> keptSeeds{};
    double keptRndfrac = 0;
    CsoundRandMTState keptTwister{};
    int keptRand16 = 0, keptRand15 = 0;
};

namespace {

std::unique_ptr<Engine::RandomState> findRandomState(CSOUND* cs) {
    auto* base = reinterpret_cast<char*>(cs);
    auto* limit = reinterpret_cast<char*>(csoundGetRtPlayUserData(cs));
    auto readInt = [](const char* at) {
        int v = 0;
        std::memcpy(&v, at, sizeof v);
        return v;
    };
    for (char* at = base + sizeof(CSOUND); at + 3 * sizeof(int) < limit; at += sizeof(int)) {
        if (readInt(at) != 2345678 || readInt(at + sizeof(int)) != 15937) continue;
        auto pointerAt = reinterpret_cast<std::uintptr_t>(at) + 3 * sizeof(int);
        pointerAt = (pointerAt + alignof(void*) - 1) & ~(std::uintptr_t{alignof(void*)} - 1);
        if (pointerAt + sizeof(void*) > reinterpret_cast<std::uintptr_t>(limit)) break;
        char* twister = nullptr;
        std::memcpy(&twister, reinterpret_cast<const char*>(pointerAt), sizeof twister);
        // rndfrac lies past rtPlay_userdata, inside the struct (60 KB in, in 6.18)
        char* tailAt = twister - offsetof(CsoundTail, randState);
        if (tailAt <= limit || twister > limit + (1 << 20)) break;
        auto* tail = reinterpret_cast<CsoundTail*>(tailAt);
        if (tail->rndfrac != 0.5 || tail->randState.mti != 624 || tail->randState.mt[0] != 5489 ||
            tail->ugens4Rand16 != 1000 || tail->ugens4Rand15 != 1000)
            break;
        auto found = std::make_unique<Engine::RandomState>();
        found->seeds = reinterpret_cast<int*>(at);
        found->tail = tail;
        return found;
    }
    return nullptr;
}

int doNothingOpcode(CSOUND*, void*) {
    return OK;
}

// Engine::kKeepRandomOpcode and kRestoreRandomOpcode, i-time, no arguments.
void appendRandomOpcodes(CSOUND* cs, SUBR keep, SUBR restore) {
    csoundAppendOpcode(cs, Engine::kKeepRandomOpcode, sizeof(OPDS), 0, 1, "", "", keep, nullptr,
                       nullptr);
    csoundAppendOpcode(cs, Engine::kRestoreRandomOpcode, sizeof(OPDS), 0, 1, "", "", restore,
                       nullptr, nullptr);
}

int keepRandomOpcode(CSOUND* cs, void*) {
    if (auto* engine = static_cast<Engine*>(csoundGetHostData(cs))) engine->keepRandom();
    return OK;
}

int restoreRandomOpcode(CSOUND* cs, void*) {
    if (auto* engine = static_cast<Engine*>(csoundGetHostData(cs))) engine->restoreRandom();
    return OK;
}

} // namespace

void Engine::keepRandom() noexcept {
    if (!random_) return;
    auto& r = *random_;
    std::memcpy(r.keptSeeds.data(), r.seeds, sizeof r.keptSeeds);
    r.keptRndfrac = r.tail->rndfrac;
    r.keptTwister = r.tail->randState;
    r.keptRand16 = r.tail->ugens4Rand16;
    r.keptRand15 = r.tail->ugens4Rand15;
}

void Engine::restoreRandom() noexcept {
    if (!random_) return;
    auto& r = *random_;
    std::memcpy(r.seeds, r.keptSeeds.data(), sizeof r.keptSeeds);
    r.tail->rndfrac = r.keptRndfrac;
    r.tail->randState = r.keptTwister;
    r.tail->ugens4Rand16 = r.keptRand16;
    r.tail->ugens4Rand15 = r.keptRand15;
}

bool Engine::randomStateFound() const noexcept {
    return random_ != nullptr;
}

Engine::Engine(EngineOptions options) : options_(std::move(options)) {
    if (options_.sr <= 0 || options_.ksmps <= 0 || options_.nchnls <= 0 || options_.nchnlsIn < 0)
        throw EngineError("invalid engine options: sr, ksmps and nchnls must be positive");
    journalOn_ = options_.journal;
    cs_ = createCsound(this);
    random_ = findRandomState(cs_); // before anything draws
    if (!random_) {
        static constexpr std::string_view lost =
            "spinout: Csound's random generators were not found in this build of Csound: "
            "the voices' warm-up moves them on, and notes draw other values than in an "
            "exported .csd";
        messages_.push(MessageLevel::warning, lost.data(), lost.size());
    }
    csoundSetMessageCallback(cs_, messageCallback);
    csoundSetHostImplementedAudioIO(cs_, 1, 0);
    appendRandomOpcodes(cs_, keepRandomOpcode, restoreRandomOpcode);
    csoundSetHostImplementedMIDIIO(cs_, 1);

    std::vector<std::string> opts = {"-n",
                                     "-d",
                                     "-m0",
                                     "--sample-accurate",
                                     "-+rtaudio=null",
                                     "-+rtmidi=null",
                                     "-+msg_color=0",
                                     "--nodisplays"};
    if (!options_.searchDir.empty()) {
        // Csound splits these at ':' and ';' into folders to search (found by attack: a
        // session in "/x/evil:/etc" read files from /etc)
        if (options_.searchDir.find_first_of(":;") != std::string::npos) {
            csoundDestroy(cs_);
            throw EngineError(fmt::format("the session's folder '{}' holds ':' or ';', which "
                                          "Csound reads as a list of folders: move the session",
                                          options_.searchDir));
        }
        for (const char* var : {"SSDIR", "SFDIR", "SADIR", "INCDIR"})
            opts.push_back(fmt::format("--env:{}={}", var, options_.searchDir));
    }
    opts.insert(opts.end(), options_.extraOptions.begin(), options_.extraOptions.end());
    for (const auto& o : opts) {
        if (csoundSetOption(cs_, o.c_str()) != CSOUND_SUCCESS) {
            csoundDestroy(cs_);
            throw EngineError(fmt::format("Csound rejected the option '{}'", o));
        }
    }
    const auto header = fmt::format("sr = {}\nksmps = {}\nnchnls = {}\nnchnls_i = {}\n"
                                    "0dbfs = 1\nA4 = {}\n",
                                    options_.sr, options_.ksmps, options_.nchnls,
                                    std::max(options_.nchnlsIn, 1), csoundNumber(options_.a4));
    if (auto err = compile(header)) {
        csoundDestroy(cs_);
        throw EngineError("Csound rejected the engine header: " + err->message);
    }
    if (csoundStart(cs_) != CSOUND_SUCCESS) {
        csoundDestroy(cs_);
        throw EngineError("Csound failed to start");
    }
    startingUp_ = false;
    spin_ = csoundGetSpin(cs_);
    spout_ = csoundGetSpout(cs_);
    if (options_.reserveEventNodes) reserveEventNodes();
}

// Csound takes an event node from its free list, or callocs one, for each event it is
// handed, and returns it to the list once the event is processed in the next cycle: the
// list only grows. Handing over kEventsPerCycle no-op events now (an 'f' event for table 0
// does nothing) makes the list that long before the first cycle, off the audio thread.
void Engine::reserveEventNodes() {
    const double noop[] = {0, 0};
    for (int i = 0; i < kEventsPerCycle; ++i)
        csoundScoreEvent(cs_, 'f', noop, 2);
}

Engine::~Engine() {
    if (cs_ != nullptr) {
        csoundSetHostData(cs_, nullptr);
        csoundDestroy(cs_);
    }
}

void Engine::onMessage(int attr, const char* text, std::size_t len) noexcept {
    if (muted_) return;
    const int type = attr & CSOUNDMSG_TYPE_MASK;
    // Csound prints its start-up banner as errors: until started, everything is information.
    const auto level = startingUp_                 ? MessageLevel::info
                       : type == CSOUNDMSG_ERROR   ? MessageLevel::error
                       : type == CSOUNDMSG_WARNING ? MessageLevel::warning
                                                   : MessageLevel::info;
    if (capturing_) {
        // Only off the audio thread: compile and evalCode capture their errors.
        try {
            captured_.append(text, len);
        } catch (...) {
        }
    }
    // Csound prints a line in fragments; the ring gets whole lines.
    for (std::size_t i = 0; i < len; ++i) {
        if (text[i] == '\n' || lineLength_ == line_.size()) {
            if (lineLength_ > 0) messages_.push(level, line_.data(), lineLength_);
            lineLength_ = 0;
            if (text[i] == '\n') continue;
        }
        line_[lineLength_++] = text[i];
    }
}

std::optional<CsoundError> Engine::captureErrors(int status) {
    capturing_ = false;
    if (status == CSOUND_SUCCESS) return std::nullopt;
    CsoundError err;
    err.message = captured_.empty() ? std::string("Csound failed to compile the code") : captured_;
    while (!err.message.empty() && (err.message.back() == '\n' || err.message.back() == ' '))
        err.message.pop_back();
    err.line = errorLine(err.message);
    return err;
}

std::optional<CsoundError> Engine::compile(std::string_view code) {
    captured_.clear();
    capturing_ = true;
    const std::string text(code);
    auto err = captureErrors(csoundCompileOrc(cs_, text.c_str()));
    progress_.fetch_add(1, std::memory_order_relaxed);
    if (journalOn_ && !err) journal_.push_back({false, text});
    return err;
}

double Engine::evalCode(std::string_view code) {
    captured_.clear();
    capturing_ = true;
    const std::string text(code);
    const double value = csoundEvalCode(cs_, text.c_str());
    progress_.fetch_add(1, std::memory_order_relaxed);
    capturing_ = false;
    if (captured_.find("error") != std::string::npos ||
        captured_.find("INIT ERROR") != std::string::npos)
        throw EngineError(fmt::format("Csound could not evaluate code: {}", captured_));
    if (journalOn_) journal_.push_back({true, text});
    return value;
}

bool Engine::performKsmps() noexcept {
    const bool ok = csoundPerformKsmps(cs_) == 0;
    progress_.fetch_add(1, std::memory_order_relaxed);
    return ok;
}

namespace {

// struct CSOUND past its public part (csoundCore.h's private fields, which the installed
// header declares only when building Csound): the public part is all pointers, and the
// private part opens with function pointers, hostdata and four more pointers before
// `ids`, the opcode an init pass is running. Two of them hold values spinout set (the
// message callback and the host data): when either differs, the layout is not the one
// expected and nothing is read through it.
constexpr std::size_t kMessageCallbackSlot = 3;
constexpr std::size_t kHostDataSlot = 26;
constexpr std::size_t kIdsSlot = 31;

void* privateSlot(CSOUND* cs, std::size_t index) {
    void* value = nullptr;
    std::memcpy(&value, reinterpret_cast<const char*>(cs) + sizeof(CSOUND) + index * sizeof(void*),
                sizeof value);
    return value;
}

jmp_buf* exitJump(CSOUND* cs);

// The anchor of the list of active instances: after exitjmp come a pointer, four ints and
// the anchor itself (an INSDS). Checked: the first instance links back to it and names
// this Csound.
const INSDS* activeAnchor(CSOUND* cs) {
    auto* jump = exitJump(cs);
    if (jump == nullptr) return nullptr;
    auto at = reinterpret_cast<std::uintptr_t>(jump) + sizeof(jmp_buf);
    at = (at + alignof(void*) - 1) & ~(std::uintptr_t{alignof(void*)} - 1);
    at += sizeof(void*) + 4 * sizeof(int);
    at = (at + alignof(INSDS) - 1) & ~(std::uintptr_t{alignof(INSDS)} - 1);
    const auto* anchor = reinterpret_cast<const INSDS*>(at);
    const INSDS* first = anchor->nxtact;
    if (first != nullptr && (first->prvact != anchor || first->csound != cs)) return nullptr;
    return anchor;
}

Engine::Running describe(const OPDS* op, bool init) {
    Engine::Running r;
    r.init = init;
    if (op->insdshead != nullptr) r.instr = op->insdshead->insno;
    if (op->optext != nullptr) {
        r.line = op->optext->t.linenum;
        if (op->optext->t.opcod != nullptr) r.opcode = op->optext->t.opcod;
    }
    if (r.line != 0) return r;
    // What Csound makes of an expression or a loop's test and jump carries no line: the
    // closest statement before it in its chain (the loop's body), else the next one.
    const auto next = [init](const OPDS* o) { return init ? o->nxti : o->nxtp; };
    if (op->insdshead != nullptr) {
        int last = 0;
        int steps = 0;
        const OPDS* o = next(reinterpret_cast<const OPDS*>(op->insdshead)); // INSDS opens as OPDS
        for (; o != nullptr && o != op && steps < 100000; o = next(o), ++steps)
            if (o->optext != nullptr && o->optext->t.linenum != 0) last = o->optext->t.linenum;
        if (o == op) r.line = last;
    }
    for (int i = 0; i < 64 && op != nullptr && r.line == 0; ++i, op = next(op))
        if (op->optext != nullptr) r.line = op->optext->t.linenum;
    return r;
}

} // namespace

std::optional<Engine::Running> Engine::runningAt() const {
    CSOUND* cs = cs_;
    if (privateSlot(cs, kMessageCallbackSlot) != reinterpret_cast<void*>(&messageCallback) ||
        privateSlot(cs, kHostDataSlot) != static_cast<const void*>(this))
        return std::nullopt;
    if (const auto* ids = static_cast<const OPDS*>(privateSlot(cs, kIdsSlot)))
        return describe(ids, true);
    // A performance cycle: the instance that loops is the one whose current opcode moves.
    const INSDS* anchor = activeAnchor(cs);
    if (anchor == nullptr) return std::nullopt;
    std::vector<std::pair<const INSDS*, const OPDS*>> seen;
    for (const INSDS* ip = anchor->nxtact; ip != nullptr && seen.size() < 100000; ip = ip->nxtact) {
        if (ip->csound != cs) return std::nullopt;
        seen.emplace_back(ip, ip->pds);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    for (const auto& [ip, pds] : seen)
        if (ip->pds != pds && ip->pds != nullptr) return describe(ip->pds, false);
    // A loop of one opcode: the instance stopped inside its chain rather than at its end.
    for (const auto& [ip, pds] : seen)
        if (pds != nullptr && pds->nxtp != nullptr) return describe(pds, false);
    return std::nullopt;
}

std::int64_t Engine::frame() const noexcept {
    return csoundGetCurrentTimeSamples(cs_);
}

void Engine::rewind() {
    muted_ = true; // Csound announces "SECTION 1:" as an error
    csoundRewindScore(cs_);
    muted_ = false;
    std::fill_n(spout_, static_cast<std::size_t>(options_.ksmps) * options_.nchnls, 0.0);
}

bool Engine::scoreEvent(char type, std::span<const double> pfields) noexcept {
    return csoundScoreEvent(cs_, type, pfields.data(), static_cast<long>(pfields.size())) ==
           CSOUND_SUCCESS;
}

double* Engine::channel(const std::string& name, int type) {
    const auto key = fmt::format("{}:{}", type, name);
    if (auto it = channels_.find(key); it != channels_.end()) return it->second;
    MYFLT* ptr = nullptr;
    if (csoundGetChannelPtr(cs_, &ptr, name.c_str(),
                            type | CSOUND_INPUT_CHANNEL | CSOUND_OUTPUT_CHANNEL) !=
            CSOUND_SUCCESS ||
        ptr == nullptr)
        throw EngineError(fmt::format("channel '{}' exists with another type", name));
    channels_.emplace(key, ptr);
    return ptr;
}

double* Engine::controlChannel(const std::string& name) {
    return channel(name, CSOUND_CONTROL_CHANNEL);
}

double* Engine::audioChannel(const std::string& name) {
    return channel(name, CSOUND_AUDIO_CHANNEL);
}

void Engine::setString(const std::string& name, const std::string& value) {
    channel(name, CSOUND_STRING_CHANNEL);
    csoundSetStringChannel(cs_, name.c_str(), const_cast<char*>(value.c_str()));
}

std::string Engine::getString(const std::string& name) {
    channel(name, CSOUND_STRING_CHANNEL);
    const int size = csoundGetChannelDatasize(cs_, name.c_str());
    std::string out(static_cast<std::size_t>(std::max(size, 1)) + 1, '\0');
    csoundGetStringChannel(cs_, name.c_str(), out.data());
    out.resize(std::char_traits<char>::length(out.c_str()));
    return out;
}

int Engine::makeTable(std::size_t size) {
    if (size == 0) throw EngineError("a table needs at least one element");
    const auto n = static_cast<int>(evalCode(fmt::format("return ftgen(0, 0, -{}, -2, 0)", size)));
    if (table(n).size() != size)
        throw EngineError(fmt::format("could not make a table of {}", size));
    return n;
}

int Engine::makeTable(std::span<const double> data) {
    if (data.size() <= 256) { // small tables (automation breakpoints) as code: journaled
        std::string values;
        for (double v : data)
            values += ", " + csoundNumber(v);
        const auto n = static_cast<int>(
            evalCode(fmt::format("return ftgen(0, 0, -{}, -2{})", data.size(), values)));
        if (table(n).size() != data.size()) throw EngineError("could not make a table");
        return n;
    }
    const int n = makeTable(data.size());
    std::copy(data.begin(), data.end(), table(n).begin());
    return n;
}

int Engine::readSoundFile(const std::string& path, int channel) {
    const auto n = static_cast<int>(evalCode(
        fmt::format("return ftgen(0, 0, 0, -1, {}, 0, 0, {})", csoundString(path), channel)));
    if (n <= 0 || table(n).empty())
        throw EngineError(fmt::format("could not read the sound file '{}'", path));
    return n;
}

std::span<double> Engine::table(int number) noexcept {
    MYFLT* data = nullptr;
    const int len = csoundGetTable(cs_, &data, number);
    if (len <= 0 || data == nullptr) return {};
    return {data, static_cast<std::size_t>(len)};
}

void Engine::freeTable(int number) {
    evalCode(fmt::format("ftfree {}, 0", number));
}

// OrcParser -------------------------------------------------------------------

namespace {

void parserMessageCallback(CSOUND* cs, int, const char* format, va_list args) {
    auto* parser = static_cast<OrcParser*>(csoundGetHostData(cs));
    if (parser == nullptr) return;
    char text[1024];
    const int n = std::vsnprintf(text, sizeof text, format, args);
    if (n <= 0) return;
    parser->onMessage(text, std::min(static_cast<std::size_t>(n), sizeof text - 1));
}

// The TREE node types of Csound's bison grammar, read off a parse of known code
// rather than copied from the generated header, which Csound does not install.
struct TokenTypes {
    int instr = -1;
    int udo = -1;
    int label = -1;
    int integer = -1;
    int number = -1;
    int string = -1;
    bool ok() const {
        return instr >= 0 && udo >= 0 && label >= 0 && integer >= 0 && number >= 0 && string >= 0;
    }
};

// Csound defines a UDO as it parses its header: the calibration's empty opcode is compiled
// where it is parsed (one parsed and never compiled would crash whoever called it). The
// instr is only parsed: Csound defines an instr when it compiles it.
constexpr const char* kCalibrationOpcode = "opcode spinout__calibrate, 0, 0\n"
                                           "endop\n";
constexpr const char* kCalibrationInstr = "instr 1\n"
                                          "spinout__label:\n"
                                          "i__a = 1\n"
                                          "i__b = 1.5\n"
                                          "S__c = \"s\"\n"
                                          "endin\n";

// csoundParseOrc gives up through longjmp(csound->exitjmp) on some preprocessor errors
// (an #else without #ifdef, a runaway #define) and only Csound's compiling calls set that
// jump buffer, so a bare call would jump into nowhere. The buffer is the field after
// rtPlay_userdata in struct CSOUND (csoundCore.h), whose address the API hands out; the
// neighbouring fields (rtRecord_userdata, and A4 before it) confirm the layout.
jmp_buf* exitJump(CSOUND* cs) {
    auto* record = reinterpret_cast<char*>(csoundGetRtRecordUserData(cs));
    auto* play = reinterpret_cast<char*>(csoundGetRtPlayUserData(cs));
    if (record == nullptr || play != record + sizeof(void*)) return nullptr;
    double a4 = 0;
    std::memcpy(&a4, record - sizeof(double), sizeof a4);
    if (a4 != csoundGetA4(cs)) return nullptr;
    auto address = reinterpret_cast<std::uintptr_t>(play + sizeof(void*));
    address = (address + alignof(jmp_buf) - 1) & ~(std::uintptr_t{alignof(jmp_buf)} - 1);
    return reinterpret_cast<jmp_buf*>(address);
}

// No object with a destructor lives in this frame: longjmp may leave it.
TREE* guardedParse(CSOUND* cs, jmp_buf* jump, const char* text, bool* jumped) {
    jmp_buf saved;
    std::memcpy(&saved, jump, sizeof saved);
    TREE* volatile tree = nullptr;
    if (setjmp(*jump) == 0)
        tree = csoundParseOrc(cs, text);
    else
        *jumped = true;
    std::memcpy(jump, &saved, sizeof saved);
    return tree;
}

// No object with a destructor lives in this frame: longjmp may leave it.
int guardedCompileTree(CSOUND* cs, jmp_buf* jump, TREE* tree) {
    jmp_buf saved;
    std::memcpy(&saved, jump, sizeof saved);
    volatile int status = CSOUND_ERROR;
    if (setjmp(*jump) == 0) status = csoundCompileTree(cs, tree);
    std::memcpy(jump, &saved, sizeof saved);
    return status;
}

const char* lexeme(const TREE* t) {
    return t != nullptr && t->value != nullptr ? t->value->lexeme : nullptr;
}

bool isNumberText(const char* s, double* value) {
    if (s == nullptr || *s == '\0') return false;
    char* end = nullptr;
    const double v = std::strtod(s, &end);
    if (end == s || *end != '\0') return false;
    *value = v;
    return true;
}

OrcArg toArg(const TREE* t, const TokenTypes& types) {
    OrcArg a;
    const char* text = lexeme(t);
    if (text == nullptr) return a;
    a.text = text;
    const bool array = t->right != nullptr && t->right->type == '[';
    a.array = array;
    if (t->left != nullptr || (t->right != nullptr && !array)) return a; // an expression
    if (t->type == types.string && text[0] == '"') {
        a.kind = OrcArg::string;
    } else if (t->type == types.integer) {
        a.kind = OrcArg::number;
        a.value = t->value->value;
    } else if (t->type == types.number) {
        a.kind = OrcArg::number;
        a.value = t->value->fvalue;
    } else if (isNumberText(text, &a.value)) {
        a.kind = OrcArg::number;
    } else if (std::isalpha(static_cast<unsigned char>(text[0])) != 0 || text[0] == '_' ||
               text[0] == '#') {
        a.kind = OrcArg::variable;
    }
    return a;
}

// A statement's own line is often the next one (the parser has read the newline);
// its arguments carry the line they stand on.
int statementLine(const TREE* t) {
    int line = t->line > 0 ? t->line : 0;
    for (const TREE* side : {t->left, t->right})
        for (const TREE* a = side; a != nullptr; a = a->next)
            if (a->line > 0 && (line == 0 || a->line < line)) line = a->line;
    return line;
}

struct Walker {
    const TokenTypes& types;
    OrcParse& out;
    std::vector<std::string>& globals;
    int lineOffset;
    std::size_t skip; // the declarations that open the text

    void declareGlobal(const TREE* t) {
        const char* name = lexeme(t);
        if (name == nullptr || name[0] != 'g' || name[1] == '\0') return;
        std::string decl;
        const bool array = t->right != nullptr && t->right->type == '[';
        if (array)
            decl = fmt::format("{}[] init 1", name);
        else if (std::strchr("ika", name[1]) != nullptr)
            decl = fmt::format("{} init 0", name);
        else if (name[1] == 'S')
            decl = fmt::format("{} init \"\"", name);
        else if (name[1] == 'f')
            decl = fmt::format("{} pvsinit 1024", name);
        else
            return;
        if (std::find(globals.begin(), globals.end(), decl) == globals.end())
            globals.push_back(decl);
    }

    // The names of an instr's header: one, or a list (`instr 5, 6`).
    template <class F> static void names(const TREE* t, F&& f) {
        if (t == nullptr) return;
        if (const char* n = lexeme(t)) {
            f(n);
            return;
        }
        names(t->left, f);
        names(t->right, f);
    }

    void walk(const TREE* t, const std::string& scope) {
        for (; t != nullptr; t = t->next) {
            if (t->type == types.instr) {
                const char* name = lexeme(t->left);
                const bool included = (t->locn & 0xff) != 0;
                const int line = std::max(0, statementLine(t) - (included ? 0 : lineOffset));
                names(t->left, [&](const char* n) { out.instrs.push_back({n, line, included}); });
                walk(t->right, fmt::format("instr {}", name != nullptr ? name : "?"));
                continue;
            }
            if (t->type == types.udo) {
                const char* name = lexeme(t->left);
                out.udos.emplace_back(name != nullptr ? name : "");
                const TREE* ident = t->left;
                const char* outTypes = ident != nullptr ? lexeme(ident->left) : nullptr;
                const char* inTypes = ident != nullptr ? lexeme(ident->right) : nullptr;
                out.udoSignatures.push_back(fmt::format("{},{},{}", out.udos.back(),
                                                        outTypes != nullptr ? outTypes : "?",
                                                        inTypes != nullptr ? inTypes : "?"));
                walk(t->right, fmt::format("opcode {}", name != nullptr ? name : "?"));
                continue;
            }
            if (t->type == types.label) continue;
            if (scope.empty() && skip > 0) {
                --skip;
                continue;
            }
            OrcCall call;
            const char* name = lexeme(t);
            call.opcode = name != nullptr ? name : ""; // "": a node the check cannot name
            for (const TREE* a = t->left; a != nullptr; a = a->next) {
                call.outputs.push_back(toArg(a, types));
                declareGlobal(a);
            }
            for (const TREE* a = t->right; a != nullptr; a = a->next)
                call.inputs.push_back(toArg(a, types));
            call.included = (t->locn & 0xff) != 0;
            // lines in an #include'd file count from its own start
            call.line = std::max(0, statementLine(t) - (call.included ? 0 : lineOffset));
            call.scope = scope;
            out.calls.push_back(std::move(call));
        }
    }
};

TokenTypes calibrate(CSOUND* cs, jmp_buf* jump) {
    TokenTypes types;
    bool jumped = false;
    TREE* tree = guardedParse(cs, jump, kCalibrationOpcode, &jumped);
    if (tree == nullptr) return types;
    if (tree->next != nullptr) types.udo = tree->next->type;
    const int compiled = guardedCompileTree(cs, jump, tree);
    csoundDeleteTree(cs, tree);
    if (compiled != CSOUND_SUCCESS) return {};
    tree = guardedParse(cs, jump, kCalibrationInstr, &jumped);
    if (tree == nullptr) return {};
    const TREE* instr = tree->next;
    if (instr != nullptr && instr->right != nullptr) {
        types.instr = instr->type;
        const TREE* label = instr->right;
        types.label = label->type;
        const TREE* a = label->next;
        const TREE* b = a != nullptr ? a->next : nullptr;
        const TREE* c = b != nullptr ? b->next : nullptr;
        if (a != nullptr && a->right != nullptr) types.integer = a->right->type;
        if (b != nullptr && b->right != nullptr) types.number = b->right->type;
        if (c != nullptr && c->right != nullptr) types.string = c->right->type;
    }
    csoundDeleteTree(cs, tree);
    return types;
}

// Learnt once per process, from the first instance that parses for the check (an engine,
// which keeps the empty opcode spinout__calibrate, or a scratch parser).
const TokenTypes& tokenTypes(CSOUND* cs, jmp_buf* jump) {
    static TokenTypes types;
    static std::once_flag once;
    std::call_once(once, [&] {
        if (jump != nullptr) types = calibrate(cs, jump);
    });
    return types;
}

} // namespace

OrcParser::OrcParser(const std::string& includeDir) {
    cs_ = createCsound(this);
    csoundSetMessageCallback(cs_, parserMessageCallback);
    // the engine's own opcodes parse here as there (the check refuses them in session code)
    appendRandomOpcodes(cs_, doNothingOpcode, doNothingOpcode);
    std::vector<std::string> opts = {
        "-n", "-d", "-m0", "-+rtaudio=null", "-+rtmidi=null", "--nodisplays", "-+msg_color=0"};
    // a folder Csound would split (see Engine) is none: the engine refuses it anyway
    if (!includeDir.empty() && includeDir.find_first_of(":;") == std::string::npos)
        opts.push_back(fmt::format("--env:INCDIR={}", includeDir));
    for (const auto& o : opts)
        csoundSetOption(cs_, o.c_str());
    auto* jump = exitJump(cs_);
    if (jump == nullptr || !tokenTypes(cs_, jump).ok()) usable_ = false;
    captured_.clear();
}

OrcParser::~OrcParser() {
    csoundSetHostData(cs_, nullptr);
    csoundDestroy(cs_);
}

void OrcParser::onMessage(const char* text, std::size_t len) {
    if (captured_.size() < 16384) captured_.append(text, len);
}

namespace {

// Csound warns "redefined opcode: NAME" as it parses a UDO whose name and signature an
// opcode already has, and puts the UDO in that opcode's place.
std::vector<std::string> redefinedOpcodes(std::string_view messages) {
    static constexpr std::string_view mark = "redefined opcode: ";
    std::vector<std::string> names;
    for (auto at = messages.find(mark); at != std::string_view::npos;
         at = messages.find(mark, at)) {
        at += mark.size();
        auto end = messages.find_first_of(" \t\r\n", at);
        if (end == std::string_view::npos) end = messages.size();
        names.emplace_back(messages.substr(at, end - at));
    }
    return names;
}

} // namespace

OrcParse OrcParser::parse(std::string_view code) {
    OrcParse out;
    if (!usable_) {
        out.error = "the checker's Csound instance is unusable";
        return out;
    }
    std::string text;
    for (const auto& decl : globals_)
        text += decl + '\n';
    const int offset = static_cast<int>(globals_.size());
    text.append(code);
    captured_.clear();
    bool jumped = false;
    TREE* tree = guardedParse(cs_, exitJump(cs_), text.c_str(), &jumped);
    if (jumped) usable_ = false;
    if (tree == nullptr) {
        out.error = captured_.empty() ? std::string("Csound could not parse the code") : captured_;
        while (!out.error.empty() && (out.error.back() == '\n' || out.error.back() == ' '))
            out.error.pop_back();
        // Syntax errors say "line N", semantic ones "Line N" or "Line: N".
        static const std::regex lineRe(R"([Ll]ine:? (\d+))");
        std::smatch m;
        if (std::regex_search(out.error, m, lineRe))
            out.errorLine = std::max(0, std::stoi(m[1].str()) - offset);
        return out;
    }
    Walker walker{tokenTypes(cs_, exitJump(cs_)), out, globals_, offset, globals_.size()};
    walker.walk(tree->next, "");
    out.redefined = redefinedOpcodes(captured_);
    csoundDeleteTree(cs_, tree);
    out.ok = true;
    return out;
}

std::optional<CsoundError>
Engine::compileChecked(std::string_view code, const std::function<bool(const OrcParse&)>& admit) {
    auto* jump = exitJump(cs_);
    if (jump == nullptr || !tokenTypes(cs_, jump).ok())
        return CsoundError{"the policy check cannot read this Csound's parse trees", 0, true};
    captured_.clear();
    capturing_ = true;
    const std::string text(code);
    bool jumped = false;
    TREE* tree = guardedParse(cs_, jump, text.c_str(), &jumped);
    progress_.fetch_add(1, std::memory_order_relaxed);
    if (tree == nullptr) {
        auto err = captureErrors(CSOUND_ERROR);
        if (jumped) err->message += " (Csound gave up parsing)";
        return err;
    }
    OrcParse parsed;
    std::vector<std::string> noGlobals; // what this engine compiled is declared in it
    Walker walker{tokenTypes(cs_, jump), parsed, noGlobals, 0, 0};
    walker.walk(tree->next, "");
    parsed.redefined = redefinedOpcodes(captured_);
    parsed.ok = true;
    capturing_ = false;
    const bool admitted = admit(parsed);
    capturing_ = true;
    std::optional<CsoundError> err;
    if (admitted)
        err = captureErrors(guardedCompileTree(cs_, jump, tree));
    else
        err = CsoundError{"refused by the policy check", 0, true};
    capturing_ = false;
    csoundDeleteTree(cs_, tree);
    if (journalOn_ && !err) journal_.push_back({false, text});
    return err;
}

std::vector<OpcodeEntry> csoundOpcodes() {
    CSOUND* cs = createCsound(nullptr);
    csoundSetMessageCallback(cs, silentCallback);
    opcodeListEntry* list = nullptr;
    const int n = csoundNewOpcodeList(cs, &list);
    std::vector<OpcodeEntry> out;
    for (int i = 0; i < n; ++i)
        out.push_back({list[i].opname, list[i].outypes, list[i].intypes});
    if (list != nullptr) csoundDisposeOpcodeList(cs, list);
    csoundDestroy(cs);
    return out;
}

} // namespace spinout
