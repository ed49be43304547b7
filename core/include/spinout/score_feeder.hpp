// spinout::ScoreFeeder: a score handed to a Processor block by block, as a host
// hands it MIDI. Each event is scheduled shortly before it starts, so it holds a
// slot only while it sounds and a score of any length costs what sounds at once;
// sets and automation are handed over when their time comes near.
// Not real-time: the renderer's thread, between blocks.
#pragma once

#include "spinout/processor.hpp"
#include "spinout/score_file.hpp"

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace spinout {

class ScoreFeeder {
public:
    // The score must outlive the feeder. Makes the score's tables now.
    ScoreFeeder(Processor& processor, const Score& score);
    // When the score's last action ends, samples played to their end included (seconds).
    double end() const;

    // Before each block: hands the processor what happens before `hostFrameEnd` (the
    // block's end) and a little after it. Throws SessionFileError naming the score
    // line of an event that cannot start (every slot in use).
    void feed(std::int64_t hostFrameEnd);
    bool done() const noexcept { return next_ == items_.size(); }

private:
    struct Item {
        std::int64_t frame = 0; // host frame
        std::size_t entry = 0;  // in the score's entries
    };
    void startEvent(const ScoreEvent& e, std::int64_t frame);
    void applySet(const ScoreSet& s, std::int64_t frame);
    void startAutomation(const ScoreAutomation& a, std::int64_t frame);
    void startSample(const ScoreSample& s, std::int64_t frame);
    void unsched(const ScoreUnsched& u, std::int64_t frame);
    void remember(const std::string& id, const Synth& synth, const Instr* instr);
    struct Started {
        Synth synth;
        const Instr* instr = nullptr;
    };
    const Started& started(const std::string& id, const SourcePos& pos) const;

    Processor& processor_;
    const Score& score_;
    std::vector<Item> items_; // by frame; at one frame starts first, then in file order
    std::size_t next_ = 0;
    std::unordered_map<std::string, Started> started_; // the started events with an id
    std::vector<Synth> all_; // every instance the score started, for [[unsched]] all
    std::int64_t lookahead_ = 0;
};

} // namespace spinout
