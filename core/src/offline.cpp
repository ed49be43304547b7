#include "spinout/offline.hpp"

#include <algorithm>

namespace spinout {

OfflineRenderer::OfflineRenderer(EngineOptions engine, SessionOptions session,
                                 OfflineOptions options)
    : options_(std::move(options)), engine_(std::move(engine)), session_(engine_, session) {
    if (!options_.outfile.empty())
        writer_ = std::make_unique<SoundFileWriter>(options_.outfile, engine_.sr(),
                                                    engine_.nchnls(), options_.format);
}

void OfflineRenderer::perform(double until) {
    const auto ksmps = engine_.ksmps();
    const auto n = static_cast<std::size_t>(ksmps * engine_.nchnls());
    while (session_.time() < until) {
        if (!session_.performCycle()) throw EngineError("Csound stopped performing");
        if (writer_) writer_->write(engine_.spout(), ksmps);
        if (options_.keepSamples)
            samples_.insert(samples_.end(), engine_.spout(), engine_.spout() + n);
    }
}

void OfflineRenderer::finish(double tail) {
    perform(std::max(session_.time(), session_.scheduledEnd()) + tail);
    if (writer_) writer_->commit();
}

} // namespace spinout
