// Grants and what holds a session to them, through the core: SHA-256, the trust file,
// a bundle's grants, the confinement of files spinout reads for a session, values from
// files and hosts made finite, and the offline watchdog that names where a session hangs.
#include "../common/files.hpp"
#include "spinout/processor.hpp"
#include "spinout/session_file.hpp"
#include "spinout/trust.hpp"
#include "spinout/watchdog.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

using namespace spinout;
namespace fs = std::filesystem;
using spinout::test::readFile;
using spinout::test::writeFile;

namespace {

class TrustTest : public spinout::test::FolderTest {
protected:
    // An effect whose [engine] takes `engine` and whose one instr has `body`.
    SessionSpec effect(const std::string& engine, const std::string& body = "outch 1, a0\n",
                       const std::string& name = "session.toml") {
        const auto text = fmt::format(R"([session]
name = "Trust"
uri = "urn:spinout:trust"
kind = "effect"
audio_inputs = 1
audio_outputs = 1

[engine]
ksmps = 64
{}

[instr.fx]
body = '''
a0 = inch(1)
{}'''

[[run]]
instr = "fx"
)",
                                      engine, body);
        writeFile(folder / name, text);
        return parseSessionFile((folder / name).string());
    }
};

// Every sample of `blocks` blocks of 256 frames, the input at `in`.
std::vector<float> play(Processor& p, int blocks, float in = 0.25f) {
    std::vector<float> input(256, in), output(256), all;
    const float* ins[] = {input.data(), input.data()};
    float* outs[] = {output.data(), output.data()};
    for (int b = 0; b < blocks; ++b) {
        p.process(ins, outs, 256);
        all.insert(all.end(), output.begin(), output.end());
    }
    return all;
}

TEST(Trust, Sha256IsTheStandardOne) {
    // FIPS 180-2's examples
    EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Trust, PermissionListsReadCommasAndSpacesAndRefuseUnknownWords) {
    const auto set = parsePermissionList("exec, write,net");
    EXPECT_EQ(permissionListText(set), "exec, write, net");
    EXPECT_EQ(permissionListText(parsePermissionList("")), "none");
    try {
        parsePermissionList("exec,wirte");
        FAIL() << "an unknown permission passed";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("'wirte'; did you mean 'write'"), std::string::npos)
            << e.what();
    }
}

TEST_F(TrustTest, TheTrustFileFindsASessionByItsTextAndIncludesOnly) {
    writeFile(folder / "udos.inc", "opcode Twice, a, a\nain xin\nxout ain * 2\nendop\n");
    const auto spec = effect("includes = [\"udos.inc\"]");
    TrustFile file;
    TrustEntry entry;
    entry.digest = sessionDigest(spec);
    entry.allow = parsePermissionList("exec");
    entry.file = spec.path;
    file.put(entry);
    const auto path = (parent / "config" / "spinout" / "trust.toml").string();
    file.save(path);
    EXPECT_EQ(fs::status(path).permissions() & fs::perms::others_all, fs::perms::none);

    const auto loaded = TrustFile::load(path);
    ASSERT_EQ(loaded.entries().size(), 1u);
    ASSERT_NE(loaded.find(sessionDigest(spec)), nullptr);
    EXPECT_EQ(permissionListText(loaded.find(sessionDigest(spec))->allow), "exec");
    EXPECT_EQ(recordedGrants(spec, path).granted, parsePermissionList("exec"));

    // one byte more in the session, or in its include: no longer the session trusted
    auto edited = spec;
    edited.text += " ";
    EXPECT_EQ(loaded.find(sessionDigest(edited)), nullptr);
    EXPECT_TRUE(recordedGrants(edited, path).granted.none());
    writeFile(folder / "udos.inc", readFile(folder / "udos.inc") + "\n");
    EXPECT_EQ(loaded.find(sessionDigest(spec)), nullptr);

    // put() replaces the entry of the same text; remove() takes it out
    auto again = TrustFile::load(path);
    entry.allow = parsePermissionList("write");
    again.put(entry);
    EXPECT_EQ(again.entries().size(), 1u);
    EXPECT_EQ(again.remove(entry.digest.sha256), 1);
    EXPECT_TRUE(again.entries().empty());
}

// A file the code #includes is code too: editing it, or a file it includes, voids the grant
// as editing the session would (an attacker swapping an include of a trusted session).
TEST_F(TrustTest, AGrantCoversTheFilesTheCodeIncludes) {
    fs::create_directories(folder / "lib");
    writeFile(folder / "lib" / "outer.inc", "#include \"inner.inc\"\ngiOuter = 1\n");
    writeFile(folder / "lib" / "inner.inc", "giInner = 2\n");
    writeFile(folder / "body.inc", "a0 = a0 * giOuter\n");
    const auto spec = effect("globals = '''\n#include \"lib/outer.inc\"\n'''",
                             "#include \"body.inc\"\nouth a0\n");
    const auto digest = sessionDigest(spec);
    std::string names;
    for (const auto& [name, sha] : digest.includes)
        names += name + " " + sha + "\n";
    // by name: a TOML table (the trust file's) keeps no order
    ASSERT_EQ(digest.includes.size(), 3u) << names;
    EXPECT_EQ(digest.includes[0].first, "body.inc");
    EXPECT_EQ(digest.includes[1].first, "lib/inner.inc");
    EXPECT_EQ(digest.includes[2].first, "lib/outer.inc");
    EXPECT_EQ(digest.includes[2].second, sha256Hex(readFile(folder / "lib" / "outer.inc")));

    TrustFile file;
    TrustEntry entry;
    entry.digest = digest;
    entry.allow = parsePermissionList("exec");
    entry.file = spec.path;
    file.put(entry);
    const auto path = (parent / "config" / "spinout" / "trust.toml").string();
    file.save(path);
    EXPECT_EQ(recordedGrants(spec, path).granted, parsePermissionList("exec"));
    // the file two includes down, changed: the grant no longer holds
    writeFile(folder / "lib" / "inner.inc", "giInner = 2\nires system_i 1, \"id\"\n");
    EXPECT_TRUE(recordedGrants(spec, path).granted.none());
    writeFile(folder / "lib" / "inner.inc", "giInner = 2\n");
    EXPECT_EQ(recordedGrants(spec, path).granted, parsePermissionList("exec"));
    writeFile(folder / "body.inc", "a0 = a0 * 2\n");
    EXPECT_TRUE(recordedGrants(spec, path).granted.none());
}

TEST_F(TrustTest, ABrokenTrustFileIsAnErrorWithItsLineAndGrantsNothing) {
    const auto path = parent / "trust.toml";
    writeFile(path, "[[session]]\nsha256 = \"abc\"\nallow = [\"exce\"]\n");
    try {
        TrustFile::load(path.string());
        FAIL() << "a broken trust file loaded";
    } catch (const SessionFileError& e) {
        ASSERT_EQ(e.diagnostics().size(), 2u);
        EXPECT_EQ(e.diagnostics()[0].pos.line, 2);
        EXPECT_NE(e.diagnostics()[1].message.find("did you mean 'exec'"), std::string::npos);
    }
    const auto report = recordedGrants(effect(""), path.string());
    EXPECT_TRUE(report.granted.none());
    ASSERT_FALSE(report.warnings.empty());
    EXPECT_NE(report.warnings.front().find("trust file is ignored"), std::string::npos);
}

TEST_F(TrustTest, ABundlesGrantsHoldOnlyForTheSessionTheyWereMadeFor) {
    const auto spec = effect("");
    TrustEntry grant;
    grant.digest = sessionDigest(spec);
    grant.allow = parsePermissionList("exec,write");
    const auto grants = folder / kBundleGrantsFile;
    writeFile(grants, bundleGrantsText(grant));
    const auto ok = recordedGrants(spec, "", grants.string());
    EXPECT_EQ(ok.granted, grant.allow);
    EXPECT_TRUE(ok.warnings.empty());

    const auto edited = effect("", "outch 1, a0 * 0.5\n");
    const auto voided = recordedGrants(edited, "", grants.string());
    EXPECT_TRUE(voided.granted.none());
    ASSERT_EQ(voided.warnings.size(), 1u);
    EXPECT_NE(voided.warnings.front().find("is void"), std::string::npos);
}

// The grant hint names every permission refused, and how to grant it.
TEST(Trust, TheHintNamesThePermissionsRefused) {
    const std::vector<Diagnostic> refusals = {
        {{"s.toml", 3, 1}, "'system_i' needs the 'exec' permission (runs commands)"},
        {{"s.toml", 4, 1}, "'fout' needs the 'write' permission (writes files)"}};
    EXPECT_EQ(grantHint(refusals, "s.toml", "render"),
              "if you trust this session, grant it with: spinout render --allow exec,write s.toml");
    EXPECT_EQ(grantHint(refusals, "s.toml"),
              "if you trust this session, grant it with: spinout trust --allow exec,write s.toml");
    EXPECT_EQ(grantHint({{{"s.toml", 3, 1}, "unknown key"}}, "s.toml"), "");
}

// A Processor is untrusted by default: the policy check runs before Csound sees any code.
TEST_F(TrustTest, AProcessorRefusesWhatIsNotGrantedBeforeCsoundRunsIt) {
    const auto marker = parent / "ran";
    const auto spec =
        effect(fmt::format("globals = '''\nires system_i 1, \"touch {}\"\n'''", marker.string()));
    try {
        Processor p(spec);
        FAIL() << "an untrusted session loaded";
    } catch (const SessionFileError& e) {
        ASSERT_FALSE(e.diagnostics().empty());
        EXPECT_NE(e.diagnostics()[0].message.find("'system_i' needs the 'exec' permission"),
                  std::string::npos);
        EXPECT_EQ(e.diagnostics()[0].pos.line, 11);
    }
    EXPECT_FALSE(fs::exists(marker));
    ProcessorOptions trusted;
    trusted.grants = Grants::none(spec.dir).allow(Permission::exec);
    Processor p(spec, trusted);
    EXPECT_TRUE(fs::exists(marker)) << "granted, it runs";
}

// What spinout reads for a session follows the policy's rule where it reads it: a score's
// [table.NAME] sound file (which no policy check sees) stays in the score's folder.
TEST_F(TrustTest, SoundFilesOfTablesStayInTheirFolderUnlessReadIsGranted) {
    writeFile(parent / "outside.wav", "RIFF");
    fs::create_symlink(parent / "outside.wav", folder / "link.wav");
    const auto spec = effect("");
    Processor p(spec);
    for (const std::string& name : std::vector<std::string>{
             "../outside.wav", (parent / "outside.wav").string(), "link.wav"}) {
        TableSpec t;
        t.name = "s";
        t.source = TableSpec::fromFile;
        t.file = name;
        t.path = (folder / name).lexically_normal().string();
        t.pos = {(folder / "score.toml").string(), 7, 1};
        try {
            p.makeTables({&t, 1});
            FAIL() << name << " was read";
        } catch (const SessionFileError& e) {
            EXPECT_EQ(e.diagnostics()[0].pos.line, 7);
            EXPECT_NE(e.diagnostics()[0].message.find("needs the 'read' permission"),
                      std::string::npos)
                << e.diagnostics()[0].message;
        }
    }
}

TEST_F(TrustTest, IncludesAndTableFilesOutsideTheFolderAreRefusedWithTheirLine) {
    writeFile(parent / "secret.inc", "gisecret = 42\n");
    writeFile(parent / "outside.wav", "RIFF");
    const auto spec = effect("includes = [\"../secret.inc\"]");
    try {
        Processor p(spec);
        FAIL() << "an include outside the folder was read";
    } catch (const SessionFileError& e) {
        EXPECT_EQ(e.diagnostics()[0].pos.line, 10) << e.diagnostics()[0].str();
        EXPECT_NE(e.diagnostics()[0].message.find("'read' permission"), std::string::npos);
        EXPECT_EQ(e.diagnostics()[0].message.find("gisecret"), std::string::npos)
            << "the file's text is not shown";
    }
    ProcessorOptions reader;
    reader.grants = Grants::none(spec.dir).allow(Permission::read);
    EXPECT_NO_THROW(Processor(spec, reader));
}

// Numbers from files are finite: TOML's nan and inf, and an inline default's.
TEST_F(TrustTest, InfiniteAndNanValuesInFilesAreErrorsNotCrashes) {
    for (const std::string v : {"nan", "inf", "-inf", "+nan"}) {
        writeFile(folder / "nan.toml", fmt::format(R"([session]
name = "N"
uri = "urn:spinout:nan"
kind = "effect"
[instr.fx]
body = '''
|kfreq={}|
a0 = vco2:a(0.1, kfreq)
outch 1, a0
'''
[[run]]
instr = "fx"
)",
                                                   v));
        try {
            (void)parseSessionFile((folder / "nan.toml").string());
            FAIL() << "an inline default of " << v << " passed";
        } catch (const SessionFileError& e) {
            EXPECT_NE(e.diagnostics()[0].message.find("must be a number"), std::string::npos)
                << e.diagnostics()[0].str();
        }
    }
}

// A host may send any float to a port: each becomes a value in the port's range, and the
// sound stays finite.
TEST_F(TrustTest, PortsTakeAnyFloatAHostSends) {
    writeFile(folder / "ports.toml", R"([session]
name = "P"
uri = "urn:spinout:ports"
kind = "effect"
audio_inputs = 1
audio_outputs = 1
[instr.fx]
body = '''
|kfreq=440, kamp=0.1, kdiv=1|
a0 = vco2:a(kamp, kfreq) / kdiv
outch 1, a0
'''
[[run]]
instr = "fx"
[[port]]
symbol = "freq"
target = "fx.kfreq"
min = 20
max = 20000
default = 440
scale = "log"
[[port]]
symbol = "amp"
target = "fx.kamp"
min = -1
max = 1
default = 0.1
[[port]]
symbol = "div"
target = "fx.kdiv"
min = 1
max = 4
default = 1
scale = "integer"
)");
    const auto spec = parseSessionFile((folder / "ports.toml").string());
    Processor p(spec);
    const double values[] = {std::numeric_limits<double>::quiet_NaN(),
                             std::numeric_limits<double>::infinity(),
                             -std::numeric_limits<double>::infinity(),
                             1e308,
                             -1e308,
                             std::numeric_limits<double>::denorm_min(),
                             0};
    for (double v : values)
        for (std::size_t port = 0; port < p.numPorts(); ++port) {
            p.setPort(port, v);
            const auto out = play(p, 2);
            for (float s : out)
                ASSERT_TRUE(std::isfinite(s)) << "port " << port << " = " << v;
            const auto& ps = spec.ports[port];
            EXPECT_GE(p.port(port), ps.min);
            EXPECT_LE(p.port(port), ps.max);
            if (std::isnan(v)) {
                EXPECT_EQ(p.port(port), ps.def) << "NaN gives the default";
            }
        }
}

// MIDI bytes as a host may send them, status and data alike: nothing crashes, nothing
// sounds non-finite.
TEST_F(TrustTest, MidiWithAnyBytesNeitherCrashesNorMakesNonFiniteSound) {
    writeFile(folder / "synth.toml", R"([session]
name = "S"
uri = "urn:spinout:midi-bytes"
kind = "instrument"
audio_outputs = 1
[instr.v]
body = '''
|kpitch=60, iamp=0.5|
a0 = vco2:a(iamp * 0.2, mtof:k(kpitch)) * linsegr:a(0, 0.01, 1, 0.05, 0)
outch 1, a0
'''
[midi]
instr = "v"
pitch = "kpitch"
velocity = "iamp"
voices = 4
bend_range = 48
)");
    Processor p(parseSessionFile((folder / "synth.toml").string()));
    std::uint32_t seed = 12345;
    const auto next = [&] {
        seed = seed * 1664525u + 1013904223u;
        return static_cast<std::uint8_t>(seed >> 24);
    };
    std::vector<float> output(256);
    float* outs[] = {output.data()};
    for (int block = 0; block < 200; ++block) {
        std::vector<MidiMessage> midi(16);
        for (std::size_t i = 0; i < midi.size(); ++i) {
            midi[i].frame = static_cast<std::uint32_t>(i * 16);
            midi[i].size = static_cast<std::uint8_t>(next() % 4);
            for (auto& b : midi[i].data)
                b = next();
        }
        p.process(nullptr, outs, 256, midi);
        for (float s : output)
            ASSERT_TRUE(std::isfinite(s)) << "block " << block;
    }
}

// The watchdog of the offline tools: a cycle that does not end is reported with the instr
// and line it loops in, and the process ends (a death test: the loop never returns).
TEST_F(TrustTest, TheWatchdogNamesTheInstrOfAnEndlessLoop) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    const auto spec = effect("", "kx = 0\nwhile kx < 1 do\n  kx = kx * 1\nod\noutch 1, a0\n");
    EXPECT_EXIT(
        {
            Watchdog dog(std::chrono::milliseconds(300), [](const std::string& what) {
                std::fprintf(stderr, "HUNG: %s\n", what.c_str());
                std::fflush(stderr);
                std::_Exit(3);
            });
            ProcessorOptions options;
            options.watchdog = &dog;
            dog.busy("loading");
            Processor p(spec, options);
            dog.busy("a cycle");
            play(p, 4);
            std::_Exit(0);
        },
        ::testing::ExitedWithCode(3),
        "HUNG: a cycle did not finish within 0.3 s: .*session.toml:1[2-9]:1: instr 'fx', in a "
        "performance cycle");
}

TEST_F(TrustTest, TheWatchdogNamesTheGlobalCodeThatDoesNotLoad) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    const auto spec = effect("globals = '''\ngi1 = 0\nwhile gi1 < 1 do\n  gi1 = gi1 * 1\nod\n'''");
    EXPECT_EXIT(
        {
            Watchdog dog(std::chrono::milliseconds(300), [](const std::string& what) {
                std::fprintf(stderr, "HUNG: %s\n", what.c_str());
                std::fflush(stderr);
                std::_Exit(3);
            });
            ProcessorOptions options;
            options.watchdog = &dog;
            dog.busy("loading");
            Processor p(spec, options);
            std::_Exit(0);
        },
        ::testing::ExitedWithCode(3),
        "HUNG: loading did not finish within 0.3 s: .*session.toml:1[0-4]:1: the session's "
        "global code.*in an init pass");
}

// Slow work is not a hang: progress (cycles, compiles) keeps the watchdog quiet.
TEST_F(TrustTest, TheWatchdogLetsAWorkingSessionRun) {
    const auto spec = effect("", "outch 1, a0\n");
    bool expired = false;
    {
        Watchdog dog(std::chrono::milliseconds(200), [&](const std::string&) { expired = true; });
        ProcessorOptions options;
        options.watchdog = &dog;
        dog.busy("loading");
        Processor p(spec, options);
        dog.busy("a cycle");
        const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(600);
        while (std::chrono::steady_clock::now() < end)
            play(p, 1);
        dog.idle();
        std::this_thread::sleep_for(std::chrono::milliseconds(400)); // idle: no limit
    }
    EXPECT_FALSE(expired);
}

} // namespace
