// Running commands as a user does, for the tests of the spinout command and the bundles.
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

struct Run {
    int status = -1;    // exit status; -1 when killed by a signal
    std::string output; // what it printed (stdout, and stderr with 2>&1)
};
using CommandResult = Run;

// `cmd` through the shell.
inline Run runCommand(const std::string& cmd) {
    Run r;
    FILE* p = popen(cmd.c_str(), "r");
    if (p == nullptr) return r;
    char buf[4096];
    while (std::fgets(buf, sizeof buf, p) != nullptr)
        r.output += buf;
    const int st = pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

#ifdef SPINOUT_BIN
inline const std::filesystem::path kRoot = SPINOUT_SOURCE_DIR;
inline const std::filesystem::path kBin = SPINOUT_BIN;

// `spinout ARGS` in `cwd` (the source folder by default), stdout and stderr together.
inline Run run(const std::string& args, const std::filesystem::path& cwd = kRoot) {
    return runCommand(fmt::format("cd '{}' && '{}' {} 2>&1", cwd.string(), kBin.string(), args));
}
#endif

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
