// spinout::Journal: what a session handed to Csound and wrote into its tables
// and channels, frame by frame. With the engine's code journal it is enough for
// a standalone .csd (csd.hpp). It allocates: never on in a plugin.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace spinout {

struct JournalEntry {
    std::int64_t frame = 0;
    enum Kind { event, tableWrite, channelWrite } kind = event;
    std::vector<double> pfields; // event
    int table = 0;               // tableWrite
    int index = 0;               // tableWrite
    double value = 0;            // tableWrite, channelWrite
    std::string channel;         // channelWrite
};

class Journal {
public:
    bool on() const noexcept { return on_; }
    void setOn(bool on) noexcept { on_ = on; }
    const std::vector<JournalEntry>& entries() const noexcept { return entries_; }

    void event(std::int64_t frame, std::span<const double> pfields) {
        if (!on_) return;
        JournalEntry e;
        e.frame = frame;
        e.pfields.assign(pfields.begin(), pfields.end());
        entries_.push_back(std::move(e));
    }
    void tableWrite(std::int64_t frame, int table, int index, double value) {
        if (!on_) return;
        JournalEntry e;
        e.frame = frame;
        e.kind = JournalEntry::tableWrite;
        e.table = table;
        e.index = index;
        e.value = value;
        entries_.push_back(std::move(e));
    }
    void channelWrite(std::int64_t frame, const std::string& channel, double value) {
        if (!on_) return;
        JournalEntry e;
        e.frame = frame;
        e.kind = JournalEntry::channelWrite;
        e.channel = channel;
        e.value = value;
        entries_.push_back(std::move(e));
    }

private:
    bool on_ = false;
    std::vector<JournalEntry> entries_;
};

} // namespace spinout
