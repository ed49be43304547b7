// The host's tempo and transport, and program changes, through lilv as a host sends them:
// time:Position objects at frames of a block, MIDI program changes; and `spinout render`
// giving the same samples from a MIDI file's tempo map and program changes.
#include "render.hpp"

#include "spinout/sound_file.hpp"

#include "lilv_host.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>

using namespace spinout;
namespace fs = std::filesystem;
namespace t = spinout::test;

namespace {

const fs::path kRoot = SPINOUT_SOURCE_DIR;
const fs::path kBuild = SPINOUT_BUILD_DIR;
constexpr double kSr = 48000;
constexpr int kLatency = 64; // ksmps of the sessions here

t::World& shipped() {
    static t::World w((kBuild / "lv2").string());
    return w;
}

// The probe session's bundle (tests/fixtures/tempo/probe.toml), made with `spinout bundle`.
t::World& probeWorld() {
    static t::World w([] {
        const auto dir = fs::temp_directory_path() / "spinout_tempo_probe";
        fs::remove_all(dir);
        const auto cmd =
            fmt::format("LV2_PATH='{}' '{}' bundle '{}' -o '{}' > /dev/null",
                        (dir / "none").string(), (kBuild / "spinout").string(),
                        (kRoot / "tests/fixtures/tempo/probe.toml").string(), dir.string());
        if (std::system(cmd.c_str()) != 0) throw std::runtime_error("cannot bundle the probe");
        return dir.string();
    }());
    return w;
}

struct TimedPosition {
    int64_t frame = 0;
    t::Position position;
};

struct TimedMessage {
    int64_t frame = 0;
    std::vector<uint8_t> bytes;
};

// Runs `inst` for `frames` in blocks of the given sizes (in turn): each position and MIDI
// message goes into the block that holds its frame; `input` fills every input channel.
// Returns every output channel, interleaved.
std::vector<float> play(t::PluginInstance& inst, int64_t frames,
                        const std::vector<uint32_t>& blocks,
                        const std::vector<TimedPosition>& positions,
                        const std::vector<TimedMessage>& midi = {},
                        const std::function<float(int64_t)>& input = {}) {
    std::vector<float> out;
    std::size_t pi = 0, mi = 0, bi = 0;
    alignas(8) uint8_t buf[1024];
    for (int64_t pos = 0; pos < frames;) {
        const auto n =
            static_cast<uint32_t>(std::min<int64_t>(blocks[bi++ % blocks.size()], frames - pos));
        // at one frame the position goes first, as the renderer hands them over
        for (; pi < positions.size() && positions[pi].frame < pos + n; ++pi)
            inst.midi().add(
                positions[pi].frame - pos,
                t::forgePosition(&inst.host().mapF, positions[pi].position, buf, sizeof buf));
        for (; mi < midi.size() && midi[mi].frame < pos + n; ++mi)
            inst.midi().add(midi[mi].frame - pos, midi[mi].bytes.data(),
                            static_cast<uint32_t>(midi[mi].bytes.size()));
        for (std::size_t ch = 0; ch < inst.numInputs(); ++ch)
            for (uint32_t i = 0; i < n; ++i)
                inst.input(ch)[i] = input ? input(pos + i) : 0.0f;
        inst.run(n);
        inst.host().runWorker();
        for (uint32_t i = 0; i < n; ++i)
            for (std::size_t ch = 0; ch < inst.numOutputs(); ++ch)
                out.push_back(inst.output(ch)[i]);
        pos += n;
    }
    return out;
}

// A standard MIDI file (format 0, 480 ticks a quarter): tempo changes (tick, bpm) and
// channel messages (tick, bytes).
void writeMidi(const fs::path& path, const std::vector<std::pair<int, double>>& tempi,
               std::vector<std::pair<int, std::vector<uint8_t>>> events) {
    for (const auto& [tick, bpm] : tempi) {
        const auto us = static_cast<uint32_t>(std::lround(60e6 / bpm));
        events.push_back({tick,
                          {0xFF, 0x51, 0x03, static_cast<uint8_t>(us >> 16),
                           static_cast<uint8_t>(us >> 8), static_cast<uint8_t>(us)}});
    }
    // meta events (tempo) first at a tick: the reader knows the tempo of what follows
    using Event = std::pair<int, std::vector<uint8_t>>;
    std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
        const bool aMeta = a.second[0] == 0xFF, bMeta = b.second[0] == 0xFF;
        return a.first != b.first ? a.first < b.first : aMeta && !bMeta;
    });
    std::string track;
    int last = 0;
    auto vlq = [&](uint32_t v) {
        std::string s(1, static_cast<char>(v & 0x7F));
        while (v >>= 7)
            s.insert(s.begin(), static_cast<char>(0x80 | (v & 0x7F)));
        track += s;
    };
    for (const auto& [tick, bytes] : events) {
        vlq(static_cast<uint32_t>(tick - last));
        last = tick;
        track.append(bytes.begin(), bytes.end());
    }
    track += std::string("\x00\xFF\x2F\x00", 4);
    auto be = [](uint32_t v, int n) {
        std::string s;
        for (int i = n - 1; i >= 0; --i)
            s += static_cast<char>((v >> (8 * i)) & 0xFF);
        return s;
    };
    std::ofstream(path, std::ios::binary)
        << "MThd" << be(6, 4) << be(0, 2) << be(1, 2) << be(480, 2) << "MTrk"
        << be(static_cast<uint32_t>(track.size()), 4) << track;
}

// Channel `ch` of interleaved samples.
std::vector<float> channel(const std::vector<float>& x, std::size_t nch, std::size_t ch) {
    std::vector<float> out;
    for (std::size_t i = ch; i < x.size(); i += nch)
        out.push_back(x[i]);
    return out;
}

// The first frame from `from` on where |x| passes `threshold`; -1 if none.
int64_t onset(const std::vector<float>& x, int64_t from, float threshold = 0.05f) {
    for (auto i = static_cast<std::size_t>(from); i < x.size(); ++i)
        if (std::fabs(x[i]) > threshold) return static_cast<int64_t>(i);
    return -1;
}

} // namespace

// ---- The host's time reaches the session's channels, at the positions' frames ----

// What the probe's channels must hold in each cycle: positions land in the cycle that
// holds their frame, as they stood at its start, and move on by themselves while rolling.
TEST(Tempo, TimePositionsSetTheHostChannelsAtTheirFrames) {
    const int64_t frames = 24000;
    // rolling at 90 from frame 1000; stopped (speed alone) at 9000; at 150 in 3/4 from 15000,
    // just before a bar line
    t::Position a;
    a.bpm = 90;
    a.bar = 2;
    a.barBeat = 1;
    a.beat = 9;
    a.frame = 123456;
    t::Position stop;
    stop.full = false;
    stop.speed = 0;
    t::Position b;
    b.bpm = 150;
    b.bar = 7;
    b.barBeat = 2.875;
    b.beatsPerBar = 3;
    b.beat = 23.875;
    b.frame = 200000;
    const std::vector<TimedPosition> positions = {{1000, a}, {9000, stop}, {15000, b}};

    struct Expect {
        double beat, bar, barBeat, bpm, playing, seconds, perBar;
    };
    const double step90 = 1.5 * 64 / kSr, step150 = 2.5 * 64 / kSr;
    auto expected = [&](int64_t k) -> Expect { // cycle k: frames 64k .. 64k + 63
        if (k < 15) return {0, 0, 0, 120, 0, 0, 4};
        auto rolling90 = [&](int64_t j) {
            const double back = 1.5 * (1000 - 960) / kSr;
            const double d = static_cast<double>(j - 15) * step90;
            return Expect{9 - back + d,
                          2,
                          1 - back + d,
                          90,
                          1,
                          (123456.0 - 40) / kSr + static_cast<double>(j - 15) * 64 / kSr,
                          4};
        };
        if (k < 140) return rolling90(k);
        if (k < 234) {
            auto e = rolling90(140); // stopped where cycle 140 began
            e.playing = 0;
            return e;
        }
        const double back = 2.5 * (15000 - 14976) / kSr;
        const double d = static_cast<double>(k - 234) * step150;
        double barBeat = 2.875 - back + d, bar = 7;
        if (barBeat >= 3) {
            barBeat -= 3;
            bar = 8;
        }
        return {23.875 - back + d,
                bar,
                barBeat,
                150,
                1,
                (200000.0 - 24) / kSr + static_cast<double>(k - 234) * 64 / kSr,
                3};
    };

    const LilvPlugin* plugin = probeWorld().plugin("urn:spinout:test-hosttime");
    ASSERT_NE(plugin, nullptr);
    for (const std::vector<uint32_t>& blocks :
         {std::vector<uint32_t>{64}, {1}, {333}, {4096}, {17, 256, 3, 1000}}) {
        t::PluginInstance inst(probeWorld().world, plugin, kSr);
        ASSERT_EQ(inst.numOutputs(), 8u);
        const auto out = play(inst, frames, blocks, positions);
        int wrong = 0;
        bool sawBarLine = false;
        for (int64_t k = 0; (k + 2) * 64 <= frames; ++k) {
            // the output is one cycle (the latency) behind
            const auto at = static_cast<std::size_t>((k + 1) * 64 + 10) * 8;
            const auto e = expected(k);
            const double got[] = {out[at],     out[at + 1], out[at + 2], out[at + 3],
                                  out[at + 4], out[at + 5], out[at + 6], out[at + 7]};
            const double want[] = {e.beat,    e.bar,     e.barBeat, e.bpm,
                                   e.playing, e.seconds, e.perBar,  4};
            for (int c = 0; c < 8; ++c)
                if (std::fabs(got[c] - want[c]) > 1e-5 * std::max(1.0, std::fabs(want[c])) &&
                    wrong++ < 5)
                    ADD_FAILURE() << "blocks of " << blocks.front() << ", cycle " << k
                                  << ", output " << c + 1 << ": " << got[c] << ", not " << want[c];
            sawBarLine = sawBarLine || e.bar == 8;
        }
        EXPECT_EQ(wrong, 0) << "blocks of " << blocks.front();
        EXPECT_TRUE(sawBarLine);
    }
}

// ---- A tempo-synced delay: the echo of a click comes 60 / bpm x beats later ----

namespace {

// The stereo delay in sync to an eighth note, wet alone, one echo, no filtering.
void syncedEighths(t::PluginInstance& inst) {
    const std::pair<const char*, float> ports[] = {
        {"sync", 1}, {"note", 5},     {"ratio", 1},       {"feedback", 0},
        {"mix", 1},  {"pingpong", 0}, {"damping", 18000}, {"lowcut", 20}};
    for (const auto& [symbol, value] : ports)
        inst.set(symbol, value);
}

const std::vector<std::pair<std::string, double>> kSyncedEighths = {
    {"sync", 1}, {"note", 5},     {"ratio", 1},       {"feedback", 0},
    {"mix", 1},  {"pingpong", 0}, {"damping", 18000}, {"lowcut", 20}};

constexpr int64_t kClickA = 24000, kClickB = 192000; // 0.5 s and 4 s

float clicks(int64_t frame) {
    return frame == kClickA || frame == kClickB ? 0.5f : 0.0f;
}

fs::path clickFile() {
    const auto path = fs::temp_directory_path() / "spinout_tempo_clicks.wav";
    SoundFileWriter w(path.string(), 48000, 2);
    std::vector<double> buf(2 * 240000, 0.0);
    for (const auto f : {kClickA, kClickB})
        buf[static_cast<std::size_t>(2 * f)] = buf[static_cast<std::size_t>(2 * f + 1)] = 0.5;
    w.write(buf.data(), 240000);
    w.commit();
    return path;
}

// The transport rolling from 0 at 120, at 96 from 2 s (beat 4, bar 1): what the
// renderer reads from a MIDI file with that tempo map (96 bpm is a whole number of
// microseconds a quarter, as a MIDI file states a tempo).
std::vector<TimedPosition> tempoChange() {
    t::Position start;
    t::Position change;
    change.bpm = 96;
    change.beat = 4;
    change.bar = 1;
    change.frame = 96000;
    return {{0, start}, {96000, change}};
}

} // namespace

TEST(Tempo, ASyncedDelaysEchoLandsAtTheNoteValueForTwoTempiInThePlugin) {
    const LilvPlugin* plugin = shipped().plugin("urn:spinout:stereodelay");
    ASSERT_NE(plugin, nullptr);
    for (const std::vector<uint32_t>& blocks :
         {std::vector<uint32_t>{512}, {1}, {17, 256, 3, 1000}}) {
        t::PluginInstance inst(shipped().world, plugin, kSr);
        syncedEighths(inst);
        const auto out = play(inst, 240000, blocks, tempoChange(), {}, clicks);
        const auto left = channel(out, 2, 0);
        // an eighth at 120 bpm: 0.25 s; at 96 bpm: 0.3125 s (the plugin's output is 64
        // frames late); one echo each (no feedback)
        EXPECT_EQ(onset(left, kClickA), kClickA + 12000 + kLatency) << blocks.front();
        EXPECT_EQ(onset(left, kClickA + 12000 + kLatency + 100), kClickB + 15000 + kLatency)
            << blocks.front();
    }
}

TEST(Tempo, ASyncedDelaysEchoLandsAtTheNoteValueForTwoTempiInARender) {
    for (const double bpm : {120.0, 90.0}) {
        RenderJob job;
        job.session = (kRoot / "presets/stereodelay.toml").string();
        job.input = clickFile().string();
        job.sets = kSyncedEighths;
        job.bpm = bpm;
        job.keepSamples = true;
        job.tail = 0;
        const auto left = channel(render(job).samples, 2, 0);
        const auto echo = static_cast<int64_t>(std::llround(0.5 * 60 / bpm * kSr));
        EXPECT_EQ(onset(left, kClickA), kClickA + echo) << bpm;
        EXPECT_EQ(onset(left, kClickB), kClickB + echo) << bpm;
    }
}

// `spinout render` with a MIDI file whose tempo changes: the echo follows the tempo map,
// and the render is the plugin's output fed the same positions, sample for sample.
TEST(Tempo, ARenderWithAMidiTempoChangeIsThePluginFedTheSamePositions) {
    const auto midiPath = fs::temp_directory_path() / "spinout_tempo_change.mid";
    writeMidi(midiPath, {{0, 120}, {1920, 96}}, {}); // 96 from beat 4 (2 s)
    RenderJob job;
    job.session = (kRoot / "presets/stereodelay.toml").string();
    job.input = clickFile().string();
    job.midi = midiPath.string();
    job.sets = kSyncedEighths;
    job.keepSamples = true;
    job.tail = 0;
    const auto rendered = render(job).samples;
    ASSERT_EQ(rendered.size(), 2u * 240000);
    const auto left = channel(rendered, 2, 0);
    EXPECT_EQ(onset(left, kClickA), kClickA + 12000); // an eighth at 120: 0.25 s
    EXPECT_EQ(onset(left, kClickB), kClickB + 15000); // at 96: 0.3125 s

    t::PluginInstance inst(shipped().world, shipped().plugin("urn:spinout:stereodelay"), kSr);
    syncedEighths(inst);
    const auto out = play(inst, 240000 + kLatency, {17, 256, 3, 1000}, tempoChange(), {}, clicks);
    EXPECT_EQ(std::vector<float>(out.begin() + 2 * kLatency, out.end()), rendered);
}

// The positions the renderer sends from a tempo map and meter: a host's, in LV2's beats.
TEST(Tempo, TheRenderersTransportFollowsATempoMapAndMeter) {
    const TempoChange tempo[] = {{0, 0, 120}, {2, 4, 90}};
    const double sevenEighths = 2 + 4 * 60.0 / 90; // two bars of 4/4 in
    const MeterChange meter[] = {{0, 0, 4, 4}, {sevenEighths, 8, 7, 8}};
    const auto p = transportOf(tempo, meter, 48000);
    ASSERT_EQ(p.size(), 3u);
    EXPECT_EQ(p[0].frame, 0);
    EXPECT_EQ(p[0].time.fields, HostTime::allFields);
    EXPECT_EQ(p[0].time.bpm, 120);
    EXPECT_EQ(p[0].time.speed, 1);
    EXPECT_EQ(p[1].frame, 96000);
    EXPECT_EQ(p[1].time.bpm, 90);
    EXPECT_DOUBLE_EQ(p[1].time.beat, 4);
    EXPECT_DOUBLE_EQ(p[1].time.bar, 1);
    EXPECT_DOUBLE_EQ(p[1].time.barBeat, 0);
    EXPECT_EQ(p[2].frame, 224000);
    EXPECT_DOUBLE_EQ(p[2].time.bpm, 180); // eighths a minute
    EXPECT_DOUBLE_EQ(p[2].time.beat, 8);
    EXPECT_DOUBLE_EQ(p[2].time.bar, 2);
    EXPECT_DOUBLE_EQ(p[2].time.barBeat, 0);
    EXPECT_EQ(p[2].time.beatsPerBar, 7);
    EXPECT_EQ(p[2].time.beatUnit, 8);
    EXPECT_EQ(p[2].time.frame, 224000);
    // nothing given: 120 in 4/4 from the start
    const auto steady = transportOf({}, {}, 44100);
    ASSERT_EQ(steady.size(), 1u);
    EXPECT_EQ(steady[0].time.bpm, 120);
    EXPECT_EQ(steady[0].time.beatsPerBar, 4);
}

// ---- Program changes: the N-th preset at its frame, in the plugin and in a render ----

TEST(Programs, AProgramChangeAppliesThePresetAtItsFrameAsARenderDoes) {
    // polysynth's presets in file order: bright, pad, bass, pluck
    const auto midiPath = fs::temp_directory_path() / "spinout_programs.mid";
    std::vector<std::pair<int, std::vector<uint8_t>>> events;
    std::vector<TimedMessage> messages;
    auto add = [&](int tick, std::vector<uint8_t> bytes) {
        events.push_back({tick, bytes});
        messages.push_back({tick * 50, bytes}); // a tick is 1/960 s at 120 bpm: 50 frames
    };
    for (int i = 0; i < 8; ++i) {
        add(i * 240, {0x90, static_cast<uint8_t>(57 + 3 * i), 100});
        add(i * 240 + 200, {0x80, static_cast<uint8_t>(57 + 3 * i), 0});
    }
    add(700, {0xC0, 3});  // pluck, mid-note
    add(1000, {0xC1, 0}); // bright, on another channel
    add(1400, {0xC0, 9}); // past the last preset: nothing
    add(1700, {0xC0, 2}); // bass
    std::stable_sort(messages.begin(), messages.end(),
                     [](const auto& a, const auto& b) { return a.frame < b.frame; });
    writeMidi(midiPath, {{0, 120}}, events);

    RenderJob job;
    job.session = (kRoot / "presets/polysynth.toml").string();
    job.midi = midiPath.string();
    job.keepSamples = true;
    job.duration = 2.5;
    job.tail = 0;
    const auto rendered = render(job).samples;

    const LilvPlugin* plugin = shipped().plugin("urn:spinout:polysynth");
    ASSERT_NE(plugin, nullptr);
    const int64_t frames = 120000 + kLatency;
    for (const std::vector<uint32_t>& blocks :
         {std::vector<uint32_t>{512}, {1}, {17, 256, 3, 1000}}) {
        t::PluginInstance inst(shipped().world, plugin, kSr);
        const auto out = play(inst, frames, blocks, {}, messages);
        // the plugin's output is the render, 64 frames late
        EXPECT_EQ(std::vector<float>(out.begin() + 2 * kLatency, out.end()), rendered)
            << "blocks of " << blocks.front();
    }
    // and the change is heard from the cycle that holds its frame (35000; the cycle starts
    // at 34944): the same notes without it sound the same before, and differ after
    auto without = messages;
    std::erase_if(without, [](const auto& m) { return (m.bytes[0] & 0xF0) == 0xC0; });
    t::PluginInstance plain(shipped().world, plugin, kSr);
    const auto reference = play(plain, frames, {512}, {}, without);
    const std::size_t change = 2 * (34944 + kLatency);
    const auto quiet = std::vector<float>(reference.begin(), reference.begin() + change);
    EXPECT_EQ(std::vector<float>(rendered.begin(), rendered.begin() + change - 2 * kLatency),
              std::vector<float>(quiet.begin() + 2 * kLatency, quiet.end()));
    double diff = 0;
    for (std::size_t i = change; i < reference.size(); ++i)
        diff = std::max(diff,
                        std::fabs(static_cast<double>(reference[i]) - rendered[i - 2 * kLatency]));
    EXPECT_GT(diff, 0.01);
}

// ---- What the shipped effects' ports became ----

TEST(Tempo, TheShippedEffectsKeepTheirPortIndicesAndTakeTimeLast) {
    const std::vector<std::pair<std::string, std::vector<std::string>>> layouts = {
        {"stereodelay",
         {"in_1", "in_2", "out_1", "out_2", "latency", "time", "ratio", "feedback", "damping",
          "lowcut", "mix", "pingpong", "sync", "note", "events"}},
        {"lfofilter",
         {"in_1", "in_2", "out_1", "out_2", "latency", "rate", "depth", "shape", "phase", "cutoff",
          "resonance", "mode", "mix", "sync", "note", "events"}}};
    auto* w = shipped().world;
    LilvNode* supports = lilv_new_uri(w, LV2_ATOM__supports);
    LilvNode* position = lilv_new_uri(w, LV2_TIME__Position);
    LilvNode* optional = lilv_new_uri(w, LV2_CORE__connectionOptional);
    for (const auto& [name, symbols] : layouts) {
        const LilvPlugin* plugin = shipped().plugin("urn:spinout:" + name);
        ASSERT_NE(plugin, nullptr);
        ASSERT_EQ(lilv_plugin_get_num_ports(plugin), symbols.size()) << name;
        for (uint32_t i = 0; i < symbols.size(); ++i)
            EXPECT_STREQ(lilv_node_as_string(lilv_port_get_symbol(
                             plugin, lilv_plugin_get_port_by_index(plugin, i))),
                         symbols[i].c_str())
                << name << " port " << i;
        const LilvPort* time =
            lilv_plugin_get_port_by_index(plugin, static_cast<uint32_t>(symbols.size() - 1));
        LilvNodes* types = lilv_port_get_value(plugin, time, supports);
        EXPECT_TRUE(lilv_nodes_contains(types, position)) << name;
        lilv_nodes_free(types);
        EXPECT_TRUE(lilv_port_has_property(plugin, time, optional)) << name;
    }
    lilv_node_free(optional);
    lilv_node_free(position);
    lilv_node_free(supports);
}
