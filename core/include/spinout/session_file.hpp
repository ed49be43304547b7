// The session file (TOML): parsed into a SessionSpec, which Processor builds.
// The contract is ../shared/session-format.md; every error names file, line and column.
#pragma once

#include "spinout/instr.hpp"
#include "spinout/session.hpp"

#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace spinout {

struct SourcePos {
    std::string file;
    int line = 0;
    int column = 0;
};

struct Diagnostic {
    SourcePos pos;
    std::string message;
    std::string str() const; // "file:line:column: message"
};

// One or more errors in a session (or score) file.
class SessionFileError : public std::runtime_error {
public:
    explicit SessionFileError(std::vector<Diagnostic> diagnostics);
    const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }

private:
    std::vector<Diagnostic> diagnostics_;
};

// An arg value as written in a session or score file: a number, a string, or "bus:NAME".
struct SpecValue {
    std::variant<double, std::string> value;
    std::string bus; // non-empty: the bus of that name
    SourcePos pos;
};
using SpecArgs = std::vector<std::pair<std::string, SpecValue>>;

struct InstrSpec {
    std::string name;
    std::optional<int> priority;
    std::string body;
    std::string init;
    std::string doc;
    ArgList args;
    SourcePos pos;
    int bodyLine = 0;                   // file line of the body's first line
    std::shared_ptr<const Instr> instr; // the parsed template
};

struct BusSpec {
    std::string name;
    BusKind kind = BusKind::audio;
    double value = 0;
    SourcePos pos;
};

struct RunSpec {
    std::string instr;
    std::optional<int> priority;
    SpecArgs args;
    SourcePos pos;
};

struct MidiSpec {
    std::string instr;
    std::string pitch;    // arg receiving the note number (plus bend)
    std::string velocity; // arg receiving velocity / 127
    int voices = 32;
    double bendRange = 2;
    std::optional<int> priority;
    SpecArgs args;
    SourcePos pos;
};

enum class PortScale { linear, log, integer, toggle, enumeration };

struct PortTarget {
    enum Kind { control, bus, channel } kind = control;
    std::string instr; // control: instr name
    std::string name;  // control: arg; bus: bus name; channel: channel name
};

struct PortSpec {
    std::string symbol;
    std::string name;
    PortTarget target;
    std::string targetText;
    double min = 0;
    double max = 1;
    double def = 0;
    std::string unit;
    PortScale scale = PortScale::linear;
    std::vector<std::string> choices;
    std::optional<int> midiCC;
    SourcePos pos;
};

struct PresetSpec {
    std::string name;
    std::string label;
    std::vector<std::pair<std::string, double>> values; // port symbol -> value
    SourcePos pos;
};

struct SessionSpec {
    std::string path; // the session file
    std::string dir;  // its folder: relative paths resolve against it
    std::string text; // the file as read
    std::string name;
    std::string uri;
    enum Kind { instrument, effect } kind = instrument;
    std::string doc;
    int audioInputs = 0;
    int audioOutputs = 2;
    int ksmps = 64;
    double a4 = 440;
    std::vector<std::string> includes;
    std::string globals;
    int globalsLine = 0;
    std::vector<InstrSpec> instrs;
    std::vector<BusSpec> buses;
    std::vector<RunSpec> runs;
    std::optional<MidiSpec> midi;
    std::vector<PortSpec> ports;
    std::vector<PresetSpec> presets;

    const InstrSpec* instr(const std::string& n) const;
    const BusSpec* bus(const std::string& n) const;
    const PortSpec* port(const std::string& symbol) const;
    int portIndex(const std::string& symbol) const; // -1 when none
    const PresetSpec* preset(const std::string& n) const;
};

// Limits checked before anything is built, so that an oversized session is refused in
// a fraction of a second instead of taking minutes and gigabytes: the file's size (toml++
// needs about 20 times the text in memory) and the number of instrs (each is compiled into
// Csound; instr numbers leave room for 998 templates at each priority, and spinout keeps
// some for itself).
inline constexpr std::size_t kMaxSessionBytes = 4u << 20;
inline constexpr int kMaxSessionInstrs = 990;

// Parses and checks a session file; throws SessionFileError with every error found.
SessionSpec parseSessionFile(const std::string& path);
SessionSpec parseSessionText(const std::string& text, const std::string& path);

// The port value a normalized 0..1 position (a MIDI CC / 127) stands for.
double portValueFromUnit(const PortSpec& port, double unit);
// A value brought into the port's range and onto its steps.
double clampPortValue(const PortSpec& port, double value);

// Levenshtein-closest candidate within a small distance, or "".
std::string closestName(const std::string& word, const std::vector<std::string>& candidates);
// "; did you mean 'HINT'?", or "" without a hint: the tail of an error message.
std::string didYouMean(const std::string& hint);

} // namespace spinout
