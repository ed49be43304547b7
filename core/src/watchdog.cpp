// The offline tools' watchdog (see watchdog.hpp). Its thread polls the engine's progress
// counter a few times a second; the thread it watches is never interrupted.
#include "spinout/watchdog.hpp"

#include "spinout/engine.hpp"

#include <fmt/format.h>

namespace spinout {

Watchdog::Watchdog(std::chrono::milliseconds limit, Expired expired)
    : limit_(limit), expired_(std::move(expired)), thread_([this] { loop(); }) {}

Watchdog::~Watchdog() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
}

void Watchdog::watch(const Engine* engine, Where where) {
    std::lock_guard<std::mutex> lock(mutex_);
    engine_ = engine;
    where_ = std::move(where);
    progress_ = engine != nullptr ? engine->progress() : 0;
    since_ = std::chrono::steady_clock::now();
}

void Watchdog::busy(std::string what) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!busy_ || what != what_) since_ = std::chrono::steady_clock::now();
    busy_ = true;
    what_ = std::move(what);
}

void Watchdog::idle() {
    std::lock_guard<std::mutex> lock(mutex_);
    busy_ = false;
}

void Watchdog::loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    const auto tick = std::min(limit_ / 4, std::chrono::milliseconds(100));
    while (!stop_) {
        wake_.wait_for(lock, std::max(tick, std::chrono::milliseconds(1)));
        if (stop_ || !busy_) continue;
        const auto now = std::chrono::steady_clock::now();
        if (engine_ != nullptr) {
            // a cycle performed or a piece of code compiled: it is working, not stuck
            const auto progress = engine_->progress();
            if (progress != progress_) {
                progress_ = progress;
                since_ = now;
                continue;
            }
        }
        if (now - since_ < limit_) continue;
        const std::string where = where_ ? where_() : std::string();
        const double seconds = std::chrono::duration<double>(limit_).count();
        const auto what =
            where.empty()
                ? fmt::format("{} did not finish within {:g} s", what_, seconds)
                : fmt::format("{} did not finish within {:g} s: {}", what_, seconds, where);
        lock.unlock();
        expired_(what);
        return; // `expired` ends the process; if it returns, stop watching
    }
}

} // namespace spinout
