// The spinout command's output rules, values, messages and warnings, and the lilv_render
// example, run as a user runs them: devices, links, pipes, folders, full disks, signals.
#include "spinout/sound_file.hpp"

#include "../common/analysis.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

using namespace spinout;
namespace fs = std::filesystem;
namespace t = spinout::test;

extern char** environ;

namespace {

const fs::path kRoot = SPINOUT_SOURCE_DIR;
const fs::path kBin = SPINOUT_BIN;
const fs::path kLilvRender = LILV_RENDER_BIN;
const fs::path kLv2Dir = SPINOUT_LV2_DIR;

// A short render of the synth, and a long one to interrupt.
const std::string kSynth = "render presets/polysynth.toml --midi presets/polysynth.mid";
const std::string kLong = kSynth + " --duration 3000";

struct Result {
    int status = -1; // exit status; -1 when a signal ended it
    std::string out, err;
};

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// ctest runs each test in a process of its own, several at once: one folder each.
fs::path dir() {
    static const auto d =
        fs::temp_directory_path() / "spinout_output_test" / std::to_string(getpid());
    fs::create_directories(d);
    return d;
}

struct RemoveTheFolder : ::testing::Environment {
    void TearDown() override { fs::remove_all(dir()); }
};
[[maybe_unused]] auto* const kRemoveTheFolder =
    ::testing::AddGlobalTestEnvironment(new RemoveTheFolder);

// A shell command line in the source folder; SPINOUT stands for the command.
Result sh(std::string line) {
    for (std::size_t at; (at = line.find("SPINOUT")) != std::string::npos;)
        line.replace(at, 7, "'" + kBin.string() + "'");
    const auto out = dir() / "sh.out", err = dir() / "sh.err";
    const auto cmd = fmt::format("cd '{}' && ( {} ) > '{}' 2> '{}'", kRoot.string(), line,
                                 out.string(), err.string());
    const int st = std::system(cmd.c_str());
    Result r;
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
}

Result cmd(const std::string& args) {
    return sh("SPINOUT " + args);
}

std::string q(const fs::path& p) {
    return "'" + p.string() + "'";
}

bool startsWith(const std::string& s, const std::string& prefix) {
    return s.rfind(prefix, 0) == 0;
}

// Every line of `text` that is not empty starts with one of the prefixes.
void expectEveryLineStartsWith(const std::string& text, const std::string& prefix) {
    std::istringstream lines(text);
    for (std::string l; std::getline(lines, l);)
        if (!l.empty()) {
            EXPECT_TRUE(startsWith(l, prefix)) << l;
        }
}

// The command started in the background with the default signal dispositions, as from a
// terminal; its output is dropped.
pid_t start(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    std::string bin = kBin.string();
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    sigset_t def, none;
    sigemptyset(&def);
    sigaddset(&def, SIGINT);
    sigaddset(&def, SIGTERM);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&at, &def);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    const auto cwd = fs::current_path();
    fs::current_path(kRoot);
    pid_t pid = -1;
    const int err = posix_spawn(&pid, argv[0], &fa, &at, argv.data(), environ);
    fs::current_path(cwd);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    return err == 0 ? pid : -1;
}

// Waits until the render is well under way: its partial file holds a few megabytes.
bool waitForPartial(const fs::path& partial) {
    for (int i = 0; i < 3000; ++i) {
        std::error_code ec;
        if (fs::exists(partial, ec) && fs::file_size(partial, ec) > (4u << 20)) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

std::vector<std::string> longRender(const fs::path& out) {
    return {"render",     "presets/polysynth.toml",
            "--midi",     "presets/polysynth.mid",
            "--duration", "3000",
            "-o",         out.string()};
}

// One render of the synth to a regular file, the reference of the tests below.
const Audio& reference() {
    static const Audio a = [] {
        const auto out = dir() / "reference.wav";
        const auto r = cmd(kSynth + " -o " + q(out));
        EXPECT_EQ(r.status, 0) << r.err;
        return readSoundFile(out.string());
    }();
    return a;
}

bool isCharDevice(const char* path) {
    struct stat st {};
    return stat(path, &st) == 0 && S_ISCHR(st.st_mode);
}

std::vector<std::string> partialsIn(const fs::path& folder) {
    std::vector<std::string> found;
    for (const auto& e : fs::directory_iterator(folder))
        if (e.path().extension() == ".partial") found.push_back(e.path().string());
    return found;
}

} // namespace

TEST(Output, ADeviceIsWrittenAndNeverReplaced) {
    const auto r = cmd(kSynth + " -o /dev/null");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(isCharDevice("/dev/null"));
    EXPECT_FALSE(fs::exists("/dev/null.partial"));
}

TEST(Output, AFullDeviceFailsWithTheReason) {
    const auto r = cmd(kSynth + " -o /dev/full");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("error: cannot write '/dev/full': No space left on device"),
              std::string::npos)
        << r.err;
    EXPECT_TRUE(isCharDevice("/dev/full"));
    EXPECT_FALSE(fs::exists("/dev/full.partial"));
}

TEST(Output, AFifoIsWrittenStraight) {
    const auto fifo = dir() / "fifo";
    fs::remove(fifo);
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    const auto copy = dir() / "from_fifo.wav";
    const auto r =
        sh(fmt::format("cat {} > {} & SPINOUT {} -o {}; wait", q(fifo), q(copy), kSynth, q(fifo)));
    EXPECT_EQ(r.status, 0) << r.err;
    struct stat st {};
    ASSERT_EQ(stat(fifo.c_str(), &st), 0);
    EXPECT_TRUE(S_ISFIFO(st.st_mode));
    EXPECT_EQ(readSoundFile(copy.string()).samples, reference().samples);
}

TEST(Output, ASymlinkIsWrittenThroughToItsTarget) {
    const auto folder = dir() / "links";
    fs::remove_all(folder);
    fs::create_directories(folder / "elsewhere");
    const auto target = folder / "elsewhere" / "take.wav";
    std::ofstream(target) << "an old take";
    const auto link = folder / "link.wav";
    fs::create_symlink("elsewhere/take.wav", link);
    const auto r = cmd(kSynth + " -o " + q(link));
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(fs::is_symlink(link));
    EXPECT_EQ(fs::read_symlink(link), "elsewhere/take.wav");
    EXPECT_EQ(readSoundFile(target.string()).samples, reference().samples);
    EXPECT_TRUE(partialsIn(folder).empty());
    EXPECT_TRUE(partialsIn(folder / "elsewhere").empty());

    // a link to a file not there yet makes the file
    const auto dangling = folder / "new.wav";
    fs::create_symlink("elsewhere/new_take.wav", dangling);
    ASSERT_EQ(cmd(kSynth + " -o " + q(dangling)).status, 0);
    EXPECT_TRUE(fs::is_symlink(dangling));
    EXPECT_EQ(readSoundFile((folder / "elsewhere" / "new_take.wav").string()).samples,
              reference().samples);

    // a link to a folder is refused like the folder
    const auto toFolder = folder / "folder.wav";
    fs::create_symlink("elsewhere", toFolder);
    const auto bad = cmd(kSynth + " -o " + q(toFolder));
    EXPECT_EQ(bad.status, 1);
    EXPECT_NE(bad.err.find("leads to the folder"), std::string::npos) << bad.err;
}

TEST(Output, StandardOutputStreamsWavRf64AndFlac) {
    for (const auto& format : {"wav", "rf64", "flac"}) {
        const auto file = dir() / fmt::format("file.{}", format);
        const auto piped = dir() / fmt::format("piped.{}", format);
        ASSERT_EQ(cmd(fmt::format("{} --format {} -o {}", kSynth, format, q(file))).status, 0);
        // through a pipe, which cannot seek back to fix a header
        const auto r =
            sh(fmt::format("SPINOUT {} --format {} -o - | cat > {}", kSynth, format, q(piped)));
        ASSERT_EQ(r.status, 0) << r.err;
        EXPECT_NE(r.err.find("standard output: 9.900 s"), std::string::npos) << r.err;
        const auto a = readSoundFile(file.string());
        const auto b = readSoundFile(piped.string());
        EXPECT_EQ(b.sr, 48000) << format;
        EXPECT_EQ(b.nchnls, 2) << format;
        EXPECT_EQ(b.frames(), a.frames()) << format;
        EXPECT_EQ(b.samples, a.samples) << format;
        if (std::string(format) == "wav") {
            EXPECT_EQ(a.samples, reference().samples);
        }
        // RF64 has no peak chunk to differ in: the stream is the file, byte for byte
        if (std::string(format) == "rf64") {
            EXPECT_EQ(slurp(piped), slurp(file));
        }
    }
    // the WAV header streamed announces the exact sizes, as a file's does
    const auto header = slurp(dir() / "piped.wav");
    const auto le32 = [&](std::size_t at) {
        std::uint32_t v = 0;
        for (int i = 3; i >= 0; --i)
            v = v << 8 | static_cast<unsigned char>(header[at + static_cast<std::size_t>(i)]);
        return v;
    };
    EXPECT_EQ(le32(4), header.size() - 8);
    const auto data = header.find("data");
    ASSERT_NE(data, std::string::npos);
    EXPECT_EQ(le32(data + 4), reference().samples.size() * 4);
    EXPECT_EQ(header.find("PEAK"), std::string::npos); // its peaks would be unknown yet
    // aiff keeps sizes in its header, and a terminal is no place for sound
    const auto aiff = sh(fmt::format("SPINOUT {} --format aiff -o - > /dev/null", kSynth));
    EXPECT_EQ(aiff.status, 2);
    EXPECT_NE(aiff.err.find("error: -o -: aiff cannot be streamed"), std::string::npos) << aiff.err;
}

TEST(Output, AFolderIsAnErrorAndStaysAsItWas) {
    const auto folder = dir() / "a_folder";
    fs::remove_all(folder);
    fs::create_directories(folder);
    std::ofstream(folder / "keep.txt") << "keep";
    const auto r = cmd(kSynth + " -o " + q(folder));
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find(fmt::format("error: cannot write '{}': it is a folder", folder.string())),
              std::string::npos)
        << r.err;
    EXPECT_TRUE(fs::is_directory(folder));
    EXPECT_TRUE(fs::exists(folder / "keep.txt"));
    EXPECT_FALSE(fs::exists(folder.string() + ".partial"));
    const auto slash = cmd(kSynth + " -o " + q(dir() / "not_there/"));
    EXPECT_EQ(slash.status, 1);
    EXPECT_NE(slash.err.find("names a folder"), std::string::npos) << slash.err;
    const auto missing = cmd(kSynth + " -o " + q(dir() / "not_there" / "x.wav"));
    EXPECT_EQ(missing.status, 1);
    EXPECT_NE(missing.err.find("does not exist"), std::string::npos) << missing.err;
}

TEST(Output, ASignalRemovesThePartialFileAndKeepsTheGoodOne) {
    const auto out = dir() / "interrupted.wav";
    const auto partial = out.string() + ".partial";
    ASSERT_EQ(cmd(kSynth + " -o " + q(out)).status, 0);
    const auto good = slurp(out);
    for (int sig : {SIGINT, SIGTERM}) {
        const pid_t pid = start(longRender(out));
        ASSERT_GT(pid, 0);
        ASSERT_TRUE(waitForPartial(partial));
        // while it renders, another run to the same file is refused, not interleaved
        const auto second = cmd(kSynth + " -o " + q(out));
        EXPECT_EQ(second.status, 1);
        EXPECT_NE(second.err.find("another render is writing it"), std::string::npos) << second.err;
        ASSERT_EQ(kill(pid, sig), 0);
        int st = 0;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == sig) << "status " << st;
        EXPECT_FALSE(fs::exists(partial)) << strsignal(sig);
        EXPECT_EQ(slurp(out), good) << strsignal(sig);
    }
}

TEST(Output, AStalePartialFileIsCleanedOnTheNextRun) {
    const auto out = dir() / "stale.wav";
    const auto partial = out.string() + ".partial";
    fs::remove(out);
    // what a killed render leaves: SIGKILL runs no handler
    const pid_t pid = start(longRender(out));
    ASSERT_GT(pid, 0);
    ASSERT_TRUE(waitForPartial(partial));
    kill(pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
    ASSERT_TRUE(fs::exists(partial));
    // a failed run cleans it too: the output is checked before anything else
    const auto failed =
        cmd("render tests/fixtures/bad/csound_syntax.toml --duration 1 -o " + q(out));
    EXPECT_EQ(failed.status, 1);
    EXPECT_FALSE(fs::exists(partial));
    std::ofstream(partial) << "left by a crash";
    const auto r = cmd(kSynth + " -o " + q(out));
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_FALSE(fs::exists(partial));
    EXPECT_EQ(readSoundFile(out.string()).samples, reference().samples);

    // what is not a regular file is not ours: left alone, and the render refused
    const auto victim = dir() / "victim.txt";
    std::ofstream(victim) << "precious";
    fs::remove(partial);
    fs::create_symlink(victim, partial);
    const auto refused = cmd(kSynth + " -o " + q(out));
    EXPECT_EQ(refused.status, 1);
    EXPECT_NE(refused.err.find("is in the way"), std::string::npos) << refused.err;
    EXPECT_TRUE(fs::is_symlink(partial));
    EXPECT_EQ(slurp(victim), "precious");
    fs::remove(partial);
}

TEST(Output, Rf64WhenAWavWouldPass4GB) {
    SoundFormat f32;
    SoundFormat pcm16{"wav", "pcm16"};
    SoundFormat flac{"flac", "pcm24"};
    const std::int64_t hour = 3600LL * 48000;
    EXPECT_EQ(containerFor(f32, 2, hour), "wav");        // 1.4 GB
    EXPECT_EQ(containerFor(f32, 2, 10 * hour), "rf64");  // 13.8 GB, the 10-hour render
    EXPECT_EQ(containerFor(pcm16, 2, 7 * hour), "rf64"); // 4.8 GB
    EXPECT_EQ(containerFor(pcm16, 2, 6 * hour), "wav");  // 4.1 GB
    EXPECT_EQ(containerFor(flac, 2, 10 * hour), "flac");
    EXPECT_EQ(containerFor(f32, 2, -1), "wav"); // unknown: the writer lets libsndfile decide
    // the border: 4 GB of data less room for the header
    const std::int64_t last = (0xFFFFFFFFLL - 4096) / 8;
    EXPECT_EQ(containerFor(f32, 2, last), "wav");
    EXPECT_EQ(containerFor(f32, 2, last + 1), "rf64");
    EXPECT_EQ(containerFor(SoundFormat{"wav", "float64"}, 8, last / 2), "rf64");

    // an RF64 file holds the same samples as the WAV
    const auto out = dir() / "forced.wav";
    ASSERT_EQ(cmd(kSynth + " --format rf64 -o " + q(out)).status, 0);
    EXPECT_EQ(slurp(out).substr(0, 4), "RF64");
    EXPECT_EQ(readSoundFile(out.string()).samples, reference().samples);
}

TEST(Output, VersionAndSuggestions) {
    const auto v = cmd("--version");
    EXPECT_EQ(v.status, 0);
    EXPECT_EQ(v.out, std::string("spinout ") + SPINOUT_VERSION + "\n");
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"rendr presets/polysynth.toml", "error: unknown command 'rendr'; did you mean 'render'?"},
        {"chek presets/polysynth.toml", "error: unknown command 'chek'; did you mean 'check'?"},
        {"frobnicate", "error: unknown command 'frobnicate' (commands: render, csd, check"},
        {"", "error: give a command: render, csd"},
        {"--verison", "error: unknown option '--verison'; did you mean '--version'?"},
        {"render presets/polysynth.toml --mid presets/polysynth.mid",
         "error: render: unknown option '--mid'; did you mean '--midi'?"},
        {"render --mid x.mid", "error: render: unknown option '--mid'; did you mean '--midi'?"},
        {"render presets/polysynth.toml --durations 1",
         "error: render: unknown option '--durations'; did you mean '--duration'?"},
        {"csd presets/polysynth.toml --scor x -o x.csd",
         "error: csd: unknown option '--scor'; did you mean '--score'?"},
        {"info presets/polysynth.toml --jsn", "error: info: unknown option '--jsn'"},
        {"render presets/polysynth.toml --zzzzzz", "(spinout render --help lists them)"},
        {"render presets/polysynth.toml extra", "error: render: unexpected argument 'extra'"},
        {"render", "error: render: session is required"},
    };
    for (const auto& [args, message] : cases) {
        const auto r = cmd(args);
        EXPECT_EQ(r.status, 2) << args << "\n" << r.err;
        EXPECT_NE(r.err.find(message), std::string::npos) << args << "\n" << r.err;
        expectEveryLineStartsWith(r.err, "error: ");
    }
}

TEST(Output, InvalidValuesAreRejected) {
    const auto out = dir() / "never.wav";
    fs::remove(out);
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"--sr 0", "error: --sr 0: give a sample rate from 1000 to 768000 Hz"},
        {"--sr -5", "error: --sr -5: give a sample rate"},
        {"--sr 800000", "error: --sr 800000: give a sample rate"},
        {"--sr 44.1k", "error: render: Could not convert: --sr = 44.1k"},
        {"--ksmps 0", "error: --ksmps 0: give a number of frames from 1 to 8192"},
        {"--ksmps 8193", "error: --ksmps 8193: give a number of frames from 1 to 8192"},
        {"--duration inf", "error: --duration inf: give a number of seconds from 0 to 1000000"},
        {"--duration nan", "error: --duration nan: give a number of seconds"},
        {"--duration 1e300", "error: --duration 1e+300: give a number of seconds"},
        {"--duration -1", "error: --duration -1: give a number of seconds"},
        {"--tail inf", "error: --tail inf: give a number of seconds"},
        {"--tail -0.5", "error: --tail -0.5: give a number of seconds"},
        {"--set cutoff=nan", "error: --set 'cutoff=nan': the value is not a finite number"},
        {"--set cutoff=inf", "error: --set 'cutoff=inf': the value is not a finite number"},
        {"--format wac", "error: --format 'wac': give one of wav, rf64, flac, ogg, aiff; did you "
                         "mean 'wav'?"},
        {"--encoding flt32", "error: --encoding 'flt32': give one of pcm16"},
        {"--format ogg --encoding pcm16", "error: --encoding: ogg is always Vorbis"},
    };
    for (const auto& [args, message] : cases) {
        const auto r = cmd(fmt::format("{} {} -o {}", kSynth, args, q(out)));
        EXPECT_EQ(r.status, 2) << args << "\n" << r.err;
        EXPECT_NE(r.err.find(message), std::string::npos) << args << "\n" << r.err;
        expectEveryLineStartsWith(r.err, "error: ");
        EXPECT_FALSE(fs::exists(out)) << args;
    }
    const auto mp3 = cmd(kSynth + " -o " + q(dir() / "x.mp3"));
    EXPECT_EQ(mp3.status, 2);
    EXPECT_NE(mp3.err.find("'.mp3' names no format spinout writes"), std::string::npos) << mp3.err;
    // the same checks guard csd
    const auto csd = cmd("csd presets/polysynth.toml --sr 0 -o " + q(dir() / "x.csd"));
    EXPECT_EQ(csd.status, 2);
    EXPECT_NE(csd.err.find("error: --sr 0"), std::string::npos) << csd.err;
}

TEST(Output, SilentResultsAreWarnedAbout) {
    const auto out = dir() / "silent.wav";
    const auto instrument = cmd("render presets/polysynth.toml --duration 1 -o " + q(out));
    EXPECT_EQ(instrument.status, 0) << instrument.err;
    EXPECT_NE(instrument.err.find("warning: nothing plays the instrument 'Spinout Poly Synth': "
                                  "give --midi or --score"),
              std::string::npos)
        << instrument.err;
    EXPECT_NE(
        instrument.err.find(fmt::format("warning: {} is silent: every sample is 0", out.string())),
        std::string::npos)
        << instrument.err;
    expectEveryLineStartsWith(instrument.err, "warning: ");

    const auto effect = cmd("render presets/stereodelay.toml --duration 1 -o " + q(out));
    EXPECT_EQ(effect.status, 0) << effect.err;
    EXPECT_NE(effect.err.find("gets no input and processes silence: give --input"),
              std::string::npos)
        << effect.err;
    EXPECT_NE(effect.err.find("is silent"), std::string::npos) << effect.err;

    // a render that plays: no warning, and off a terminal nothing but the summary
    const auto played = cmd(kSynth + " -o " + q(out));
    EXPECT_EQ(played.status, 0);
    EXPECT_EQ(played.err, "");
    EXPECT_EQ(std::count(played.out.begin(), played.out.end(), '\n'), 1) << played.out;
    EXPECT_EQ(played.out.find('\r'), std::string::npos);
}

TEST(Output, ProgressOnATerminalShowsPositionSpeedAndTimeLeft) {
    const auto out = dir() / "progress.wav";
    // script(1) gives the command a terminal
    const auto r = sh(
        fmt::format("script -qfec \"SPINOUT {} --duration 400 -o {}\" /dev/null", kSynth, q(out)));
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find(" / 6:40.0 ("), std::string::npos) << r.out; // position / total
    EXPECT_NE(r.out.find("x real time  elapsed 0:0"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("  left 0:"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("progress.wav: 400.000 s"), std::string::npos) << r.out;
}

namespace {

Result lilvRender(const std::string& args) {
    return sh(fmt::format("LV2_PATH='{}' '{}' {}", kLv2Dir.string(), kLilvRender.string(), args));
}

} // namespace

TEST(LilvRender, ErrorsExitNonZeroWithTheReason) {
    const auto out = dir() / "lilv.wav";
    const auto preset = lilvRender("urn:spinout:polysynth pda " + q(out));
    EXPECT_EQ(preset.status, 1);
    EXPECT_NE(preset.err.find("error: no preset 'pda' for urn:spinout:polysynth; its presets:"),
              std::string::npos)
        << preset.err;
    EXPECT_NE(preset.err.find("  pad (Warm pad)"), std::string::npos) << preset.err;
    EXPECT_NE(preset.err.find("  bass (Squelch bass)"), std::string::npos) << preset.err;

    const auto unwritable = lilvRender("urn:spinout:polysynth pad /nonexistent-dir/out.wav");
    EXPECT_EQ(unwritable.status, 1);
    EXPECT_NE(unwritable.err.find("error: cannot write '/nonexistent-dir/out.wav'"),
              std::string::npos)
        << unwritable.err;
    const auto full = lilvRender("urn:spinout:polysynth pad /dev/full");
    EXPECT_EQ(full.status, 1);
    EXPECT_NE(full.err.find("No space left on device"), std::string::npos) << full.err;

    const auto noInput = lilvRender("urn:spinout:stereodelay dub " + q(out));
    EXPECT_EQ(noInput.status, 1);
    EXPECT_NE(noInput.err.find("is an effect: give a sound file to process with -i INPUT"),
              std::string::npos)
        << noInput.err;
    const auto missing = lilvRender("-i /nonexistent.wav urn:spinout:stereodelay dub " + q(out));
    EXPECT_EQ(missing.status, 1);
    EXPECT_NE(missing.err.find("cannot read '/nonexistent.wav'"), std::string::npos);
    const auto plugin = lilvRender("urn:spinout:nothing pad " + q(out));
    EXPECT_EQ(plugin.status, 1);
    EXPECT_NE(plugin.err.find("no plugin urn:spinout:nothing"), std::string::npos);
    EXPECT_EQ(lilvRender("urn:spinout:polysynth").status, 2);

    // by label too, and "-" for none
    EXPECT_EQ(lilvRender("urn:spinout:polysynth 'Squelch bass' " + q(out)).status, 0);
    EXPECT_EQ(lilvRender("urn:spinout:polysynth - " + q(out)).status, 0);
}

TEST(LilvRender, AnEffectProcessesItsInputAsSpinoutDoes) {
    // the input: a second and a half of the synth
    const auto input = dir() / "lilv_input.wav";
    ASSERT_EQ(cmd(kSynth + " --duration 1.5 --tail 0 -o " + q(input)).status, 0);
    const auto ours = dir() / "lilv_delay.wav";
    const auto r =
        lilvRender(fmt::format("-i {} urn:spinout:stereodelay dub {}", q(input), q(ours)));
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("3.5 s of urn:spinout:stereodelay with preset dub processing"),
              std::string::npos)
        << r.out;
    const auto theirs = dir() / "spinout_delay.wav";
    ASSERT_EQ(cmd(fmt::format("render presets/stereodelay.toml --input {} --preset dub -o {}",
                              q(input), q(theirs)))
                  .status,
              0);
    const auto a = readSoundFile(ours.string());
    const auto b = readSoundFile(theirs.string());
    ASSERT_EQ(a.frames(), b.frames());
    double maxDiff = 0;
    for (std::size_t i = 0; i < a.samples.size(); ++i)
        maxDiff = std::max(maxDiff, std::fabs(a.samples[i] - b.samples[i]));
    EXPECT_LE(maxDiff, 1e-6);
    // and it sounds: echoes after the input stops at 1.5 s
    const auto left = a.channel(0);
    EXPECT_GT(t::rms(t::window(left, 48000, 1.6, 3.0)), 0.002);
}
