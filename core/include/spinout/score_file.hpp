// The score file (TOML) for `spinout render --score`: tables, events, samples, sets,
// automation and releases against a session's instrs, ports and buses
// (docs/session-format.md). A score is read a part at a time and kept as its text and an
// index: an entry's data is read again when it plays, so a score of any length costs its
// text and a few bytes an entry, not a tree of it.
#pragma once

#include "spinout/session_file.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
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

// A part of a score's text: from a table header to the next.
struct ScorePart {
    std::size_t begin = 0, size = 0;
    int line = 1; // the line it starts on
};

// Where an entry stands in the score's text; its data is read again when it plays.
struct ScoreEntry {
    enum Kind : std::uint8_t { event, sample, set, automation, unsched } kind = event;
    double time = 0;
    std::uint32_t part = 0; // the part of the text it is in
    std::uint32_t item = 0; // its place in that part's array ([[event]] holds one)
};

class Score {
public:
    Score() = default;
    // Reads and checks a score; throws SessionFileError with every error found.
    Score(std::string text, std::string path, const SessionSpec& session);

    const std::string& path() const noexcept { return path_; }
    const std::vector<TableSpec>& tables() const noexcept { return tables_; }
    // Every event, sample, set, automation and release, in the file's order.
    const std::vector<ScoreEntry>& entries() const noexcept { return entries_; }
    // When the last entry ends (held events count from their start; a sample played to its
    // end counts from its start: its length is the file's).
    double end() const noexcept { return end_; }

    // An entry's data. Each reads its part of the text again.
    ScoreEvent event(const ScoreEntry& e) const;
    ScoreSample sample(const ScoreEntry& e) const;
    ScoreSet set(const ScoreEntry& e) const;
    ScoreAutomation automation(const ScoreEntry& e) const;
    ScoreUnsched unsched(const ScoreEntry& e) const;

private:
    friend struct ScoreReader;
    struct Started {
        double time = 0;
        const Instr* instr = nullptr;
    };
    std::string text_;
    std::string path_;
    const SessionSpec* session_ = nullptr;
    std::vector<ScorePart> parts_;
    std::vector<TableSpec> tables_;
    std::vector<ScoreEntry> entries_;
    std::unordered_map<std::string, Started> ids_; // events and samples by id
    double end_ = 0;
};

// The session must outlive the score.
Score parseScoreFile(const std::string& path, const SessionSpec& session);
Score parseScoreText(const std::string& text, const std::string& path, const SessionSpec& session);

} // namespace spinout
