// The LV2 adapter: one binary for every session. It finds its session from the
// bundle it was loaded from (lv2_lib_descriptor), translates ports, atoms and
// URIDs into Processor calls, and does everything that allocates in the worker.
//
// Threads, as LV2 names them (each callback's comment says which it runs in):
// - discovery: lv2_lib_descriptor, get_plugin, extension_data, cleanup of a library;
// - instantiation: instantiate, cleanup, restore (never concurrent with run);
// - audio: connect_port, run, work_response (real-time: see the rules in design.md);
// - worker: work (the host's worker thread, or the audio thread's caller offline);
// - state: save (may run concurrently with audio and worker).
#include "spinout/ports.hpp"
#include "spinout/processor.hpp"
#include "spinout/session_file.hpp"
#include "spinout/text_file.hpp"
#include "spinout/trust.hpp"
#include "spinout/ttl.hpp"

#include <lv2/atom/atom.h>
#include <lv2/atom/forge.h>
#include <lv2/atom/util.h>
#include <lv2/core/lv2.h>
#include <lv2/core/lv2_util.h>
#include <lv2/log/log.h>
#include <lv2/log/logger.h>
#include <lv2/midi/midi.h>
#include <lv2/patch/patch.h>
#include <lv2/state/state.h>
#include <lv2/time/time.h>
#include <lv2/urid/urid.h>
#include <lv2/worker/worker.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <sstream>
#include <string>
#include <vector>

namespace spinout::lv2 {

namespace {

// Limits, all fixed at instantiation so that run() never grows anything.
constexpr std::size_t kMaxMidiPerBlock = 4096;     // MIDI events taken per run(); more are dropped
constexpr std::size_t kMaxPositionsPerBlock = 256; // time:Position objects taken per run()
constexpr std::size_t kMaxPathBytes = 4096;        // a session path in a patch:Set
constexpr int kMaxAudioChannels = 64;              // the session file's limit on audio ports

// State keys of the loader. The path's key is the parameter itself (as in
// lv2-examples' sampler), so that a state file can name just a session file.
constexpr const char* kStateText = "urn:spinout:state#sessionText";
constexpr const char* kStatePicked = "urn:spinout:state#pickedControls";

struct Urids {
    LV2_URID atom_Int, atom_Long, atom_Float, atom_Double;
    LV2_URID atom_Object, atom_Blank, atom_Path, atom_Sequence, atom_String, atom_URID;
    LV2_URID midi_MidiEvent;
    LV2_URID patch_Get, patch_Set, patch_property, patch_value;
    LV2_URID time_Position, time_bar, time_barBeat, time_beat, time_beatUnit, time_beatsPerBar,
        time_beatsPerMinute, time_speed, time_frame;
    LV2_URID loader_session, state_text, state_picked;

    void map(LV2_URID_Map* m) {
        auto u = [&](const char* uri) { return m->map(m->handle, uri); };
        atom_Int = u(LV2_ATOM__Int);
        atom_Long = u(LV2_ATOM__Long);
        atom_Float = u(LV2_ATOM__Float);
        atom_Double = u(LV2_ATOM__Double);
        atom_Object = u(LV2_ATOM__Object);
        atom_Blank = u(LV2_ATOM__Blank);
        atom_Path = u(LV2_ATOM__Path);
        atom_Sequence = u(LV2_ATOM__Sequence);
        atom_String = u(LV2_ATOM__String);
        atom_URID = u(LV2_ATOM__URID);
        midi_MidiEvent = u(LV2_MIDI__MidiEvent);
        patch_Get = u(LV2_PATCH__Get);
        patch_Set = u(LV2_PATCH__Set);
        patch_property = u(LV2_PATCH__property);
        patch_value = u(LV2_PATCH__value);
        time_Position = u(LV2_TIME__Position);
        time_bar = u(LV2_TIME__bar);
        time_barBeat = u(LV2_TIME__barBeat);
        time_beat = u(LV2_TIME__beat);
        time_beatUnit = u(LV2_TIME__beatUnit);
        time_beatsPerBar = u(LV2_TIME__beatsPerBar);
        time_beatsPerMinute = u(LV2_TIME__beatsPerMinute);
        time_speed = u(LV2_TIME__speed);
        time_frame = u(LV2_TIME__frame);
        loader_session = u(kLoaderSessionParam);
        state_text = u(kStateText);
        state_picked = u(kStatePicked);
    }
};

// A session ready to play. `next` links it into the retired list, so that the
// audio thread can retire it without allocating.
struct Engine {
    std::unique_ptr<Processor> processor;
    std::string path;             // the session file it came from ("" if unknown)
    std::uint32_t generation = 0; // the restores counted when its load was asked
    Engine* next = nullptr;
};

// The one owner of a plugin's engines: the playing one, one loaded by the worker
// and not yet taken, and the retired ones. The audio thread swaps and retires
// with atomic exchanges only; engines are freed by collect() (worker) or when the
// owner goes (cleanup), nowhere else.
class Engines {
public:
    Engines() = default;
    Engines(const Engines&) = delete;
    Engines& operator=(const Engines&) = delete;
    ~Engines() {
        retire(current_.exchange(nullptr));
        retire(loaded_.exchange(nullptr));
        collect([](Processor&) {});
    }

    Engine* current() const noexcept { return current_.load(std::memory_order_acquire); }
    bool hasRetired() const noexcept { return retired_.load(std::memory_order_relaxed); }

    // Audio or instantiation: `e` plays from now on; the one it replaces is retired.
    void play(std::unique_ptr<Engine> e) noexcept {
        retire(current_.exchange(e.release(), std::memory_order_acq_rel));
    }
    // Worker: a loaded engine for the audio thread to take (one not yet taken is retired).
    void offer(std::unique_ptr<Engine> e) noexcept {
        retire(loaded_.exchange(e.release(), std::memory_order_acq_rel));
    }
    // Audio: the engine offered, if any.
    std::unique_ptr<Engine> take() noexcept {
        if (loaded_.load(std::memory_order_relaxed) == nullptr) return nullptr;
        return std::unique_ptr<Engine>(loaded_.exchange(nullptr, std::memory_order_acq_rel));
    }
    // Any thread: `e` waits for collect(). Lock-free; never fails.
    void retire(std::unique_ptr<Engine> e) noexcept { retire(e.release()); }
    // Worker or cleanup: frees the retired engines, each after `last` saw it.
    template <typename F> void collect(F&& last) {
        for (Engine* e = retired_.exchange(nullptr, std::memory_order_acquire); e != nullptr;) {
            std::unique_ptr<Engine> owned(e);
            e = e->next;
            if (owned->processor) last(*owned->processor);
        }
    }

private:
    void retire(Engine* e) noexcept {
        if (e == nullptr) return;
        e->next = retired_.load(std::memory_order_relaxed);
        while (!retired_.compare_exchange_weak(e->next, e, std::memory_order_release,
                                               std::memory_order_relaxed)) {
        }
    }

    std::atomic<Engine*> current_{nullptr};
    std::atomic<Engine*> loaded_{nullptr};
    std::atomic<Engine*> retired_{nullptr};
};

// Worker jobs: small POD headers, tagged by type. A load's path follows its header.
enum class Job : std::uint32_t { load, drainLog, collect };
struct JobMessage {
    Job job;
    std::uint32_t generation = 0; // load: the restores counted when it was asked
    std::uint32_t pathBytes = 0;  // load
};

struct Library {
    std::string bundle;
    std::string uri;
    bool loader = false;
    LV2_Descriptor descriptor{};
    LV2_Lib_Descriptor lib{};
};

// The libraries this binary has handed out (one per bundle that loaded it). lilv never
// calls LV2_Lib_Descriptor::cleanup: those still here are freed when the module unloads.
std::mutex librariesMutex;
std::vector<std::unique_ptr<Library>> libraries;

const Library* libraryOf(const LV2_Descriptor* d) {
    std::lock_guard<std::mutex> lock(librariesMutex);
    for (const auto& lib : libraries)
        if (&lib->descriptor == d) return lib.get();
    return nullptr;
}

// The loader's generic controls follow the host only once moved ("pick-up"), so
// that a loaded session starts at its own defaults, as its bundle does.
struct Pickup {
    std::array<float, kLoaderControls> reference{}; // the values when the session came
    std::atomic<std::uint32_t> picked{0};           // bit i: control i follows the host (saved)
    bool capture = true;                            // take the references in the next run()
};
static_assert(kLoaderControls <= 32, "the picked-up controls are a 32-bit mask");

struct Plugin {
    explicit Plugin(const Library& lib) : library(lib) {}
    const Library& library;
    Urids urids{};
    LV2_URID_Map* map = nullptr;
    LV2_Worker_Schedule* schedule = nullptr;
    LV2_Log_Logger logger{};
    LV2_Atom_Forge forge{};
    double sr = 48000;
    Engines engines;
    std::mutex stateMutex;                    // save() reads the playing engine; collect frees
    std::atomic<std::uint32_t> generation{0}; // restores so far: loads asked before one are stale
    // A restored state whose session did not load (refused, or an error): saved back as it
    // came until a later load plays, so that saving the project does not lose it.
    struct Unloaded {
        std::string text, path;
        std::uint32_t picked = 0;
        std::uint32_t generation = 0; // of its restore
    };
    std::optional<Unloaded> unloaded;        // under stateMutex
    std::atomic<bool> logPending{false};     // a drainLog job is queued
    std::atomic<bool> collectPending{false}; // a collect job is queued
    std::atomic<bool> announcePath{false};   // tell the host the session path (patch:Set)
    Pickup pickup;
    PortLayout layout;
    std::vector<float*> audio;
    const LV2_Atom_Sequence* events = nullptr;
    LV2_Atom_Sequence* notify = nullptr;
    float* latency = nullptr;
    std::vector<float*> controls; // the session's ports: inputs and outputs, in file order
    std::vector<MidiMessage> midi;
    std::vector<TimePosition> positions;
};

void logMessages(Plugin& p, Processor& proc) {
    proc.drainMessages(
        [&](MessageLevel level, const char* text) {
            const std::string_view t(text);
            if (t.starts_with("INIT ERROR") || t.starts_with("PERF ERROR"))
                return; // logged in the session's terms below
            if (level == MessageLevel::error)
                lv2_log_error(&p.logger, "spinout: %s\n", text);
            else if (level == MessageLevel::warning)
                lv2_log_warning(&p.logger, "spinout: %s\n", text);
            else if (p.logger.log != nullptr)
                lv2_log_trace(&p.logger, "spinout: %s\n", text);
        },
        // a runtime error, with the template and the session file's line
        [&](const Diagnostic& d) { lv2_log_error(&p.logger, "spinout: %s\n", d.str().c_str()); });
}

std::string readFile(const std::string& path) {
    return readTextFile(path).value_or("");
}

constexpr const char* kNoFolder = "/nonexistent/spinout-a-restored-session-has-no-folder";

// Instantiation or worker: what the user granted this session. A session is untrusted
// unless the user's trust file lists its text (`spinout trust`), or, in a bundle, the
// bundle's grants.toml (`spinout bundle --allow`) was made for this very session.toml.
Grants grantsFor(Plugin& p, const SessionSpec& spec) {
    const auto bundleGrants =
        p.library.loader ? std::string()
                         : (std::filesystem::path(p.library.bundle) / kBundleGrantsFile).string();
    const auto report = recordedGrants(spec, TrustFile::defaultPath(), bundleGrants);
    for (const auto& w : report.warnings)
        lv2_log_warning(&p.logger, "spinout: %s\n", w.c_str());
    for (const auto& n : report.notes)
        lv2_log_note(&p.logger, "spinout: %s: %s\n", spec.path.c_str(), n.c_str());
    Grants grants = Grants::none(spec.dir);
    grants.permissions = report.granted;
    return grants;
}

// Instantiation or worker: builds a session's engine; null (with the errors logged) if it
// fails. The policy check runs first: a session it refuses never reaches Csound.
std::unique_ptr<Engine> build(Plugin& p, const std::string& text, const std::string& path,
                              std::uint32_t generation) {
    const std::string name = path.empty() ? "restored-session.toml" : path;
    try {
        auto spec = parseSessionText(text, name);
        // A session's folder is the one whose file holds its text. A project's state may
        // pair any text with any path (found by attack: a state naming /x.toml made / the
        // folder its code could read): such a session has a folder that does not exist,
        // and reads nothing.
        if (path.empty() || readFile(path) != text) spec.dir = kNoFolder;
        if (p.library.loader) {
            spec.audioInputs = kLoaderInputs;
            spec.audioOutputs = kLoaderOutputs;
            if (spec.ports.size() > static_cast<std::size_t>(kLoaderControls))
                lv2_log_warning(&p.logger,
                                "spinout: %s has %zu ports; the loader maps the first %d\n",
                                name.c_str(), spec.ports.size(), kLoaderControls);
        }
        ProcessorOptions options;
        options.sr = static_cast<int>(p.sr);
        options.grants = grantsFor(p, spec);
        auto e = std::make_unique<Engine>();
        // No warm-up cycle: a loaded session starts as its bundle does, sample for sample.
        e->processor = std::make_unique<Processor>(spec, options);
        for (const auto& w : e->processor->warnings())
            lv2_log_warning(&p.logger, "spinout: %s\n", w.str().c_str());
        e->path = path;
        e->generation = generation;
        logMessages(p, *e->processor);
        return e;
    } catch (const SessionFileError& e) {
        for (const auto& d : e.diagnostics())
            lv2_log_error(&p.logger, "spinout: %s\n", d.str().c_str());
        // refusals of the policy check: nothing of the session ran; say how to grant it
        if (const auto hint = grantHint(e.diagnostics(), name); !hint.empty())
            lv2_log_error(&p.logger, "spinout: %s: not loaded; %s\n", name.c_str(), hint.c_str());
    } catch (const std::exception& e) {
        lv2_log_error(&p.logger, "spinout: %s: %s\n", name.c_str(), e.what());
    }
    return nullptr;
}

// Instantiation thread.
LV2_Handle instantiate(const LV2_Descriptor* descriptor, double rate, const char*,
                       const LV2_Feature* const* features) {
    const Library* library = libraryOf(descriptor);
    if (library == nullptr) return nullptr;
    auto p = std::make_unique<Plugin>(*library);
    p->sr = rate;

    SessionSpec shape;
    std::string text, path;
    if (library->loader) {
        shape.audioInputs = kLoaderInputs;
        shape.audioOutputs = kLoaderOutputs;
        p->layout = PortLayout::of(shape, kLoaderControls, true);
    } else {
        path = (std::filesystem::path(library->bundle) / "session.toml").string();
        text = readFile(path);
        try {
            shape = parseSessionText(text, path);
        } catch (...) {
            return nullptr; // the bundle's Turtle came from this file: it cannot fail here
        }
        p->layout = PortLayout::of(shape, static_cast<int>(shape.ports.size()),
                                   PortLayout::needsEvents(shape));
    }
    // MIDI ports need urid:map; the loader needs the worker to load; a plain effect
    // needs nothing (lv2apply runs it), nor does an effect's time input (it then takes
    // no positions). The Turtle says the same.
    const bool events = p->layout.events >= 0 && !p->layout.timeOnly;
    void *log = nullptr, *map = nullptr, *schedule = nullptr;
    const char* missing = lv2_features_query(features, LV2_LOG__log, &log, false, LV2_URID__map,
                                             &map, events, LV2_WORKER__schedule, &schedule,
                                             library->loader, static_cast<const char*>(nullptr));
    p->map = static_cast<LV2_URID_Map*>(map);
    p->schedule = static_cast<LV2_Worker_Schedule*>(schedule);
    if (p->map != nullptr) {
        p->urids.map(p->map);
        lv2_atom_forge_init(&p->forge, p->map);
    }
    lv2_log_logger_init(&p->logger, p->map, static_cast<LV2_Log_Log*>(log));
    if (missing != nullptr) {
        lv2_log_error(&p->logger, "spinout: %s needs the host feature <%s>\n", library->uri.c_str(),
                      missing);
        return nullptr;
    }
    if (!library->loader)
        if (auto e = build(*p, text, path, 0)) p->engines.play(std::move(e));

    p->audio.assign(static_cast<std::size_t>(p->layout.numIn + p->layout.numOut), nullptr);
    p->controls.assign(static_cast<std::size_t>(p->layout.numControls), nullptr);
    p->midi.reserve(kMaxMidiPerBlock);
    p->positions.reserve(kMaxPositionsPerBlock);
    return p.release();
}

// Audio thread.
void connectPort(LV2_Handle h, uint32_t port, void* data) {
    auto& p = *static_cast<Plugin*>(h);
    const auto& l = p.layout;
    const int i = static_cast<int>(port);
    if (i < l.numIn + l.numOut)
        p.audio[static_cast<std::size_t>(i)] = static_cast<float*>(data);
    else if (l.events >= 0 && i == l.events)
        p.events = static_cast<const LV2_Atom_Sequence*>(data);
    else if (l.notify >= 0 && i == l.notify)
        p.notify = static_cast<LV2_Atom_Sequence*>(data);
    else if (i == l.latency)
        p.latency = static_cast<float*>(data);
    else if (i >= l.controls && i < l.controls + l.numControls)
        p.controls[static_cast<std::size_t>(i - l.controls)] = static_cast<float*>(data);
}

// Audio thread: a patch message for the loader's session parameter. A patch:Set's
// path is scheduled for loading; a patch:Get asks for the current path.
void handlePatch(Plugin& p, const LV2_Atom_Object* obj) {
    const LV2_Atom* property = nullptr;
    const LV2_Atom* value = nullptr;
    lv2_atom_object_get(obj, p.urids.patch_property, &property, p.urids.patch_value, &value, 0);
    const bool aboutSession =
        property != nullptr && property->type == p.urids.atom_URID &&
        reinterpret_cast<const LV2_Atom_URID*>(property)->body == p.urids.loader_session;
    if (obj->body.otype == p.urids.patch_Get) {
        if (property == nullptr || aboutSession) p.announcePath = true; // no property: all
        return;
    }
    if (obj->body.otype != p.urids.patch_Set || !aboutSession || value == nullptr ||
        (value->type != p.urids.atom_Path && value->type != p.urids.atom_String) ||
        value->size == 0 || value->size > kMaxPathBytes)
        return;
    // header and path in one stack buffer (no allocation)
    char buf[sizeof(JobMessage) + kMaxPathBytes];
    const JobMessage msg{Job::load, p.generation.load(), value->size};
    std::memcpy(buf, &msg, sizeof msg);
    std::memcpy(buf + sizeof msg, LV2_ATOM_BODY_CONST(value), value->size);
    p.schedule->schedule_work(p.schedule->handle, static_cast<uint32_t>(sizeof msg + value->size),
                              buf);
}

// Audio thread: a number atom of any of the four numeric types.
bool numberOf(const Urids& u, const LV2_Atom* a, double& out) {
    if (a == nullptr) return false;
    if (a->type == u.atom_Float && a->size >= sizeof(float))
        out = reinterpret_cast<const LV2_Atom_Float*>(a)->body;
    else if (a->type == u.atom_Double && a->size >= sizeof(double))
        out = reinterpret_cast<const LV2_Atom_Double*>(a)->body;
    else if (a->type == u.atom_Int && a->size >= sizeof(int32_t))
        out = reinterpret_cast<const LV2_Atom_Int*>(a)->body;
    else if (a->type == u.atom_Long && a->size >= sizeof(int64_t))
        out = static_cast<double>(reinterpret_cast<const LV2_Atom_Long*>(a)->body);
    else
        return false;
    return true;
}

// Audio thread: a time:Position (eg-metro's reading), with the values it gives.
TimePosition positionOf(const Urids& u, const LV2_Atom_Object* obj, int64_t frame) {
    const LV2_Atom *bar = nullptr, *barBeat = nullptr, *beat = nullptr, *beatUnit = nullptr,
                   *beatsPerBar = nullptr, *bpm = nullptr, *speed = nullptr, *hostFrame = nullptr;
    lv2_atom_object_get(obj, u.time_bar, &bar, u.time_barBeat, &barBeat, u.time_beat, &beat,
                        u.time_beatUnit, &beatUnit, u.time_beatsPerBar, &beatsPerBar,
                        u.time_beatsPerMinute, &bpm, u.time_speed, &speed, u.time_frame, &hostFrame,
                        0);
    TimePosition tp;
    tp.frame = static_cast<std::uint32_t>(std::max<int64_t>(0, frame));
    HostTime& t = tp.time;
    const auto take = [&](const LV2_Atom* a, HostTime::Field f, double& to) {
        if (numberOf(u, a, to)) t.fields |= f;
    };
    take(bar, HostTime::barField, t.bar);
    take(barBeat, HostTime::barBeatField, t.barBeat);
    take(beat, HostTime::beatField, t.beat);
    take(beatUnit, HostTime::beatUnitField, t.beatUnit);
    take(beatsPerBar, HostTime::beatsPerBarField, t.beatsPerBar);
    take(bpm, HostTime::bpmField, t.bpm);
    take(speed, HostTime::speedField, t.speed);
    double f = 0;
    if (numberOf(u, hostFrame, f) && std::isfinite(f)) {
        t.frame = static_cast<std::int64_t>(std::clamp(f, -9.0e18, 9.0e18));
        t.fields |= HostTime::frameField;
    }
    return tp;
}

// Audio thread: the events port's MIDI into p.midi, its time positions into p.positions,
// its patch messages handled.
void readEvents(Plugin& p) {
    p.midi.clear();
    p.positions.clear();
    if (p.events == nullptr || p.map == nullptr) return;
    LV2_ATOM_SEQUENCE_FOREACH(p.events, ev) {
        if (ev->body.type == p.urids.midi_MidiEvent) {
            if (p.midi.size() == p.midi.capacity()) continue; // never grow here
            MidiMessage m;
            m.frame = static_cast<std::uint32_t>(ev->time.frames);
            m.size = static_cast<std::uint8_t>(std::min<uint32_t>(ev->body.size, 3));
            std::memcpy(m.data, LV2_ATOM_BODY_CONST(&ev->body), m.size);
            p.midi.push_back(m);
        } else if (ev->body.type == p.urids.atom_Object || ev->body.type == p.urids.atom_Blank) {
            const auto* obj = reinterpret_cast<const LV2_Atom_Object*>(&ev->body);
            if (obj->body.otype == p.urids.time_Position) {
                if (p.positions.size() < p.positions.capacity()) // never grow here
                    p.positions.push_back(positionOf(p.urids, obj, ev->time.frames));
            } else if (p.library.loader) {
                handlePatch(p, obj);
            }
        }
    }
}

// Audio thread: the notify port's sequence: empty, or a patch:Set of the session path.
void writeNotify(Plugin& p, const Engine* e) {
    if (p.notify == nullptr) return;
    const uint32_t capacity = p.notify->atom.size;
    lv2_atom_forge_set_buffer(&p.forge, reinterpret_cast<uint8_t*>(p.notify), capacity);
    LV2_Atom_Forge_Frame seq;
    if (!lv2_atom_forge_sequence_head(&p.forge, &seq, 0)) return;
    if (p.announcePath.exchange(false) && e != nullptr && !e->path.empty()) {
        LV2_Atom_Forge_Frame obj;
        lv2_atom_forge_frame_time(&p.forge, 0);
        if (lv2_atom_forge_object(&p.forge, &obj, 0, p.urids.patch_Set)) {
            lv2_atom_forge_key(&p.forge, p.urids.patch_property);
            lv2_atom_forge_urid(&p.forge, p.urids.loader_session);
            lv2_atom_forge_key(&p.forge, p.urids.patch_value);
            lv2_atom_forge_path(&p.forge, e->path.c_str(), static_cast<uint32_t>(e->path.size()));
            lv2_atom_forge_pop(&p.forge, &obj);
        }
    }
    lv2_atom_forge_pop(&p.forge, &seq);
}

// Audio thread: a session the worker has loaded starts playing (stale ones retire).
void takeLoaded(Plugin& p) {
    auto e = p.engines.take();
    if (!e) return;
    if (e->generation != p.generation.load()) { // asked before a restore
        p.engines.retire(std::move(e));
        return;
    }
    p.engines.play(std::move(e));
    p.pickup.picked = 0; // a new session: every control waits for the host to move it
    p.pickup.capture = true;
    p.announcePath = true;
}

// Audio thread: the loader's generic controls, each once the host has moved it.
void loaderControls(Plugin& p, Processor& proc) {
    auto& k = p.pickup;
    const std::size_t n = std::min<std::size_t>(p.controls.size(), proc.numPorts());
    if (k.capture) {
        for (std::size_t i = 0; i < p.controls.size(); ++i)
            k.reference[i] = p.controls[i] != nullptr ? *p.controls[i] : 0.0f;
        k.capture = false;
    }
    for (std::size_t i = 0; i < n; ++i) {
        if (p.controls[i] == nullptr) continue;
        const float v = *p.controls[i];
        const std::uint32_t bit = 1u << i;
        if ((k.picked.load(std::memory_order_relaxed) & bit) == 0) {
            if (v == k.reference[i]) continue;
            k.picked.fetch_or(bit, std::memory_order_relaxed);
        }
        // positions 0..1 along each port's range
        proc.setPort(i, portValueFromUnit(proc.spec().ports[i], v));
    }
}

// Audio thread: jobs for the worker, each queued once until it has run.
void scheduleJobs(Plugin& p, Processor* proc) {
    if (p.schedule == nullptr) return;
    auto send = [&](std::atomic<bool>& pending, Job job) {
        if (pending.exchange(true)) return;
        const JobMessage msg{job, 0, 0};
        if (p.schedule->schedule_work(p.schedule->handle, sizeof msg, &msg) != LV2_WORKER_SUCCESS)
            pending = false; // the host's queue is full: again next block
    };
    // Csound's messages reach the host's log from the worker, not from here
    if (proc != nullptr && !proc->engine().messages().empty()) send(p.logPending, Job::drainLog);
    if (p.engines.hasRetired()) send(p.collectPending, Job::collect);
}

// Audio thread: one block, whole.
void runBlock(LV2_Handle h, uint32_t nframes) noexcept {
    auto& p = *static_cast<Plugin*>(h);
    const auto& l = p.layout;
    if (p.library.loader) takeLoaded(p);
    readEvents(p);
    Engine* e = p.engines.current();
    writeNotify(p, e);
    Processor* proc = e != nullptr ? e->processor.get() : nullptr;
    if (p.latency != nullptr) *p.latency = proc ? static_cast<float>(proc->latency()) : 0.0f;
    if (proc == nullptr) { // silence, never garbage
        for (int ch = 0; ch < l.numOut; ++ch)
            if (float* out = p.audio[static_cast<std::size_t>(l.numIn + ch)])
                std::memset(out, 0, nframes * sizeof(float));
        scheduleJobs(p, nullptr);
        return;
    }
    if (p.library.loader)
        loaderControls(p, *proc);
    else
        for (std::size_t i = 0; i < p.controls.size() && i < proc->numPorts(); ++i)
            if (p.controls[i] != nullptr) proc->setPort(i, *p.controls[i]);
    const float* ins[kMaxAudioChannels] = {};
    float* outs[kMaxAudioChannels] = {};
    for (int ch = 0; ch < l.numIn && ch < kMaxAudioChannels; ++ch)
        ins[ch] = p.audio[static_cast<std::size_t>(ch)];
    for (int ch = 0; ch < l.numOut && ch < kMaxAudioChannels; ++ch)
        outs[ch] = p.audio[static_cast<std::size_t>(l.numIn + ch)];
    proc->process(ins, outs, nframes, p.midi, p.positions);
    if (!p.library.loader) // output ports show what the block left in their bus or channel
        for (std::size_t i = 0; i < p.controls.size() && i < proc->numPorts(); ++i)
            if (p.controls[i] != nullptr && proc->spec().ports[i].output)
                *p.controls[i] = static_cast<float>(proc->port(i));
    scheduleJobs(p, proc);
}

// Audio thread. A host may cancel its audio thread: JACK does when a client closes (jalv
// on exit), asynchronously, at any instruction. Unwinding through the noexcept block (or
// Csound inside it) would end the host in std::terminate, so a cancel waits for the block
// to end and takes the thread from here. (Two atomic flag changes: nothing that blocks.)
void run(LV2_Handle h, uint32_t nframes) {
    int cancelState = PTHREAD_CANCEL_ENABLE;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancelState);
    runBlock(h, nframes);
    pthread_setcancelstate(cancelState, nullptr);
}

// Worker thread.
LV2_Worker_Status work(LV2_Handle h, LV2_Worker_Respond_Function, LV2_Worker_Respond_Handle,
                       uint32_t size, const void* data) {
    auto& p = *static_cast<Plugin*>(h);
    if (size < sizeof(JobMessage)) return LV2_WORKER_ERR_UNKNOWN;
    JobMessage msg;
    std::memcpy(&msg, data, sizeof msg);
    switch (msg.job) {
    case Job::load: {
        if (msg.pathBytes > size - sizeof msg) return LV2_WORKER_ERR_UNKNOWN;
        std::string path(static_cast<const char*>(data) + sizeof msg, msg.pathBytes);
        path = path.c_str(); // drop the atom's terminating zero
        const auto text = readFile(path);
        if (text.empty()) {
            lv2_log_error(&p.logger, "spinout: cannot read the session file '%s'\n", path.c_str());
            return LV2_WORKER_SUCCESS;
        }
        // the next run() takes it; a failed build leaves the last good session playing
        if (auto e = build(p, text, path, msg.generation)) p.engines.offer(std::move(e));
        return LV2_WORKER_SUCCESS;
    }
    case Job::drainLog:
        // the playing engine is retired, never freed, while this thread runs
        if (Engine* e = p.engines.current()) logMessages(p, *e->processor);
        p.logPending = false;
        return LV2_WORKER_SUCCESS;
    case Job::collect: {
        // under the lock: save() may be reading the engine that was playing
        std::lock_guard<std::mutex> lock(p.stateMutex);
        p.engines.collect([&](Processor& proc) { logMessages(p, proc); });
        p.collectPending = false;
        return LV2_WORKER_SUCCESS;
    }
    }
    return LV2_WORKER_ERR_UNKNOWN;
}

// Audio thread: nothing comes back from the worker (run() takes what it loaded).
LV2_Worker_Status workResponse(LV2_Handle, uint32_t, const void*) {
    return LV2_WORKER_SUCCESS;
}

struct PathFeatures {
    const LV2_State_Map_Path* map = nullptr;
    const LV2_State_Free_Path* free = nullptr;
    explicit PathFeatures(const LV2_Feature* const* features) {
        void *m = nullptr, *f = nullptr;
        lv2_features_query(features, LV2_STATE__mapPath, &m, false, LV2_STATE__freePath, &f, false,
                           static_cast<const char*>(nullptr));
        map = static_cast<const LV2_State_Map_Path*>(m);
        free = static_cast<const LV2_State_Free_Path*>(f);
    }
    // A path the host returned, freed as the host asks.
    void release(char* path) const {
        if (free != nullptr)
            free->free_path(free->handle, path);
        else
            std::free(path);
    }
};

// State thread (concurrent with audio and worker). The loader saves its session's
// text (so that a project reopens the same after the file moved), the file as an
// atom:Path the host maps, and which controls follow the host. A restored session that did
// not load (untrusted here, say) is saved as it came: granted later, the project plays it.
LV2_State_Status save(LV2_Handle h, LV2_State_Store_Function store, LV2_State_Handle sh, uint32_t,
                      const LV2_Feature* const* features) {
    auto& p = *static_cast<Plugin*>(h);
    const PathFeatures paths(features);
    std::lock_guard<std::mutex> lock(p.stateMutex); // collect frees under it
    const Engine* e = p.engines.current();
    // the state last restored, if no load played since: what the project holds
    const bool keepUnloaded =
        p.unloaded && (e == nullptr || e->generation < p.unloaded->generation);
    if (e == nullptr && !keepUnloaded) return LV2_STATE_SUCCESS;
    const auto& text = keepUnloaded ? p.unloaded->text : e->processor->spec().text;
    const auto& path = keepUnloaded ? p.unloaded->path : e->path;
    store(sh, p.urids.state_text, text.c_str(), text.size() + 1, p.urids.atom_String,
          LV2_STATE_IS_POD | LV2_STATE_IS_PORTABLE);
    if (!path.empty()) {
        char* mapped = paths.map != nullptr
                           ? paths.map->abstract_path(paths.map->handle, path.c_str())
                           : nullptr;
        const char* stored = mapped != nullptr ? mapped : path.c_str();
        store(sh, p.urids.loader_session, stored, std::strlen(stored) + 1, p.urids.atom_Path,
              LV2_STATE_IS_POD | LV2_STATE_IS_PORTABLE);
        if (mapped != nullptr) paths.release(mapped);
    }
    const int32_t picked =
        static_cast<int32_t>(keepUnloaded ? p.unloaded->picked : p.pickup.picked.load());
    store(sh, p.urids.state_picked, &picked, sizeof picked, p.urids.atom_Int,
          LV2_STATE_IS_POD | LV2_STATE_IS_PORTABLE);
    return LV2_STATE_SUCCESS;
}

// Instantiation thread (never concurrent with run): builds and swaps here, worker or not.
LV2_State_Status restore(LV2_Handle h, LV2_State_Retrieve_Function retrieve, LV2_State_Handle sh,
                         uint32_t, const LV2_Feature* const* features) {
    auto& p = *static_cast<Plugin*>(h);
    const PathFeatures paths(features);
    size_t size = 0;
    uint32_t type = 0, flags = 0;
    std::string path;
    const void* value = retrieve(sh, p.urids.loader_session, &size, &type, &flags);
    if (value != nullptr && type == p.urids.atom_Path && size > 0) {
        const auto* stored = static_cast<const char*>(value);
        char* absolute =
            paths.map != nullptr ? paths.map->absolute_path(paths.map->handle, stored) : nullptr;
        path = absolute != nullptr ? absolute : std::string(stored, strnlen(stored, size));
        if (absolute != nullptr) paths.release(absolute);
    }
    std::string text;
    value = retrieve(sh, p.urids.state_text, &size, &type, &flags);
    if (value != nullptr && type == p.urids.atom_String)
        text.assign(static_cast<const char*>(value),
                    strnlen(static_cast<const char*>(value), size));
    else if (!path.empty()) // a state that names only a file (a state.ttl written by hand)
        text = readFile(path);
    if (text.empty()) {
        if (!path.empty())
            lv2_log_error(&p.logger, "spinout: cannot read the session file '%s'\n", path.c_str());
        return path.empty() ? LV2_STATE_SUCCESS : LV2_STATE_ERR_NO_PROPERTY;
    }
    value = retrieve(sh, p.urids.state_picked, &size, &type, &flags);
    const std::uint32_t picked = value != nullptr && type == p.urids.atom_Int && size == 4
                                     ? *static_cast<const std::uint32_t*>(value)
                                     : 0;
    // a load still in the worker must not replace this session
    const std::uint32_t generation = ++p.generation;
    auto e = build(p, text, path, generation);
    {
        std::lock_guard<std::mutex> lock(p.stateMutex);
        if (e)
            p.unloaded.reset();
        else
            p.unloaded = Plugin::Unloaded{text, path, picked, generation};
    }
    if (!e) return LV2_STATE_ERR_UNKNOWN;
    p.engines.play(std::move(e));
    p.pickup.picked = picked; // the controls the project had moved follow the host at once
    p.pickup.capture = true;
    p.announcePath = true;
    return LV2_STATE_SUCCESS;
}

// Discovery (no instance): the worker interface, for every plugin.
const void* extensionData(const char* uri) {
    static const LV2_Worker_Interface worker = {work, workResponse, nullptr};
    if (!std::strcmp(uri, LV2_WORKER__interface)) return &worker;
    return nullptr;
}

// Discovery: the loader alone has state, the session it plays.
const void* loaderExtensionData(const char* uri) {
    static const LV2_State_Interface state = {save, restore};
    if (!std::strcmp(uri, LV2_STATE__interface)) return &state;
    return extensionData(uri);
}

// Instantiation thread.
void cleanup(LV2_Handle h) {
    std::unique_ptr<Plugin> p(static_cast<Plugin*>(h)); // its Engines free every engine
}

// Discovery.
const LV2_Descriptor* getPlugin(LV2_Lib_Handle handle, uint32_t index) {
    auto* lib = static_cast<Library*>(handle);
    return index == 0 && !lib->uri.empty() ? &lib->descriptor : nullptr;
}

// Discovery: the host is done with a bundle's library.
void cleanupLibrary(LV2_Lib_Handle handle) {
    std::lock_guard<std::mutex> lock(librariesMutex);
    libraries.erase(std::remove_if(libraries.begin(), libraries.end(),
                                   [&](const auto& lib) { return lib.get() == handle; }),
                    libraries.end());
}

// Discovery: the session's URI, read from the bundle's session file (no Csound involved).
std::string sessionUri(const std::string& bundle) {
    const auto path = (std::filesystem::path(bundle) / "session.toml").string();
    try {
        return parseSessionText(readFile(path), path).uri;
    } catch (...) {
        return {};
    }
}

} // namespace

} // namespace spinout::lv2

// Discovery thread: one library per bundle; the loader's bundle has no session.toml.
extern "C" LV2_SYMBOL_EXPORT const LV2_Lib_Descriptor*
lv2_lib_descriptor(const char* bundle_path, const LV2_Feature* const*) {
    using namespace spinout::lv2;
    auto lib = std::make_unique<Library>();
    lib->bundle = bundle_path;
    lib->loader = !std::filesystem::exists(std::filesystem::path(bundle_path) / "session.toml");
    lib->uri = lib->loader ? spinout::kLoaderUri : sessionUri(bundle_path);
    lib->descriptor = {lib->uri.c_str(),
                       instantiate,
                       connectPort,
                       nullptr,
                       run,
                       nullptr,
                       cleanup,
                       lib->loader ? loaderExtensionData : extensionData};
    lib->lib = {lib.get(), sizeof(LV2_Lib_Descriptor), cleanupLibrary, getPlugin};
    std::lock_guard<std::mutex> lock(librariesMutex);
    libraries.push_back(std::move(lib));
    return &libraries.back()->lib;
}
