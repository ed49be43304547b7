// libFuzzer target: the score file parser, against the polysynth preset (instrs with
// args, a bus, ports: what scores refer to). Any input must give a Score or a
// SessionFileError; anything else is a finding.
#include "spinout/score_file.hpp"

#include <cstdint>
#include <string>

namespace {

const spinout::SessionSpec& session() {
    static const spinout::SessionSpec spec =
        spinout::parseSessionFile(SPINOUT_SOURCE_DIR "/presets/polysynth.toml");
    return spec;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        spinout::parseScoreText(text, "fuzz.score.toml", session());
    } catch (const spinout::SessionFileError&) {
    }
    return 0;
}
