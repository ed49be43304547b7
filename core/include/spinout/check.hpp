// What `spinout check` runs on a session beyond parsing it: the whole session built
// (when that fails, every instr compiled on its own, so each Csound error is
// reported), and every instr through one init pass and a few cycles with its
// defaults (so what only shows at init, a missing table or a bad opcode argument,
// shows here).
// Not real-time: it builds engines.
#pragma once

#include "spinout/processor.hpp"
#include "spinout/spec.hpp"

#include <vector>

namespace spinout {

struct CheckReport {
    // Every error found, each naming the session file's line; none when the session is good.
    std::vector<Diagnostic> errors;
    // What loads but the user should know (Processor::warnings).
    std::vector<Diagnostic> warnings;
};

// The policy check comes first, with options.grants: a session it refuses is not built.
// With options.watchdog, loading and each cycle are watched.
CheckReport checkSession(const SessionSpec& spec, const ProcessorOptions& options = {});

} // namespace spinout
