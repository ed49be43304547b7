// What spinout costs on top of Csound: the plugin through lilv against a bare
// csoundPerformKsmps loop over the exported .csd, start-up, reload, worst case
// per block, and scaling. Prints Markdown (and plot data) for RESULTS.md.
//   plugin_bench ROOT BUILD OUTDIR
// The bare loop calls Csound's API directly: it is the reference, not product code.
#include <csound/csound.h>
#include <lilv/lilv.h>
#include <lv2/atom/atom.h>
#include <lv2/atom/util.h>
#include <lv2/midi/midi.h>
#include <lv2/patch/patch.h>
#include <lv2/urid/urid.h>
#include <lv2/worker/worker.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;

namespace {

double cpuNow() { // this thread's CPU time, seconds
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double wallNow() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

double percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0
                     : v[std::min(v.size() - 1,
                                  static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

long rssKiB() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
    return 0;
}

std::map<std::string, LV2_URID> urids;
std::mutex uridMutex;
LV2_URID mapUri(LV2_URID_Map_Handle, const char* uri) {
    std::lock_guard<std::mutex> lock(uridMutex);
    return urids.emplace(uri, static_cast<LV2_URID>(urids.size() + 1)).first->second;
}
LV2_URID_Map uridMap{nullptr, mapUri};

struct Note {
    int64_t frame;
    uint8_t status, key, vel;
};

// A plugin instance with a worker thread, as a host runs it.
struct Plugin {
    LilvInstance* instance = nullptr;
    const LilvPlugin* plugin = nullptr;
    std::vector<std::vector<float>> buffers;
    std::vector<float> controls;
    alignas(8) char events[16384] = {};
    alignas(8) char notify[4096] = {};
    LV2_URID midi = uridMap.map(nullptr, LV2_MIDI__MidiEvent);
    LV2_URID sequence = uridMap.map(nullptr, LV2_ATOM__Sequence);
    const LV2_Worker_Interface* worker = nullptr;
    std::mutex jobsMutex;
    std::vector<std::vector<char>> jobs, responses;
    LV2_Worker_Schedule schedule{this,
                                 [](LV2_Worker_Schedule_Handle h, uint32_t size, const void* data) {
                                     auto* p = static_cast<Plugin*>(h);
                                     std::lock_guard<std::mutex> lock(p->jobsMutex);
                                     p->jobs.emplace_back(static_cast<const char*>(data),
                                                          static_cast<const char*>(data) + size);
                                     return LV2_WORKER_SUCCESS;
                                 }};
    LV2_Feature mapF{LV2_URID__map, &uridMap};
    LV2_Feature schedF{LV2_WORKER__schedule, &schedule};
    const LV2_Feature* features[3] = {&mapF, &schedF, nullptr};

    Plugin(LilvWorld* world, const std::string& uri) {
        LilvNode* node = lilv_new_uri(world, uri.c_str());
        plugin = lilv_plugins_get_by_uri(lilv_world_get_all_plugins(world), node);
        lilv_node_free(node);
        instance = lilv_plugin_instantiate(plugin, 48000, features);
        worker = static_cast<const LV2_Worker_Interface*>(
            lilv_instance_get_extension_data(instance, LV2_WORKER__interface));
        const uint32_t n = lilv_plugin_get_num_ports(plugin);
        buffers.assign(n, std::vector<float>(4096));
        controls.assign(n, 0.0f);
        std::vector<float> defaults(n);
        lilv_plugin_get_port_ranges_float(plugin, nullptr, nullptr, defaults.data());
        LilvNode* audio = lilv_new_uri(world, LV2_CORE__AudioPort);
        LilvNode* atom = lilv_new_uri(world, LV2_ATOM__AtomPort);
        LilvNode* output = lilv_new_uri(world, LV2_CORE__OutputPort);
        for (uint32_t i = 0; i < n; ++i) {
            const LilvPort* port = lilv_plugin_get_port_by_index(plugin, i);
            if (lilv_port_is_a(plugin, port, audio))
                lilv_instance_connect_port(instance, i, buffers[i].data());
            else if (lilv_port_is_a(plugin, port, atom))
                lilv_instance_connect_port(instance, i,
                                           lilv_port_is_a(plugin, port, output) ? notify : events);
            else {
                controls[i] = defaults[i];
                lilv_instance_connect_port(instance, i, &controls[i]);
            }
        }
        for (LilvNode* x : {audio, atom, output})
            lilv_node_free(x);
        clearEvents();
        lilv_instance_activate(instance);
    }
    ~Plugin() {
        lilv_instance_deactivate(instance);
        lilv_instance_free(instance);
    }
    LV2_Atom_Sequence* seq() { return reinterpret_cast<LV2_Atom_Sequence*>(events); }
    void clearEvents() {
        seq()->atom.type = sequence;
        seq()->atom.size = sizeof(LV2_Atom_Sequence_Body);
    }
    void add(int64_t frame, LV2_URID type, const void* body, uint32_t size) {
        auto* ev = reinterpret_cast<LV2_Atom_Event*>(events + sizeof(LV2_Atom) + seq()->atom.size);
        ev->time.frames = frame;
        ev->body.type = type;
        ev->body.size = size;
        std::memcpy(ev + 1, body, size);
        seq()->atom.size += lv2_atom_pad_size(sizeof(LV2_Atom_Event) + size);
    }
    void note(int64_t frame, uint8_t status, uint8_t key, uint8_t vel) {
        const uint8_t m[3] = {status, key, vel};
        add(frame, midi, m, 3);
    }
    void runUntimed(uint32_t n) {
        reinterpret_cast<LV2_Atom*>(notify)->size = sizeof notify - sizeof(LV2_Atom);
        lilv_instance_run(instance, n);
        clearEvents();
    }
    // runs one block; returns its wall time in seconds
    double run(uint32_t n) {
        reinterpret_cast<LV2_Atom*>(notify)->size = sizeof notify - sizeof(LV2_Atom);
        const double t0 = wallNow();
        lilv_instance_run(instance, n);
        const double t1 = wallNow();
        clearEvents();
        return t1 - t0;
    }
    // the worker's side: jobs, then responses delivered before the next run
    bool work() {
        std::vector<std::vector<char>> todo;
        {
            std::lock_guard<std::mutex> lock(jobsMutex);
            todo.swap(jobs);
        }
        for (auto& j : todo)
            worker->work(
                lilv_instance_get_handle(instance),
                [](LV2_Worker_Respond_Handle h, uint32_t size, const void* data) {
                    auto* p = static_cast<Plugin*>(h);
                    std::lock_guard<std::mutex> lock(p->jobsMutex);
                    p->responses.emplace_back(static_cast<const char*>(data),
                                              static_cast<const char*>(data) + size);
                    return LV2_WORKER_SUCCESS;
                },
                this, static_cast<uint32_t>(j.size()), j.data());
        return !todo.empty();
    }
    void deliver() {
        std::vector<std::vector<char>> r;
        {
            std::lock_guard<std::mutex> lock(jobsMutex);
            r.swap(responses);
        }
        for (auto& x : r)
            worker->work_response(lilv_instance_get_handle(instance),
                                  static_cast<uint32_t>(x.size()), x.data());
    }
};

std::vector<Note> phrase(int64_t frames) {
    // chords of four notes every half second, a melody note every quarter second
    std::vector<Note> notes;
    const int chords[4][4] = {
        {57, 60, 64, 67}, {53, 57, 60, 64}, {48, 52, 55, 59}, {55, 59, 62, 65}};
    for (int64_t f = 0, i = 0; f < frames - 24000; f += 24000, ++i) {
        for (int k : chords[i % 4]) {
            notes.push_back({f, 0x90, static_cast<uint8_t>(k), 90});
            notes.push_back({f + 22000, 0x80, static_cast<uint8_t>(k), 0});
        }
        notes.push_back({f + 12000, 0x90, static_cast<uint8_t>(72 + i % 7), 100});
        notes.push_back({f + 20000, 0x80, static_cast<uint8_t>(72 + i % 7), 0});
    }
    std::sort(notes.begin(), notes.end(),
              [](const Note& a, const Note& b) { return a.frame < b.frame; });
    return notes;
}

// CPU seconds playing `notes` for `frames` in blocks of `block`: the whole loop, as
// timing each call (a system call for the thread's CPU clock) would cost more than a
// one-frame run() itself. The host's side (writing MIDI atoms) is in the figure.
double playCpu(Plugin& p, const std::vector<Note>& notes, int64_t frames, uint32_t block) {
    std::size_t ni = 0;
    const double t0 = cpuNow();
    for (int64_t pos = 0; pos < frames; pos += block) {
        for (; ni < notes.size() && notes[ni].frame < pos + block; ++ni)
            p.note(notes[ni].frame - pos, notes[ni].status, notes[ni].key, notes[ni].vel);
        p.runUntimed(block);
    }
    return cpuNow() - t0;
}

// The bare loop: the exported .csd, csoundPerformKsmps only, nothing else.
double bareCpu(const std::string& csd, int64_t frames, double* startSeconds = nullptr) {
    const double w0 = wallNow();
    CSOUND* cs = csoundCreate(nullptr);
    csoundSetMessageCallback(cs, [](CSOUND*, int, const char*, va_list) {});
    csoundSetHostImplementedAudioIO(cs, 1, 0);
    csoundCompileCsdText(cs, csd.c_str());
    csoundSetOption(cs, "-n");
    csoundStart(cs);
    if (startSeconds != nullptr) *startSeconds = wallNow() - w0;
    const int ksmps = static_cast<int>(csoundGetKsmps(cs));
    const double t0 = cpuNow();
    for (int64_t f = 0; f < frames; f += ksmps)
        csoundPerformKsmps(cs);
    const double cpu = cpuNow() - t0;
    csoundDestroy(cs);
    return cpu;
}

std::string exportCsd(const fs::path& build, const fs::path& root, const std::string& session,
                      const fs::path& midi, double seconds, const fs::path& out) {
    const auto cmd = "'" + (build / "spinout").string() + "' csd '" +
                     (root / "presets" / (session + ".toml")).string() + "' --midi '" +
                     midi.string() + "' --duration " + std::to_string(seconds) + " --tail 0 -o '" +
                     out.string() + "' > /dev/null";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("spinout csd failed");
    std::ifstream in(out);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// A standard MIDI file of the notes, for spinout csd (format 0, 120 bpm, 480 ppq).
void writeMidi(const fs::path& path, const std::vector<Note>& notes) {
    std::string track;
    auto vlq = [&](uint32_t v) {
        char b[4];
        int n = 0;
        b[n++] = static_cast<char>(v & 0x7F);
        while (v >>= 7)
            b[n++] = static_cast<char>(0x80 | (v & 0x7F));
        while (n)
            track += b[--n];
    };
    int64_t last = 0;
    for (const auto& n : notes) {
        const int64_t tick =
            static_cast<int64_t>(std::llround(static_cast<double>(n.frame) / 48000 * 960));
        vlq(static_cast<uint32_t>(tick - last));
        last = tick;
        track += static_cast<char>(n.status);
        track += static_cast<char>(n.key);
        track += static_cast<char>(n.vel);
    }
    track += std::string("\x00\xff\x2f\x00", 4);
    auto be = [](uint32_t v, int bytes) {
        std::string s;
        for (int i = bytes - 1; i >= 0; --i)
            s += static_cast<char>((v >> (8 * i)) & 0xFF);
        return s;
    };
    std::ofstream out(path, std::ios::binary);
    out << "MThd" << be(6, 4) << be(0, 2) << be(1, 2) << be(480, 2) << "MTrk"
        << be(static_cast<uint32_t>(track.size()), 4) << track;
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: plugin_bench ROOT BUILD OUTDIR\n");
        return 2;
    }
    const fs::path root = argv[1], build = argv[2], out = argv[3];
    fs::create_directories(out);
    setenv("LV2_PATH", (build / "lv2").c_str(), 1);
    csoundInitialize(CSOUNDINIT_NO_SIGNAL_HANDLER | CSOUNDINIT_NO_ATEXIT);
    LilvWorld* world = lilv_world_new();
    lilv_world_load_all(world);
    const double block256 = 256.0 / 48000;

    // 1. Plugin overhead against the bare loop --------------------------------------
    const int64_t frames = 48000 * 8;
    const auto notes = phrase(frames);
    writeMidi(out / "phrase.mid", notes);
    const auto csd =
        exportCsd(build, root, "polysynth", out / "phrase.mid", 8.0, out / "phrase.csd");
    std::printf("## Plugin against a bare csoundPerformKsmps loop\n\n");
    std::printf(
        "polysynth, 8 s of chords and a melody (the same MIDI), CPU time in run() against CPU "
        "time\n"
        "in a bare loop of csoundPerformKsmps over `spinout csd`'s export of the same render;\n"
        "median of 5 alternating runs.\n\n");
    std::printf("| host block | plugin (ms CPU) | bare loop (ms CPU) | ratio | target "
                "|\n|---|---|---|---|---|\n");
    for (uint32_t block : {1u, 16u, 64u, 256u, 1024u}) {
        std::vector<double> a, b;
        for (int run = 0; run < 5; ++run) {
            Plugin p(world, "urn:spinout:polysynth");
            a.push_back(playCpu(p, notes, frames, block));
            b.push_back(bareCpu(csd, frames));
        }
        const double ratio = median(a) / median(b);
        std::printf("| %u | %.1f | %.1f | %.3f | %s |\n", block, median(a) * 1e3, median(b) * 1e3,
                    ratio, block >= 64 ? "<= 1.03" : (block == 1 ? "<= 1.15" : "-"));
    }

    // 3. Start and reload ----------------------------------------------------------
    {
        std::vector<double> inst, bare;
        for (int run = 0; run < 7; ++run) {
            const double t0 = wallNow();
            { Plugin p(world, "urn:spinout:polysynth"); }
            inst.push_back(wallNow() - t0);
            double start = 0;
            bareCpu(csd, 0, &start);
            bare.push_back(start);
        }
        std::printf("\n## Start and reload\n\n");
        std::printf("| what | median | target |\n|---|---|---|\n");
        std::printf("| instantiate the polysynth plugin (lilv, includes activate) | %.1f ms | |\n",
                    median(inst) * 1e3);
        std::printf("| bare csoundCreate + compile + start of its .csd | %.1f ms | |\n",
                    median(bare) * 1e3);
        std::printf("| ratio | %.2f | <= 1.2 |\n", median(inst) / median(bare));

        // the loader, playing, reloads the session in its worker thread
        Plugin loader(world, "urn:spinout:loader");
        const LV2_URID patchSet = uridMap.map(nullptr, LV2_PATCH__Set);
        auto setPath = [&](const std::string& path) {
            std::vector<char> body(256 + path.size(), 0);
            auto* obj = reinterpret_cast<LV2_Atom_Object_Body*>(body.data());
            obj->otype = patchSet;
            auto* prop = reinterpret_cast<LV2_Atom_Property_Body*>(obj + 1);
            prop->key = uridMap.map(nullptr, LV2_PATCH__property);
            prop->value.type = uridMap.map(nullptr, LV2_ATOM__URID);
            prop->value.size = sizeof(LV2_URID);
            *reinterpret_cast<LV2_URID*>(prop + 1) =
                uridMap.map(nullptr, "urn:spinout:loader#session");
            auto* val =
                reinterpret_cast<LV2_Atom_Property_Body*>(reinterpret_cast<char*>(prop + 1) + 8);
            val->key = uridMap.map(nullptr, LV2_PATCH__value);
            val->value.type = uridMap.map(nullptr, LV2_ATOM__Path);
            val->value.size = static_cast<uint32_t>(path.size() + 1);
            std::memcpy(val + 1, path.c_str(), path.size() + 1);
            loader.add(0, uridMap.map(nullptr, LV2_ATOM__Object), body.data(),
                       static_cast<uint32_t>(reinterpret_cast<char*>(val + 1) + path.size() + 1 -
                                             body.data()));
        };
        const auto session = (root / "presets" / "polysynth.toml").string();
        setPath(session);
        loader.run(256);
        loader.work();
        loader.deliver();
        for (int k : {57, 60, 64, 67})
            loader.note(0, 0x90, static_cast<uint8_t>(k), 90);
        // The longest block of each of 5 windows of steady play and of each of 5 reloads,
        // and the median of each five: one block the machine's other work delays (this is
        // a shared 2-core machine) does not decide the figure.
        std::vector<double> steady, reloading;
        for (int b = 0; b < 200; ++b)
            loader.run(256); // the notes' start, page faults
        for (int w = 0; w < 5; ++w) {
            double longest = 0;
            for (int b = 0; b < 400; ++b)
                longest = std::max(longest, loader.run(256));
            steady.push_back(longest);
        }
        for (int r = 0; r < 5; ++r) {
            setPath(session);
            double longest = loader.run(256);
            std::atomic<bool> done{false};
            std::thread worker([&] {
                loader.work(); // builds the new engine while the audio thread runs
                done = true;
            });
            while (!done)
                longest = std::max(longest, loader.run(256));
            worker.join();
            loader.deliver(); // the swap
            longest = std::max(longest, loader.run(256));
            loader.work(); // frees the old engine
            for (int b = 0; b < 50; ++b)
                longest = std::max(longest, loader.run(256));
            reloading.push_back(longest);
        }
        const double maxSteady = median(steady);
        const double maxReload = median(reloading);
        std::printf("| longest run() at 256 frames, steady (median of 5 windows) | %.3f ms | |\n",
                    maxSteady * 1e3);
        std::printf("| longest run() at 256 frames while reloading (median of 5 reloads) | %.3f "
                    "ms | |\n",
                    maxReload * 1e3);
        std::printf("| ratio | %.2f | <= 2 |\n", maxReload / maxSteady);
    }

    // 4. Worst case per block --------------------------------------------------------
    {
        Plugin p(world, "urn:spinout:polysynth");
        for (int k = 0; k < 32; ++k)
            p.note(0, 0x90, static_cast<uint8_t>(36 + 2 * k), 90);
        const double first = p.run(256); // 32 voices start in this block
        std::vector<double> t;
        for (int b = 0; b < 3000; ++b)
            t.push_back(p.run(256));
        std::printf("\n## Time per run() at 256 frames, polysynth with 32 voices held\n\n");
        std::printf("| p50 | p99 | max | block period |\n|---|---|---|---|\n");
        std::printf("| %.3f ms (%.1f%%) | %.3f ms (%.1f%%) | %.3f ms (%.1f%%) | %.3f ms |\n",
                    percentile(t, 0.5) * 1e3, 100 * percentile(t, 0.5) / block256,
                    percentile(t, 0.99) * 1e3, 100 * percentile(t, 0.99) / block256,
                    percentile(t, 1.0) * 1e3, 100 * percentile(t, 1.0) / block256, block256 * 1e3);
        std::printf("\nThe block in which the 32 notes start (32 Csound instances initialised at "
                    "once): %.3f ms (%.0f%%).\n",
                    first * 1e3, 100 * first / block256);
    }

    // 5. Scaling -------------------------------------------------------------------------
    {
        // a copy of the polysynth bundle with room for 128 voices
        const auto bundle = out / "lv2" / "spinout-poly128.lv2";
        fs::create_directories(bundle.parent_path());
        std::ifstream in(root / "presets" / "polysynth.toml");
        std::ostringstream ss;
        ss << in.rdbuf();
        auto text = ss.str();
        text.replace(text.find("voices = 32"), 11, "voices = 128");
        text.replace(text.find("urn:spinout:polysynth"), 21, "urn:spinout:poly128");
        const auto tmp = out / "poly128.toml";
        std::ofstream(tmp) << text;
        const auto cmd = "'" + (build / "spinout").string() + "' bundle '" + tmp.string() +
                         "' -o '" + (out / "lv2").string() + "' > /dev/null";
        if (std::system(cmd.c_str()) != 0) return 1;
        LilvNode* b =
            lilv_new_file_uri(world, nullptr, (out / "lv2" / "spinout-poly128.lv2/").c_str());
        lilv_world_load_bundle(world, b);
        lilv_node_free(b);
        std::ofstream voicesData(out / "voices.dat");
        std::printf(
            "\n## Scaling\n\nCPU per second of audio (run() at 256 frames, 4 s), polysynth:\n\n");
        std::printf("| voices | CPU (ms per s of audio) | real-time load |\n|---|---|---|\n");
        for (int v : {1, 2, 4, 8, 16, 32, 64, 128}) {
            Plugin p(world, "urn:spinout:poly128");
            for (int k = 0; k < v; ++k)
                p.note(0, 0x90, static_cast<uint8_t>(k), 90); // v different keys
            p.run(256);
            const double t0 = cpuNow();
            for (int blk = 0; blk < 4 * 48000 / 256; ++blk)
                p.run(256);
            const double perSecond = (cpuNow() - t0) / 4;
            std::printf("| %d | %.1f | %.1f%% |\n", v, perSecond * 1e3, perSecond * 100);
            voicesData << v << " " << perSecond * 1e3 << "\n";
        }
        std::printf("\nInstances of the polysynth, each with 8 voices held (CPU per s of audio, "
                    "all together),\n"
                    "and the resident memory each instance adds:\n\n");
        std::printf("| instances | CPU (ms per s of audio) | RSS (MiB) |\n|---|---|---|\n");
        const long rss0 = rssKiB();
        std::vector<std::unique_ptr<Plugin>> all;
        for (int n = 1; n <= 16; ++n) {
            all.push_back(std::make_unique<Plugin>(world, "urn:spinout:polysynth"));
            for (int k = 0; k < 8; ++k)
                all.back()->note(0, 0x90, static_cast<uint8_t>(48 + 3 * k), 90);
            if (n != 1 && n != 2 && n != 4 && n != 8 && n != 16) continue;
            const double t0 = cpuNow();
            for (int blk = 0; blk < 2 * 48000 / 256; ++blk)
                for (auto& p : all)
                    p->run(256);
            std::printf("| %d | %.1f | %.1f |\n", n, (cpuNow() - t0) / 2 * 1e3,
                        static_cast<double>(rssKiB() - rss0) / 1024);
        }
        std::printf("\nMemory per extra instance: %.1f MiB (RSS growth over 16 instances / 16).\n",
                    static_cast<double>(rssKiB() - rss0) / 1024 / 16);
    }
    lilv_world_free(world);
    return 0;
}
