// Warm-up of an instr's instances at load time: see warm_up.hpp.
#include "spinout/warm_up.hpp"

#include "spinout/support.hpp"

#include <fmt/format.h>

namespace spinout {

void warmUpInstances(Session& session, const PreparedEvent& event, int instances) {
    if (instances <= 0) return;
    // p4 (the slot) and the event's pfields pass on to each instance, as a start would.
    std::string args;
    for (int p = 4; p <= event.numPfields; ++p)
        args += fmt::format(", p{}", p);
    std::string code = fmt::format("prealloc {}, {}\n", event.instrNum, instances);
    code += fmt::format("instr {}\n", support::kWarmUpInstr);
    code += fmt::format("{} = 1\n", support::kWarmUpFlag);
    // one line per instance: one subinstrinit run in a loop would not hold them all at once
    for (int i = 0; i < instances; ++i)
        code += fmt::format("subinstrinit {}{}\n", event.instrNum, args);
    code += fmt::format("{} = 0\nendin\n", support::kWarmUpFlag);
    session.compile(code, "the warm-up of the voices");
    PreparedEvent holder = event;
    holder.instrNum = support::kWarmUpInstr;
    // p3 = 0: an init pass only; the holder's slot frees itself (no heartbeat)
    if (!session.startAt(holder, session.frame(), 0).valid())
        throw SessionError("no room to queue the warm-up of the voices");
}

} // namespace spinout
