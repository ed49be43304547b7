// The LV2 adapter: one binary for every session. It finds its session from the
// bundle it was loaded from (lv2_lib_descriptor), translates ports, atoms and
// URIDs into Processor calls, and does everything that allocates in the worker.
// Real-time code: run() and what it calls; see the rules in design.md.
#include "spinout/processor.hpp"
#include "spinout/session_file.hpp"
#include "spinout/ttl.hpp"

#include <lv2/atom/atom.h>
#include <lv2/atom/forge.h>
#include <lv2/atom/util.h>
#include <lv2/buf-size/buf-size.h>
#include <lv2/core/lv2.h>
#include <lv2/log/log.h>
#include <lv2/log/logger.h>
#include <lv2/midi/midi.h>
#include <lv2/options/options.h>
#include <lv2/patch/patch.h>
#include <lv2/state/state.h>
#include <lv2/urid/urid.h>
#include <lv2/worker/worker.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

namespace spinout::lv2 {

namespace {

constexpr const char* kSessionParam = "urn:spinout:loader#session";
constexpr const char* kStateText = "urn:spinout:state#sessionText";
constexpr const char* kStatePath = "urn:spinout:state#sessionPath";

struct Urids {
    LV2_URID atom_Path, atom_String, atom_Sequence, atom_Object, atom_URID, atom_Blank;
    LV2_URID midi_MidiEvent, patch_Set, patch_property, patch_value;
    LV2_URID spinout_session, state_text, state_path;

    void map(LV2_URID_Map* m) {
        auto u = [&](const char* uri) { return m->map(m->handle, uri); };
        atom_Path = u(LV2_ATOM__Path);
        atom_String = u(LV2_ATOM__String);
        atom_Sequence = u(LV2_ATOM__Sequence);
        atom_Object = u(LV2_ATOM__Object);
        atom_Blank = u(LV2_ATOM__Blank);
        atom_URID = u(LV2_ATOM__URID);
        midi_MidiEvent = u(LV2_MIDI__MidiEvent);
        patch_Set = u(LV2_PATCH__Set);
        patch_property = u(LV2_PATCH__property);
        patch_value = u(LV2_PATCH__value);
        spinout_session = u(kSessionParam);
        state_text = u(kStateText);
        state_path = u(kStatePath);
    }
};

// Worker messages: small POD structs tagged by type.
enum class Job : std::uint32_t { load, drainLog, free };
struct JobMessage {
    Job job;
    Processor* processor;     // drainLog, free
    std::uint32_t pathLength; // load: the path follows the struct
    std::uint32_t generation; // load: the state it was asked in (see restore)
};
struct LoadedMessage {
    Processor* processor;
    std::uint32_t generation;
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
struct Libraries : std::vector<Library*> {
    ~Libraries() {
        for (auto* lib : *this)
            delete lib;
    }
} libraries;

const Library* libraryOf(const LV2_Descriptor* d) {
    std::lock_guard<std::mutex> lock(librariesMutex);
    for (auto* lib : libraries)
        if (&lib->descriptor == d) return lib;
    return nullptr;
}

struct Plugin {
    const Library* library = nullptr;
    Urids urids{};
    LV2_URID_Map* map = nullptr;
    LV2_Worker_Schedule* schedule = nullptr;
    LV2_Log_Logger logger{};
    double sr = 48000;
    // The playing session (null: silent). Swapped by work_response and restore;
    // read by save() from the host's thread, so atomic, and freed only under stateMutex.
    std::atomic<Processor*> processor{nullptr};
    std::mutex stateMutex;
    std::vector<Processor*> retired;          // replaced by restore; freed by the worker or cleanup
    std::atomic<std::uint32_t> generation{0}; // restore makes loads asked before it stale
    PortLayout layout;
    std::vector<float*> audio;
    const LV2_Atom_Sequence* events = nullptr;
    LV2_Atom_Sequence* notify = nullptr;
    float* latency = nullptr;
    std::vector<const float*> controls;
    std::vector<MidiMessage> midi;
    bool logPending = false;
};

void logMessages(Plugin& p, Processor& proc) {
    proc.engine().messages().drain([&](MessageLevel level, const char* text) {
        if (level == MessageLevel::error)
            lv2_log_error(&p.logger, "spinout: %s\n", text);
        else if (level == MessageLevel::warning)
            lv2_log_warning(&p.logger, "spinout: %s\n", text);
        else if (p.logger.log != nullptr)
            lv2_log_trace(&p.logger, "spinout: %s\n", text);
    });
}

// Builds a session's processor: off the audio thread (instantiate, worker, restore).
std::unique_ptr<Processor> build(Plugin& p, const std::string& text, const std::string& path) {
    try {
        auto spec = parseSessionText(text, path);
        if (p.library->loader) {
            spec.audioInputs = kLoaderInputs;
            spec.audioOutputs = kLoaderOutputs;
            if (spec.ports.size() > static_cast<std::size_t>(kLoaderControls))
                lv2_log_warning(&p.logger,
                                "spinout: %s has %zu ports; the loader maps the first %d\n",
                                path.c_str(), spec.ports.size(), kLoaderControls);
        }
        ProcessorOptions options;
        options.sr = static_cast<int>(p.sr);
        auto proc = std::make_unique<Processor>(spec, options);
        logMessages(p, *proc);
        return proc;
    } catch (const SessionFileError& e) {
        for (const auto& d : e.diagnostics())
            lv2_log_error(&p.logger, "spinout: %s\n", d.str().c_str());
    } catch (const std::exception& e) {
        lv2_log_error(&p.logger, "spinout: %s: %s\n", path.c_str(), e.what());
    }
    return nullptr;
}

std::string readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {};
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

LV2_Handle instantiate(const LV2_Descriptor* descriptor, double rate, const char*,
                       const LV2_Feature* const* features) {
    auto p = std::make_unique<Plugin>();
    p->library = libraryOf(descriptor);
    if (p->library == nullptr) return nullptr;
    p->sr = rate;
    LV2_Log_Log* log = nullptr;
    for (int i = 0; features != nullptr && features[i] != nullptr; ++i) {
        if (!std::strcmp(features[i]->URI, LV2_URID__map))
            p->map = static_cast<LV2_URID_Map*>(features[i]->data);
        else if (!std::strcmp(features[i]->URI, LV2_WORKER__schedule))
            p->schedule = static_cast<LV2_Worker_Schedule*>(features[i]->data);
        else if (!std::strcmp(features[i]->URI, LV2_LOG__log))
            log = static_cast<LV2_Log_Log*>(features[i]->data);
    }
    // Without urid:map (lv2apply) there are no atoms to read: audio and controls still work.
    if (p->map != nullptr) p->urids.map(p->map);
    lv2_log_logger_init(&p->logger, p->map, log);

    SessionSpec shape;
    if (p->library->loader) {
        shape.audioInputs = kLoaderInputs;
        shape.audioOutputs = kLoaderOutputs;
        p->layout = PortLayout::of(shape, kLoaderControls, true);
    } else {
        const auto path = (std::filesystem::path(p->library->bundle) / "session.toml").string();
        const auto text = readFile(path);
        p->processor = build(*p, text, path).release();
        try {
            shape = parseSessionText(text, path);
        } catch (...) {
            return nullptr; // the bundle's Turtle came from this file: it cannot fail here
        }
        p->layout = PortLayout::of(shape, static_cast<int>(shape.ports.size()),
                                   PortLayout::needsEvents(shape));
    }
    p->audio.assign(static_cast<std::size_t>(p->layout.numIn + p->layout.numOut), nullptr);
    p->controls.assign(static_cast<std::size_t>(p->layout.numControls), nullptr);
    p->midi.reserve(4096);
    p->retired.reserve(64);
    return p.release();
}

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
    else if (i >= l.controls && i < l.total)
        p.controls[static_cast<std::size_t>(i - l.controls)] = static_cast<const float*>(data);
}

// A patch:Set of the session parameter: the path to load (loader only).
const LV2_Atom* sessionPathOf(const Plugin& p, const LV2_Atom_Object* obj) {
    if (obj->body.otype != p.urids.patch_Set) return nullptr;
    const LV2_Atom* property = nullptr;
    const LV2_Atom* value = nullptr;
    lv2_atom_object_get(obj, p.urids.patch_property, &property, p.urids.patch_value, &value, 0);
    if (property == nullptr || property->type != p.urids.atom_URID ||
        reinterpret_cast<const LV2_Atom_URID*>(property)->body != p.urids.spinout_session)
        return nullptr;
    if (value == nullptr ||
        (value->type != p.urids.atom_Path && value->type != p.urids.atom_String))
        return nullptr;
    return value;
}

void run(LV2_Handle h, uint32_t nframes) {
    auto& p = *static_cast<Plugin*>(h);
    const auto& l = p.layout;
    p.midi.clear();
    if (p.events != nullptr && p.map != nullptr) {
        LV2_ATOM_SEQUENCE_FOREACH(p.events, ev) {
            if (ev->body.type == p.urids.midi_MidiEvent) {
                if (p.midi.size() == p.midi.capacity()) continue; // never grow here
                MidiMessage m;
                m.frame = static_cast<std::uint32_t>(ev->time.frames);
                m.size = static_cast<std::uint8_t>(std::min<uint32_t>(ev->body.size, 3));
                std::memcpy(m.data, LV2_ATOM_BODY_CONST(&ev->body), m.size);
                p.midi.push_back(m);
            } else if (p.library->loader && p.schedule != nullptr &&
                       (ev->body.type == p.urids.atom_Object ||
                        ev->body.type == p.urids.atom_Blank)) {
                const auto* value =
                    sessionPathOf(p, reinterpret_cast<const LV2_Atom_Object*>(&ev->body));
                if (value == nullptr || value->size > 4000) continue;
                // a load job: header and path in one stack buffer (no allocation)
                char buf[sizeof(JobMessage) + 4096];
                JobMessage msg{Job::load, nullptr, value->size, p.generation.load()};
                std::memcpy(buf, &msg, sizeof msg);
                std::memcpy(buf + sizeof msg, LV2_ATOM_BODY_CONST(value), value->size);
                p.schedule->schedule_work(p.schedule->handle,
                                          static_cast<uint32_t>(sizeof msg + value->size), buf);
            }
        }
    }
    if (p.notify != nullptr) { // nothing to say: an empty sequence
        const uint32_t capacity = p.notify->atom.size;
        if (capacity >= sizeof(LV2_Atom_Sequence_Body)) {
            p.notify->atom.type = p.urids.atom_Sequence;
            p.notify->atom.size = sizeof(LV2_Atom_Sequence_Body);
            p.notify->body.unit = 0;
            p.notify->body.pad = 0;
        }
    }
    if (p.latency != nullptr)
        *p.latency = p.processor ? static_cast<float>(p.processor.load()->latency()) : 0.0f;
    if (!p.processor) { // silence, never garbage
        for (int ch = 0; ch < l.numOut; ++ch)
            if (float* out = p.audio[static_cast<std::size_t>(l.numIn + ch)])
                std::memset(out, 0, nframes * sizeof(float));
        return;
    }
    auto& proc = *p.processor.load();
    const auto& spec = proc.spec();
    for (std::size_t i = 0; i < p.controls.size() && i < proc.numPorts(); ++i) {
        if (p.controls[i] == nullptr) continue;
        const double v = *p.controls[i];
        // the loader's generic controls are positions 0..1 along each port's range
        proc.setPort(i, p.library->loader ? portValueFromUnit(spec.ports[i], v) : v);
    }
    const float* ins[64] = {};
    float* outs[64] = {};
    for (int ch = 0; ch < l.numIn && ch < 64; ++ch)
        ins[ch] = p.audio[static_cast<std::size_t>(ch)];
    for (int ch = 0; ch < l.numOut && ch < 64; ++ch)
        outs[ch] = p.audio[static_cast<std::size_t>(l.numIn + ch)];
    proc.process(ins, outs, nframes, p.midi);
    // Csound's messages reach the host's log from the worker, not from here
    if (p.schedule != nullptr && !p.logPending && !proc.engine().messages().empty()) {
        JobMessage msg{Job::drainLog, &proc, 0, 0};
        if (p.schedule->schedule_work(p.schedule->handle, sizeof msg, &msg) == LV2_WORKER_SUCCESS)
            p.logPending = true;
    }
}

LV2_Worker_Status work(LV2_Handle h, LV2_Worker_Respond_Function respond,
                       LV2_Worker_Respond_Handle rh, uint32_t size, const void* data) {
    auto& p = *static_cast<Plugin*>(h);
    if (size < sizeof(JobMessage)) return LV2_WORKER_ERR_UNKNOWN;
    JobMessage msg;
    std::memcpy(&msg, data, sizeof msg);
    switch (msg.job) {
    case Job::load: {
        std::string path(static_cast<const char*>(data) + sizeof msg, msg.pathLength);
        path = path.c_str(); // drop the atom's terminating zero
        auto text = readFile(path);
        if (text.empty()) {
            lv2_log_error(&p.logger, "spinout: cannot read the session file '%s'\n", path.c_str());
            return LV2_WORKER_SUCCESS;
        }
        auto proc = build(p, text, path);
        if (!proc) return LV2_WORKER_SUCCESS; // the last good session keeps playing
        proc->warmUp();                       // its first cycle here, not in run()
        LoadedMessage loaded{proc.get(), msg.generation};
        if (respond(rh, sizeof loaded, &loaded) == LV2_WORKER_SUCCESS) proc.release();
        return LV2_WORKER_SUCCESS;
    }
    case Job::drainLog:
        logMessages(p, *msg.processor);
        respond(rh, 0, nullptr);
        return LV2_WORKER_SUCCESS;
    case Job::free: {
        // under the lock: save() may be reading the text of the one being freed
        std::lock_guard<std::mutex> lock(p.stateMutex);
        delete msg.processor;
        for (auto* r : p.retired)
            delete r;
        p.retired.clear();
        return LV2_WORKER_SUCCESS;
    }
    }
    return LV2_WORKER_ERR_UNKNOWN;
}

LV2_Worker_Status workResponse(LV2_Handle h, uint32_t size, const void* data) {
    auto& p = *static_cast<Plugin*>(h);
    if (size == 0) { // the log was drained
        p.logPending = false;
        return LV2_WORKER_SUCCESS;
    }
    LoadedMessage loaded;
    std::memcpy(&loaded, data, sizeof loaded);
    Processor* old = loaded.processor; // a load asked before a restore: dropped
    if (loaded.generation == p.generation.load()) {
        // swap in the new engine; the old one is freed by the worker again
        old = p.processor.exchange(loaded.processor);
        p.logPending = false;
    }
    if (old != nullptr) {
        JobMessage msg{Job::free, old, 0, 0};
        if (p.schedule->schedule_work(p.schedule->handle, sizeof msg, &msg) != LV2_WORKER_SUCCESS) {
            // no room in the host's queue: keep it for cleanup rather than free it here
            std::unique_lock<std::mutex> lock(p.stateMutex, std::try_to_lock);
            if (lock.owns_lock() && p.retired.size() < p.retired.capacity())
                p.retired.push_back(old);
        }
    }
    return LV2_WORKER_SUCCESS;
}

LV2_State_Status save(LV2_Handle h, LV2_State_Store_Function store, LV2_State_Handle sh, uint32_t,
                      const LV2_Feature* const*) {
    auto& p = *static_cast<Plugin*>(h);
    if (!p.library->loader) return LV2_STATE_SUCCESS;
    std::lock_guard<std::mutex> lock(p.stateMutex); // the worker frees under it
    const Processor* proc = p.processor.load();
    if (proc == nullptr) return LV2_STATE_SUCCESS;
    // the text itself, so that a project reopens the same even after the file moved
    const auto& text = proc->spec().text;
    const auto& path = proc->spec().path;
    store(sh, p.urids.state_text, text.c_str(), text.size() + 1, p.urids.atom_String,
          LV2_STATE_IS_POD | LV2_STATE_IS_PORTABLE);
    store(sh, p.urids.state_path, path.c_str(), path.size() + 1, p.urids.atom_String,
          LV2_STATE_IS_POD | LV2_STATE_IS_PORTABLE);
    return LV2_STATE_SUCCESS;
}

LV2_State_Status restore(LV2_Handle h, LV2_State_Retrieve_Function retrieve, LV2_State_Handle sh,
                         uint32_t, const LV2_Feature* const*) {
    auto& p = *static_cast<Plugin*>(h);
    if (!p.library->loader) return LV2_STATE_SUCCESS;
    size_t size = 0;
    uint32_t type = 0, flags = 0;
    const void* text = retrieve(sh, p.urids.state_text, &size, &type, &flags);
    if (text == nullptr || type != p.urids.atom_String) return LV2_STATE_SUCCESS;
    const void* path = retrieve(sh, p.urids.state_path, &size, &type, &flags);
    const std::string pathText =
        path != nullptr ? static_cast<const char*>(path) : "restored-session.toml";
    // restore is never concurrent with run(): build and swap here, worker or not
    auto proc = build(p, static_cast<const char*>(text), pathText);
    if (!proc) return LV2_STATE_ERR_UNKNOWN;
    proc->warmUp();
    ++p.generation; // a load still in the worker must not replace this session
    std::lock_guard<std::mutex> lock(p.stateMutex);
    // the worker may still hold a log job for the old one: it is freed later, in order
    if (Processor* old = p.processor.exchange(proc.release())) p.retired.push_back(old);
    return LV2_STATE_SUCCESS;
}

const void* extensionData(const char* uri) {
    static const LV2_Worker_Interface worker = {work, workResponse, nullptr};
    static const LV2_State_Interface state = {save, restore};
    if (!std::strcmp(uri, LV2_WORKER__interface)) return &worker;
    if (!std::strcmp(uri, LV2_STATE__interface)) return &state;
    return nullptr;
}

void cleanup(LV2_Handle h) {
    auto* p = static_cast<Plugin*>(h);
    delete p->processor.load();
    for (auto* r : p->retired)
        delete r;
    delete p;
}

const LV2_Descriptor* getPlugin(LV2_Lib_Handle handle, uint32_t index) {
    auto* lib = static_cast<Library*>(handle);
    return index == 0 && !lib->uri.empty() ? &lib->descriptor : nullptr;
}

void cleanupLibrary(LV2_Lib_Handle handle) {
    auto* lib = static_cast<Library*>(handle);
    {
        std::lock_guard<std::mutex> lock(librariesMutex);
        libraries.erase(std::remove(libraries.begin(), libraries.end(), lib), libraries.end());
    }
    delete lib;
}

// The session's URI, read from the bundle's session file (no Csound involved).
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

extern "C" LV2_SYMBOL_EXPORT const LV2_Lib_Descriptor*
lv2_lib_descriptor(const char* bundle_path, const LV2_Feature* const*) {
    using namespace spinout::lv2;
    auto* lib = new Library;
    lib->bundle = bundle_path;
    lib->loader = !std::filesystem::exists(std::filesystem::path(bundle_path) / "session.toml");
    lib->uri = lib->loader ? spinout::kLoaderUri : sessionUri(bundle_path);
    lib->descriptor = {lib->uri.c_str(), instantiate, connectPort,  nullptr, run,
                       nullptr,          cleanup,     extensionData};
    lib->lib = {lib, sizeof(LV2_Lib_Descriptor), cleanupLibrary, getPlugin};
    std::lock_guard<std::mutex> lock(librariesMutex);
    libraries.push_back(lib);
    return &lib->lib;
}
