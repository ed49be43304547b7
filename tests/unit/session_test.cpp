// csoundengine's Session documentation, reproduced and listened to.
#include "spinout/session.hpp"
#include "spinout/sound_file.hpp"

#include "../common/analysis.hpp"
#include "../common/stepped_session.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using namespace spinout;
namespace t = spinout::test;

namespace {

constexpr double kSr = 48000;

class SessionTest : public ::testing::Test {
protected:
    void SetUp() override { make(1); }
    void make(int nchnls, int ksmps = 64) {
        EngineOptions o;
        o.nchnls = nchnls;
        o.ksmps = ksmps;
        r = std::make_unique<t::SteppedSession>(o);
    }
    Session& s() { return r->session; }
    // Renders until `until` seconds; returns channel `ch` of everything rendered so far.
    std::vector<double> render(double until, int ch = 0) {
        r->perform(until);
        return r->channel(ch);
    }
    std::unique_ptr<t::SteppedSession> r;
};

} // namespace

// 1. Instrument templates: a filter declared before the generator, scheduled after it.
TEST_F(SessionTest, FilterAfterGeneratorThroughAChannel) {
    s().defInstr("filt", R"(
    Schan strget p5
    kcutoff = p6
    a0 chnget Schan
    a0 moogladder2 a0, kcutoff, 0.9
    outch 1, a0
    chnclear Schan
)");
    s().defInstr("myvco", R"(
    kfreq = p5
    kamp = p6
    Schan strget p7
    a0 = vco2:a(kamp, kfreq)
    chnset a0, Schan
)");
    auto synth = s().sched("myvco", 0, -1, 0,
                           {{"kfreq", 440.0}, {"kamp", 0.1}, {"Schan", std::string("chan1")}});
    auto filt = s().sched("filt", 0, -1, 2, {{"kcutoff", 1000.0}, {"Schan", std::string("chan1")}});
    EXPECT_LT(synth.p1, filt.p1); // priority 2 is a later instr number
    auto out = render(1.0);
    const auto tail = t::window(out, kSr, 0.5, 1.0);
    const double openRms = t::rms(tail);
    EXPECT_NEAR(t::pitch(tail, kSr), 440, 1); // the resonance at 1 kHz lifts the 2nd harmonic
    EXPECT_GT(openRms, 0.02);
    // the filter removes the saw's upper harmonics: the cutoff moves the level
    s().set(filt, "kcutoff", 100);
    out = render(2.0);
    EXPECT_LT(t::rms(t::window(out, kSr, 1.5, 2.0)), 0.1 * openRms);
}

// 2. Named pfields with pset defaults.
TEST_F(SessionTest, PsetDefaultsFillUnnamedArgs) {
    s().defInstr("sine", R"(
    pset p1, p2, p3, 0, 0.1, 1000
    iamp = p5
    kfreq = p6
    a0 = oscili:a(iamp, kfreq)
    outch 1, a0
)");
    auto synth = s().sched("sine", 0, -1, 0, {{"kfreq", 440.0}});
    auto out = render(0.5);
    EXPECT_NEAR(t::frequency(out, kSr), 440, 0.5);
    EXPECT_NEAR(t::peak(out), 0.1, 1e-3); // iamp took its pset default
    // pfields assigned to k-variables can be modified by name
    s().set(synth, "kfreq", 660);
    out = render(1.0);
    EXPECT_NEAR(t::frequency(t::window(out, kSr, 0.55, 1.0), kSr), 660, 0.5);
    EXPECT_THROW(s().set(synth, "iamp", 0.5), SessionError); // init-time arg
}

// 3. Dynamic controls: set, then automated from 440 to 880 Hz.
TEST_F(SessionTest, DynamicControlsSetAndAutomated) {
    s().defInstr("sine", "outch 1, oscili:a(kamp, kfreq)\n", {{"kamp", 0.1}, {"kfreq", 1000.0}});
    auto synth = s().sched("sine", 0, -1, 0, {{"kfreq", 800.0}});
    auto out = render(0.5);
    EXPECT_NEAR(t::frequency(t::window(out, kSr, 0.05, 0.5), kSr), 800, 0.5);
    s().set(synth, "kfreq", 1000);
    out = render(1.0);
    EXPECT_NEAR(t::frequency(t::window(out, kSr, 0.55, 1.0), kSr), 1000, 0.5);
    EXPECT_DOUBLE_EQ(s().getControl(synth, "kfreq"), 1000);
    const double pairs[] = {0, 440, 2, 880};
    s().automate(synth, "kfreq", pairs);
    out = render(4.0);
    // a linear glide: 550 Hz half a second in, 880 Hz once it is over
    EXPECT_NEAR(t::frequency(t::window(out, kSr, 1.45, 1.55), kSr), 550, 6);
    EXPECT_NEAR(t::frequency(t::window(out, kSr, 1.95, 2.05), kSr), 660, 6);
    EXPECT_NEAR(t::frequency(t::window(out, kSr, 3.2, 4.0), kSr), 880, 0.5);
    EXPECT_NEAR(t::peak(t::window(out, kSr, 3.2, 4.0)), 0.1, 1e-3);
    // the doc's own call: overtake starts from the current value (880) and names
    // the control without its k
    const double back[] = {0, 0, 2, 440};
    s().automate(synth, "freq", back, {}, 0, true);
    out = render(5.0);
    EXPECT_NEAR(t::frequency(t::window(out, kSr, 4.95, 5.05), kSr), 660, 8);
}

// 4. Inline arguments.
TEST_F(SessionTest, InlineArgsUseTheirDefaults) {
    s().defInstr("sine", R"(
    |iamp=0.1, kfreq=1000|
    a0 = oscili:a(iamp, kfreq)
    outch 1, a0
)");
    s().sched("sine");
    auto out = render(0.5);
    EXPECT_NEAR(t::frequency(out, kSr), 1000, 0.5);
    EXPECT_NEAR(t::peak(out), 0.1, 1e-3);
}

// The assignBus example: a sender and a receiver on an audio bus, the frequency
// read from a control bus that glides from 880 to 440.
TEST_F(SessionTest, SenderAndReceiverOnBuses) {
    s().defInstr("sender", R"(
ibus = p5
ifreqbus = p6
kfreq = busin:k(ifreqbus)
asig vco2 0.1, kfreq
busout(ibus, asig)
)");
    s().defInstr("receiver", R"(
ibus  = p5
kgain = p6
asig = busin:a(ibus)
asig *= a(kgain)
outch 1, asig
)");
    auto bus = s().assignBus(BusKind::audio);
    auto freqbus = s().assignBus(BusKind::control, 880);
    EXPECT_DOUBLE_EQ(s().readBus(freqbus), 880);
    s().sched("sender", 0, -1, 0, {{"ibus", bus}, {"ifreqbus", freqbus}});
    s().sched("receiver", 0, -1, 2, {{"ibus", bus}, {"kgain", 0.5}});
    EXPECT_EQ(s().busRefCount(bus), 3);
    const double glide[] = {0, 880, 5, 440};
    s().automateBus(freqbus, glide);
    auto out = render(6.0);
    EXPECT_NEAR(t::frequency(t::window(out, kSr, 0.0, 0.1), kSr), 880, 10);
    EXPECT_NEAR(t::frequency(t::window(out, kSr, 2.45, 2.55), kSr), 660, 8);
    EXPECT_NEAR(t::frequency(t::window(out, kSr, 5.2, 6.0), kSr), 440, 0.5);
    EXPECT_NEAR(t::peak(t::window(out, kSr, 5.2, 6.0)), 0.05, 0.01);
    EXPECT_NEAR(s().readBus(freqbus), 440, 1e-9);
}

// Priorities: a filter at priority 2 processes what priority 1 wrote in the same
// cycle; at priority 1 it would see an already cleared bus.
TEST_F(SessionTest, PrioritiesOrderTheChainWithinOneCycle) {
    s().defInstr("gen", "|ibus|\nbusout(ibus, oscili:a(0.3, 300))\n");
    s().defInstr("copy", "|ibus|\noutch 1, busin:a(ibus)\n");
    s().defInstr("ref", "outch 1, oscili:a(0.3, 300)\n");
    auto bus = s().assignBus();
    s().sched("gen", 0, 0.5, 1, {{"ibus", bus}});
    s().sched("copy", 0, 0.5, 2, {{"ibus", bus}});
    auto chained = render(0.5);
    make(1);
    s().defInstr("ref", "outch 1, oscili:a(0.3, 300)\n");
    s().sched("ref", 0, 0.5);
    auto direct = render(0.5);
    ASSERT_EQ(chained.size(), direct.size());
    EXPECT_EQ(chained, direct); // not a sample late
    EXPECT_GT(t::rms(direct), 0.2);

    make(1);
    s().defInstr("gen", "|ibus|\nbusout(ibus, oscili:a(0.3, 300))\n");
    s().defInstr("copy", "|ibus|\noutch 1, busin:a(ibus)\n");
    auto bus2 = s().assignBus();
    s().sched("gen", 0, 0.5, 2, {{"ibus", bus2}});
    s().sched("copy", 0, 0.5, 1, {{"ibus", bus2}});
    EXPECT_EQ(t::peak(render(0.5)), 0); // the reader runs first and finds the bus cleared
}

TEST_F(SessionTest, BodyUsingP4IsRejected) {
    EXPECT_THROW(s().defInstr("bad", "ifreq = p4\nouts oscili:a(0.1, ifreq), a(0)\n"), InstrError);
    EXPECT_EQ(s().getInstr("bad"), nullptr);
}

TEST_F(SessionTest, CsoundSyntaxErrorNamesTheBodyLine) {
    s().defInstr("broken", "|kfreq=440|\na1 oscili 0.1, kfreq\na2 = a1 +* 3\nouts a1, a1\n");
    try {
        s().sched("broken");
        FAIL() << "no error";
    } catch (const InstrError& e) {
        EXPECT_EQ(e.line, 3) << e.what();
        EXPECT_NE(std::string(e.what()).find("instr 'broken', line 3"), std::string::npos)
            << e.what();
    }
    // the session goes on working
    s().defInstr("fine", "outch 1, oscili:a(0.2, 500)\n");
    s().sched("fine");
    EXPECT_NEAR(t::frequency(render(0.3), kSr), 500, 0.5);
}

TEST_F(SessionTest, UnschedLetsTheReleaseTailPlay) {
    s().defInstr("env", R"(
|kfreq=500|
aenv linsegr 0, 0.01, 1, 0.3, 0
outch 1, oscili:a(0.5, kfreq) * aenv
)");
    auto synth = s().sched("env");
    render(0.5);
    EXPECT_TRUE(s().isPlaying(synth));
    EXPECT_EQ(s().activeSynths().size(), 1u);
    s().unsched(synth);
    auto out = render(1.0);
    EXPECT_GT(t::rms(t::window(out, kSr, 0.55, 0.65)), 0.05); // still sounding, fading
    EXPECT_LT(t::rms(t::window(out, kSr, 0.55, 0.65)), t::rms(t::window(out, kSr, 0.3, 0.4)));
    EXPECT_EQ(t::peak(t::window(out, kSr, 0.82, 1.0)), 0); // over after 0.3 s
    EXPECT_FALSE(s().isPlaying(synth));
    EXPECT_TRUE(s().activeSynths().empty());
}

TEST_F(SessionTest, UnschedAllAndFutureEvents) {
    s().defInstr("tone", "|kfreq=500|\nouts oscili:a(0.1, kfreq), a(0)\n");
    make(2);
    s().defInstr("tone", "|kfreq=500|\noutch 1, oscili:a(0.1, kfreq)\n");
    auto a = s().sched("tone", 0, -1, 0, {{"kfreq", 300.0}});
    auto b = s().sched("tone", 0, -1, 0, {{"kfreq", 700.0}});
    auto later = s().sched("tone", 1.0, -1, 0, {{"kfreq", 900.0}});
    render(0.2);
    EXPECT_EQ(s().activeSynths().size(), 2u); // two held instances of one instr, unique p1
    EXPECT_NE(a.p1, b.p1);
    s().unschedAll();
    render(0.5);
    EXPECT_TRUE(s().activeSynths().empty());
    EXPECT_TRUE(s().isScheduled(later));
    s().unschedAll(true);
    auto out = render(1.5);
    EXPECT_FALSE(s().isScheduled(later));
    EXPECT_EQ(t::peak(t::window(out, kSr, 0.3, 1.5)), 0);
}

// A note at a delay starts at that very frame, whatever its place in the cycle.
TEST_F(SessionTest, SampleAccurateOnsets) {
    for (int offset = 0; offset < 200; ++offset) {
        make(1);
        s().defInstr("click", "aone init 1\noutch 1, aone\n");
        render(0.01); // start mid-performance: 8 cycles in
        const auto start = s().frame();
        s().sched("click", offset / kSr, 0.01);
        auto out = render(0.1);
        EXPECT_EQ(t::onset(out, 0.5), start + offset) << "offset " << offset;
    }
}

TEST_F(SessionTest, DelayedSetAndAutomationShapes) {
    s().defInstr("c", "|kx=0|\nouts a(0), a(0)\n");
    make(1);
    s().defInstr("c", "|kx=0|\noutch 1, a(kx) * 0\n");
    struct Case {
        const char* mode;
        double quarter; // value a quarter of the way through 0 -> 1
    };
    for (const auto& c : {Case{"linear", 0.25}, Case{"cos", (1 - std::cos(M_PI / 4)) / 2},
                          Case{"smooth", 0.15625}, Case{"expon(2)", 0.0625}}) {
        auto synth = s().sched("c");
        render(s().time() + 0.1);
        const double pairs[] = {0, 0, 1, 1};
        const double t0 = s().time();
        s().automate(synth, "kx", pairs, *AutomationMode::parse(c.mode));
        render(t0 + 0.25 + 1.0 / 750); // the value written in the cycle at 0.25 s
        EXPECT_NEAR(s().getControl(synth, "kx"), c.quarter, 0.01) << c.mode;
        render(t0 + 1.2);
        EXPECT_DOUBLE_EQ(s().getControl(synth, "kx"), 1) << c.mode;
        s().set(synth, "kx", 5, 0.5);
        render(t0 + 1.6);
        EXPECT_DOUBLE_EQ(s().getControl(synth, "kx"), 1) << "set came early";
        render(t0 + 1.8);
        EXPECT_DOUBLE_EQ(s().getControl(synth, "kx"), 5) << "delayed set";
        s().unsched(synth);
    }
    EXPECT_FALSE(AutomationMode::parse("wobbly"));
    EXPECT_FALSE(AutomationMode::parse("expon(0)"));
    EXPECT_DOUBLE_EQ(AutomationMode::parse("expon( 2.5 )")->exponent, 2.5);
}

// Found by fuzzing the score parser: std::stod's own exceptions escaped it.
TEST(AutomationMode, ExponTakesOnlyAFinitePositiveNumber) {
    EXPECT_EQ(AutomationMode::parse("expon( +2.5 )")->exponent, 2.5);
    EXPECT_EQ(AutomationMode::parse("expon(1e-1)")->exponent, 0.1);
    // x^X with X <= 0 is infinite at the curve's start
    for (const char* bad : {"expon(e)", "expon(1e999)", "expon()", "expon(nan)", "expon(2",
                            "expon(1-2)", "expon(0x10)", "expon(-1e-1)", "expon(0)", "expon(+-1)"})
        EXPECT_FALSE(AutomationMode::parse(bad)) << bad;
    // a megabyte of digits: nothing, not a stack overflow
    EXPECT_FALSE(AutomationMode::parse("expon(" + std::string(1 << 20, '1') + ")"));
}

TEST_F(SessionTest, BusesAreReferenceCounted) {
    s().defInstr("w", "|ibus|\nbusout(ibus, a(0))\n");
    auto bus = s().assignBus();
    EXPECT_EQ(s().busRefCount(bus), 1);
    s().sched("w", 0, 0.1, 0, {{"ibus", bus}});
    EXPECT_EQ(s().busRefCount(bus), 2);
    render(0.3);
    EXPECT_EQ(s().busRefCount(bus), 1); // the instance ended
    s().releaseBus(bus);
    EXPECT_EQ(s().busRefCount(bus), 0);
    EXPECT_THROW(s().sched("w", 0, 0.1, 0, {{"ibus", bus}}), SessionError);
    auto again = s().assignBus();
    EXPECT_EQ(again.token, bus.token); // the token is free again
    auto kbus = s().assignBus(BusKind::control, 0.5);
    s().writeBus(kbus, 0.75);
    EXPECT_DOUBLE_EQ(s().readBus(kbus), 0.75);
    EXPECT_THROW(s().assignBus(BusKind::audio, 1.0), SessionError);
}

TEST_F(SessionTest, TablesFeedInstruments) {
    const std::vector<double> data = {220, 330, 440};
    const int tab = s().makeTable(data);
    s().defInstr("lookup", "|itab, iidx|\nouts oscili:a(0.2, table:i(iidx, itab)), a(0)\n");
    make(2);
    const int tab2 = s().makeTable(data);
    s().defInstr("lookup", "|itab, iidx|\noutch 1, oscili:a(0.2, table:i(iidx, itab))\n");
    s().sched("lookup", 0, -1, 0, {{"itab", double(tab2)}, {"iidx", 2.0}});
    EXPECT_NEAR(t::frequency(render(0.5), kSr), 440, 0.5);
    (void)tab;
}

TEST_F(SessionTest, PlaySampleKeepsTheOriginalPitch) {
    const auto path = std::filesystem::temp_directory_path() / "spinout_sample_44k.wav";
    {
        SoundFileWriter w(path.string(), 44100, 1);
        std::vector<double> v(44100);
        for (std::size_t i = 0; i < v.size(); ++i)
            v[i] = 0.4 * std::sin(2 * M_PI * 441 * static_cast<double>(i) / 44100);
        w.write(v.data(), static_cast<std::int64_t>(v.size()));
        w.commit();
    }
    auto table = s().readSoundfile(path.string());
    EXPECT_EQ(table.sr, 44100);
    EXPECT_EQ(table.nchnls, 1);
    EXPECT_EQ(table.frames, 44100);
    auto synth = s().playSample(table);
    auto out = render(1.5);
    EXPECT_NEAR(t::frequency(t::window(out, kSr, 0.1, 0.9), kSr), 441, 0.5);
    EXPECT_NEAR(t::peak(t::window(out, kSr, 0.1, 0.9)), 0.4, 0.01);
    EXPECT_EQ(t::peak(t::window(out, kSr, 1.05, 1.5)), 0); // one second long
    EXPECT_FALSE(s().isPlaying(synth));
    std::filesystem::remove(path);
}

TEST_F(SessionTest, ArgErrorsAreClear) {
    s().defInstr("x", "|kfreq=1, Sname=\"a\"|\nouts a(0), a(0)\n");
    EXPECT_THROW(s().sched("nope"), SessionError);
    EXPECT_THROW(s().sched("x", 0, -1, 0, {{"kfoo", 1.0}}), SessionError);
    EXPECT_THROW(s().sched("x", 0, -1, 0, {{"Sname", 1.0}}), SessionError);
    EXPECT_THROW(s().sched("x", 0, -1, 0, {{"kfreq", std::string("a")}}), SessionError);
    EXPECT_THROW(s().sched("x", 0, -1, 99), SessionError);
    EXPECT_THROW(s().sched("x", -1), SessionError);
    EXPECT_THROW(s().defInstr("x", "outs a(0), a(0)\n"), SessionError);
}

// The OfflineEngine model: time moves only when asked; between steps the caller
// reads channels and variables.
TEST(Offline, StepsAndReadsBetween) {
    const auto dir = std::filesystem::temp_directory_path() / "spinout_offline_test";
    std::filesystem::create_directories(dir);
    {
        std::ofstream inc(dir / "udos.inc");
        inc << "opcode twice, k, k\n  kx xin\n  xout kx * 2\nendop\n";
    }
    EngineOptions eo;
    eo.nchnls = 1;
    eo.searchDir = dir.string();
    t::SteppedSession r(eo);
    r.session.includeFile("udos.inc");
    r.session.compile("giCount init 0\n");
    r.session.defInstr("t", R"(
|kfreq=440|
chnset twice(kfreq), "twice"
giCount += 1
outch 1, oscili:a(0.2, kfreq)
)");
    r.session.sched("t", 0.5, 1.0, 0, {{"kfreq", 330.0}});
    r.perform(0.25);
    EXPECT_NEAR(r.time(), 0.25, 64 / kSr);
    EXPECT_EQ(r.engine.control("twice"), 0); // not started yet
    r.perform(1.0);
    EXPECT_DOUBLE_EQ(r.engine.control("twice"), 660);
    EXPECT_GT(r.engine.evalCode("return giCount"), 0);
    r.perform(1.75);
    const auto ch = r.channel(0);
    EXPECT_EQ(t::onset(ch, 1e-6), 24000 + 1); // a sine from phase 0: sample 24000 is 0
    EXPECT_NEAR(t::frequency(t::window(ch, kSr, 0.6, 1.4), kSr), 330, 0.5);
    EXPECT_EQ(t::peak(t::window(ch, kSr, 1.51, 1.75)), 0); // over after its 1 s
    std::filesystem::remove_all(dir);
}
