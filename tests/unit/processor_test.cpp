// The block processor: what a host hears, whatever its block sizes.
#include "spinout/processor.hpp"
#include "spinout/session_file.hpp"
#include "spinout/support.hpp"

#include "../common/analysis.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <filesystem>
#include <random>

using namespace spinout;
namespace t = spinout::test;

namespace {

constexpr double kSr = 48000;

// A small instrument: a sine voice (or a click) into a gain stage on a bus.
std::string synthSession(int voices = 8, const std::string& voiceBody = "") {
    const std::string body = voiceBody.empty() ? R"(|kpitch=60, iamp=0.5, ibus=0|
aenv = linsegr:a(0, 0.005, 1, 0.05, 0)
busmix(ibus, oscili:a(iamp * 0.3, mtof:k(kpitch)) * aenv)
)"
                                               : voiceBody;
    return fmt::format(R"(
[session]
name = "Test synth"
uri = "urn:spinout:test-synth"
kind = "instrument"
[engine]
ksmps = 64
[instr.voice]
priority = 1
body = '''
{}'''
[instr.out]
priority = 2
body = '''
|ibus=0, kgain=1|
a0 = busin:a(ibus) * kgain
outch 1, a0, 2, a0
'''
[bus.mix]
kind = "audio"
[[run]]
instr = "out"
args = {{ ibus = "bus:mix" }}
[midi]
instr = "voice"
pitch = "kpitch"
velocity = "iamp"
voices = {}
bend_range = 2
args = {{ ibus = "bus:mix" }}
[[port]]
symbol = "gain"
target = "out.kgain"
min = 0
max = 2
default = 1
midi_cc = 7
[[port]]
symbol = "probe"
target = "chn:probe"
min = 0
max = 10
default = 5
)",
                       body, voices);
}

// synthSession's text with global code in its [engine] table.
std::string withGlobals(std::string text, const std::string& globals) {
    const std::string engine = "[engine]\nksmps = 64\n";
    return text.replace(text.find(engine), engine.size(),
                        engine + "globals = '''\n" + globals + "'''\n");
}

struct Note {
    std::int64_t frame;
    std::uint8_t b0, b1, b2;
};

// Plays notes through a Processor in blocks of the given sizes (used in turn).
std::vector<float> play(const SessionSpec& spec, const std::vector<Note>& notes,
                        const std::vector<std::uint32_t>& blocks, std::int64_t frames,
                        Processor* existing = nullptr) {
    std::unique_ptr<Processor> own;
    Processor* p = existing;
    if (p == nullptr) {
        own = std::make_unique<Processor>(spec);
        p = own.get();
    }
    std::vector<float> out;
    std::vector<float> l(8192), r(8192);
    float* outs[] = {l.data(), r.data()};
    std::size_t ni = 0, bi = 0;
    for (std::int64_t pos = 0; pos < frames;) {
        const auto n = static_cast<std::uint32_t>(
            std::min<std::int64_t>(blocks[bi++ % blocks.size()], frames - pos));
        std::vector<MidiMessage> midi;
        for (; ni < notes.size() && notes[ni].frame < pos + n; ++ni)
            midi.push_back({static_cast<std::uint32_t>(notes[ni].frame - pos),
                            3,
                            {notes[ni].b0, notes[ni].b1, notes[ni].b2}});
        p->process(nullptr, outs, n, midi);
        for (std::uint32_t i = 0; i < n; ++i)
            out.push_back(l[i]);
        pos += n;
    }
    return out;
}

std::vector<Note> phrase() {
    return {{100, 0x90, 60, 100},   {100, 0x90, 64, 90},   {5000, 0xB0, 64, 127},
            {9000, 0x80, 60, 0},    {12000, 0x90, 67, 80}, {20000, 0xE0, 0, 0x60},
            {26000, 0xB0, 64, 0},   {27000, 0xB0, 7, 90},  {30000, 0x80, 64, 0},
            {33333, 0xE0, 0, 0x40}, {40000, 0x80, 67, 0},  {41001, 0x90, 72, 127},
            {50000, 0x80, 72, 0}};
}

} // namespace

TEST(Processor, OutputIsIdenticalWhateverTheBlockSizes) {
    const auto spec = parseSessionText(synthSession(), "synth.toml");
    const std::int64_t frames = 60000;
    const auto reference = play(spec, phrase(), {64}, frames);
    EXPECT_GT(t::peak(std::vector<double>(reference.begin(), reference.end())), 0.05);
    for (const auto& blocks : std::vector<std::vector<std::uint32_t>>{
             {1}, {7}, {100}, {256}, {1000}, {4096}, {1, 7, 64, 100, 256, 1000, 4096}, {8192}}) {
        EXPECT_EQ(play(spec, phrase(), blocks, frames), reference)
            << "blocks starting " << blocks.front();
    }
    std::mt19937 rng(7);
    std::vector<std::uint32_t> random;
    for (int i = 0; i < 200; ++i)
        random.push_back(1 + rng() % 700);
    EXPECT_EQ(play(spec, phrase(), random, frames), reference) << "random block sizes";
}

TEST(Processor, NoteStartsAtItsFramePlusTheReportedLatency) {
    const auto spec = parseSessionText(
        synthSession(8, "|kpitch=60, iamp=0.5, ibus=0|\naone init 1\nbusmix(ibus, aone * iamp)\n"),
        "click.toml");
    for (std::int64_t at : {0, 64, 89, 1000, 1001, 1023, 1024, 1063, 1065}) {
        for (std::uint32_t block : {1u, 64u, 100u, 333u}) {
            Processor p(spec);
            EXPECT_EQ(p.latency(), 64);
            const auto out = play(spec, {{at, 0x90, 60, 127}}, {block}, 3000, &p);
            const std::vector<double> d(out.begin(), out.end());
            EXPECT_EQ(t::onset(d, 0.5), at + p.latency())
                << "note at " << at << ", blocks of " << block;
        }
    }
}

// The voices' warm-up (every instance's first init pass) runs when the Processor is made, in
// a cycle of its own, not in the host's first block; a session that may schedule at load
// (here only a comment says "schedule") has it in the first block instead. Both play the
// same samples.
TEST(Processor, TheVoicesWarmUpBeforeTheFirstBlock) {
    const std::string counting = R"(|kpitch=60, iamp=0.5, ibus=0|
iinits chnget "inits"
chnset iinits + 1, "inits"
aenv = linsegr:a(0, 0.005, 1, 0.05, 0)
busmix(ibus, oscili:a(iamp * 0.3, mtof:k(kpitch)) * aenv)
)";
    std::vector<std::vector<float>> outputs;
    for (const bool mayScheduleAtLoad : {false, true}) {
        const auto body = mayScheduleAtLoad ? counting + "; no schedule here\n" : counting;
        const auto spec = parseSessionText(synthSession(8, body), "synth.toml");
        Processor p(spec);
        EXPECT_EQ(p.engine().frame(), 0);
        EXPECT_EQ(p.engine().control("inits"), mayScheduleAtLoad ? 0 : 24) << "8 voices x 3";
        outputs.push_back(
            play(spec, {{100, 0x90, 69, 127}, {9000, 0x80, 69, 0}}, {256}, 24000, &p));
        EXPECT_EQ(p.engine().control("inits"), 25) << "the warm-up and the note";
    }
    EXPECT_GT(t::peak(std::vector<double>(outputs[0].begin(), outputs[0].end())), 0.1);
    EXPECT_EQ(outputs[0], outputs[1]);
}

// A note that starts on a cycle's first frame and ends later in that cycle: its stop
// reached Csound before its start, found nothing to stop, and the note sounded for ever
// (found by attack; hosts that put notes on block boundaries make it likely). It ends now.
// A note shorter than a cycle plays nothing, as in Csound's own score; a note of just
// over one cycle sounds and ends.
TEST(Processor, ANoteThatStartsAndEndsInOneCycleEnds) {
    const auto spec = parseSessionText(synthSession(), "synth.toml");
    for (const std::int64_t length : {1, 25, 63, 65}) {
        Processor p(spec);
        const auto out =
            play(spec, {{6400, 0x90, 69, 127}, {6400 + length, 0x80, 69, 0}}, {256}, 48000, &p);
        const std::vector<double> d(out.begin(), out.end());
        EXPECT_EQ(t::peak(t::window(d, kSr, 0.5, 1.0)), 0) << "a note of " << length << " frames";
        EXPECT_EQ(p.activeVoices(), 0);
    }
}

TEST(Processor, SustainPedalHoldsReleasedNotes) {
    const auto spec = parseSessionText(synthSession(), "synth.toml");
    const auto out =
        play(spec,
             {{0, 0x90, 69, 127}, {2000, 0xB0, 64, 127}, {4800, 0x80, 69, 0}, {24000, 0xB0, 64, 0}},
             {256}, 36000);
    const std::vector<double> d(out.begin(), out.end());
    EXPECT_GT(t::rms(t::window(d, kSr, 0.3, 0.45)), 0.05); // held by the pedal past the note off
    EXPECT_EQ(t::peak(t::window(d, kSr, 0.56, 0.7)), 0);   // pedal up at 0.5 s, 50 ms release
}

TEST(Processor, PitchBendMovesThePitchByTheBendRange) {
    const auto spec = parseSessionText(synthSession(), "synth.toml");
    const auto out = play(spec, {{0, 0x90, 69, 127}, {24000, 0xE0, 0x7F, 0x7F}}, {512}, 48000);
    const std::vector<double> d(out.begin(), out.end());
    EXPECT_NEAR(t::frequency(t::window(d, kSr, 0.1, 0.45), kSr), 440, 0.5);
    // full bend up: +2 semitones (8191/8192 of the range)
    EXPECT_NEAR(t::frequency(t::window(d, kSr, 0.55, 0.95), kSr),
                440 * std::pow(2, 2 * 8191.0 / 8192 / 12), 0.5);
}

TEST(Processor, OldestVoiceIsStolenBeyondTheLimit) {
    const auto spec = parseSessionText(synthSession(4), "synth.toml");
    Processor p(spec);
    std::vector<Note> notes;
    for (int i = 0; i < 6; ++i)
        notes.push_back({i * 100, 0x90, static_cast<std::uint8_t>(60 + i), 100});
    play(spec, notes, {128}, 4800, &p);
    EXPECT_EQ(p.activeVoices(), 4);
    // storms: 200 notes a second never exceed the limit nor fail
    std::vector<Note> storm;
    for (int i = 0; i < 400; ++i) {
        storm.push_back({10000 + i * 240, 0x90, static_cast<std::uint8_t>(40 + i % 50), 100});
        storm.push_back({10000 + i * 240 + 1400, 0x80, static_cast<std::uint8_t>(40 + i % 50), 0});
    }
    Processor q(spec);
    const auto out = play(spec, storm, {256}, 120000, &q);
    EXPECT_LE(q.activeVoices(), 4);
    EXPECT_GT(t::rms(std::vector<double>(out.begin() + 20000, out.end() - 30000)), 0.01);
}

TEST(Processor, PortsApplyWhenTheyChangeAndFollowTheirCC) {
    const auto spec = parseSessionText(synthSession(), "synth.toml");
    Processor p(spec);
    play(spec, {}, {64}, 128, &p);
    EXPECT_DOUBLE_EQ(p.engine().control("probe"), 5); // the default reached the channel
    p.setPort(1, 7.5);
    play(spec, {}, {64}, 128, &p);
    EXPECT_DOUBLE_EQ(p.engine().control("probe"), 7.5);
    p.setPort(1, 99); // out of range: clamped
    play(spec, {}, {64}, 128, &p);
    EXPECT_DOUBLE_EQ(p.engine().control("probe"), 10);

    // gain follows CC 7: a note at full gain, then CC 7 = 0 silences the output
    Processor q(spec);
    const auto out = play(spec, {{0, 0x90, 69, 127}, {24000, 0xB0, 7, 0}}, {256}, 48000, &q);
    const std::vector<double> d(out.begin(), out.end());
    EXPECT_GT(t::rms(t::window(d, kSr, 0.2, 0.45)), 0.05);
    EXPECT_EQ(t::peak(t::window(d, kSr, 0.51, 0.9)), 0);
    EXPECT_DOUBLE_EQ(q.port(0), 0);
}

TEST(Processor, ACsoundErrorNamesTheSessionFileLine) {
    const auto text = synthSession(
        8,
        "|kpitch=60, iamp=0.5, ibus=0|\na1 oscili iamp, kpitch\na2 = a1 +* 2\nbusmix(ibus, a1)\n");
    try {
        Processor p(parseSessionText(text, "broken.toml"));
        FAIL() << "no error";
    } catch (const SessionFileError& e) {
        // the body starts on line 11 of the file (after "body = '''"): its 3rd line is 13
        EXPECT_EQ(e.diagnostics().at(0).pos.line, 13) << e.what();
        EXPECT_NE(std::string(e.what()).find("broken.toml:13"), std::string::npos) << e.what();
    }
}

// The voices' instances run their init pass when the session loads, with
// giSpinoutWarmUp set; nothing sounds until a note.
TEST(Processor, VoicesAreWarmedAtLoadWithTheWarmUpFlagAndStaySilent) {
    const auto spec = parseSessionText(synthSession(4, R"(|kpitch=60, iamp=0.5, ibus=0|
if giSpinoutWarmUp == 1 then
  chnset chnget:i("warm") + 1, "warm"
else
  chnset chnget:i("played") + 1, "played"
endif
aenv = linsegr:a(0, 0.005, 1, 0.05, 0)
busmix(ibus, oscili:a(iamp * 0.3, mtof:k(kpitch)) * aenv)
)"),
                                       "warm.toml");
    Processor p(spec);
    const auto silent = play(spec, {}, {64}, 4800, &p);
    EXPECT_EQ(t::peak(std::vector<double>(silent.begin(), silent.end())), 0);
    EXPECT_EQ(p.engine().control("warm"), 12) << "3 x voices init passes";
    EXPECT_EQ(p.engine().control("played"), 0);
    const auto note = play(spec, {{0, 0x90, 69, 100}}, {64}, 4800, &p);
    EXPECT_GT(t::peak(std::vector<double>(note.begin(), note.end())), 0.05);
    EXPECT_EQ(p.engine().control("played"), 1);
}

// The warm-up's init passes draw from Csound's random generators; it puts them back, so
// the first note draws what a fresh Csound draws first (found when the warm-up changed
// every polysynth render: its saws start at a random phase).
TEST(Processor, TheVoicesWarmUpLeavesTheRandomGeneratorsAsTheyWere) {
    const auto spec = parseSessionText(synthSession(4, R"(|kpitch=60, iamp=0.5, ibus=0|
idraw = random:i(0, 1)
iuni = unirand:i(1)
chnset chnget:i("inits") + 1, "inits"
if giSpinoutWarmUp == 0 then
  chnset idraw, "draw"
  chnset iuni, "uni"
endif
aenv = linsegr:a(0, 0.005, 1, 0.05, 0)
busmix(ibus, oscili:a(iamp * 0.3, mtof:k(kpitch)) * aenv)
)"),
                                       "draws.toml");
    Engine fresh(EngineOptions{});
    const double firstDraw = fresh.evalCode("return random:i(0, 1)");
    const double firstUni = fresh.evalCode("return unirand:i(1)");
    Processor p(spec);
    EXPECT_EQ(p.engine().control("inits"), 12) << "the warm-up drew 12 times from each";
    play(spec, {{0, 0x90, 69, 100}}, {64}, 640, &p);
    EXPECT_EQ(p.engine().control("inits"), 13);
    EXPECT_EQ(p.engine().control("draw"), firstDraw);
    EXPECT_EQ(p.engine().control("uni"), firstUni);
}

// The warm-up runs after the ports and host time have queued their first values: its init
// passes see what the first cycle sees, the ports' values the Processor was made with and
// the host's tempo (found by attack: run before them, it saw the args' defaults). And a
// session that may schedule at load keeps what it schedules, a macro's `schedule` too:
// its warm-up waits for the first cycle instead of rewinding (found by attack: `$S.ule`
// was dropped). Offline there is no warm-up: Attack.ARenderRunsNoWarmUpAndPlaysWhatItsCsdPlays.
TEST(Processor, TheVoicesWarmUpSeesThePortsAndTheHostTime) {
    const std::filesystem::path fixtures =
        std::filesystem::path(SPINOUT_SOURCE_DIR) / "tests/fixtures/warm_up";
    const auto spec = parseSessionFile((fixtures / "ports.toml").string());
    for (const double level : {-1.0, 0.3}) {
        ProcessorOptions options;
        if (level >= 0) options.portValues = {{0, level}};
        Processor p(spec, options);
        const auto out = play(spec, {}, {64}, 256, &p);
        const double expected = (level >= 0 ? level : 0.7) + 120.0 / 1000;
        // (64 frames of latency, then a(k) ramps up over the first cycle)
        EXPECT_NEAR(out[128], expected, 1e-6) << "level " << level;
        EXPECT_NEAR(out.back(), expected, 1e-6) << "level " << level;
    }
    const auto macro = parseSessionFile((fixtures / "macro.toml").string());
    const auto out = play(macro, {}, {64}, 256);
    EXPECT_NEAR(out[128], 0.25, 1e-6);
    EXPECT_NEAR(out.back(), 0.25, 1e-6);
}

// A one-shot voice sets p3 in its init code. In a session whose warm-up runs in the first
// cycle (a comment naming `schedule` is enough), subinstrinit handed that p3 to the
// warm-up's holder, which then lived on with every warmed instance for 0.3 s: `active`
// counted them, and notes in that time could not reuse them (found by attack). The holder
// ends after its init pass: the plugin plays what a render does.
TEST(Processor, AOneShotVoiceLeavesTheWarmUpToItsInitPass) {
    const auto spec = parseSessionText(synthSession(4, R"(|kpitch=60, iamp=0.5, ibus=0|
; a one-shot: no schedule needed
p3 = 0.3
kn active int(p1)
aenv = linseg:a(0, 0.005, 1, 0.29, 0)
busmix(ibus, oscili:a(iamp * 0.3, mtof:k(kpitch) * (1 + 0.01 * kn)) * aenv)
)"),
                                       "oneshot.toml");
    const std::vector<Note> notes = {{0, 0x90, 60, 100}, {4800, 0x90, 64, 70}};
    std::vector<std::vector<float>> outs;
    for (const bool realTime : {true, false}) {
        ProcessorOptions options;
        options.realTime = realTime;
        Processor p(spec, options);
        outs.push_back(play(spec, notes, {64}, 24000, &p));
    }
    EXPECT_GT(t::peak(std::vector<double>(outs[0].begin(), outs[0].end())), 0.05);
    EXPECT_EQ(outs[0], outs[1]);
}

// A voice whose init code writes a global (a round-robin counter) without looking at
// giSpinoutWarmUp: the plugin's warm-up (12 init passes) moves the counter, a render has
// none, and the first note plays another pitch in each. The load warns of it, naming the
// line, and of a UDO that does the same; the voice skipping the write during the warm-up
// plays the same in both and gets no warning, and neither do writes at k-rate or a UDO
// that reads the flag.
TEST(Processor, InitCodeTheWarmUpWouldRunWithEffectsIsWarnedOf) {
    const auto session = [](const std::string& step) {
        auto text = synthSession(4, fmt::format(R"(|kpitch=60, iamp=0.5, ibus=0|
{}
kx = 1
chnset kx, "k"
gkW = kx
quiet
aenv = linsegr:a(0, 0.005, 1, 0.05, 0)
busmix(ibus, oscili:a(iamp * 0.3, 220 * (1 + giRR)) * aenv)
)",
                                                step));
        return parseSessionText(withGlobals(text, R"(giRR init 0
gkW init 0
opcode quiet, 0, 0
  if giSpinoutWarmUp == 0 then
    chnset 1, "quiet"
  endif
endop
opcode bump, 0, 0
  giRR = (giRR + 1) % 5
endop
)"),
                                "rr.toml");
    };
    const auto lineOf = [](const SessionSpec& spec, const std::string& code) {
        for (const auto& is : spec.instrs)
            if (const auto at = is.body.find(code); is.name == "voice" && at != std::string::npos)
                return is.bodyLine +
                       static_cast<int>(std::count(is.body.begin(), is.body.begin() + at, '\n'));
        return -1;
    };
    const auto firstNote = [](const SessionSpec& spec, bool realTime) {
        ProcessorOptions options;
        options.realTime = realTime;
        Processor p(spec, options);
        const auto out = play(spec, {{0, 0x90, 69, 100}}, {64}, 9600, &p);
        return t::frequency(t::window(std::vector<double>(out.begin(), out.end()), kSr, 0.05, 0.2),
                            kSr);
    };
    for (const std::string step : {"giRR = (giRR + 1) % 5", "bump"}) {
        const auto spec = session(step);
        const Processor p(spec);
        ASSERT_EQ(p.warnings().size(), 1u) << step;
        const auto& w = p.warnings()[0];
        EXPECT_EQ(w.pos.line, lineOf(spec, step)) << w.str();
        EXPECT_NE(w.message.find(step == "bump" ? "UDO 'bump', which writes the global giRR"
                                                : "writes the global giRR"),
                  std::string::npos)
            << w.str();
        // 12 warm-up passes: 2, then the note 3; a render's note 1
        EXPECT_NEAR(firstNote(spec, true), 220 * 4, 2) << step;
        EXPECT_NEAR(firstNote(spec, false), 220 * 2, 2) << step;
    }
    const auto skipped = session("if giSpinoutWarmUp == 0 then\n  giRR = (giRR + 1) % 5\nendif");
    EXPECT_TRUE(Processor(skipped).warnings().empty()) << Processor(skipped).warnings()[0].str();
    EXPECT_NEAR(firstNote(skipped, true), 220 * 2, 2);
    EXPECT_NEAR(firstNote(skipped, false), 220 * 2, 2);
}

// What the warm-up's trace finder names in a voice's init code, and what it leaves: each
// line alone in the voice, a warning or none.
TEST(Processor, TheWarmUpsTracesAreInitEffectsBeyondTheInstance) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"gi1 = iamp", "writes the global gi1"},
        {"giArr[0] = 1", "writes the global array giArr"},
        {"gk1 init 0", "writes the global gk1"},
        {"gS1 = \"x\"", "writes the global gS1"},
        {"chnset p5, \"c\"", "writes a channel ('chnset')"},
        {"chnset \"s\", \"c\"", "writes a channel ('chnset')"},
        {"tablew 1, 0, giT", "writes a table ('tablew')"},
        {"tableiw 1, 0, giT", "writes a table ('tableiw')"},
        {"iArr[] fillarray 1, 2\ncopya2ftab iArr, giT", "writes a table ('copya2ftab')"},
        {"iN ftgenonce 0, 0, 64, 21, 1", "makes a table once with GEN 21"},
        {"schedule 9, 0, 0", "starts 'schedule'"},
        {"event_i \"i\", 9, 0, 0", "starts 'event_i'"},
        {"kk = 1\nchnset kk, \"c\"", ""},
        {"kk = 1\ntablew kk, 0, giT", ""},
        {"gk1 = 3", ""},
        {"iN ftgenonce 0, 0, 64, 10, 1", ""},
        {"if giSpinoutWarmUp == 0 then\n  gi1 = 1\nendif", ""}};
    for (const auto& [code, warning] : cases) {
        const auto spec = parseSessionText(
            withGlobals(synthSession(4, "|kpitch=60, iamp=0.5, ibus=0|\n" + code +
                                            "\nbusmix(ibus, oscili:a(iamp, 440))\n"),
                        "gi1 init 0\ngiArr[] init 2\ngk1 init 0\ngS1 init \"\"\n"
                        "giT ftgen 0, 0, 8, -2, 0\ninstr 9\nendin\n"),
            "traces.toml");
        const Processor p(spec);
        if (warning.empty()) {
            EXPECT_TRUE(p.warnings().empty()) << code << ": " << p.warnings().front().str();
            continue;
        }
        ASSERT_EQ(p.warnings().size(), 1u) << code;
        EXPECT_NE(p.warnings()[0].message.find(warning), std::string::npos)
            << code << ": " << p.warnings()[0].str();
    }
}

// Released voices sound through their release, at most two per voice: past that the
// oldest tail stops, so the instances never outnumber the warmed ones.
TEST(Processor, ReleaseTailsAreBoundedAtTwoPerVoice) {
    const auto spec = parseSessionText(synthSession(2, R"(|kpitch=60, iamp=0.5, ibus=0|
aenv = linsegr:a(0, 0.005, 1, 5, 0)
busmix(ibus, oscili:a(iamp * 0.3, mtof:k(kpitch)) * aenv)
)"),
                                       "tails.toml");
    Processor p(spec);
    const int voiceInstr = p.session().instrnum("voice", 1);
    const auto active = [&] {
        return p.engine().evalCode(fmt::format("return active:i({})", voiceInstr));
    };
    double most = 0;
    for (int i = 0; i < 20; ++i) {
        const auto a = static_cast<std::uint8_t>(40 + 2 * i), b = static_cast<std::uint8_t>(a + 1);
        play(spec, {{0, 0x90, a, 100}, {0, 0x90, b, 100}}, {64}, 640, &p);
        most = std::max(most, active());
        play(spec, {{0, 0x80, a, 0}, {0, 0x80, b, 0}}, {64}, 640, &p);
        most = std::max(most, active());
    }
    EXPECT_EQ(most, 6) << "2 voices and 4 tails";
}

// A note-off releases at the start of the cycle that holds it: Csound turns an instance
// off (and starts its release) for whole cycles. The error is the note-off's place in its
// cycle, 0 to ksmps-1 frames early, never late; on a cycle boundary it is exact.
TEST(Processor, ANoteOffReleasesAtTheStartOfItsCycle) {
    const auto spec = parseSessionText(
        synthSession(8, "|kpitch=60, iamp=0.5, ibus=0|\naenv linsegr 1, 1, 1, 0.05, 0\n"
                        "aone init 1\nbusmix(ibus, aone * aenv * iamp)\n"),
        "release.toml");
    for (std::int64_t off : {9700, 9664, 9727, 9728}) {
        Processor p(spec);
        const auto out = play(spec, {{100, 0x90, 60, 127}, {off, 0x80, 60, 0}}, {64}, 12000, &p);
        const float held = out[5000];
        ASSERT_GT(held, 0.1f);
        std::int64_t release = -1; // the first frame below the held level
        for (std::int64_t i = 5000; i < static_cast<std::int64_t>(out.size()); ++i)
            if (out[static_cast<std::size_t>(i)] < held - 1e-4f) {
                release = i - p.latency();
                break;
            }
        // the release segment starts at the held value: its first sample is the one before
        EXPECT_EQ(release - 1, off - off % 64) << "note-off at " << off;
    }
}
namespace {

int countRedefinitions(const std::string& text) {
    int n = 0;
    for (auto at = text.find("redefined opcode"); at != std::string::npos;
         at = text.find("redefined opcode", at + 1))
        ++n;
    return n;
}

} // namespace

// What Csound says of a session's UDOs is what it says of the same code compiled alone:
// the policy check's parse leaves nothing in the engine (no "redefined opcode" of its
// making), and the session's own redefinitions (of its UDOs, of busin) are still said.
TEST(Processor, UdoWarningsAreCsoundsOwn) {
    const std::string gain = "opcode gain, a, ak\nain, kg xin\nxout ain * kg\nendop\n";
    const std::string gainK = "opcode gain, k, kk\nkin, kg xin\nxout kin * kg\nendop\n";
    const std::string busin = "opcode busin, a, k\nkb xin\nxout a(0)\nendop\n";
    const std::vector<std::pair<std::string, int>> cases = {
        {gain, 0}, {gain + gainK, 0}, {gain + gain, 1}, {busin, 1}, {gain + busin + gain, 2}};
    for (const auto& [globals, warnings] : cases) {
        const auto text = fmt::format(R"([session]
name = "Udos"
uri = "urn:spinout:test-udos"
kind = "effect"
[engine]
ksmps = 64
globals = '''
{}'''
[instr.fx]
body = '''
a0 = gain(inch(1), 0.5)
outch 1, a0
'''
[[run]]
instr = "fx"
)",
                                      globals);
        Processor p(parseSessionText(text, "udos.toml"));
        std::string said;
        p.drainMessages([&](MessageLevel, const char* line) { said += std::string(line) + "\n"; },
                        {});
        // Csound alone, on the support code and then the globals, as the engine compiles
        // them
        std::string alone;
        {
            Engine bare(EngineOptions{});
            bare.compile(support::orchestra({}));
            bare.compile(globals);
            bare.messages().drain(
                [&](MessageLevel, const char* line) { alone += std::string(line) + "\n"; });
        }
        EXPECT_EQ(countRedefinitions(alone), warnings) << alone;
        EXPECT_EQ(countRedefinitions(said), countRedefinitions(alone))
            << globals << "\nspinout:\n"
            << said << "\nCsound alone:\n"
            << alone;
    }
}

// Globals of blank lines are no code: Csound's parser gives up on "no input" (found by
// attack).
TEST(Processor, GlobalsOfBlankLinesLoad) {
    const auto spec = parseSessionText(R"toml([session]
name = "Blank"
uri = "urn:spinout:test-blank"
kind = "effect"
[engine]
globals = """

   
"""
[instr.fx]
body = "outch 1, inch(1)"
[[run]]
instr = "fx"
)toml",
                                       "blank.toml");
    EXPECT_NO_THROW(Processor{spec});
}
