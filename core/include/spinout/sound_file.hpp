// Sound files through libsndfile. Not part of spinout_core (which links only
// Csound and fmt): the offline library and the command use it.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace spinout {

class SoundFileError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct SoundFormat {
    std::string container = "wav";    // wav, rf64, flac, ogg, aiff
    std::string encoding = "float32"; // pcm16, pcm24, pcm32, float32, float64
};

// Where a writer puts its sound, decided from the path given:
// - "-": standard output, streamed;
// - a FIFO or a character device (/dev/null): opened and written straight, never replaced;
// - anything else: a regular file, written to TARGET.partial beside it and renamed over
//   TARGET when complete, where TARGET is the path with its symbolic links followed (so a
//   link given as output keeps pointing at the new file).
// A directory, a block device or a missing folder is an error.
struct OutputTarget {
    enum Kind { file, stream, standardOutput } kind = file;
    std::string path;    // as given
    std::string target;  // file: the regular file written (links followed); stream: the path
    std::string partial; // file: target + ".partial"
};

// Resolves `path` as above, and removes a stale TARGET.partial that a killed render left:
// one that is a regular file no live writer holds (writers keep theirs locked). Throws
// SoundFileError naming the path and the reason.
OutputTarget resolveOutput(const std::string& path);

// The container a WAV of `frames` frames is written in: "rf64" when its data would pass the
// 4 GB that the 32-bit sizes of RIFF can hold, else "wav". Other containers are returned
// as they are; frames < 0 (unknown) gives "wav".
std::string containerFor(const SoundFormat& format, int nchnls, std::int64_t frames);

// Writes a sound file: see OutputTarget for where. A regular file appears complete on
// commit() or not at all: a failed render never replaces a good file. A stream gets its
// header first, with the sizes of `expectedFrames` when given (else the "unknown length"
// sizes), since a pipe cannot seek back to fix them. A WAV that may pass 4 GB is written
// as RF64 (see containerFor; unknown lengths to a file let libsndfile choose at the end).
// Every write is checked, the close included.
class SoundFileWriter {
public:
    SoundFileWriter(const std::string& path, int sr, int nchnls, const SoundFormat& format = {},
                    std::int64_t expectedFrames = -1);
    ~SoundFileWriter(); // without commit(): removes the partial file
    SoundFileWriter(const SoundFileWriter&) = delete;
    SoundFileWriter& operator=(const SoundFileWriter&) = delete;

    void write(const double* interleaved, std::int64_t frames);
    void write(const float* interleaved, std::int64_t frames);
    void commit();
    std::int64_t frames() const { return frames_; }
    const OutputTarget& target() const;
    const std::string& container() const; // as written: wav or rf64 for a WAV

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    std::int64_t frames_ = 0;
};

// For commands: on SIGINT, SIGTERM and SIGHUP, remove the partial files of the writers still
// open, then die of the signal as before. Signals the process ignores stay ignored.
void removePartialFilesOnSignals();
// Removes the partial files of the writers still open, for a command about to end itself
// (a watchdog's thread); async-signal-safe.
void removePartialFiles() noexcept;

// Reads a sound file block by block.
class SoundFileReader {
public:
    explicit SoundFileReader(const std::string& path);
    ~SoundFileReader();
    SoundFileReader(const SoundFileReader&) = delete;
    SoundFileReader& operator=(const SoundFileReader&) = delete;

    int sr() const { return sr_; }
    int nchnls() const { return nchnls_; }
    // A header that says "unknown length" (a streamed FLAC) is counted by decoding once.
    std::int64_t frames() const { return frames_; }
    // Reads up to `frames` interleaved frames; fewer (or 0) at the end.
    std::int64_t read(double* interleaved, std::int64_t frames);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    int sr_ = 0;
    int nchnls_ = 0;
    std::int64_t frames_ = 0;
};

struct Audio {
    int sr = 0;
    int nchnls = 0;
    std::vector<double> samples; // interleaved
    std::int64_t frames() const {
        return nchnls > 0 ? static_cast<std::int64_t>(samples.size()) / nchnls : 0;
    }
    std::vector<double> channel(int ch) const;
};

Audio readSoundFile(const std::string& path);

} // namespace spinout
