// readTextFile: see text_file.hpp.
#include "spinout/text_file.hpp"

#include <fstream>
#include <sstream>

namespace spinout {

std::optional<std::string> readTextFile(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return std::nullopt;
    return text.str();
}

} // namespace spinout
