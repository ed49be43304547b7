// A short lilv host: loads a spinout plugin, applies one of its presets, plays
// a few notes and writes the result to a sound file.
//   LV2_PATH=build/lv2 build/examples/lilv_render urn:spinout:polysynth pad out.wav
#include <lilv/lilv.h>
#include <lv2/atom/atom.h>
#include <lv2/atom/util.h>
#include <lv2/midi/midi.h>
#include <lv2/urid/urid.h>
#include <sndfile.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

static std::map<std::string, LV2_URID> urids;
static LV2_URID mapUri(LV2_URID_Map_Handle, const char* uri) {
    return urids.emplace(uri, static_cast<LV2_URID>(urids.size() + 1)).first->second;
}

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s PLUGIN-URI PRESET OUT.wav\n", argv[0]);
        return 2;
    }
    const double sr = 48000;
    const uint32_t block = 512;
    LilvWorld* world = lilv_world_new();
    lilv_world_load_all(world);
    LilvNode* uri = lilv_new_uri(world, argv[1]);
    const LilvPlugin* plugin = lilv_plugins_get_by_uri(lilv_world_get_all_plugins(world), uri);
    if (plugin == nullptr) {
        std::fprintf(stderr, "no plugin %s (is LV2_PATH set?)\n", argv[1]);
        return 1;
    }
    LV2_URID_Map map{nullptr, mapUri};
    LV2_Feature mapFeature{LV2_URID__map, &map};
    const LV2_Feature* features[] = {&mapFeature, nullptr};
    LilvInstance* instance = lilv_plugin_instantiate(plugin, sr, features);

    // every port connected: audio to buffers, controls to their defaults, MIDI to a sequence
    const uint32_t n = lilv_plugin_get_num_ports(plugin);
    std::vector<float> controls(n), defaults(n);
    lilv_plugin_get_port_ranges_float(plugin, nullptr, nullptr, defaults.data());
    std::vector<std::vector<float>> outputs;
    std::vector<uint32_t> audioOut;
    alignas(8) static char events[8192];
    auto* seq = reinterpret_cast<LV2_Atom_Sequence*>(events);
    LilvNode* audioClass = lilv_new_uri(world, LV2_CORE__AudioPort);
    LilvNode* outputClass = lilv_new_uri(world, LV2_CORE__OutputPort);
    LilvNode* atomClass = lilv_new_uri(world, LV2_ATOM__AtomPort);
    std::vector<std::vector<float>> buffers(n, std::vector<float>(block));
    for (uint32_t i = 0; i < n; ++i) {
        const LilvPort* port = lilv_plugin_get_port_by_index(plugin, i);
        if (lilv_port_is_a(plugin, port, audioClass)) {
            lilv_instance_connect_port(instance, i, buffers[i].data());
            if (lilv_port_is_a(plugin, port, outputClass)) audioOut.push_back(i);
        } else if (lilv_port_is_a(plugin, port, atomClass)) {
            lilv_instance_connect_port(instance, i, lilv_port_is_a(plugin, port, outputClass) ? nullptr : events);
        } else {
            controls[i] = defaults[i];
            lilv_instance_connect_port(instance, i, &controls[i]);
        }
    }

    // the preset: its port values, set by symbol
    const std::string presetUri = std::string(argv[1]) + "#preset-" + argv[2];
    LilvNode* preset = lilv_new_uri(world, presetUri.c_str());
    lilv_world_load_resource(world, preset);
    if (LilvState* state = lilv_state_new_from_world(world, &map, preset)) {
        struct Ctx { const LilvPlugin* plugin; LilvWorld* world; std::vector<float>* controls; } ctx{plugin, world, &controls};
        lilv_state_restore(state, instance,
                           [](const char* symbol, void* data, const void* value, uint32_t, uint32_t) {
                               auto* c = static_cast<Ctx*>(data);
                               LilvNode* sym = lilv_new_string(c->world, symbol);
                               if (const LilvPort* p = lilv_plugin_get_port_by_symbol(c->plugin, sym))
                                   (*c->controls)[lilv_port_get_index(c->plugin, p)] = *static_cast<const float*>(value);
                               lilv_node_free(sym);
                           },
                           &ctx, 0, nullptr);
        lilv_state_free(state);
    } else {
        std::fprintf(stderr, "no preset %s\n", presetUri.c_str());
    }

    SF_INFO info{};
    info.samplerate = static_cast<int>(sr);
    info.channels = static_cast<int>(audioOut.size());
    info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
    SNDFILE* file = sf_open(argv[3], SFM_WRITE, &info);
    lilv_instance_activate(instance);
    const LV2_URID midiEvent = map.map(nullptr, LV2_MIDI__MidiEvent);
    const int chord[] = {57, 60, 64, 67};
    std::vector<float> interleaved(block * audioOut.size());
    for (uint32_t b = 0; b < 4 * sr / block; ++b) { // four seconds
        seq->atom.type = map.map(nullptr, LV2_ATOM__Sequence);
        seq->atom.size = sizeof(LV2_Atom_Sequence_Body);
        auto add = [&](uint8_t status, int key) {
            auto* ev = reinterpret_cast<LV2_Atom_Event*>(events + sizeof(LV2_Atom) + seq->atom.size);
            ev->time.frames = 0;
            ev->body.type = midiEvent;
            ev->body.size = 3;
            const uint8_t msg[3] = {status, static_cast<uint8_t>(key), 100};
            std::memcpy(ev + 1, msg, 3);
            seq->atom.size += lv2_atom_pad_size(sizeof(LV2_Atom_Event) + 3);
        };
        if (b == 0) for (int k : chord) add(0x90, k);
        if (b == static_cast<uint32_t>(2 * sr / block)) for (int k : chord) add(0x80, k);
        lilv_instance_run(instance, block);
        for (uint32_t i = 0; i < block; ++i)
            for (std::size_t c = 0; c < audioOut.size(); ++c) interleaved[i * audioOut.size() + c] = buffers[audioOut[c]][i];
        sf_writef_float(file, interleaved.data(), block);
    }
    sf_close(file);
    lilv_instance_deactivate(instance);
    lilv_instance_free(instance);
    for (LilvNode* node : {uri, preset, audioClass, outputClass, atomClass}) lilv_node_free(node);
    lilv_world_free(world);
    std::printf("%s: 4 s of %s with preset %s\n", argv[3], argv[1], argv[2]);
    return 0;
}
