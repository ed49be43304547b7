// A whole file read as bytes: session files, include files, grants, the plugin's state.
// Not real-time (instantiation, the worker, the commands).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace spinout {

// The file's bytes, or nothing when it cannot be opened or read.
std::optional<std::string> readTextFile(const std::filesystem::path& path);

} // namespace spinout
