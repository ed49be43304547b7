// spinout::Instr: an instrument template in the style of csoundengine.
// Named arguments come inline (|iamp=0.1, kfreq=1000|), from an args map that
// overrides inline defaults, or from `pset` with `name = pN` assignments.
// i- and S-args travel as pfields from p5 on (p4 is reserved for the control
// slot); k-args are dynamic controls read every cycle from the control table.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace spinout {

using ArgValue = std::variant<double, std::string>;
using ArgList = std::vector<std::pair<std::string, ArgValue>>;

// An error in an instr template; `line` is 1-based inside the body (0: none).
class InstrError : public std::runtime_error {
public:
    InstrError(const std::string& what, int line = 0) : std::runtime_error(what), line(line) {}
    int line;
};

struct InstrArg {
    std::string name;
    ArgValue value; // the default
    int index = 0;  // pfield number (5, 6, ...) or control index (0, 1, ...)
    bool isControl() const { return name.front() == 'k'; }
    bool isString() const { return name.front() == 'S'; }
};

class Instr {
public:
    Instr(std::string name, std::string body, const ArgList& args = {}, std::string init = "",
          std::string doc = "", std::optional<int> priority = std::nullopt);

    const std::string& name() const { return name_; }
    const std::string& body() const { return body_; }
    const std::string& init() const { return init_; }
    const std::string& doc() const { return doc_; }
    std::optional<int> priority() const { return priority_; }

    // Arguments in declaration order.
    const std::vector<InstrArg>& args() const { return args_; }
    const InstrArg* arg(std::string_view name) const;
    const std::vector<InstrArg>& pfields() const { return pfields_; }
    const std::vector<InstrArg>& controls() const { return controls_; }
    // The highest pfield the instr reads (4 when it has no pfield args).
    int maxPfield() const { return maxPfield_; }

    // The Csound code of this template as instrument `number`.
    std::string code(int number) const;
    // Lines the generated code puts before the first body line.
    int headerLines() const;

private:
    void parseInlineArgs();
    void parsePset();
    void applyArgMap(const ArgList& args);
    void checkReservedP4() const;
    void index();

    std::string name_;
    std::string body_;     // as written
    std::string codeBody_; // the body with the inline args line blanked, pfield controls rewritten
    std::string init_;
    std::string doc_;
    std::optional<int> priority_;
    std::vector<InstrArg> args_;
    std::vector<InstrArg> pfields_;
    std::vector<InstrArg> controls_;
    std::vector<double> psetDefaults_; // p5, p6, ... from pset
    int maxPfield_ = 4;
};

// A line of orchestra code that sets what spinout decides (sr, kr, ksmps, nchnls,
// nchnls_i, 0dbfs, A4): Csound would ignore it after the engine's own header.
struct HeaderStatement {
    int line = 0; // 1-based, in the code
    std::string name;
};
std::optional<HeaderStatement> hostHeaderStatement(const std::string& code);

// What Csound 6.18's parser mishandles in code compiled from a string: a `/*` comment that
// nothing closes (it reads past the end and crashes; a "..." string may span lines there,
// so `"` newline `" /*` is such a comment), a `{{` or `"` string that nothing closes (it
// leaks what it read), a byte 0xff (it takes it for the end of the file: in a `;` comment,
// what follows is code again) or 0x00, a `\` outside a string that does not end its line
// (it escapes the next character: `\//*` opens a comment), a `\` before `;` in a string,
// and the preprocessor's raw reads: a #define with arguments or with a body holding
// string or comment marks, #ifdef/#ifndef/#else/#end/#undef/#exit/###, and a malformed
// #include (all crashed it, found by fuzzing and attacks). A lone CR ends a line comment
// there. The first one found, or nothing.
struct ParserTrap {
    int line = 0;        // 1-based, in the code
    std::string message; // "a comment opened with /* is never closed with */"
};
// `view`, when given and no trap is found: the code as Csound's preprocessor acts on it,
// the same length and lines, with comments, {{ }} strings and what follows an #include's
// name on its line blanked (it skips comments, copies a {{ }} string raw, and drops the
// rest of an #include line: no #include, #define or $NAME acts there). `directives`: the
// same with the text of "strings" blanked too, where $NAME acts but no #define or #include.
std::optional<ParserTrap> parserTrap(const std::string& code, std::string* view = nullptr,
                                     std::string* directives = nullptr);

// Where Csound's preprocessor sees the next #define from `from` on: `#`, then any spaces or
// tabs, then `define` (`# define` and `#\tdefine` define macros too). npos: none.
std::size_t findDefine(std::string_view code, std::size_t from);

// Every well-formed `#define NAME #body#` in the code, in order, wherever it stands: Csound's
// preprocessor acts on it in strings and comments too (parserTrap refuses the others).
struct MacroDefinition {
    std::string name;
    std::string body;
    int line = 0;       // 1-based, in the code
    std::size_t at = 0; // where its # stands
};
std::vector<MacroDefinition> macroDefinitions(const std::string& code);

// Every $NAME in the code (a name: a letter or _, then letters, digits or _), in order;
// in a parserTrap view, each one Csound's preprocessor expands, in strings too.
struct MacroUse {
    std::string name;
    int line = 0;
    std::size_t at = 0;
};
std::vector<MacroUse> macroUses(std::string_view code);

// The `#include` (or `#includestr`) at `pos` as Csound's preprocessor reads it: the name
// between a delimiter (the first character after spaces and tabs; `"` for #includestr) and
// the same character again on that line. Nothing when it is not well formed (parserTrap
// refuses such a line; Csound would ignore it, or worse).
struct IncludeName {
    std::string name;
    std::size_t end = 0; // past the closing delimiter: Csound drops the rest of the line
};
std::optional<IncludeName> includeNameAt(std::string_view text, std::size_t pos);

} // namespace spinout
