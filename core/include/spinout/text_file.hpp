// A whole file read as bytes: session files, include files, grants, the plugin's state.
// Not real-time (instantiation, the worker, the commands).
#pragma once

#include <cstddef>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>

namespace spinout {

// More than any session, include or grants file has reason to be.
inline constexpr std::size_t kMaxTextFileBytes = std::size_t{16} << 20;

// The file's bytes, or nothing when it is not a regular file, cannot be opened or read, or
// holds more than `maxBytes`. The paths come from sessions: a FIFO (whose open would wait
// for a writer), a device such as /dev/zero or a huge file must neither hang the reader nor
// exhaust its memory.
std::optional<std::string> readTextFile(const std::filesystem::path& path,
                                        std::size_t maxBytes = kMaxTextFileBytes);

// What the stream holds, read in blocks up to one byte past `maxBytes` (more than
// `maxBytes` bytes back: the stream is too long), for a file that may be a pipe, whose
// size is unknown. Memory grows with what is read, not with the limit.
std::string readUpTo(std::istream& in, std::size_t maxBytes);

} // namespace spinout
