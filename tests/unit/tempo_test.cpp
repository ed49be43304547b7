// The host's tempo and transport in the core (the host.* channels, the clock that moves
// them on between positions, ports in beats) and program changes, through a Processor
// and real Csound.
#include "spinout/processor.hpp"
#include "spinout/session_file.hpp"
#include "spinout/support.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cmath>

using namespace spinout;

namespace {

// Options at a sample rate (the others as they come: an untrusted session, no watchdog).
ProcessorOptions atRate(double sr) {
    ProcessorOptions o;
    o.sr = static_cast<int>(sr);
    return o;
}

constexpr double kSr = 48000;
constexpr int kKsmps = 64;

// An effect that takes the host's time: a port in beats converted to ms, an enum of note
// values converted to seconds, and one in beats as they are.
const char* kTempoSession = R"(
[session]
name = "Tempo probe"
uri = "urn:spinout:test-tempo"
kind = "effect"
host_time = true
[engine]
ksmps = 64
[instr.pass]
body = '''
a1, a2 ins
outs a1, a2
'''
[[run]]
instr = "pass"
[[port]]
symbol = "delay"
target = "chn:delay"
unit = "beat"
to = "ms"
min = 0.25
max = 4
default = 0.5
[[port]]
symbol = "note"
target = "chn:note"
scale = "enum"
choices = ["1/16", "1/8", "1/4"]
values = [0.25, 0.5, 1]
unit = "beat"
to = "s"
default = 1
[[port]]
symbol = "beats"
target = "chn:beats"
unit = "beat"
min = 0
max = 16
default = 2
)";

SessionSpec spec(const std::string& text) {
    return parseSessionText(text, "test.toml");
}

// Runs `blocks` blocks of `n` frames with the positions given for the first one.
void run(Processor& p, std::uint32_t n, int blocks, std::vector<TimePosition> positions = {}) {
    std::vector<float> l(n), r(n);
    float* outs[] = {l.data(), r.data()};
    for (int b = 0; b < blocks; ++b) {
        p.process(nullptr, outs, n, {}, positions);
        positions.clear();
    }
}

TimePosition rolling(std::uint32_t frame, double bpm, double beat) {
    TimePosition t;
    t.frame = frame;
    t.time.fields = HostTime::bpmField | HostTime::beatField | HostTime::speedField;
    t.time.bpm = bpm;
    t.time.beat = beat;
    t.time.speed = 1;
    return t;
}

} // namespace

TEST(HostTime, TheClockMovesOnAtTheTempoAndWrapsIntoBars) {
    HostClock c;
    c.bpm = 120;
    c.speed = 1;
    c.beatsPerBar = 3;
    c.barBeat = 2.5;
    c.bar = 4;
    c.beat = 14.5;
    advanceClock(c, 24000, kSr); // half a second: one beat at 120 bpm
    EXPECT_DOUBLE_EQ(c.beat, 15.5);
    EXPECT_DOUBLE_EQ(c.bar, 5);
    EXPECT_DOUBLE_EQ(c.barBeat, 0.5);
    EXPECT_DOUBLE_EQ(c.seconds, 0.5);
    c.speed = -1; // backwards across the bar line
    advanceClock(c, 48000, kSr);
    EXPECT_DOUBLE_EQ(c.beat, 13.5);
    EXPECT_DOUBLE_EQ(c.bar, 4);
    EXPECT_DOUBLE_EQ(c.barBeat, 1.5);
    c.speed = 0; // stopped: nothing moves
    advanceClock(c, 48000, kSr);
    EXPECT_DOUBLE_EQ(c.beat, 13.5);
    EXPECT_DOUBLE_EQ(beatsToSeconds(0.5, 120), 0.25);
    EXPECT_DOUBLE_EQ(beatsToSeconds(0.5, 90), 1.0 / 3);
}

// Csound moves the channels on by itself between positions, with the very sums the
// processor does: the channels equal a clock advanced cycle by cycle, to the last bit.
TEST(HostTime, TheChannelsMoveOnEveryCycleWhileTheTransportRolls) {
    Processor p(spec(kTempoSession), atRate(kSr));
    ASSERT_TRUE(p.takesHostTime());
    auto& e = p.engine();
    run(p, kKsmps, 10); // stopped at first: 120 bpm, 4/4, beat 0
    EXPECT_EQ(e.control(support::host::kBpm), 120);
    EXPECT_EQ(e.control(support::host::kBeat), 0);
    EXPECT_EQ(e.control(support::host::kPlaying), 0);
    EXPECT_EQ(e.control(support::host::kBeatsPerBar), 4);

    // a full position at the start of a cycle, then nothing more from the host
    TimePosition t;
    t.time.fields = HostTime::allFields;
    t.time.bpm = 96;
    t.time.bar = 3;
    t.time.barBeat = 3.5;
    t.time.beat = 15.5;
    t.time.beatsPerBar = 4;
    t.time.beatUnit = 4;
    t.time.speed = 1;
    t.time.frame = 96000;
    HostClock expected;
    expected.bpm = 96;
    expected.bar = 3;
    expected.barBeat = 3.5;
    expected.beat = 15.5;
    expected.speed = 1;
    expected.seconds = 2;
    run(p, kKsmps, 1, {t});
    for (int cycle = 1; cycle <= 500; ++cycle) {
        EXPECT_EQ(e.control(support::host::kBeat), expected.beat) << cycle;
        EXPECT_EQ(e.control(support::host::kBarBeat), expected.barBeat) << cycle;
        EXPECT_EQ(e.control(support::host::kBar), expected.bar) << cycle;
        EXPECT_EQ(e.control(support::host::kSeconds), expected.seconds) << cycle;
        EXPECT_EQ(e.control(support::host::kPlaying), 1);
        advanceClock(expected, kKsmps, kSr);
        run(p, kKsmps, 1);
    }
    // 500 cycles of 64 frames at 96 bpm: 1.6 beats a second for 0.667 s
    EXPECT_NEAR(e.control(support::host::kBeat), 15.5 + 1.6 * 500 * 64 / kSr, 1e-9);
    EXPECT_EQ(e.control(support::host::kBar), 4); // past the bar line at beat 16
    EXPECT_EQ(e.control(support::host::kBeat), expected.beat);
    advanceClock(expected, kKsmps, kSr); // the processor's clock is at the coming cycle
    EXPECT_EQ(p.hostClock().beat, expected.beat);
}

// A position inside a cycle takes effect for that whole cycle, with its values as they
// stood at the cycle's start: positions sent at every block give one steady beat.
TEST(HostTime, APositionLandsInItsCycleAsItStoodAtTheCycleStart) {
    Processor p(spec(kTempoSession), atRate(kSr));
    auto& e = p.engine();
    run(p, 100, 1, {rolling(36, 120, 10)}); // frame 36 of the first cycle
    const double start = 10 - 2.0 * 36 / kSr;
    EXPECT_DOUBLE_EQ(e.control(support::host::kBeat), start);
    // a host that sends the position at every block of 100 frames, all consistent
    Processor q(spec(kTempoSession), atRate(kSr));
    double beat = 10 - 2.0 * 36 / kSr + 2.0 * 50 / kSr; // at frame 50
    run(q, 50, 1);
    std::vector<float> l(100), r(100);
    float* outs[] = {l.data(), r.data()};
    for (int b = 0; b < 40; ++b) {
        const TimePosition t[] = {rolling(0, 120, beat)};
        q.process(nullptr, outs, 100, {}, t);
        beat += 2.0 * 100 / kSr;
    }
    // 4050 frames: 63 cycles performed; the last one started at frame 3968
    EXPECT_NEAR(q.engine().control(support::host::kBeat), start + 2.0 * 3968 / kSr, 1e-12);
}

TEST(HostTime, AStopKeepsTheBeatWhereItWasAndTheOtherValues) {
    Processor p(spec(kTempoSession), atRate(kSr));
    auto& e = p.engine();
    run(p, kKsmps, 1, {rolling(0, 150, 0)});
    run(p, kKsmps, 99);
    const double beat = e.control(support::host::kBeat);
    EXPECT_NEAR(beat, 2.5 * 99 * 64 / kSr, 1e-12);
    TimePosition stop;
    stop.frame = 10;
    stop.time.fields = HostTime::speedField; // what a host sends when it stops
    stop.time.speed = 0;
    run(p, kKsmps, 1, {stop});
    run(p, kKsmps, 20);
    EXPECT_NEAR(e.control(support::host::kBeat), beat + 2.5 * 64 / kSr, 1e-12);
    EXPECT_EQ(e.control(support::host::kPlaying), 0);
    EXPECT_EQ(e.control(support::host::kBpm), 150);
    // values a host should never send are left out
    TimePosition bad;
    bad.time.fields = HostTime::bpmField | HostTime::beatField;
    bad.time.bpm = -3;
    bad.time.beat = std::nan("");
    run(p, kKsmps, 2, {bad});
    EXPECT_EQ(e.control(support::host::kBpm), 150);
    EXPECT_TRUE(std::isfinite(e.control(support::host::kBeat)));
}

TEST(HostTime, PortsInBeatsReachTheirTargetsAsTimeAtTheTempo) {
    Processor p(spec(kTempoSession), atRate(kSr));
    auto& e = p.engine();
    run(p, kKsmps, 2);
    EXPECT_DOUBLE_EQ(e.control("delay"), 250); // 0.5 beat at 120 bpm, in ms
    EXPECT_DOUBLE_EQ(e.control("note"), 0.25); // "1/8": 0.5 beat, in s
    EXPECT_DOUBLE_EQ(e.control("beats"), 2);   // no `to`: beats as they are
    run(p, kKsmps, 2, {rolling(5, 90, 0)});
    EXPECT_DOUBLE_EQ(e.control("delay"), 0.5 * 60 / 90 * 1000);
    EXPECT_DOUBLE_EQ(e.control("note"), 0.5 * 60 / 90);
    p.setPort(0, 1.5);
    p.setPort(1, 2); // "1/4"
    run(p, kKsmps, 2);
    EXPECT_DOUBLE_EQ(e.control("delay"), 1.5 * 60 / 90 * 1000);
    EXPECT_DOUBLE_EQ(e.control("note"), 1.0 * 60 / 90);
    EXPECT_DOUBLE_EQ(p.port(1), 2); // the port keeps the choice's index
    EXPECT_DOUBLE_EQ(e.control("beats"), 2);
}

TEST(HostTime, ASessionWithoutHostTimeHasNoClock) {
    auto s = spec(kTempoSession);
    s.hostTime = false;
    for (auto& port : s.ports)
        port.to = BeatConversion::none;
    Processor p(s, atRate(kSr));
    EXPECT_FALSE(p.takesHostTime());
    run(p, kKsmps, 2, {rolling(0, 90, 4)});
    EXPECT_EQ(p.engine().control(support::host::kBpm), 0); // nothing wrote it
    EXPECT_DOUBLE_EQ(p.engine().control("delay"), 0.5);
}

TEST(HostTime, SessionFilesSayWhatIsWrongWithBeatPorts) {
    auto errorOf = [](const std::string& text) -> std::string {
        try {
            parseSessionText(text, "s.toml");
        } catch (const SessionFileError& e) {
            return e.diagnostics().front().str();
        }
        return "no error";
    };
    const std::string head = R"([session]
name = "x"
uri = "urn:x"
kind = "effect"
[instr.pass]
body = '''
a1, a2 ins
outs a1, a2
'''
)";
    EXPECT_NE(errorOf(head + "[[port]]\nsymbol = \"d\"\ntarget = \"chn:d\"\nunit = \"ms\"\nto = "
                             "\"ms\"\n")
                  .find("s.toml:14:6: port 'd': to = \"ms\" converts beats: it needs unit = "
                        "\"beat\""),
              std::string::npos);
    EXPECT_NE(errorOf(head + "[[port]]\nsymbol = \"d\"\ntarget = \"chn:d\"\nunit = \"beat\"\nto = "
                             "\"min\"\n")
                  .find("to must be \"s\" or \"ms\", not \"min\""),
              std::string::npos);
    EXPECT_NE(errorOf(head + "[[port]]\nsymbol = \"d\"\ntarget = \"chn:d\"\nscale = \"enum\"\n"
                             "choices = [\"a\", \"b\"]\nvalues = [1]\n")
                  .find("port 'd': 1 values for 2 choices"),
              std::string::npos);
    EXPECT_NE(errorOf(head + "[[port]]\nsymbol = \"d\"\ntarget = \"chn:d\"\nvalues = [1]\n")
                  .find("values go with scale = \"enum\""),
              std::string::npos);
    std::string declared = head;
    declared.insert(declared.find("[instr"), "host_time = false\n");
    EXPECT_NE(errorOf(declared + "[[port]]\nsymbol = \"d\"\ntarget = \"chn:d\"\nunit = "
                                 "\"beat\"\nto = \"s\"\n")
                  .find("host_time = false, but port 'd' converts beats"),
              std::string::npos);
    EXPECT_NE(errorOf(head + "[[port]]\nsymbol = \"events\"\ntarget = \"chn:d\"\n")
                  .find("port symbol 'events' is reserved"),
              std::string::npos);
    // a port converted from beats gives the session host time by itself
    EXPECT_TRUE(parseSessionText(head + "[[port]]\nsymbol = \"d\"\ntarget = \"chn:d\"\nunit = "
                                        "\"beat\"\nto = \"s\"\n",
                                 "s.toml")
                    .hostTime);
    EXPECT_FALSE(parseSessionText(head, "s.toml").hostTime);
}

// ---- Program changes ----

namespace {

// Presets in an order that is not the alphabet's; `other` is left out of `zeta`.
const char* kProgramSession = R"(
[session]
name = "Program probe"
uri = "urn:spinout:test-programs"
kind = "effect"
[instr.pass]
body = '''
|klevel=0.1|
a1, a2 ins
outs a1 * klevel, a2 * klevel
'''
[[run]]
instr = "pass"
[[port]]
symbol = "level"
target = "pass.klevel"
default = 0.1
midi_cc = 7
[[port]]
symbol = "other"
target = "chn:other"
max = 10
default = 2
[[port]]
symbol = "shown"
source = "chn:other"
max = 10
[preset.zeta]
level = 0.7
[preset.alpha]
level = 0.3
other = 9
)";

void program(Processor& p, int number, std::uint32_t frame = 0) {
    std::vector<float> l(kKsmps), r(kKsmps);
    float* outs[] = {l.data(), r.data()};
    const MidiMessage m[] = {{frame,
                              2,
                              {static_cast<std::uint8_t>(0xC0 | (number >> 7)),
                               static_cast<std::uint8_t>(number & 0x7F), 0}}};
    p.process(nullptr, outs, kKsmps, m);
}

} // namespace

TEST(Programs, ProgramNAppliesTheNthPresetInFileOrder) {
    const auto s = spec(kProgramSession);
    ASSERT_EQ(s.presets.size(), 2u);
    EXPECT_EQ(s.presets[0].name, "zeta"); // file order, for program numbers and for info
    Processor p(s, atRate(kSr));
    EXPECT_EQ(p.numPrograms(), 2u);
    auto& e = p.engine();
    program(p, 1);
    EXPECT_FLOAT_EQ(p.port(0), 0.3f);
    EXPECT_DOUBLE_EQ(e.control("other"), 9);
    program(p, 0); // zeta leaves `other` out: it goes back to its default, as its LV2 preset
    EXPECT_FLOAT_EQ(p.port(0), 0.7f);
    EXPECT_DOUBLE_EQ(e.control("other"), 2);
    program(p, 2); // past the last preset: nothing
    program(p, 127);
    EXPECT_FLOAT_EQ(p.port(0), 0.7f);
    EXPECT_DOUBLE_EQ(e.control("other"), 2);
}

TEST(Programs, APresetsValuesStayUntilTheHostMovesThatPort) {
    Processor p(spec(kProgramSession), atRate(kSr));
    auto& e = p.engine();
    // the host sets its ports every block, as a plugin's run() does
    auto hostBlock = [&](double level, double other, int number = -1) {
        p.setPort(0, level);
        p.setPort(1, other);
        if (number >= 0)
            program(p, number, 10);
        else
            run(p, kKsmps, 1);
    };
    hostBlock(0.1, 2);
    hostBlock(0.1, 2, 1);
    for (int i = 0; i < 5; ++i)
        hostBlock(0.1, 2); // the host's knobs stayed: the preset's values stay
    EXPECT_FLOAT_EQ(p.port(0), 0.3f);
    EXPECT_DOUBLE_EQ(e.control("other"), 9);
    hostBlock(0.1, 4); // the host moves one port: it takes the host's value, the other stays
    EXPECT_FLOAT_EQ(p.port(0), 0.3f);
    EXPECT_DOUBLE_EQ(e.control("other"), 4);
    EXPECT_DOUBLE_EQ(p.port(2), 4); // the output port shows it
}
