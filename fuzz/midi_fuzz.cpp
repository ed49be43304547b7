// libFuzzer target: the MIDI file reader. Any input must give a MidiFile or a
// MidiFileError; anything else (another exception, a sanitizer report, a hang) is
// a finding. The results must also hold what the header promises.
#include "spinout/midi_file.hpp"

#include <cmath>
#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace spinout;
    for (const auto& options :
         {MidiReadOptions{}, MidiReadOptions{.maxSeconds = 10, .dropLater = true}}) {
        try {
            const MidiFile f = parseMidi({data, size}, "fuzz.mid", options);
            double last = 0;
            for (const auto& e : f.events) {
                // in time order, finite, within the limit, channel messages only
                if (!(e.time >= last) || !std::isfinite(e.time) || e.time > options.maxSeconds ||
                    e.data[0] < 0x80 || e.data[0] >= 0xF0 || e.size < 2 || e.size > 3)
                    std::abort();
                last = e.time;
            }
            if (f.tempo.empty() || f.tempo[0].time != 0) std::abort();
            for (std::size_t i = 1; i < f.tempo.size(); ++i)
                if (!(f.tempo[i].time >= f.tempo[i - 1].time) || !(f.tempo[i].bpm > 0))
                    std::abort();
            if (!std::isfinite(f.beatAt(f.end())) || !(f.bpmAt(f.end()) > 0)) std::abort();
        } catch (const MidiFileError&) {
        }
    }
    return 0;
}
