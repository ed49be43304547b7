// Runs a command line as a user would, for the tests of the spinout command.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace spinout::test {

struct CommandResult {
    int status = -1; // exit status; -1 when killed by a signal
    std::string output;
};

// `cmd` through the shell; its output as the command prints it (add 2>&1 for stderr).
inline CommandResult runCommand(const std::string& cmd) {
    CommandResult r;
    FILE* p = popen(cmd.c_str(), "r");
    if (p == nullptr) return r;
    char buf[4096];
    while (std::fgets(buf, sizeof buf, p) != nullptr)
        r.output += buf;
    const int st = pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

} // namespace spinout::test
