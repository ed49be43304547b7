#include "spinout/sound_file.hpp"

#include <sndfile.h>

#include <fmt/format.h>

#include <cstdio>
#include <fcntl.h>
#include <map>
#include <stdio.h>

namespace spinout {

namespace {

int formatCode(const SoundFormat& f) {
    static const std::map<std::string, int> containers = {{"wav", SF_FORMAT_WAV},
                                                          {"flac", SF_FORMAT_FLAC},
                                                          {"ogg", SF_FORMAT_OGG},
                                                          {"aiff", SF_FORMAT_AIFF}};
    static const std::map<std::string, int> encodings = {{"pcm16", SF_FORMAT_PCM_16},
                                                         {"pcm24", SF_FORMAT_PCM_24},
                                                         {"pcm32", SF_FORMAT_PCM_32},
                                                         {"float32", SF_FORMAT_FLOAT},
                                                         {"float64", SF_FORMAT_DOUBLE}};
    auto c = containers.find(f.container);
    if (c == containers.end())
        throw SoundFileError(
            fmt::format("unknown format '{}' (wav, flac, ogg, aiff)", f.container));
    if (f.container == "ogg") return c->second | SF_FORMAT_VORBIS;
    auto e = encodings.find(f.encoding);
    if (e == encodings.end())
        throw SoundFileError(fmt::format(
            "unknown encoding '{}' (pcm16, pcm24, pcm32, float32, float64)", f.encoding));
    return c->second | e->second;
}

} // namespace

namespace {

// Puts `from` in the place of `to` atomically. Over an existing file, the names are
// exchanged and the old file removed: a plain rename over it makes ext4 (auto_da_alloc)
// flush the new file's data first, milliseconds a render need not wait.
bool replaceFile(const std::string& from, const std::string& to) {
#if defined(RENAME_EXCHANGE)
    if (renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_EXCHANGE) == 0) {
        std::remove(from.c_str()); // the old render, now under the partial name
        return true;
    }
#endif
    return std::rename(from.c_str(), to.c_str()) == 0;
}

} // namespace

struct SoundFileWriter::Impl {
    SNDFILE* file = nullptr;
};

SoundFileWriter::SoundFileWriter(const std::string& path, int sr, int nchnls,
                                 const SoundFormat& format)
    : impl_(std::make_unique<Impl>()), path_(path), partial_(path + ".partial") {
    SF_INFO info{};
    info.samplerate = sr;
    info.channels = nchnls;
    info.format = formatCode(format);
    if (!sf_format_check(&info))
        throw SoundFileError(fmt::format("{} cannot hold {} at {} Hz with {} channels",
                                         format.container, format.encoding, sr, nchnls));
    impl_->file = sf_open(partial_.c_str(), SFM_WRITE, &info);
    if (impl_->file == nullptr)
        throw SoundFileError(fmt::format("cannot write '{}': {}", path, sf_strerror(nullptr)));
    // Clip rather than wrap when a float signal exceeds 0 dBFS in an integer file.
    sf_command(impl_->file, SFC_SET_CLIPPING, nullptr, SF_TRUE);
}

SoundFileWriter::~SoundFileWriter() {
    if (impl_->file != nullptr) {
        sf_close(impl_->file);
        std::remove(partial_.c_str());
    }
}

void SoundFileWriter::write(const double* interleaved, std::int64_t frames) {
    if (impl_->file == nullptr) throw SoundFileError("the sound file is closed");
    if (sf_writef_double(impl_->file, interleaved, frames) != frames)
        throw SoundFileError(fmt::format("cannot write '{}': {}", path_, sf_strerror(impl_->file)));
    frames_ += frames;
}

void SoundFileWriter::write(const float* interleaved, std::int64_t frames) {
    if (impl_->file == nullptr) throw SoundFileError("the sound file is closed");
    if (sf_writef_float(impl_->file, interleaved, frames) != frames)
        throw SoundFileError(fmt::format("cannot write '{}': {}", path_, sf_strerror(impl_->file)));
    frames_ += frames;
}

void SoundFileWriter::commit() {
    if (impl_->file == nullptr) return;
    const int err = sf_close(impl_->file);
    impl_->file = nullptr;
    if (err != 0 || !replaceFile(partial_, path_)) {
        std::remove(partial_.c_str());
        throw SoundFileError(fmt::format("cannot write '{}'", path_));
    }
}

std::vector<double> Audio::channel(int ch) const {
    std::vector<double> out(static_cast<std::size_t>(frames()));
    for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = samples[i * static_cast<std::size_t>(nchnls) + static_cast<std::size_t>(ch)];
    return out;
}

struct SoundFileReader::Impl {
    SNDFILE* file = nullptr;
};

SoundFileReader::SoundFileReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
    SF_INFO info{};
    impl_->file = sf_open(path.c_str(), SFM_READ, &info);
    if (impl_->file == nullptr)
        throw SoundFileError(fmt::format("cannot read '{}': {}", path, sf_strerror(nullptr)));
    sr_ = info.samplerate;
    nchnls_ = info.channels;
    frames_ = info.frames;
}

SoundFileReader::~SoundFileReader() {
    if (impl_->file != nullptr) sf_close(impl_->file);
}

std::int64_t SoundFileReader::read(double* interleaved, std::int64_t frames) {
    return sf_readf_double(impl_->file, interleaved, frames);
}

Audio readSoundFile(const std::string& path) {
    SoundFileReader r(path);
    Audio a;
    a.sr = r.sr();
    a.nchnls = r.nchnls();
    a.samples.resize(static_cast<std::size_t>(r.frames() * r.nchnls()));
    const auto got = r.read(a.samples.data(), r.frames());
    a.samples.resize(static_cast<std::size_t>(got * r.nchnls()));
    return a;
}

} // namespace spinout
