// `spinout info --json` and batch renders (presets x inputs, name templates, --jobs,
// --shard), run as a user runs them.
#include "spinout/session_file.hpp"
#include "spinout/sound_file.hpp"

#include "../common/command.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

using namespace spinout;
namespace fs = std::filesystem;
namespace t = spinout::test;
using Json = nlohmann::json;

namespace {

using t::kRoot;
using t::run;

// An empty folder of its own for a test.
fs::path folder(const std::string& name) {
    const auto d = t::tmp("batch") / name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

std::string q(const fs::path& p) {
    return "'" + p.string() + "'";
}

std::set<std::string> names(const fs::path& dir) {
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator(dir))
        out.insert(e.path().filename().string());
    return out;
}

std::string bytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// A mono sound file of `seconds` at 48 kHz: a sine at `hz`, fading out.
fs::path sineFile(const std::string& name, double hz, double seconds) {
    const auto path = t::tmp(name);
    SoundFileWriter w(path.string(), 48000, 1);
    const auto n = static_cast<std::size_t>(seconds * 48000);
    std::vector<double> buf(n);
    for (std::size_t i = 0; i < n; ++i)
        buf[i] = 0.3 * std::sin(2 * M_PI * hz * static_cast<double>(i) / 48000) *
                 (1 - static_cast<double>(i) / static_cast<double>(n));
    w.write(buf.data(), static_cast<std::int64_t>(n));
    w.commit();
    return path;
}

const std::string kSynth = "render presets/polysynth.toml";
const std::string kTwoMidi = " --midi presets/polysynth.mid tests/fixtures/midi/phrase.mid";

} // namespace

TEST(Batch, InfoJsonDescribesEverySession) {
    for (const std::string name : {"polysynth", "fmbells", "stereodelay", "lfofilter"}) {
        const auto path = fmt::format("presets/{}.toml", name);
        const auto r = run("info --json " + path);
        ASSERT_EQ(r.status, 0) << r.output;
        Json j;
        ASSERT_NO_THROW(j = Json::parse(r.output)) << r.output;
        const auto spec = parseSessionFile((kRoot / path).string());
        EXPECT_EQ(j["session"]["name"], spec.name);
        EXPECT_EQ(j["session"]["uri"], spec.uri);
        EXPECT_EQ(j["session"]["kind"],
                  spec.kind == SessionSpec::instrument ? "instrument" : "effect");
        EXPECT_EQ(j["session"]["doc"], spec.doc);
        EXPECT_EQ(j["session"]["audio_inputs"], spec.audioInputs);
        EXPECT_EQ(j["session"]["audio_outputs"], spec.audioOutputs);
        EXPECT_EQ(j["session"]["ksmps"], spec.ksmps);

        ASSERT_EQ(j["instrs"].size(), spec.instrs.size());
        for (std::size_t i = 0; i < spec.instrs.size(); ++i) {
            const auto& ji = j["instrs"][i];
            const auto& is = spec.instrs[i];
            EXPECT_EQ(ji["name"], is.name);
            EXPECT_EQ(ji["priority"], is.priority.value_or(1));
            const auto& args = is.instr->args();
            ASSERT_EQ(ji["args"].size(), args.size()) << is.name;
            for (std::size_t a = 0; a < args.size(); ++a) {
                const auto& ja = ji["args"][a];
                EXPECT_EQ(ja["name"], args[a].name);
                EXPECT_EQ(ja["kind"], std::string(1, args[a].name[0]));
                if (const auto* d = std::get_if<double>(&args[a].value))
                    EXPECT_EQ(ja["default"].get<double>(), *d) << args[a].name;
                else
                    EXPECT_EQ(ja["default"], std::get<std::string>(args[a].value));
                EXPECT_EQ(ja[args[a].isControl() ? "control" : "pfield"], args[a].index)
                    << args[a].name;
            }
        }
        ASSERT_EQ(j["buses"].size(), spec.buses.size());
        for (std::size_t i = 0; i < spec.buses.size(); ++i) {
            EXPECT_EQ(j["buses"][i]["name"], spec.buses[i].name);
            EXPECT_EQ(j["buses"][i]["kind"],
                      spec.buses[i].kind == BusKind::audio ? "audio" : "control");
        }
        ASSERT_EQ(j["ports"].size(), spec.ports.size());
        for (std::size_t i = 0; i < spec.ports.size(); ++i) {
            const auto& jp = j["ports"][i];
            const auto& p = spec.ports[i];
            EXPECT_EQ(jp["symbol"], p.symbol);
            EXPECT_EQ(jp["name"], p.name);
            EXPECT_EQ(jp["target"], p.targetText);
            EXPECT_EQ(jp["min"].get<double>(), p.min);
            EXPECT_EQ(jp["max"].get<double>(), p.max);
            EXPECT_EQ(jp["default"].get<double>(), p.def);
            EXPECT_EQ(jp["unit"], p.unit);
            EXPECT_EQ(jp["choices"].get<std::vector<std::string>>(), p.choices);
            if (p.midiCC)
                EXPECT_EQ(jp["midi_cc"], *p.midiCC);
            else
                EXPECT_TRUE(jp["midi_cc"].is_null());
        }
        ASSERT_EQ(j["presets"].size(), spec.presets.size());
        for (std::size_t i = 0; i < spec.presets.size(); ++i) {
            const auto& jp = j["presets"][i];
            EXPECT_EQ(jp["name"], spec.presets[i].name);
            EXPECT_EQ(jp["label"], spec.presets[i].label);
            ASSERT_EQ(jp["values"].size(), spec.presets[i].values.size());
            for (const auto& [symbol, value] : spec.presets[i].values)
                EXPECT_EQ(jp["values"][symbol].get<double>(), value) << symbol;
        }
    }
    // what the human-readable text shows is in the JSON too: an enum port's choices
    const auto lfo = Json::parse(run("info --json presets/lfofilter.toml").output);
    bool choices = false;
    for (const auto& p : lfo["ports"])
        choices = choices || (p["scale"] == "enum" && p["choices"].size() >= 3);
    EXPECT_TRUE(choices);
}

TEST(Batch, InfoJsonEscapesEveryString) {
    // quotes, backslashes, a tab, a newline, a control character and non-ASCII text
    const std::string doc = "say \"hi\" \\ back\\slash\ttab\nline two \x01 é ♪";
    const auto path = t::tmp("escapes.toml");
    std::ofstream(path) << R"([session]
name = "Quote \" and \\ backslash"
uri = "urn:spinout:test-escapes"
kind = "instrument"
doc = "say \"hi\" \\ back\\slash\ttab\nline two \u0001 é ♪"

[instr.voice]
body = '''
|kpitch=60, iamp=0.5, Sname="a \"quoted\" name"|
outch 1, vco2:a(iamp, mtof:k(kpitch))
'''

[midi]
instr = "voice"
pitch = "kpitch"
velocity = "iamp"

[[port]]
symbol = "pitch"
name = "Pitch \"p\""
target = "voice.kpitch"
min = 0
max = 127
default = 60

[preset."with space"]
label = "tab\there"
pitch = 64
)";
    const auto r = run("info --json " + q(path));
    ASSERT_EQ(r.status, 0) << r.output;
    Json j;
    ASSERT_NO_THROW(j = Json::parse(r.output)) << r.output;
    EXPECT_EQ(j["session"]["doc"], doc);
    EXPECT_EQ(j["session"]["name"], "Quote \" and \\ backslash");
    EXPECT_EQ(j["ports"][0]["name"], "Pitch \"p\"");
    EXPECT_EQ(j["presets"][0]["name"], "with space");
    EXPECT_EQ(j["presets"][0]["label"], "tab\there");
    EXPECT_EQ(j["presets"][0]["values"]["pitch"], 64);
    EXPECT_EQ(j["instrs"][0]["args"][2]["kind"], "S");
    // an inline default is Csound text: its backslashes stay, and the JSON escapes them
    EXPECT_EQ(j["instrs"][0]["args"][2]["default"], R"(a \"quoted\" name)");
    // python's json reads it the same
    const auto py = t::tmp("escapes.json");
    std::ofstream(py) << r.output;
    const auto check =
        fmt::format("python3 -c \"import json, sys; d = json.load(open('{}')); "
                    "sys.exit(0 if d['session']['doc'].endswith('\\u00e9 \\u266a') else 1)\"",
                    py.string());
    EXPECT_EQ(std::system(check.c_str()), 0);
}

TEST(Batch, InfoJsonOfABadSessionIsAnErrorWithItsLine) {
    const auto r = run("info --json tests/fixtures/bad/unknown_key.toml");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("unknown_key.toml:"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find('{'), std::string::npos) << r.output;
}

TEST(Batch, EveryPresetTimesEveryInputOneFileEachSameAsASingleRender) {
    const auto dir = folder("all");
    const auto r =
        run(kSynth + kTwoMidi + " --preset all -o " + q(dir / "{session}-{preset}-{input}.wav"));
    ASSERT_EQ(r.status, 0) << r.output;
    std::set<std::string> expected;
    for (const std::string preset : {"bright", "pad", "bass", "pluck"})
        for (const std::string input : {"polysynth", "phrase"})
            expected.insert(fmt::format("polysynth-{}-{}.wav", preset, input));
    EXPECT_EQ(names(dir), expected);
    EXPECT_NE(r.output.find("batch: 8 renders written"), std::string::npos) << r.output;
    // each file is the single render of its combination, byte for byte
    const auto single = folder("single");
    for (const std::string preset : {"bright", "pad", "bass", "pluck"})
        for (const std::string midi : {"presets/polysynth.mid", "tests/fixtures/midi/phrase.mid"}) {
            const auto out = single / "x.wav";
            ASSERT_EQ(
                run(fmt::format("{} --midi {} --preset {} -o {}", kSynth, midi, preset, q(out)))
                    .status,
                0);
            const auto name =
                fmt::format("polysynth-{}-{}.wav", preset, fs::path(midi).stem().string());
            EXPECT_EQ(bytes(out), bytes(dir / name)) << name;
        }
}

TEST(Batch, PresetListsSessionsAndKindsCombine) {
    // a comma list and a repeated --preset; no --preset is the defaults, named "default"
    const auto dir = folder("lists");
    auto r = run(kSynth + " presets/fmbells.toml --midi presets/polysynth.mid -o " +
                 q(dir / "{session}-{preset}.wav"));
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(names(dir), (std::set<std::string>{"polysynth-default.wav", "fmbells-default.wav"}));
    const auto dir2 = folder("lists2");
    r = run(kSynth + " --midi presets/polysynth.mid --preset pad,bass --preset pluck -o " +
            q(dir2 / "{preset}.wav"));
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(names(dir2), (std::set<std::string>{"pad.wav", "bass.wav", "pluck.wav"}));

    // files of one kind are alternatives, kinds play together: two inputs x one score, and
    // {input} names the kind that varies
    const auto low = sineFile("low.wav", 220, 1.5), high = sineFile("high.wav", 880, 1.5);
    const auto dir3 = folder("kinds");
    r = run(fmt::format("render presets/stereodelay.toml --input {} {} --score "
                        "presets/stereodelay.score.toml --preset dub -o {}",
                        q(low), q(high), q(dir3 / "{input}.wav")));
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(names(dir3), (std::set<std::string>{"low.wav", "high.wav"}));
    const auto one = t::tmp("kinds_single.wav");
    ASSERT_EQ(run(fmt::format("render presets/stereodelay.toml --input {} --score "
                              "presets/stereodelay.score.toml --preset dub -o {}",
                              q(high), q(one)))
                  .status,
              0);
    EXPECT_EQ(bytes(one), bytes(dir3 / "high.wav"));
}

TEST(Batch, ANameTemplateThatRepeatsANameIsRefusedBeforeRendering) {
    const auto dir = folder("refused");
    auto r = run(kSynth + kTwoMidi + " --preset pad,bass -o " + q(dir / "{preset}.wav"));
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_NE(r.output.find("gives two renders the name"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("add {input} to the name"), std::string::npos) << r.output;
    r = run(kSynth + kTwoMidi + " -o " + q(dir / "out.wav"));
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.output.find("the batch has 2 renders, one file each; give a name template"),
              std::string::npos)
        << r.output;
    r = run(kSynth + kTwoMidi + " -o " + q(dir / "{inputs}.wav"));
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.output.find("unknown field {inputs}; did you mean '{input}'?"), std::string::npos)
        << r.output;
    r = run(kSynth + kTwoMidi + " -o " + q(dir / "{input.wav"));
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.output.find("without its '}'"), std::string::npos) << r.output;
    r = run(kSynth + kTwoMidi + " -o -");
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.output.find("standard output takes one"), std::string::npos) << r.output;
    // two files of the same name in different folders: {input} cannot tell them apart
    fs::copy_file(kRoot / "tests/fixtures/midi/phrase.mid", dir / "polysynth.mid");
    r = run(kSynth + " --midi presets/polysynth.mid " + q(dir / "polysynth.mid") + " -o " +
            q(dir / "{input}.wav"));
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.output.find("the same file name"), std::string::npos) << r.output;
    // a preset that one session lacks: an input error, also before anything renders
    r = run(kSynth + " presets/fmbells.toml --midi presets/polysynth.mid --preset pad -o " +
            q(dir / "{session}.wav"));
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("fmbells.toml: no preset 'pad'"), std::string::npos) << r.output;
    EXPECT_EQ(names(dir), std::set<std::string>{"polysynth.mid"});
    // --jobs and --shard values
    r = run(kSynth + kTwoMidi + " --jobs 0 -o " + q(dir / "{input}.wav"));
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.output.find("--jobs 0:"), std::string::npos) << r.output;
    for (const std::string bad : {"0/2", "3/2", "1", "a/b", "1/2x"}) {
        r = run(kSynth + kTwoMidi + " --shard " + bad + " -o " + q(dir / "{input}.wav"));
        EXPECT_EQ(r.status, 2) << bad;
        EXPECT_NE(r.output.find("--shard"), std::string::npos) << r.output;
    }
    EXPECT_EQ(names(dir), std::set<std::string>{"polysynth.mid"});
}

TEST(Batch, JobsChangeTheSpeedNotTheFiles) {
    std::map<std::string, std::string> first;
    for (int jobs : {1, 2, 3}) {
        const auto dir = folder(fmt::format("jobs{}", jobs));
        const auto r =
            run(kSynth + kTwoMidi + fmt::format(" --preset pad,bass --jobs {} -o ", jobs) +
                q(dir / "{preset}-{input}.wav"));
        ASSERT_EQ(r.status, 0) << r.output;
        EXPECT_NE(r.output.find(fmt::format("4 renders written in")), std::string::npos)
            << r.output;
        EXPECT_NE(r.output.find(fmt::format("{} at once", std::min(jobs, 4))), std::string::npos)
            << r.output;
        for (const auto& n : names(dir)) {
            if (jobs == 1)
                first[n] = bytes(dir / n);
            else
                EXPECT_EQ(bytes(dir / n), first[n]) << n << " with --jobs " << jobs;
        }
        EXPECT_EQ(names(dir).size(), 4u);
    }
}

TEST(Batch, ProgressIsOneLinePerRenderOffATerminalAndACounterOnOne) {
    const auto dir = folder("progress");
    const auto r =
        run(kSynth + kTwoMidi + " --preset pad,bass -o " + q(dir / "{preset}-{input}.wav"));
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(r.output.find('\r'), std::string::npos);
    std::istringstream lines(r.output);
    int perRender = 0, total = 0;
    for (std::string l; std::getline(lines, l); ++total)
        if (l.rfind(dir.string(), 0) == 0 && l.find(" s, 2 ch, 48000 Hz") != std::string::npos)
            ++perRender;
    EXPECT_EQ(perRender, 4) << r.output;
    EXPECT_EQ(total, 5) << r.output; // and the batch's summary
    // on a terminal (script gives it one): the count of renders done, elapsed and left
    const auto dir2 = folder("progress_tty");
    const auto cmd = fmt::format("cd {} && script -qec \"{} {}{} --preset pad,bass -o "
                                 "'{}/{{preset}}-{{input}}.wav'\" /dev/null",
                                 q(kRoot), t::kBin.string(), kSynth, kTwoMidi, dir2.string());
    FILE* p = popen(cmd.c_str(), "r");
    std::string tty;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;)
        tty.append(buf, n);
    EXPECT_EQ(pclose(p), 0) << tty;
    EXPECT_NE(tty.find("4 / 4 renders"), std::string::npos) << tty;
    EXPECT_NE(tty.find("elapsed"), std::string::npos) << tty;
    EXPECT_NE(tty.find("left"), std::string::npos) << tty;
    EXPECT_NE(tty.find("batch: 4 renders written"), std::string::npos) << tty;
    EXPECT_EQ(tty.find(" ch, 48000 Hz"), std::string::npos) << tty; // no line per render
}

TEST(Batch, AFailedRenderIsNamedAndTheOthersFinish) {
    const auto dir = folder("failed");
    fs::copy_file(kRoot / "tests/fixtures/bad/truncated.mid", dir / "broken.mid");
    const auto r = run(kSynth + " --midi presets/polysynth.mid " + q(dir / "broken.mid") +
                       " --preset pad,bass -o " + q(dir / "{preset}-{input}.wav"));
    EXPECT_EQ(r.status, 1) << r.output;
    // each failure: the render's own error, then its name
    EXPECT_NE(r.output.find("broken.mid: not a valid MIDI file"), std::string::npos) << r.output;
    EXPECT_NE(
        r.output.find("error: " + (dir / "pad-broken.wav").string() + ": render 2 of 4 failed"),
        std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("error: batch: 2 of 4 renders failed"), std::string::npos) << r.output;
    EXPECT_EQ(names(dir),
              (std::set<std::string>{"broken.mid", "pad-polysynth.wav", "bass-polysynth.wav"}));
    EXPECT_GT(readSoundFile((dir / "bass-polysynth.wav").string()).frames(), 48000);
}

// The README's command: GNU parallel runs the shards of one batch, which write into one
// folder what the batch alone writes, file for file.
TEST(Batch, ShardsTogetherMakeTheWholeBatch) {
    const auto whole = folder("whole");
    const std::string batch =
        kSynth + " --preset all --midi presets/polysynth.mid presets/fmbells.mid";
    auto r = run(batch + " -o " + q(whole / "{session}-{preset}-{input}.wav"));
    ASSERT_EQ(r.status, 0) << r.output;
    ASSERT_EQ(names(whole).size(), 8u);

    // the command as the README writes it, into a folder of the test's
    std::ifstream readme(kRoot / "README.md");
    std::string command, line;
    while (std::getline(readme, line)) {
        const auto at = line.find("parallel -j2 build/spinout");
        if (command.empty() && at == std::string::npos) continue;
        if (command.empty()) line = line.substr(at);
        const bool more = !line.empty() && line.back() == '\\';
        command += more ? line.substr(0, line.size() - 1) : line;
        if (!more) break;
    }
    ASSERT_FALSE(command.empty()) << "README.md has no GNU parallel command";
    const auto shards = folder("parallel");
    for (const auto& [from, to] :
         {std::pair<std::string, std::string>{"build/spinout", t::kBin.string()},
          {"'out/", "'" + shards.string() + "/"}}) {
        const auto at = command.find(from);
        ASSERT_NE(at, std::string::npos) << command;
        command.replace(at, from.size(), to);
    }
    const auto cmd = fmt::format("cd {} && {} >/dev/null 2>&1", q(kRoot), command);
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    EXPECT_EQ(names(shards), names(whole));
    for (const auto& n : names(whole))
        EXPECT_EQ(bytes(shards / n), bytes(whole / n)) << n;

    // each shard alone: disjoint parts of sizes 3, 3 and 2
    std::set<std::string> seen;
    for (int k = 1; k <= 3; ++k) {
        const auto part = folder(fmt::format("shard{}", k));
        r = run(fmt::format("{} --shard {}/3 -o {}", batch, k,
                            q(part / "{session}-{preset}-{input}.wav")));
        ASSERT_EQ(r.status, 0) << r.output;
        EXPECT_EQ(names(part).size(), k < 3 ? 3u : 2u) << r.output;
        for (const auto& n : names(part)) {
            EXPECT_TRUE(seen.insert(n).second) << n << " in two shards";
            EXPECT_EQ(bytes(part / n), bytes(whole / n)) << n;
        }
    }
    EXPECT_EQ(seen, names(whole));
    // a shard with nothing in it is not an error: more machines than renders
    r = run(batch + " --shard 9/10 -o " + q(folder("empty") / "{preset}-{input}.wav"));
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("shard 9/10 of a batch of 8 renders is empty"), std::string::npos)
        << r.output;
}

TEST(Batch, ASignalStopsEveryRenderAndLeavesNoPartialFile) {
    const auto dir = folder("signal");
    for (int sig : {SIGINT, SIGTERM}) {
        // long renders, two at a time, started with the default signal dispositions
        const pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            sigset_t none;
            sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, nullptr);
            signal(SIGINT, SIG_DFL);
            signal(SIGTERM, SIG_DFL);
            const int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            dup2(null, 2);
            if (chdir(kRoot.c_str()) != 0) _exit(126);
            const auto out = (dir / "{preset}-{input}.wav").string();
            execl(t::kBin.c_str(), "spinout", "render", "presets/polysynth.toml", "--midi",
                  "presets/polysynth.mid", "tests/fixtures/midi/phrase.mid", "--preset", "all",
                  "--duration", "3000", "--jobs", "2", "-o", out.c_str(), nullptr);
            _exit(127);
        }
        // wait until both renders write
        int partials = 0;
        for (int i = 0; i < 600 && partials < 2; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            partials = 0;
            for (const auto& n : names(dir))
                partials += n.find(".partial") != std::string::npos ? 1 : 0;
        }
        ASSERT_EQ(partials, 2);
        ASSERT_EQ(kill(pid, sig), 0);
        int st = 0;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == sig) << "status " << st;
        EXPECT_TRUE(names(dir).empty()) << fmt::format("{}", fmt::join(names(dir), " "));
        // no render left running: no process writes into the folder any more
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        EXPECT_TRUE(names(dir).empty()) << strsignal(sig);
        for (const auto& e : fs::directory_iterator("/proc")) {
            std::ifstream cmdline(e.path() / "cmdline");
            std::string text((std::istreambuf_iterator<char>(cmdline)), {});
            EXPECT_EQ(text.find(dir.string()), std::string::npos) << e.path();
        }
    }
}
