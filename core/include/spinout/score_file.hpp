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
    std::string event; // or
    std::string port;
    std::string param;
    std::vector<double> pairs;
    double time = 0;
    AutomationMode mode;
    SourcePos pos;
};

struct Score {
    std::vector<ScoreEvent> events;
    std::vector<ScoreSet> sets;
    std::vector<ScoreAutomation> automations;
    // When the last event, set or automation ends (held events count from their start).
    double end() const;
};

Score parseScoreFile(const std::string& path, const SessionSpec& session);
Score parseScoreText(const std::string& text, const std::string& path, const SessionSpec& session);

} // namespace spinout
