// The Turtle of a session's plugin, generated from the session file (the one
// source of truth for ports). Text only: nothing here includes LV2.
// Generated Turtle is data, never code: every IRI written passes iriProblem(),
// every string is escaped by quotedString() (quoted.hpp), every number is finite.
#pragma once

#include "spinout/spec.hpp"

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace spinout {

// Port indices of a session's plugin. Session ports come last, in file order,
// so that a session can add ports without moving the others.
struct PortLayout {
    int audioIn = 0; // first audio input
    int numIn = 0;
    int audioOut = 0; // first audio output
    int numOut = 0;
    int events = -1;  // atom input: MIDI, patch messages, time positions (-1: none)
    int notify = -1;  // atom output: patch messages (-1: none)
    int latency = 0;  // control output
    int controls = 0; // first session port
    int numControls = 0;
    int total = 0;
    // An effect that takes the host's time but no MIDI: its atom input takes time
    // positions only, comes after the session's ports (so that giving a released effect
    // host time moves none of its ports) and may be left unconnected.
    bool timeOnly = false;
    // Atom ports (input and output, before the latency port) only where MIDI or messages
    // arrive: instruments, the loader, effects with a port that follows a MIDI CC. An
    // effect with host time and none of these has a time input alone, last. (Plain
    // effects then run in any host, lv2apply included.)
    static PortLayout of(const SessionSpec& spec, int numControls, bool events);
    static bool needsEvents(const SessionSpec& spec);
};

// The loader plugin: any session file, given through a path parameter.
inline constexpr const char* kLoaderUri = "urn:spinout:loader";
inline constexpr const char* kLoaderSessionParam = "urn:spinout:loader#session";
inline constexpr int kLoaderControls = 16;
inline constexpr int kLoaderInputs = 2;
inline constexpr int kLoaderOutputs = 2;

// Something that cannot be written as Turtle data (an unsafe IRI, a non-finite number).
class TtlError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// "" when `iri` is an absolute IRI that Turtle holds between < and > as it is:
// scheme ":" rest (RFC 3987's shape), none of <>"{}|\^` , spaces or control
// characters, every % followed by two hex digits. Otherwise what is wrong.
std::string iriProblem(std::string_view iri);
// Text made safe for an IRI's fragment: every byte outside A-Z a-z 0-9 - . _ ~ as %XX.
std::string iriEncode(std::string_view text);

// The LV2 plugin class (local name in lv2core, e.g. "DelayPlugin") of a `category`
// name ("delay"); "" when there is no such category.
std::string lv2ClassOf(const std::string& category);
// Every category name, for error messages.
const std::vector<std::string>& lv2Categories();

std::string manifestTtl(const SessionSpec& spec, const std::string& binary);
std::string pluginTtl(const SessionSpec& spec);
std::string presetsTtl(const SessionSpec& spec);

std::string loaderManifestTtl(const std::string& binary);
std::string loaderTtl();

} // namespace spinout
