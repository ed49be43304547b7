// spinout check: compile, build and run every instr of a session once.
#include "spinout/check.hpp"

#include "spinout/processor.hpp"

#include <algorithm>

namespace spinout {

namespace {

void addUnique(std::vector<Diagnostic>& out, const Diagnostic& d) {
    if (std::none_of(out.begin(), out.end(),
                     [&](const Diagnostic& x) { return x.str() == d.str(); }))
        out.push_back(d);
}

// Each instr alone: a Csound error in one does not hide the others'.
std::vector<Diagnostic> compileEach(const SessionSpec& spec, const ProcessorOptions& options) {
    std::vector<Diagnostic> errors;
    for (const auto& is : spec.instrs) {
        SessionSpec one = spec;
        one.instrs = {is};
        one.runs.clear();
        one.midi.reset();
        one.ports.clear();
        one.presets.clear();
        try {
            Processor p(one, options);
        } catch (const SessionFileError& e) {
            for (const auto& d : e.diagnostics())
                addUnique(errors, d);
        }
    }
    return errors;
}

} // namespace

CheckReport checkSession(const SessionSpec& spec, const ProcessorOptions& options) {
    // what the session may run, before Csound sees any of it (watched: Csound's parser takes
    // its time on a lot of code)
    Watchdog* watchdog = options.watchdog;
    if (watchdog != nullptr) watchdog->busy("checking the session");
    if (auto refusals = checkPolicy(spec, options.grants); !refusals.empty())
        return {std::move(refusals), {}};
    const int sr = options.sr;
    std::vector<Diagnostic> errors;
    std::vector<Diagnostic> warnings;
    try {
        if (watchdog != nullptr) watchdog->busy("loading the session");
        Processor p(spec, options); // the whole chain: runs, voices, ports
        warnings = p.warnings();
        auto& session = p.session();
        const int ksmps = p.latency();
        // every instr once with its defaults, a cycle from now, for a few cycles
        for (const auto& is : spec.instrs) {
            try {
                const auto event = session.prepare(is.name);
                const double dur = 4.0 * ksmps / sr;
                if (!session.startAt(event, session.frame(), dur).valid())
                    addUnique(errors, {is.pos, "no room to run it once (every slot is in use)"});
            } catch (const std::exception& e) {
                addUnique(errors, {is.pos, e.what()});
            }
        }
        if (watchdog != nullptr) watchdog->busy("a cycle");
        for (int i = 0; i < 8; ++i) {
            session.performCycle();
            p.drainMessages({}, [&](const Diagnostic& d) { addUnique(errors, d); });
        }
    } catch (const SessionFileError& e) {
        // one engine for a good session; for a bad one, every instr alone, so that each
        // Csound error is reported
        if (watchdog != nullptr) watchdog->busy("loading the session");
        const auto each = compileEach(spec, options);
        for (const auto& d : each.empty() ? e.diagnostics() : each)
            addUnique(errors, d);
    } catch (const std::exception& e) {
        addUnique(errors, {{spec.path, 0, 0}, e.what()});
    }
    return {std::move(errors), std::move(warnings)};
}

} // namespace spinout
