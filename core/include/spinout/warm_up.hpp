// Warming an instr before the audio thread plays it: Csound allocates much of what an
// instance needs only the first time that instance runs its init pass (envelope segment
// arrays, delay lines, the instances of the UDOs it calls, tables an opcode builds on its
// first use such as vco2's). warmUpInstances() does all of that at load time.
#pragma once

#include "spinout/session.hpp"

namespace spinout {

// Preallocates `instances` instances of the event's instr and runs their init passes at
// once, in the coming cycle, with the event's args (defaults, ports, fixed args) through
// `subinstrinit` in a holder with p3 = 0: the holder ends after its init pass and every
// instance goes back to Csound's free list with its memory, so that up to `instances` of
// them can start later without allocating. No perf pass runs: nothing sounds. While it
// runs, the global giSpinoutWarmUp (support.hpp) is 1, so that init code with side effects beyond
// its instance (scheduling, writing globals or files) can skip them. Call once per session, off the
// audio thread.
void warmUpInstances(Session& session, const PreparedEvent& event, int instances);

} // namespace spinout
