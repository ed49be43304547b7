// Standard MIDI files through libsmf: every channel message with its time.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace spinout {

struct TimedMidi {
    double time = 0; // seconds
    std::uint8_t size = 0;
    std::uint8_t data[3] = {0, 0, 0};
};

class MidiFileError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Channel messages (notes, controllers, pitch bend, ...) of every track, by time.
std::vector<TimedMidi> readMidiFile(const std::string& path);

} // namespace spinout
