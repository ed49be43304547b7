// A watchdog for the offline tools (render, check, csd): a session whose code does not
// end (an endless loop in its globals, an init pass or a cycle) would hang the command
// for ever. A thread of its own watches the engine's progress (cycles performed, code
// compiled) while the command waits on it, and when none comes within the limit it
// hands the command what was running, to report and end the process: Csound cannot be
// stopped safely from outside, so the process is. Never in a plugin.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace spinout {

class Engine;

class Watchdog {
public:
    // `expired` runs on the watchdog's thread with a sentence saying what did not finish
    // (and, where it can, the instr and line); it must end the process.
    using Expired = std::function<void(const std::string& what)>;
    // Where the engine is stuck, in the session's terms ("" when unknown).
    using Where = std::function<std::string()>;

    Watchdog(std::chrono::milliseconds limit, Expired expired);
    ~Watchdog();
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;

    std::chrono::milliseconds limit() const noexcept { return limit_; }
    // The engine whose progress counts (null: none now), and how to say where it is stuck.
    void watch(const Engine* engine, Where where = {});
    // The command waits on the session from now (`what`: "loading", "a cycle"...): progress
    // must come within the limit until idle().
    void busy(std::string what);
    // The command does something else (writing a file): no limit.
    void idle();

private:
    void loop();

    std::chrono::milliseconds limit_;
    Expired expired_;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stop_ = false;
    const Engine* engine_ = nullptr;
    Where where_;
    bool busy_ = false;
    std::string what_;
    std::uint64_t progress_ = 0;
    std::chrono::steady_clock::time_point since_;
    std::thread thread_;
};

} // namespace spinout
