// csoundengine's semantics, measured on rendered audio: note ends, args over ports,
// overtake, unsched, samples, positional args, bus automation, --duration.
#include "spinout/sound_file.hpp"

#include "../common/analysis.hpp"
#include "../common/command.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace spinout;
namespace fs = std::filesystem;
namespace t = spinout::test;

namespace {

constexpr double kSr = 48000;

// A session of constant levels, so that what a note or a k-arg does is read off the
// samples: "dc" plays iamp while it lasts, "level" plays its k-arg, "held" releases in
// 0.1 s, "pitched" is a sine; a port drives level.klevel, a control bus shows on a port.
const char* kSession = R"([session]
name = "Semantics"
uri = "urn:spinout:test-semantics"
kind = "instrument"
audio_outputs = 1
[engine]
ksmps = 32
[bus.meter]
kind = "control"
value = 0.25
[instr.dc]
body = '''
|iamp=0.1|
aone init 1
outch 1, aone * iamp
'''
[instr.level]
body = '''
|klevel=0.1|
outch 1, upsamp(klevel)
'''
[instr.held]
body = '''
|iamp=0.5|
kenv linsegr 1, 0.1, 1, 0.1, 0
outch 1, upsamp(kenv) * iamp
'''
[instr.pitched]
body = '''
|iamp, ifreq|
outch 1, oscili:a(iamp, ifreq)
'''
[instr.show]
body = '''
|ibus=0|
outch 1, upsamp(busin:k(ibus))
'''
[midi]
instr = "held"
[[port]]
symbol = "lvl"
target = "level.klevel"
min = 0
max = 1
default = 0.2
[[port]]
symbol = "meter"
source = "bus:meter"
)";

fs::path session() {
    const auto path = t::tmp("semantics.toml");
    std::ofstream(path) << kSession;
    return path;
}

// Renders `score` (TOML text) and returns the mono output.
std::vector<double> render(const std::string& name, const std::string& score,
                           const std::string& more = "") {
    const auto scorePath = t::tmp(name + ".score.toml");
    std::ofstream(scorePath) << score;
    const auto out = t::tmp(name + ".wav");
    fs::remove(out);
    const auto r = t::run(fmt::format("render '{}' --score '{}' {} -o '{}'", session().string(),
                                      scorePath.string(), more, out.string()));
    EXPECT_EQ(r.status, 0) << r.output;
    if (r.status != 0) return {};
    return t::mono(readSoundFile(out.string()));
}

std::size_t at(double seconds) {
    return static_cast<std::size_t>(std::llround(seconds * kSr));
}

} // namespace

// Thirty notes off cycle boundaries (ksmps 32) end at their frame, and the csound command
// on the exported .csd writes the same samples.
TEST(Semantics, NotesOffCycleBoundariesEndWhereCsoundEndsThem) {
    std::string score;
    std::vector<std::pair<double, double>> notes;
    for (int k = 0; k < 30; ++k) {
        const double time = 0.2001 + k * 0.1037, dur = 0.05 + 0.0011 * k;
        notes.emplace_back(time, dur);
        score += fmt::format("[[event]]\ninstr = \"dc\"\ntime = {}\ndur = {}\n", time, dur);
    }
    // the length: a whole number of cycles, so the csound command writes as much
    const auto m = render("ends", score, "--duration 3.3");
    ASSERT_EQ(m.size(), at(3.3));
    for (const auto& [time, dur] : notes) {
        const auto start = at(time);
        auto end = start; // one past the note's last frame
        while (end < m.size() && m[end] > 0.05)
            ++end;
        EXPECT_EQ(m[start - 1], 0) << time;
        EXPECT_NEAR(m[start], 0.1, 1e-6) << time;
        // within a frame of start + dur (Csound counts whole frames of the duration)
        EXPECT_LT(std::fabs(static_cast<double>(end - start) - dur * kSr), 1.0) << time;
    }
    // csound on the exported .csd
    const auto scorePath = t::tmp("ends.score.toml");
    const auto csd = t::tmp("ends.csd");
    const auto theirs = t::tmp("ends_csound.wav");
    ASSERT_EQ(t::run(fmt::format("csd '{}' --score '{}' --duration 3.3 -o '{}'", session().string(),
                                 scorePath.string(), csd.string()))
                  .status,
              0);
    fs::remove(theirs);
    ASSERT_EQ(std::system(fmt::format("cd '{}' && csound -o '{}' '{}' > /dev/null 2>&1",
                                      t::tmp("").string(), theirs.string(), csd.string())
                              .c_str()),
              0);
    EXPECT_EQ(t::mono(readSoundFile(theirs.string())), m);
}

// An event's own k-arg is its value at its start, whatever the port says; the port is the
// default of events that do not give it, and a port change later reaches both.
TEST(Semantics, AnEventsOwnArgWinsAtItsStartAndAPortChangeReachesItLater) {
    const std::string port =
        "[[automate]]\nport = \"lvl\"\ntime = 1.0\npairs = [0, 0.4]\n"; // the port moves at 1 s
    const auto own = render("own", "[[event]]\ninstr = \"level\"\ntime = 0.5\ndur = 1\n"
                                   "args = { klevel = 0.7 }\n" +
                                       port);
    const auto dflt =
        render("default", "[[event]]\ninstr = \"level\"\ntime = 0.5\ndur = 1\n" + port);
    ASSERT_FALSE(own.empty());
    ASSERT_FALSE(dflt.empty());
    EXPECT_NEAR(own[at(0.75)], 0.7, 1e-6);  // not the port's 0.2
    EXPECT_NEAR(dflt[at(0.75)], 0.2, 1e-6); // the port's default
    EXPECT_NEAR(own[at(1.25)], 0.4, 1e-6);  // the port moved: it reaches the instance
    EXPECT_NEAR(dflt[at(1.25)], 0.4, 1e-6);
}

// overtake: the automation starts from the k-arg's current value, without a jump.
TEST(Semantics, OvertakeContinuesFromTheCurrentValue) {
    const auto m = render("overtake", R"([[event]]
id = "a"
instr = "level"
time = 0
dur = 3
args = { klevel = 0.3 }
[[automate]]
event = "a"
param = "klevel"
time = 1.0
pairs = [0, 0.9, 1, 0.5]
overtake = true
)");
    ASSERT_FALSE(m.empty());
    EXPECT_NEAR(m[at(0.99)], 0.3, 1e-6);
    EXPECT_NEAR(m[at(1.0) + 64], 0.3, 0.001); // no jump to 0.9
    EXPECT_NEAR(m[at(1.5)], 0.4, 0.002);      // halfway from 0.3 to 0.5
    EXPECT_NEAR(m[at(2.5)], 0.5, 1e-6);
    double largestStep = 0;
    for (std::size_t i = at(0.9); i < at(2.1); ++i)
        largestStep = std::max(largestStep, std::fabs(m[i] - m[i - 1]));
    EXPECT_LT(largestStep, 0.001);
}

// [[unsched]] releases an event at its time (its 0.1 s release plays), or all of them.
TEST(Semantics, UnschedStartsTheReleaseAtItsTime) {
    const auto m = render("unsched", R"([[event]]
id = "a"
instr = "held"
time = 0
[[event]]
instr = "held"
time = 0.5
args = { iamp = 0.25 }
[[unsched]]
event = "a"
time = 1.0
[[unsched]]
all = true
time = 2.0
)",
                          "--duration 3");
    ASSERT_FALSE(m.empty());
    EXPECT_NEAR(m[at(0.99)], 0.75, 1e-6);
    // a's release starts at 1.0 s (at its cycle) and is over 0.1 s later
    EXPECT_LT(m[at(1.05)], 0.75);
    EXPECT_GT(m[at(1.05)], 0.25);
    EXPECT_NEAR(m[at(1.2)], 0.25, 1e-6);
    EXPECT_NEAR(m[at(1.99)], 0.25, 1e-6);
    EXPECT_EQ(m[at(2.2)], 0); // all released at 2.0 s
    // release = false stops at once
    const auto hard = render("unsched_hard", R"([[event]]
id = "a"
instr = "held"
time = 0
[[unsched]]
event = "a"
time = 1.0
release = false
)",
                             "--duration 2");
    ASSERT_FALSE(hard.empty());
    EXPECT_EQ(hard[at(1.01)], 0);
}

// A table read from a sound file plays at speed 2 an octave up, from `skip` on; positional
// args and pN keys reach the pfields from p5 on.
TEST(Semantics, SamplesTablesAndPositionalArgs) {
    const auto wav = t::tmp("sine220.wav");
    {
        SoundFileWriter w(wav.string(), 48000, 1);
        std::vector<double> buf(48000);
        for (std::size_t i = 0; i < buf.size(); ++i)
            buf[i] = 0.5 * std::sin(2 * M_PI * 220 * static_cast<double>(i) / 48000.0);
        w.write(buf.data(), static_cast<std::int64_t>(buf.size()));
        w.commit();
    }
    const auto m = render("sample",
                          fmt::format(R"([table.sine]
file = "{}"
[[sample]]
table = "sine"
time = 0
[[sample]]
table = "sine"
time = 1.5
speed = 2
[[sample]]
table = "sine"
time = 2.5
skip = 0.5
[[event]]
instr = "pitched"
time = 3.5
dur = 0.5
args = [0.3, 330]
[[event]]
instr = "pitched"
time = 4.5
dur = 0.5
args = {{ p5 = 0.3, p6 = 550 }}
)",
                                      wav.filename().string()),
                          "--tail 0.2");
    ASSERT_FALSE(m.empty());
    EXPECT_NEAR(t::frequency(t::window(m, kSr, 0.2, 0.8), kSr), 220, 0.5);
    EXPECT_NEAR(t::frequency(t::window(m, kSr, 1.6, 1.9), kSr), 440, 1);
    EXPECT_EQ(t::peak(t::window(m, kSr, 2.01, 2.45)), 0); // speed 2: over after 0.5 s
    // skip 0.5: the last half second of the file, so over at 3.0 s
    EXPECT_GT(t::rms(t::window(m, kSr, 2.6, 2.95)), 0.3);
    EXPECT_EQ(t::peak(t::window(m, kSr, 3.02, 3.45)), 0);
    EXPECT_NEAR(t::frequency(t::window(m, kSr, 3.6, 3.9), kSr), 330, 0.5);
    EXPECT_NEAR(t::peak(t::window(m, kSr, 3.6, 3.9)), 0.3, 0.01);
    EXPECT_NEAR(t::frequency(t::window(m, kSr, 4.6, 4.9), kSr), 550, 0.5);
}

// A control bus automated from a score, inside Csound (the bus's value is read by an
// instr, in sync with the audio), and traced through the output port showing it.
TEST(Semantics, BusAutomationFromAScoreAndATraceOfItsPort) {
    const auto trace = t::tmp("bus.csv");
    fs::remove(trace);
    const auto m = render(
        "bus", R"([[event]]
instr = "show"
time = 0
dur = 2
args = { ibus = "bus:meter" }
[[automate]]
bus = "meter"
time = 0.5
pairs = [0, 0, 1, 1]
)",
        fmt::format("--trace meter --trace lvl --trace-file '{}' --duration 2", trace.string()));
    ASSERT_FALSE(m.empty());
    EXPECT_NEAR(m[at(0.4)], 0.25, 1e-6); // the bus's value
    EXPECT_NEAR(m[at(1.0)], 0.5, 0.002);
    EXPECT_NEAR(m[at(1.9)], 1.0, 1e-6);
    std::ifstream in(trace);
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line, "time,meter,lvl");
    int rows = 0, matching = 0;
    while (std::getline(in, line)) {
        double time = 0, meter = 0, lvl = 0;
        ASSERT_EQ(std::sscanf(line.c_str(), "%lf,%lf,%lf", &time, &meter, &lvl), 3) << line;
        ++rows;
        EXPECT_DOUBLE_EQ(lvl, 0.2f); // the input port at its default
        // the port shows the bus as the cycle that sounds at `time` left it
        const auto frame = at(time) + 31; // the cycle's last frame: its value for the cycle
        if (frame < m.size() && std::fabs(m[frame] - meter) < 1e-6) ++matching;
    }
    EXPECT_EQ(rows, 2 * 48000 / 32); // a row per cycle
    EXPECT_EQ(matching, rows);
}

// --duration is the file's length; --tail follows the material only.
TEST(Semantics, DurationIsTheFilesLength) {
    const auto a =
        render("duration", "[[event]]\ninstr = \"dc\"\ntime = 0\ndur = 0.5\n", "--duration 1");
    EXPECT_EQ(a.size(), at(1.0));
    const auto b =
        render("tail", "[[event]]\ninstr = \"dc\"\ntime = 0\ndur = 0.5\n", "--tail 0.25");
    EXPECT_EQ(b.size(), at(0.75));
}

// A stereo sample keeps its channels apart, from a start inside a cycle, at any ksmps
// (Csound 6.18's loscil3 and loscilx each mishandle such a start).
TEST(Semantics, AStereoSampleKeepsItsChannelsAtAnyKsmps) {
    const auto wav = t::tmp("stereo220_330.wav");
    {
        SoundFileWriter w(wav.string(), 48000, 2);
        std::vector<double> buf(2 * 48000);
        for (std::size_t i = 0; i < 48000; ++i) {
            const double x = static_cast<double>(i) / 48000.0;
            buf[2 * i] = 0.5 * std::sin(2 * M_PI * 220 * x);
            buf[2 * i + 1] = 0.5 * std::sin(2 * M_PI * 330 * x);
        }
        w.write(buf.data(), 48000);
        w.commit();
    }
    const auto session = t::tmp("stereo.toml");
    std::ofstream(session) << R"([session]
name = "Stereo"
uri = "urn:spinout:test-stereo"
kind = "effect"
audio_inputs = 0
[instr.none]
body = "a0 = 0"
)";
    const auto score = t::tmp("stereo.score.toml");
    std::ofstream(score) << fmt::format("[table.s]\nfile = \"{}\"\n[[sample]]\ntable = \"s\"\n"
                                        "time = 0.3001\n",
                                        wav.filename().string());
    for (int ksmps : {1, 64, 128, 1000}) {
        const auto out = t::tmp("stereo.wav");
        const auto r = t::run(fmt::format("render '{}' --score '{}' --ksmps {} -o '{}'",
                                          session.string(), score.string(), ksmps, out.string()));
        ASSERT_EQ(r.status, 0) << r.output;
        const auto a = readSoundFile(out.string());
        const auto left = a.channel(0), right = a.channel(1);
        EXPECT_EQ(t::peak(t::window(left, kSr, 0, 0.3)), 0) << ksmps; // nothing before it
        EXPECT_EQ(t::onset(left, 1e-9), at(0.3001) + 1) << ksmps;     // sin(0) = 0 first
        EXPECT_NEAR(t::frequency(t::window(left, kSr, 0.4, 1.2), kSr), 220, 0.5) << ksmps;
        EXPECT_NEAR(t::frequency(t::window(right, kSr, 0.4, 1.2), kSr), 330, 0.5) << ksmps;
        EXPECT_NEAR(t::peak(t::window(right, kSr, 0.4, 1.2)), 0.5, 0.01) << ksmps;
    }
}
