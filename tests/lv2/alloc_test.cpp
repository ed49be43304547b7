// No heap allocation inside run(), for every shipped bundle, preset and host block
// size, under playing that reaches what a plain note storm does not: long release
// tails piling up, chords larger than the voice limit (stealing), the sustain pedal,
// pitch bend, CC and port sweeps, program changes; effects get audio and port sweeps;
// sessions with host time get time positions (tempo changes, stops, jumps). The counter
// starts 0.5 s in. SPINOUT_ALLOC_TRACE=1 prints the backtrace of each allocation.
// Any session can be put through it: `spinout bundle my.toml -o DIR`, then
// SPINOUT_ALLOC_LV2_PATH=DIR SPINOUT_ALLOC_SESSIONS=NAME build/tests/alloc_tests, where the
// plugin's URI is urn:spinout:NAME.
#include "alloc_counter.hpp"
#include "lilv_host.hpp"

#include "spinout/session_file.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <random>
#include <sstream>

namespace fs = std::filesystem;
using spinout::test::ControlPort;
using spinout::test::PluginInstance;

namespace {

const fs::path kBuild = SPINOUT_BUILD_DIR;
constexpr double kSr = 48000;
constexpr double kCountFrom = 0.5; // seconds
constexpr double kLength = 5.5;    // seconds

spinout::test::World& world() {
    static spinout::test::World w([] {
        std::string path = (kBuild / "lv2").string();
        if (const char* extra = std::getenv("SPINOUT_ALLOC_LV2_PATH"))
            path += ":" + std::string(extra);
        return path;
    }());
    return w;
}

std::vector<std::string> split(const std::string& list) {
    std::vector<std::string> out;
    std::stringstream ss(list);
    std::string item;
    while (std::getline(ss, item, ','))
        if (!item.empty()) out.push_back(item);
    return out;
}

struct Event {
    int64_t frame = 0;
    uint8_t data[3] = {0, 0, 0};
};

int64_t at(double seconds) {
    return static_cast<int64_t>(std::llround(seconds * kSr));
}

// What a player does to an instrument, after 0.5 s of nothing.
std::vector<Event> instrumentScore(int voices) {
    std::vector<Event> ev;
    auto msg = [&](double t, int status, int d1, int d2) {
        ev.push_back({at(t),
                      {static_cast<uint8_t>(status), static_cast<uint8_t>(d1 & 0x7F),
                       static_cast<uint8_t>(d2 & 0x7F)}});
    };
    auto note = [&](double t, double dur, int key, int vel) {
        msg(t, 0x90, key, vel);
        msg(t + dur, 0x80, key, 0);
    };
    // chords and a melody: four long notes under a C-major arpeggio
    for (int k : {48, 52, 55, 60})
        note(0.5, 2.0, k, 90);
    const int arp[] = {72, 76, 79, 84, 88, 91, 96, 91, 88, 84, 79, 76};
    for (int i = 0; i < 32; ++i)
        note(0.5 + 0.06 * i, 0.05, arp[i % 12], 40 + (i * 29) % 88);
    // pitch bend and CC sweeps (CCs bound to ports and others)
    for (double t = 1.0; t < 2.0; t += 0.005) {
        const int bend = static_cast<int>(8192 + 8191 * std::sin(2 * M_PI * 2 * (t - 1.0)));
        msg(t, 0xE0, bend & 0x7F, bend >> 7);
    }
    for (double t = 1.0; t < 2.0; t += 0.01) {
        const int v = static_cast<int>(std::fabs(std::fmod((t - 1.0) * 254, 254.0) - 127));
        for (int cc : {1, 7, 10, 11, 71, 72, 73, 74, 91, 93})
            msg(t, 0xB0, cc, v);
    }
    msg(2.0, 0xE0, 0, 64);
    // the sustain pedal: notes released under it, all let go at once
    msg(2.5, 0xB0, 64, 127);
    for (int i = 0; i < 12; ++i)
        note(2.5 + 0.04 * i, 0.03, 60 + i, 100);
    msg(3.0, 0xB0, 64, 0);
    // chords larger than the voice limit, twice: voices are stolen, keys retriggered
    for (int i = 0; i < voices + 8; ++i)
        note(3.1, 0.3, 24 + i % 90, 100);
    for (int i = 0; i < voices + 8; ++i)
        note(3.2, 0.2, 30 + i % 90, 80);
    // long release tails piling up (the ports are at their maximum from 3.5 s)
    for (int i = 0; i < 3 * voices; ++i)
        note(3.5 + i * (1.0 / (3 * voices)), 0.02, 36 + (i * 7) % 60, 110);
    // program changes through the presets (and past them), mid-note
    for (int i = 0; i < 8; ++i)
        ev.push_back({at(1.1 + 0.45 * i), {0xC0, static_cast<uint8_t>(i % 6), 0}});
    // all notes off, then a last chord
    msg(4.6, 0xB0, 123, 0);
    for (int k : {60, 64, 67})
        note(4.8, 0.5, k, 100);
    std::stable_sort(ev.begin(), ev.end(),
                     [](const Event& a, const Event& b) { return a.frame < b.frame; });
    return ev;
}

struct TimedPosition {
    int64_t frame = 0;
    spinout::test::Position position;
};

// What a host tells a session with host time: the transport starting, tempo and meter
// changes, positions at every 10 ms for a while (as hosts that send one each block),
// stops (speed alone) and starts, a jump back.
std::vector<TimedPosition> transport() {
    std::vector<TimedPosition> out;
    spinout::test::Position p;
    out.push_back({0, p});
    for (int i = 0; i < 100; ++i) { // 1 s to 2 s: every 10 ms, the tempo sliding
        p.bpm = 120 + i * 0.7;
        p.beat = 2 + i * 0.02 * p.bpm / 60;
        p.bar = static_cast<int64_t>(p.beat / 4);
        p.barBeat = p.beat - static_cast<double>(p.bar) * 4;
        p.frame = at(1.0 + i * 0.01);
        out.push_back({at(1.0 + i * 0.01), p});
    }
    spinout::test::Position stop;
    stop.full = false;
    stop.speed = 0;
    out.push_back({at(2.3), stop});
    p.bpm = 75; // in 7/8, rolling again
    p.beatsPerBar = 7;
    p.beatUnit = 8;
    out.push_back({at(2.6), p});
    out.push_back({at(3.4), stop});
    spinout::test::Position back; // a jump back to the start, at 200 bpm
    back.bpm = 200;
    out.push_back({at(3.6), back});
    return out;
}

float sweep(const ControlPort& c, double x) { // x in 0..1
    if (c.toggled) return x < 0.5 ? 0.0f : 1.0f;
    double v = c.logarithmic && c.min > 0 ? c.min * std::pow(c.max / c.min, x)
                                          : c.min + (c.max - c.min) * x;
    if (c.integer) v = std::round(v);
    return static_cast<float>(v);
}

// Port automation by a host: sweeps from 1 s, random jumps, then extremes.
void movePorts(PluginInstance& inst, const std::vector<float>& preset, double t, bool effect,
               std::mt19937& rng) {
    const auto& cs = inst.controls();
    for (std::size_t i = 0; i < cs.size(); ++i) {
        const auto& c = cs[i];
        float v = preset[i];
        const double phase = 0.5 + 0.5 * std::sin(2 * M_PI * (0.7 + 0.13 * i) * t);
        if (t >= 1.0 && t < 2.0)
            v = sweep(c, phase);
        else if (effect && t >= 2.0 && t < 3.0)
            v = sweep(c, std::uniform_real_distribution<double>(0, 1)(rng));
        else if (t >= 3.5 && t < 4.6)
            v = c.max; // the longest releases and decays
        else if (effect && t >= 4.6)
            v = c.min;
        inst.set(c, v);
    }
}

// An effect's input: a tone, noise bursts, clicks and silence.
float inputSample(int64_t frame, int ch) {
    const double t = static_cast<double>(frame) / kSr;
    const double tone = 0.3 * std::sin(2 * M_PI * (220 + 110 * ch) * t);
    const bool burst = std::fmod(t, 0.7) < 0.05;
    const uint32_t h = static_cast<uint32_t>(frame) * 2654435761u;
    const double noise = burst ? (static_cast<double>(h >> 8) / (1 << 24) - 0.5) : 0.0;
    const double click = frame % 12000 == 0 ? 0.9 : 0.0;
    const bool silent = t > 2.8 && t < 3.3;
    return silent ? 0.0f : static_cast<float>(tone + noise + click);
}

struct Result {
    long allocations = 0;
    float peak = 0;
    bool finite = true;
};

Result play(const std::string& name, const std::string& presetUri, uint32_t block) {
    auto& w = world();
    const LilvPlugin* plugin = w.plugin("urn:spinout:" + name);
    if (plugin == nullptr) throw std::runtime_error("no bundle for " + name);
    char* bundle =
        lilv_file_uri_parse(lilv_node_as_uri(lilv_plugin_get_bundle_uri(plugin)), nullptr);
    const auto sessionPath = fs::path(bundle) / "session.toml";
    lilv_free(bundle);
    std::ifstream in(sessionPath);
    std::stringstream text;
    text << in.rdbuf();
    const auto spec = spinout::parseSessionText(text.str(), sessionPath.string());
    const bool effect = !spec.midi.has_value();

    PluginInstance inst(w.world, plugin, kSr);
    if (!presetUri.empty() && !inst.applyPreset(w.world, presetUri))
        throw std::runtime_error("cannot load " + presetUri);
    std::vector<float> preset;
    for (const auto& c : inst.controls())
        preset.push_back(inst.get(c));
    const auto score = effect ? std::vector<Event>{} : instrumentScore(spec.midi->voices);
    const auto positions = spec.hostTime ? transport() : std::vector<TimedPosition>{};

    std::mt19937 rng(7);
    Result r;
    std::size_t next = 0, nextPosition = 0;
    alignas(8) uint8_t atom[512];
    const int64_t total = at(kLength);
    for (int64_t pos = 0; pos < total;) {
        const auto n = static_cast<uint32_t>(std::min<int64_t>(block, total - pos));
        const double t = static_cast<double>(pos) / kSr;
        for (; nextPosition < positions.size() && positions[nextPosition].frame < pos + n;
             ++nextPosition)
            inst.midi().add(positions[nextPosition].frame - pos,
                            spinout::test::forgePosition(&inst.host().mapF,
                                                         positions[nextPosition].position, atom,
                                                         sizeof atom));
        for (; next < score.size() && score[next].frame < pos + n; ++next)
            inst.midi().add(score[next].frame - pos, score[next].data,
                            (score[next].data[0] & 0xF0) == 0xC0 ? 2 : 3);
        movePorts(inst, preset, t, effect, rng);
        for (std::size_t ch = 0; ch < inst.numInputs(); ++ch)
            for (uint32_t i = 0; i < n; ++i)
                inst.input(ch)[i] = inputSample(pos + i, static_cast<int>(ch));
        // every block that holds a frame from 0.5 s on
        const bool counted = static_cast<double>(pos + n) / kSr > kCountFrom;
        if (counted) alloc_counter::counting = true;
        inst.run(n);
        alloc_counter::counting = false;
        inst.host().runWorker();
        if (counted)
            for (std::size_t ch = 0; ch < inst.numOutputs(); ++ch)
                for (uint32_t i = 0; i < n; ++i) {
                    const float v = inst.output(ch)[i];
                    r.finite = r.finite && std::isfinite(v);
                    r.peak = std::max(r.peak, std::fabs(v));
                }
        pos += n;
    }
    r.allocations = alloc_counter::count.load();
    return r;
}

struct Case {
    std::string plugin;
    uint32_t block;
};

void PrintTo(const Case& c, std::ostream* os) {
    *os << c.plugin << " at blocks of " << c.block;
}

std::vector<Case> cases() {
    std::vector<Case> out;
    const char* only = std::getenv("SPINOUT_ALLOC_SESSIONS");
    for (const auto& name : split(only != nullptr ? only : SPINOUT_SHIPPED))
        for (uint32_t block : {1u, 64u, 333u, 4096u})
            out.push_back({name, block});
    return out;
}

class AllocInRun : public ::testing::TestWithParam<Case> {};

TEST_P(AllocInRun, NoneFromHalfASecondOnForEveryPreset) {
    const auto& c = GetParam();
    const LilvPlugin* plugin = world().plugin("urn:spinout:" + c.plugin);
    ASSERT_NE(plugin, nullptr) << "no bundle for urn:spinout:" << c.plugin;
    auto presets = spinout::test::presetsOf(world().world, plugin);
    ASSERT_FALSE(presets.empty()) << c.plugin << " has no named preset";
    presets.insert(presets.begin(), ""); // the defaults
    for (const auto& preset : presets) {
        const auto label = preset.empty() ? "defaults" : preset.substr(preset.find('#') + 1);
        const auto t0 = std::chrono::steady_clock::now();
        alloc_counter::count = 0;
        alloc_counter::numTraces = 0;
        const auto r = play(c.plugin, preset, c.block);
        const double secs =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf("%s %s block %u: %ld allocations in run(), %.2f s\n", c.plugin.c_str(),
                    label.c_str(), c.block, r.allocations, secs);
        EXPECT_EQ(r.allocations, 0) << c.plugin << " " << label << " at blocks of " << c.block;
        if (r.allocations > 0 && alloc_counter::tracing) alloc_counter::printTraces();
        EXPECT_TRUE(r.finite) << c.plugin << " " << label;
        EXPECT_GT(r.peak, 1e-4) << c.plugin << " " << label << ": it played";
    }
}

INSTANTIATE_TEST_SUITE_P(Bundles, AllocInRun, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                             return fmt::format("{}_block{}", info.param.plugin, info.param.block);
                         });

} // namespace

int main(int argc, char** argv) {
    alloc_counter::init();
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
