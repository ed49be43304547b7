// The policy check: a session is untrusted code. Before Csound compiles a piece of the
// session's code (its include files, globals, init code and instr templates), the check
// reads Csound's own parse of it and refuses each opcode, GEN routine, file name, run-time
// compilation and allocation that needs a permission the user did not grant. Two ways,
// one set of rules:
// - PolicyGate: as a Processor loads, each piece is parsed in the engine that compiles it,
//   and the tree the check read is the tree compiled.
// - checkPolicy: every piece at once, on a scratch Csound instance that runs nothing: the
//   whole report (`spinout check`, and a load the gate stopped).
// Runs off the audio thread (worker, instantiate, the command).
#pragma once

#include "spinout/permission.hpp"
#include "spinout/session.hpp"
#include "spinout/session_file.hpp"

#include <bitset>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spinout {

// What an untrusted session may allocate without the `memory` permission, checked
// statically (constant sizes in the code).
struct MemoryBudget {
    std::uint64_t tablePoints = std::uint64_t{1} << 24;    // points in one table
    std::uint64_t sessionBytes = std::uint64_t{256} << 20; // tables, delays and arrays
    double sampleRate = 192000;                            // the worst case for delays
};

// What the user granted one session.
struct Grants {
    std::bitset<kAllPermissions.size()> permissions;
    std::string folder; // the session's folder: files inside it may be read
    MemoryBudget budget;

    bool has(Permission p) const { return permissions.test(static_cast<std::size_t>(p)); }
    Grants& allow(Permission p) {
        permissions.set(static_cast<std::size_t>(p));
        return *this;
    }
    static Grants none(std::string folder) {
        Grants g;
        g.folder = std::move(folder);
        return g;
    }
    static Grants all(std::string folder) {
        Grants g = none(std::move(folder));
        g.permissions.set();
        return g;
    }
};

// Every refusal (and every piece of code the check could not parse), each naming the
// opcode, GEN routine or file, the permission it needs and where it stands. Empty: the
// session may load. Grants.folder empty means spec.dir.
std::vector<Diagnostic> checkPolicy(const SessionSpec& spec, const Grants& grants);

// The check as a Processor loads (Session's CodeGate). After the first refusal the load
// stops; diagnostics() holds what was found so far, checkPolicy the whole report.
class PolicyGate final : public CodeGate {
public:
    // Grants.folder empty means spec.dir. The spec must outlive the gate.
    PolicyGate(const SessionSpec& spec, const Grants& grants);
    ~PolicyGate() override;
    PolicyGate(const PolicyGate&) = delete;
    PolicyGate& operator=(const PolicyGate&) = delete;

    // What needs no parse, before the engine is made: the permissions the session
    // declares, and the names of the files spinout reads for it (include files, tables).
    bool checkFiles();
    bool beforeParse(const CodeSource& source, std::string_view text) override;
    bool admit(const CodeSource& source, const OrcParse& parsed) override;
    const std::vector<Diagnostic>& diagnostics() const;
    // What the session does that loads but that the user should know: the warm-up's
    // traces (WarmUpTraces, warm_up.hpp).
    const std::vector<Diagnostic>& warnings() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// The files the #include lines of the session's code have Csound read (in [engine].includes
// files, globals, init code and bodies, and in the files those include), as paths, each
// once, in the order found; outside the session's folder too. A grant covers them.
std::vector<std::string> codeIncludes(const SessionSpec& spec);

// The rule for a file a session names, relative to its folder: why reading it would leave
// the folder (an absolute path, a "..", a URL, or symbolic links that lead out), or
// nothing when it lies inside (or does not exist). Without the `read` permission, every
// file spinout reads for a session ([engine].includes, [table.NAME] sound files) and every
// file name in its code must pass it.
std::optional<std::string> outsideFolder(const std::string& folder, const std::string& name);

// One piece of orchestra code alone (the fuzz target's entry), as global code of a
// session in `grants.folder`; `file` names it in the diagnostics.
std::vector<Diagnostic> checkPolicyCode(std::string_view code, const Grants& grants,
                                        const std::string& file = "<code>");

// How the check classifies one opcode of the running Csound.
enum class OpcodeClass {
    vetted,      // makes sound, computes, reads tables, channels, buses, MIDI
    restricted,  // needs a permission, whatever its arguments
    readsFile,   // reads a file named by an argument: confined to the folder
    writesFile,  // writes a file named by an argument: needs `write`
    makesTable,  // runs a GEN routine (ftgen...): table size and GEN checked
    compiles,    // compiles code at run time: checked when the code is a literal
    scoreEvent,  // sends score events: an "f" event runs a GEN routine
    allocates,   // allocates by an init-time argument (delay lines, arrays)
    callsByName, // calls the opcode a string argument names (maparray, tabmap)
    unknown,     // not in the check's tables: refused
};
struct OpcodeRule {
    OpcodeClass kind = OpcodeClass::unknown;
    Permission permission = Permission::exec; // restricted: the one it needs
};
OpcodeRule opcodeRule(std::string_view opcode);
// Opcodes of the running Csound the tables do not classify (a test keeps it empty).
std::vector<std::string> unclassifiedOpcodes();

} // namespace spinout
