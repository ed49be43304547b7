// The score file (TOML) for `spinout render --score`: events, sets and automation
// against a session's instrs and ports, in the README's format reference.
#pragma once

#include "spinout/session_file.hpp"

#include <optional>
#include <string>
#include <vector>

namespace spinout {

struct ScoreEvent {
    std::string id;
    std::string instr;
    double time = 0;
    double dur = -1;
    std::optional<int> priority;
    SpecArgs args;
    SourcePos pos;
};

struct ScoreSet {
    std::string event;
    double time = 0;
    std::vector<std::pair<std::string, double>> args;
    SourcePos pos;
};

struct ScoreAutomation {
    // one of these three is the target
    std::string event; // an event's (or sample's) k-arg `param`
    std::string port;
    std::string bus; // a control bus
    std::string param;
    std::vector<double> pairs;
    double time = 0;
    AutomationMode mode;
    bool overtake = false; // start from the target's current value, not the first pair's
    SourcePos pos;
};

// Releases an event (or sample), or every instance the score started.
struct ScoreUnsched {
    std::string event; // or
    bool all = false;
    double time = 0;
    bool release = true; // let the release tail play
    SourcePos pos;
};

// Plays a table made from a sound file (csoundengine's playSample).
struct ScoreSample {
    std::string id;
    std::string table;
    double time = 0;
    double dur = 0; // 0: to the sample's end (until the render's end when looping)
    int chan = 1;   // the first output channel
    double gain = 1;
    double speed = 1; // and pitch: 2 plays an octave up
    double pan = -1;  // 0 left .. 1 right for a mono sample; -1 to `chan` alone
    double skip = 0;  // seconds into the sample to start from
    bool loop = false;
    SourcePos pos;
};

struct Score {
    std::vector<TableSpec> tables;
    std::vector<ScoreEvent> events;
    std::vector<ScoreSample> samples;
    std::vector<ScoreSet> sets;
    std::vector<ScoreAutomation> automations;
    std::vector<ScoreUnsched> unscheds;
    // When the last event, set, automation or release ends (held events count from their
    // start; a sample played to its end counts from its start: its length is the file's).
    double end() const;
};

Score parseScoreFile(const std::string& path, const SessionSpec& session);
Score parseScoreText(const std::string& text, const std::string& path, const SessionSpec& session);

} // namespace spinout
