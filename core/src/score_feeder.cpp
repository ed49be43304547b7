// The score, handed to a Processor block by block.
#include "spinout/score_feeder.hpp"

#include "spinout/sample_player.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace spinout {

ScoreFeeder::ScoreFeeder(Processor& processor, const Score& score)
    : processor_(processor), score_(score),
      // port automation starts a cycle early; one more cycle of margin
      lookahead_(2 * static_cast<std::int64_t>(processor.latency())) {
    const double sr = processor.engine().sr();
    auto frameOf = [&](double t) { return static_cast<std::int64_t>(std::llround(t * sr)); };
    processor.makeTables(score.tables());
    const auto& entries = score.entries();
    items_.reserve(entries.size());
    for (std::size_t i = 0; i < entries.size(); ++i)
        items_.push_back({frameOf(entries[i].time), i});
    // by frame; at one frame starts before changes, then the file's order
    std::stable_sort(items_.begin(), items_.end(), [&](const Item& a, const Item& b) {
        return a.frame != b.frame ? a.frame < b.frame
                                  : entries[a.entry].kind < entries[b.entry].kind;
    });
}

void ScoreFeeder::feed(std::int64_t hostFrameEnd) {
    for (; next_ < items_.size() && items_[next_].frame < hostFrameEnd + lookahead_; ++next_) {
        const auto& item = items_[next_];
        const auto& entry = score_.entries()[item.entry];
        // each entry is read from the score's text as it comes: nothing else is kept
        switch (entry.kind) {
        case ScoreEntry::event:
            startEvent(score_.event(entry), item.frame);
            break;
        case ScoreEntry::sample:
            startSample(score_.sample(entry), item.frame);
            break;
        case ScoreEntry::set:
            applySet(score_.set(entry), item.frame);
            break;
        case ScoreEntry::automation:
            startAutomation(score_.automation(entry), item.frame);
            break;
        case ScoreEntry::unsched:
            unsched(score_.unsched(entry), item.frame);
            break;
        }
    }
}

void ScoreFeeder::startEvent(const ScoreEvent& e, std::int64_t frame) {
    auto& session = processor_.session();
    try {
        const auto prepared =
            session.prepare(e.instr, e.priority.value_or(0), processor_.schedArgs(e.args));
        const Synth synth = session.startAt(prepared, frame, e.dur);
        if (!synth.valid())
            throw SessionError(fmt::format("too many instances sounding at {:.3f} s: all {} slots "
                                           "are in use",
                                           e.time, session.options().numSlots));
        remember(e.id, synth, session.getInstr(e.instr));
    } catch (const SessionError& err) {
        throw SessionFileError({{e.pos, fmt::format("[[event]]: {}", err.what())}});
    }
}

void ScoreFeeder::remember(const std::string& id, const Synth& synth, const Instr* instr) {
    if (!id.empty()) started_[id] = {synth, instr};
    // ended instances need not be kept: [[unsched]] all finds the live ones
    auto& session = processor_.session();
    std::erase_if(all_, [&](const Synth& s) { return !session.isScheduled(s); });
    all_.push_back(synth);
}

void ScoreFeeder::startSample(const ScoreSample& s, std::int64_t frame) {
    auto& session = processor_.session();
    try {
        const auto* table = processor_.table(s.table);
        if (table == nullptr) throw SessionError(fmt::format("no table named '{}'", s.table));
        const auto play = samplePlay(*table, s.dur, s.chan, s.gain, s.speed, s.loop, s.pan, s.skip);
        const auto prepared = session.prepare(kSamplePlayer, 1, play.args);
        const Synth synth = session.startAt(prepared, frame, play.dur);
        if (!synth.valid())
            throw SessionError(fmt::format("too many instances sounding at {:.3f} s: all {} slots "
                                           "are in use",
                                           s.time, session.options().numSlots));
        remember(s.id, synth, &samplePlayer());
    } catch (const SessionError& err) {
        throw SessionFileError({{s.pos, fmt::format("[[sample]]: {}", err.what())}});
    }
}

void ScoreFeeder::unsched(const ScoreUnsched& u, std::int64_t frame) {
    auto& session = processor_.session();
    const auto at = frame;
    if (u.all) {
        for (const auto& synth : all_)
            session.stopAt(synth, at, u.release);
        return;
    }
    session.stopAt(started(u.event, u.pos).synth, at, u.release);
}

double ScoreFeeder::end() const {
    double end = score_.end();
    for (const auto& entry : score_.entries()) {
        if (entry.kind != ScoreEntry::sample) continue;
        const auto s = score_.sample(entry);
        const auto* table = processor_.table(s.table);
        if (s.dur == 0 && !s.loop && table != nullptr && s.speed > 0)
            end = std::max(end, s.time + std::max(0.0, table->duration() - s.skip) / s.speed);
    }
    return end;
}

const ScoreFeeder::Started& ScoreFeeder::started(const std::string& id,
                                                 const SourcePos& pos) const {
    auto it = started_.find(id);
    if (it == started_.end()) // the parser checks that the event starts first
        throw SessionFileError({{pos, fmt::format("event '{}' has not started", id)}});
    return it->second;
}

void ScoreFeeder::applySet(const ScoreSet& s, std::int64_t frame) {
    auto& session = processor_.session();
    const auto& target = started(s.event, s.pos);
    for (const auto& [name, value] : s.args) {
        const auto* a = target.instr->arg(name);
        if (a == nullptr || !a->isControl()) continue; // the parser reported it
        if (!session.setAt(target.synth, a->index, value, frame))
            throw SessionFileError({{s.pos, "[[set]]: too many pending events"}});
    }
}

void ScoreFeeder::startAutomation(const ScoreAutomation& a, std::int64_t frame) {
    auto& session = processor_.session();
    try {
        if (!a.port.empty()) {
            const int port = processor_.spec().portIndex(a.port);
            processor_.automatePort(static_cast<std::size_t>(port), a.pairs, a.mode, frame,
                                    a.overtake);
            return;
        }
        if (!a.bus.empty()) {
            const auto bus = processor_.bus(a.bus);
            session.automateBusAt(bus, a.pairs, a.mode, frame, a.overtake);
            return;
        }
        const auto& target = started(a.event, a.pos);
        if (!session.isScheduled(target.synth)) return; // it ended: nothing to automate
        const auto* arg = target.instr->arg(a.param);
        if (arg == nullptr || !arg->isControl()) return; // the parser reported it
        session.automateAt(target.synth, arg->index, a.pairs, a.mode, frame, a.overtake);
    } catch (const SessionError& err) {
        throw SessionFileError({{a.pos, fmt::format("[[automate]]: {}", err.what())}});
    }
}

} // namespace spinout
