// The support orchestra (core/src/support.orc, embedded at build time): the
// instrument numbers, tables and channels that the session, the generated instr
// code and the .csd export share. This header is the one place they are named;
// the orchestra sees them as SPINOUT_* macros.
#pragma once

#include <string>
#include <vector>

namespace spinout::support {

// Instrument numbers. Internal instrs come before every template's, so in each
// cycle silence is written first and stops and automation act before the voices; in an
// exported .csd the host's writes replay before an automation that starts with them.
inline constexpr int kSilenceInstr = 1;
inline constexpr int kTableWriteInstr = 2;   // a host's table write, replayed by a .csd
inline constexpr int kChannelWriteInstr = 3; // a host's channel write, replayed by a .csd
inline constexpr int kAutomationInstr = 4;
inline constexpr int kStopInstr = 5;
inline constexpr int kEndInstr = 6; // a .csd's end (csd.cpp): nothing plays past it
// Advances the host.* channels every cycle while the transport rolls (sessions with host
// time): after the host's channel writes, before every template.
inline constexpr int kHostTimeInstr = 7;
// Template `index` at `priority` is instr priority * kPriorityStride + index:
// a higher priority runs later in each cycle.
inline constexpr int kPriorityStride = 1000;
inline constexpr int kMaxTemplates = kPriorityStride - 1;
// Holds the voices' warm-up (warm_up.hpp), after the internal instrs, before every template.
inline constexpr int kWarmUpInstr = kPriorityStride - 1;
// The numbers a session's own code may give its instrs: those between spinout's.
inline constexpr int kFirstSessionInstr = kHostTimeInstr + 1;
inline constexpr int kLastSessionInstr = kWarmUpInstr - 1;
constexpr int templateInstr(int priority, int index) {
    return priority * kPriorityStride + index;
}
// Audio buses hold one cycle: the clearer runs after the last priority.
constexpr int busClearInstr(int numPriorities) {
    return (numPriorities + 1) * kPriorityStride;
}

// Orchestra variables that generated instr code reads.
inline constexpr const char* kControlTable = "giSpinoutCtl";
inline constexpr const char* kHeartbeatTable = "giSpinoutAlive";
inline constexpr const char* kMaxControls = "giSpinoutMaxCtl";
inline constexpr const char* kTimingTable = "giSpinoutTiming";
// 1 while the voices' warm-up runs their init passes: init code with side effects may skip them.
inline constexpr const char* kWarmUpFlag = "giSpinoutWarmUp";

// Channels through which the tables' numbers reach the host.
inline constexpr const char* kControlTableChannel = "spinout.table.control";
inline constexpr const char* kHeartbeatTableChannel = "spinout.table.heartbeat";
inline constexpr const char* kGenerationTableChannel = "spinout.table.generation";
inline constexpr const char* kControlBusTableChannel = "spinout.table.controlbus";
inline constexpr const char* kPortTableChannel = "spinout.table.ports";
inline constexpr const char* kTimingTableChannel = "spinout.table.timing";
inline constexpr const char* kPairsTableChannel = "spinout.table.pairs";
inline constexpr const char* kAudioBusCountChannel = "spinout.audio_buses";
// Counts the positions the host has written: the host-time instr advances the channels
// in every cycle but one where a position came.
inline constexpr const char* kHostPositionChannel = "spinout.host.position";

// The host's tempo and transport as the session's code reads them (chnget), each the
// value at the start of the cycle. A beat is what the host's tempo counts.
namespace host {
inline constexpr const char* kBpm = "host.bpm";                 // beats a minute
inline constexpr const char* kBeat = "host.beat";               // beats since the start
inline constexpr const char* kBar = "host.bar";                 // bars since the start
inline constexpr const char* kBarBeat = "host.barbeat";         // beats into the bar
inline constexpr const char* kBeatsPerBar = "host.beatsperbar"; // the meter's numerator
inline constexpr const char* kBeatUnit = "host.beatunit";       // its denominator (4: quarter)
inline constexpr const char* kSpeed = "host.speed";             // 1 rolling, 0 stopped
inline constexpr const char* kPlaying = "host.playing";         // 1 while speed is not 0
inline constexpr const char* kSeconds = "host.seconds";         // the transport's time
} // namespace host

struct Sizes {
    int slots = 1024;     // simultaneous instances
    int maxControls = 32; // k-args per instr
    int audioBuses = 64;
    int controlBuses = 256;
    int ports = 256;   // rows of the port table
    int pairs = 16384; // automation breakpoints (times and values) in flight
    int numPriorities = 10;
};

// The support orchestra with its SPINOUT_* macros defined.
std::string orchestra(const Sizes& sizes);
// Its opening up to the first instr: the macros, globals and UDOs that session code can
// name. What the policy check's parser needs before it parses a session as the engine
// would (the instrs take it more than twice as long to parse).
std::string declarations(const Sizes& sizes);
// The signatures of the opcodes it defines (each "opcode NAME, OUT, IN" line), as
// OrcParse::udoSignatures writes them ("busin,a,k"): session code may call them, and what
// the policy check knows of them when it reads the engine's own parse.
std::vector<std::string> udoSignatures();

} // namespace spinout::support
