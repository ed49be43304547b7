// The support orchestra's text: its macros from support.hpp, then support.orc.
#include "spinout/support.hpp"

#include <fmt/format.h>

namespace spinout::support {

namespace detail {
// support.orc, embedded by CMake (support_orc.cpp in the build tree).
extern const char* const kSupportOrc;
} // namespace detail

std::string declarations(const Sizes& sizes) {
    std::string text = orchestra(sizes);
    if (const auto instr = text.find("\ninstr "); instr != std::string::npos)
        text.resize(instr + 1);
    return text;
}

std::vector<std::string> udoSignatures() {
    std::vector<std::string> signatures;
    const std::string text = declarations({});
    for (std::size_t at = 0; (at = text.find("\nopcode ", at)) != std::string::npos;) {
        at += 8;
        std::string signature;
        for (; at < text.size() && text[at] != '\n'; ++at)
            if (text[at] != ' ' && text[at] != '\t') signature += text[at];
        signatures.push_back(signature);
    }
    return signatures;
}

std::string orchestra(const Sizes& sizes) {
    std::string out;
    auto define = [&](std::string_view name, const auto& value) {
        out += fmt::format("#define {} #{}#\n", name, value);
    };
    auto defineString = [&](std::string_view name, std::string_view value) {
        out += fmt::format("#define {} #\"{}\"#\n", name, value);
    };
    define("SPINOUT_SLOTS", sizes.slots);
    define("SPINOUT_MAX_CONTROLS", sizes.maxControls);
    define("SPINOUT_AUDIO_BUSES", sizes.audioBuses);
    define("SPINOUT_CONTROL_BUSES", sizes.controlBuses);
    define("SPINOUT_PORTS", sizes.ports);
    define("SPINOUT_PAIRS", sizes.pairs);
    define("SPINOUT_SILENCE_INSTR", kSilenceInstr);
    define("SPINOUT_AUTOMATION_INSTR", kAutomationInstr);
    define("SPINOUT_STOP_INSTR", kStopInstr);
    define("SPINOUT_TABLE_WRITE_INSTR", kTableWriteInstr);
    define("SPINOUT_CHANNEL_WRITE_INSTR", kChannelWriteInstr);
    define("SPINOUT_BUS_CLEAR_INSTR", busClearInstr(sizes.numPriorities));
    define("SPINOUT_HOST_TIME_INSTR", kHostTimeInstr);
    define("SPINOUT_MAX_CONTROLS_VAR", kMaxControls);
    define("SPINOUT_CONTROL_TABLE", kControlTable);
    define("SPINOUT_HEARTBEAT_TABLE", kHeartbeatTable);
    define("SPINOUT_TIMING_TABLE", kTimingTable);
    define("SPINOUT_WARM_UP_FLAG", kWarmUpFlag);
    defineString("SPINOUT_CONTROL_TABLE_CHANNEL", kControlTableChannel);
    defineString("SPINOUT_HEARTBEAT_TABLE_CHANNEL", kHeartbeatTableChannel);
    defineString("SPINOUT_GENERATION_TABLE_CHANNEL", kGenerationTableChannel);
    defineString("SPINOUT_CONTROL_BUS_TABLE_CHANNEL", kControlBusTableChannel);
    defineString("SPINOUT_PORT_TABLE_CHANNEL", kPortTableChannel);
    defineString("SPINOUT_TIMING_TABLE_CHANNEL", kTimingTableChannel);
    defineString("SPINOUT_PAIRS_TABLE_CHANNEL", kPairsTableChannel);
    defineString("SPINOUT_AUDIO_BUS_COUNT_CHANNEL", kAudioBusCountChannel);
    defineString("SPINOUT_HOST_POSITION_CHANNEL", kHostPositionChannel);
    defineString("SPINOUT_HOST_BPM", host::kBpm);
    defineString("SPINOUT_HOST_BEAT", host::kBeat);
    defineString("SPINOUT_HOST_BAR", host::kBar);
    defineString("SPINOUT_HOST_BARBEAT", host::kBarBeat);
    defineString("SPINOUT_HOST_BEATSPERBAR", host::kBeatsPerBar);
    defineString("SPINOUT_HOST_SPEED", host::kSpeed);
    defineString("SPINOUT_HOST_SECONDS", host::kSeconds);
    out += detail::kSupportOrc;
    return out;
}

} // namespace spinout::support
