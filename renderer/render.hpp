// A render: a session (with MIDI, a score, an input, a preset, port values)
// through Processor into a sound file, as a host would play it.
#pragma once

#include "spinout/message_ring.hpp"
#include "spinout/midi_file.hpp"
#include "spinout/permission.hpp"
#include "spinout/processor.hpp"
#include "spinout/sound_file.hpp"

#include <bitset>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace spinout {

class Watchdog;

// An error in what the user asked for (exit status 1).
class RenderError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct SessionSpec;

struct RenderJob {
    std::string session;
    std::shared_ptr<const SessionSpec> spec; // parsed already (from text): used, not `session`
    std::string output;                      // empty: no file
    std::string midi;
    std::string score;
    std::string input;
    std::shared_ptr<const Audio> inputAudio; // samples in memory instead of `input`
    std::string preset;
    std::vector<std::pair<std::string, double>> sets; // port symbol = value
    int sr = 0;                                       // 0: the input's, else 48000
    std::optional<int> ksmps;
    // The host's tempo for a session with host time, the transport playing from the start
    // in 4/4; without it 120, or a MIDI file's tempo map and meter.
    std::optional<double> bpm;
    std::optional<double> duration; // the file's length; default: the content's end + tail
    double tail = 2.0;              // after the content's end
    SoundFormat format;
    std::vector<std::uint32_t> blocks = {4096}; // host block sizes, used in turn
    bool keepSamples = false;
    std::vector<std::string> trace; // port symbols whose values go to traceOutput (CSV)
    std::string traceOutput;
    bool csd = false; // journal the render for exportCsd
    std::string csdOutput = "spinout.wav";
    std::function<void(double done, double total)> progress; // seconds rendered, of total
    // What the user granted the session (--allow, and the trust file); nothing by default.
    std::bitset<kAllPermissions.size()> allow;
    // Watches loading and every cycle (the command's --timeout); null: none.
    Watchdog* watchdog = nullptr;
    // Csound's own messages as they come (render -v); runtime errors end the render anyway.
    std::function<void(MessageLevel, const char*)> messages;
};

struct RenderResult {
    int sr = 0;
    int nchnls = 0;
    std::int64_t frames = 0;
    double peak = 0; // linear
    double rms = 0;  // linear, over all channels
    int latency = 0;
    std::vector<float> samples;       // interleaved, with keepSamples
    std::string csd;                  // with csd
    std::vector<Diagnostic> warnings; // the session's (Processor::warnings)
    // The processor, still alive: a command that exits next can skip tearing Csound
    // down (unloading its plugin libraries costs as much as a second of rendering).
    std::shared_ptr<void> processor;
};

RenderResult render(const RenderJob& job);

// A time position at a host frame: what the renderer, as a host, tells a session.
struct HostPosition {
    std::int64_t frame = 0;
    HostTime time;
};

// The positions a host playing from the start sends, from a tempo map and meter as a
// MIDI file gives them (quarter notes): every value at frame 0 and at each tempo or meter
// change. As LV2 counts them, a beat is the meter's denominator note (a quarter in 4/4, an
// eighth in 6/8) and the tempo counts those; beats and bars add up segment by segment.
// Without a tempo map: 120; without a meter: 4/4.
std::vector<HostPosition> transportOf(std::span<const TempoChange> tempo,
                                      std::span<const MeterChange> meter, int sr);

} // namespace spinout
