// The spinout command and the host's tempo: --bpm, what it refuses and warns about, and
// the .csd of a tempo-synced preset, which the csound command renders to the same samples.
#include "spinout/sound_file.hpp"

#include "../common/analysis.hpp"
#include "../common/command.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

using namespace spinout;
namespace fs = std::filesystem;
namespace t = spinout::test;

namespace {

// A second of stereo clicks, one every 0.25 s.
fs::path clicks() {
    const auto path = t::tmp("tempo_clicks.wav");
    if (fs::exists(path)) return path;
    SoundFileWriter w(path.string(), 48000, 2);
    std::vector<double> buf(2 * 48000, 0.0);
    for (int i = 0; i < 48000; i += 12000)
        buf[static_cast<std::size_t>(2 * i)] = buf[static_cast<std::size_t>(2 * i + 1)] = 0.5;
    w.write(buf.data(), 48000);
    w.commit();
    return path;
}

} // namespace

TEST(CliTempo, BpmIsCheckedAndSaysWhenItChangesNothing) {
    const auto in = clicks().string();
    const auto out = t::tmp("tempo_out.wav").string();
    for (const char* bad : {"0", "1001", "nan", "-5"}) {
        const auto r = t::run(fmt::format(
            "render presets/stereodelay.toml --input '{}' --bpm {} -o '{}'", in, bad, out));
        EXPECT_EQ(r.status, 2) << bad << ": " << r.output;
        EXPECT_NE(r.output.find("give a tempo from 1 to 1000 beats a minute"), std::string::npos)
            << r.output;
    }
    auto r = t::run(fmt::format("render presets/polysynth.toml --midi presets/polysynth.mid "
                                "--bpm 90 -o '{}'",
                                out));
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.output.find("error: --bpm: with --midi the MIDI file's tempo map gives the tempo"),
              std::string::npos)
        << r.output;
    r = t::run(fmt::format("render presets/polysynth.toml --score presets/polysynth.score.toml "
                           "--bpm 90 -o '{}'",
                           out));
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("warning: the session takes no host time (host_time): --bpm changes "
                            "nothing"),
              std::string::npos)
        << r.output;
    r = t::run(
        fmt::format("render presets/stereodelay.toml --input '{}' --bpm 90 -o '{}'", in, out));
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(r.output.find("warning"), std::string::npos) << r.output;
}

// The positions a render hands the session are journaled as channel writes: the exported
// .csd plays the synced presets at the tempo given, sample for sample.
TEST(CliTempo, TheCsoundCommandRendersASyncedPresetsCsdToTheSameSamples) {
    for (const char* name : {"stereodelay", "lfofilter"}) {
        const auto how = fmt::format("presets/{}.toml --input '{}' --preset synced --bpm 93", name,
                                     clicks().string());
        const auto ours = t::tmp(fmt::format("{}_synced.wav", name));
        const auto csd = t::tmp(fmt::format("{}_synced.csd", name));
        const auto theirs = t::tmp(fmt::format("{}_synced_csound.wav", name));
        ASSERT_EQ(t::run(fmt::format("render {} -o '{}'", how, ours.string())).status, 0);
        const auto r = t::run(fmt::format("csd {} -o '{}'", how, csd.string()));
        ASSERT_EQ(r.status, 0) << r.output;
        fs::remove(theirs);
        const auto cmd =
            fmt::format("cd '{}' && csound -o '{}' '{}' > '{}.log' 2>&1", t::tmp("").string(),
                        theirs.string(), csd.string(), csd.string());
        ASSERT_EQ(std::system(cmd.c_str()), 0) << "csound failed on " << csd;
        const auto a = readSoundFile(ours.string());
        const auto b = readSoundFile(theirs.string());
        ASSERT_LE(a.samples.size(), b.samples.size()) << name;
        double maxDiff = 0;
        for (std::size_t i = 0; i < a.samples.size(); ++i)
            maxDiff = std::max(maxDiff, std::fabs(a.samples[i] - b.samples[i]));
        EXPECT_LE(maxDiff, 1e-6) << name;
        EXPECT_GT(t::peak(a.samples), 0.01) << name;
        // and the tempo made a difference: at 120 the same preset sounds otherwise
        const auto other = t::tmp(fmt::format("{}_synced_120.wav", name));
        ASSERT_EQ(t::run(fmt::format("render presets/{}.toml --input '{}' --preset synced -o "
                                     "'{}'",
                                     name, clicks().string(), other.string()))
                      .status,
                  0);
        const auto c = readSoundFile(other.string());
        double diff = 0;
        for (std::size_t i = 0; i < std::min(a.samples.size(), c.samples.size()); ++i)
            diff = std::max(diff, std::fabs(a.samples[i] - c.samples[i]));
        EXPECT_GT(diff, 0.01) << name;
    }
}
