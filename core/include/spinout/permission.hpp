// The permissions a session may need beyond making sound: the words of
// [session].permissions, of `--allow` and of the trust file.
#pragma once

#include <array>
#include <optional>
#include <string_view>

namespace spinout {

enum class Permission {
    exec,   // run commands, compile code at run time, end the process
    write,  // write files (inside the session's folder too)
    read,   // read files outside the session's folder, or files the check cannot name
    net,    // OSC, sockets, remote instruments, URLs
    native, // load native code: DSSI/LADSPA plugins, opcode libraries
    memory, // tables and delay lines beyond the memory budget
};

inline constexpr std::array<Permission, 6> kAllPermissions = {
    Permission::exec, Permission::write,  Permission::read,
    Permission::net,  Permission::native, Permission::memory};

constexpr std::string_view permissionName(Permission p) {
    switch (p) {
    case Permission::exec:
        return "exec";
    case Permission::write:
        return "write";
    case Permission::read:
        return "read";
    case Permission::net:
        return "net";
    case Permission::native:
        return "native";
    case Permission::memory:
        return "memory";
    }
    return "?";
}

constexpr std::optional<Permission> parsePermission(std::string_view name) {
    for (auto p : kAllPermissions)
        if (permissionName(p) == name) return p;
    return std::nullopt;
}

} // namespace spinout
