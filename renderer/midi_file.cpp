#include "midi_file.hpp"

#include <smf.h>

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <glib.h>
#include <iterator>
#include <vector>

namespace spinout {

namespace {

// libsmf asserts (aborts) on some malformed files, so the structure is walked
// here first, with bounds checked; libsmf then reads a file known to be whole.
std::string structureError(const std::vector<unsigned char>& d) {
    std::size_t pos = 0;
    auto u32 = [&](std::size_t at) {
        return static_cast<std::uint32_t>(d[at]) << 24 |
               static_cast<std::uint32_t>(d[at + 1]) << 16 |
               static_cast<std::uint32_t>(d[at + 2]) << 8 | d[at + 3];
    };
    if (d.size() < 14 || std::string(d.begin(), d.begin() + 4) != "MThd" || u32(4) < 6)
        return "no MIDI header (MThd)";
    const int tracks = d[10] << 8 | d[11];
    pos = 8 + u32(4);
    for (int t = 0; t < tracks; ++t) {
        if (pos + 8 > d.size())
            return fmt::format("track {} is missing: the file is truncated", t + 1);
        if (std::string(d.begin() + static_cast<long>(pos),
                        d.begin() + static_cast<long>(pos) + 4) != "MTrk")
            return fmt::format("track {}: no MTrk chunk at byte {}", t + 1, pos);
        const std::size_t len = u32(pos + 4);
        const std::size_t end = pos + 8 + len;
        if (end > d.size())
            return fmt::format("track {} claims {} bytes, the file has {}: truncated", t + 1, len,
                               d.size() - pos - 8);
        std::size_t i = pos + 8;
        int running = 0;
        bool ended = false;
        auto vlq = [&](std::size_t& at) -> long {
            long v = 0;
            for (int k = 0; k < 4; ++k) {
                if (at >= end) return -1;
                const auto b = d[at++];
                v = v << 7 | (b & 0x7F);
                if ((b & 0x80) == 0) return v;
            }
            return -1;
        };
        while (i < end && !ended) {
            if (vlq(i) < 0) return fmt::format("track {}: bad delta time at byte {}", t + 1, i);
            if (i >= end) return fmt::format("track {}: event missing at byte {}", t + 1, i);
            int status = d[i];
            if (status == 0xFF) {
                if (i + 2 > end)
                    return fmt::format("track {}: cut meta event at byte {}", t + 1, i);
                const int type = d[i + 1];
                i += 2;
                const long n = vlq(i);
                if (n < 0 || i + static_cast<std::size_t>(n) > end)
                    return fmt::format("track {}: cut meta event at byte {}", t + 1, i);
                i += static_cast<std::size_t>(n);
                ended = type == 0x2F;
            } else if (status == 0xF0 || status == 0xF7) {
                ++i;
                const long n = vlq(i);
                if (n < 0 || i + static_cast<std::size_t>(n) > end)
                    return fmt::format("track {}: cut sysex at byte {}", t + 1, i);
                i += static_cast<std::size_t>(n);
            } else {
                if (status & 0x80) {
                    running = status;
                    ++i;
                } else if (running == 0) {
                    return fmt::format("track {}: data byte without a status at byte {}", t + 1, i);
                }
                const int type = running & 0xF0;
                const std::size_t n = (type == 0xC0 || type == 0xD0) ? 1 : 2;
                if (i + n > end) return fmt::format("track {}: cut event at byte {}", t + 1, i);
                for (std::size_t k = 0; k < n; ++k)
                    if (d[i + k] & 0x80)
                        return fmt::format("track {}: bad data byte at byte {}", t + 1, i + k);
                i += n;
            }
        }
        if (!ended) return fmt::format("track {} has no end-of-track event: truncated?", t + 1);
        pos = end;
    }
    return {};
}

// libsmf reports problems through glib's log; the command says them itself.
void quietLog(const gchar*, GLogLevelFlags, const gchar* message, gpointer user) {
    auto* last = static_cast<std::string*>(user);
    *last = message != nullptr ? message : "";
}

} // namespace

std::vector<TimedMidi> readMidiFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw MidiFileError(fmt::format("{}: cannot read the MIDI file", path));
    const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)),
                                           std::istreambuf_iterator<char>());
    if (const auto err = structureError(bytes); !err.empty())
        throw MidiFileError(fmt::format("{}: not a valid MIDI file: {}", path, err));
    std::string lastMessage;
    const guint handler = g_log_set_handler(
        nullptr,
        static_cast<GLogLevelFlags>(G_LOG_LEVEL_MASK | G_LOG_FLAG_FATAL | G_LOG_FLAG_RECURSION),
        quietLog, &lastMessage);
    smf_t* smf = smf_load(path.c_str());
    std::vector<TimedMidi> out;
    if (smf != nullptr) {
        smf_rewind(smf);
        while (smf_event_t* e = smf_get_next_event(smf)) {
            if (smf_event_is_metadata(e) || smf_event_is_sysex(e) || e->midi_buffer_length < 1)
                continue;
            const std::uint8_t status = e->midi_buffer[0];
            if (status < 0x80 || status >= 0xF0) continue;
            TimedMidi m;
            m.time = e->time_seconds;
            m.size = static_cast<std::uint8_t>(std::min<std::size_t>(e->midi_buffer_length, 3));
            std::copy(e->midi_buffer, e->midi_buffer + m.size, m.data);
            out.push_back(m);
        }
        smf_delete(smf);
    }
    g_log_remove_handler(nullptr, handler);
    if (smf == nullptr)
        throw MidiFileError(fmt::format("{}: not a valid MIDI file{}", path,
                                        lastMessage.empty() ? "" : " (" + lastMessage + ")"));
    std::stable_sort(out.begin(), out.end(),
                     [](const TimedMidi& a, const TimedMidi& b) { return a.time < b.time; });
    return out;
}

} // namespace spinout
