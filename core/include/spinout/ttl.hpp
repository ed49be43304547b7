// The Turtle of a session's plugin, generated from the session file (the one
// source of truth for ports). Text only: nothing here includes LV2.
#pragma once

#include "spinout/spec.hpp"

#include <string>

namespace spinout {

// Port indices of a session's plugin. Session ports come last, in file order,
// so that a session can add ports without moving the others.
struct PortLayout {
    int audioIn = 0; // first audio input
    int numIn = 0;
    int audioOut = 0; // first audio output
    int numOut = 0;
    int events = -1;  // atom input: MIDI and patch messages (-1: none)
    int notify = -1;  // atom output: patch messages (-1: none)
    int latency = 0;  // control output
    int controls = 0; // first session port
    int numControls = 0;
    int total = 0;
    // Atom ports only where MIDI or messages arrive: instruments, the loader, effects
    // with a port that follows a MIDI CC. (Plain effects then run in any host,
    // lv2apply included.)
    static PortLayout of(const SessionSpec& spec, int numControls, bool events);
    static bool needsEvents(const SessionSpec& spec);
};

// The loader plugin: any session file, given through a path parameter.
inline constexpr const char* kLoaderUri = "urn:spinout:loader";
inline constexpr int kLoaderControls = 16;
inline constexpr int kLoaderInputs = 2;
inline constexpr int kLoaderOutputs = 2;

std::string manifestTtl(const SessionSpec& spec, const std::string& binary);
std::string pluginTtl(const SessionSpec& spec);
std::string presetsTtl(const SessionSpec& spec);

std::string loaderManifestTtl(const std::string& binary);
std::string loaderTtl();

} // namespace spinout
