// What the command line and the Python module both check before a render: value ranges
// and the sound format an output name asks for. One place, so both refuse the same things
// with the same words.
#pragma once

#include "render.hpp"

#include <stdexcept>
#include <string>

namespace spinout {

// A request out of range or malformed (the command's exit status 2; ValueError in Python).
class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// sr (when given: srGiven), ksmps, duration, bpm and tail within their ranges; throws UsageError
// naming the option as the command spells it.
void checkRenderValues(const RenderJob& job, bool srGiven);

// The format of `output`: `format` when given (wav, rf64, flac, ogg, aiff), else from the
// name's extension (none: wav); the encoding when given, else float32 (pcm24 for flac).
// Throws UsageError for an unknown format, extension or encoding.
SoundFormat soundFormatFor(const std::string& output, const std::string& format,
                           const std::string& encoding);

} // namespace spinout
