// The built bundles, loaded through lilv as a host loads them.
#include "render.hpp"

#include "spinout/midi_file.hpp"
#include "spinout/ports.hpp"
#include "spinout/session_file.hpp"
#include "spinout/sound_file.hpp"
#include "spinout/ttl.hpp"

#include "../common/analysis.hpp"
#include "lilv_host.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <lilv/lilv.h>
#include <lv2/atom/atom.h>
#include <lv2/atom/util.h>
#include <lv2/log/log.h>
#include <lv2/midi/midi.h>
#include <lv2/patch/patch.h>
#include <lv2/presets/presets.h>
#include <lv2/state/state.h>
#include <lv2/urid/urid.h>
#include <lv2/worker/worker.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <pthread.h>
#include <random>
#include <thread>

static std::atomic<bool> g_counting{false};
static std::atomic<long> g_allocations{0};

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SPINOUT_ASAN 1
#endif
#endif
#ifdef SPINOUT_ASAN
// Counting allocations under AddressSanitizer (scripts/sanitize): its allocator stands
// in front of libc's, for the plugin and Csound too, and calls this hook for each.
#include <sanitizer/allocator_interface.h>
static void countAllocation(const volatile void*, size_t) {
    if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
}
static void ignoreFree(const volatile void*) {} // the runtime wants both hooks
[[maybe_unused]] static const int g_hooked =
    __sanitizer_install_malloc_and_free_hooks(countAllocation, ignoreFree);
#else
// Counting allocations: this executable's malloc family stands in front of libc's,
// for the plugin and Csound too.
extern "C" void* __libc_malloc(size_t);
extern "C" void* __libc_calloc(size_t, size_t);
extern "C" void* __libc_realloc(void*, size_t);
extern "C" void* __libc_memalign(size_t, size_t);
extern "C" void __libc_free(void*);
extern "C" void* malloc(size_t n) {
    if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
    return __libc_malloc(n);
}
extern "C" void* calloc(size_t a, size_t b) {
    if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
    return __libc_calloc(a, b);
}
extern "C" void* realloc(void* p, size_t n) {
    if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
    return __libc_realloc(p, n);
}
extern "C" void free(void* p) {
    __libc_free(p);
}
extern "C" int posix_memalign(void** out, size_t align, size_t n) {
    if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
    *out = __libc_memalign(align, n);
    return *out != nullptr ? 0 : 12;
}
#endif

using namespace spinout;
namespace fs = std::filesystem;
namespace t = spinout::test;

namespace {

const fs::path kRoot = SPINOUT_SOURCE_DIR;
const fs::path kBuild = SPINOUT_BUILD_DIR;

struct Host;
int logVprintf(LV2_Log_Handle h, LV2_URID type, const char* fmt, va_list ap);
int logPrintf(LV2_Log_Handle h, LV2_URID type, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const int r = logVprintf(h, type, fmt, ap);
    va_end(ap);
    return r;
}

// URIDs, a synchronous worker, an atom buffer: the parts of a host a plugin needs.
struct Host {
    std::map<std::string, LV2_URID> ids;
    std::vector<std::string> uris;
    LV2_URID_Map map{this, [](LV2_URID_Map_Handle h, const char* uri) -> LV2_URID {
                         auto* host = static_cast<Host*>(h);
                         auto [it, added] = host->ids.emplace(uri, host->ids.size() + 1);
                         if (added) host->uris.push_back(uri);
                         return it->second;
                     }};
    LV2_URID_Unmap unmap{this, [](LV2_URID_Unmap_Handle h, LV2_URID id) -> const char* {
                             auto* host = static_cast<Host*>(h);
                             return id >= 1 && id <= host->uris.size() ? host->uris[id - 1].c_str()
                                                                       : nullptr;
                         }};
    // the worker runs jobs after run() returns, in order (jalv's non-threaded mode)
    std::deque<std::vector<char>> jobs;
    std::deque<std::vector<char>> responses;
    const LV2_Worker_Interface* worker = nullptr;
    LilvInstance* instance = nullptr;
    LV2_Worker_Schedule schedule{this,
                                 [](LV2_Worker_Schedule_Handle h, uint32_t size, const void* data) {
                                     auto* host = static_cast<Host*>(h);
                                     // a preallocated queue would be a real host's; here only
                                     // the plugin's own allocations are counted
                                     const bool counting = g_counting.exchange(false);
                                     host->jobs.emplace_back(static_cast<const char*>(data),
                                                             static_cast<const char*>(data) + size);
                                     g_counting = counting;
                                     return LV2_WORKER_SUCCESS;
                                 }};
    std::vector<std::string> errors;
    std::vector<std::string> warnings;
    LV2_Log_Log log{this, logPrintf, logVprintf};
    LV2_Feature mapF{LV2_URID__map, &map};
    LV2_Feature unmapF{LV2_URID__unmap, &unmap};
    LV2_Feature scheduleF{LV2_WORKER__schedule, &schedule};
    LV2_Feature logF{LV2_LOG__log, &log};
    const LV2_Feature* features[5] = {&mapF, &unmapF, &scheduleF, &logF, nullptr};

    void runWorker() {
        while (!jobs.empty()) {
            auto job = std::move(jobs.front());
            jobs.pop_front();
            worker->work(
                lilv_instance_get_handle(instance),
                [](LV2_Worker_Respond_Handle h, uint32_t size, const void* data) {
                    static_cast<Host*>(h)->responses.emplace_back(
                        static_cast<const char*>(data), static_cast<const char*>(data) + size);
                    return LV2_WORKER_SUCCESS;
                },
                this, static_cast<uint32_t>(job.size()), job.data());
        }
        while (!responses.empty()) {
            auto r = std::move(responses.front());
            responses.pop_front();
            worker->work_response(lilv_instance_get_handle(instance),
                                  static_cast<uint32_t>(r.size()), r.data());
        }
        if (!jobs.empty()) runWorker();
    }
};

// An atom sequence of MIDI events and objects, written into a fixed buffer.
struct Sequence {
    alignas(8) std::vector<char> buf = std::vector<char>(65536);
    LV2_Atom_Sequence* seq() { return reinterpret_cast<LV2_Atom_Sequence*>(buf.data()); }
    void clear(LV2_URID sequenceType) {
        seq()->atom.type = sequenceType;
        seq()->atom.size = sizeof(LV2_Atom_Sequence_Body);
        seq()->body.unit = 0;
        seq()->body.pad = 0;
    }
    void add(int64_t frame, LV2_URID type, const void* body, uint32_t size) {
        auto* end = reinterpret_cast<char*>(seq()) + sizeof(LV2_Atom) + seq()->atom.size;
        auto* ev = reinterpret_cast<LV2_Atom_Event*>(end);
        ev->time.frames = frame;
        ev->body.type = type;
        ev->body.size = size;
        std::memcpy(ev + 1, body, size);
        seq()->atom.size += static_cast<uint32_t>(lv2_atom_pad_size(sizeof(LV2_Atom_Event) + size));
    }
};

struct World : spinout::test::World {
    World() : spinout::test::World((kBuild / "lv2").string()) {}
};

int logVprintf(LV2_Log_Handle h, LV2_URID type, const char* fmt, va_list ap) {
    auto* host = static_cast<Host*>(h);
    char buf[2048];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    if (type == host->map.map(host, LV2_LOG__Error)) host->errors.push_back(buf);
    if (type == host->map.map(host, LV2_LOG__Warning)) host->warnings.push_back(buf);
    return 0;
}

World& world() {
    static World w;
    return w;
}

// A plugin instance with its port buffers, run block by block.
struct Instance {
    Host host;
    const LilvPlugin* plugin;
    LilvInstance* instance = nullptr;
    uint32_t nIn = 0, nOut = 0;
    std::vector<std::vector<float>> in, out;
    std::vector<float> controls;
    std::map<std::string, uint32_t> controlIndex;
    float latency = 0;
    Sequence events, notify;
    int eventsPort = -1, notifyPort = -1;
    LV2_URID midiEvent, sequenceType;

    Instance(const std::string& uri, double sr = 48000) : plugin(world().plugin(uri)) {
        if (plugin == nullptr) throw std::runtime_error("no plugin " + uri);
        instance = lilv_plugin_instantiate(plugin, sr, host.features);
        if (instance == nullptr) throw std::runtime_error("cannot instantiate " + uri);
        host.instance = instance;
        host.worker = static_cast<const LV2_Worker_Interface*>(
            lilv_instance_get_extension_data(instance, LV2_WORKER__interface));
        midiEvent = host.map.map(&host, LV2_MIDI__MidiEvent);
        sequenceType = host.map.map(&host, LV2_ATOM__Sequence);
        auto* w = world().world;
        LilvNode* audio = lilv_new_uri(w, LV2_CORE__AudioPort);
        LilvNode* input = lilv_new_uri(w, LV2_CORE__InputPort);
        LilvNode* control = lilv_new_uri(w, LV2_CORE__ControlPort);
        LilvNode* atom = lilv_new_uri(w, LV2_ATOM__AtomPort);
        const uint32_t n = lilv_plugin_get_num_ports(plugin);
        controls.assign(n, 0.0f);
        std::vector<float> defaults(n);
        lilv_plugin_get_port_ranges_float(plugin, nullptr, nullptr, defaults.data());
        for (uint32_t i = 0; i < n; ++i) {
            const LilvPort* port = lilv_plugin_get_port_by_index(plugin, i);
            const bool isIn = lilv_port_is_a(plugin, port, input);
            if (lilv_port_is_a(plugin, port, audio)) {
                auto& v = isIn ? in : out;
                v.emplace_back(8192, 0.0f);
                lilv_instance_connect_port(instance, i, v.back().data());
                isIn ? ++nIn : ++nOut;
            } else if (lilv_port_is_a(plugin, port, control)) {
                if (isIn) {
                    controls[i] = defaults[i];
                    controlIndex[lilv_node_as_string(lilv_port_get_symbol(plugin, port))] = i;
                    lilv_instance_connect_port(instance, i, &controls[i]);
                } else {
                    lilv_instance_connect_port(instance, i, &latency);
                }
            } else if (lilv_port_is_a(plugin, port, atom)) {
                if (isIn) {
                    eventsPort = static_cast<int>(i);
                    events.clear(sequenceType);
                    lilv_instance_connect_port(instance, i, events.seq());
                } else {
                    notifyPort = static_cast<int>(i);
                    lilv_instance_connect_port(instance, i, notify.seq());
                }
            }
        }
        lilv_node_free(audio);
        lilv_node_free(input);
        lilv_node_free(control);
        lilv_node_free(atom);
        lilv_instance_activate(instance);
    }
    ~Instance() {
        lilv_instance_deactivate(instance);
        lilv_instance_free(instance);
    }
    void set(const std::string& symbol, float value) {
        controls.at(controlIndex.at(symbol)) = value;
    }
    // One block: returns the frames of channel ch appended to `sink` (all channels interleaved).
    void run(uint32_t n, std::vector<float>* sink) {
        notify.seq()->atom.size = static_cast<uint32_t>(notify.buf.size() - sizeof(LV2_Atom));
        lilv_instance_run(instance, n);
        if (sink != nullptr)
            for (uint32_t i = 0; i < n; ++i)
                for (auto& o : out)
                    sink->push_back(o[i]);
        events.clear(sequenceType);
    }
};

std::vector<std::string> sessions() {
    return {"polysynth", "fmbells", "stereodelay", "lfofilter"};
}
bool isInstrument(const std::string& s) {
    return s == "polysynth" || s == "fmbells";
}

fs::path inputFile() {
    const auto path = fs::temp_directory_path() / "spinout_lv2_input.wav";
    if (!fs::exists(path)) {
        SoundFileWriter w(path.string(), 48000, 2);
        std::vector<double> buf(2 * 72000, 0.0);
        std::mt19937 rng(3);
        std::uniform_real_distribution<double> noise(-0.2, 0.2);
        for (int i = 0; i < 48000; ++i) {
            const double v =
                0.3 * std::sin(2 * M_PI * 330 * i / 48000.0) + noise(rng) * (i < 2400 ? 1 : 0);
            buf[static_cast<std::size_t>(2 * i)] = v;
            buf[static_cast<std::size_t>(2 * i + 1)] = -v;
        }
        w.write(buf.data(), 72000);
        w.commit();
    }
    return path;
}

std::vector<float> play(Instance& inst, const std::string& name,
                        const std::vector<uint32_t>& blocks, int64_t frames,
                        const std::function<void(int64_t, Instance&)>& beforeBlock = {});

// Plays a session's bundle as a host would: its MIDI file or the input, in blocks.
std::vector<float> playPlugin(const std::string& name, const std::vector<uint32_t>& blocks,
                              int64_t frames, const std::string& preset = "") {
    Instance inst("urn:spinout:" + name);
    if (!preset.empty()) {
        auto* w = world().world;
        LilvNode* uri =
            lilv_new_uri(w, fmt::format("urn:spinout:{}#preset-{}", name, preset).c_str());
        lilv_world_load_resource(w, uri);
        LilvState* state = lilv_state_new_from_world(w, &inst.host.map, uri);
        EXPECT_NE(state, nullptr) << preset;
        lilv_state_restore(
            state, inst.instance,
            [](const char* symbol, void* data, const void* value, uint32_t, uint32_t) {
                static_cast<Instance*>(data)->set(symbol, *static_cast<const float*>(value));
            },
            &inst, 0, nullptr);
        lilv_state_free(state);
        lilv_node_free(uri);
    }
    return play(inst, name, blocks, frames);
}

// Feeds a session's MIDI file or the input to `inst` in blocks; `beforeBlock` may change
// the instance at a block's first frame.
std::vector<float> play(Instance& inst, const std::string& name,
                        const std::vector<uint32_t>& blocks, int64_t frames,
                        const std::function<void(int64_t, Instance&)>& beforeBlock) {
    std::vector<MidiEvent> midi;
    if (isInstrument(name))
        midi = readMidiFile((kRoot / "presets" / (name + ".mid")).string()).events;
    Audio input;
    if (!isInstrument(name)) input = readSoundFile(inputFile().string());
    // a session with host time hears the transport start, as `spinout render` plays it
    const bool hostTime =
        parseSessionFile((kRoot / "presets" / (name + ".toml")).string()).hostTime;
    std::vector<float> out;
    std::size_t mi = 0, bi = 0;
    for (int64_t pos = 0; pos < frames;) {
        const auto n =
            static_cast<uint32_t>(std::min<int64_t>(blocks[bi++ % blocks.size()], frames - pos));
        if (beforeBlock) beforeBlock(pos, inst);
        if (pos == 0 && hostTime) {
            alignas(8) uint8_t buf[512];
            const auto* position = t::forgePosition(&inst.host.map, {}, buf, sizeof buf);
            inst.events.add(0, position->type, position + 1, position->size);
        }
        for (; mi < midi.size(); ++mi) {
            const auto f = static_cast<int64_t>(std::llround(midi[mi].time * 48000));
            if (f >= pos + n) break;
            inst.events.add(std::max<int64_t>(0, f - pos), inst.midiEvent, midi[mi].data,
                            midi[mi].size);
        }
        for (uint32_t ch = 0; ch < inst.nIn; ++ch)
            for (uint32_t i = 0; i < n; ++i) {
                const auto f = pos + i;
                inst.in[ch][i] =
                    f < input.frames()
                        ? static_cast<float>(
                              input.samples[static_cast<std::size_t>(f * input.nchnls + ch)])
                        : 0.0f;
            }
        inst.run(n, &out);
        pos += n;
    }
    return out;
}

std::vector<float> renderReference(const std::string& name, int64_t frames,
                                   const std::string& preset = "") {
    RenderJob job;
    job.session = (kRoot / "presets" / (name + ".toml")).string();
    if (isInstrument(name))
        job.midi = (kRoot / "presets" / (name + ".mid")).string();
    else
        job.input = inputFile().string();
    job.preset = preset;
    job.duration = static_cast<double>(frames) / 48000;
    job.tail = 0;
    job.keepSamples = true;
    return render(job).samples;
}

} // namespace

TEST(Lv2, PluginOutputEqualsSpinoutRenderAtEveryBlockSize) {
    const int64_t frames = 96000;
    for (const auto& name : sessions()) {
        const auto reference = renderReference(name, frames);
        ASSERT_EQ(reference.size(), static_cast<std::size_t>(frames * 2));
        EXPECT_GT(t::peak(std::vector<double>(reference.begin(), reference.end())), 0.01) << name;
        for (const auto& blocks :
             std::vector<std::vector<uint32_t>>{{1}, {64}, {1000}, {4096}, {17, 256, 3, 1024}}) {
            const auto plugin = playPlugin(name, blocks, frames + 64);
            // the plugin reports 64 frames of latency: its output is the render, 64 frames late
            ASSERT_EQ(plugin.size(), static_cast<std::size_t>((frames + 64) * 2));
            const std::vector<float> shifted(plugin.begin() + 128, plugin.end());
            EXPECT_EQ(shifted, reference) << name << ", blocks starting " << blocks.front();
        }
    }
}

TEST(Lv2, EveryPresetLoadsAndMatchesTheRenderedPreset) {
    const int64_t frames = 48000;
    for (const auto& name : sessions()) {
        auto* w = world().world;
        const LilvPlugin* plugin = world().plugin("urn:spinout:" + name);
        ASSERT_NE(plugin, nullptr);
        LilvNode* presetClass = lilv_new_uri(w, LV2_PRESETS__Preset);
        LilvNodes* presets = lilv_plugin_get_related(plugin, presetClass);
        EXPECT_GE(lilv_nodes_size(presets), 2u) << name;
        LILV_FOREACH(nodes, i, presets) {
            const std::string uri = lilv_node_as_uri(lilv_nodes_get(presets, i));
            const auto preset = uri.substr(uri.find("#preset-") + 8);
            const auto ours = playPlugin(name, {512}, frames + 64, preset);
            const auto reference = renderReference(name, frames, preset);
            EXPECT_EQ(std::vector<float>(ours.begin() + 128, ours.end()), reference)
                << name << " " << preset;
        }
        lilv_nodes_free(presets);
        lilv_node_free(presetClass);
    }
}

TEST(Lv2, NoAllocationInRunWithANoteStormAndMovingControls) {
    Instance inst("urn:spinout:polysynth");
    const uint32_t block = 256;
    std::mt19937 rng(11);
    int note = 0;
    auto storm = [&](int blocks, bool count) {
        for (int b = 0; b < blocks; ++b) {
            // 200 notes a second: about one note on and one note off per 256-frame block
            for (uint32_t f = 0; f < block; f += 240) {
                const uint8_t on[3] = {0x90, static_cast<uint8_t>(36 + note % 60), 100};
                const uint8_t off[3] = {0x80, static_cast<uint8_t>(36 + (note + 40) % 60), 0};
                inst.events.add(f, inst.midiEvent, on, 3);
                inst.events.add(f, inst.midiEvent, off, 3);
                ++note;
            }
            inst.set("cutoff", static_cast<float>(200 + rng() % 8000)); // every block
            inst.set("mix", static_cast<float>((rng() % 100) / 100.0));
            g_counting = count;
            inst.run(block, nullptr);
            g_counting = false;
            inst.host.runWorker();
        }
    };
    // the counter sees the plugin's and Csound's allocations: instantiating counts
    g_allocations = 0;
    g_counting = true;
    { Instance probe("urn:spinout:fmbells"); }
    g_counting = false;
    ASSERT_GT(g_allocations.load(), 100) << "malloc interposition does not reach the plugin";
    storm(800, false); // warm-up: four seconds
    g_allocations = 0;
    storm(2000, true); // ten seconds, counted
    EXPECT_EQ(g_allocations.load(), 0) << "heap allocations inside run()";
}

// JACK cancels a client's audio thread when the client closes (jalv does on exit),
// asynchronously: at any instruction, often inside run(). Unwinding through the plugin's
// noexcept block ended the host (std::terminate, jalv exit 134 one time in ten). The block
// now ends first and the thread goes from run(); the host lives on and the plugin plays.
TEST(Lv2, AHostCancellingItsAudioThreadMidBlockLivesOn) {
    Instance inst("urn:spinout:polysynth");
    struct Shared {
        Instance* inst;
        std::atomic<long> blocks{0};
    } shared{&inst};
    auto audioThread = [](void* arg) -> void* {
        auto& sh = *static_cast<Shared*>(arg);
        pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, nullptr);
        for (;;) {
            sh.inst->notify.seq()->atom.size =
                static_cast<uint32_t>(sh.inst->notify.buf.size() - sizeof(LV2_Atom));
            lilv_instance_run(sh.inst->instance, 4096);
            sh.blocks.fetch_add(1);
        }
    };
    for (int round = 0; round < 20; ++round) {
        for (const uint8_t note : {48, 52, 55, 60, 64}) {
            const uint8_t on[3] = {0x90, note, 100};
            inst.events.add(0, inst.midiEvent, on, 3);
        }
        shared.blocks = 0;
        pthread_t thread;
        ASSERT_EQ(pthread_create(&thread, nullptr, audioThread, &shared), 0);
        while (shared.blocks.load() < 2)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        std::this_thread::sleep_for(std::chrono::microseconds(100 + 137 * round));
        pthread_cancel(thread);
        // (glibc 2.36 leaves the result null for a cancel acted on once re-enabled)
        ASSERT_EQ(pthread_join(thread, nullptr), 0);
        inst.events.clear(inst.sequenceType);
    }
    std::vector<float> out;
    const uint8_t on[3] = {0x90, 57, 100};
    inst.events.add(0, inst.midiEvent, on, 3);
    for (int b = 0; b < 20; ++b)
        inst.run(512, &out);
    EXPECT_GT(t::peak(std::vector<double>(out.begin(), out.end())), 0.01);
}

TEST(Lv2, SixteenInstancesWorkIndependently) {
    std::vector<std::unique_ptr<Instance>> all;
    for (int i = 0; i < 16; ++i)
        all.push_back(
            std::make_unique<Instance>(i % 2 ? "urn:spinout:fmbells" : "urn:spinout:polysynth"));
    std::vector<std::vector<float>> outs(16);
    for (int b = 0; b < 100; ++b)
        for (int i = 0; i < 16; ++i) {
            if (b == 0) {
                const uint8_t on[3] = {0x90, static_cast<uint8_t>(48 + i), 100};
                all[static_cast<std::size_t>(i)]->events.add(
                    0, all[static_cast<std::size_t>(i)]->midiEvent, on, 3);
            }
            all[static_cast<std::size_t>(i)]->run(512, &outs[static_cast<std::size_t>(i)]);
        }
    for (int i = 0; i < 16; ++i) {
        // each plays its own note: alone, the same instance type gives the same samples
        Instance solo(i % 2 ? "urn:spinout:fmbells" : "urn:spinout:polysynth");
        std::vector<float> out;
        const uint8_t on[3] = {0x90, static_cast<uint8_t>(48 + i), 100};
        solo.events.add(0, solo.midiEvent, on, 3);
        for (int b = 0; b < 100; ++b)
            solo.run(512, &out);
        EXPECT_EQ(out, outs[static_cast<std::size_t>(i)]) << "instance " << i;
        EXPECT_GT(t::peak(std::vector<double>(out.begin(), out.end())), 0.01);
    }
}

// Sends the loader a patch:Set of its session file and runs one block (not the worker).
void setPathNoWork(Instance& inst, const std::string& path) {
    auto& h = inst.host;
    std::vector<char> body(256 + path.size(), 0);
    auto* obj = reinterpret_cast<LV2_Atom_Object_Body*>(body.data());
    obj->otype = h.map.map(&h, LV2_PATCH__Set);
    auto* prop = reinterpret_cast<LV2_Atom_Property_Body*>(obj + 1);
    prop->key = h.map.map(&h, LV2_PATCH__property);
    prop->value.type = h.map.map(&h, LV2_ATOM__URID);
    prop->value.size = sizeof(LV2_URID);
    *reinterpret_cast<LV2_URID*>(prop + 1) = h.map.map(&h, "urn:spinout:loader#session");
    auto* val = reinterpret_cast<LV2_Atom_Property_Body*>(reinterpret_cast<char*>(prop + 1) + 8);
    val->key = h.map.map(&h, LV2_PATCH__value);
    val->value.type = h.map.map(&h, LV2_ATOM__Path);
    val->value.size = static_cast<uint32_t>(path.size() + 1);
    std::memcpy(val + 1, path.c_str(), path.size() + 1);
    const auto size =
        static_cast<uint32_t>(reinterpret_cast<char*>(val + 1) + path.size() + 1 - body.data());
    inst.events.add(0, h.map.map(&h, LV2_ATOM__Object), body.data(), size);
    inst.run(64, nullptr);
}

TEST(Lv2, LoaderLoadsASessionReloadsAndKeepsTheLastGoodOne) {
    Instance inst(spinout::kLoaderUri);
    std::vector<float> out;
    inst.run(512, &out);
    EXPECT_EQ(t::peak(std::vector<double>(out.begin(), out.end())), 0); // no session yet: silence
    auto setPath = [&](const std::string& path) {
        setPathNoWork(inst, path);
        inst.host.runWorker();
    };
    setPath((kRoot / "presets" / "polysynth.toml").string());
    const uint8_t on[3] = {0x90, 60, 110};
    inst.events.add(0, inst.midiEvent, on, 3);
    out.clear();
    for (int b = 0; b < 40; ++b)
        inst.run(512, &out);
    EXPECT_GT(t::peak(std::vector<double>(out.begin(), out.end())), 0.001)
        << "the loaded synth plays";
    // a broken session: an error in the log, the synth keeps playing
    inst.host.errors.clear();
    setPath((kRoot / "tests/fixtures/bad/csound_syntax.toml").string());
    EXPECT_FALSE(inst.host.errors.empty());
    out.clear();
    for (int b = 0; b < 10; ++b)
        inst.run(512, &out);
    EXPECT_GT(t::peak(std::vector<double>(out.begin(), out.end())), 0.001)
        << "the last good session";

    // state: the session text travels with the project
    LilvState* state = lilv_state_new_from_instance(
        inst.plugin, inst.instance, &inst.host.map, nullptr, nullptr, nullptr, nullptr,
        [](const char*, void*, uint32_t*, uint32_t*) -> const void* { return nullptr; }, nullptr, 0,
        nullptr);
    ASSERT_NE(state, nullptr);
    Instance restored(spinout::kLoaderUri);
    lilv_state_restore(state, restored.instance, nullptr, nullptr, 0, nullptr);

    // restoring while a load waits in the worker: the load, asked before, must not win
    setPathNoWork(inst, (kRoot / "presets" / "fmbells.toml").string());
    lilv_state_restore(state, inst.instance, nullptr, nullptr, 0, nullptr);
    inst.host.runWorker(); // the stale load and any log job for the replaced engine
    for (int k = 0; k < 4; ++k)
        inst.run(512, nullptr);
    LilvState* after = lilv_state_new_from_instance(
        inst.plugin, inst.instance, &inst.host.map, nullptr, nullptr, nullptr, nullptr,
        [](const char*, void*, uint32_t*, uint32_t*) -> const void* { return nullptr; }, nullptr, 0,
        nullptr);
    char* turtle = lilv_state_to_string(world().world, &inst.host.map, &inst.host.unmap, after,
                                        "urn:spinout:test-state", nullptr);
    EXPECT_NE(std::string(turtle).find("Spinout Poly Synth"), std::string::npos)
        << "the restored session, not the stale load";
    EXPECT_EQ(std::string(turtle).find("Spinout FM Bells"), std::string::npos);
    lilv_free(turtle);
    lilv_state_free(after);
    lilv_state_free(state);
    std::vector<float> a, b;
    Instance fresh(spinout::kLoaderUri);
    for (Instance* i : {&restored}) {
        i->events.add(0, i->midiEvent, on, 3);
        for (int k = 0; k < 20; ++k)
            i->run(512, &a);
    }
    EXPECT_GT(t::peak(std::vector<double>(a.begin(), a.end())), 0.001)
        << "restored without the file";
    // and a fresh loader, given nothing, stays silent
    for (int k = 0; k < 20; ++k)
        fresh.run(512, &b);
    EXPECT_EQ(t::peak(std::vector<double>(b.begin(), b.end())), 0);
}

// One bundle's plugin, in a lilv world of its own.
struct OneBundle {
    LilvWorld* world = lilv_world_new();
    LilvNode* bundle;
    LilvNode* uri;
    const LilvPlugin* plugin;
    OneBundle(const fs::path& dir, const std::string& pluginUri)
        : bundle(lilv_new_file_uri(world, nullptr, (dir.string() + "/").c_str())),
          uri(lilv_new_uri(world, pluginUri.c_str())) {
        lilv_world_load_bundle(world, bundle);
        plugin = lilv_plugins_get_by_uri(lilv_world_get_all_plugins(world), uri);
    }
    ~OneBundle() {
        lilv_node_free(uri);
        lilv_node_free(bundle);
        lilv_world_free(world);
    }
    OneBundle(const OneBundle&) = delete;
    OneBundle& operator=(const OneBundle&) = delete;
};

// The warning check and render give for voice init code the plugin's warm-up runs and a
// render does not (Cli.CheckAndRenderWarnOfInitCodeThePluginsWarmUpWouldRun), logged
// through log:log when the plugin loads the session.
TEST(Lv2, ThePluginLogsInitCodeItsWarmUpRunsAndARenderDoesNot) {
    const auto dir = fs::temp_directory_path() / "spinout_lv2_warm_up_warning";
    fs::remove_all(dir);
    fs::create_directories(dir);
    const auto cmd =
        fmt::format("'{}' bundle '{}' -o '{}' > /dev/null", (kBuild / "spinout").string(),
                    (kRoot / "tests/fixtures/warm_up/round_robin.toml").string(), dir.string());
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    const OneBundle one(dir / "spinout-round_robin.lv2", "urn:spinout:test-round-robin");
    ASSERT_NE(one.plugin, nullptr);
    Host host;
    LilvInstance* inst = lilv_plugin_instantiate(one.plugin, 48000, host.features);
    ASSERT_NE(inst, nullptr);
    EXPECT_TRUE(host.errors.empty()) << host.errors.front();
    ASSERT_EQ(host.warnings.size(), 1u);
    EXPECT_NE(host.warnings[0].find("session.toml:15:1: instr 'voice' writes the global giNext "
                                    "at init: the plugin's warm-up of the voices does that too"),
              std::string::npos)
        << host.warnings[0];
    lilv_instance_free(inst);
}

TEST(Lv2, ASessionWithACsoundErrorLeavesTheHostRunning) {
    // a bundle whose session was broken after it was made (spinout bundle refuses code
    // Csound cannot parse): it loads, logs the error and stays silent
    const auto dir = fs::temp_directory_path() / "spinout_lv2_broken";
    fs::remove_all(dir);
    fs::create_directories(dir / "src");
    fs::copy_file(kRoot / "tests/fixtures/bad/good.toml", dir / "src" / "csound_syntax.toml");
    const auto cmd =
        fmt::format("'{}' bundle '{}' -o '{}' > /dev/null", (kBuild / "spinout").string(),
                    (dir / "src" / "csound_syntax.toml").string(), dir.string());
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    fs::copy_file(kRoot / "tests/fixtures/bad/csound_syntax.toml",
                  dir / "spinout-csound_syntax.lv2" / "session.toml",
                  fs::copy_options::overwrite_existing);
    const OneBundle one(dir / "spinout-csound_syntax.lv2", "urn:spinout:test-bad");
    ASSERT_NE(one.plugin, nullptr);
    Host host;
    LilvInstance* inst = lilv_plugin_instantiate(one.plugin, 48000, host.features);
    ASSERT_NE(inst, nullptr);
    bool named = false;
    for (const auto& e : host.errors)
        named = named || e.find("csound_syntax") != std::string::npos ||
                e.find("session.toml:15") != std::string::npos;
    EXPECT_TRUE(named) << (host.errors.empty() ? "no error logged" : host.errors.front());
    std::vector<float> l(256, 1.0f), r(256, 1.0f), in(256, 0.0f);
    float latency = 0;
    alignas(8) char seq[64] = {};
    auto* s = reinterpret_cast<LV2_Atom_Sequence*>(seq);
    s->atom.type = host.map.map(&host, LV2_ATOM__Sequence);
    s->atom.size = sizeof(LV2_Atom_Sequence_Body);
    const uint32_t n = lilv_plugin_get_num_ports(one.plugin);
    for (uint32_t i = 0; i < n; ++i)
        lilv_instance_connect_port(inst, i, nullptr);
    lilv_instance_connect_port(inst, 0, l.data());
    lilv_instance_connect_port(inst, 1, r.data());
    lilv_instance_connect_port(inst, 2, seq);
    lilv_instance_connect_port(inst, 4, &latency);
    lilv_instance_activate(inst);
    lilv_instance_run(inst, 256);
    EXPECT_EQ(*std::max_element(l.begin(), l.end()), 0.0f); // silence, not garbage
    lilv_instance_deactivate(inst);
    lilv_instance_free(inst);
}

TEST(Lv2, EveryBundlePassesLv2Validate) {
    for (const auto& entry : fs::directory_iterator(kBuild / "lv2")) {
        const auto cmd =
            fmt::format("lv2_validate {}/*.ttl > /dev/null 2>&1", entry.path().string());
        EXPECT_EQ(std::system(cmd.c_str()), 0) << entry.path();
    }
}

TEST(Lv2, Lv2applyRunsEachEffectBundle) {
#ifdef SPINOUT_ASAN
    GTEST_SKIP() << "lv2apply, not instrumented, cannot load a sanitized plugin";
#endif
    for (const auto& name : {"stereodelay", "lfofilter"}) {
        const auto out = fs::temp_directory_path() / fmt::format("spinout_lv2apply_{}.wav", name);
        const auto cmd =
            fmt::format("LV2_PATH='{}' lv2apply -i '{}' -o '{}' urn:spinout:{} > /dev/null 2>&1",
                        (kBuild / "lv2").string(), inputFile().string(), out.string(), name);
        ASSERT_EQ(std::system(cmd.c_str()), 0) << name;
        const auto a = readSoundFile(out.string());
        const auto reference = renderReference(name, a.frames() - 64);
        // lv2apply does not compensate latency: its file is the render, 64 frames late
        double maxDiff = 0;
        for (std::size_t i = 0; i < reference.size(); ++i)
            maxDiff = std::max(maxDiff, std::fabs(a.samples[i + 128] - reference[i]));
        EXPECT_LE(maxDiff, 1e-6) << name;
    }
}

// What a host reads from the generated Turtle: ranges, units, scale properties, classes.
TEST(Lv2, PortsCarryTheSessionsRangesUnitsAndProperties) {
    auto* w = world().world;
    const LilvPlugin* plugin = world().plugin("urn:spinout:lfofilter");
    ASSERT_NE(plugin, nullptr);
    auto port = [&](const char* symbol) {
        LilvNode* s = lilv_new_string(w, symbol);
        const LilvPort* p = lilv_plugin_get_port_by_symbol(plugin, s);
        lilv_node_free(s);
        return p;
    };
    auto has = [&](const LilvPort* p, const char* property) {
        LilvNode* n = lilv_new_uri(w, property);
        const bool yes = lilv_port_has_property(plugin, p, n);
        lilv_node_free(n);
        return yes;
    };
    const LilvPort* shape = port("shape");
    ASSERT_NE(shape, nullptr);
    EXPECT_TRUE(has(shape, LV2_CORE__enumeration));
    EXPECT_TRUE(has(shape, LV2_CORE__integer));
    LilvScalePoints* points = lilv_port_get_scale_points(plugin, shape);
    ASSERT_NE(points, nullptr);
    EXPECT_EQ(lilv_scale_points_size(points), 5u);
    std::vector<std::string> labels;
    LILV_FOREACH(scale_points, i, points)
    labels.emplace_back(
        lilv_node_as_string(lilv_scale_point_get_label(lilv_scale_points_get(points, i))));
    EXPECT_NE(std::find(labels.begin(), labels.end(), "sample and hold"), labels.end());
    lilv_scale_points_free(points);

    const LilvPort* cutoff = port("cutoff");
    ASSERT_NE(cutoff, nullptr);
    EXPECT_TRUE(has(cutoff, "http://lv2plug.in/ns/ext/port-props#logarithmic"));
    LilvNode *def = nullptr, *min = nullptr, *max = nullptr;
    lilv_port_get_range(plugin, cutoff, &def, &min, &max);
    ASSERT_TRUE(def && min && max);
    EXPECT_GT(lilv_node_as_float(max), lilv_node_as_float(min));
    EXPECT_GE(lilv_node_as_float(def), lilv_node_as_float(min));
    for (LilvNode* n : {def, min, max})
        lilv_node_free(n);
    LilvNode* unitPred = lilv_new_uri(w, "http://lv2plug.in/ns/extensions/units#unit");
    LilvNodes* units = lilv_port_get_value(plugin, cutoff, unitPred);
    ASSERT_EQ(lilv_nodes_size(units), 1u);
    EXPECT_STREQ(lilv_node_as_uri(lilv_nodes_get_first(units)),
                 "http://lv2plug.in/ns/extensions/units#hz");
    lilv_nodes_free(units);
    lilv_node_free(unitPred);

    // the latency port, and an instrument's class and MIDI input
    EXPECT_TRUE(lilv_plugin_has_latency(plugin));
    const LilvPlugin* synth = world().plugin("urn:spinout:polysynth");
    LilvNode* name = lilv_plugin_get_name(synth);
    EXPECT_STREQ(lilv_node_as_string(name), "Spinout Poly Synth");
    lilv_node_free(name);
    LilvNode* atomPort = lilv_new_uri(w, LV2_ATOM__AtomPort);
    LilvNode* input = lilv_new_uri(w, LV2_CORE__InputPort);
    EXPECT_EQ(lilv_plugin_get_num_ports_of_class(synth, atomPort, input, nullptr), 1u);
    // an effect with host time: one atom input, for time positions only, after its ports
    EXPECT_EQ(lilv_plugin_get_num_ports_of_class(plugin, atomPort, input, nullptr), 1u);
    LilvNode* output = lilv_new_uri(w, LV2_CORE__OutputPort);
    EXPECT_EQ(lilv_plugin_get_num_ports_of_class(plugin, atomPort, output, nullptr), 0u);
    lilv_node_free(output);
    lilv_node_free(atomPort);
    lilv_node_free(input);
}

// ---- The loader as a host uses it, and what a host shows of each plugin ----

namespace {

// Loads `session` into a loader instance, its worker run after the block (jalv's
// non-threaded mode); the session plays from the next block.
void loadSession(Instance& inst, const fs::path& session) {
    setPathNoWork(inst, session.string());
    inst.host.runWorker();
}

// The patch:Set of the session path on the loader's notify port after its last block, or "".
std::string announcedPath(Instance& inst) {
    auto& h = inst.host;
    const LV2_URID object = h.map.map(&h, LV2_ATOM__Object);
    std::string path;
    LV2_ATOM_SEQUENCE_FOREACH(inst.notify.seq(), ev) {
        if (ev->body.type != object) continue;
        const auto* obj = reinterpret_cast<const LV2_Atom_Object*>(&ev->body);
        if (obj->body.otype != h.map.map(&h, LV2_PATCH__Set)) continue;
        const LV2_Atom* property = nullptr;
        const LV2_Atom* value = nullptr;
        lv2_atom_object_get(obj, h.map.map(&h, LV2_PATCH__property), &property,
                            h.map.map(&h, LV2_PATCH__value), &value, 0);
        if (property == nullptr || value == nullptr ||
            reinterpret_cast<const LV2_Atom_URID*>(property)->body !=
                h.map.map(&h, spinout::kLoaderSessionParam) ||
            value->type != h.map.map(&h, LV2_ATOM__Path))
            continue;
        path = static_cast<const char*>(LV2_ATOM_BODY_CONST(value));
    }
    return path;
}

// A world that also sees LV2's own bundles (the class labels live in lv2core).
struct HostWorld {
    LilvWorld* w = lilv_world_new();
    explicit HostWorld(const std::string& lv2Path) {
        LilvNode* path = lilv_new_string(w, lv2Path.c_str());
        lilv_world_set_option(w, LILV_OPTION_LV2_PATH, path);
        lilv_node_free(path);
        lilv_world_load_all(w);
    }
    ~HostWorld() { lilv_world_free(w); }
    const LilvPlugin* plugin(const std::string& uri) const {
        LilvNode* n = lilv_new_uri(w, uri.c_str());
        const LilvPlugin* p = lilv_plugins_get_by_uri(lilv_world_get_all_plugins(w), n);
        lilv_node_free(n);
        return p;
    }
    std::string className(const LilvPlugin* p) const {
        return lilv_node_as_string(lilv_plugin_class_get_label(lilv_plugin_get_class(p)));
    }
    int number(const LilvPlugin* p, const char* predicate) const {
        LilvNode* pred = lilv_new_uri(w, predicate);
        LilvNode* v = lilv_world_get(w, lilv_plugin_get_uri(p), pred, nullptr);
        const int n = v != nullptr ? lilv_node_as_int(v) : -1;
        lilv_node_free(v);
        lilv_node_free(pred);
        return n;
    }
    // name, email, homepage, license: "" when absent
    std::string author(const LilvPlugin* p, const char* what) const {
        LilvNode* n = nullptr;
        if (!std::strcmp(what, "name")) n = lilv_plugin_get_author_name(p);
        if (!std::strcmp(what, "email")) n = lilv_plugin_get_author_email(p);
        if (!std::strcmp(what, "homepage")) n = lilv_plugin_get_author_homepage(p);
        if (!std::strcmp(what, "license")) {
            LilvNode* project = lilv_plugin_get_project(p);
            LilvNode* pred = lilv_new_uri(w, "http://usefulinc.com/ns/doap#license");
            if (project != nullptr) n = lilv_world_get(w, project, pred, nullptr);
            lilv_node_free(pred);
            lilv_node_free(project);
        }
        std::string s = n != nullptr ? lilv_node_as_string(n) : "";
        lilv_node_free(n);
        return s;
    }
};

// Makes bundles of session texts with the spinout command, in a fresh folder.
fs::path bundleSessions(const std::string& name,
                        const std::vector<std::pair<std::string, std::string>>& sessions) {
    const auto dir = fs::temp_directory_path() / ("spinout_lv2_" + name);
    fs::remove_all(dir);
    fs::create_directories(dir / "src");
    std::string args;
    for (const auto& [file, text] : sessions) {
        std::ofstream(dir / "src" / file) << text;
        args += " '" + (dir / "src" / file).string() + "'";
    }
    const auto cmd = fmt::format("LV2_PATH='{}' '{}' bundle{} -o '{}'", (dir / "none").string(),
                                 (kBuild / "spinout").string(), args, (dir / "lv2").string());
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return dir / "lv2";
}

const char* kPassBody = R"(
[instr.pass]
body = '''
a1, a2 ins
outs a1, a2
'''

[[run]]
instr = "pass"
)";

} // namespace

TEST(Lv2, TheLoaderAtDefaultControlsPlaysEachSessionAsItsBundle) {
    const int64_t frames = 96000;
    for (const auto& name : sessions())
        for (const auto& blocks : std::vector<std::vector<uint32_t>>{{512}, {17, 256, 3, 1024}}) {
            const auto bundle = playPlugin(name, blocks, frames);
            Instance loader(spinout::kLoaderUri);
            loadSession(loader, kRoot / "presets" / (name + ".toml"));
            const auto loaded = play(loader, name, blocks, frames);
            EXPECT_GT(t::peak(std::vector<double>(loaded.begin(), loaded.end())), 0.01) << name;
            EXPECT_EQ(loaded, bundle) << name << ", blocks starting " << blocks.front();
        }
}

TEST(Lv2, LoaderControlsFollowTheHostOnlyOnceMoved) {
    const int64_t frames = 48000, at = 12000;
    const auto session = kRoot / "presets" / "polysynth.toml";
    const auto spec = parseSessionFile(session.string());
    const float moved = 0.1f;
    // the bundle with its first port set, at `at`, to where control 1 at 0.1 puts it
    const auto movedTo = static_cast<float>(portValueFromUnit(spec.ports[0], moved));
    Instance bundle("urn:spinout:polysynth");
    const auto expected = play(bundle, "polysynth", {500}, frames, [&](int64_t pos, Instance& i) {
        if (pos == at) i.set(spec.ports[0].symbol, movedTo);
    });
    Instance loader(spinout::kLoaderUri);
    loadSession(loader, session);
    const auto got = play(loader, "polysynth", {500}, frames, [&](int64_t pos, Instance& i) {
        if (pos == at) i.set("control_1", moved);
    });
    EXPECT_EQ(got, expected);
    const auto untouched = playPlugin("polysynth", {500}, frames);
    EXPECT_NE(got, untouched) << "moving control 1 changes the sound";

    // the project's state keeps which controls were moved: restored, control 1 applies at once
    LilvState* state = lilv_state_new_from_instance(
        loader.plugin, loader.instance, &loader.host.map, nullptr, nullptr, nullptr, nullptr,
        [](const char*, void*, uint32_t*, uint32_t*) -> const void* { return nullptr; }, nullptr, 0,
        nullptr);
    ASSERT_NE(state, nullptr);
    Instance restored(spinout::kLoaderUri);
    restored.set("control_1", moved);
    lilv_state_restore(state, restored.instance, nullptr, nullptr, 0, nullptr);
    lilv_state_free(state);
    Instance bundleMoved("urn:spinout:polysynth");
    bundleMoved.set(spec.ports[0].symbol, movedTo);
    EXPECT_EQ(play(restored, "polysynth", {500}, frames),
              play(bundleMoved, "polysynth", {500}, frames));

    // a new load: every control waits again (control 1 still at 0.1, the session at its default)
    loadSession(loader, session);
    EXPECT_EQ(play(loader, "polysynth", {500}, frames), untouched);
}

TEST(Lv2, LoaderSessionFileIsAWritablePathThatAnswersPatchGet) {
    // what Ardour (and jalv.gtk3) need for a file chooser
    auto* w = world().world;
    const LilvPlugin* plugin = world().plugin(spinout::kLoaderUri);
    ASSERT_NE(plugin, nullptr);
    auto uri = [&](const char* u) { return lilv_new_uri(w, u); };
    LilvNode* writable = uri(LV2_PATCH__writable);
    LilvNodes* params = lilv_plugin_get_value(plugin, writable);
    ASSERT_EQ(lilv_nodes_size(params), 1u);
    const LilvNode* param = lilv_nodes_get_first(params);
    EXPECT_STREQ(lilv_node_as_uri(param), spinout::kLoaderSessionParam);
    LilvNode* rdfType = uri("http://www.w3.org/1999/02/22-rdf-syntax-ns#type");
    LilvNode* range = uri("http://www.w3.org/2000/01/rdf-schema#range");
    LilvNode* label = uri("http://www.w3.org/2000/01/rdf-schema#label");
    LilvNode* parameter = uri(LV2_CORE_PREFIX "Parameter");
    LilvNode* path = uri(LV2_ATOM__Path);
    EXPECT_TRUE(lilv_world_ask(w, param, rdfType, parameter));
    EXPECT_TRUE(lilv_world_ask(w, param, range, path));
    LilvNode* labelValue = lilv_world_get(w, param, label, nullptr);
    ASSERT_NE(labelValue, nullptr);
    EXPECT_STREQ(lilv_node_as_string(labelValue), "Session file");
    // patch messages come in on the control input and go out on the control output
    LilvNode* designation = uri(LV2_CORE__designation);
    LilvNode* control = uri(LV2_CORE__control);
    LilvNode* supports = uri(LV2_ATOM__supports);
    LilvNode* message = uri(LV2_PATCH__Message);
    for (const char* symbol : {"events", "notify"}) {
        LilvNode* s = lilv_new_string(w, symbol);
        const LilvPort* port = lilv_plugin_get_port_by_symbol(plugin, s);
        lilv_node_free(s);
        ASSERT_NE(port, nullptr) << symbol;
        LilvNodes* d = lilv_port_get_value(plugin, port, designation);
        EXPECT_TRUE(d != nullptr && lilv_nodes_contains(d, control)) << symbol;
        LilvNodes* sup = lilv_port_get_value(plugin, port, supports);
        EXPECT_TRUE(sup != nullptr && lilv_nodes_contains(sup, message)) << symbol;
        lilv_nodes_free(d);
        lilv_nodes_free(sup);
    }
    for (LilvNode* n : {writable, rdfType, range, label, parameter, path, labelValue, designation,
                        control, supports, message})
        lilv_node_free(n);
    lilv_nodes_free(params);

    // the plugin tells the path after a load, and again when asked with patch:Get
    Instance inst(spinout::kLoaderUri);
    inst.run(64, nullptr);
    EXPECT_EQ(announcedPath(inst), "") << "no session yet";
    const auto session = (kRoot / "presets" / "fmbells.toml").string();
    loadSession(inst, session);
    inst.run(64, nullptr);
    EXPECT_EQ(announcedPath(inst), session);
    inst.run(64, nullptr);
    EXPECT_EQ(announcedPath(inst), "") << "said once";
    LV2_Atom_Object_Body get{0, inst.host.map.map(&inst.host, LV2_PATCH__Get)};
    inst.events.add(0, inst.host.map.map(&inst.host, LV2_ATOM__Object), &get, sizeof get);
    inst.run(64, nullptr);
    EXPECT_EQ(announcedPath(inst), session);
}

TEST(Lv2, LoaderStateKeepsTheFileAsAPathAndLoadsAStateNamingOnlyAFile) {
    // a state written by hand, as `jalv -l DIR` reads it: the session file alone
    const auto dir = fs::temp_directory_path() / "spinout_lv2_loader_state";
    fs::remove_all(dir);
    fs::create_directories(dir);
    const auto session = kRoot / "presets" / "polysynth.toml";
    std::ofstream(dir / "state.ttl")
        << fmt::format(R"(@prefix lv2: <http://lv2plug.in/ns/lv2core#> .
@prefix pset: <http://lv2plug.in/ns/ext/presets#> .
@prefix state: <http://lv2plug.in/ns/ext/state#> .

<> a pset:Preset ;
    lv2:appliesTo <urn:spinout:loader> ;
    state:state [
        <urn:spinout:loader#session> <file://{}>
    ] .
)",
                       session.string());
    Instance inst(spinout::kLoaderUri);
    LilvState* state = lilv_state_new_from_file(world().world, &inst.host.map, nullptr,
                                                (dir / "state.ttl").c_str());
    ASSERT_NE(state, nullptr);
    lilv_state_restore(state, inst.instance, nullptr, nullptr, 0, nullptr);
    lilv_state_free(state);
    const int64_t frames = 48000;
    EXPECT_EQ(play(inst, "polysynth", {512}, frames), playPlugin("polysynth", {512}, frames));

    // saved, the file is an atom:Path (Turtle: a file URI), next to the session's text
    LilvState* saved = lilv_state_new_from_instance(
        inst.plugin, inst.instance, &inst.host.map, nullptr, nullptr, nullptr, nullptr,
        [](const char*, void*, uint32_t*, uint32_t*) -> const void* { return nullptr; }, nullptr, 0,
        nullptr);
    char* turtle = lilv_state_to_string(world().world, &inst.host.map, &inst.host.unmap, saved,
                                        "urn:spinout:test-state", nullptr);
    const std::string text = turtle;
    EXPECT_NE(text.find(fmt::format("<urn:spinout:loader#session> <file://{}>", session.string())),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("Spinout Poly Synth"), std::string::npos) << "the text travels too";
    lilv_free(turtle);
    lilv_state_free(saved);
}

TEST(Lv2, HostsSeeEachPluginsClassVersionAndAuthor) {
    const auto dir = bundleSessions("metadata", {{"full.toml", std::string(R"([session]
name = "Full \"Meta\"\nEffect"
uri = "urn:spinout:test-full"
kind = "effect"
author = { name = "Jo Doe", email = "jo@example.org", homepage = "https://example.org/jo" }
license = "GPL-3.0-or-later"
version = "3.4.6"
category = "reverb"
)") + kPassBody + R"(
[[port]]
symbol = "mix"
name = "Mix \"wet\" > dry"
target = "chn:mix"
scale = "enum"
choices = ["a \"b\"", "c\\d"]

[preset."odd name/1"]
label = "Odd \"one\""
mix = 1
)"},
                                                 {"bare.toml", std::string(R"([session]
name = "Bare"
uri = "urn:spinout:test-bare"
kind = "effect"
)") + kPassBody}});
    for (const auto& b : fs::directory_iterator(dir)) {
        const auto cmd = fmt::format("lv2_validate '{}'/*.ttl > /dev/null 2>&1", b.path().string());
        EXPECT_EQ(std::system(cmd.c_str()), 0) << b.path();
    }
    const HostWorld host(
        fmt::format("{}:{}:/usr/lib/lv2", dir.string(), (kBuild / "lv2").string()));
    const auto* full = host.plugin("urn:spinout:test-full");
    ASSERT_NE(full, nullptr);
    EXPECT_EQ(host.className(full), "Reverb Plugin");
    EXPECT_EQ(host.number(full, LV2_CORE__minorVersion), 4);
    EXPECT_EQ(host.number(full, LV2_CORE__microVersion), 6);
    EXPECT_EQ(host.author(full, "name"), "Jo Doe");
    EXPECT_EQ(host.author(full, "email"), "mailto:jo@example.org");
    EXPECT_EQ(host.author(full, "homepage"), "https://example.org/jo");
    EXPECT_EQ(host.author(full, "license"), "https://spdx.org/licenses/GPL-3.0-or-later");
    LilvNode* name = lilv_plugin_get_name(full);
    EXPECT_STREQ(lilv_node_as_string(name), "Full \"Meta\"\nEffect");
    lilv_node_free(name);
    // the odd strings and the preset's name come back as written
    LilvNode* mixSymbol = lilv_new_string(host.w, "mix");
    const LilvPort* mix = lilv_plugin_get_port_by_symbol(full, mixSymbol);
    lilv_node_free(mixSymbol);
    ASSERT_NE(mix, nullptr);
    LilvNode* portName = lilv_port_get_name(full, mix);
    EXPECT_STREQ(lilv_node_as_string(portName), "Mix \"wet\" > dry");
    lilv_node_free(portName);
    LilvScalePoints* points = lilv_port_get_scale_points(full, mix);
    ASSERT_EQ(lilv_scale_points_size(points), 2u);
    std::vector<std::string> labels;
    LILV_FOREACH(scale_points, i, points)
    labels.emplace_back(
        lilv_node_as_string(lilv_scale_point_get_label(lilv_scale_points_get(points, i))));
    std::sort(labels.begin(), labels.end());
    EXPECT_EQ(labels, (std::vector<std::string>{"a \"b\"", "c\\d"}));
    lilv_scale_points_free(points);
    LilvNode* presetClass = lilv_new_uri(host.w, LV2_PRESETS__Preset);
    LilvNodes* presets = lilv_plugin_get_related(full, presetClass);
    ASSERT_EQ(lilv_nodes_size(presets), 1u);
    const LilvNode* preset = lilv_nodes_get_first(presets);
    EXPECT_STREQ(lilv_node_as_uri(preset), "urn:spinout:test-full#preset-odd%20name%2F1");
    lilv_world_load_resource(host.w, preset);
    LilvNode* labelPred = lilv_new_uri(host.w, "http://www.w3.org/2000/01/rdf-schema#label");
    LilvNode* presetLabel = lilv_world_get(host.w, preset, labelPred, nullptr);
    ASSERT_NE(presetLabel, nullptr);
    EXPECT_STREQ(lilv_node_as_string(presetLabel), "Odd \"one\"");
    for (LilvNode* n : {presetClass, labelPred, presetLabel})
        lilv_node_free(n);
    lilv_nodes_free(presets);

    // a session that says nothing: a plain plugin, version 0.0, no author or licence
    const auto* bare = host.plugin("urn:spinout:test-bare");
    ASSERT_NE(bare, nullptr);
    EXPECT_EQ(host.className(bare), "Plugin");
    EXPECT_EQ(host.number(bare, LV2_CORE__minorVersion), 0);
    EXPECT_EQ(host.number(bare, LV2_CORE__microVersion), 0);
    EXPECT_EQ(host.author(bare, "name"), "");
    EXPECT_EQ(host.author(bare, "license"), "");
    // the shipped ones: an instrument by default, the effects by their category
    EXPECT_EQ(host.className(host.plugin("urn:spinout:polysynth")), "Instrument Plugin");
    EXPECT_EQ(host.className(host.plugin("urn:spinout:stereodelay")), "Delay Plugin");
    EXPECT_EQ(host.className(host.plugin("urn:spinout:lfofilter")), "Filter Plugin");
    EXPECT_EQ(host.number(host.plugin("urn:spinout:stereodelay"), LV2_CORE__minorVersion), 1);
    EXPECT_EQ(host.author(host.plugin("urn:spinout:fmbells"), "name"), "spinout");
}

// An output port shows a control bus to any host: once per block, the value the
// session's code left in it (csoundengine's Bus.get).
TEST(Lv2, AnOutputPortReportsABussValue) {
    const auto dir = bundleSessions("meter", {{"meter.toml", std::string(R"([session]
name = "Meter"
uri = "urn:spinout:test-meter"
kind = "effect"
category = "analyser"
[bus.level]
kind = "control"
[instr.meter]
body = '''
|ibus=0, kgain=1|
a1, a2 ins
busout(ibus, rms(a1) * kgain)
outs a1, a2
'''
[[run]]
instr = "meter"
args = { ibus = "bus:level" }
[[port]]
symbol = "gain"
target = "meter.kgain"
min = 0
max = 4
default = 1
[[port]]
symbol = "level"
name = "Level"
source = "bus:level"
min = 0
max = 1
)")}});
    const HostWorld host(fmt::format("{}:/usr/lib/lv2", dir.string()));
    const auto* plugin = host.plugin("urn:spinout:test-meter");
    ASSERT_NE(plugin, nullptr);
    t::PluginInstance inst(host.w, plugin, 48000);
    ASSERT_EQ(inst.numInputs(), 2u);
    auto play = [&](double amplitude, int blocks) {
        for (int b = 0; b < blocks; ++b) {
            for (std::size_t ch = 0; ch < 2; ++ch)
                for (uint32_t i = 0; i < 256; ++i)
                    inst.input(ch)[i] = static_cast<float>(
                        amplitude * std::sin(2 * M_PI * 1000 * (b * 256 + i) / 48000.0));
            inst.run(256);
        }
    };
    play(0.5, 200); // a sine of amplitude 0.5 has an rms of 0.354
    EXPECT_NEAR(inst.value("level"), 0.5 / std::sqrt(2.0), 0.01);
    inst.set("gain", 2);
    play(0.5, 50);
    EXPECT_NEAR(inst.value("level"), 2 * 0.5 / std::sqrt(2.0), 0.02);
    play(0.0, 200);
    EXPECT_LT(inst.value("level"), 0.001);
    // the port is an output in the Turtle too
    LilvNode* output = lilv_new_uri(host.w, LV2_CORE__OutputPort);
    LilvNode* symbol = lilv_new_string(host.w, "level");
    const LilvPort* port = lilv_plugin_get_port_by_symbol(plugin, symbol);
    ASSERT_NE(port, nullptr);
    EXPECT_TRUE(lilv_port_is_a(plugin, port, output));
    lilv_node_free(symbol);
    lilv_node_free(output);
}
