// Files the tests write and read back, and a folder of its own for each test.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace spinout::test {

inline std::string readFile(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// Creates the folders on the way.
inline void writeFile(const std::filesystem::path& path, const std::string& text) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << text;
}

// A session folder of the test's own, `folder`, inside a scratch `parent` (where files
// "outside" the session's folder go); both are removed after the test.
class FolderTest : public ::testing::Test {
protected:
    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        parent = std::filesystem::temp_directory_path() /
                 fmt::format("spinout_{}_{}_{}", info->test_suite_name(), info->name(), ::getpid());
        std::filesystem::remove_all(parent);
        folder = parent / "session";
        std::filesystem::create_directories(folder);
    }
    void TearDown() override { std::filesystem::remove_all(parent); }

    std::filesystem::path parent;
    std::filesystem::path folder;
};

} // namespace spinout::test
