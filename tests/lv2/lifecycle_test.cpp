// A host that opens and closes many projects: plugin instances created and freed
// through lilv, one after the other, in one process that does not itself link Csound
// (so that nothing but the plugin keeps Csound's libraries loaded).
#include "lilv_host.hpp"

#include <gtest/gtest.h>

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using spinout::test::PluginInstance;

namespace {

const fs::path kBuild = SPINOUT_BUILD_DIR;

// Everything written to the process's stderr (by Csound or a library) while alive.
class StderrCapture {
public:
    StderrCapture() : path_(fs::temp_directory_path() / "spinout_lifecycle_stderr.txt") {
        std::fflush(stderr);
        saved_ = dup(STDERR_FILENO);
        std::FILE* f = std::fopen(path_.c_str(), "w");
        dup2(fileno(f), STDERR_FILENO);
        std::fclose(f);
    }
    ~StderrCapture() { restore(); }
    std::string restore() {
        if (saved_ >= 0) {
            std::fflush(stderr);
            dup2(saved_, STDERR_FILENO);
            close(saved_);
            saved_ = -1;
        }
        std::ifstream in(path_);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }

private:
    fs::path path_;
    int saved_ = -1;
};

TEST(Lifecycle, AThousandInstancesOneAfterTheOtherLeakNoThreadKey) {
    const spinout::test::World lv2((kBuild / "lv2").string());
    LilvWorld* world = lv2.world;
    // an effect most of the time (the cheapest to instantiate), the synth last
    const LilvPlugin* effect = lv2.plugin("urn:spinout:stereodelay");
    const LilvPlugin* synth = lv2.plugin("urn:spinout:polysynth");
    ASSERT_NE(effect, nullptr);
    ASSERT_NE(synth, nullptr);

    constexpr int kCycles = 1000;
    StderrCapture capture;
    float peak = 0;
    std::string errors;
    for (int i = 0; i < kCycles; ++i) {
        PluginInstance inst(world, i < kCycles - 1 ? effect : synth, 48000);
        if (!inst.host().errors.empty()) errors += inst.host().errors.front();
        if (i < kCycles - 1) {
            inst.run(64);
            continue;
        }
        // the last one still plays
        const uint8_t on[3] = {0x90, 60, 110};
        inst.midi().add(0, on, 3);
        for (int b = 0; b < 40; ++b) {
            inst.run(512);
            for (uint32_t f = 0; f < 512; ++f)
                peak = std::max(peak, std::fabs(inst.output(0)[f]));
        }
    }
    const auto log = capture.restore();
    EXPECT_EQ(log.find("pthread_key_create"), std::string::npos) << log.substr(0, 2000);
    EXPECT_EQ(errors, "");
    EXPECT_GT(peak, 0.01) << "instance " << kCycles << " plays";
    // and the process has keys left
    pthread_key_t key;
    ASSERT_EQ(pthread_key_create(&key, nullptr), 0);
    pthread_key_delete(key);
}

} // namespace
