// The trust model inside a host, through lilv: a bundle or a loader state whose session
// needs a permission nobody granted stays silent, runs nothing and logs why; a bundle made
// with --allow, or a session in the user's trust file, plays until its text changes by a
// byte. Loading never blocks run(); values a host sends never crash it; and once a host
// unloads the plugin, no Csound callback of the process points into it.
#include "../common/files.hpp"
#include "lilv_host.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <lv2/atom/forge.h>
#include <lv2/patch/patch.h>

#include <csound/csound.h>

#include <link.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <thread>

namespace fs = std::filesystem;
using spinout::test::PluginInstance;
using spinout::test::readFile;
using spinout::test::World;
using spinout::test::writeFile;

namespace {

const fs::path kBuild = SPINOUT_BUILD_DIR;
const fs::path kBin = SPINOUT_BIN;

// A synth whose global code runs `globals` (a system_i that leaves a marker, say).
std::string synth(const std::string& globals, const std::string& uri = "urn:spinout:test-trust") {
    return fmt::format(R"([session]
name = "Trust test"
uri = "{}"
kind = "instrument"

[engine]
ksmps = 64
globals = '''
gi1 = 1
{}'''

[instr.voice]
body = '''
|kpitch=60, iamp=0.5, kgain=1|
a0 = vco2:a(iamp * 0.3 * kgain, mtof:k(kpitch)) * linsegr:a(0, 0.005, 1, 0.05, 0)
outch 1, a0, 2, a0
'''

[midi]
instr = "voice"
pitch = "kpitch"
velocity = "iamp"
voices = 4

[[port]]
symbol = "gain"
target = "voice.kgain"
min = 0
max = 1
default = 1
)",
                       uri, globals);
}

// A folder per test, the user's configuration inside it, and `spinout` run with it.
class TrustLv2 : public ::testing::Test {
protected:
    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        root = fs::temp_directory_path() / fmt::format("spinout_trust_lv2_{}", info->name());
        fs::remove_all(root);
        fs::create_directories(root / "lv2");
        marker = root / "ran";
        // the plugin reads the trust file of this process's configuration
        setenv("XDG_CONFIG_HOME", (root / "config").c_str(), 1);
    }
    void TearDown() override {
        if (!HasFailure()) fs::remove_all(root);
    }
    int spinout(const std::string& args) const {
        return std::system(
            fmt::format("'{}' {} > '{}' 2>&1", kBin.string(), args, (root / "spinout.log").string())
                .c_str());
    }
    std::string evil() const {
        return synth(fmt::format("ires system_i 1, \"touch {}\"\n", marker.string()));
    }

    fs::path root, marker;
};

std::string joined(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines)
        out += l;
    return out;
}

// Plays a note for `blocks` blocks of 512; the peak of the first output.
float playNote(PluginInstance& inst, int blocks = 20) {
    const uint8_t on[3] = {0x90, 60, 100};
    inst.midi().add(0, on, 3);
    float peak = 0;
    for (int b = 0; b < blocks; ++b) {
        inst.run(512);
        inst.host().runWorker();
        for (uint32_t i = 0; i < 512; ++i)
            peak = std::max(peak, std::fabs(inst.output(0)[i]));
    }
    return peak;
}

// A Turtle long string.
std::string turtleString(const std::string& s) {
    std::string out = "\"\"\"";
    for (char c : s) {
        if (c == '\\' || c == '"') out += '\\';
        out += c;
    }
    return out + "\"\"\"";
}

// A loader state as a host saves it in a project: the session's text and its file.
LilvState* loaderState(LilvWorld* world, LV2_URID_Map* map, const std::string& text,
                       const fs::path& file) {
    const auto ttl = fmt::format(R"(@prefix lv2: <http://lv2plug.in/ns/lv2core#> .
@prefix pset: <http://lv2plug.in/ns/ext/presets#> .
@prefix state: <http://lv2plug.in/ns/ext/state#> .

<urn:spinout:test-state> a pset:Preset ;
    lv2:appliesTo <urn:spinout:loader> ;
    state:state [
        <urn:spinout:state#sessionText> {} ;
        <urn:spinout:loader#session> <file://{}>
    ] .
)",
                                 turtleString(text), file.string());
    return lilv_state_new_from_string(world, map, ttl.c_str());
}

// A patch:Set of the loader's session file, in the next block's events.
void setSessionPath(PluginInstance& inst, const fs::path& path) {
    auto& host = inst.host();
    LV2_Atom_Forge forge;
    lv2_atom_forge_init(&forge, &host.mapF);
    alignas(8) uint8_t buf[8192];
    lv2_atom_forge_set_buffer(&forge, buf, sizeof buf);
    LV2_Atom_Forge_Frame frame;
    lv2_atom_forge_object(&forge, &frame, 0, host.map(LV2_PATCH__Set));
    lv2_atom_forge_key(&forge, host.map(LV2_PATCH__property));
    lv2_atom_forge_urid(&forge, host.map("urn:spinout:loader#session"));
    lv2_atom_forge_key(&forge, host.map(LV2_PATCH__value));
    const auto p = path.string();
    lv2_atom_forge_path(&forge, p.c_str(), static_cast<uint32_t>(p.size() + 1));
    lv2_atom_forge_pop(&forge, &frame);
    const auto* atom = reinterpret_cast<const LV2_Atom*>(buf);
    inst.midi().add(0, atom);
}

TEST_F(TrustLv2, AnEditedBundleWhoseSessionNeedsAPermissionStaysSilentAndRunsNothing) {
    // a harmless session made into a bundle, then its session.toml replaced
    writeFile(root / "src" / "s.toml", synth(""));
    ASSERT_EQ(spinout(fmt::format("bundle '{}' -o '{}'", (root / "src" / "s.toml").string(),
                                  (root / "lv2").string())),
              0)
        << readFile(root / "spinout.log");
    writeFile(root / "lv2" / "spinout-s.lv2" / "session.toml", evil());
    const World lv2((root / "lv2").string());
    PluginInstance inst(lv2.world, lv2.plugin("urn:spinout:test-trust"), 48000);
    const auto log = joined(inst.host().errors);
    EXPECT_NE(log.find("'system_i' needs the 'exec' permission"), std::string::npos) << log;
    EXPECT_NE(log.find("session.toml:10:1:"), std::string::npos) << log;
    EXPECT_NE(log.find("spinout trust --allow exec"), std::string::npos) << log;
    EXPECT_EQ(playNote(inst), 0.0f) << "silent";
    EXPECT_FALSE(fs::exists(marker)) << "nothing ran";
}

TEST_F(TrustLv2, ABundleMadeWithAllowPlaysUntilItsSessionIsEdited) {
    writeFile(root / "src" / "s.toml", evil());
    ASSERT_EQ(spinout(fmt::format("bundle '{}' --allow exec -o '{}'",
                                  (root / "src" / "s.toml").string(), (root / "lv2").string())),
              0)
        << readFile(root / "spinout.log");
    {
        const World lv2((root / "lv2").string());
        PluginInstance inst(lv2.world, lv2.plugin("urn:spinout:test-trust"), 48000);
        EXPECT_EQ(joined(inst.host().errors), "");
        EXPECT_GT(playNote(inst), 0.01f);
        EXPECT_TRUE(fs::exists(marker)) << "granted, it ran";
    }
    fs::remove(marker);
    // one byte more in session.toml: the bundle's grant is void
    const auto session = root / "lv2" / "spinout-s.lv2" / "session.toml";
    writeFile(session, readFile(session) + " ");
    const World lv2((root / "lv2").string());
    PluginInstance inst(lv2.world, lv2.plugin("urn:spinout:test-trust"), 48000);
    EXPECT_NE(inst.host().stderrLog.find("grants.toml is void"), std::string::npos)
        << inst.host().stderrLog;
    EXPECT_NE(joined(inst.host().errors).find("'system_i' needs the 'exec' permission"),
              std::string::npos);
    EXPECT_EQ(playNote(inst), 0.0f);
    EXPECT_FALSE(fs::exists(marker));
}

// A project's loader state carries its session's text: untrusted, it stays silent and says
// why; in the trust file, it plays; changed by one byte, it is untrusted again.
TEST_F(TrustLv2, TheLoaderRestoresATrustedSessionOnlyAndLogsWhyNot) {
    const auto file = root / "sessions" / "s.toml";
    const auto text = evil();
    writeFile(file, text);
    const World lv2((kBuild / "lv2").string());
    const LilvPlugin* loader = lv2.plugin("urn:spinout:loader");
    ASSERT_NE(loader, nullptr);
    LilvState* saved = nullptr;
    const auto restore = [&](PluginInstance& inst, const std::string& t) {
        LilvState* state = loaderState(lv2.world, &inst.host().mapF, t, file);
        EXPECT_NE(state, nullptr);
        if (state == nullptr) return;
        lilv_state_restore(state, inst.instance(), nullptr, nullptr, 0, nullptr);
        lilv_state_free(state);
    };
    {
        PluginInstance inst(lv2.world, loader, 48000);
        restore(inst, text);
        const auto log = joined(inst.host().errors);
        EXPECT_NE(log.find("s.toml:10:1: 'system_i' needs the 'exec' permission"),
                  std::string::npos)
            << log;
        EXPECT_NE(log.find(fmt::format("spinout trust --allow exec {}", file.string())),
                  std::string::npos)
            << log;
        EXPECT_EQ(playNote(inst), 0.0f);
        EXPECT_FALSE(fs::exists(marker));
        // the project saved now keeps the session it could not play, to play once granted
        saved = lilv_state_new_from_instance(
            loader, inst.instance(), &inst.host().mapF, nullptr, nullptr, nullptr, nullptr,
            [](const char*, void*, uint32_t*, uint32_t*) -> const void* { return nullptr; },
            nullptr, 0, nullptr);
        ASSERT_NE(saved, nullptr);
    }
    ASSERT_EQ(spinout(fmt::format("trust --allow exec '{}'", file.string())), 0)
        << readFile(root / "spinout.log");
    {
        PluginInstance inst(lv2.world, loader, 48000);
        lilv_state_restore(saved, inst.instance(), nullptr, nullptr, 0, nullptr);
        lilv_state_free(saved);
        EXPECT_EQ(joined(inst.host().errors), "");
        EXPECT_GT(playNote(inst), 0.01f) << "trusted, it plays";
        EXPECT_TRUE(fs::exists(marker));
    }
    fs::remove(marker);
    {
        PluginInstance inst(lv2.world, loader, 48000);
        restore(inst, text + "\n");
        EXPECT_NE(joined(inst.host().errors).find("'system_i' needs the 'exec' permission"),
                  std::string::npos);
        EXPECT_EQ(playNote(inst), 0.0f);
        EXPECT_FALSE(fs::exists(marker));
    }
}

// patch:Set of an untrusted session: the last good session keeps playing.
TEST_F(TrustLv2, TheLoaderKeepsTheLastGoodSessionWhenANewOneIsRefused) {
    writeFile(root / "good.toml", synth(""));
    writeFile(root / "evil.toml", evil());
    const World lv2((kBuild / "lv2").string());
    PluginInstance inst(lv2.world, lv2.plugin("urn:spinout:loader"), 48000);
    setSessionPath(inst, root / "good.toml");
    inst.run(512);
    inst.host().runWorker();
    EXPECT_GT(playNote(inst), 0.01f);
    setSessionPath(inst, root / "evil.toml");
    inst.run(512);
    inst.host().runWorker();
    EXPECT_NE(joined(inst.host().errors).find("'system_i' needs the 'exec' permission"),
              std::string::npos);
    EXPECT_GT(playNote(inst), 0.01f) << "the last good session plays on";
    EXPECT_FALSE(fs::exists(marker));
}

// The child of AGlobalLoopInALoadedSessionNeverBlocksRun: exits 0 when run() kept
// returning at once while the worker was stuck in the load.
[[noreturn]] void runWhileTheWorkerHangs(const fs::path& root) {
    const World lv2((kBuild / "lv2").string());
    PluginInstance inst(lv2.world, lv2.plugin("urn:spinout:loader"), 48000);
    setSessionPath(inst, root / "good.toml");
    inst.run(512);
    inst.host().runWorker();
    setSessionPath(inst, root / "loop.toml");
    inst.run(512);
    // the host's worker thread takes the load job
    std::vector<std::vector<char>> jobs;
    inst.host().jobs.drain([&](uint32_t size, const void* data) {
        jobs.emplace_back(static_cast<const char*>(data), static_cast<const char*>(data) + size);
    });
    std::atomic<bool> working{false};
    std::thread worker([&] {
        working = true;
        for (auto& j : jobs)
            inst.host().worker->work(
                lilv_instance_get_handle(inst.instance()),
                [](LV2_Worker_Respond_Handle, uint32_t, const void*) { return LV2_WORKER_SUCCESS; },
                nullptr, static_cast<uint32_t>(j.size()), j.data());
        std::_Exit(2); // the load returned: it was meant to hang
    });
    worker.detach();
    while (!working)
        std::this_thread::yield();
    // two seconds of audio while the worker is stuck: every block returns at once
    const uint8_t on[3] = {0x90, 64, 100};
    inst.midi().add(0, on, 3);
    double longest = 0;
    float peak = 0;
    for (int b = 0; b < 190; ++b) {
        const auto start = std::chrono::steady_clock::now();
        inst.run(512);
        longest = std::max(
            longest,
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        for (uint32_t i = 0; i < 512; ++i)
            peak = std::max(peak, std::fabs(inst.output(0)[i]));
    }
    std::fprintf(stderr, "longest block %.4f s, peak %.3f\n", longest, peak);
    std::_Exit(longest < 0.05 && peak > 0.01 ? 0 : 1);
}

// Loading runs in the worker: a session whose global code never ends blocks the worker,
// never run(). (In a child process: the worker's thread stays stuck in Csound.)
TEST_F(TrustLv2, AGlobalLoopInALoadedSessionNeverBlocksRun) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    writeFile(root / "good.toml", synth(""));
    writeFile(root / "loop.toml", synth("gix = 0\nwhile gix < 1 do\n  gix = gix * 1\nod\n"));
    EXPECT_EXIT(runWhileTheWorkerHangs(root), ::testing::ExitedWithCode(0), "longest block");
}

// Whatever a host writes to the ports and the MIDI input: the output stays finite.
TEST_F(TrustLv2, AnyPortValueAndAnyMidiBytesKeepTheOutputFinite) {
    const World lv2((kBuild / "lv2").string());
    for (const char* uri : {"urn:spinout:polysynth", "urn:spinout:fmbells", "urn:spinout:loader"}) {
        PluginInstance inst(lv2.world, lv2.plugin(uri), 48000);
        if (std::string(uri) == "urn:spinout:loader") {
            setSessionPath(inst, fs::path(SPINOUT_SOURCE_DIR) / "presets" / "polysynth.toml");
            inst.run(64);
            inst.host().runWorker();
        }
        std::mt19937 random(7);
        const float values[] = {std::numeric_limits<float>::quiet_NaN(),
                                std::numeric_limits<float>::infinity(),
                                -std::numeric_limits<float>::infinity(),
                                1e30f,
                                -1e30f,
                                std::numeric_limits<float>::denorm_min()};
        for (int b = 0; b < 120; ++b) {
            for (const auto& c : inst.controls())
                inst.set(c, values[(b + c.index) % std::size(values)]);
            // notes, bends, CCs and bytes of every kind, 0 to 8 of them
            for (int e = 0; e < 8; ++e) {
                uint8_t bytes[8];
                for (auto& x : bytes)
                    x = static_cast<uint8_t>(random());
                if (e < 3) bytes[0] = static_cast<uint8_t>(0x80 + 0x10 * (random() % 7));
                inst.midi().add(e * 60, bytes, static_cast<uint32_t>(random() % 9));
            }
            inst.run(512);
            inst.host().runWorker();
            for (std::size_t ch = 0; ch < inst.numOutputs(); ++ch)
                for (uint32_t i = 0; i < 512; ++i)
                    ASSERT_TRUE(std::isfinite(inst.output(ch)[i])) << uri << " block " << b;
        }
    }
}

// A host that uses Csound itself, in a process that loaded and unloaded spinout's plugin:
// no callback of Csound's may point into the library that is gone.
TEST(TrustLv2Unload, CsoundStillWorksInTheProcessAfterThePluginIsUnloaded) {
    {
        const World lv2((kBuild / "lv2").string());
        PluginInstance inst(lv2.world, lv2.plugin("urn:spinout:stereodelay"), 48000);
        inst.run(512);
    }
    std::pair<const char*, bool> probe{"spinout.so", false};
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* data) {
            auto* p = static_cast<std::pair<const char*, bool>*>(data);
            if (info->dlpi_name != nullptr && std::strstr(info->dlpi_name, p->first) != nullptr)
                p->second = true;
            return 0;
        },
        &probe);
    ASSERT_FALSE(probe.second) << "spinout.so is still loaded: the test would prove nothing";
    // A Csound instance of the host's: what it prints goes through the process-wide default
    // (Csound's own), never into the unloaded plugin.
    CSOUND* cs = csoundCreate(nullptr);
    ASSERT_NE(cs, nullptr);
    csoundSetOption(cs, "-n");
    csoundSetOption(cs, "-d");
    EXPECT_EQ(csoundCompileOrc(cs, "instr 1\nprints \"hello\\n\"\nendin\n"), 0);
    csoundDestroy(cs);
    SUCCEED();
}

} // namespace

// A project's loader state pairs a session's text with a path, and the session may read
// the folder its file is in. Found by attack: a state naming a file that does not hold
// its text (or no file) chose that folder, and the code read a file there. Now such a
// session has no folder: it reads its folder as before when its file holds its text, and
// nothing otherwise.
TEST_F(TrustLv2, ARestoredSessionReadsItsFolderOnlyWhenItsFileHoldsItsText) {
    const auto dir = root / "elsewhere";
    writeFile(dir / "secret.txt", "4242\n");
    const auto file = dir / "s.toml";
    const auto text =
        synth("giT ftgen 0, 0, 0, -23, \"secret.txt\"\ngi1 = tab_i(0, giT) / 10000\n");
    const World lv2((kBuild / "lv2").string());
    const LilvPlugin* loader = lv2.plugin("urn:spinout:loader");
    ASSERT_NE(loader, nullptr);
    const auto restored = [&](const std::string& onDisk) {
        writeFile(file, onDisk);
        PluginInstance inst(lv2.world, loader, 48000);
        LilvState* state = loaderState(lv2.world, &inst.host().mapF, text, file);
        EXPECT_NE(state, nullptr);
        if (state != nullptr) {
            lilv_state_restore(state, inst.instance(), nullptr, nullptr, 0, nullptr);
            lilv_state_free(state);
        }
        return std::pair{playNote(inst), joined(inst.host().errors)};
    };
    const auto [own, ownLog] = restored(text);
    EXPECT_EQ(ownLog, "");
    EXPECT_GT(own, 0.01f);
    // the same text, its file changed: Csound finds no secret.txt to read
    const auto [other, otherLog] = restored(synth(""));
    EXPECT_NE(otherLog.find("error opening ASCII file"), std::string::npos) << otherLog;
}
