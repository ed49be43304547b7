// The main of every test executable: each process gets a temporary folder of its own.
// ctest runs the tests of one executable as separate processes side by side, and tests
// write files under fs::temp_directory_path() by fixed names; in a shared folder one
// test would read what another is halfway through writing.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <unistd.h>

int main(int argc, char** argv) {
    namespace fs = std::filesystem;
    const fs::path own = fs::temp_directory_path() / ("spinout-test-" + std::to_string(::getpid()));
    fs::create_directories(own);
    ::setenv("TMPDIR", own.c_str(), 1); // read by temp_directory_path() and the commands run
    ::testing::InitGoogleTest(&argc, argv);
    const int failed = RUN_ALL_TESTS();
    std::error_code ignored;
    fs::remove_all(own, ignored);
    return failed;
}
