// Standard MIDI files (SMF, formats 0 and 1): the channel messages of every track
// in time order, with the tempo map and the time signatures. Our own reader, because
// a file is untrusted input: every length is checked against the bytes that are
// really there, nothing is allocated from a declared length, and any malformed input
// is a MidiFileError naming the file, the track and the byte, never an abort.
// Offline only (the renderer, tests, fuzzing); nothing here runs on an audio thread.
#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace spinout {

class MidiFileError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A channel message (0x80..0xEF): 2 or 3 bytes, the unused ones 0.
struct MidiEvent {
    double time = 0; // seconds from the start of the file
    std::uint8_t size = 0;
    std::uint8_t data[3] = {0, 0, 0};
};

// From `time` on, the tempo is `bpm` quarter notes a minute.
struct TempoChange {
    double time = 0; // seconds
    double beat = 0; // quarter notes since the start
    double bpm = 120;
};

// A time signature (meta event FF 58): numerator / denominator from `time` on.
struct MeterChange {
    double time = 0; // seconds
    double beat = 0; // quarter notes since the start
    int numerator = 4;
    int denominator = 4;
};

struct MidiFile {
    // Every track's channel messages, merged by time; at equal times in track
    // order, then in file order (what the reader based on libsmf gave).
    std::vector<MidiEvent> events;
    // Never empty: the first change is at time 0 (120 bpm when the file sets none
    // there). At most one change per time: the last one the file gives wins.
    std::vector<TempoChange> tempo;
    std::vector<MeterChange> meter; // may be empty (4/4 by the spec's default)

    // The time of the last channel message, 0 without any.
    double end() const;
    // Quarter notes since the start at `seconds` (through the tempo map).
    double beatAt(double seconds) const;
    double bpmAt(double seconds) const;
};

struct MidiReadOptions {
    // A file whose last channel message is later than this is an error: a few
    // bytes can declare a delta of 0x0FFFFFFF ticks (a 77-hour render at 120 bpm).
    double maxSeconds = 3600;
    // Instead of that error, leave out the messages later than maxSeconds (the
    // renderer, when the user gave the length with --duration).
    bool dropLater = false;
};

// Reads a file held in memory; `name` is the file name that errors begin with.
// Pure (no I/O), so a fuzzer can drive it.
MidiFile parseMidi(std::span<const std::uint8_t> bytes, const std::string& name,
                   const MidiReadOptions& options = {});

// Reads the file at `path` (at most 64 MiB: larger is an error, not a MIDI file).
MidiFile readMidiFile(const std::string& path, const MidiReadOptions& options = {});

} // namespace spinout
