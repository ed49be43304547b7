// The policy check (see policy.hpp): walks what Csound will run, as Csound's parser sees
// it, against the permissions granted. Runs off the audio thread, before every load.
#include "spinout/policy.hpp"
#include "spinout/support.hpp"

#include "spinout/engine.hpp"
#include "spinout/session.hpp"
#include "spinout/text_file.hpp"
#include "spinout/warm_up.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <system_error>

namespace spinout {

namespace fs = std::filesystem;

namespace {

// The engine's opcodes (Engine::kKeepRandomOpcode...) and the calibration's: spinout calls
// them, session code never does, whatever it is granted.
bool isSpinoutsOwn(std::string_view opcode) {
    return opcode.rfind("spinout__", 0) == 0;
}

// The name in a UDO's signature as OrcParse::udoSignatures writes it ("busin,a,k").
std::string udoName(const std::string& signature) {
    return signature.substr(0, signature.find(','));
}

std::string_view what(Permission p) {
    switch (p) {
    case Permission::exec:
        return "runs commands or code the check cannot see";
    case Permission::write:
        return "writes files";
    case Permission::read:
        return "reads outside the session's folder";
    case Permission::net:
        return "uses the network";
    case Permission::native:
        return "loads native code";
    case Permission::memory:
        return "allocates beyond the memory budget";
    }
    return "";
}

// The file arguments of an opcode: the positions that are strings (S) in any of its
// overloads in Csound's own list.
const std::map<std::string, std::vector<int>>& stringArgs() {
    static const std::map<std::string, std::vector<int>> args = [] {
        std::map<std::string, std::vector<int>> out;
        for (const auto& e : csoundOpcodes()) {
            auto& v = out[e.name];
            for (std::size_t i = 0; i < e.inTypes.size(); ++i)
                if ((e.inTypes[i] == 'S' || e.inTypes[i] == 'T') &&
                    std::find(v.begin(), v.end(), static_cast<int>(i)) == v.end())
                    v.push_back(static_cast<int>(i));
        }
        return out;
    }();
    return args;
}

// GEN routines (Csound 6.18's fgens.c and the named GENs of its plugins).
bool knownGen(int gen) {
    static const std::set<int> gens = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14,
                                       15, 16, 17, 18, 19, 20, 21, 23, 24, 25, 27, 28, 30, 31,
                                       32, 33, 34, 40, 41, 42, 43, 44, 49, 51, 52, 53};
    return gens.count(gen) != 0;
}
// GENs that read the file their first argument (p5) names, and how many bytes of
// table one byte of the file can become at most (for a deferred size).
std::optional<double> fileGenExpansion(int gen) {
    switch (gen) {
    case 1:
        return 8.0; // 8-bit PCM at worst
    case 23:
        return 4.0; // text: "1 " is one number
    case 28:
        return 4.0;
    case 43:
        return 2.0;
    case 44:
        return 4.0;
    case 49:
        return 64.0; // MP3
    default:
        return std::nullopt;
    }
}
const std::set<std::string> kNamedGens = {"tanh", "exp",      "sone",      "farey",
                                          "wave", "padsynth", "quadbezier"};

// Allocations sized by a constant init-time argument.
struct Allocation {
    int arg;
    enum Unit { seconds, milliseconds } unit;
};
const std::map<std::string, Allocation> kAllocations = {
    {"delayr", {0, Allocation::seconds}},       {"delay", {1, Allocation::seconds}},
    {"comb", {2, Allocation::seconds}},         {"alpass", {2, Allocation::seconds}},
    {"combinv", {2, Allocation::seconds}},      {"vcomb", {3, Allocation::seconds}},
    {"valpass", {3, Allocation::seconds}},      {"vdelay", {2, Allocation::milliseconds}},
    {"vdelay3", {2, Allocation::milliseconds}}, {"vdelayx", {2, Allocation::seconds}},
    {"vdelayxq", {5, Allocation::seconds}},     {"vdelayxs", {3, Allocation::seconds}},
    {"vdelayxw", {2, Allocation::seconds}},     {"vdelayxwq", {5, Allocation::seconds}},
    {"vdelayxws", {3, Allocation::seconds}},    {"flanger", {3, Allocation::seconds}},
};

// A string constant's value as Csound makes it (unquote_string in csound_orc_compile.c,
// 6.18), from the token's text: its quotes (a {{ }} string's token has them too) dropped,
// \a \b \f \n \r \t \v \" \\ and up to three octal digits turned into their byte; any
// other backslash stays, with what follows it; a backslash before the closing quote reads
// the quote. Code given to compilestr is checked as this text, so it must be Csound's to
// the byte: a backslash-newline this once dropped is a line continuation to Csound, and
// a check that read `system_i` as string data let it run (found by attack).
std::string unquote(const std::string& literal) {
    std::string out;
    const std::size_t n = literal.size() < 2 ? 0 : literal.size() - 1;
    for (std::size_t i = 1; i < n; ++i) {
        if (literal[i] != '\\') {
            out += literal[i];
            continue;
        }
        const char c = literal[++i];
        switch (c) {
        case 'a':
            out += '\a';
            break;
        case 'b':
            out += '\b';
            break;
        case 'f':
            out += '\f';
            break;
        case 'n':
            out += '\n';
            break;
        case 'r':
            out += '\r';
            break;
        case 't':
            out += '\t';
            break;
        case 'v':
            out += '\v';
            break;
        case '"':
            out += '"';
            break;
        case '\\':
            out += '\\';
            break;
        default:
            if (c >= '0' && c <= '7') {
                int v = c - '0';
                for (int k = 1; k < 3 && i + 1 < literal.size() && literal[i + 1] >= '0' &&
                                literal[i + 1] <= '7';
                     ++k)
                    v = (v << 3) | (literal[++i] - '0');
                out += static_cast<char>(v);
            } else {
                out += '\\';
                --i;
            }
        }
    }
    return out;
}

// Where a MIDI opcode takes a channel (its first argument) and controller numbers.
struct MidiNumbers {
    bool channel;
    std::size_t first, count, step; // controllers: `count` of them from `first`, `step` apart
};
std::optional<MidiNumbers> midiNumbers(std::string_view opcode) {
    static const std::map<std::string_view, MidiNumbers> numbers = {
        {"ctrl7", {true, 1, 1, 1}},    {"ctrl14", {true, 1, 2, 1}},
        {"ctrl21", {true, 1, 3, 1}},   {"initc7", {true, 1, 1, 1}},
        {"initc14", {true, 1, 2, 1}},  {"initc21", {true, 1, 3, 1}},
        {"midic7", {false, 0, 1, 1}},  {"midic14", {false, 0, 2, 1}},
        {"midic21", {false, 0, 3, 1}}, {"ctrlinit", {true, 1, 64, 2}}, // pairs: number, value
    };
    const auto it = numbers.find(opcode);
    if (it == numbers.end()) return std::nullopt;
    return it->second;
}

// The characters of Csound's operators, which its parser nests one level each.
constexpr const char* kOperators = "+-*/%^&|<>=!?:";

bool inside(const fs::path& path, const fs::path& folder) {
    auto p = path.begin();
    for (auto f = folder.begin(); f != folder.end(); ++f, ++p) {
        if (f->empty()) continue; // a trailing separator
        if (p == path.end() || *p != *f) return false;
    }
    return true;
}

std::optional<fs::path> realPath(const fs::path& p) {
    std::error_code ec;
    if (!fs::exists(p, ec)) return std::nullopt;
    auto r = fs::canonical(p, ec);
    if (ec) return std::nullopt;
    return r;
}

// One piece of code as Csound compiles it, and how its lines map to a file.
struct Piece {
    std::string text;
    std::string file;  // where its lines are reported
    int firstLine = 1; // file line of the text's first line
    int skipLines = 0; // generated lines before the first line written by the user
    SourcePos fallback;
    std::string where;    // "[engine] globals", "instr 'voice'", ...
    bool wrapped = false; // a template's body: spinout's `instr N` line comes before it

    // A line spinout wrote: a template's `instr N` line and the header before its body.
    bool spinoutsLine(int line, bool included) const {
        return wrapped && !included && line <= skipLines;
    }
};

// Where the check gets Csound's parse of each piece.
enum class Parsing {
    scratch, // its own parser, a Csound instance never started (checkPolicy)
    engine,  // the engine's, as it compiles each piece (PolicyGate); its own parser only for
             // code compiled at run time, made when such code turns up
    none,    // none: only the #include lines are followed (codeIncludes)
};

// An [engine].includes file, named `name` in the session, read from `file`.
Piece includePiece(const std::string& name, const fs::path& file, const SourcePos& pos,
                   std::string text) {
    Piece p;
    p.text = std::move(text);
    p.file = file.string();
    p.fallback = pos;
    p.where = fmt::format("include file '{}'", name);
    return p;
}

class Checker {
public:
    Checker(const Grants& grants, std::string folder, Parsing parsing = Parsing::scratch,
            const SessionSpec* spec = nullptr)
        : grants_(grants), folder_(std::move(folder)), parsing_(parsing), spec_(spec) {
        std::error_code ec;
        folderReal_ = fs::weakly_canonical(fs::absolute(folder_), ec);
        cwdReal_ = fs::weakly_canonical(fs::current_path(ec), ec);
        if (parsing == Parsing::scratch) startParser();
        if (parsing == Parsing::engine)
            for (const auto& signature : support::udoSignatures()) {
                udos_.insert(udoName(signature));
                udoSignatures_.insert(signature);
            }
    }

    // The permissions the session declares, and the files spinout reads for it: the
    // [engine].includes (with `code`, what they hold too) and the [table.NAME] sound files.
    void checkSessionFiles(const SessionSpec& spec, bool code);
    void checkEngineInclude(const std::string& name, const SourcePos& pos);
    // The include file's name alone: whether spinout may read it for the session.
    bool includeNameAllowed(const std::string& name, const SourcePos& pos);
    // The files the piece's #include lines have Csound read, nested ones too, as found.
    void collectIncludes(const Piece& piece, std::vector<std::string>& files) {
        Views views;
        if (parserTrap(piece.text, &views.code, &views.directives))
            views = {piece.text, piece.text}; // every #include, to be sure
        scanIncludes(
            piece, piece.text, views, ".", 0, files, [&](int l) { return position(piece, l); },
            nullptr);
    }
    void checkTableFile(const TableSpec& table);
    void checkPiece(const Piece& piece, int depth = 0);
    // What the check reads before Csound does (control characters, parser traps, macros,
    // #include'd files): the files the piece includes, or nothing when Csound must not
    // read it.
    // `runTime`: code compiled at run time (a compilestr literal).
    std::optional<std::vector<std::string>> readable(const Piece& piece, bool runTime = false);
    // Csound's parse of a readable piece, and the files it includes.
    void checkParsed(const Piece& piece, const OrcParse& parsed, std::vector<std::string> files,
                     int depth = 0);
    // Engine parsing: a piece the engine is about to compile, for the parser that code
    // compiled at run time may need later.
    // Off: allocations are not counted (code read before, compiled again).
    void counting(bool on) { counting_ = on; }
    void compiling(const std::string& text) {
        compiled_.push_back(text);
        if (parser_) (void)parser_->parse(text); // it follows the engine from when it is made
    }
    // False when a macro would make Csound's parser give up: nothing of it may be parsed.
    bool checkMacros(const std::string& text, const std::function<SourcePos(int)>& at);

    void checkDeclared(const SessionSpec& spec);
    // The globals gi_NAME of the session's tables, which spinout's own code makes before
    // the instrs are compiled: known to the instr code the check parses after.
    void declareTables(const SessionSpec& spec) {
        if (!parser_ || !parser_->usable() || spec.tables.empty()) return;
        std::string code;
        for (const auto& t : spec.tables)
            code += fmt::format("gi_{} init 0\n", t.name);
        if (const auto declared = parser_->parse(code); !declared.ok)
            internalError("the tables' globals do not parse: " + declared.error);
    }

    // Where a statement of the piece last checked stands in the session's files: its line,
    // or in the one file the piece #includes, that file's line (in several: the piece's
    // fallback, as for spinout's own lines).
    SourcePos statementPosition(const Piece& piece, int line, bool included) const {
        if (!included) return position(piece, line);
        return included_.size() == 1 ? SourcePos{included_.front(), line, 1} : piece.fallback;
    }

    std::vector<Diagnostic> diagnostics;

private:
    void refuse(const SourcePos& pos, Permission p, const std::string& subject,
                const std::string& detail = "") {
        if (grants_.has(p)) return;
        diagnostics.push_back(
            {pos, fmt::format("{} needs the '{}' permission ({}{}{})", subject, permissionName(p),
                              what(p), detail.empty() ? "" : ": ", detail)});
    }
    void error(const SourcePos& pos, const std::string& message) {
        diagnostics.push_back({pos, message});
    }
    void internalError(const std::string& message) {
        diagnostics.push_back({{folder_, 0, 0}, "the policy check failed: " + message});
    }

    void startParser() {
        parser_.emplace(folder_);
        // The support code is spinout's own: parsed for its UDOs and globals, not checked.
        const auto support = parser_->parse(support::declarations({}));
        for (const auto& u : support.udos)
            udos_.insert(u);
        udoSignatures_.insert(support.udoSignatures.begin(), support.udoSignatures.end());
        if (!support.ok) internalError("the support code does not parse: " + support.error);
    }
    // A parser for a piece's own: with engine parsing, made on first need and given what
    // the engine compiled before (the tables' globals, then every piece in its order).
    bool parserReady() {
        if (!parser_ && parsing_ == Parsing::engine) {
            startParser();
            if (spec_ != nullptr) declareTables(*spec_);
            for (const auto& text : compiled_)
                (void)parser_->parse(text);
        }
        return parser_ && parser_->usable();
    }

    SourcePos position(const Piece& piece, int line) const {
        if (line <= 0) return piece.fallback;
        const int userLine = line - piece.skipLines;
        if (userLine <= 0) return piece.fallback;
        return {piece.file, piece.firstLine + userLine - 1, 1};
    }

    // Why Csound may not read `name` (resolved as Csound does: the current directory
    // first, then the session's folder), or nothing when it may.
    std::optional<std::string> readRefusal(std::string name) const;
    // `views`: the text as Csound's preprocessor acts on it (parserTrap). `known`: the
    // macros defined where the text starts, which it adds to in order (nullptr: none).
    struct Views {
        std::string code;       // where $NAME acts
        std::string directives; // where #define and #include act
    };
    bool scanIncludes(const Piece& piece, const std::string& text, const Views& views,
                      const std::string& path, int depth, std::vector<std::string>& files,
                      const std::function<SourcePos(int)>& at, std::set<std::string>* known);
    // What Csound's parser cannot take: a statement of thousands of operators (it recurses
    // once for each), more code than it parses in seconds. False: refused.
    bool checkSize(const std::string& view, const std::function<SourcePos(int)>& at);
    void checkCall(const OrcCall& call, const Piece& piece, int depth);
    void checkFileArg(const OrcArg& arg, const OrcCall& call, const SourcePos& pos, bool write);
    void checkTable(const OrcCall& call, std::size_t first, const SourcePos& pos, bool runTime);
    void checkTableNumber(const OrcArg& number, const SourcePos& pos, const std::string& subject,
                          bool runTime);
    void checkGen(const OrcArg& gen, const OrcArg& size, const std::vector<OrcArg>& args,
                  const SourcePos& pos, const std::string& subject);
    void checkScore(const std::string& score, const OrcCall& call, const SourcePos& pos);
    void count(double bytes, const SourcePos& pos, const std::string& subject);

    const Grants& grants_;
    std::string folder_;
    fs::path folderReal_;
    fs::path cwdReal_;
    Parsing parsing_;
    const SessionSpec* spec_;
    std::optional<OrcParser> parser_;
    std::vector<std::string> compiled_; // engine parsing: the pieces so far, in order
    std::set<std::string> udos_;
    std::set<std::string> udoSignatures_; // of every UDO defined so far ("busin,a,k")
    std::map<std::string, std::pair<std::string, SourcePos>> macros_; // body, where defined
    struct Expansion {
        std::size_t bytes = 0, operators = 0, lines = 0;
    };
    std::map<std::string, Expansion> expansions_; // what each macro's use becomes
    // Whether macro `name` with `body` leads back to itself through the bodies known now.
    bool expandsWithoutEnd(const std::string& name, const std::string& body) const;
    std::set<std::string> defined_; // macros the code compiled so far defines (not comments)
    std::size_t includesRead_ = 0;
    bool counting_ = true;
    std::size_t codeLines_ = 0;
    double total_ = 0;
    bool overBudget_ = false;
    std::vector<std::string> included_; // the #include'd files of the current piece
};

// The name's own problems (absolute, "..", a URL), before any file is looked at.
std::optional<std::string> nameRefusal(const std::string& name) {
    if (name.find("://") != std::string::npos) return fmt::format("'{}' is a URL", name);
    const fs::path p(name);
    if (p.is_absolute()) return fmt::format("'{}' is an absolute path", name);
    for (const auto& part : p)
        if (part == "..") return fmt::format("'{}' leaves the session's folder", name);
    return std::nullopt;
}

std::optional<std::string> Checker::readRefusal(std::string name) const {
    std::replace(name.begin(), name.end(), '\\', '/'); // Csound reads '\' as a separator
    if (name.empty()) return std::nullopt;
    if (auto why = nameRefusal(name)) return why;
    const fs::path p(name);
    // Csound tries the name as given (the current directory) before its search path.
    if (cwdReal_ != folderReal_) {
        if (auto r = realPath(cwdReal_ / p); r && !inside(*r, folderReal_))
            return fmt::format("Csound would read '{}' from the current directory ({})", name,
                               cwdReal_.string());
    }
    if (auto r = realPath(folderReal_ / p); r && !inside(*r, folderReal_))
        return fmt::format("'{}' leads out of the session's folder (to {})", name, r->string());
    return std::nullopt;
}

bool Checker::includeNameAllowed(const std::string& name, const SourcePos& pos) {
    // spinout reads [engine].includes itself, from the session's folder.
    if (auto why = readRefusal(name)) {
        if (!grants_.has(Permission::read)) {
            refuse(pos, Permission::read, fmt::format("include file '{}'", name), *why);
            return false;
        }
    }
    return true;
}

void Checker::checkSessionFiles(const SessionSpec& spec, bool code) {
    checkDeclared(spec);
    const SourcePos filePos{spec.path, 0, 0};
    for (std::size_t i = 0; i < spec.includes.size(); ++i) {
        const auto& pos = i < spec.includePos.size() ? spec.includePos[i] : filePos;
        if (code)
            checkEngineInclude(spec.includes[i], pos);
        else
            includeNameAllowed(spec.includes[i], pos);
    }
    for (const auto& t : spec.tables)
        if (t.source == TableSpec::fromFile) checkTableFile(t);
}

void Checker::checkEngineInclude(const std::string& name, const SourcePos& pos) {
    if (!includeNameAllowed(name, pos)) return;
    const fs::path full = fs::path(name).is_absolute() ? fs::path(name) : fs::path(folder_) / name;
    auto text = readTextFile(full);
    if (!text) {
        error(pos,
              fmt::format("cannot read the include file '{}': not a regular file, or over {} MiB",
                          name, kMaxTextFileBytes >> 20));
        return;
    }
    checkPiece(includePiece(name, full, pos, std::move(*text)));
}

// A [table.NAME] sound file: spinout has Csound read it with GEN01, so it is confined as
// a file the code names, and counted like one.
void Checker::checkTableFile(const TableSpec& table) {
    const auto subject = fmt::format("[table.{}] file '{}'", table.name, table.file);
    if (auto why = outsideFolder(folder_, table.file)) {
        refuse(table.pos, Permission::read, subject, *why);
        return;
    }
    std::error_code ec;
    const auto bytes = fs::file_size(fs::path(folder_) / table.file, ec);
    if (!ec) count(static_cast<double>(bytes) * *fileGenExpansion(1), table.pos, subject);
}

// Every "#include" in the text, wherever it stands (a string, a comment, a macro): Csound
// reads the file while it preprocesses, before anything can be checked, so the file must
// be one the session may read. Returns false when the piece must not reach Csound.
bool Checker::scanIncludes(const Piece& piece, const std::string& text, const Views& views,
                           const std::string& path, int depth, std::vector<std::string>& files,
                           const std::function<SourcePos(int)>& at, std::set<std::string>* known) {
    bool ok = checkSize(views.code, at);
    // Each $NAME names a macro defined before it (Csound's, spinout's, or the session's, in
    // code compiled earlier, earlier in this text, or in a file it included before). Csound
    // reads an undefined one as "$error" in a string, and code compiled again later (an
    // instr at another priority, a score event's) would read a later definition: the check
    // would not have read what runs (found by attack: a command ran that way).
    const auto defs = macroDefinitions(views.directives);
    const auto uses = macroUses(views.code);
    std::size_t d = 0, u = 0;
    const auto macrosUpTo = [&](std::size_t end) {
        for (; known != nullptr && (d < defs.size() || u < uses.size());) {
            const auto defAt = d < defs.size() ? defs[d].at : std::string::npos;
            const auto useAt = u < uses.size() ? uses[u].at : std::string::npos;
            if (std::min(defAt, useAt) >= end) return;
            if (defAt < useAt) {
                known->insert(defs[d++].name);
                continue;
            }
            const auto& use = uses[u++];
            if (use.name.rfind("M_", 0) == 0 || use.name.rfind("SPINOUT_", 0) == 0 ||
                known->count(use.name) != 0)
                continue;
            refuse(at(use.line), Permission::exec, fmt::format("the macro '${}'", use.name),
                   "it is not defined where it stands: Csound reads \"$error\" for it in a "
                   "string, and code compiled again after a later definition would read that "
                   "instead of what the check read");
            ok = ok && grants_.has(Permission::exec);
        }
    };
    for (std::size_t pos = views.directives.find("#include"); pos != std::string::npos;
         pos = views.directives.find("#include", pos + 1)) {
        macrosUpTo(pos);
        const int line = 1 + static_cast<int>(std::count(text.begin(), text.begin() + pos, '\n'));
        const SourcePos where = at(line);
        const auto includeName = includeNameAt(text, pos);
        if (!includeName) continue; // parserTrap refuses it before Csound sees the code
        const std::string& name = includeName->name;
        const bool str = text.compare(pos + 8, 3, "str") == 0; // #includestr
        if (name.size() > 99) {
            // Csound 6.18 copies the name into a 100-byte buffer.
            error(where, fmt::format("#include name longer than 99 characters: '{}...'",
                                     name.substr(0, 40)));
            ok = false;
            continue;
        }
        if (name.find('$') != std::string::npos) {
            refuse(where, Permission::read, fmt::format("#include of '{}'", name),
                   "a macro names the file");
            ok = ok && grants_.has(Permission::read);
            continue;
        }
        // Where Csound looks: the including file's folder, then the name alone; each as
        // given (the current directory) and in INCDIR (the session's folder).
        std::vector<fs::path> candidates;
        std::string n = name;
        std::replace(n.begin(), n.end(), '\\', '/');
        if (fs::path(n).is_absolute()) {
            candidates.push_back(n);
        } else {
            const std::string withPath = path + "/" + n;
            candidates.push_back(cwdReal_ / withPath);
            candidates.push_back(fs::path(folder_) / withPath);
            if (!str) {
                candidates.push_back(cwdReal_ / n);
                candidates.push_back(fs::path(folder_) / n);
            }
        }
        std::optional<fs::path> found;
        for (const auto& c : candidates) {
            std::error_code ec;
            if (fs::exists(c, ec)) {
                found = c.lexically_normal();
                break;
            }
        }
        if (!found) {
            error(where, fmt::format("#include file '{}' not found", name));
            ok = false;
            continue;
        }
        const auto real = realPath(*found);
        if (!real || !inside(*real, folderReal_)) {
            refuse(where, Permission::read, fmt::format("#include of '{}'", name),
                   fmt::format("Csound would read {}", real ? real->string() : found->string()));
            if (!grants_.has(Permission::read)) {
                ok = false;
                continue;
            }
        }
        if (depth >= 16) {
            error(where, "#include nested more than 16 deep");
            ok = false;
            continue;
        }
        if (++includesRead_ > 256) {
            if (includesRead_ == 257)
                error(where, "more than 256 #include'd files in the session's code");
            ok = false;
            break;
        }
        files.push_back(found->string());
        const auto text = readTextFile(*found);
        if (!text) { // Csound would wait on a FIFO, or read a device without end
            error(where, fmt::format("#include file '{}' cannot be read: not a regular file, "
                                     "or over {} MiB",
                                     name, kMaxTextFileBytes >> 20));
            ok = false;
            continue;
        }
        const std::string& included = *text;
        const auto slash = n.rfind('/');
        const std::string nextPath = slash == std::string::npos ? path : n.substr(0, slash);
        const std::string file = found->string();
        Views includedViews;
        if (const auto trap =
                parserTrap(included, &includedViews.code, &includedViews.directives)) {
            error({file, trap->line, 1},
                  fmt::format("#include file '{}': {}", name, trap->message));
            ok = false;
            continue;
        }
        if (!checkMacros(included, [&](int l) { return SourcePos{file, l, 1}; })) {
            ok = false;
            continue;
        }
        ok = scanIncludes(
                 piece, included, includedViews, nextPath, depth + 1, files,
                 [&](int l) {
                     return SourcePos{file, l, 1};
                 },
                 known) &&
             ok;
    }
    macrosUpTo(std::string::npos);
    return ok;
}

bool Checker::checkSize(const std::string& view, const std::function<SourcePos(int)>& at) {
    // Lines, with the files included and the lines of the macros used (found by attack:
    // 40 uses of a macro of 5,900 lines)
    codeLines_ += static_cast<std::size_t>(std::count(view.begin(), view.end(), '\n')) + 1;
    const auto tooLong = [&] {
        if (codeLines_ <= 20000) return false;
        error(at(0), "over 20,000 lines of code (with the files it #includes and the macros "
                     "it uses): Csound's parser takes minutes on that");
        codeLines_ = 0; // said once
        return true;
    };
    if (tooLong()) return false;
    // Operators of each statement, a line and the lines a \ continues, macros expanded
    std::size_t operators = 0;
    int line = 1, first = 1;
    bool quoted = false;
    for (std::size_t i = 0; i < view.size(); ++i) {
        const char c = view[i];
        if (c == '"') quoted = !quoted;
        if (quoted) {
            if (c == '\\') ++i;
            continue;
        }
        if (c == '$') {
            std::size_t end = i + 1;
            while (end < view.size() &&
                   (std::isalnum(static_cast<unsigned char>(view[end])) != 0 || view[end] == '_'))
                ++end;
            if (auto m = expansions_.find(view.substr(i + 1, end - i - 1));
                m != expansions_.end()) {
                operators += m->second.operators;
                codeLines_ += m->second.lines;
                if (tooLong()) return false;
            }
        } else if (c != '\0' && std::strchr(kOperators, c) != nullptr) {
            ++operators;
        } else if (c == '\n' || c == '\r' || i + 1 == view.size()) {
            const auto last = view.find_last_not_of(" \t", i == 0 ? 0 : i - 1);
            const bool continued = last != std::string::npos && last < i && view[last] == '\\';
            if (operators > 4096) {
                error(at(first), fmt::format("a statement of {} operators: Csound's parser "
                                             "recurses once for each, and overflows its stack "
                                             "on tens of thousands",
                                             operators));
                return false;
            }
            if (c == '\n') ++line;
            if (!continued) {
                operators = 0;
                first = line;
            }
        }
    }
    return true;
}

// A macro's body comes back wherever $NAME is used, and the check parses each use with the
// body defined before it in the check's order. Csound may compile that use after a later
// definition: an instr compiled again at another priority, spinout's own code that uses
// Csound's constants (M_PI_2), code compiled at run time. So in session code each macro
// has one body, and Csound's constants (M_...) and spinout's (SPINOUT_...) keep theirs.
bool Checker::checkMacros(const std::string& text, const std::function<SourcePos(int)>& at) {
    bool parsable = true;
    for (const auto& m : macroDefinitions(text)) {
        const auto pos = at(m.line);
        const auto subject = fmt::format("'#define {}'", m.name);
        if (m.name.rfind("M_", 0) == 0 || m.name.rfind("SPINOUT_", 0) == 0) {
            refuse(pos, Permission::exec, subject,
                   "it gives a constant of Csound's (M_...) or spinout's (SPINOUT_...) another "
                   "value, where code the check has read uses it");
            continue;
        }
        const auto [first, added] = macros_.try_emplace(m.name, m.body, pos);
        if (added) {
            // What a use of it becomes, its macros expanded: Csound's parser overflowed its
            // stack on a few lines of macros doubling an expression (found by attack), and
            // its preprocessor takes seconds on strings doubled the same way.
            Expansion e{m.body.size(), 0,
                        static_cast<std::size_t>(std::count(m.body.begin(), m.body.end(), '\n'))};
            for (const char c : m.body)
                if (c != '\0' && std::strchr(kOperators, c) != nullptr) ++e.operators;
            for (const auto& use : macroUses(m.body))
                if (const auto it = expansions_.find(use.name); it != expansions_.end()) {
                    e.bytes += it->second.bytes;
                    e.operators += it->second.operators;
                    e.lines += it->second.lines;
                }
            expansions_[m.name] = e;
            if (e.bytes > 65536 || e.operators > 4096)
                error(pos, fmt::format("the macro '{}' expands to {} bytes and {} operators: "
                                       "more than Csound's parser takes (64 KiB, 4,096)",
                                       m.name, e.bytes, e.operators));
        }
        // Csound expands such a macro until it gives up parsing ("macros/include nested too
        // deep") and leaks what it expanded (found by fuzzing: `#define G #$G#`)
        if (expandsWithoutEnd(m.name, m.body)) {
            error(pos, fmt::format("the macro '{}' uses itself, through its body or another "
                                   "macro's: its use never ends",
                                   m.name));
            parsable = false;
        }
        if (!added && first->second.first != m.body)
            refuse(pos, Permission::exec, subject,
                   fmt::format("a second body for the macro (the first at {}:{}): the check "
                               "reads each use with one body, and Csound may compile it with "
                               "the other",
                               first->second.second.file, first->second.second.line));
    }
    return parsable;
}

bool Checker::expandsWithoutEnd(const std::string& name, const std::string& body) const {
    std::vector<std::string> todo;
    std::set<std::string> seen;
    const auto follow = [&](const std::string& text) {
        for (const auto& use : macroUses(text))
            if (seen.insert(use.name).second) todo.push_back(use.name);
    };
    follow(body);
    while (!todo.empty()) {
        const auto next = todo.back();
        todo.pop_back();
        if (next == name) return true;
        if (const auto it = macros_.find(next); it != macros_.end()) follow(it->second.first);
    }
    return false;
}

void Checker::checkPiece(const Piece& piece, int depth) {
    if (!parserReady()) return;
    auto files = readable(piece, depth > 0);
    if (!files) return; // Csound must not read what the session may not
    const auto parsed = parser_->parse(piece.text);
    if (!parsed.ok) {
        std::string message;
        for (char ch : parsed.error)
            if (message.size() < 400) message += ch == '\n' ? ' ' : ch;
        // nothing of it runs: the engine would fail on the same parse
        error(position(piece, parsed.errorLine),
              fmt::format("in {}: Csound cannot parse this code: {}", piece.where, message));
        if (!parser_->usable()) internalError("Csound gave up parsing; nothing after is checked");
        return;
    }
    checkParsed(piece, parsed, std::move(*files), depth);
}

std::optional<std::vector<std::string>> Checker::readable(const Piece& piece, bool runTime) {
    // Csound's lexer prints a character it cannot place to stdout, from the host's process.
    for (std::size_t i = 0; i < piece.text.size(); ++i) {
        const auto c = static_cast<unsigned char>(piece.text[i]);
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
            const int line =
                1 + static_cast<int>(std::count(piece.text.begin(),
                                                piece.text.begin() + static_cast<long>(i), '\n'));
            error(position(piece, line),
                  fmt::format("{}: control character 0x{:02x} in the code", piece.where, c));
            return std::nullopt;
        }
    }
    Views views;
    // Csound's parser would crash or leak
    if (const auto trap = parserTrap(piece.text, &views.code, &views.directives)) {
        error(position(piece, trap->line), fmt::format("{}: {}", piece.where, trap->message));
        return std::nullopt;
    }
    auto known = defined_;
    if (!checkMacros(piece.text, [&](int l) { return position(piece, l); })) return std::nullopt;
    std::vector<std::string> files;
    if (!scanIncludes(
            piece, piece.text, views, ".", 0, files, [&](int l) { return position(piece, l); },
            &known))
        return std::nullopt;
    // what code compiled at run time defines is not there for code compiled before it runs
    if (!runTime) defined_ = std::move(known);
    return files;
}

void Checker::checkParsed(const Piece& piece, const OrcParse& parsed,
                          std::vector<std::string> files, int depth) {
    // Csound puts a UDO with an opcode's name and signature in that opcode's place, saying
    // "redefined opcode: NAME". In place of one of Csound's own, its next call crashed the
    // host (a `prealloc`, which spinout calls itself: found by attack); in place of a UDO
    // with that signature, it is a plain redefinition. Each UDO with a signature a UDO had
    // before accounts for one such warning: any warning more replaced one of Csound's.
    std::map<std::string, int> unexplained;
    for (const auto& name : parsed.redefined)
        ++unexplained[name];
    for (const auto& signature : parsed.udoSignatures)
        if (!udoSignatures_.insert(signature).second) --unexplained[udoName(signature)];
    for (const auto& [name, count] : unexplained)
        if (count > 0)
            error(piece.fallback,
                  fmt::format("{}: the UDO '{}' would take the place of Csound's opcode of that "
                              "name and signature, which Csound 6.18 cannot do safely: rename it",
                              piece.where, name));
    for (const auto& u : parsed.udos) {
        if (isSpinoutsOwn(u))
            error(piece.fallback, fmt::format("{}: the UDO '{}' takes a name of spinout's own "
                                              "opcodes (spinout__...)",
                                              piece.where, u));
        udos_.insert(u);
    }
    included_ = std::move(files);
    // A numbered instr in place of one of spinout's replaces it (`instr 5`, pasted from a
    // classic orchestra, made every note sound for ever). A template's body comes inside
    // spinout's own `instr N` line.
    for (const auto& instr : parsed.instrs) {
        if (piece.spinoutsLine(instr.line, instr.included)) continue;
        const auto& n = instr.name;
        if (n.empty() ||
            !std::all_of(n.begin(), n.end(), [](char c) { return c >= '0' && c <= '9'; }))
            continue; // a name: Csound numbers it where it is free
        const long number = n.size() > 6 ? 1000000 : std::stol(n);
        if (number >= support::kFirstSessionInstr && number <= support::kLastSessionInstr) continue;
        error(statementPosition(piece, instr.line, instr.included),
              fmt::format("{}: instr {} has one of spinout's own instr numbers: number it from {} "
                          "to {}, or give it a name",
                          piece.where, n, support::kFirstSessionInstr, support::kLastSessionInstr));
    }
    for (const auto& call : parsed.calls)
        checkCall(call, piece, depth);
}

void Checker::count(double bytes, const SourcePos& pos, const std::string& subject) {
    if (!counting_) return;
    total_ += bytes;
    if (!overBudget_ && total_ > static_cast<double>(grants_.budget.sessionBytes)) {
        overBudget_ = true;
        refuse(pos, Permission::memory, subject,
               fmt::format("the session's tables and delays pass {} MiB here",
                           grants_.budget.sessionBytes >> 20));
    }
}

void Checker::checkFileArg(const OrcArg& arg, const OrcCall& call, const SourcePos& pos,
                           bool write) {
    const Permission p = write ? Permission::write : Permission::read;
    const std::string subject = fmt::format("'{}'", call.opcode);
    if (write) {
        refuse(pos, p, subject,
               arg.kind == OrcArg::string ? fmt::format("'{}'", unquote(arg.text))
                                          : std::string("a file"));
        return;
    }
    if (arg.kind == OrcArg::string) {
        if (auto why = readRefusal(unquote(arg.text))) refuse(pos, p, subject, *why);
    } else if (arg.kind == OrcArg::number) {
        refuse(pos, p, subject, "a number names the file (soundin.N, strset)");
    } else {
        refuse(pos, p, subject,
               fmt::format("the file name '{}' is not a literal the check can confine", arg.text));
    }
}

void Checker::checkGen(const OrcArg& gen, const OrcArg& size, const std::vector<OrcArg>& args,
                       const SourcePos& pos, const std::string& subject) {
    int number = 0;
    if (gen.kind == OrcArg::number) {
        number = static_cast<int>(std::abs(gen.value));
        if (!knownGen(number)) {
            refuse(pos, Permission::read, fmt::format("{} with GEN {}", subject, number),
                   "a GEN routine the check does not know");
            return;
        }
    } else if (gen.kind == OrcArg::string) {
        const auto name = unquote(gen.text);
        if (kNamedGens.count(name) == 0)
            refuse(pos, Permission::read, fmt::format("{} with GEN \"{}\"", subject, name),
                   "a GEN routine the check does not know");
    } else {
        refuse(pos, Permission::read, subject,
               fmt::format("the GEN routine '{}' is not a constant, and file GENs read files",
                           gen.text));
        return;
    }
    const auto subjectGen = fmt::format("{} with GEN{:02}", subject, number);
    const auto expansion = fileGenExpansion(number);
    std::optional<std::uintmax_t> fileBytes;
    if (expansion) {
        const OrcArg file = args.empty() ? OrcArg{} : args.front();
        if (file.kind == OrcArg::string) {
            const auto name = unquote(file.text);
            if (auto why = readRefusal(name)) {
                refuse(pos, Permission::read, subjectGen, *why);
            } else {
                std::error_code ec;
                const auto sz = fs::file_size(fs::path(folder_) / name, ec);
                if (!ec) fileBytes = sz;
            }
        } else if (file.kind == OrcArg::number) {
            refuse(pos, Permission::read, subjectGen, "a number names the file (soundin.N)");
        } else {
            refuse(pos, Permission::read, subjectGen,
                   fmt::format("the file name '{}' is not a literal the check can confine",
                               file.text.empty() ? std::string("?") : file.text));
        }
    }
    // Memory: a table's points are doubles.
    if (size.kind != OrcArg::number) {
        refuse(pos, Permission::memory, subjectGen,
               fmt::format("the table size '{}' is not a constant", size.text));
        return;
    }
    const double points = std::abs(size.value);
    if (points == 0 && expansion && fileBytes) {
        count(static_cast<double>(*fileBytes) * *expansion, pos, subjectGen);
        return;
    }
    if (points > static_cast<double>(grants_.budget.tablePoints)) {
        refuse(pos, Permission::memory, subjectGen,
               fmt::format("{} points, more than {} in one table", points,
                           grants_.budget.tablePoints));
        return;
    }
    count((points + 1) * sizeof(double), pos, subjectGen);
}

// A table number code gives: 0 (Csound numbers the table), or a constant 1 to 100 in code
// that runs at load, before any instrument. Csound numbers its own tables from 101 on
// (spinout's, and each made with number 0), and a table made again at a number with
// another size, or at a negative number, frees the old one under any code that still
// reads it: Csound does not check, and a freed table of spinout's crashed the host.
void Checker::checkTableNumber(const OrcArg& number, const SourcePos& pos,
                               const std::string& subject, bool runTime) {
    if (number.kind != OrcArg::number) {
        refuse(pos, Permission::exec, subject,
               fmt::format("the table number '{}' is not a constant the check can see",
                           number.text.empty() ? std::string("?") : number.text));
        return;
    }
    const double n = number.value;
    if (n == 0) return;
    if (n < 0)
        refuse(pos, Permission::exec, subject,
               fmt::format("table number {} deletes table {}, which running code may read", n, -n));
    else if (n > 100)
        refuse(pos, Permission::exec, subject,
               fmt::format("table {} is where Csound numbers its own (101 on: spinout's, and "
                           "every table made with number 0)",
                           n));
    else if (runTime)
        refuse(pos, Permission::exec, subject,
               fmt::format("table {} made while instruments run: made again with another "
                           "size, the old one is freed under code that may still read it; "
                           "give number 0, or make it in global code",
                           n));
}

void Checker::checkTable(const OrcCall& call, std::size_t first, const SourcePos& pos,
                         bool runTime) {
    // ftgen ifn, itime, isize, igen, args...  (event "f" has the same layout after "f")
    const auto& in = call.inputs;
    const OrcArg none;
    const OrcArg& number = in.size() > first ? in[first] : none;
    checkTableNumber(number, pos, fmt::format("'{}'", call.opcode), runTime);
    if (number.kind == OrcArg::number && number.value < 0) return; // a deletion runs no GEN
    const OrcArg& size = in.size() > first + 2 ? in[first + 2] : none;
    const OrcArg& gen = in.size() > first + 3 ? in[first + 3] : none;
    std::vector<OrcArg> args;
    if (in.size() > first + 4) args.assign(in.begin() + static_cast<long>(first) + 4, in.end());
    checkGen(gen, size, args, pos, fmt::format("'{}'", call.opcode));
}

// Score text handed to Csound at run time (scoreline, readscore): statements are data
// except "f" (a GEN routine) and the preprocessor (#include reads files).
void Checker::checkScore(const std::string& score, const OrcCall& call, const SourcePos& pos) {
    const std::string subject = fmt::format("'{}'", call.opcode);
    if (score.find('#') != std::string::npos) {
        refuse(pos, Permission::exec, subject, "a score preprocessor directive (#...)");
        return;
    }
    // In a line event, { and } hold orchestra code Csound compiles (and with no -L buffer
    // it crashed, found by attack); in a score, they make a loop. A comment can hide a
    // statement from this reading.
    if (score.find_first_of("{}") != std::string::npos || score.find("/*") != std::string::npos ||
        score.find("//") != std::string::npos) {
        refuse(pos, Permission::exec, subject,
               "score text with { }, /* */ or //: orchestra code, a loop or a comment the "
               "check does not read");
        return;
    }
    const auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
    std::string text = score;
    std::replace(text.begin(), text.end(), '\r', '\n'); // a lone CR ends a line too
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        const auto b = std::find_if_not(line.begin(), line.end(), space) - line.begin();
        if (static_cast<std::size_t>(b) == line.size() || line[b] != 'f') continue;
        std::vector<OrcArg> fields;
        std::size_t i = static_cast<std::size_t>(b) + 1;
        while (i < line.size() && line[i] != ';') {
            if (space(line[i])) {
                ++i;
                continue;
            }
            OrcArg a;
            if (line[i] == '"') {
                const auto e = line.find('"', i + 1);
                a.kind = OrcArg::string;
                a.text = line.substr(i, e == std::string::npos ? std::string::npos : e - i + 1);
                i = e == std::string::npos ? line.size() : e + 1;
            } else {
                auto e = i;
                while (e < line.size() && !space(line[e]) && line[e] != ';')
                    ++e;
                a.text = line.substr(i, e - i);
                i = e;
                char* end = nullptr;
                a.value = std::strtod(a.text.c_str(), &end);
                if (!a.text.empty() && *end == '\0') a.kind = OrcArg::number;
            }
            fields.push_back(a);
        }
        // f p1 p2 size gen args...
        const OrcArg none;
        std::vector<OrcArg> args;
        if (fields.size() > 4) args.assign(fields.begin() + 4, fields.end());
        const OrcArg& number = fields.empty() ? none : fields[0];
        checkTableNumber(number, pos, subject + " (score f statement)", true);
        if (number.kind == OrcArg::number && number.value < 0) continue; // a deletion
        checkGen(fields.size() > 3 ? fields[3] : none, fields.size() > 2 ? fields[2] : none, args,
                 pos, subject + " (score f statement)");
    }
}

void Checker::checkCall(const OrcCall& call, const Piece& piece, int depth) {
    const SourcePos pos = statementPosition(piece, call.line, call.included);
    if (call.opcode.empty()) {
        refuse(pos, Permission::exec, "a construct the check cannot name");
        return;
    }
    if (isSpinoutsOwn(call.opcode)) {
        error(pos, fmt::format("'{}' is spinout's own opcode: session code may not call it",
                               call.opcode));
        return;
    }
    const OpcodeRule rule = opcodeRule(call.opcode);
    // Instruments and UDOs run while others play, and so does code compiled at run time.
    const bool runTime = !call.scope.empty() || depth > 0;
    if (rule.kind == OpcodeClass::unknown) {
        if (udos_.count(call.opcode) != 0) return; // its body is checked where it is defined
        refuse(pos, Permission::exec, fmt::format("opcode '{}'", call.opcode),
               "it is not on the check's list of vetted opcodes");
        return;
    }
    const std::string subject = fmt::format("'{}'", call.opcode);
    if (const auto midi = midiNumbers(call.opcode)) {
        // Csound 6.18 indexes its channels and controllers with these unchecked: a channel
        // of 1000 or a controller of 10^8 crashed the host, or wrote past a table (found by
        // attack). Constants in range only.
        const auto& in = call.inputs;
        const auto inRange = [&](std::size_t i, double lo, double hi) {
            return i >= in.size() ||
                   (in[i].kind == OrcArg::number && in[i].value >= lo && in[i].value <= hi);
        };
        for (std::size_t i = 0; i < in.size(); ++i) {
            const bool channel = midi->channel && i == 0;
            const bool controller = i >= midi->first &&
                                    i < midi->first + midi->count * midi->step &&
                                    (i - midi->first) % midi->step == 0;
            if ((channel && !inRange(i, 1, 16)) || (controller && !inRange(i, 0, 127))) {
                refuse(pos, Permission::exec, subject,
                       fmt::format("its {} '{}' is not a constant from {}: Csound does not "
                                   "check it",
                                   channel ? "channel" : "controller", in[i].text,
                                   channel ? "1 to 16" : "0 to 127"));
                return;
            }
        }
    }
    if (call.opcode == "vco2init") { // vco2init iwave [, ibasfn, ipmul, iminsiz, imaxsiz, isrcft]
        // ibasfn: the tables go to numbers from there on, as many as the waveforms need
        // (from 101 on, spinout's own were remade under it, found by attack); -1 keeps
        // them to vco2's own store.
        const auto& in = call.inputs;
        if (in.size() > 1 && !(in[1].kind == OrcArg::number && in[1].value == -1))
            refuse(pos, Permission::exec, subject,
                   fmt::format("it makes tables at numbers from '{}' on, which the check cannot "
                               "see: give -1 (vco2's own store)",
                               in[1].text));
        // Csound gives the arguments left out as -1 (their defaults). A multiplier near 1
        // makes a table for nearly every partial, and sizes of its own size them.
        const auto given = [&](std::size_t i) {
            return in.size() > i && !(in[i].kind == OrcArg::number && in[i].value == -1);
        };
        if ((given(2) && !(in[2].kind == OrcArg::number && in[2].value >= 1.05)) || given(3) ||
            given(4))
            refuse(pos, Permission::memory, subject,
                   "a table size or a multiplier below 1.05 of its own: tables the check "
                   "cannot count");
        return;
    }
    switch (rule.kind) {
    case OpcodeClass::vetted:
    case OpcodeClass::unknown:
        return;
    case OpcodeClass::restricted:
        if (call.opcode.rfind("ftfree", 0) == 0 || call.opcode.rfind("ftresize", 0) == 0)
            refuse(pos, rule.permission, subject,
                   "it frees or moves a table that running code may still read, spinout's "
                   "own too: Csound does not check");
        else if (call.opcode.rfind("ftsamplebank", 0) == 0)
            refuse(pos, rule.permission, subject,
                   "it makes a table for each file from a number on: the check cannot see "
                   "which tables it replaces");
        else
            refuse(pos, rule.permission, subject);
        return;
    case OpcodeClass::readsFile:
    case OpcodeClass::writesFile: {
        const auto& args = stringArgs();
        auto it = args.find(call.opcode);
        bool any = false;
        if (it != args.end())
            for (int i : it->second)
                if (static_cast<std::size_t>(i) < call.inputs.size()) {
                    any = true;
                    checkFileArg(call.inputs[static_cast<std::size_t>(i)], call, pos,
                                 rule.kind == OpcodeClass::writesFile);
                }
        if (!any) checkFileArg(OrcArg{}, call, pos, rule.kind == OpcodeClass::writesFile);
        if (call.opcode.rfind("ftload", 0) ==
            0) { // ftload S, iflag, ifn...; ftloadk S, k, i, ifn...
            const std::size_t tables = call.opcode == "ftloadk" ? 3 : 2;
            for (std::size_t i = tables; i < call.inputs.size(); ++i)
                checkTableNumber(call.inputs[i], pos, subject, runTime);
        }
        return;
    }
    case OpcodeClass::makesTable:
        checkTable(call, 0, pos, runTime);
        return;
    case OpcodeClass::scoreEvent: {
        const OrcArg type = call.inputs.empty() ? OrcArg{} : call.inputs.front();
        if (type.kind != OrcArg::string) {
            refuse(pos, Permission::read, subject,
                   fmt::format("the event type '{}' is not a literal: an \"f\" event reads "
                               "files with GEN01",
                               type.text));
            return;
        }
        const auto t = unquote(type.text);
        if (!t.empty() && t[0] == 'f') checkTable(call, 1, pos, true); // events: run time
        return;
    }
    case OpcodeClass::compiles: {
        const OrcArg code = call.inputs.empty() ? OrcArg{} : call.inputs.front();
        if (code.kind != OrcArg::string) {
            refuse(
                pos, Permission::exec, subject,
                fmt::format("compiles '{}', which is not a literal the check can read", code.text));
            return;
        }
        if (call.opcode == "readscore" || call.opcode.rfind("scoreline", 0) == 0) {
            checkScore(unquote(code.text), call, pos);
            return;
        }
        if (depth >= 4) {
            refuse(pos, Permission::exec, subject, "compiled code nested more than 4 deep");
            return;
        }
        Piece inner;
        inner.text = unquote(code.text);
        inner.file = pos.file;
        inner.firstLine = pos.line;
        inner.fallback = pos;
        inner.where = fmt::format("code compiled by '{}'", call.opcode);
        // Lines inside the literal are reported at the call's line.
        inner.skipLines = 1 << 20;
        const auto saved = included_;
        checkPiece(inner, depth + 1);
        included_ = saved;
        return;
    }
    case OpcodeClass::callsByName: {
        const OrcArg name = call.inputs.size() > 1 ? call.inputs[1] : OrcArg{};
        if (name.kind != OrcArg::string) {
            refuse(pos, Permission::exec, subject,
                   fmt::format("calls the opcode '{}' names", name.text));
            return;
        }
        OrcCall inner;
        inner.opcode = unquote(name.text);
        inner.line = call.line;
        inner.included = call.included;
        checkCall(inner, piece, depth);
        return;
    }
    case OpcodeClass::allocates: {
        double bytes = 0;
        if (call.opcode == "init" || call.opcode == "genarray" || call.opcode == "genarray_i" ||
            call.opcode == "zakinit") {
            // Only an array's init allocates: its inputs are the sizes.
            if (call.opcode == "init" && (call.outputs.empty() || !call.outputs.front().array))
                return;
            std::vector<double> n;
            for (const auto& a : call.inputs) {
                if (a.kind != OrcArg::number) {
                    refuse(pos, Permission::memory, subject,
                           fmt::format("the size '{}' is not a constant the budget can count",
                                       a.text));
                    return;
                }
                n.push_back(std::abs(a.value));
            }
            if (call.opcode == "init") {
                double elements = 1;
                for (double d : n)
                    elements *= d;
                const char type =
                    call.outputs.front().text.size() > 1 && call.outputs.front().text[0] == 'g'
                        ? call.outputs.front().text[1]
                        : call.outputs.front().text[0];
                bytes = elements * 8 * (type == 'a' ? 8192 : 1); // a-rate: up to ksmps 8192
            } else if (call.opcode == "zakinit") {
                bytes = (n.size() > 0 ? n[0] * 8192 * 8 : 0) + (n.size() > 1 ? n[1] * 8 : 0);
            } else { // genarray
                const double step = n.size() > 2 && n[2] != 0 ? n[2] : 1;
                bytes = n.size() > 1 ? (std::abs(n[1] - n[0]) / step + 1) * 8 : 0;
            }
        } else if (auto it = kAllocations.find(call.opcode); it != kAllocations.end()) {
            const auto i = static_cast<std::size_t>(it->second.arg);
            if (i >= call.inputs.size()) return;
            if (call.inputs[i].kind != OrcArg::number) {
                refuse(pos, Permission::memory, subject,
                       fmt::format("the length '{}' is not a constant the budget can count",
                                   call.inputs[i].text));
                return;
            }
            double seconds = std::abs(call.inputs[i].value);
            if (it->second.unit == Allocation::milliseconds) seconds /= 1000;
            bytes = seconds * grants_.budget.sampleRate * 8;
        }
        if (bytes > static_cast<double>(grants_.budget.sessionBytes)) {
            refuse(
                pos, Permission::memory, subject,
                fmt::format("{:.0f} MiB at {} Hz", bytes / (1 << 20), grants_.budget.sampleRate));
            return;
        }
        count(bytes, pos, subject);
        return;
    }
    }
}

void Checker::checkDeclared(const SessionSpec& spec) {
    for (const auto& [p, pos] : spec.permissions)
        if (!grants_.has(p))
            error(pos, fmt::format("the session declares the '{}' permission ({}), which was not "
                                   "granted",
                                   permissionName(p), what(p)));
}

} // namespace

namespace {

Piece globalsPiece(const SessionSpec& spec) {
    Piece p;
    p.text = spec.globals;
    p.file = spec.path;
    p.firstLine = spec.globalsLine;
    p.fallback = {spec.path, spec.globalsLine, 1};
    p.where = "[engine] globals";
    return p;
}

Piece initPiece(const SessionSpec& spec, const InstrSpec& is) {
    Piece p;
    p.text = is.init;
    p.file = spec.path;
    p.firstLine = is.initLine > 0 ? is.initLine : is.pos.line;
    p.fallback = is.pos;
    p.where = fmt::format("init code of instr '{}'", is.name);
    return p;
}

// `code`: the instr as compiled ("instr N", the generated header, the body).
Piece bodyPiece(const SessionSpec& spec, const InstrSpec& is, std::string code, int headerLines) {
    Piece p;
    p.text = std::move(code);
    p.file = spec.path;
    p.firstLine = is.bodyLine;
    p.skipLines = 1 + headerLines;
    p.wrapped = true;
    p.fallback = is.pos;
    p.where = fmt::format("instr '{}'", is.name);
    return p;
}

// The session's own code as Csound compiles it: globals, each instr's init code and body.
std::vector<Piece> codePieces(const SessionSpec& spec) {
    std::vector<Piece> pieces;
    if (!spec.globals.empty()) pieces.push_back(globalsPiece(spec));
    int number = 1000;
    for (const auto& is : spec.instrs) {
        ++number;
        if (!is.init.empty()) pieces.push_back(initPiece(spec, is));
        if (is.instr)
            pieces.push_back(bodyPiece(spec, is, is.instr->code(number), is.instr->headerLines()));
    }
    return pieces;
}

} // namespace

std::vector<Diagnostic> checkPolicy(const SessionSpec& spec, const Grants& grants) {
    Checker c(grants, grants.folder.empty() ? spec.dir : grants.folder);
    c.checkSessionFiles(spec, true);
    c.declareTables(spec);
    for (const auto& piece : codePieces(spec))
        c.checkPiece(piece);
    return std::move(c.diagnostics);
}

struct PolicyGate::Impl {
    Impl(const SessionSpec& s, const Grants& grants)
        : spec(s), grants(grants),
          checker(this->grants, grants.folder.empty() ? s.dir : grants.folder, Parsing::engine, &s),
          traces(s) {}

    Piece pieceOf(const CodeSource& source, std::string_view text) const {
        const auto instr = [&]() -> const InstrSpec& {
            for (const auto& is : spec.instrs)
                if (is.name == source.name) return is;
            throw SessionError(fmt::format("the policy check knows no instr '{}'", source.name));
        };
        switch (source.kind) {
        case CodeSource::include: {
            SourcePos pos{spec.path, 0, 0};
            for (std::size_t i = 0; i < spec.includes.size() && i < spec.includePos.size(); ++i)
                if (spec.includes[i] == source.name) pos = spec.includePos[i];
            return includePiece(source.name, fs::path(spec.dir) / source.name, pos,
                                std::string(text));
        }
        case CodeSource::globals: {
            Piece p = globalsPiece(spec);
            p.text = std::string(text);
            return p;
        }
        case CodeSource::init: {
            Piece p = initPiece(spec, instr());
            p.text = std::string(text);
            return p;
        }
        case CodeSource::body:
            break;
        }
        return bodyPiece(spec, instr(), std::string(text), source.headerLines);
    }

    const SessionSpec& spec;
    Grants grants;
    Checker checker;
    WarmUpTraces traces;
    Piece piece;                    // the piece on its way
    std::vector<std::string> files; // what it #includes
    std::set<std::string> bodies;   // instrs whose body was checked
    bool again = false;             // the piece is a body checked before
};

PolicyGate::PolicyGate(const SessionSpec& spec, const Grants& grants)
    : impl_(std::make_unique<Impl>(spec, grants)) {}

PolicyGate::~PolicyGate() = default;

bool PolicyGate::checkFiles() {
    auto& c = impl_->checker;
    c.checkSessionFiles(impl_->spec, false); // the includes' code: as the engine compiles it
    return c.diagnostics.empty();
}

bool PolicyGate::beforeParse(const CodeSource& source, std::string_view text) {
    auto& g = *impl_;
    // An instr compiled at another priority is the same text under another number (each
    // macro it uses was defined before it, with one body): checked again as Csound parses
    // it, its memory counted once.
    g.again = source.kind == CodeSource::body && !g.bodies.insert(source.name).second;
    g.piece = g.pieceOf(source, text);
    auto files = g.checker.readable(g.piece);
    if (!files) return false;
    g.files = std::move(*files);
    if (!g.again) g.checker.compiling(g.piece.text);
    return g.checker.diagnostics.empty();
}

bool PolicyGate::admit(const CodeSource& source, const OrcParse& parsed) {
    auto& g = *impl_;
    g.checker.counting(!g.again);
    g.checker.checkParsed(g.piece, parsed, std::move(g.files));
    g.checker.counting(true);
    if (!g.again)
        g.traces.read(source, parsed, [&](const OrcCall& call) -> std::optional<SourcePos> {
            if (g.piece.spinoutsLine(call.line, call.included)) return std::nullopt;
            return g.checker.statementPosition(g.piece, call.line, call.included);
        });
    return g.checker.diagnostics.empty();
}

const std::vector<Diagnostic>& PolicyGate::diagnostics() const {
    return impl_->checker.diagnostics;
}

const std::vector<Diagnostic>& PolicyGate::warnings() const {
    return impl_->traces.warnings();
}

std::vector<std::string> codeIncludes(const SessionSpec& spec) {
    // every file Csound would read, outside the folder too: read is granted to look
    const auto grants = Grants::all(spec.dir);
    Checker c(grants, spec.dir, Parsing::none);
    std::vector<std::string> files;
    for (const auto& name : spec.includes) {
        const fs::path full =
            fs::path(name).is_absolute() ? fs::path(name) : fs::path(spec.dir) / name;
        if (auto text = readTextFile(full)) {
            Piece p;
            p.text = std::move(*text);
            p.file = full.string();
            c.collectIncludes(p, files);
        }
    }
    for (const auto& piece : codePieces(spec))
        c.collectIncludes(piece, files);
    std::vector<std::string> once;
    for (auto& f : files)
        if (std::find(once.begin(), once.end(), f) == once.end()) once.push_back(std::move(f));
    return once;
}

std::optional<std::string> outsideFolder(const std::string& folder, const std::string& name) {
    if (name.empty()) return std::nullopt;
    if (auto why = nameRefusal(name)) return why;
    std::error_code ec;
    const auto root = fs::weakly_canonical(fs::absolute(folder), ec);
    if (auto r = realPath(root / name); r && !inside(*r, root))
        return fmt::format("'{}' leads out of the session's folder (to {})", name, r->string());
    return std::nullopt;
}

std::vector<Diagnostic> checkPolicyCode(std::string_view code, const Grants& grants,
                                        const std::string& file) {
    Checker c(grants, grants.folder.empty() ? fs::current_path().string() : grants.folder);
    Piece p;
    p.text = std::string(code);
    p.file = file;
    p.fallback = {file, 0, 0};
    p.where = "the code";
    c.checkPiece(p);
    return std::move(c.diagnostics);
}

} // namespace spinout
