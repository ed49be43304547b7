// Warm-up of an instr's instances at load time: see warm_up.hpp.
#include "spinout/warm_up.hpp"

#include "spinout/policy.hpp"
#include "spinout/support.hpp"
#include "spinout/text_file.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
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
    code += fmt::format("{}\n{} = 0\nendin\n", Engine::kRestoreRandomOpcode, support::kWarmUpFlag);
    if (auto err = session.engine().compile(code))
        throw SessionError("the warm-up of the voices: " + err->message);
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

} // namespace spinout
