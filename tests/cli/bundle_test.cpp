// `spinout bundle` with hostile and careless sessions: the Turtle it writes is data,
// it reads only inside the session's folder, writes only inside the new bundle,
// leaves nothing half-made, and refuses a URI that a host would find twice.
#include "../common/command.hpp"
#include "../common/files.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using spinout::test::readFile;
using spinout::test::writeFile;

namespace {

const fs::path kRoot = SPINOUT_SOURCE_DIR;
const fs::path kBin = SPINOUT_BIN;
const fs::path kPlugin = SPINOUT_PLUGIN;

// `spinout bundle ARGS`, with LV2_PATH set to `lv2Path` (hosts' bundles for the
// duplicate check; an empty folder unless a test says otherwise).
spinout::test::CommandResult bundle(const std::string& args, const fs::path& lv2Path,
                                    const fs::path& binary = kPlugin) {
    return spinout::test::runCommand(fmt::format("LV2_PATH='{}' '{}' bundle --binary '{}' {} 2>&1",
                                                 lv2Path.string(), kBin.string(), binary.string(),
                                                 args));
}

// A fresh folder per test: a session folder, an output folder, an empty LV2 path.
struct Dirs {
    fs::path root, session, out, lv2;
    explicit Dirs(const std::string& name)
        : root(fs::temp_directory_path() / ("spinout_bundle_test_" + name)),
          session(root / "project" / "session"), out(root / "out"), lv2(root / "lv2") {
        fs::remove_all(root);
        fs::create_directories(session);
        fs::create_directories(lv2);
    }
};

// A plain effect; `session` goes into [session], `engine` into [engine].
std::string effect(const std::string& session, const std::string& engine = "") {
    return fmt::format(R"([session]
name = "Test Effect"
kind = "effect"
{}

[engine]
ksmps = 64
{}

[instr.pass]
body = '''
a1, a2 ins
outs a1, a2
'''

[[run]]
instr = "pass"
)",
                       session, engine);
}

// Everything below `dir`, as relative paths (to see that nothing else was written).
std::vector<std::string> listing(const fs::path& dir) {
    std::vector<std::string> out;
    if (!fs::exists(dir)) return out;
    for (const auto& e : fs::recursive_directory_iterator(dir))
        out.push_back(fs::relative(e.path(), dir).string());
    std::sort(out.begin(), out.end());
    return out;
}

} // namespace

TEST(Bundle, AUriThatWouldInjectTurtleIsRefusedWithItsLine) {
    Dirs d("inject");
    // the attack: a URI that closes the IRI and declares the session's own file as the binary
    writeFile(d.session / "evil.so", "not a plugin");
    writeFile(d.session / "s.toml", effect("uri = \"urn:x> lv2:binary <evil.so> . <urn:y\""));
    const auto r =
        bundle(fmt::format("'{}' -o '{}'", (d.session / "s.toml").string(), d.out.string()), d.lv2);
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find("s.toml:4:7: uri"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("which an IRI cannot"), std::string::npos) << r.output;
    EXPECT_TRUE(listing(d.out).empty());
    for (const auto* uri : {"nocolon", "urn:a b", "urn:a\"b", "urn:a{b}", "urn:a|b", "urn:a\\b",
                            "urn:a^b", "urn:a`b", "urn:a%zz", "1urn:x", "urn:x#frag", "urn:a\tb"}) {
        writeFile(d.session / "s.toml", effect(fmt::format("uri = '{}'", uri)));
        const auto bad = bundle(
            fmt::format("'{}' -o '{}'", (d.session / "s.toml").string(), d.out.string()), d.lv2);
        EXPECT_EQ(bad.status, 1) << uri << ": " << bad.output;
        EXPECT_NE(bad.output.find("is not a plugin URI"), std::string::npos) << bad.output;
    }
    EXPECT_TRUE(listing(d.out).empty());
}

TEST(Bundle, StringsAreEscapedAsTurtleNotCsound) {
    Dirs d("escape");
    writeFile(d.session / "s.toml", effect(R"(uri = "urn:spinout:test-escape"
doc = "a \"quoted\" word, a back\\slash, a\nnew line and > < { }")"));
    const auto r =
        bundle(fmt::format("'{}' -o '{}'", (d.session / "s.toml").string(), d.out.string()), d.lv2);
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("warning: " + (d.session / "s.toml").string() +
                            ": an effect without [session] category"),
              std::string::npos)
        << r.output;
    const auto ttl = readFile(d.out / "spinout-s.lv2" / "plugin.ttl");
    EXPECT_NE(
        ttl.find(R"(rdfs:comment "a \"quoted\" word, a back\\slash, a\nnew line and > < { }")"),
        std::string::npos)
        << ttl;
    const auto cmd =
        fmt::format("lv2_validate '{}'/*.ttl > /dev/null 2>&1", (d.out / "spinout-s.lv2").string());
    EXPECT_EQ(std::system(cmd.c_str()), 0);
}

TEST(Bundle, IncludesMustStayInsideTheSessionsFolder) {
    Dirs d("includes");
    const auto outside = d.root / "project" / "secret.inc";
    writeFile(outside, "; not the session's\n");
    writeFile(d.session / "lib" / "ok.inc", "; fine\n");
    fs::create_symlink(outside, d.session / "link.inc");
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"../secret.inc", "goes up with '..'"},
        {outside.string(), "is an absolute path"},
        {"link.inc", "leads out of the session's folder"},
        {"lib/../../secret.inc", "goes up with '..'"},
    };
    for (const auto& [include, message] : cases) {
        writeFile(d.session / "s.toml",
                  effect("uri = \"urn:spinout:test-includes\"",
                         fmt::format("includes = [\"lib/ok.inc\", \"{}\"]", include)));
        const auto r = bundle(
            fmt::format("'{}' -o '{}'", (d.session / "s.toml").string(), d.out.string()), d.lv2);
        EXPECT_EQ(r.status, 1) << include << ": " << r.output;
        EXPECT_NE(r.output.find(message), std::string::npos) << include << ": " << r.output;
        EXPECT_NE(r.output.find("s.toml:8:"), std::string::npos) << r.output; // the includes line
        EXPECT_TRUE(listing(d.out).empty()) << include;
    }
    EXPECT_EQ(readFile(outside), "; not the session's\n");
    // an include named like a file of the bundle would replace its Turtle
    writeFile(d.session / "manifest.ttl", "<urn:x> <urn:y> <urn:z> .\n");
    writeFile(d.session / "s.toml",
              effect("uri = \"urn:spinout:test-includes\"", "includes = [\"manifest.ttl\"]"));
    auto r =
        bundle(fmt::format("'{}' -o '{}'", (d.session / "s.toml").string(), d.out.string()), d.lv2);
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find("has the name of a file the bundle is made of"), std::string::npos);
    // a link that stays inside is followed, and the file lands under its own name
    fs::create_symlink("lib/ok.inc", d.session / "inside.inc");
    writeFile(d.session / "s.toml", effect("uri = \"urn:spinout:test-includes\"",
                                           "includes = [\"lib/ok.inc\", \"inside.inc\"]"));
    r = bundle(fmt::format("'{}' -o '{}'", (d.session / "s.toml").string(), d.out.string()), d.lv2);
    ASSERT_EQ(r.status, 0) << r.output;
    const auto b = d.out / "spinout-s.lv2";
    EXPECT_EQ(readFile(b / "lib" / "ok.inc"), "; fine\n");
    EXPECT_EQ(readFile(b / "inside.inc"), "; fine\n");
    EXPECT_FALSE(fs::is_symlink(b / "inside.inc"));
    EXPECT_EQ(listing(d.out), (std::vector<std::string>{
                                  "spinout-s.lv2", "spinout-s.lv2/inside.inc", "spinout-s.lv2/lib",
                                  "spinout-s.lv2/lib/ok.inc", "spinout-s.lv2/manifest.ttl",
                                  "spinout-s.lv2/plugin.ttl", "spinout-s.lv2/presets.ttl",
                                  "spinout-s.lv2/session.toml", "spinout-s.lv2/spinout.so"}));
}

TEST(Bundle, AFailedBundleLeavesNothingAndKeepsTheOldOne) {
    Dirs d("atomic");
    writeFile(d.session / "s.toml",
              effect("uri = \"urn:spinout:test-atomic\"\nversion = \"1.2.3\""));
    ASSERT_EQ(
        bundle(fmt::format("'{}' -o '{}'", (d.session / "s.toml").string(), d.out.string()), d.lv2)
            .status,
        0);
    const auto before = listing(d.out);
    const auto manifest = readFile(d.out / "spinout-s.lv2" / "manifest.ttl");
    EXPECT_NE(manifest.find("lv2:minorVersion 2"), std::string::npos) << manifest;
    // the plugin binary cannot be read: nothing changes, no temporary folder stays
    writeFile(d.session / "s.toml",
              effect("uri = \"urn:spinout:test-atomic\"\nversion = \"1.2.4\""));
    auto r = bundle(fmt::format("'{}' -o '{}'", (d.session / "s.toml").string(), d.out.string()),
                    d.lv2, d.root / "missing.so");
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_EQ(listing(d.out), before);
    EXPECT_EQ(readFile(d.out / "spinout-s.lv2" / "manifest.ttl"), manifest);
    // a good session and a bad one in one command: neither is written
    writeFile(d.session / "bad.toml", "[session]\nname = \"Bad\"\n");
    r = bundle(fmt::format("'{}' '{}' -o '{}'", (d.session / "s.toml").string(),
                           (d.session / "bad.toml").string(), d.out.string()),
               d.lv2);
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find("bad.toml"), std::string::npos) << r.output;
    EXPECT_EQ(listing(d.out), before);
    EXPECT_EQ(readFile(d.out / "spinout-s.lv2" / "manifest.ttl"), manifest);
    // an output folder that is a file: the error names it, nothing is written
    writeFile(d.root / "file", "x");
    r = bundle(
        fmt::format("'{}' -o '{}'", (d.session / "s.toml").string(), (d.root / "file").string()),
        d.lv2);
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_EQ(readFile(d.root / "file"), "x");
    // a good run replaces the old bundle as a whole
    r = bundle(fmt::format("'{}' -o '{}'", (d.session / "s.toml").string(), d.out.string()), d.lv2);
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(listing(d.out), before);
    EXPECT_NE(readFile(d.out / "spinout-s.lv2" / "manifest.ttl").find("lv2:microVersion 4"),
              std::string::npos);
}

TEST(Bundle, AUriAlreadyOnTheLv2PathWithOtherContentIsRefused) {
    Dirs d("duplicate");
    // the shipped synth, installed on the LV2 path
    ASSERT_EQ(bundle(fmt::format("'{}' -o '{}'", (kRoot / "presets/polysynth.toml").string(),
                                 d.lv2.string()),
                     d.lv2)
                  .status,
              0);
    // an edited copy that keeps its URI, bundled elsewhere
    auto text = readFile(kRoot / "presets/polysynth.toml");
    text.replace(text.find("default = 0.3"), 13, "default = 0.5");
    writeFile(d.session / "mysynth.toml", text);
    const auto args =
        fmt::format("'{}' -o '{}'", (d.session / "mysynth.toml").string(), d.out.string());
    auto r = bundle(args, d.lv2);
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find("urn:spinout:polysynth is already in"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("spinout-polysynth.lv2"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("--force"), std::string::npos) << r.output;
    EXPECT_TRUE(listing(d.out).empty());
    // the same in the output folder under another bundle name
    r = bundle(fmt::format("'{}' -o '{}'", (d.session / "mysynth.toml").string(), d.lv2.string()),
               d.root / "empty");
    EXPECT_EQ(r.status, 1) << r.output;
    // --force makes it anyway
    r = bundle(args + " --force", d.lv2);
    EXPECT_EQ(r.status, 0) << r.output;
    // the same content is no conflict (the session text, includes and Turtle are equal)
    r = bundle(fmt::format("'{}' -o '{}'", (kRoot / "presets/polysynth.toml").string(),
                           (d.root / "again").string()),
               d.lv2);
    EXPECT_EQ(r.status, 0) << r.output;
    // replacing its own bundle is no conflict either
    r = bundle(fmt::format("'{}' -o '{}'", (d.session / "mysynth.toml").string(), d.out.string()),
               d.root / "empty");
    EXPECT_EQ(r.status, 0) << r.output;
    // nor two sessions with one URI in one command
    r = bundle(fmt::format("'{}' '{}' -o '{}'", (kRoot / "presets/polysynth.toml").string(),
                           (d.session / "mysynth.toml").string(), (d.root / "two").string()),
               d.root / "empty");
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find("declare the same uri urn:spinout:polysynth"), std::string::npos)
        << r.output;
}

TEST(Bundle, ALinkWhereTheBundleGoesIsReplacedNotFollowed) {
    Dirs d("link");
    const auto victim = d.root / "victim";
    writeFile(victim / "manifest.ttl", "precious\n");
    fs::create_directories(d.out);
    fs::create_directory_symlink(victim, d.out / "spinout-s.lv2");
    writeFile(d.session / "s.toml", effect("uri = \"urn:spinout:test-link\""));
    const auto r =
        bundle(fmt::format("'{}' -o '{}'", (d.session / "s.toml").string(), d.out.string()), d.lv2);
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_FALSE(fs::is_symlink(d.out / "spinout-s.lv2"));
    EXPECT_TRUE(fs::exists(d.out / "spinout-s.lv2" / "plugin.ttl"));
    EXPECT_EQ(listing(victim), std::vector<std::string>{"manifest.ttl"});
    EXPECT_EQ(readFile(victim / "manifest.ttl"), "precious\n");
}
