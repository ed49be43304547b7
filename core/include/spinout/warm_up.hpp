// Warming an instr before the audio thread plays it: Csound allocates much of what an
// instance needs only the first time that instance runs its init pass (envelope segment
// arrays, delay lines, the instances of the UDOs it calls, tables an opcode builds on its
// first use such as vco2's). warmUpInstances() does all of that at load time.
#pragma once

#include "spinout/engine.hpp"
#include "spinout/session.hpp"
#include "spinout/spec.hpp"

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace spinout {

// Preallocates `instances` instances of the event's instr and runs their init passes at
// once, with the event's args (defaults, ports, fixed args) through `subinstrinit` in a
// holder with p3 = 0: the holder ends after its init pass and every instance goes back to
// Csound's free list with its memory, so that up to `instances` of them can start later
// without allocating. No perf pass runs: nothing sounds. While it runs, the global
// giSpinoutWarmUp (support.hpp) is 1, so that init code with side effects beyond its
// instance (scheduling, writing globals or files) can skip them. Once per session, off
// the audio thread.
//
// `ownCycle`: the init passes run now, in a cycle of their own, after which the engine
// goes back to frame 0 (Session::performCycleBeforeStart): the host's first cycle then
// does only its own work, not this (6 ms for the polysynth, most of it vco2's tables).
// Call it after the ports and host time have queued their first values (host writes, made
// in that cycle before the warm-up, as in the first cycle) and before anything else
// starts; and only when the session's code schedules nothing at load (schedulesAtLoad):
// the rewind would drop it. Otherwise the init passes wait for the first cycle, in the
// audio thread. (A plugin's host gives its port values with the first block: the warm-up
// there sees the values the Processor was made with, the ports' defaults.)
//
// Only a real-time host needs it (Processor, ProcessorOptions::realTime): a render, like
// its exported .csd, runs none, and the plugin plays what they write because the warm-up
// leaves nothing a note hears. Csound's random generators are kept before the init passes
// and put back after them (Engine::keepRandom), so a voice that draws a random phase at
// init draws what it would with no warm-up (the polysynth plays the samples it played
// before there was one). Init code with effects beyond its instance (writing globals,
// tables, channels or files) must skip them while giSpinoutWarmUp is 1, or the plugin
// hears what a render does not.
void warmUpInstances(Session& session, const PreparedEvent& event, int instances, bool ownCycle);

// Whether the session's code (globals, instr init code and bodies, and the files they
// include) names an opcode that starts instances or events or compiles code at run time,
// or defines a macro (which could build such a name). A scan of words, comments included:
// it may say yes for code that would not.
bool schedulesAtLoad(const SessionSpec& spec);

// Init code of the MIDI voice instr that the warm-up would run with effects beyond its
// instance, where the code never reads giSpinoutWarmUp: the plugin would hear them and a
// render would not. Found in each piece of the session's code as Csound parsed it, in the
// order compiled (the policy check shows it each piece it admits): in the voice's body, a
// global written at init (gi..., gS..., `init` of any global, an element of a gi or gS
// array), an event or code started at init (`schedule`, `event_i`, `compilestr`...), a
// channel or table written at init; or a call of a session UDO that does one of those.
// Warnings, not errors: the session loads and plays.
class WarmUpTraces {
public:
    // `spec`'s MIDI voice instr is read (none: nothing is); it must outlive this.
    explicit WarmUpTraces(const SessionSpec& spec);
    // `at`: where a call stands in the session's files; nothing for spinout's own lines.
    using Locate = std::function<std::optional<SourcePos>(const OrcCall&)>;
    void read(const CodeSource& source, const OrcParse& parsed, const Locate& at);
    const std::vector<Diagnostic>& warnings() const noexcept { return warnings_; }

private:
    const SessionSpec& spec_;
    std::map<std::string, std::string> udoEffects_; // a UDO, what it does at init
    std::vector<Diagnostic> warnings_;
};

} // namespace spinout
