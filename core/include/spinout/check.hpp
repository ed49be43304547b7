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

// Every error found, each naming the session file's line; empty when the session is good.
// The policy check comes first, with options.grants: a session it refuses is not built.
// With options.watchdog, loading and each cycle are watched.
std::vector<Diagnostic> checkSession(const SessionSpec& spec, const ProcessorOptions& options = {});

} // namespace spinout
