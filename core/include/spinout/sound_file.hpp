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
    std::string container = "wav";    // wav, flac, ogg, aiff
    std::string encoding = "float32"; // pcm16, pcm24, pcm32, float32, float64
};

// Writes to PATH.partial and renames to PATH on commit(), so a failed render
// leaves no half-written file and never replaces a good one.
class SoundFileWriter {
public:
    SoundFileWriter(const std::string& path, int sr, int nchnls, const SoundFormat& format = {});
    ~SoundFileWriter(); // without commit(): removes the partial file
    SoundFileWriter(const SoundFileWriter&) = delete;
    SoundFileWriter& operator=(const SoundFileWriter&) = delete;

    void write(const double* interleaved, std::int64_t frames);
    void write(const float* interleaved, std::int64_t frames);
    void commit();
    std::int64_t frames() const { return frames_; }

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    std::string path_;
    std::string partial_;
    std::int64_t frames_ = 0;
};

// Reads a sound file block by block.
class SoundFileReader {
public:
    explicit SoundFileReader(const std::string& path);
    ~SoundFileReader();
    SoundFileReader(const SoundFileReader&) = delete;
    SoundFileReader& operator=(const SoundFileReader&) = delete;

    int sr() const { return sr_; }
    int nchnls() const { return nchnls_; }
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
