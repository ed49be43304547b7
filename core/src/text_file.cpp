// readTextFile: see text_file.hpp.
#include "spinout/text_file.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <istream>
#include <sys/stat.h>
#include <unistd.h>

namespace spinout {

std::optional<std::string> readTextFile(const std::filesystem::path& path, std::size_t maxBytes) {
    // O_NONBLOCK: opening a FIFO does not wait for a writer (and is refused below)
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    struct stat st {};
    std::optional<std::string> text;
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        static_cast<std::size_t>(st.st_size) <= maxBytes) {
        text.emplace();
        char buffer[65536];
        for (;;) {
            const auto n = ::read(fd, buffer, sizeof buffer);
            if (n < 0 && errno == EINTR) continue;
            if (n == 0) break;
            if (n < 0 || text->size() + static_cast<std::size_t>(n) > maxBytes) {
                text.reset(); // a read error, or a file that grew past the limit
                break;
            }
            text->append(buffer, static_cast<std::size_t>(n));
        }
    }
    ::close(fd);
    return text;
}

std::string readUpTo(std::istream& in, std::size_t maxBytes) {
    std::string text;
    char buffer[65536];
    while (text.size() <= maxBytes) {
        const auto want = std::min(sizeof buffer, maxBytes + 1 - text.size());
        in.read(buffer, static_cast<std::streamsize>(want));
        const auto got = static_cast<std::size_t>(in.gcount());
        text.append(buffer, got);
        if (got < want) break;
    }
    return text;
}

} // namespace spinout
