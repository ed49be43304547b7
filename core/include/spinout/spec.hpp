// The parsed session: plain data at the bottom of the core. The session file
// parser fills it; Processor builds a running session from it; the Turtle
// writer and the command read it. Nothing here runs Csound.
#pragma once

#include "spinout/instr.hpp"
#include "spinout/permission.hpp"

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
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

enum class BusKind { audio, control };

// How automation moves between two breakpoints.
struct AutomationMode {
    enum Shape { linear, cos, expon, smooth } shape = linear;
    double exponent = 1.0;
    // "linear", "cos", "expon(X)", "smooth"; nothing for anything else
    static std::optional<AutomationMode> parse(std::string_view text);
};

// An arg value as written in a session or score file: a number, a string, "bus:NAME"
// or "table:NAME".
struct SpecValue {
    std::variant<double, std::string> value;
    std::string bus;   // non-empty: the bus of that name
    std::string table; // non-empty: the number of the table of that name
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
    int initLine = 0;                   // file line of the init code's first line
    std::shared_ptr<const Instr> instr; // the parsed template
};

// The longest time anything is given (a render's length, a score's times): 11.6 days.
inline constexpr double kMaxSeconds = 1e6;

// The most points a table of a session file may have (the memory budget of a table).
inline constexpr int kMaxTableSize = 1 << 24;

// A table made before anything plays ([table.NAME]): from values, a GEN routine, or a
// sound file. Csound code reads its number as gi_NAME; args take it as "table:NAME".
struct TableSpec {
    std::string name;
    enum Source { fromValues, fromGen, fromFile } source = fromValues;
    std::vector<double> values; // values; gen: the routine's arguments
    int gen = 0;                // gen: the routine's number (negative: not normalized)
    int size = 0;               // gen: the table's size
    std::string file;           // file: as written, relative to its file's folder
    std::string path;           // file: resolved
    int channel = 0;            // file: 0 all channels (interleaved), else that one
    SourcePos pos;
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

// A port whose value is in beats (unit = "beat") may reach its target converted to
// time at the host's tempo (`to`): a delay of "1/8 note" follows the tempo.
enum class BeatConversion { none, seconds, ms };

struct PortSpec {
    std::string symbol;
    std::string name;
    bool output = false; // an output port shows `target` (a control bus or channel) to the host
    PortTarget target;   // an input port's target; an output port's source
    std::string targetText;
    double min = 0;
    double max = 1;
    double def = 0;
    std::string unit;
    PortScale scale = PortScale::linear;
    std::vector<std::string> choices;
    // An enum port's value for each choice as its target gets it (empty: the index).
    std::vector<double> choiceValues;
    BeatConversion to = BeatConversion::none; // unit = "beat" only
    std::optional<int> midiCC;
    SourcePos pos;
};

struct PresetSpec {
    std::string name;
    std::string label;
    std::vector<std::pair<std::string, double>> values; // port symbol -> value
    SourcePos pos;
};

// What a host shows of the plugin: [session] author, license, version and category.
// Every IRI here has passed iriProblem() (ttl.hpp).
struct PluginMeta {
    std::string authorName;     // "" when the session names no author
    std::string authorEmail;    // a mailto: IRI, or ""
    std::string authorHomepage; // an IRI, or ""
    std::string license;        // an IRI (an SPDX id becomes https://spdx.org/licenses/ID), or ""
    int major = 0, minor = 0, micro = 0; // LV2 carries minor and micro; the URI is the major
    std::string lv2Class; // the LV2 class's local name ("DelayPlugin"); "": lv2:Plugin only
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
    std::vector<std::pair<Permission, SourcePos>> permissions; // what the session declares
    // The host's tempo and transport reach the session (host.* channels; a time:Position
    // input in the plugin): [session] host_time, or a port converted from beats.
    bool hostTime = false;
    int ksmps = 64;
    double a4 = 440;
    PluginMeta meta;
    std::vector<std::string> includes;
    std::vector<SourcePos> includePos; // where each include is named
    std::string globals;
    int globalsLine = 0;
    std::vector<InstrSpec> instrs;
    std::vector<TableSpec> tables;
    std::vector<BusSpec> buses;
    std::vector<RunSpec> runs;
    std::optional<MidiSpec> midi;
    std::vector<PortSpec> ports;
    std::vector<PresetSpec> presets; // in file order: program change N applies the N-th

    const InstrSpec* instr(const std::string& n) const;
    const BusSpec* bus(const std::string& n) const;
    const TableSpec* table(const std::string& n) const;
    const PortSpec* port(const std::string& symbol) const;
    int portIndex(const std::string& symbol) const; // -1 when none
    const PresetSpec* preset(const std::string& n) const;
    int busIndex(const std::string& n) const; // -1 when none
};

} // namespace spinout
