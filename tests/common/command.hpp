// Running the built `spinout` command as a user does, for the command's tests.
#pragma once

#include "spinout/sound_file.hpp"

#include <fmt/format.h>

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace spinout::test {

inline const std::filesystem::path kRoot = SPINOUT_SOURCE_DIR;
inline const std::filesystem::path kBin = SPINOUT_BIN;

struct Run {
    int status = -1;    // exit status; -1 when killed by a signal
    std::string output; // stdout and stderr
};

// `spinout ARGS` in `cwd` (the source folder by default).
inline Run run(const std::string& args, const std::filesystem::path& cwd = kRoot) {
    const auto cmd = fmt::format("cd '{}' && '{}' {} 2>&1", cwd.string(), kBin.string(), args);
    Run r;
    FILE* p = popen(cmd.c_str(), "r");
    char buf[4096];
    while (std::fgets(buf, sizeof buf, p) != nullptr)
        r.output += buf;
    const int st = pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

// A file in the tests' scratch folder.
inline std::filesystem::path tmp(const std::string& name) {
    const auto dir = std::filesystem::temp_directory_path() / "spinout_cli_test";
    std::filesystem::create_directories(dir);
    return dir / name;
}

inline std::vector<double> mono(const Audio& a) {
    std::vector<double> m(static_cast<std::size_t>(a.frames()));
    for (std::size_t i = 0; i < m.size(); ++i)
        for (int c = 0; c < a.nchnls; ++c)
            m[i] +=
                a.samples[i * static_cast<std::size_t>(a.nchnls) + static_cast<std::size_t>(c)] /
                a.nchnls;
    return m;
}

inline double db(double x) {
    return 20 * std::log10(std::max(x, 1e-12));
}

} // namespace spinout::test
