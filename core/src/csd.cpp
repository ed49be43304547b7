// The .csd export: the engine's code journal as the orchestra, the session's
// journal as the score.
#include "spinout/csd.hpp"

#include "spinout/support.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <string_view>

namespace spinout {

namespace {

std::string orchestra(const Engine& engine) {
    std::string orc;
    for (const auto& entry : engine.journal()) {
        if (!entry.eval) {
            orc += entry.text;
        } else if (entry.text.rfind("return ", 0) == 0) {
            orc += "giSpinoutEval = " + entry.text.substr(7); // same tables, same numbers
        } else {
            orc += entry.text;
        }
        if (orc.empty() || orc.back() != '\n') orc += '\n';
    }
    // The render's length is the file's: Csound would let release tails play past `e`.
    orc += fmt::format("instr {}\n  exitnow\nendin\n", support::kEndInstr);
    return orc;
}

// Csound's .csd reader (createOrchestra, Top/one_file.c) ends the orchestra at a line that
// starts with </CsInstruments> outside a string or comment, and it does not know macro
// bodies; it reads at most 4095 bytes as a line, and takes a lone CR as a line's end.
// Code with such a line would end the orchestra early, and what follows would be read as
// the .csd's own tags: <CsScore bin="..."> runs a command (found by attack, through a
// macro's body). Such code is no .csd's.
void checkOrchestraLines(const std::string& orc) {
    std::size_t line = 1;
    for (std::size_t at = 0; at <= orc.size();) {
        const auto end = std::min(orc.find_first_of("\r\n", at), orc.size());
        const std::string_view text(orc.data() + at, end - at);
        const auto first = text.find_first_not_of(" \t");
        if (text.size() >= 4000)
            throw CsdError(fmt::format("line {} of the orchestra is {} bytes long: a .csd "
                                       "holds lines of up to 4,000",
                                       line, text.size()));
        if (first != std::string_view::npos && text.substr(first).rfind("</Cs", 0) == 0)
            throw CsdError(fmt::format("line {} of the orchestra starts with '</Cs', which would "
                                       "end the orchestra of a .csd: '{}'",
                                       line, text.substr(first, 40)));
        ++line;
        at = end + 1;
    }
}

// A path in <CsOptions>, or a string p-field of a score line: neither reads octal escapes
// as the orchestra does (csoundString). Quoted, with " and \ escaped, and a line break
// written as \n or \r so that it stays on its line.
std::string quoted(std::string_view text) {
    std::string out = "\"";
    for (const char c : text) {
        if (c == '\n' || c == '\r') {
            out += c == '\n' ? "\\n" : "\\r";
            continue;
        }
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    out += '"';
    return out;
}

} // namespace

std::string exportCsd(const Session& session, const CsdOptions& options) {
    auto& engine = const_cast<Session&>(session).engine();
    const double sr = engine.sr();
    std::string options_line = "-d -m0 --sample-accurate -f";
    options_line += " -o " + quoted(options.output);
    if (!options.input.empty()) options_line += " -i " + quoted(options.input);

    std::string score;
    for (const auto& j : session.journal().entries()) {
        // a quarter sample past the frame: Csound truncates a start time to a sample
        const std::string time = csoundNumber((static_cast<double>(j.frame) + 0.25) / sr);
        switch (j.kind) {
        case JournalEntry::event: {
            score += "i " + csoundNumber(j.pfields[0]) + " " + time;
            for (std::size_t i = 2; i < j.pfields.size(); ++i)
                score += " " + csoundNumber(j.pfields[i]);
            score += "\n";
            break;
        }
        case JournalEntry::tableWrite:
            score += fmt::format("i {} {} 0 {} {} {}\n", support::kTableWriteInstr, time, j.table,
                                 j.index, csoundNumber(j.value));
            break;
        case JournalEntry::channelWrite:
            score += fmt::format("i {} {} 0 {} {}\n", support::kChannelWriteInstr, time,
                                 quoted(j.channel), csoundNumber(j.value));
            break;
        }
    }
    const std::string end = csoundNumber((options.end * sr + 0.25) / sr);
    score += fmt::format("i {} {} 0\ne {}\n", support::kEndInstr, end, end);
    const auto orc = orchestra(engine);
    checkOrchestraLines(orc);
    return fmt::format("<CsoundSynthesizer>\n<CsOptions>\n{}\n</CsOptions>\n<CsInstruments>\n{}"
                       "</CsInstruments>\n<CsScore>\n{}</CsScore>\n</CsoundSynthesizer>\n",
                       options_line, orc, score);
}

} // namespace spinout
