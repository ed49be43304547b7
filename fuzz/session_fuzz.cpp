// libFuzzer target: the session file parser (TOML through toml++, then spinout's
// checks). Any input must give a SessionSpec or a SessionFileError; anything else
// is a finding. Nothing is compiled: Csound is not involved.
#include "spinout/session_file.hpp"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        spinout::parseSessionText(text, "fuzz.toml");
    } catch (const spinout::SessionFileError&) {
    }
    return 0;
}
