// Warm-up of an instr's instances at load time, and the warnings for init code whose
// effects it would run (WarmUpTraces): see warm_up.hpp. Load time, off the audio thread.
#include "spinout/warm_up.hpp"

#include "spinout/policy.hpp"
#include "spinout/support.hpp"
#include "spinout/text_file.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <set>
#include <string_view>

namespace spinout {

void warmUpInstances(Session& session, const PreparedEvent& event, int instances, bool ownCycle) {
    if (instances <= 0) return;
    // p4 (the slot) and the event's pfields pass on to each instance, as a start would.
    std::string args;
    for (int p = 4; p <= event.numPfields; ++p)
        args += fmt::format(", p{}", p);
    std::string code = fmt::format("prealloc {}, {}\n", event.instrNum, instances);
    code += fmt::format("instr {}\n", support::kWarmUpInstr);
    code += fmt::format("{} = 1\n{}\n", support::kWarmUpFlag, Engine::kKeepRandomOpcode);
    // one line per instance: one subinstrinit run in a loop would not hold them all at once
    for (int i = 0; i < instances; ++i)
        code += fmt::format("subinstrinit {}{}\n", event.instrNum, args);
    // an instance's init code may set p3 (a one-shot): subinstrinit hands it to the holder,
    // which must still end after its init pass
    code += fmt::format("p3 = 0\n{}\n{} = 0\nendin\n", Engine::kRestoreRandomOpcode,
                        support::kWarmUpFlag);
    session.compile(code, "the warm-up of the voices");
    PreparedEvent holder = event;
    holder.instrNum = support::kWarmUpInstr;
    // p3 = 0: an init pass only; the holder's slot frees itself (no heartbeat)
    const auto synth = session.startAt(holder, session.frame(), 0);
    if (!synth.valid()) throw SessionError("no room to queue the warm-up of the voices");
    if (ownCycle) session.performCycleBeforeStart(synth);
}

namespace {

bool namesAny(std::string_view code) {
    if (findDefine(code, 0) != std::string_view::npos) return true; // `$S.ule` is schedule
    static constexpr std::array<std::string_view, 17> words = {
        "schedule",   "schedulek",  "event_i",    "event",      "scoreline_i",     "scoreline",
        "alwayson",   "turnon",     "schedwhen",  "schedkwhen", "schedkwhennamed", "readscore",
        "compilestr", "compileorc", "compilecsd", "evalstr",    "nstance"};
    auto wordChar = [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
    };
    for (std::size_t i = 0; i < code.size();) {
        if (!wordChar(code[i])) {
            ++i;
            continue;
        }
        std::size_t j = i;
        while (j < code.size() && wordChar(code[j]))
            ++j;
        const auto word = code.substr(i, j - i);
        if (std::find(words.begin(), words.end(), word) != words.end()) return true;
        i = j;
    }
    return false;
}

} // namespace

bool schedulesAtLoad(const SessionSpec& spec) {
    if (namesAny(spec.globals)) return true;
    for (const auto& is : spec.instrs)
        if (namesAny(is.init) || namesAny(is.body)) return true;
    for (const auto& name : spec.includes)
        if (namesAny(readTextFile(std::filesystem::path(spec.dir) / name).value_or("")))
            return true;
    for (const auto& file : codeIncludes(spec))
        if (namesAny(readTextFile(file).value_or(""))) return true;
    return false;
}

namespace {

bool isGlobal(std::string_view name) {
    return name.size() > 1 && name[0] == 'g';
}

// A global Csound sets at init wherever it is written: gi..., gS...
bool isInitGlobal(std::string_view name) {
    return name.starts_with("gi") || name.starts_with("gS");
}

// A value known at init: a number, a string, an i or S variable (or an expression's).
bool isInitValue(const OrcArg& arg) {
    if (arg.kind == OrcArg::number || arg.kind == OrcArg::string) return true;
    if (arg.kind != OrcArg::variable) return false;
    std::string_view name = arg.text;
    if (name.size() > 1 && name[0] == 'p' && std::isdigit(static_cast<unsigned char>(name[1])))
        return true; // a p-field
    if (name.starts_with('#') || name.starts_with('g')) name.remove_prefix(1);
    return name.starts_with('i') || name.starts_with('S');
}

bool readsWarmUpFlag(const OrcCall& call) {
    return std::any_of(call.inputs.begin(), call.inputs.end(),
                       [](const OrcArg& a) { return a.text == support::kWarmUpFlag; });
}

// What a call does beyond its instance at init, if anything.
std::optional<std::string> initEffect(const OrcCall& call) {
    static const std::set<std::string_view> starts = {"schedule",   "event_i",    "scoreline_i",
                                                      "turnon",     "readscore",  "evalstr",
                                                      "compilestr", "compileorc", "compilecsd"};
    static const std::set<std::string_view> tableWrites = {"tableiw", "tabw_i", "ziw", "ziwm"};
    static const std::set<std::string_view> fileWrites = {"fprints", "fouti"};
    const std::string_view op = call.opcode;
    if (starts.count(op) != 0) return fmt::format("starts '{}'", op);
    for (const auto& out : call.outputs)
        if (out.kind == OrcArg::variable &&
            (isInitGlobal(out.text) || (op == "init" && isGlobal(out.text))))
            return fmt::format("writes the global {}", out.text);
    if (op == "##array_set" && !call.inputs.empty() && isInitGlobal(call.inputs[0].text))
        return fmt::format("writes the global array {}", call.inputs[0].text);
    if (op == "chnset" && !call.inputs.empty() && isInitValue(call.inputs[0]))
        return std::string("writes a channel ('chnset')");
    if (tableWrites.count(op) != 0) return fmt::format("writes a table ('{}')", op);
    // at init when its arguments are known at init, or an i-array is copied
    if (op == "tablew" && std::all_of(call.inputs.begin(), call.inputs.end(), isInitValue))
        return std::string("writes a table ('tablew')");
    if (op == "copya2ftab" && !call.inputs.empty() && isInitValue(call.inputs[0]))
        return std::string("writes a table ('copya2ftab')");
    // made once, by the warm-up in the plugin and by the first note in a render: the note
    // draws after the table's draws in one and not in the other
    if (op == "ftgenonce" && call.inputs.size() > 3 && call.inputs[3].kind == OrcArg::number &&
        std::abs(call.inputs[3].value) == 21)
        return std::string("makes a table once with GEN 21, which draws random numbers,");
    if (fileWrites.count(op) != 0) return fmt::format("writes a file ('{}')", op);
    return std::nullopt;
}

} // namespace

WarmUpTraces::WarmUpTraces(const SessionSpec& spec) : spec_(spec) {}

void WarmUpTraces::read(const CodeSource& source, const OrcParse& parsed, const Locate& at) {
    if (!spec_.midi) return;
    // code that reads the flag is taken to skip what it must (scope by scope)
    std::set<std::string> guarded;
    for (const auto& call : parsed.calls)
        if (readsWarmUpFlag(call)) guarded.insert(call.scope);
    const auto effect = [&](const OrcCall& call) -> std::optional<std::string> {
        if (auto e = initEffect(call)) return e;
        if (const auto u = udoEffects_.find(call.opcode); u != udoEffects_.end())
            return fmt::format("calls the UDO '{}', which {}", call.opcode, u->second);
        return std::nullopt;
    };
    // the UDOs this piece defines, in order: a later one may call an earlier one
    std::string udo;
    for (const auto& call : parsed.calls) {
        if (!call.scope.starts_with("opcode ")) continue;
        if (call.scope != udo) {
            udo = call.scope;
            udoEffects_.erase(udo.substr(7)); // a definition again replaces the last
        }
        if (guarded.count(call.scope) != 0) continue;
        if (auto e = effect(call)) udoEffects_.try_emplace(udo.substr(7), *e);
    }
    if (source.kind != CodeSource::body || source.name != spec_.midi->instr) return;
    for (const auto& call : parsed.calls) {
        if (!call.scope.starts_with("instr ") || guarded.count(call.scope) != 0) continue;
        const auto e = effect(call);
        const auto pos = e ? at(call) : std::nullopt;
        if (!pos) continue;
        warnings_.push_back(
            {*pos, fmt::format("instr '{}' {} at init: the plugin's warm-up of the voices does "
                               "that too, at load, and a render does not, so the plugin may "
                               "play what the file does not (skip it while {} is 1)",
                               source.name, *e, support::kWarmUpFlag)});
    }
}

} // namespace spinout
