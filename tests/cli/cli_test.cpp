// The spinout command, run as a user runs it.
#include "spinout/sound_file.hpp"

#include "../common/analysis.hpp"
#include "../common/command.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace spinout;
namespace fs = std::filesystem;
namespace t = spinout::test;

namespace {

using t::db;
using t::kRoot;
using t::mono;
using t::run;
using t::tmp;

// Two seconds of stereo input: a chord of saws for one second, then silence.
fs::path testInput() {
    const auto path = tmp("input.wav");
    if (fs::exists(path)) return path;
    SoundFileWriter w(path.string(), 48000, 2);
    std::vector<double> buf(2 * 96000, 0.0);
    for (int i = 0; i < 48000; ++i) {
        double v = 0;
        for (double f : {220.0, 277.2, 329.6})
            v += 0.08 * (2 * std::fmod(f * i / 48000.0, 1.0) - 1);
        const double env = std::min(1.0, std::min(i, 48000 - i) / 480.0);
        buf[static_cast<std::size_t>(2 * i)] = v * env;
        buf[static_cast<std::size_t>(2 * i + 1)] = v * env;
    }
    w.write(buf.data(), 96000);
    w.commit();
    return path;
}

// How a preset is played: MIDI, a score, or audio input.
std::vector<std::string> plays(const std::string& name) {
    if (name == "polysynth" || name == "fmbells")
        return {fmt::format("--midi presets/{}.mid", name),
                fmt::format("--score presets/{}.score.toml", name)};
    return {fmt::format("--input '{}'", testInput().string()),
            fmt::format("--input '{}' --score presets/{}.score.toml", testInput().string(), name)};
}

const std::vector<std::string> kPresets = {"polysynth", "fmbells", "stereodelay", "lfofilter"};

} // namespace

TEST(Cli, BadInputsGetTheirMessageAndNoCrash) {
    const auto dir = kRoot / "tests/fixtures/bad";
    std::ifstream cases(dir / "cases.tsv");
    std::string line;
    int count = 0;
    while (std::getline(cases, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream in(line);
        std::string cmd, status, expected;
        std::getline(in, cmd, '\t');
        std::getline(in, status, '\t');
        std::getline(in, expected);
        const auto out = tmp(fmt::format("bad_{}.wav", count));
        fs::remove(out);
        const auto pos = cmd.find("SPINOUT_OUT");
        if (pos != std::string::npos) cmd.replace(pos, 11, "'" + out.string() + "'");
        const auto r = run(cmd, dir);
        EXPECT_EQ(r.status, std::stoi(status)) << cmd << "\n" << r.output;
        EXPECT_NE(r.output.find(expected), std::string::npos)
            << cmd << "\nexpected: " << expected << "\ngot: " << r.output;
        EXPECT_FALSE(fs::exists(out)) << cmd;
        EXPECT_FALSE(fs::exists(out.string() + ".partial")) << cmd;
        ++count;
    }
    EXPECT_GE(count, 20);
}

TEST(Cli, EveryPresetRendersAndSounds) {
    for (const auto& name : kPresets) {
        for (const auto& how : plays(name)) {
            const auto out = tmp(name + ".wav");
            const auto r =
                run(fmt::format("render presets/{}.toml {} -o '{}'", name, how, out.string()));
            ASSERT_EQ(r.status, 0) << r.output;
            EXPECT_NE(r.output.find("peak"), std::string::npos) << r.output;
            const auto audio = readSoundFile(out.string());
            EXPECT_EQ(audio.nchnls, 2);
            EXPECT_EQ(audio.sr, 48000);
            const auto m = mono(audio);
            const double peak = t::peak(m);
            EXPECT_GT(db(peak), -30) << name << " " << how;
            EXPECT_LT(db(peak), 0) << name << " " << how;
            EXPECT_GT(db(t::rms(m)), -50) << name << " " << how;
            for (double v : audio.samples)
                ASSERT_TRUE(std::isfinite(v)) << name;
            // the tail fades out: the last 50 ms are far quieter than the peak
            const auto last = std::vector<double>(m.end() - 2400, m.end());
            EXPECT_LT(t::peak(last), peak * 0.5) << name << " " << how;
        }
    }
}

TEST(Cli, NamedPresetsChangeTheSound) {
    for (const auto& name : kPresets) {
        const auto how = plays(name).front();
        const auto base = tmp(name + "_default.wav");
        ASSERT_EQ(
            run(fmt::format("render presets/{}.toml {} -o '{}'", name, how, base.string())).status,
            0);
        const auto reference = readSoundFile(base.string()).samples;
        const auto info = run(fmt::format("info presets/{}.toml", name)).output;
        const auto presets = info.substr(info.find("presets:"));
        int checked = 0;
        std::istringstream lines(presets);
        std::string l;
        std::getline(lines, l);
        while (std::getline(lines, l)) {
            const auto p = l.substr(2, l.find(' ', 2) - 2);
            const auto out = tmp(name + "_" + p + ".wav");
            const auto r = run(fmt::format("render presets/{}.toml {} --preset {} -o '{}'", name,
                                           how, p, out.string()));
            ASSERT_EQ(r.status, 0) << r.output;
            EXPECT_NE(readSoundFile(out.string()).samples, reference) << name << " preset " << p;
            ++checked;
        }
        EXPECT_GE(checked, 2) << name;
    }
}

TEST(Cli, SynthPlaysThePitchOfTheScore) {
    const auto score = tmp("a440.score.toml");
    std::ofstream(score) << "[[event]]\ninstr = \"voice\"\ntime = 0.5\ndur = 1.5\n"
                            "args = { kpitch = 69, iamp = 0.8, ibus = \"bus:dry\" }\n";
    const auto out = tmp("a440.wav");
    const auto r = run(
        fmt::format("render presets/polysynth.toml --score '{}' --set mix=0 --set sub=0 -o '{}'",
                    score.string(), out.string()));
    ASSERT_EQ(r.status, 0) << r.output;
    const auto m = mono(readSoundFile(out.string()));
    EXPECT_NEAR(t::pitch(t::window(m, 48000, 1.0, 1.8), 48000, 100, 1000), 440, 2);
    EXPECT_EQ(t::peak(t::window(m, 48000, 0, 0.49)), 0); // nothing before the note
    EXPECT_GT(t::rms(t::window(m, 48000, 0.51, 0.6)), 0.01);
}

TEST(Cli, DelayEchoesAfterTheInputStops) {
    const auto out = tmp("echo.wav");
    ASSERT_EQ(run(fmt::format("render presets/stereodelay.toml --input '{}' --preset dub -o '{}'",
                              testInput().string(), out.string()))
                  .status,
              0);
    const auto m = mono(readSoundFile(out.string()));
    // the input is silent from 1 s on; the echoes are not
    EXPECT_GT(t::rms(t::window(m, 48000, 1.1, 2.0)), 0.005);
}

TEST(Cli, CsoundCommandRendersTheExportedCsdToTheSameSamples) {
    for (const auto& name : kPresets) {
        for (const auto& how : plays(name)) {
            const auto ours = tmp(name + "_ours.wav");
            const auto csd = tmp(name + ".csd");
            const auto theirs = tmp(name + "_csound.wav");
            ASSERT_EQ(run(fmt::format("render presets/{}.toml {} --preset {} -o '{}'", name, how,
                                      name == "polysynth"
                                          ? "pad"
                                          : (name == "fmbells"
                                                 ? "glass"
                                                 : (name == "stereodelay" ? "pingpong" : "wobble")),
                                      ours.string()))
                          .status,
                      0);
            const auto r = run(fmt::format(
                "csd presets/{}.toml {} --preset {} -o '{}'", name, how,
                name == "polysynth"
                    ? "pad"
                    : (name == "fmbells" ? "glass"
                                         : (name == "stereodelay" ? "pingpong" : "wobble")),
                csd.string()));
            ASSERT_EQ(r.status, 0) << r.output;
            fs::remove(theirs);
            const auto cmd =
                fmt::format("cd '{}' && csound -o '{}' '{}' > '{}.log' 2>&1", tmp("").string(),
                            theirs.string(), csd.string(), csd.string());
            ASSERT_EQ(std::system(cmd.c_str()), 0) << "csound failed on " << csd;
            const auto a = readSoundFile(ours.string());
            const auto b = readSoundFile(theirs.string());
            ASSERT_EQ(a.nchnls, b.nchnls);
            ASSERT_LE(a.samples.size(), b.samples.size()) << name;
            double maxDiff = 0;
            for (std::size_t i = 0; i < a.samples.size(); ++i)
                maxDiff = std::max(maxDiff, std::fabs(a.samples[i] - b.samples[i]));
            EXPECT_LE(maxDiff, 1e-6) << name << " " << how;
            EXPECT_GT(t::peak(a.samples), 0.01) << name << " " << how;
        }
    }
}

TEST(Cli, AFailedRenderNeverReplacesAGoodFile) {
    const auto out = tmp("keep.wav");
    ASSERT_EQ(run(fmt::format("render presets/polysynth.toml --midi presets/polysynth.mid -o '{}'",
                              out.string()))
                  .status,
              0);
    const auto before = readSoundFile(out.string()).samples;
    const auto r = run(fmt::format(
        "render tests/fixtures/bad/csound_syntax.toml --duration 1 -o '{}'", out.string()));
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(readSoundFile(out.string()).samples, before);
}

// The MIDI file's tempo map places the notes: 120 bpm, then 60 bpm from beat 1 (set in
// the tempo track of a format 1 file), so a note at beat 2 starts at 1.5 s, not 1 s.
TEST(Cli, MidiTempoChangeMovesTheNote) {
    const auto mid = tmp("tempo_change.mid");
    // clang-format off
    const unsigned char bytes[] = {
        'M', 'T', 'h', 'd', 0, 0, 0, 6, 0, 1, 0, 2, 0x01, 0xE0,   // format 1, 2 tracks, 480 ppq
        'M', 'T', 'r', 'k', 0, 0, 0, 12,
        0x83, 0x60, 0xFF, 0x51, 0x03, 0x0F, 0x42, 0x40,           // beat 1: 60 bpm
        0x00, 0xFF, 0x2F, 0x00,
        'M', 'T', 'r', 'k', 0, 0, 0, 14,
        0x87, 0x40, 0x90, 69, 100,                                // beat 2: note on
        0x83, 0x60, 0x80, 69, 0,                                  // beat 3: note off
        0x00, 0xFF, 0x2F, 0x00};
    // clang-format on
    std::ofstream(mid, std::ios::binary).write(reinterpret_cast<const char*>(bytes), sizeof bytes);
    const auto out = tmp("tempo_change.wav");
    const auto r = run(fmt::format("render tests/fixtures/bad/good.toml --midi '{}' -o '{}'",
                                   mid.string(), out.string()));
    ASSERT_EQ(r.status, 0) << r.output;
    const auto m = mono(readSoundFile(out.string()));
    const auto onset = t::onset(m, 1e-4);
    EXPECT_NEAR(static_cast<double>(onset), 1.5 * 48000, 480) << "onset at " << onset;
    // the note-off, one beat at 60 bpm later, gives 2.5 s + the 2 s tail
    EXPECT_NEAR(static_cast<double>(m.size()), 4.5 * 48000, 1);
}

// A delta of 0x0FFFFFFF ticks (77 hours) is refused, unless --duration gives the length.
TEST(Cli, AbsurdMidiLengthNeedsDuration) {
    const auto out = tmp("absurd.wav");
    const auto refused = run(fmt::format(
        "render tests/fixtures/bad/good.toml --midi tests/fixtures/bad/absurd_delta.mid "
        "-o '{}'",
        out.string()));
    EXPECT_EQ(refused.status, 1);
    EXPECT_NE(refused.output.find("--duration"), std::string::npos) << refused.output;
    const auto r = run(fmt::format(
        "render tests/fixtures/bad/good.toml --midi tests/fixtures/bad/absurd_delta.mid "
        "--duration 1 --tail 0 -o '{}'",
        out.string()));
    ASSERT_EQ(r.status, 0) << r.output;
    const auto a = readSoundFile(out.string());
    EXPECT_EQ(a.frames(), 48000);
    EXPECT_GT(t::peak(a.samples), 0.01); // the first note plays
}

TEST(Cli, FormatsAndEncodings) {
    for (const auto& [file, args] : std::vector<std::pair<std::string, std::string>>{
             {"f.flac", ""},
             {"f.aiff", "--encoding pcm24"},
             {"f.ogg", ""},
             {"f.wav", "--encoding pcm16"},
             {"f.raw", "--format wav --encoding float64"}}) {
        const auto out = tmp(file);
        const auto r = run(fmt::format("render presets/fmbells.toml --midi presets/fmbells.mid "
                                       "--duration 1 --tail 0 {} -o '{}'",
                                       args, out.string()));
        ASSERT_EQ(r.status, 0) << file << r.output;
        const auto a = readSoundFile(out.string());
        EXPECT_EQ(a.sr, 48000) << file;
        EXPECT_NEAR(static_cast<double>(a.frames()), 48000, 1) << file;
        EXPECT_GT(t::peak(a.samples), 0.01) << file;
    }
}

// A voice whose init code writes a global with no look at giSpinoutWarmUp plays in the
// plugin what a render does not (Processor.InitCodeTheWarmUpWouldRunWithEffectsIsWarnedOf):
// check and render say so, naming the line, and go on.
TEST(Cli, CheckAndRenderWarnOfInitCodeThePluginsWarmUpWouldRun) {
    const auto session = kRoot / "tests/fixtures/warm_up/round_robin.toml";
    const auto check = run(fmt::format("check '{}'", session.string()));
    EXPECT_EQ(check.status, 0) << check.output;
    const auto render =
        run(fmt::format("render '{}' --midi presets/polysynth.mid --duration 0.5 -o '{}'",
                        session.string(), tmp("round_robin.wav").string()));
    EXPECT_EQ(render.status, 0) << render.output;
    for (const auto& r : {check, render})
        EXPECT_NE(r.output.find(fmt::format("warning: {}:15:1: instr 'voice' writes the global "
                                            "giNext at init: the plugin's warm-up of the voices "
                                            "does that too",
                                            session.string())),
                  std::string::npos)
            << r.output;
}

TEST(Cli, CheckAndInfo) {
    for (const auto& name : kPresets) {
        const auto c = run(fmt::format("check presets/{}.toml", name));
        EXPECT_EQ(c.status, 0) << c.output;
        EXPECT_EQ(c.output.find("warning"), std::string::npos) << c.output;
        const auto i = run(fmt::format("info presets/{}.toml", name));
        EXPECT_EQ(i.status, 0);
        EXPECT_NE(i.output.find("ports:"), std::string::npos);
        EXPECT_NE(i.output.find("presets:"), std::string::npos);
    }
    // check reports every error, not just the first
    const auto bad = tmp("two_errors.toml");
    std::ifstream in(kRoot / "tests/fixtures/bad/good.toml");
    std::stringstream ss;
    ss << in.rdbuf();
    auto text = ss.str();
    text.replace(text.find("min = 40"), 8, "min = 20000");
    text.replace(text.find("unit = \"hz\""), 11, "unit = \"hertz\"");
    std::ofstream(bad) << text;
    const auto r = run(fmt::format("check '{}'", bad.string()));
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("must be below max"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("unknown unit 'hertz'"), std::string::npos) << r.output;
}

namespace {

// A session of n instrs, instr i a sine: the limit is on their number, not their size.
fs::path bigSession(int n, std::size_t padTo = 0) {
    const auto path = tmp(fmt::format("big_{}_{}.toml", n, padTo));
    std::ofstream f(path);
    f << "[session]\nname = \"Big\"\nuri = \"urn:spinout:test-big\"\nkind = \"instrument\"\n"
         "audio_outputs = 2\n\n[engine]\nksmps = 64\n\n";
    std::size_t size = 0;
    for (int i = 0; i < n || size < padTo; ++i) {
        const auto instr = fmt::format("[instr.v{}]\nbody = '''\n|kfreq=440, iamp=0.2|\n"
                                       "a1 = oscili:a(iamp, kfreq)\noutch 1, a1, 2, a1\n'''\n\n",
                                       i);
        f << instr;
        size += instr.size();
    }
    f << "[midi]\ninstr = \"v0\"\npitch = \"kfreq\"\nvoices = 4\n";
    return path;
}

} // namespace

TEST(Cli, ASessionAtTheInstrLimitChecksAndPlaysItsLastInstr) {
    const auto session = bigSession(990);
    const auto c = run(fmt::format("check '{}'", session.string()));
    EXPECT_EQ(c.status, 0) << c.output;
    EXPECT_NE(c.output.find("ok (990 instrs"), std::string::npos) << c.output;
    const auto score = tmp("big_score.toml");
    std::ofstream(score) << "[[event]]\ninstr = \"v989\"\ntime = 0.1\ndur = 0.5\n"
                            "args = { kfreq = 660 }\n";
    const auto out = tmp("big.wav");
    const auto r = run(fmt::format("render '{}' --score '{}' --tail 0 -o '{}'", session.string(),
                                   score.string(), out.string()));
    ASSERT_EQ(r.status, 0) << r.output;
    const auto m = mono(readSoundFile(out.string()));
    const std::vector<double> tone(m.begin() + 9600, m.begin() + 24000);
    EXPECT_NEAR(t::frequency(tone, 48000), 660, 1);
}

TEST(Cli, ASessionPastTheInstrLimitIsRefusedNamingTheFirstInstrPastIt) {
    const auto session = bigSession(1000);
    for (const char* cmd : {"check '{}'", "render '{}' -o /dev/null"}) {
        const auto r = run(fmt::format(fmt::runtime(cmd), session.string()));
        EXPECT_EQ(r.status, 1) << r.output;
        // instr 991 starts on line 10 + 7 * 990
        EXPECT_NE(r.output.find(fmt::format("{}:6940:8: too many instrs: 1000 (a session has at "
                                            "most 990)",
                                            session.filename().string())),
                  std::string::npos)
            << r.output;
    }
}

TEST(Cli, AFiftyMegabyteSessionIsRefusedAtOnce) {
    const auto session = bigSession(0, 50u << 20);
    ASSERT_GE(fs::file_size(session), 50u << 20);
    for (const char* cmd : {"check '{}'", "render '{}' -o /dev/null"}) {
        const auto start = std::chrono::steady_clock::now();
        const auto r = run(fmt::format(fmt::runtime(cmd), session.string()));
        const double secs =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        EXPECT_EQ(r.status, 1) << r.output;
        EXPECT_NE(r.output.find("the session file is 50.0 MiB; a session is at most 4 MiB"),
                  std::string::npos)
            << r.output;
        EXPECT_LT(secs, 5.0) << "refused before it is parsed";
    }
}

// check compiles each instr in an engine of its own when the session has errors: 400
// engines one after the other crashed in libjack's load once Csound had leaked the
// process's thread keys (see Engine).
TEST(Cli, CheckReportsAnErrorInTheLastOfFourHundredInstrs) {
    const auto session = bigSession(400);
    std::string text;
    {
        std::ifstream in(session);
        std::stringstream ss;
        ss << in.rdbuf();
        text = ss.str();
    }
    const auto at = text.find("[instr.v399]");
    ASSERT_NE(at, std::string::npos);
    text.replace(text.find("oscili:a", at), 8, "oscilx:a");
    const auto broken = tmp("big_broken.toml");
    std::ofstream(broken) << text;
    const auto r = run(fmt::format("check '{}'", broken.string()));
    EXPECT_EQ(r.status, 1) << r.output.substr(0, 2000);
    // the line of the opcode (the policy check parses each instr before Csound compiles it)
    EXPECT_NE(r.output.find("big_broken.toml:2806:"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("oscilx"), std::string::npos) << r.output;
}

// The shipped score does what its comments say: the F chord's bass starts with a brighter
// filter (kcutoff = 2500 over the port's 1800) and darkens at 3.6 s (a set to 900).
TEST(Cli, ThePolysynthScoresFilterSettingsAreAudible) {
    std::ifstream in(kRoot / "presets/polysynth.score.toml");
    std::stringstream ss;
    ss << in.rdbuf();
    auto plain = ss.str();
    const std::string own = "kcutoff = 2500, ";
    ASSERT_NE(plain.find(own), std::string::npos);
    plain.erase(plain.find(own), own.size());
    const auto plainScore = tmp("polysynth_plain.score.toml");
    std::ofstream(plainScore) << plain;
    auto renderScore = [](const std::string& score, const std::string& name) {
        const auto out = tmp(name);
        EXPECT_EQ(run(fmt::format("render presets/polysynth.toml --score '{}' -o '{}'", score,
                                  out.string()))
                      .status,
                  0);
        return mono(readSoundFile(out.string()));
    };
    const auto shipped = renderScore((kRoot / "presets/polysynth.score.toml").string(), "ps.wav");
    const auto withoutArg = renderScore(plainScore.string(), "ps_plain.wav");
    ASSERT_EQ(shipped.size(), withoutArg.size());
    // the same until the F chord; there, the bass's own cutoff is heard
    std::vector<double> diff(shipped.size());
    for (std::size_t i = 0; i < diff.size(); ++i)
        diff[i] = shipped[i] - withoutArg[i];
    EXPECT_EQ(t::peak(t::window(diff, 48000, 0, 2.99)), 0);
    const auto f = t::window(diff, 48000, 3.05, 3.55);
    EXPECT_GT(t::rms(f), 0.01 * t::rms(t::window(shipped, 48000, 3.05, 3.55)));
    // what the brighter filter adds lies high, far above the bass's fundamental (F1, 43.7 Hz)
    EXPECT_GT(t::meanFrequency(f, 48000), 1000) << "near the cutoffs (1.8 and 2.5 kHz)";
}
