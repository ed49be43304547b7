// Issue 12's attacks through the spinout command, as a user runs it: every session is
// untrusted unless granted. Each attack is refused by check, render, csd and bundle alike
// with the opcode, the permission and the session line, leaves nothing written and runs
// nothing; the same session with the right --allow (or trusted with `spinout trust`)
// works. Hangs end with an error naming where, and no output.
#include "../common/command.hpp"
#include "../common/files.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using spinout::test::readFile;
using spinout::test::writeFile;
namespace t = spinout::test;

namespace {

// A folder per test: the session's folder inside a parent (files "outside" go there), an
// output folder, and a configuration folder of its own (the trust file).
class TrustCli : public ::testing::Test {
protected:
    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        root = fs::temp_directory_path() / fmt::format("spinout_trust_cli_{}", info->name());
        fs::remove_all(root);
        folder = root / "project" / "session";
        out = root / "out";
        config = root / "config";
        fs::create_directories(folder);
        fs::create_directories(out);
    }
    void TearDown() override {
        if (!HasFailure()) fs::remove_all(root);
    }

    // `spinout ARGS` in the session's folder, with this test's configuration.
    t::Run spinout(const std::string& args) const {
        return t::runCommand(fmt::format(
            "cd '{}' && XDG_CONFIG_HOME='{}' LV2_PATH='{}' '{}' {} 2>&1", folder.string(),
            config.string(), (root / "lv2").string(), t::kBin.string(), args));
    }

    // An effect; `engine` goes into [engine], `body` and `init` into its one instr.
    fs::path session(const std::string& engine, const std::string& body = "outch 1, a0\n",
                     const std::string& init = "", const std::string& args = "") {
        text = fmt::format(R"([session]
name = "Attack"
uri = "urn:spinout:test-attack"
kind = "effect"
audio_inputs = 1
audio_outputs = 1

[engine]
ksmps = 64
{}

[instr.fx]
{}body = '''
{}a0 = inch(1)
{}'''

[[run]]
instr = "fx"
)",
                           engine, init.empty() ? "" : "init = '''\n" + init + "'''\n", args, body);
        writeFile(folder / "s.toml", text);
        return folder / "s.toml";
    }
    int lineOf(const std::string& needle) const {
        const auto at = text.find(needle);
        EXPECT_NE(at, std::string::npos) << needle;
        return 1 + static_cast<int>(std::count(text.begin(), text.begin() + at, '\n'));
    }

    // Nothing but the session's own files and what the test put there.
    void expectNothingWritten() const {
        for (const auto& e : fs::directory_iterator(out))
            ADD_FAILURE() << "written: " << e.path();
    }

    // Each command refuses the session with `expected` in its output (and the hint to
    // grant `permission`), exits 1, and writes nothing. `bundleExpected`: bundle's own
    // message, for what a bundle never holds whatever the grants.
    void expectRefusedEverywhere(const std::string& expected, const std::string& permission,
                                 const std::string& bundleExpected = "") {
        const auto wav = out / "out.wav";
        for (const std::string& cmd :
             {std::string("check s.toml"), fmt::format("render s.toml -o '{}'", wav.string()),
              fmt::format("csd s.toml -o '{}'", (out / "out.csd").string()),
              fmt::format("bundle s.toml -o '{}'", (out / "lv2").string())}) {
            const auto r = spinout(cmd);
            EXPECT_EQ(r.status, 1) << cmd << "\n" << r.output;
            if (!bundleExpected.empty() && cmd.rfind("bundle", 0) == 0) {
                EXPECT_NE(r.output.find(bundleExpected), std::string::npos) << r.output;
                continue;
            }
            EXPECT_NE(r.output.find(expected), std::string::npos) << cmd << "\n" << r.output;
            EXPECT_NE(r.output.find(fmt::format("--allow {}", permission)), std::string::npos)
                << cmd << "\n"
                << r.output;
            EXPECT_EQ(r.output.find("warning: "), r.output.find("warning: the effect"))
                << "no other warning: " << r.output;
        }
        fs::remove(out / "lv2");
        expectNothingWritten();
    }

    fs::path root, folder, out, config;
    std::string text;
};

// `ires system_i 1, "..."` in globals, an instr's init code and its body: refused before
// anything runs; granted, it runs.
TEST_F(TrustCli, SystemIsRefusedInGlobalsInitAndBodyAndRunsWhenGranted) {
    const auto marker = root / "ran";
    const auto cmd = fmt::format("ires system_i 1, \"touch {}\"\n", marker.string());
    struct Where {
        std::string engine, body, init;
    };
    for (const Where& w : {Where{"globals = '''\n" + cmd + "'''", "outch 1, a0\n", ""},
                           Where{"", "outch 1, a0\n", cmd}, Where{"", cmd + "outch 1, a0\n", ""}}) {
        session(w.engine, w.body, w.init);
        expectRefusedEverywhere(
            fmt::format("s.toml:{}:1: 'system_i' needs the 'exec' permission", lineOf("ires")),
            "exec");
        EXPECT_FALSE(fs::exists(marker)) << "nothing ran";
    }
    // granted: the body's runs when the instance inits
    const auto r = spinout(fmt::format("render s.toml --allow exec --duration 0.1 -o '{}'",
                                       (out / "ok.wav").string()));
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_TRUE(fs::exists(marker));
}

// Opcodes that write files, onto a file that exists: it is never touched without `write`.
TEST_F(TrustCli, WritesAreRefusedAndTheFileIsUntouched) {
    const auto victim = root / "victim.txt";
    writeFile(victim, "precious\n");
    const std::vector<std::string> writers = {
        fmt::format("fout \"{}\", 1, a0\n", victim.string()),
        fmt::format("fprints \"{}\", \"x\"\n", victim.string()),
        fmt::format("k1 = 1\ndumpk k1, \"{}\", 8, 0.1\n", victim.string()),
        fmt::format("giT ftgen 0, 0, 16, 10, 1\nftsave \"{}\", 1, giT\n", victim.string())};
    for (const auto& w : writers) {
        session("", w + "outch 1, a0\n");
        const auto opcode = w.substr(w.rfind('\n', w.size() - 2) + 1).substr(0, 5);
        expectRefusedEverywhere(fmt::format("s.toml:{}:1: '", lineOf(opcode)), "write");
        EXPECT_EQ(readFile(victim), "precious\n") << w;
    }
    // granted, fout writes it
    session("", writers[0] + "outch 1, a0\n");
    const auto r = spinout(fmt::format("render s.toml --allow write --duration 0.1 -o '{}'",
                                       (out / "ok.wav").string()));
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(readFile(victim), "precious\n");
}

// Reads outside the session's folder, whichever way: refused, and no error shows what the
// file holds.
TEST_F(TrustCli, ReadsOutsideTheFolderAreRefusedAndShowNothingOfTheFile) {
    const auto secret = folder.parent_path() / "secret.orc";
    writeFile(secret, "giSecretLine = 1234567\n");
    writeFile(folder.parent_path() / "secret.txt", "1 2 3\n");
    struct Attack {
        std::string engine, body, expected, bundleExpected;
    };
    const std::vector<Attack> attacks = {
        {"", "Sline, iline readfi \"/etc/passwd\"\noutch 1, a0\n", "'readfi' needs the 'read'", ""},
        {"", "gi1 ftgen 0, 0, 0, -23, \"/proc/self/stat\"\noutch 1, a0\n", "GEN23", ""},
        {"", "gi1 ftgen 0, 0, 0, -23, \"../secret.txt\"\noutch 1, a0\n", "GEN23", ""},
        {"globals = '''\n#include \"../secret.orc\"\n'''", "outch 1, a0\n", "#include", ""},
        {"globals = '''\n#include \"/etc/passwd\"\n'''", "outch 1, a0\n", "#include", ""},
        {"includes = [\"../secret.orc\"]", "outch 1, a0\n", "include file '../secret.orc'",
         "a bundle holds only files inside the session's folder"},
    };
    for (const auto& a : attacks) {
        session(a.engine, a.body);
        expectRefusedEverywhere(a.expected, "read", a.bundleExpected);
        const auto r = spinout("check s.toml");
        EXPECT_EQ(r.output.find("1234567"), std::string::npos) << r.output;
        EXPECT_EQ(r.output.find("root:"), std::string::npos) << r.output;
    }
    // granted, the include outside is read
    const auto r = spinout("check s.toml --allow read");
    EXPECT_EQ(r.status, 0) << r.output;
}

// Include files that never end or never come: a device (/dev/zero) and a FIFO. Before,
// hashing the session for the trust file read /dev/zero until memory ran out, and a FIFO
// hung the command. Refused without `read`; with it, an error naming the file, at once.
TEST_F(TrustCli, IncludesOfADeviceOrAFifoAreErrorsNotHangs) {
    const auto fifo = folder / "pipe.orc";
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    for (const std::string& engine :
         {std::string("includes = [\"/dev/zero\"]"), std::string("includes = [\"pipe.orc\"]"),
          std::string("globals = '''\n#include \"/dev/zero\"\n'''"),
          std::string("globals = '''\n#include \"pipe.orc\"\n'''")}) {
        session(engine);
        for (const std::string& cmd :
             {std::string("check s.toml"), std::string("check s.toml --allow read"),
              std::string("trust s.toml --allow read")}) {
            const auto r = spinout(cmd);
            EXPECT_EQ(r.status, 1) << engine << "\n" << cmd << "\n" << r.output;
            EXPECT_TRUE(r.output.find("not a regular file") != std::string::npos ||
                        r.output.find("needs the 'read' permission") != std::string::npos)
                << engine << "\n"
                << cmd << "\n"
                << r.output;
        }
    }
}

TEST_F(TrustCli, NativeCodeAndTheNetworkAreRefused) {
    session("globals = '''\ngih dssiinit \"/tmp/evil.so\", 0, 1\n'''");
    expectRefusedEverywhere("'dssiinit' needs the 'native' permission", "native");
    session("globals = '''\ngiOsc OSCinit 9999\n'''");
    expectRefusedEverywhere("needs the 'net' permission", "net");
}

// A sound file of [table.NAME] outside the folder is a read outside it.
TEST_F(TrustCli, ATableSoundFileOutsideTheFolderIsRefused) {
    writeFile(folder.parent_path() / "outside.wav", "RIFF");
    session("");
    text += "\n[table.x]\nfile = \"../outside.wav\"\n";
    writeFile(folder / "s.toml", text);
    expectRefusedEverywhere(fmt::format("s.toml:{}:", lineOf("[table.x]")), "read");
}

// 12 tables of 2^28 points: refused before Csound allocates them. Granted `memory`, a
// table Csound cannot make is an error, never a silent success.
TEST_F(TrustCli, HugeTablesAreRefusedAndATableCsoundCannotMakeIsAnError) {
    std::string many;
    for (int i = 0; i < 12; ++i)
        many += fmt::format("gi{} ftgen 0, 0, 2^28, 10, 1\n", i);
    session("globals = '''\n" + many + "'''");
    expectRefusedEverywhere("needs the 'memory' permission", "memory");

    session("globals = '''\ngiBig ftgen 0, 0, 2^30, 10, 1\n'''");
    expectRefusedEverywhere("needs the 'memory' permission", "memory");
    const auto wav = out / "big.wav";
    auto r =
        spinout(fmt::format("render s.toml --allow memory --duration 0.1 -o '{}'", wav.string()));
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find("ftgen"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(fmt::format("s.toml:{}:", lineOf("giBig"))), std::string::npos)
        << r.output;
    r = spinout("check s.toml --allow memory");
    EXPECT_EQ(r.status, 1) << r.output;
    expectNothingWritten();
}

// Values: NaN in a file is an error, a huge finite one for vco2 is sound (or silence),
// never a crash.
TEST_F(TrustCli, NanIsAnErrorAndHugeValuesDoNotCrash) {
    session("", "a1 = vco2:a(0.1, kfreq)\noutch 1, a1\n", "", "|kfreq=nan|\n");
    auto r = spinout("check s.toml");
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find("must be a number or a quoted string, not 'nan'"), std::string::npos)
        << r.output;
    // a score's values: finite, and a length a render can hold
    writeFile(folder / "nan.score.toml",
              "[[event]]\ninstr = \"fx\"\ntime = 0\ndur = 1\nargs = { kfreq = nan }\n");
    writeFile(folder / "far.score.toml", "[[event]]\ninstr = \"fx\"\ntime = 1e300\ndur = 1\n");
    session("", "a1 = vco2:a(0.1, kfreq)\noutch 1, a1\n", "", "|kfreq=440|\n");
    r = spinout(
        fmt::format("render s.toml --score nan.score.toml -o '{}'", (out / "v.wav").string()));
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find("nan.score.toml:5:"), std::string::npos) << r.output;
    r = spinout(
        fmt::format("render s.toml --score far.score.toml -o '{}'", (out / "v.wav").string()));
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find("far.score.toml:3:"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("time must be from 0 to"), std::string::npos) << r.output;
    expectNothingWritten();
    for (const std::string v : {"1e308", "-1e308", "1.7976931348623157e308", "5e-324"}) {
        session("", "a1 = vco2:a(0.1, kfreq)\noutch 1, a1\n", "", fmt::format("|kfreq={}|\n", v));
        text += fmt::format("args = {{ kfreq = {} }}\n", v);
        writeFile(folder / "s.toml", text);
        r = spinout(fmt::format("render s.toml --duration 0.2 -o '{}'", (out / "v.wav").string()));
        EXPECT_EQ(r.status, 0) << v << "\n" << r.output;
    }
}

// An endless loop in globals, an init pass or a cycle: each command stops within the
// time limit, names where, and leaves no output.
TEST_F(TrustCli, EndlessLoopsStopWithinTheTimeoutAndLeaveNoOutput) {
    struct Loop {
        std::string engine, body, where;
    };
    const std::vector<Loop> loops = {
        {"globals = '''\ngi1 = 0\nwhile gi1 < 1 do\n  gi1 = gi1 * 1\nod\n'''", "outch 1, a0\n",
         "loading the session did not finish within 1 s: "},
        {"", "ix = 0\nwhile ix < 1 do\n  ix = ix * 1\nod\noutch 1, a0\n",
         "did not finish within 1 s: "},
        {"", "kx = 0\nwhile kx < 1 do\n  kx = kx * 1\nod\noutch 1, a0\n",
         "a cycle did not finish within 1 s: "},
    };
    for (const auto& l : loops) {
        session(l.engine, l.body);
        const auto where =
            l.engine.empty() ? std::string("instr 'fx'") : std::string("the session's global code");
        for (const std::string& cmd :
             {std::string("check s.toml --timeout 1"),
              fmt::format("render s.toml --timeout 1 -o '{}'", (out / "l.wav").string()),
              fmt::format("csd s.toml --timeout 1 -o '{}'", (out / "l.csd").string())}) {
            const auto start = std::chrono::steady_clock::now();
            const auto r = spinout(cmd);
            const double secs =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            EXPECT_EQ(r.status, 1) << cmd << "\n" << r.output;
            EXPECT_NE(r.output.find(l.where), std::string::npos) << cmd << "\n" << r.output;
            EXPECT_NE(r.output.find(where), std::string::npos) << cmd << "\n" << r.output;
            EXPECT_NE(r.output.find("--timeout"), std::string::npos) << r.output;
            EXPECT_LT(secs, 8.0) << cmd;
        }
        expectNothingWritten();
    }
    // the limit is --timeout's: 0 is none, anything else not a number of seconds is refused
    EXPECT_EQ(spinout("check s.toml --timeout -1").status, 2);
    EXPECT_EQ(spinout("check s.toml --timeout nan").status, 2);
}

// The trust file: `spinout trust` grants a session by its SHA-256; one byte more and it
// is untrusted again; --list and --remove.
TEST_F(TrustCli, TheTrustFileGrantsASessionByItsHashOnly) {
    const auto marker = root / "ran";
    session(fmt::format("globals = '''\nires system_i 1, \"touch {}\"\n'''", marker.string()));
    EXPECT_EQ(spinout("check s.toml").status, 1);

    auto r = spinout("trust s.toml --allow exec");
    EXPECT_EQ(r.status, 0) << r.output;
    const auto trustFile = config / "spinout" / "trust.toml";
    EXPECT_NE(readFile(trustFile).find("allow = [\"exec\"]"), std::string::npos)
        << readFile(trustFile);
    r = spinout("trust --list");
    EXPECT_NE(r.output.find("exec  " + (folder / "s.toml").string()), std::string::npos)
        << r.output;
    r = spinout("check s.toml");
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_TRUE(fs::exists(marker));
    fs::remove(marker);

    writeFile(folder / "s.toml", text + "\n"); // one byte more
    r = spinout("check s.toml");
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find("--allow exec"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(marker));

    writeFile(folder / "s.toml", text);
    r = spinout("trust --remove s.toml");
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(spinout("check s.toml").status, 1);
    EXPECT_EQ(spinout("trust --remove s.toml").status, 1);
    EXPECT_EQ(spinout("trust").status, 2);
    EXPECT_EQ(spinout("trust s.toml --allow exce").status, 2);
    EXPECT_FALSE(fs::exists(marker));
}

// A session that declares what it needs: trusted without --allow, it gets that.
TEST_F(TrustCli, TrustWithoutAllowGrantsWhatTheSessionDeclares) {
    const auto victim = root / "written.txt";
    session("", fmt::format("fprints \"{}\", \"x\"\noutch 1, a0\n", victim.string()));
    text.replace(text.find("kind = "), 0, "permissions = [\"write\"]\n");
    writeFile(folder / "s.toml", text);
    auto r = spinout("check s.toml");
    EXPECT_NE(r.output.find("declares the 'write' permission"), std::string::npos) << r.output;
    r = spinout("trust s.toml");
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("trusted with write"), std::string::npos) << r.output;
    EXPECT_EQ(spinout("check s.toml").status, 0);
}

// bundle --allow records the grant with the session's SHA-256; without it the bundle is
// refused and nothing is left behind.
TEST_F(TrustCli, BundleRecordsItsGrantsWithTheSessionsHash) {
    session("globals = '''\nires system_i 1, \"true\"\n'''");
    auto r = spinout(fmt::format("bundle s.toml -o '{}'", out.string()));
    EXPECT_EQ(r.status, 1) << r.output;
    expectNothingWritten();
    r = spinout(fmt::format("bundle s.toml --allow exec -o '{}'", out.string()));
    ASSERT_EQ(r.status, 0) << r.output;
    const auto grants = readFile(out / "spinout-s.lv2" / "grants.toml");
    const auto hash = t::runCommand(fmt::format("sha256sum '{}'", (folder / "s.toml").string()));
    EXPECT_NE(grants.find(hash.output.substr(0, 64)), std::string::npos) << grants;
    EXPECT_NE(grants.find("allow = [\"exec\"]"), std::string::npos) << grants;
    // a session cannot ship grants of its own as an include
    writeFile(folder / "grants.toml", grants);
    session("includes = [\"grants.toml\"]");
    r = spinout(fmt::format("bundle s.toml -o '{}'", (root / "out2").string()));
    EXPECT_EQ(r.status, 1) << r.output;
}

// The shipped sessions need no permission, through every command.
TEST_F(TrustCli, TheShippedPresetsNeedNoPermission) {
    for (const auto& entry : fs::directory_iterator(t::kRoot / "presets")) {
        const auto name = entry.path().filename().string();
        if (entry.path().extension() != ".toml" || name.find(".score.") != std::string::npos)
            continue;
        auto r = spinout(fmt::format("check '{}'", entry.path().string()));
        EXPECT_EQ(r.status, 0) << name << "\n" << r.output;
        r = spinout(fmt::format("bundle '{}' -o '{}'", entry.path().string(), out.string()));
        EXPECT_EQ(r.status, 0) << name << "\n" << r.output;
        EXPECT_FALSE(
            fs::exists(out / ("spinout-" + entry.path().stem().string() + ".lv2") / "grants.toml"));
    }
}

} // namespace

// Found by attack: a macro given a second body after the check had read its uses. Instr
// 'a' is checked with $GAIN = 0.5, then compiled again for the [[run]] at priority 2,
// after instr 'b' gave GAIN a body that runs a command. Refused without exec; with exec
// granted, the command does run (so the refusal is what stops it).
TEST_F(TrustCli, AMacroGivenASecondBodyIsRefused) {
    const auto marker = root / "ran";
    writeFile(folder / "s.toml", fmt::format(R"([session]
name = "Macro"
uri = "urn:spinout:test-macro"
kind = "effect"
audio_inputs = 0
audio_outputs = 1
[engine]
ksmps = 64
globals = '''
gScmd = "touch {}"
#define GAIN #0.5#
'''
[instr.a]
priority = 1
body = '''
kg = $GAIN
outch 1, a(0) * kg
'''
[instr.b]
priority = 1
body = '''
#define GAIN #0
ires system_i 1, gScmd
kz = 0#
outch 1, a(0)
'''
[[run]]
instr = "a"
priority = 2
)",
                                             marker.string()));
    const auto wav = out / "out.wav";
    auto r = spinout(fmt::format("render s.toml --duration 0.1 -o '{}'", wav.string()));
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find("s.toml:22:1: '#define GAIN' needs the 'exec' permission"),
              std::string::npos)
        << r.output;
    EXPECT_FALSE(fs::exists(marker));
    expectNothingWritten();
    r = spinout(fmt::format("render s.toml --allow exec --duration 0.1 -o '{}'", wav.string()));
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_TRUE(fs::exists(marker)) << "the attack no longer runs its command: test it anew";
}

// Found by attack: a string argument holding CRs ended the generated `strset` line, and
// what followed ran as global code, in `check` as in `render` (from a score's [[event]]
// too, and from a [table] file's name). The argument is a string, byte for byte.
TEST_F(TrustCli, AStringArgumentStaysAString) {
    const auto marker = root / "ran";
    writeFile(folder / "s.toml", fmt::format(R"([session]
name = "Strings"
uri = "urn:spinout:test-strings"
kind = "effect"
audio_inputs = 0
audio_outputs = 1
[engine]
ksmps = 64
globals = '''
gScmd = "touch {}"
'''
[instr.v]
body = '''
|Sname="a"|
if timeinstk() == 1 then
  printf "name=[%s] length=%d\n", 1, Sname, strlen(Sname)
endif
outch 1, a(0)
'''
[[run]]
instr = "v"
args = {{ Sname = "x\r\rires system_i 1, gScmd\rSjunk = " }}
)",
                                             marker.string()));
    for (const std::string cmd :
         {std::string("check s.toml"),
          "render s.toml --duration 0.1 -v -o " + (out / "out.wav").string()}) {
        const auto r = spinout(cmd);
        EXPECT_EQ(r.status, 0) << cmd << "\n" << r.output;
        EXPECT_FALSE(fs::exists(marker)) << cmd << " ran the command in the string";
        if (cmd.rfind("render", 0) == 0)
            EXPECT_NE(r.output.find("length=34"), std::string::npos) << r.output;
    }
}

// A channel's name reaches Csound code and an exported .csd's score as a string: it is
// letters, digits and _ . : -.
TEST_F(TrustCli, AChannelNameIsPlain) {
    session("", "outch 1, a0 * chnget:k(\"gain\")\n");
    text += "[[port]]\nsymbol = \"gain\"\ntarget = \"chn:ga\\rin\"\n";
    writeFile(folder / "s.toml", text);
    const auto r = spinout("check s.toml");
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find("a channel's name is letters, digits and _ . : -"), std::string::npos)
        << r.output;
}

// What crashed the host in attacks on the check (a table of spinout's freed or remade
// under it, orchestra code in a line event with no buffer for it, a vector opcode looping
// past its table): each is refused by every command, and granted what it asks, it is the
// session's own risk. None may end `check` or `render` with a signal.
TEST_F(TrustCli, WhatCrashedTheHostIsRefused) {
    struct Attack {
        std::string engine, body, expected, permission;
    };
    const std::vector<Attack> attacks = {
        {"globals = '''\nftfree giSpinoutTiming, 0\n'''", "outch 1, a0\n", "'ftfree'", "exec"},
        {"globals = '''\nift vco2init 1, 101, 0, 16, 16\n'''", "outch 1, a0\n", "'vco2init'",
         "exec"},
        {"", "outch 1, a0\nscoreline_i \"{\\nx\\n\"\n", "'scoreline_i'", "exec"},
        {"", "outch 1, a0\nift ftgen 0, 0, 16, 10, 1\nvlimit ift, 0, 1, 0\n", "'vlimit'", "exec"},
        {"globals = '''\nigone = 101\nftfree igone, 0\n'''", "outch 1, a0\n", "'ftfree'", "exec"},
    };
    for (const auto& a : attacks) {
        session(a.engine, a.body);
        expectRefusedEverywhere(a.expected, a.permission);
    }
}

// Csound's .csd reader ends the orchestra at a line starting with </CsInstruments>, macro
// bodies or not, and what follows is read as the .csd's tags: <CsScore bin="..."> runs a
// command. Found by attack. Code with such a line renders; it is no .csd's.
TEST_F(TrustCli, CodeThatWouldEndACsdsOrchestraIsNoCsds) {
    const auto marker = root / "pwned";
    session(fmt::format("globals = '''\n#define NOTE #\n</CsInstruments>\n#\n/*\n<CsScore "
                        "bin=\"touch {}\">\n</CsScore>\n*/\ngiX = 1\n'''",
                        marker.string()));
    const auto csd = out / "out.csd";
    auto r = spinout(fmt::format("csd s.toml --duration 0.1 -o '{}'", csd.string()));
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find("would end the orchestra of a .csd"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(csd));
    r = spinout(fmt::format("render s.toml --duration 0.1 -o '{}'", (out / "o.wav").string()));
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_FALSE(fs::exists(marker));
}
