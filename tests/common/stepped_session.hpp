// A Session stepped offline for the tests, csoundengine's OfflineEngine model:
// time moves only when asked; between steps the test reads channels, tables and
// variables; every output sample is kept.
#pragma once

#include "spinout/engine.hpp"
#include "spinout/session.hpp"

#include <vector>

namespace spinout::test {

struct SteppedSession {
    explicit SteppedSession(EngineOptions engineOptions, SessionOptions sessionOptions = {})
        : engine(std::move(engineOptions)), session(engine, sessionOptions) {}

    // Performs whole cycles until `until` seconds (never goes back).
    void perform(double until) {
        const auto n = static_cast<std::size_t>(engine.ksmps() * engine.nchnls());
        while (session.time() < until) {
            session.performCycle();
            samples.insert(samples.end(), engine.spout(), engine.spout() + n);
        }
    }
    double time() const { return session.time(); }
    // Channel `ch` of everything performed so far.
    std::vector<double> channel(int ch) const {
        std::vector<double> out;
        for (std::size_t i = static_cast<std::size_t>(ch); i < samples.size();
             i += static_cast<std::size_t>(engine.nchnls()))
            out.push_back(samples[i]);
        return out;
    }

    Engine engine;
    Session session;
    std::vector<double> samples; // interleaved
};

} // namespace spinout::test
