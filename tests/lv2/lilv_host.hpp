// A small lilv host for the tests that run the built bundles as a DAW would: URID
// map, log, a worker whose queue is preallocated (nothing the host does inside run()
// allocates), every port connected, presets applied through lilv's state API.
#pragma once

#include <lilv/lilv.h>
#include <lv2/atom/atom.h>
#include <lv2/atom/forge.h>
#include <lv2/atom/util.h>
#include <lv2/log/log.h>
#include <lv2/midi/midi.h>
#include <lv2/time/time.h>
#include <lv2/urid/urid.h>
#include <lv2/worker/worker.h>

#include <array>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace spinout::test {

// A lilv world that has loaded every bundle on the given LV2 path.
struct World {
    LilvWorld* world;
    explicit World(const std::string& lv2Path) {
        setenv("LV2_PATH", lv2Path.c_str(), 1);
        world = lilv_world_new();
        lilv_world_load_all(world);
    }
    ~World() { lilv_world_free(world); }
    World(const World&) = delete;
    World& operator=(const World&) = delete;
    const LilvPlugin* plugin(const std::string& uri) const {
        LilvNode* n = lilv_new_uri(world, uri.c_str());
        const LilvPlugin* p = lilv_plugins_get_by_uri(lilv_world_get_all_plugins(world), n);
        lilv_node_free(n);
        return p;
    }
};

// A real-time host's worker queue: fixed slots, run after each block.
class JobQueue {
public:
    static constexpr std::size_t kSlots = 64;
    static constexpr std::size_t kSize = 8192;
    bool push(uint32_t size, const void* data) {
        if (count_ == kSlots || size > kSize) return false;
        auto& j = jobs_[(head_ + count_++) % kSlots];
        j.size = size;
        std::memcpy(j.data.data(), data, size);
        return true;
    }
    template <class F> void drain(F&& f) {
        while (count_ > 0) {
            auto& j = jobs_[head_];
            head_ = (head_ + 1) % kSlots;
            --count_;
            f(j.size, j.data.data());
        }
    }

private:
    struct Job {
        uint32_t size = 0;
        std::array<char, kSize> data{};
    };
    std::vector<Job> jobs_ = std::vector<Job>(kSlots);
    std::size_t head_ = 0, count_ = 0;
};

struct LilvHost {
    std::map<std::string, LV2_URID> ids;
    std::vector<std::string> uris;
    std::vector<std::string> errors;
    std::string stderrLog; // warnings and errors, in order
    LilvInstance* instance = nullptr;
    const LV2_Worker_Interface* worker = nullptr;
    JobQueue jobs, responses;

    LV2_URID map(const char* uri) {
        auto [it, added] = ids.emplace(uri, static_cast<LV2_URID>(ids.size() + 1));
        if (added) uris.push_back(uri);
        return it->second;
    }
    LV2_URID_Map mapF{this, [](LV2_URID_Map_Handle h, const char* uri) {
                          return static_cast<LilvHost*>(h)->map(uri);
                      }};
    LV2_URID_Unmap unmapF{this, [](LV2_URID_Unmap_Handle h, LV2_URID id) -> const char* {
                              auto* host = static_cast<LilvHost*>(h);
                              return id >= 1 && id <= host->uris.size() ? host->uris[id - 1].c_str()
                                                                        : nullptr;
                          }};
    LV2_Worker_Schedule scheduleF{
        this, [](LV2_Worker_Schedule_Handle h, uint32_t size, const void* data) {
            return static_cast<LilvHost*>(h)->jobs.push(size, data) ? LV2_WORKER_SUCCESS
                                                                    : LV2_WORKER_ERR_NO_SPACE;
        }};
    static int vprintf(LV2_Log_Handle h, LV2_URID type, const char* fmt, va_list ap) {
        auto* host = static_cast<LilvHost*>(h);
        char buf[2048];
        std::vsnprintf(buf, sizeof buf, fmt, ap);
        if (type == host->map(LV2_LOG__Error)) host->errors.push_back(buf);
        if (type == host->map(LV2_LOG__Error) || type == host->map(LV2_LOG__Warning))
            host->stderrLog += buf;
        return 0;
    }
    static int printf(LV2_Log_Handle h, LV2_URID type, const char* fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        const int r = vprintf(h, type, fmt, ap);
        va_end(ap);
        return r;
    }
    LV2_Log_Log logF{this, printf, vprintf};
    LV2_Feature features_[4] = {{LV2_URID__map, &mapF},
                                {LV2_URID__unmap, &unmapF},
                                {LV2_WORKER__schedule, &scheduleF},
                                {LV2_LOG__log, &logF}};
    const LV2_Feature* features[5] = {&features_[0], &features_[1], &features_[2], &features_[3],
                                      nullptr};

    // The worker's jobs and their responses, after a block (jalv's non-threaded mode).
    void runWorker() {
        if (worker == nullptr) return;
        LV2_Handle handle = lilv_instance_get_handle(instance);
        for (int round = 0; round < 8; ++round) {
            jobs.drain([&](uint32_t size, const void* data) {
                worker->work(
                    handle,
                    [](LV2_Worker_Respond_Handle h, uint32_t n, const void* d) {
                        return static_cast<LilvHost*>(h)->responses.push(n, d)
                                   ? LV2_WORKER_SUCCESS
                                   : LV2_WORKER_ERR_NO_SPACE;
                    },
                    this, size, data);
            });
            responses.drain([&](uint32_t size, const void* data) {
                worker->work_response(handle, size, data);
            });
        }
    }
};

// What a host's time:Position says. A full position gives every value, as hosts do when
// the transport starts or jumps; otherwise only the speed (a host that stops).
struct Position {
    double bpm = 120;
    double beat = 0;
    int64_t bar = 0;
    double barBeat = 0;
    double beatsPerBar = 4;
    int beatUnit = 4;
    double speed = 1;
    int64_t frame = 0;
    bool full = true;
};

// A time:Position object forged into `buf`, with the atom types Ardour sends (Long bar
// and frame, Float bpm, barBeat, beatsPerBar and speed, Int beatUnit, Double beat).
inline const LV2_Atom* forgePosition(LV2_URID_Map* map, const Position& p, uint8_t* buf,
                                     uint32_t size) {
    auto u = [&](const char* uri) { return map->map(map->handle, uri); };
    LV2_Atom_Forge forge;
    lv2_atom_forge_init(&forge, map);
    lv2_atom_forge_set_buffer(&forge, buf, size);
    LV2_Atom_Forge_Frame frame;
    const auto ref = lv2_atom_forge_object(&forge, &frame, 0, u(LV2_TIME__Position));
    if (p.full) {
        lv2_atom_forge_key(&forge, u(LV2_TIME__frame));
        lv2_atom_forge_long(&forge, p.frame);
        lv2_atom_forge_key(&forge, u(LV2_TIME__bar));
        lv2_atom_forge_long(&forge, p.bar);
        lv2_atom_forge_key(&forge, u(LV2_TIME__barBeat));
        lv2_atom_forge_float(&forge, static_cast<float>(p.barBeat));
        lv2_atom_forge_key(&forge, u(LV2_TIME__beat));
        lv2_atom_forge_double(&forge, p.beat);
        lv2_atom_forge_key(&forge, u(LV2_TIME__beatUnit));
        lv2_atom_forge_int(&forge, p.beatUnit);
        lv2_atom_forge_key(&forge, u(LV2_TIME__beatsPerBar));
        lv2_atom_forge_float(&forge, static_cast<float>(p.beatsPerBar));
        lv2_atom_forge_key(&forge, u(LV2_TIME__beatsPerMinute));
        lv2_atom_forge_float(&forge, static_cast<float>(p.bpm));
    }
    lv2_atom_forge_key(&forge, u(LV2_TIME__speed));
    lv2_atom_forge_float(&forge, static_cast<float>(p.speed));
    lv2_atom_forge_pop(&forge, &frame);
    return ref != 0 ? reinterpret_cast<const LV2_Atom*>(buf) : nullptr;
}

// An atom sequence of MIDI events, written into a fixed buffer.
struct MidiSequence {
    alignas(8) std::array<char, 65536> buf{};
    LV2_URID sequenceType = 0, midiEvent = 0;
    LV2_Atom_Sequence* seq() { return reinterpret_cast<LV2_Atom_Sequence*>(buf.data()); }
    void clear() {
        seq()->atom.type = sequenceType;
        seq()->atom.size = sizeof(LV2_Atom_Sequence_Body);
        seq()->body.unit = 0;
        seq()->body.pad = 0;
    }
    bool add(int64_t frame, const uint8_t* data, uint32_t size) {
        return add(frame, midiEvent, data, size);
    }
    // Any atom (an object: a time position) at a frame.
    bool add(int64_t frame, const LV2_Atom* atom) {
        return add(frame, atom->type, atom + 1, atom->size);
    }
    bool add(int64_t frame, LV2_URID type, const void* body, uint32_t size) {
        const uint32_t used = sizeof(LV2_Atom) + seq()->atom.size;
        const auto need = static_cast<uint32_t>(lv2_atom_pad_size(sizeof(LV2_Atom_Event) + size));
        if (used + need > buf.size()) return false;
        auto* ev = reinterpret_cast<LV2_Atom_Event*>(buf.data() + used);
        ev->time.frames = frame;
        ev->body.type = type;
        ev->body.size = size;
        std::memcpy(ev + 1, body, size);
        seq()->atom.size += need;
        return true;
    }
};

// A control input port as lilv describes it.
struct ControlPort {
    std::string symbol;
    uint32_t index = 0;
    float min = 0, max = 1, def = 0;
    bool logarithmic = false, integer = false, toggled = false;
};

// One plugin instance with every port connected to buffers of up to kMaxBlock frames.
class PluginInstance {
public:
    static constexpr uint32_t kMaxBlock = 8192;

    PluginInstance(LilvWorld* world, const LilvPlugin* plugin, double sr) : plugin_(plugin) {
        instance_ = lilv_plugin_instantiate(plugin, sr, host_.features);
        if (instance_ == nullptr)
            throw std::runtime_error(std::string("cannot instantiate ") +
                                     lilv_node_as_uri(lilv_plugin_get_uri(plugin)));
        host_.instance = instance_;
        host_.worker = static_cast<const LV2_Worker_Interface*>(
            lilv_instance_get_extension_data(instance_, LV2_WORKER__interface));
        events_.sequenceType = notify_.sequenceType = host_.map(LV2_ATOM__Sequence);
        events_.midiEvent = notify_.midiEvent = host_.map(LV2_MIDI__MidiEvent);
        LilvNode* audio = lilv_new_uri(world, LV2_CORE__AudioPort);
        LilvNode* input = lilv_new_uri(world, LV2_CORE__InputPort);
        LilvNode* control = lilv_new_uri(world, LV2_CORE__ControlPort);
        LilvNode* atom = lilv_new_uri(world, LV2_ATOM__AtomPort);
        LilvNode* logarithmic =
            lilv_new_uri(world, "http://lv2plug.in/ns/ext/port-props#logarithmic");
        LilvNode* integer = lilv_new_uri(world, LV2_CORE__integer);
        LilvNode* toggled = lilv_new_uri(world, LV2_CORE__toggled);
        const uint32_t n = lilv_plugin_get_num_ports(plugin);
        controlValues_.assign(n, 0.0f);
        std::vector<float> mins(n), maxs(n), defs(n);
        lilv_plugin_get_port_ranges_float(plugin, mins.data(), maxs.data(), defs.data());
        for (uint32_t i = 0; i < n; ++i) {
            const LilvPort* port = lilv_plugin_get_port_by_index(plugin, i);
            const bool isIn = lilv_port_is_a(plugin, port, input);
            if (lilv_port_is_a(plugin, port, audio)) {
                auto& v = isIn ? in_ : out_;
                v.emplace_back(kMaxBlock, 0.0f);
                lilv_instance_connect_port(instance_, i, v.back().data());
            } else if (lilv_port_is_a(plugin, port, control)) {
                controlValues_[i] = defs[i];
                lilv_instance_connect_port(instance_, i, &controlValues_[i]);
                controlIndex_[lilv_node_as_string(lilv_port_get_symbol(plugin, port))] = i;
                if (isIn) {
                    ControlPort c;
                    c.symbol = lilv_node_as_string(lilv_port_get_symbol(plugin, port));
                    c.index = i;
                    c.min = mins[i];
                    c.max = maxs[i];
                    c.def = defs[i];
                    c.logarithmic = lilv_port_has_property(plugin, port, logarithmic);
                    c.integer = lilv_port_has_property(plugin, port, integer);
                    c.toggled = lilv_port_has_property(plugin, port, toggled);
                    controls_.push_back(c);
                }
            } else if (lilv_port_is_a(plugin, port, atom)) {
                auto& s = isIn ? events_ : notify_;
                s.clear();
                lilv_instance_connect_port(instance_, i, s.seq());
                if (isIn) hasMidiIn_ = true;
            } else {
                lilv_instance_connect_port(instance_, i, nullptr);
            }
        }
        for (LilvNode* node : {audio, input, control, atom, logarithmic, integer, toggled})
            lilv_node_free(node);
        lilv_instance_activate(instance_);
    }
    ~PluginInstance() {
        lilv_instance_deactivate(instance_);
        lilv_instance_free(instance_);
    }
    PluginInstance(const PluginInstance&) = delete;
    PluginInstance& operator=(const PluginInstance&) = delete;

    LilvHost& host() { return host_; }
    LilvInstance* instance() { return instance_; }
    const std::vector<ControlPort>& controls() const { return controls_; }
    bool hasMidiIn() const { return hasMidiIn_; }
    std::size_t numInputs() const { return in_.size(); }
    std::size_t numOutputs() const { return out_.size(); }
    float* input(std::size_t ch) { return in_[ch].data(); }
    const float* output(std::size_t ch) const { return out_[ch].data(); }
    MidiSequence& midi() { return events_; }
    void set(const ControlPort& c, float value) { controlValues_[c.index] = value; }
    void set(const std::string& symbol, float value) {
        for (const auto& c : controls_)
            if (c.symbol == symbol) controlValues_[c.index] = value;
    }
    float get(const ControlPort& c) const { return controlValues_[c.index]; }
    // Any control port's value (an output port's as the last block left it).
    float value(const std::string& symbol) const {
        return controlValues_.at(controlIndex_.at(symbol));
    }

    // Applies a preset as a host does: lilv restores the port values through us.
    bool applyPreset(LilvWorld* world, const std::string& presetUri) {
        LilvNode* uri = lilv_new_uri(world, presetUri.c_str());
        lilv_world_load_resource(world, uri);
        LilvState* state = lilv_state_new_from_world(world, &host_.mapF, uri);
        lilv_node_free(uri);
        if (state == nullptr) return false;
        lilv_state_restore(
            state, instance_,
            [](const char* symbol, void* data, const void* value, uint32_t, uint32_t) {
                static_cast<PluginInstance*>(data)->set(symbol, *static_cast<const float*>(value));
            },
            this, 0, nullptr);
        lilv_state_free(state);
        return true;
    }

    // One block of n <= kMaxBlock frames; the MIDI buffer is emptied after it.
    void run(uint32_t n) {
        notify_.seq()->atom.size = static_cast<uint32_t>(notify_.buf.size() - sizeof(LV2_Atom));
        lilv_instance_run(instance_, n);
        events_.clear();
    }

private:
    LilvHost host_;
    const LilvPlugin* plugin_;
    LilvInstance* instance_ = nullptr;
    std::vector<std::vector<float>> in_, out_;
    std::vector<float> controlValues_;
    std::vector<ControlPort> controls_;
    std::map<std::string, uint32_t> controlIndex_; // every control port by symbol
    MidiSequence events_, notify_;
    bool hasMidiIn_ = false;
};

// The presets lilv knows for a plugin, by URI.
inline std::vector<std::string> presetsOf(LilvWorld* world, const LilvPlugin* plugin) {
    std::vector<std::string> out;
    LilvNode* presetClass = lilv_new_uri(world, "http://lv2plug.in/ns/ext/presets#Preset");
    LilvNodes* presets = lilv_plugin_get_related(plugin, presetClass);
    LILV_FOREACH(nodes, i, presets)
    out.emplace_back(lilv_node_as_uri(lilv_nodes_get(presets, i)));
    lilv_nodes_free(presets);
    lilv_node_free(presetClass);
    return out;
}

} // namespace spinout::test
