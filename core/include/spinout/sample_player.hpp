// The template that plays a table read from a sound file, csoundengine's
// playSample: at the file's own pitch times `kspeed`, from `iskip` seconds in,
// looping or not, mono samples panned or sent to one channel.
#pragma once

#include "spinout/instr.hpp"
#include "spinout/session.hpp"

namespace spinout {

inline constexpr const char* kSamplePlayer = "_playsample";

// The template, parsed once.
const Instr& samplePlayer();

// The args and the duration of an instance playing `table`. dur 0: to the sample's end
// (until stopped when looping); pan -1: to `chan` alone, 0..1: left to right (mono).
struct SamplePlay {
    SchedArgs args;
    double dur = 0;
};
SamplePlay samplePlay(const SoundTable& table, double dur, int chan, double gain, double speed,
                      bool loop, double pan, double skip);

} // namespace spinout
