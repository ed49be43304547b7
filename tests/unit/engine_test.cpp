#include "spinout/engine.hpp"
#include "spinout/sound_file.hpp"

#include "../common/analysis.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>

using namespace spinout;

namespace {

EngineOptions mono(int ksmps = 64) {
    EngineOptions o;
    o.nchnls = 1;
    o.ksmps = ksmps;
    return o;
}

std::vector<double> run(Engine& e, int cycles) {
    std::vector<double> out;
    for (int c = 0; c < cycles; ++c) {
        EXPECT_TRUE(e.performKsmps());
        out.insert(out.end(), e.spout(), e.spout() + e.ksmps() * e.nchnls());
    }
    return out;
}

void start(Engine& e, double instr, double dur = -1) {
    const double p[] = {instr, 0, dur};
    ASSERT_TRUE(e.scoreEvent('i', p));
}

} // namespace

TEST(Engine, CompileErrorNamesTheLine) {
    Engine e(mono());
    auto err = e.compile("instr 1\n  a1 oscili 0.1, 440\n  a2 = a1 +* 2\n  outch 1, a1\nendin\n");
    ASSERT_TRUE(err.has_value());
    EXPECT_EQ(err->line, 3);
    EXPECT_NE(err->message.find("syntax error"), std::string::npos) << err->message;
}

TEST(Engine, UnknownOpcodeIsAnError) {
    Engine e(mono());
    auto err = e.compile("instr 1\n  a1 nosuchopcode 0.1, 440\n  outch 1, a1\nendin\n");
    ASSERT_TRUE(err.has_value());
    EXPECT_EQ(err->line, 2);
}

TEST(Engine, MessagesNeverReachStdout) {
    testing::internal::CaptureStdout();
    testing::internal::CaptureStderr();
    {
        Engine e(mono());
        e.compile("instr 1\n prints \"hello\\n\"\n a1 = foo bar\nendin\n");
        e.compile("instr 2\n prints \"hello from 2\\n\"\nendin\n");
        start(e, 2, 0.01);
        run(e, 2);
    }
    EXPECT_EQ(testing::internal::GetCapturedStdout(), "");
    EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

TEST(Engine, PrintsGoToTheMessageRing) {
    Engine e(mono());
    ASSERT_FALSE(e.compile("instr 2\n prints \"hello from 2\\n\"\nendin\n"));
    start(e, 2, 0.01);
    run(e, 2);
    std::string all;
    e.messages().drain([&](MessageLevel, const char* t) { all += t; });
    EXPECT_NE(all.find("hello from 2"), std::string::npos) << all;
}

TEST(Engine, SpinToSpoutThroughCsound) {
    EngineOptions o = mono(32);
    o.nchnlsIn = 2;
    o.nchnls = 2;
    Engine e(o);
    ASSERT_FALSE(e.compile("instr 1\n a1, a2 ins\n outch 1, a2 * 0.5, 2, a1\nendin\n"));
    start(e, 1);
    for (int c = 0; c < 4; ++c) {
        for (int i = 0; i < 32; ++i) {
            e.spin()[2 * i] = 0.001 * (c * 32 + i);
            e.spin()[2 * i + 1] = -0.002 * (c * 32 + i);
        }
        ASSERT_TRUE(e.performKsmps());
        for (int i = 0; i < 32; ++i) {
            EXPECT_DOUBLE_EQ(e.spout()[2 * i], -0.001 * (c * 32 + i));
            EXPECT_DOUBLE_EQ(e.spout()[2 * i + 1], 0.001 * (c * 32 + i));
        }
    }
    EXPECT_EQ(e.frame(), 128);
}

TEST(Engine, RendersTheRequestedPitchAndLevel) {
    Engine e(mono());
    ASSERT_FALSE(e.compile("instr 1\n outch 1, oscili:a(0.25, 441)\nendin\n"));
    start(e, 1);
    auto out = run(e, 750); // one second
    EXPECT_NEAR(test::frequency(out, 48000), 441, 0.5);
    EXPECT_NEAR(test::peak(out), 0.25, 1e-3);
    EXPECT_NEAR(test::rms(out), 0.25 / std::sqrt(2.0), 1e-3);
}

TEST(Engine, ChannelsBothWays) {
    Engine e(mono());
    ASSERT_FALSE(e.compile(R"(
instr 1
  kin chnget "gain"
  chnset kin * 2, "doubled"
  Sname chnget "name"
  chnset strcat(Sname, "!"), "shout"
  a1 chnget "audio_in"
  chnset a1 * 3, "audio_out"
endin
)"));
    e.setControl("gain", 0.25);
    e.setString("name", "spin");
    double* ain = e.audioChannel("audio_in");
    for (int i = 0; i < 64; ++i)
        ain[i] = i / 64.0;
    start(e, 1);
    run(e, 2);
    EXPECT_DOUBLE_EQ(e.control("doubled"), 0.5);
    EXPECT_EQ(e.getString("shout"), "spin!");
    const double* aout = e.audioChannel("audio_out");
    for (int i = 0; i < 64; ++i)
        EXPECT_DOUBLE_EQ(aout[i], 3 * i / 64.0);
    // the cached pointer stays the same channel
    EXPECT_EQ(e.controlChannel("gain"), e.controlChannel("gain"));
}

TEST(Engine, TablesMadeFilledAndReadBack) {
    Engine e(mono());
    const std::vector<double> data = {0.5, -0.25, 0.125, 1};
    const int t = e.makeTable(data);
    ASSERT_GT(t, 0);
    auto view = e.table(t);
    ASSERT_EQ(view.size(), data.size());
    EXPECT_TRUE(std::equal(data.begin(), data.end(), view.begin()));
    // Csound code reads what the host wrote, and the host reads what Csound wrote
    ASSERT_FALSE(e.compile(
        fmt::format("instr 1\n chnset table:k(2, {0}), \"v\"\n tablew 7, 0, {0}\nendin\n", t)));
    start(e, 1, 0.01);
    run(e, 2);
    EXPECT_DOUBLE_EQ(e.control("v"), 0.125);
    EXPECT_DOUBLE_EQ(e.table(t)[0], 7);
    EXPECT_DOUBLE_EQ(e.evalCode(fmt::format("return ftlen({})", t)), 4);
    e.freeTable(t);
    EXPECT_TRUE(e.table(t).empty());
}

TEST(Engine, ReadsASoundFileIntoATable) {
    const auto path = std::filesystem::temp_directory_path() / "spinout_engine_gen1.wav";
    {
        SoundFileWriter w(path.string(), 44100, 1);
        std::vector<double> ramp(1000);
        for (int i = 0; i < 1000; ++i)
            ramp[static_cast<std::size_t>(i)] = i / 1000.0;
        w.write(ramp.data(), 1000);
        w.commit();
    }
    Engine e(mono());
    const int t = e.readSoundFile(path.string());
    auto view = e.table(t);
    ASSERT_GE(view.size(), 1000u);
    EXPECT_NEAR(view[500], 0.5, 1e-6);
    EXPECT_DOUBLE_EQ(e.evalCode(fmt::format("return ftsr({})", t)), 44100);
    EXPECT_THROW(e.readSoundFile("/nonexistent/file.wav"), EngineError);
    std::filesystem::remove(path);
}

TEST(Engine, EvalCodeReturnsAValue) {
    Engine e(mono());
    EXPECT_DOUBLE_EQ(e.evalCode("return 6 * 7"), 42);
    EXPECT_THROW(e.evalCode("return nosuchthing(3)"), EngineError);
}

// The policy check's way in: what `admit` reads is Csound's parse in this engine, and
// only an admitted tree is compiled; a refused one leaves no instr and runs no global code.
TEST(Engine, CompileCheckedCompilesOnlyWhatItAdmits) {
    Engine e(mono());
    const std::string code = "giSeen = 7\n"
                             "instr 5\n"
                             "  a1 oscili 0.25, 440\n"
                             "  outch 1, a1\n"
                             "endin\n";
    std::vector<OrcCall> seen;
    auto refused = e.compileChecked(code, [&](const OrcParse& parsed) {
        seen = parsed.calls;
        return false;
    });
    ASSERT_TRUE(refused.has_value());
    EXPECT_TRUE(refused->refused);
    const auto oscili = std::find_if(seen.begin(), seen.end(),
                                     [](const OrcCall& c) { return c.opcode == "oscili"; });
    ASSERT_NE(oscili, seen.end());
    EXPECT_EQ(oscili->line, 3);
    EXPECT_EQ(oscili->scope, "instr 5");
    EXPECT_THROW(e.evalCode("return giSeen"), EngineError); // the global code never ran
    start(e, 5, 0.1);
    const auto silent = run(e, 4);
    EXPECT_EQ(*std::max_element(silent.begin(), silent.end()), 0.0); // no instr 5

    EXPECT_FALSE(e.compileChecked(code, [](const OrcParse&) { return true; }).has_value());
    EXPECT_DOUBLE_EQ(e.evalCode("return giSeen"), 7);
    start(e, 5, 0.1);
    const auto sound = run(e, 4);
    EXPECT_NEAR(*std::max_element(sound.begin(), sound.end()), 0.25, 0.01);

    // a parse error is Csound's, as compile() reports it, and admit never sees it
    bool asked = false;
    auto err = e.compileChecked("instr 6\n  a1 = 1 +* 2\nendin\n", [&](const OrcParse&) {
        asked = true;
        return true;
    });
    ASSERT_TRUE(err.has_value());
    EXPECT_FALSE(err->refused);
    EXPECT_EQ(err->line, 2);
    EXPECT_FALSE(asked);
}

// Csound splits its search folders at ':' and ';': a session folder holding either would
// add folders to search (found by attack: "/x/evil:/etc" read files from /etc).
TEST(Engine, AFolderCsoundWouldSplitIsRefused) {
    for (const char* dir : {"/tmp/evil:/etc", "/tmp/x;..", "/tmp/a:..:b"}) {
        auto o = mono();
        o.searchDir = dir;
        EXPECT_THROW(Engine e(o), EngineError) << dir;
    }
}

TEST(Engine, RelativePathsResolveAgainstTheSearchDir) {
    const auto dir = std::filesystem::temp_directory_path() / "spinout_engine_ssdir";
    std::filesystem::create_directories(dir);
    {
        SoundFileWriter w((dir / "one.wav").string(), 48000, 1);
        std::vector<double> v(10, 0.75);
        w.write(v.data(), 10);
        w.commit();
    }
    EngineOptions o = mono();
    o.searchDir = dir.string();
    Engine e(o);
    const int t = e.readSoundFile("one.wav");
    EXPECT_NEAR(e.table(t)[3], 0.75, 1e-6);
    std::filesystem::remove_all(dir);
}

// Eight engines interleaved cycle by cycle give what one engine gives alone.
TEST(Engine, EightEnginesSideBySide) {
    const char* orc = R"(
instr 1
  kfreq = p4
  a1 vco2 0.2, kfreq
  a1 moogladder2 a1, 1200 + 800 * lfo:k(1, 3), 0.4
  aL, aR reverbsc a1, a1, 0.8, 9000
  outch 1, a1 + 0.3 * aL
endin
)";
    auto make = [&](double freq) {
        auto e = std::make_unique<Engine>(mono());
        EXPECT_FALSE(e->compile(orc));
        const double p[] = {1, 0, -1, freq};
        e->scoreEvent('i', p);
        return e;
    };
    std::vector<std::vector<double>> alone;
    for (int k = 0; k < 8; ++k) {
        auto e = make(110.0 * (k + 1));
        alone.push_back(run(*e, 300));
    }
    std::vector<std::unique_ptr<Engine>> engines;
    for (int k = 0; k < 8; ++k)
        engines.push_back(make(110.0 * (k + 1)));
    std::vector<std::vector<double>> together(8);
    for (int c = 0; c < 300; ++c)
        for (int k = 0; k < 8; ++k) {
            auto& e = *engines[static_cast<std::size_t>(k)];
            ASSERT_TRUE(e.performKsmps());
            together[static_cast<std::size_t>(k)].insert(
                together[static_cast<std::size_t>(k)].end(), e.spout(), e.spout() + 64);
        }
    for (std::size_t k = 0; k < 8; ++k) {
        EXPECT_EQ(alone[k], together[k]) << "engine " << k;
        EXPECT_GT(test::rms(together[k]), 0.01);
    }
    EXPECT_NE(alone[0], alone[1]);
}

TEST(Engine, RejectsBadOptions) {
    EngineOptions o;
    o.ksmps = 0;
    EXPECT_THROW(Engine e(o), EngineError);
}

// A string literal spinout writes reads back as its text, whatever bytes it holds, and
// none of them reaches Csound's preprocessor: a CR in a string argument once ended the
// generated line and ran the rest as code (found by attack), and #exit, ###, $NAME,
// #include and a backslash before ; act inside strings.
TEST(Engine, AStringLiteralReadsBackAsItsTextAndRunsNothing) {
    Engine e(mono());
    ASSERT_FALSE(e.compile("giRan init 0\n"));
    std::string everyByte;
    for (int b = 1; b < 256; ++b)
        everyByte += static_cast<char>(b);
    const std::vector<std::string> texts = {
        "plain words",
        "x\r\rgiRan = 1\rSjunk = ",
        "x\ngiRan = 1\n",
        "#exit",
        "###\n###",
        "$M_PI and $NOPE",
        "#include \"/etc/passwd\"",
        "a\\;\ngiRan = 1",
        "{{ }} /* // ; \" \\",
        "caf\xc3\xa9 \xff",
        everyByte,
    };
    for (const auto& text : texts) {
        const auto err = e.compile(fmt::format("chnset {}, \"read\"\n", csoundString(text)));
        ASSERT_FALSE(err) << err->message;
        EXPECT_EQ(e.getString("read"), text);
    }
    run(e, 1);
    const auto ran = e.evalCode("return giRan");
    EXPECT_EQ(ran, 0) << "code in a string ran";
}

// Csound has no API for its random generators: the engine finds them in Csound's private
// state, and code between the two opcodes draws nothing later code misses (the voices'
// warm-up). A fresh engine's draws are the reference: what Csound's own generators make.
TEST(Engine, RandomDrawsBetweenKeepAndRestoreAreUndone) {
    const auto firstDraws = [](const std::string& before) {
        Engine e(EngineOptions{});
        if (!before.empty()) e.evalCode(before + "\nreturn 0");
        return std::array<double, 3>{e.evalCode("return random:i(0, 1)"),
                                     e.evalCode("return unirand:i(1)"),
                                     e.evalCode("return rnd(1)")};
    };
    const auto fresh = firstDraws("");
    const std::string draws = "i1 = random:i(0, 1)\ni2 = unirand:i(1)\ni3 = rnd(1)\n"
                              "i4 = gauss:i(1)\ni5 = birnd(1)";
    EXPECT_NE(firstDraws(draws), fresh) << "the draws move the generators on";
    EXPECT_EQ(firstDraws(fmt::format("{}\n{}\n{}", Engine::kKeepRandomOpcode, draws,
                                     Engine::kRestoreRandomOpcode)),
              fresh);
    EXPECT_TRUE(Engine(EngineOptions{}).randomStateFound());
}
