// `spinout render` as an ordinary host of Processor: long scores, port automation,
// runtime errors, and the length of what it writes.
#include "spinout/sound_file.hpp"

#include "../common/analysis.hpp"
#include "../common/command.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>

using namespace spinout;
namespace fs = std::filesystem;
namespace t = spinout::test;

namespace {

constexpr int kSr = 48000;
constexpr int kKsmps = 64;

// Notes of constant level (so onsets and ends are steps) and a port that becomes the
// output's level (so its automation can be read off the samples).
fs::path stepsSession() {
    const auto path = t::tmp("steps.toml");
    std::ofstream(path) << R"([session]
name = "Steps"
uri = "urn:spinout:test-steps"
kind = "instrument"
audio_outputs = 1
[engine]
ksmps = 64
[instr.dc]
body = '''
|iamp=0.1|
aone init 1
outch 1, aone * iamp
'''
[instr.level]
priority = 2
body = '''
|klevel=0|
outch 1, upsamp(klevel)
'''
[[run]]
instr = "level"
[midi]
instr = "dc"
[[port]]
symbol = "level"
target = "level.klevel"
min = 0
max = 1
default = 0
)";
    return path;
}

std::vector<double> renderMono(const std::string& args, const std::string& name) {
    const auto out = t::tmp(name + ".wav");
    fs::remove(out);
    const auto r = t::run(fmt::format("render {} -o '{}'", args, out.string()));
    EXPECT_EQ(r.status, 0) << r.output;
    if (r.status != 0) return {};
    return t::mono(readSoundFile(out.string()));
}

} // namespace

// A score's events take slots only while they sound: 1,100 notes, never more than four
// at once, render with each note starting and ending at its frame.
TEST(Render, ALongScoreRendersWithEveryNoteAtItsFrames) {
    const auto score = t::tmp("long.score.toml");
    {
        std::ofstream out(score);
        for (int k = 0; k < 1100; ++k)
            out << fmt::format("[[event]]\ninstr = \"dc\"\ntime = {}\ndur = 0.035\n", k * 0.01);
    }
    const auto m = renderMono(
        fmt::format("'{}' --score '{}' --tail 0.5", stepsSession().string(), score.string()),
        "long");
    ASSERT_EQ(m.size(), static_cast<std::size_t>((11.0 + 0.025 + 0.5) * kSr));
    int wrongStarts = 0, wrongEnds = 0;
    for (int k = 0; k < 1100; ++k) {
        const auto start = static_cast<std::size_t>(k * 480);
        const auto end = start + 1680; // 0.035 s
        const double before = start > 0 ? m[start - 1] : 0.0;
        if (std::fabs(m[start] - before - 0.1) > 1e-6) ++wrongStarts;
        if (std::fabs(m[end - 1] - m[end] - 0.1) > 1e-6) ++wrongEnds;
    }
    EXPECT_EQ(wrongStarts, 0) << "notes not starting at their frame";
    EXPECT_EQ(wrongEnds, 0) << "notes not ending at their frame";
    EXPECT_NEAR(t::peak(m), 0.4, 1e-6); // four at once, never more
}

namespace {

double shape(const std::string& mode, double x) {
    if (mode == "cos") return (1 - std::cos(x * M_PI)) / 2;
    if (mode == "expon(2)") return x * x;
    if (mode == "smooth") return x * x * (3 - 2 * x);
    return x;
}

} // namespace

// A port's [[automate]] moves it as a host's automation would at blocks of ksmps: the
// value of the curve at each cycle's start, held for the cycle; it waits for its first
// breakpoint.
TEST(Render, PortAutomationIsTheCurveAtEveryCycle) {
    struct Lane {
        std::string mode;
        double time;  // [[automate]] time
        double first; // the first pair's time: the automation waits until time + first
        double from, to;
    };
    const std::vector<Lane> lanes = {{"linear", 0.5, 0.0, 0.0, 1.0},
                                     {"cos", 2.0, 0.25, 1.0, 0.0},
                                     {"expon(2)", 3.5, 0.0, 0.0, 1.0},
                                     {"smooth", 5.0, 0.1, 1.0, 0.2}};
    const auto score = t::tmp("automate.score.toml");
    {
        std::ofstream out(score);
        for (const auto& l : lanes)
            out << fmt::format("[[automate]]\nport = \"level\"\ntime = {}\nmode = \"{}\"\n"
                               "pairs = [{}, {}, {}, {}]\n",
                               l.time, l.mode, l.first, l.from, l.first + 1.0, l.to);
    }
    const auto trace = t::tmp("automate.csv");
    const auto m = renderMono(fmt::format("'{}' --score '{}' --duration 6.5 --trace level "
                                          "--trace-file '{}'",
                                          stepsSession().string(), score.string(), trace.string()),
                              "automate");
    ASSERT_EQ(m.size(), static_cast<std::size_t>(6.5 * kSr));
    // what the port holds in each cycle: the latest lane that has begun, at the cycle's start
    auto expected = [&](std::int64_t cycleStart) {
        double v = 0; // the port's default
        for (const auto& l : lanes) {
            const auto begin = std::llround((l.time + l.first) * kSr);
            const auto laneStart = begin - begin % kKsmps; // curves land on cycle starts
            if (cycleStart < laneStart) break;
            const double x = std::min(1.0, static_cast<double>(cycleStart - laneStart) / kSr);
            v = l.from + (l.to - l.from) * shape(l.mode, x);
        }
        return static_cast<double>(static_cast<float>(v)); // a port is a float
    };
    int wrongCycles = 0, unevenCycles = 0;
    for (std::size_t c = 0; (c + 1) * kKsmps <= m.size(); ++c) {
        const auto at = c * kKsmps;
        if (std::fabs(m[at] - expected(static_cast<std::int64_t>(at))) > 1e-6) {
            if (wrongCycles++ < 5)
                ADD_FAILURE() << "cycle at frame " << at << ": " << m[at] << ", expected "
                              << expected(static_cast<std::int64_t>(at));
        }
        for (std::size_t i = 1; i < kKsmps; ++i)
            if (m[at + i] != m[at]) {
                ++unevenCycles;
                break;
            }
    }
    EXPECT_EQ(wrongCycles, 0);
    EXPECT_EQ(unevenCycles, 0) << "the value changes inside a cycle";
    // the trace says the same: the port's value for the cycle that sounds at each time
    std::ifstream in(trace);
    std::string line;
    std::getline(in, line);
    int rows = 0, wrongRows = 0;
    while (std::getline(in, line)) {
        double time = 0, value = 0;
        ASSERT_EQ(std::sscanf(line.c_str(), "%lf,%lf", &time, &value), 2) << line;
        const auto at = static_cast<std::int64_t>(std::llround(time * kSr));
        if (std::fabs(value - expected(at)) > 1e-6) ++wrongRows;
        ++rows;
    }
    EXPECT_EQ(rows, static_cast<int>(6.5 * kSr / kKsmps));
    EXPECT_EQ(wrongRows, 0);
    // the second lane waits for its first breakpoint: 1.0 (the first lane's end) until 2.25 s
    EXPECT_DOUBLE_EQ(m[static_cast<std::size_t>(2.24 * kSr)], 1.0);
}

// An error that only shows when Csound runs the instr (a missing table) ends the render
// with the template's name and the session file's line, and leaves no file; check finds
// it before, by running every instr once.
TEST(Render, ARuntimeErrorNamesTheTemplateAndLineAndLeavesNoFile) {
    const auto session = t::tmp("runtime_error.toml");
    std::ofstream(session) << R"([session]
name = "Broken"
uri = "urn:spinout:test-broken"
kind = "instrument"
[midi]
instr = "voice"
[instr.voice]
body = '''
|kpitch=60|
a1 oscili 0.1, mtof(kpitch), 99
outch 1, a1, 2, a1
'''
)";
    const auto score = t::tmp("runtime_error.score.toml");
    std::ofstream(score) << "[[event]]\ninstr = \"voice\"\ntime = 0.5\ndur = 1\n";
    const auto out = t::tmp("runtime_error.wav");
    fs::remove(out);
    const auto r = t::run(fmt::format("render '{}' --score '{}' -o '{}'", session.string(),
                                      score.string(), out.string()));
    EXPECT_EQ(r.status, 1) << r.output;
    const auto where = fmt::format("{}:10:", session.string()); // the oscili line
    EXPECT_NE(r.output.find(where), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("instr 'voice'"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("Invalid ftable"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("instr 1"), std::string::npos) << "a Csound number: " << r.output;
    EXPECT_FALSE(fs::exists(out));
    EXPECT_FALSE(fs::exists(out.string() + ".partial"));

    const auto c = t::run(fmt::format("check '{}'", session.string()));
    EXPECT_EQ(c.status, 1) << c.output;
    EXPECT_NE(c.output.find(where), std::string::npos) << c.output;
}

// The csound command on an exported .csd writes the render's length, even when release
// tails would ring past it.
TEST(Render, TheExportedCsdHasTheRendersLength) {
    for (const std::string how : {"--tail 0", "--duration 2.5", "--tail 0.5"}) {
        const std::string args =
            fmt::format("presets/polysynth.toml --midi presets/polysynth.mid {}", how);
        const auto ours = t::tmp("length_ours.wav");
        const auto csd = t::tmp("length.csd");
        const auto theirs = t::tmp("length_csound.wav");
        ASSERT_EQ(t::run(fmt::format("render {} -o '{}'", args, ours.string())).status, 0);
        ASSERT_EQ(t::run(fmt::format("csd {} -o '{}'", args, csd.string())).status, 0);
        fs::remove(theirs);
        const auto cmd = fmt::format("cd '{}' && csound -o '{}' '{}' > /dev/null 2>&1",
                                     t::tmp("").string(), theirs.string(), csd.string());
        ASSERT_EQ(std::system(cmd.c_str()), 0) << how;
        const auto a = readSoundFile(ours.string());
        const auto b = readSoundFile(theirs.string());
        EXPECT_EQ(a.frames(), b.frames()) << how;
        EXPECT_EQ(a.samples, b.samples) << how;
    }
}

// The report's level is the file's: its peak and RMS over every channel, in dBFS as
// printed (one decimal), for a stereo render of a shipped preset.
TEST(Render, TheReportedPeakAndRmsAreTheFilesOwn) {
    const auto out = t::tmp("level.wav");
    fs::remove(out);
    const auto r = t::run(fmt::format("render presets/polysynth.toml --midi presets/polysynth.mid "
                                      "--preset pad --duration 3 -o '{}'",
                                      out.string()));
    ASSERT_EQ(r.status, 0) << r.output;
    double peakDb = 0, rmsDb = 0;
    const auto at = r.output.find("peak ");
    ASSERT_NE(at, std::string::npos) << r.output;
    ASSERT_EQ(std::sscanf(r.output.c_str() + at, "peak %lf dBFS, rms %lf dBFS", &peakDb, &rmsDb), 2)
        << r.output;
    const auto a = readSoundFile(out.string());
    ASSERT_EQ(a.nchnls, 2);
    EXPECT_NEAR(peakDb, t::db(t::peak(a.samples)), 0.051) << r.output;
    EXPECT_NEAR(rmsDb, t::db(t::rms(a.samples)), 0.051) << r.output;
    EXPECT_LT(rmsDb, peakDb - 3); // a real signal, not a constant
}

// An instr reads a [table.NAME] as gi_NAME (docs/session-format.md): the policy check,
// which parses the instr before spinout makes the tables, knows the name (it refused the
// session before: "Variable 'gi_t' used before defined", found by a helper).
TEST(Render, AnInstrReadsASessionTableByItsName) {
    const auto path = t::tmp("table_read.toml");
    std::ofstream(path) << R"([session]
name = "Table read"
uri = "urn:spinout:test-table-read"
kind = "effect"
audio_inputs = 0
audio_outputs = 1
[engine]
ksmps = 64
[table.levels]
values = [0.25, 0.5, 0.75]
[instr.dc]
body = '''
outch 1, a(tab:k(1, gi_levels))
'''
[[run]]
instr = "dc"
)";
    const auto m = renderMono(fmt::format("'{}' --duration 0.1", path.string()), "table_read");
    ASSERT_EQ(m.size(), static_cast<std::size_t>(0.1 * kSr));
    EXPECT_NEAR(m[kKsmps * 2], 0.5, 1e-9);
    EXPECT_NEAR(t::peak(m), 0.5, 1e-9);
}
