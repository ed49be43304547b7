// Attacks on the core as an outsider makes them: each test shows one bug found in the
// score reader, the score feeder, the session's cycle or the .csd export. They fail on
// the main they were written against (see each test's comment for what it shows and
// what was measured); they pass once the bug is fixed.
#include "../common/files.hpp"
#include "spinout/processor.hpp"
#include "spinout/session_file.hpp"
#include "spinout/sound_file.hpp"

#include "../common/analysis.hpp"
#include "../common/command.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using namespace spinout;
namespace fs = std::filesystem;
using spinout::test::writeFile;
namespace t = spinout::test;

namespace {

constexpr int kSr = 48000;

// Constant levels, so that when a note sounds is read off the samples: "dc" plays
// klevel while it lasts (a(k) ramps from the previous cycle's value, so the first
// sample of a note is not 0 unless it starts at a cycle's start from silence), "sine"
// is a MIDI voice, "busdc" plays a control bus; a port drives dc.klevel.
const char* kSession = R"([session]
name = "Attack"
uri = "urn:spinout:test-attack"
kind = "instrument"
audio_outputs = 1

[engine]
ksmps = 64

[table.tone]
file = "tone.wav"

[instr.sine]
body = '''
|kpitch=60, kamp=0.2|
aenv = linsegr:a(0, 0.001, 1, 0.01, 0)
outch 1, oscili:a(kamp, mtof:k(kpitch)) * aenv
'''

[instr.dc]
body = '''
|klevel=0.5|
aone init 1
outch 1, aone * klevel
'''

[bus.lfo]
kind = "control"
value = 0

[[port]]
symbol = "level"
target = "dc.klevel"
min = 0
max = 1
default = 0.5

[midi]
instr = "sine"
pitch = "kpitch"
velocity = "kamp"
voices = 8
)";

// one folder per test process: ctest runs tests in parallel, and each writes the session
fs::path dir() {
    const auto d = fs::temp_directory_path() / fmt::format("spinout_attack_test_{}", ::getpid());
    fs::create_directories(d);
    return d;
}

// A mono 16-bit WAV of a decaying 440 Hz sine, half a second.
void writeTone(const fs::path& path) {
    const int frames = kSr / 2;
    std::string data;
    for (int i = 0; i < frames; ++i) {
        const auto v = static_cast<std::int16_t>(12000 * std::sin(2 * M_PI * 440 * i / kSr) *
                                                 (1.0 - static_cast<double>(i) / frames));
        data += static_cast<char>(v & 0xff);
        data += static_cast<char>((v >> 8) & 0xff);
    }
    auto u32 = [](std::uint32_t v) {
        return std::string{static_cast<char>(v), static_cast<char>(v >> 8),
                           static_cast<char>(v >> 16), static_cast<char>(v >> 24)};
    };
    auto u16 = [](std::uint16_t v) {
        return std::string{static_cast<char>(v), static_cast<char>(v >> 8)};
    };
    const std::string wav = "RIFF" + u32(36 + static_cast<std::uint32_t>(data.size())) +
                            "WAVEfmt " + u32(16) + u16(1) + u16(1) + u32(kSr) + u32(kSr * 2) +
                            u16(2) + u16(16) + "data" +
                            u32(static_cast<std::uint32_t>(data.size())) + data;
    writeFile(path, wav);
}

// The session in the scratch folder (with its tone.wav), returned as its path.
fs::path session() {
    const auto path = dir() / "attack.toml";
    writeFile(path, kSession);
    writeTone(dir() / "tone.wav");
    return path;
}

fs::path score(const std::string& name, const std::string& text) {
    const auto path = dir() / (name + ".score.toml");
    writeFile(path, text);
    return path;
}

std::vector<double> readMono(const fs::path& path) {
    const auto a = readSoundFile(path.string());
    return t::mono(a);
}

std::int64_t firstNonZero(const std::vector<double>& x) {
    for (std::size_t i = 0; i < x.size(); ++i)
        if (x[i] != 0) return static_cast<std::int64_t>(i);
    return -1;
}

std::int64_t lastNonZero(const std::vector<double>& x) {
    for (std::size_t i = x.size(); i-- > 0;)
        if (x[i] != 0) return static_cast<std::int64_t>(i);
    return -1;
}

// `spinout render` of the session with a score; the samples, or empty when it failed.
struct Rendered {
    t::Run run;
    std::vector<double> samples;
};
Rendered render(const fs::path& scorePath, const std::string& extra = "") {
    const auto out = dir() / (scorePath.stem().string() + ".wav");
    fs::remove(out);
    Rendered r;
    r.run = t::run(fmt::format("render '{}' --score '{}' {} -o '{}'", session().string(),
                               scorePath.string(), extra, out.string()));
    if (r.run.status == 0 && fs::exists(out)) r.samples = readMono(out);
    return r;
}

// The csound command on `spinout csd` of the same score.
std::vector<double> csoundOfCsd(const fs::path& scorePath, const std::string& extra = "") {
    const auto csd = dir() / (scorePath.stem().string() + ".csd");
    const auto out = dir() / (scorePath.stem().string() + ".csound.wav");
    fs::remove(out);
    const auto r = t::run(fmt::format("csd '{}' --score '{}' {} -o '{}'", session().string(),
                                      scorePath.string(), extra, csd.string()));
    EXPECT_EQ(r.status, 0) << r.output;
    const auto cmd = fmt::format("cd '{}' && csound -o '{}' '{}' > '{}.log' 2>&1", dir().string(),
                                 out.string(), csd.string(), csd.string());
    EXPECT_EQ(std::system(cmd.c_str()), 0) << "csound failed on " << csd;
    return fs::exists(out) ? readMono(out) : std::vector<double>{};
}

double maxDifference(const std::vector<double>& a, const std::vector<double>& b) {
    double worst = a.size() == b.size() ? 0.0 : 1.0;
    for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i)
        worst = std::max(worst, std::fabs(a[i] - b[i]));
    return worst;
}

} // namespace

// Shows: the score splitter cuts `[event.args]` (a TOML subtable of the last [[event]])
// into a part of its own, so a valid TOML file is refused: "'event' must be an array of
// tables". Measured: exit 1.
TEST(Attack, EventArgsWrittenAsASubtableAfterTheEventHeader) {
    const auto s = score("subtable", R"([[event]]
instr = "dc"
time = 0
dur = 0.1
[event.args]
klevel = 0.25
)");
    const auto r = render(s, "--tail 0");
    ASSERT_EQ(r.run.status, 0) << r.run.output;
    ASSERT_FALSE(r.samples.empty());
    EXPECT_NEAR(r.samples[1000], 0.25, 1e-6);
}

// Shows: an event that starts inside the first control cycle (0 < frame < ksmps) starts
// at frame 0 and ends up to a cycle late: the negative delay that places an event inside
// its cycle has no earlier cycle to count from. Measured at ksmps 64: the event at frame
// 48 sounds 0..24063 (csound on the .csd: 48..24047); at ksmps 4096 an event at 0.05 s
// sounds from 0. The same for a MIDI note in the first cycle.
TEST(Attack, EventInTheFirstCycleStartsAtItsFrame) {
    const auto s = score("firstcycle", R"([[event]]
instr = "dc"
time = 0.001
dur = 0.5
)");
    const auto r = render(s, "--duration 1");
    ASSERT_EQ(r.run.status, 0) << r.run.output;
    EXPECT_EQ(firstNonZero(r.samples), 48);
    EXPECT_EQ(lastNonZero(r.samples), 48 + 24000 - 1);
}

// Shows: an event whose end falls on a cycle boundary plays one whole cycle more (the
// quarter sample added to every start pushes the end past the boundary). Measured at
// ksmps 64: time 1.0, dur 0.5 sounds 48000..72063 (csound on a plain score `i 1 1.0 0.5`:
// 48000..71999); frame 48010 for 23990 frames ends at 72063, not 71999; render and its
// .csd agree with each other, so back-to-back notes on the beat overlap by a cycle.
TEST(Attack, EventEndingOnACycleBoundaryEndsThere) {
    const auto s = score("boundaryend", R"([[event]]
instr = "dc"
time = 1.0
dur = 0.5

[[event]]
instr = "dc"
time = 2.0
dur = 0.25
args = { klevel = 0.25 }
)");
    const auto r = render(s, "--duration 3");
    ASSERT_EQ(r.run.status, 0) << r.run.output;
    ASSERT_EQ(r.samples.size(), 3u * kSr);
    EXPECT_EQ(firstNonZero(r.samples), 48000);
    EXPECT_EQ(r.samples[71999], 0.5);
    EXPECT_EQ(r.samples[72000], 0.0) << "the note plays past its end";
    EXPECT_EQ(r.samples[107999], 0.25);
    EXPECT_EQ(r.samples[108000], 0.0) << "the note plays past its end";
}

// Shows: a [[sample]] that starts after time 0 at ksmps 128 or more kills the render with
// SIGSEGV inside Csound (loscilx, the sample player's opcode, handed an event with a
// negative delay; ksmps 16..100 are fine). A session whose MIDI voice uses loscilx
// crashes the same way, so the plugin would take its host down. Measured: exit 139 at
// ksmps 128, 256, 512, 1024, 2048, 4096, 8192.
TEST(Attack, SampleAtKsmps128AndAboveDoesNotCrash) {
    const auto s = score("samplek128", R"([[sample]]
table = "tone"
time = 0.3
)");
    for (int ksmps : {128, 8192}) {
        const auto r = render(s, fmt::format("--ksmps {} --duration 1", ksmps));
        ASSERT_EQ(r.run.status, 0) << "ksmps " << ksmps << ": " << r.run.output;
        EXPECT_GT(t::peak(std::span<const double>(r.samples).subspan(14400, 4800)), 0.1)
            << "ksmps " << ksmps;
    }
}

// Shows: starts of notes stolen in the same cycle (freed before they ever started)
// still count against the 256 events a cycle, so the notes that survive wait behind
// them: 300 note-ons at one frame (8 voices) sound a cycle late, 600 two cycles late,
// and a storm of 2,500 short notes at one frame is silent: every survivor's start waits
// until after its own note-off. Measured through Processor (what the plugin runs).
TEST(Attack, StolenNotesDoNotDelayTheSurvivorsPastTheEventCap) {
    writeTone(dir() / "tone.wav");
    const auto spec = parseSessionText(kSession, (dir() / "attack.toml").string());
    for (int notes : {300, 2500}) {
        Processor proc(spec, {});
        std::vector<float> out(64 * 200);
        std::vector<MidiMessage> midi;
        for (int i = 0; i < notes; ++i) {
            MidiMessage m;
            m.frame = 0;
            m.size = 3;
            m.data[0] = 0x90;
            m.data[1] = static_cast<std::uint8_t>(30 + i % 90);
            m.data[2] = 100;
            midi.push_back(m);
        }
        std::vector<MidiMessage> offs;
        for (int i = 0; i < 90; ++i) {
            MidiMessage m;
            m.frame = 0;
            m.size = 3;
            m.data[0] = 0x80;
            m.data[1] = static_cast<std::uint8_t>(30 + i);
            offs.push_back(m);
        }
        // block 0: silence; block 1 (frames 64..127): the storm; 10 ms later the note-offs
        for (int b = 0; b < 200; ++b) {
            float* o = out.data() + b * 64;
            float* outs[] = {o};
            std::span<const MidiMessage> events;
            if (b == 1) events = midi;
            if (b == 9) events = offs;
            proc.process(nullptr, outs, 64, events);
        }
        // the latency is one cycle: the storm's cycle sounds from frame 128
        double early = 0;
        for (int i = 128; i < 192; ++i)
            early =
                std::max(early, std::fabs(static_cast<double>(out[static_cast<std::size_t>(i)])));
        EXPECT_GT(early, 0.01) << notes << " notes: the surviving voices start late";
        EXPECT_EQ(proc.activeVoices(), 0) << notes << " notes: a voice hangs";
        for (std::size_t i = out.size() - 1000; i < out.size(); ++i)
            ASSERT_EQ(out[i], 0.0f) << notes << " notes: sound at frame " << i;
    }
}

// Shows: in an exported .csd the host's table writes (instr 4) sort after the automation
// instr (2) at the same time, so an overtake automation that starts on a cycle's start
// together with a [[set]] reads the value from before the set; the render applies the set
// first. Measured: at 0.5 s the render continues from 0.7 (the set), csound from 0.1.
TEST(Attack, CsdMatchesRenderWhenASetAndAnOvertakeShareACycleStart) {
    const auto s = score("setovertake", R"([[event]]
id = "a"
instr = "dc"
time = 0
dur = 1
args = { klevel = 0.1 }

[[set]]
event = "a"
time = 0.5
args = { klevel = 0.7 }

[[automate]]
event = "a"
param = "klevel"
time = 0.5
pairs = [0, 0.0, 0.2, 0.3]
overtake = true
)");
    const auto r = render(s, "--duration 1.024");
    ASSERT_EQ(r.run.status, 0) << r.run.output;
    const auto c = csoundOfCsd(s, "--duration 1.024");
    EXPECT_LT(maxDifference(r.samples, c), 1e-6);
}

// Shows: the .csd makes every automation's breakpoint table in its orchestra at time 0,
// but the render frees a finished automation's table and gives its number to the next
// one: in the .csd two automations then share one table (the first's data, freed by the
// first's end). Measured: the second automation ends at 0.2 in the render, at 0.7 in
// csound on the .csd.
TEST(Attack, CsdMatchesRenderForAutomationsOneAfterTheOther) {
    const auto s = score("sequential", R"([[event]]
id = "a"
instr = "dc"
time = 0
dur = 1

[[automate]]
event = "a"
param = "klevel"
time = 0.25
pairs = [0, 0.5, 0, 0.7]

[[automate]]
event = "a"
param = "klevel"
time = 0.3
pairs = [0.1, 0.2]
)");
    const auto r = render(s, "--duration 1.024");
    ASSERT_EQ(r.run.status, 0) << r.run.output;
    const auto c = csoundOfCsd(s, "--duration 1.024");
    EXPECT_LT(maxDifference(r.samples, c), 1e-6);
}

// Shows: an automation of more than 128 pairs makes its table with direct writes that
// the journal does not see: the .csd's table is all zeros. Measured: from 0.1 s the
// render follows the curve, csound on the .csd plays 0.
TEST(Attack, CsdMatchesRenderForALongAutomation) {
    std::string pairs;
    for (int i = 0; i < 150; ++i)
        pairs += fmt::format("{}{}, {}", i == 0 ? "" : ", ", i * 0.005, 0.1 + 0.8 * (i % 7) / 7.0);
    const auto s = score("longautomation", fmt::format(R"([[event]]
id = "a"
instr = "dc"
time = 0
dur = 1

[[automate]]
event = "a"
param = "klevel"
time = 0.1
pairs = [{}]
)",
                                                       pairs));
    const auto r = render(s, "--duration 1.024");
    ASSERT_EQ(r.run.status, 0) << r.run.output;
    const auto c = csoundOfCsd(s, "--duration 1.024");
    EXPECT_LT(maxDifference(r.samples, c), 1e-6);
}

// Shows: the feeder hands a whole render block (4,096 frames) and two cycles more to the
// session at once, so a score with a [[set]] at every frame or so overflows the 4,096
// pending events and the render fails; a limit the docs do not list, set by the render's
// own block size. Measured: "error: ...:16650:1: [[set]]: too many pending events".
TEST(Attack, ASetAtEveryFrameRenders) {
    std::string text = "[[event]]\nid = \"a\"\ninstr = \"dc\"\ntime = 0\ndur = -1\n";
    for (int i = 0; i < 5000; ++i)
        text += fmt::format("[[set]]\nevent = \"a\"\ntime = {}\nargs = {{ klevel = {} }}\n",
                            i / 48000.0, i / 10000.0);
    const auto s = score("denseset", text);
    const auto r = render(s, "--duration 0.2");
    ASSERT_EQ(r.run.status, 0) << r.run.output;
    EXPECT_NEAR(r.samples[9000], 4999 / 10000.0, 1e-6);
}

// Shows: a time past about 1.9e14 s (at 48 kHz) overflows its frame number: the entry
// is then handed over at once, before everything else. Measured with --duration 0.5: an
// event at 1e15 s sounds from 0 to 0.1 s; a [[set]] at 1e300 s fails with "event 'a' has
// not started"; automation pairs at 1e300 s set the value from time 0. Expected: the
// entry never comes (it is past the render), or an error naming its line.
TEST(Attack, TimesPastTheFrameRangeDoNotComeFirst) {
    const auto s = score("hugetime", R"([[event]]
instr = "dc"
time = 1e15
dur = 0.1
)");
    const auto r = render(s, "--duration 0.5");
    if (r.run.status == 0)
        EXPECT_EQ(firstNonZero(r.samples), -1) << "an event at 1e15 s sounds in the first 0.5 s";
    else
        EXPECT_NE(r.run.output.find("hugetime.score.toml:3"), std::string::npos) << r.run.output;
}

// Shows: an init error in [engine] globals names the file but no line, although Csound
// gives it ("INIT ERROR in instr 0 (opcode ftgen.iS) line 2"), and drops Csound's
// useful text ("Failed to open file nofile.wav") for "ftgen error". Measured:
// "error: globals.toml: the session's global code: init error in ftgen: ftgen error".
TEST(Attack, AnInitErrorInGlobalsNamesItsLine) {
    const auto path = dir() / "globals.toml";
    writeFile(path, R"([session]
name = "Globals"
uri = "urn:spinout:test-attack-globals"
kind = "effect"
audio_inputs = 0
audio_outputs = 1

[engine]
globals = '''
giX = 1
giT ftgen 0, 0, 0, -1, "nofile.wav", 0, 0, 0
'''

[instr.a]
body = '''
outch 1, a(0)
'''
)");
    const auto r = t::run(fmt::format("check '{}'", path.string()));
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("globals.toml:11"), std::string::npos) << r.output;
}

// The voices' warm-up is the plugin's alone (warm_up.hpp): a render, like its exported .csd,
// runs no init pass before the first note. Each voice init writes what it saw to a global
// that a [[run]] instr plays; with no note, the global keeps its value from the globals
// (-1), whatever the ports, in the render and in `csound` on the .csd alike. A `schedule`
// a macro builds (`$S.ule`), which the warm-up's own cycle once dropped, plays in both.
// (What the plugin's warm-up sees: Processor.TheVoicesWarmUpSeesThePortsAndTheHostTime.)
TEST(Attack, ARenderRunsNoWarmUpAndPlaysWhatItsCsdPlays) {
    const auto folder = dir() / "warmup";
    fs::create_directories(folder);
    writeFile(folder / "none.score.toml", "");
    struct Case {
        std::string session, extra;
        double level;
    };
    for (const auto& c :
         {Case{"ports", "", -1}, Case{"ports", "--set level=0.3", -1}, Case{"macro", "", 0.25}}) {
        const auto session =
            fs::path(SPINOUT_SOURCE_DIR) / "tests/fixtures/warm_up" / (c.session + ".toml");
        const auto wav = folder / (c.session + ".wav");
        const auto csd = folder / (c.session + ".csd");
        const auto csoundWav = folder / (c.session + ".csound.wav");
        const auto args =
            fmt::format("'{}' --score '{}' --duration 0.1 --tail 0 {}", session.string(),
                        (folder / "none.score.toml").string(), c.extra);
        const auto r = t::run(fmt::format("render {} -o '{}'", args, wav.string()));
        ASSERT_EQ(r.status, 0) << r.output;
        const auto rendered = readMono(wav);
        ASSERT_EQ(rendered.size(), 4800u);
        // (a(k) ramps up over the first cycle)
        EXPECT_NEAR(rendered[64], c.level, 1e-6) << c.session << " " << c.extra;
        EXPECT_NEAR(rendered.back(), c.level, 1e-6) << c.session << " " << c.extra;
        ASSERT_EQ(t::run(fmt::format("csd {} -o '{}'", args, csd.string())).status, 0);
        const auto cmd =
            fmt::format("cd '{}' && csound -o '{}' '{}' > '{}.log' 2>&1", folder.string(),
                        csoundWav.string(), csd.string(), csd.string());
        ASSERT_EQ(std::system(cmd.c_str()), 0) << "csound failed on " << csd;
        EXPECT_EQ(maxDifference(rendered, readMono(csoundWav)), 0.0) << c.session << " " << c.extra;
    }
}
