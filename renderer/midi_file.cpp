#include "midi_file.hpp"

#include <smf.h>

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <glib.h>

namespace spinout {

namespace {

// libsmf reports problems through glib's log; the command says them itself.
void quietLog(const gchar*, GLogLevelFlags, const gchar* message, gpointer user) {
    auto* last = static_cast<std::string*>(user);
    *last = message != nullptr ? message : "";
}

} // namespace

std::vector<TimedMidi> readMidiFile(const std::string& path) {
    if (!std::filesystem::exists(path))
        throw MidiFileError(fmt::format("{}: no such MIDI file", path));
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
