// Checks shared by the command and the Python module (see render_options.hpp).
#include "render_options.hpp"

#include "spinout/spec.hpp"
#include "spinout/suggest.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <vector>

namespace spinout {

namespace {

void checkSeconds(const char* option, double v) {
    if (!std::isfinite(v) || v < 0 || v > kMaxSeconds)
        throw UsageError(
            fmt::format("{} {}: give a number of seconds from 0 to {}", option, v, kMaxSeconds));
}

// One of `choices`, or a usage error with the closest one suggested.
void checkChoice(const char* option, const std::string& value,
                 const std::vector<std::string>& choices) {
    if (std::find(choices.begin(), choices.end(), value) != choices.end()) return;
    throw UsageError(fmt::format("{} '{}': give one of {}{}", option, value,
                                 fmt::join(choices, ", "), didYouMean(value, choices)));
}

} // namespace

void checkRenderValues(const RenderJob& job, bool srGiven) {
    if (srGiven && (job.sr < 1000 || job.sr > 768000))
        throw UsageError(fmt::format(
            "--sr {}: give a sample rate from 1000 to 768000 Hz (without --sr: the input's, "
            "else 48000)",
            job.sr));
    if (job.ksmps && (*job.ksmps < 1 || *job.ksmps > 8192))
        throw UsageError(
            fmt::format("--ksmps {}: give a number of frames from 1 to 8192", *job.ksmps));
    if (job.duration) checkSeconds("--duration", *job.duration);
    if (job.bpm && !(std::isfinite(*job.bpm) && *job.bpm >= 1 && *job.bpm <= 1000))
        throw UsageError(
            fmt::format("--bpm {}: give a tempo from 1 to 1000 beats a minute", *job.bpm));
    checkSeconds("--tail", job.tail);
}

SoundFormat soundFormatFor(const std::string& output, const std::string& format,
                           const std::string& encoding) {
    const std::vector<std::string> formats = {"wav", "rf64", "flac", "ogg", "aiff"};
    if (!format.empty()) checkChoice("--format", format, formats);
    if (!encoding.empty())
        checkChoice("--encoding", encoding, {"pcm16", "pcm24", "pcm32", "float32", "float64"});
    std::string ext = std::filesystem::path(output).extension().string();
    if (!ext.empty()) ext = ext.substr(1);
    if (ext == "aif") ext = "aiff";
    if (format.empty() && !ext.empty() &&
        std::find(formats.begin(), formats.end(), ext) == formats.end())
        throw UsageError(
            fmt::format("-o {}: '.{}' names no format spinout writes ({}); give --format", output,
                        ext, fmt::join(formats, ", ")));
    SoundFormat f;
    f.container = !format.empty() ? format : (ext.empty() ? "wav" : ext);
    // float32 keeps every sample; FLAC holds integers only
    f.encoding = !encoding.empty() ? encoding : (f.container == "flac" ? "pcm24" : "float32");
    if (f.container == "ogg" && !encoding.empty())
        throw UsageError("--encoding: ogg is always Vorbis; drop --encoding");
    return f;
}

} // namespace spinout
