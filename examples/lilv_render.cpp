// A short lilv host: loads an LV2 plugin, applies one of its presets, and renders a file:
// an instrument plays a chord, an effect processes an input sound file. Every step that can
// fail is checked; errors exit with status 1, bad usage with 2.
//   LV2_PATH=build/lv2 build/examples/lilv_render urn:spinout:polysynth pad out.wav
//   LV2_PATH=build/lv2 build/examples/lilv_render -i in.wav urn:spinout:stereodelay dub out.wav
#include <lilv/lilv.h>
#include <lv2/atom/atom.h>
#include <lv2/atom/util.h>
#include <lv2/core/lv2.h>
#include <lv2/midi/midi.h>
#include <lv2/presets/presets.h>
#include <lv2/urid/urid.h>
#include <sndfile.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

std::map<std::string, LV2_URID> urids;
LV2_URID mapUri(LV2_URID_Map_Handle, const char* uri) {
    return urids.emplace(uri, static_cast<LV2_URID>(urids.size() + 1)).first->second;
}

struct Failure {
    int status;
    std::string message;
};

[[noreturn]] void fail(const std::string& message, int status = 1) {
    throw Failure{status, message};
}

// Frees lilv nodes when leaving a scope.
struct Node {
    LilvNode* node;
    explicit Node(LilvNode* n) : node(n) {
        if (node == nullptr) fail("lilv could not make a node");
    }
    ~Node() { lilv_node_free(node); }
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;
    operator const LilvNode*() const { return node; }
};

std::string nodeText(const LilvNode* n) {
    return n != nullptr ? lilv_node_as_string(n) : "";
}

struct Preset {
    std::string uri, name, label;
};

// The plugin's presets; the short name is what follows '#' in the URI, without "preset-".
std::vector<Preset> presetsOf(LilvWorld* world, const LilvPlugin* plugin) {
    Node presetClass(lilv_new_uri(world, LV2_PRESETS__Preset));
    Node labelPred(lilv_new_uri(world, LILV_NS_RDFS "label"));
    std::vector<Preset> out;
    LilvNodes* related = lilv_plugin_get_related(plugin, presetClass);
    LILV_FOREACH(nodes, i, related) {
        const LilvNode* p = lilv_nodes_get(related, i);
        if (lilv_world_load_resource(world, p) < 0) continue;
        Preset preset;
        preset.uri = nodeText(p);
        const auto cut = preset.uri.find_last_of("#/");
        preset.name = cut == std::string::npos ? preset.uri : preset.uri.substr(cut + 1);
        if (preset.name.rfind("preset-", 0) == 0) preset.name = preset.name.substr(7);
        LilvNode* label = lilv_world_get(world, p, labelPred, nullptr);
        preset.label = nodeText(label);
        lilv_node_free(label);
        out.push_back(preset);
    }
    lilv_nodes_free(related);
    std::sort(out.begin(), out.end(),
              [](const Preset& a, const Preset& b) { return a.name < b.name; });
    return out;
}

struct SetCtx {
    const LilvPlugin* plugin;
    LilvWorld* world;
    std::vector<float>* controls;
    std::string error;
};

void setPortValue(const char* symbol, void* data, const void* value, uint32_t size, uint32_t type) {
    auto* c = static_cast<SetCtx*>(data);
    LilvNode* sym = lilv_new_string(c->world, symbol);
    const LilvPort* port = lilv_plugin_get_port_by_symbol(c->plugin, sym);
    lilv_node_free(sym);
    if (port == nullptr) {
        c->error = std::string("the preset sets a port the plugin lacks: ") + symbol;
        return;
    }
    const LV2_URID floatType = mapUri(nullptr, LV2_ATOM__Float);
    if (type != floatType || size != sizeof(float)) {
        c->error = std::string("the preset's value for ") + symbol + " is not a float";
        return;
    }
    (*c->controls)[lilv_port_get_index(c->plugin, port)] = *static_cast<const float*>(value);
}

struct SoundFile {
    SNDFILE* file = nullptr;
    ~SoundFile() {
        if (file != nullptr) sf_close(file);
    }
};

int run(int argc, char** argv) {
    std::string inputPath;
    std::vector<std::string> args;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "-i" || a == "--input") {
            if (i + 1 == argc) fail(a + " needs a sound file", 2);
            inputPath = argv[++i];
        } else if (a.size() > 1 && a[0] == '-') {
            fail("unknown option " + a, 2);
        } else {
            args.push_back(a);
        }
    }
    if (args.size() != 3)
        fail("usage: lilv_render [-i INPUT] PLUGIN-URI PRESET|- OUT.wav\n"
             "  an instrument plays a chord; an effect processes INPUT (required)",
             2);
    const std::string pluginUri = args[0], presetName = args[1], outPath = args[2];

    // the input first: its sample rate is the render's
    SoundFile input;
    SF_INFO inInfo{};
    double sr = 48000;
    if (!inputPath.empty()) {
        input.file = sf_open(inputPath.c_str(), SFM_READ, &inInfo);
        if (input.file == nullptr) fail("cannot read '" + inputPath + "': " + sf_strerror(nullptr));
        sr = inInfo.samplerate;
    }

    std::unique_ptr<LilvWorld, void (*)(LilvWorld*)> worldOwner(lilv_world_new(), lilv_world_free);
    LilvWorld* world = worldOwner.get();
    if (world == nullptr) fail("lilv could not start");
    lilv_world_load_all(world);
    Node uri(lilv_new_uri(world, pluginUri.c_str()));
    const LilvPlugin* plugin = lilv_plugins_get_by_uri(lilv_world_get_all_plugins(world), uri);
    if (plugin == nullptr) fail("no plugin " + pluginUri + " (is LV2_PATH set? lv2ls lists them)");

    // this host provides urid:map only
    LilvNodes* required = lilv_plugin_get_required_features(plugin);
    LILV_FOREACH(nodes, i, required) {
        const std::string feature = nodeText(lilv_nodes_get(required, i));
        if (feature != LV2_URID__map) {
            lilv_nodes_free(required);
            fail(pluginUri + " requires " + feature + ", which this host lacks");
        }
    }
    lilv_nodes_free(required);

    Node audioClass(lilv_new_uri(world, LV2_CORE__AudioPort));
    Node controlClass(lilv_new_uri(world, LV2_CORE__ControlPort));
    Node inputClass(lilv_new_uri(world, LV2_CORE__InputPort));
    Node outputClass(lilv_new_uri(world, LV2_CORE__OutputPort));
    Node atomClass(lilv_new_uri(world, LV2_ATOM__AtomPort));
    Node optional(lilv_new_uri(world, LV2_CORE__connectionOptional));
    // asked of the data, not of lilv's class tree, which needs lv2core's bundle in LV2_PATH
    Node rdfType(lilv_new_uri(world, LILV_NS_RDF "type"));
    Node instrumentClass(lilv_new_uri(world, LV2_CORE__InstrumentPlugin));
    const bool instrument = lilv_world_ask(world, uri, rdfType, instrumentClass);

    // the preset, by its short name, its label or its URI
    std::vector<float> controls(lilv_plugin_get_num_ports(plugin), 0.0f);
    lilv_plugin_get_port_ranges_float(plugin, nullptr, nullptr, controls.data());
    for (float& c : controls)
        if (c != c) c = 0; // ports without a default
    const auto presets = presetsOf(world, plugin);
    const Preset* preset = nullptr;
    for (const auto& p : presets)
        if (presetName == p.name || presetName == p.label || presetName == p.uri) preset = &p;
    if (preset == nullptr && presetName != "-") {
        std::string list;
        for (const auto& p : presets)
            list += "\n  " + p.name + (p.label.empty() ? "" : " (" + p.label + ")");
        fail("no preset '" + presetName + "' for " + pluginUri +
             (presets.empty() ? "; it has none (give - for none)" : "; its presets:" + list));
    }

    // the ports: audio to buffers, controls to values, atom input to a MIDI sequence
    const uint32_t block = 512;
    const uint32_t n = lilv_plugin_get_num_ports(plugin);
    std::vector<std::vector<float>> buffers(n, std::vector<float>(block));
    std::vector<uint32_t> audioIn, audioOut;
    alignas(8) static char events[8192];
    alignas(8) static char notify[8192];
    int eventsPort = -1;
    for (uint32_t i = 0; i < n; ++i) {
        const LilvPort* port = lilv_plugin_get_port_by_index(plugin, i);
        const bool isInput = lilv_port_is_a(plugin, port, inputClass);
        if (lilv_port_is_a(plugin, port, audioClass)) {
            (isInput ? audioIn : audioOut).push_back(i);
        } else if (lilv_port_is_a(plugin, port, atomClass)) {
            if (isInput && eventsPort < 0) eventsPort = static_cast<int>(i);
        } else if (!lilv_port_is_a(plugin, port, controlClass) &&
                   !lilv_port_has_property(plugin, port, optional)) {
            fail(pluginUri + " has a port of a kind this host does not know: " +
                 nodeText(lilv_port_get_symbol(plugin, port)));
        }
    }
    if (audioOut.empty()) fail(pluginUri + " has no audio output");
    if (!inputPath.empty() && audioIn.empty())
        fail(pluginUri + " has no audio input for -i " + inputPath);
    if (inputPath.empty() && !instrument)
        fail(pluginUri + " is an effect: give a sound file to process with -i INPUT");
    if (inputPath.empty() && eventsPort < 0)
        fail(pluginUri + " takes no MIDI: give a sound file with -i INPUT");

    LV2_URID_Map map{nullptr, mapUri};
    LV2_Feature mapFeature{LV2_URID__map, &map};
    const LV2_Feature* features[] = {&mapFeature, nullptr};
    std::unique_ptr<LilvInstance, void (*)(LilvInstance*)> instanceOwner(
        lilv_plugin_instantiate(plugin, sr, features), lilv_instance_free);
    LilvInstance* instance = instanceOwner.get();
    if (instance == nullptr) fail("cannot instantiate " + pluginUri);

    for (uint32_t i = 0; i < n; ++i) {
        const LilvPort* port = lilv_plugin_get_port_by_index(plugin, i);
        if (lilv_port_is_a(plugin, port, audioClass))
            lilv_instance_connect_port(instance, i, buffers[i].data());
        else if (lilv_port_is_a(plugin, port, atomClass))
            lilv_instance_connect_port(instance, i,
                                       static_cast<int>(i) == eventsPort ? events : notify);
        else if (lilv_port_is_a(plugin, port, controlClass))
            lilv_instance_connect_port(instance, i, &controls[i]);
        else
            lilv_instance_connect_port(instance, i, nullptr); // optional
    }

    if (preset != nullptr) {
        Node presetUri(lilv_new_uri(world, preset->uri.c_str()));
        LilvState* state = lilv_state_new_from_world(world, &map, presetUri);
        if (state == nullptr) fail("cannot load the preset " + preset->uri);
        SetCtx ctx{plugin, world, &controls, {}};
        lilv_state_restore(state, instance, setPortValue, &ctx, 0, features);
        lilv_state_free(state);
        if (!ctx.error.empty()) fail(ctx.error);
    }

    // The length: four seconds of chord, or the input and two seconds of tail. The plugin's
    // latency is taken off, so the file starts where the input does.
    const auto frames = static_cast<int64_t>(inputPath.empty() ? 4 * sr : inInfo.frames + 2 * sr);
    const int latencyPort = lilv_plugin_has_latency(plugin)
                                ? static_cast<int>(lilv_plugin_get_latency_port_index(plugin))
                                : -1;

    SF_INFO outInfo{};
    outInfo.samplerate = static_cast<int>(sr);
    outInfo.channels = static_cast<int>(audioOut.size());
    outInfo.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
    SoundFile out;
    out.file = sf_open(outPath.c_str(), SFM_WRITE, &outInfo);
    if (out.file == nullptr) fail("cannot write '" + outPath + "': " + sf_strerror(nullptr));

    lilv_instance_activate(instance);
    const LV2_URID midiEvent = map.map(nullptr, LV2_MIDI__MidiEvent);
    const LV2_URID sequence = map.map(nullptr, LV2_ATOM__Sequence);
    const LV2_URID chunk = map.map(nullptr, LV2_ATOM__Chunk);
    const int chord[] = {57, 60, 64, 67};
    const auto noteOff = static_cast<uint32_t>(2 * sr / block);
    const int fileChannels = input.file != nullptr ? inInfo.channels : 1;
    std::vector<float> fileBlock(static_cast<std::size_t>(block) * fileChannels);
    std::vector<float> interleaved(static_cast<std::size_t>(block) * audioOut.size());
    int64_t skip = -1; // the latency, known after the first block
    int64_t written = 0;
    std::string error;
    for (uint32_t b = 0; written < frames && error.empty(); ++b) {
        auto* seq = reinterpret_cast<LV2_Atom_Sequence*>(events);
        seq->atom.type = sequence;
        seq->atom.size = sizeof(LV2_Atom_Sequence_Body);
        seq->body.unit = 0;
        seq->body.pad = 0;
        auto add = [&](uint8_t status, int key) {
            auto* ev =
                reinterpret_cast<LV2_Atom_Event*>(events + sizeof(LV2_Atom) + seq->atom.size);
            ev->time.frames = 0;
            ev->body.type = midiEvent;
            ev->body.size = 3;
            const uint8_t msg[3] = {status, static_cast<uint8_t>(key), 100};
            std::memcpy(ev + 1, msg, 3);
            seq->atom.size += lv2_atom_pad_size(sizeof(LV2_Atom_Event) + 3);
        };
        if (inputPath.empty() && b == 0)
            for (int k : chord)
                add(0x90, k);
        if (inputPath.empty() && b == noteOff)
            for (int k : chord)
                add(0x80, k);
        // an output sequence's buffer says its capacity before each run
        auto* notifyAtom = reinterpret_cast<LV2_Atom*>(notify);
        notifyAtom->type = chunk;
        notifyAtom->size = sizeof(notify) - sizeof(LV2_Atom);

        if (input.file != nullptr) {
            const auto got = sf_readf_float(input.file, fileBlock.data(), block);
            if (got < 0) error = "cannot read '" + inputPath + "'";
            // the file's channels in turn feed the inputs (a mono file feeds them all)
            for (std::size_t c = 0; c < audioIn.size(); ++c)
                for (uint32_t i = 0; i < block; ++i)
                    buffers[audioIn[c]][i] = static_cast<sf_count_t>(i) < got
                                                 ? fileBlock[i * fileChannels + c % fileChannels]
                                                 : 0.0f;
        }
        lilv_instance_run(instance, block);
        if (skip < 0) skip = latencyPort >= 0 ? static_cast<int64_t>(controls[latencyPort]) : 0;
        const int64_t from = std::min<int64_t>(skip, block);
        skip -= from;
        const int64_t count = std::min<int64_t>(block - from, frames - written);
        for (int64_t i = 0; i < count; ++i)
            for (std::size_t c = 0; c < audioOut.size(); ++c)
                interleaved[i * audioOut.size() + c] = buffers[audioOut[c]][from + i];
        if (count > 0 && sf_writef_float(out.file, interleaved.data(), count) != count)
            error = "cannot write '" + outPath + "': " + sf_strerror(out.file);
        written += count;
    }
    lilv_instance_deactivate(instance);
    if (error.empty()) {
        const int err = sf_close(out.file);
        out.file = nullptr;
        if (err != 0) error = "cannot write '" + outPath + "': " + sf_error_number(err);
    }
    if (!error.empty()) fail(error);
    std::printf("%s: %.1f s of %s with preset %s%s%s\n", outPath.c_str(),
                static_cast<double>(frames) / sr, pluginUri.c_str(), presetName.c_str(),
                inputPath.empty() ? "" : " processing ", inputPath.c_str());
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const Failure& f) {
        std::fprintf(
            stderr, "%s%s\n",
            f.status == 2 && f.message.rfind("usage", 0) == 0 ? "" : "error: ", f.message.c_str());
        return f.status;
    }
}
