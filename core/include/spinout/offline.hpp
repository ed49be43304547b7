// spinout::OfflineRenderer: csoundengine's OfflineEngine model. Time advances
// only when the caller asks (perform), the output goes to a sound file, and
// between steps the caller reads channels, tables and variables through the
// engine and the session.
#pragma once

#include "spinout/engine.hpp"
#include "spinout/session.hpp"
#include "spinout/sound_file.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace spinout {

struct OfflineOptions {
    std::string outfile; // empty: keep the samples in memory only
    SoundFormat format;
    bool keepSamples = false; // also keep every rendered sample in samples()
};

class OfflineRenderer {
public:
    OfflineRenderer(EngineOptions engine, SessionOptions session = {}, OfflineOptions options = {});

    Engine& engine() { return engine_; }
    Session& session() { return session_; }

    // Renders until `until` seconds (whole cycles; never goes back).
    void perform(double until);
    // Renders until every scheduled event with a finite duration is over, then
    // `tail` more seconds, and writes the file.
    void finish(double tail = 0);
    double time() const { return session_.time(); }
    const std::vector<double>& samples() const { return samples_; }

private:
    OfflineOptions options_;
    Engine engine_;
    Session session_;
    std::unique_ptr<SoundFileWriter> writer_;
    std::vector<double> samples_;
};

} // namespace spinout
