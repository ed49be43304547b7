// The Standard MIDI File reader (see midi_file.hpp). Written against the SMF 1.0
// specification; every read is bounds-checked against the chunk it belongs to, each
// loop step consumes at least one byte, and memory grows only with the bytes that
// are really in the file.
#include "spinout/midi_file.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>

namespace spinout {

namespace {

// A MIDI file is kilobytes; a larger one is not worth the memory (up to ~16 bytes of
// events for each 2 bytes of file).
constexpr std::size_t kMaxFileBytes = 16u << 20;

struct RawEvent {
    std::uint64_t tick;
    std::uint8_t size;
    std::uint8_t data[3];
};

struct RawTempo {
    std::uint64_t tick;
    std::uint32_t usPerQuarter;
};

struct RawMeter {
    std::uint64_t tick;
    int numerator;
    int denominator;
};

// A segment of the tempo map, in ticks.
struct Segment {
    std::uint64_t tick;
    std::uint32_t usPerQuarter;
    double seconds;
    double beat;
};

class Reader {
public:
    Reader(std::span<const std::uint8_t> d, const std::string& name) : d_(d), name_(name) {}

    MidiFile read(const MidiReadOptions& options);

private:
    [[noreturn]] void fail(std::size_t at, const std::string& what) const {
        throw MidiFileError(fmt::format("{}: not a valid MIDI file: {}byte {}: {}", name_,
                                        track_ > 0 ? fmt::format("track {}, ", track_) : "", at,
                                        what));
    }
    std::uint32_t u32(std::size_t at) const {
        return static_cast<std::uint32_t>(d_[at]) << 24 |
               static_cast<std::uint32_t>(d_[at + 1]) << 16 |
               static_cast<std::uint32_t>(d_[at + 2]) << 8 | d_[at + 3];
    }
    std::uint32_t u16(std::size_t at) const {
        return static_cast<std::uint32_t>(d_[at]) << 8 | d_[at + 1];
    }
    // A variable-length quantity (at most 4 bytes, 28 bits) ending before `end`.
    std::uint32_t vlq(std::size_t& at, std::size_t end, const char* what) const;
    // A length read as a VLQ, checked against what is left before `end`.
    std::size_t length(std::size_t& at, std::size_t end, const char* what) const;
    void readTrack(std::size_t begin, std::size_t end);
    double secondsAt(const Segment& s, std::uint64_t tick) const;
    double beatAt(const Segment& s, std::uint64_t tick, double seconds) const;

    std::span<const std::uint8_t> d_;
    const std::string& name_;
    int track_ = 0; // 1-based while a track is read
    std::uint32_t ppq_ = 0;
    double ticksPerSecond_ = 0; // SMPTE division
    std::vector<RawEvent> events_;
    std::vector<RawTempo> tempi_;
    std::vector<RawMeter> meters_;
};

std::uint32_t Reader::vlq(std::size_t& at, std::size_t end, const char* what) const {
    const std::size_t start = at;
    std::uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
        if (at >= end) fail(start, fmt::format("the {} runs past the end of the track", what));
        const std::uint8_t b = d_[at++];
        v = v << 7 | (b & 0x7Fu);
        if ((b & 0x80) == 0) return v;
    }
    fail(start, fmt::format("the {} is longer than 4 bytes", what));
}

std::size_t Reader::length(std::size_t& at, std::size_t end, const char* what) const {
    const std::size_t start = at;
    const std::uint32_t n = vlq(at, end, what);
    if (n > end - at)
        fail(start, fmt::format("the {} says {} bytes, the track has {} left", what, n, end - at));
    return n;
}

void Reader::readTrack(std::size_t begin, std::size_t end) {
    std::size_t i = begin;
    std::uint64_t tick = 0; // at most 2^28 a byte of the file: no overflow
    std::uint8_t running = 0;
    while (i < end) {
        tick += vlq(i, end, "delta time");
        if (i >= end) fail(i, "the track ends after a delta time, with no event");
        const std::size_t at = i;
        const std::uint8_t status = d_[i];
        if (status == 0xFF) {
            if (end - i < 2) fail(at, "a meta event cut short by the end of the track");
            const std::uint8_t type = d_[i + 1];
            i += 2;
            const std::size_t n = length(i, end, "meta event's length");
            running = 0;              // a meta event cancels running status
            if (type == 0x2F) return; // end of track: what follows in the chunk is ignored
            if (type == 0x51) {
                if (n != 3) fail(at, fmt::format("a tempo event of {} bytes (3 expected)", n));
                const std::uint32_t us = static_cast<std::uint32_t>(d_[i]) << 16 |
                                         static_cast<std::uint32_t>(d_[i + 1]) << 8 | d_[i + 2];
                if (us == 0) fail(at, "a tempo of 0 microseconds per quarter note");
                tempi_.push_back({tick, us});
            } else if (type == 0x58) {
                if (n != 4)
                    fail(at, fmt::format("a time signature event of {} bytes (4 expected)", n));
                const int num = d_[i];
                const int power = d_[i + 1];
                if (num == 0 || power > 7)
                    fail(at, fmt::format("a time signature of {}/2^{}", num, power));
                meters_.push_back({tick, num, 1 << power});
            }
            i += n;
        } else if (status == 0xF0 || status == 0xF7) {
            // F0: a system exclusive message; F7: an escape (any bytes). Both skipped.
            ++i;
            i += length(i, end, "sysex length");
            running = 0; // a sysex cancels running status
        } else if (status > 0xF0) {
            fail(at, fmt::format("status 0x{:02X} (a system common or real-time message) is not "
                                 "allowed in a MIDI file",
                                 status));
        } else {
            if (status & 0x80) {
                running = status;
                ++i;
            } else if (running == 0) {
                fail(at, fmt::format("data byte 0x{:02X} with no status byte before it (running "
                                     "status ends at each sysex and meta event)",
                                     status));
            }
            const std::uint8_t kind = running & 0xF0;
            const std::size_t n = kind == 0xC0 || kind == 0xD0 ? 1 : 2;
            if (end - i < n) fail(at, "a channel message cut short by the end of the track");
            RawEvent e{tick, static_cast<std::uint8_t>(n + 1), {running, 0, 0}};
            for (std::size_t k = 0; k < n; ++k) {
                if (d_[i + k] & 0x80)
                    fail(i + k, fmt::format("0x{:02X} where a data byte (below 0x80) is expected",
                                            d_[i + k]));
                e.data[k + 1] = d_[i + k];
            }
            i += n;
            events_.push_back(e);
        }
    }
    // No end-of-track event: the chunk's end ends the track (as most readers do).
}

double Reader::secondsAt(const Segment& s, std::uint64_t tick) const {
    if (ppq_ == 0) return static_cast<double>(tick) / ticksPerSecond_;
    return s.seconds + static_cast<double>(tick - s.tick) *
                           (s.usPerQuarter / (static_cast<double>(ppq_) * 1000000.0));
}

double Reader::beatAt(const Segment& s, std::uint64_t tick, double seconds) const {
    if (ppq_ == 0) return s.beat + (seconds - s.seconds) * 1e6 / s.usPerQuarter;
    return static_cast<double>(tick) / ppq_;
}

MidiFile Reader::read(const MidiReadOptions& options) {
    const std::size_t size = d_.size();
    if (size < 14 || d_[0] != 'M' || d_[1] != 'T' || d_[2] != 'h' || d_[3] != 'd')
        fail(0, "no MIDI header (MThd)");
    const std::uint32_t headerLength = u32(4);
    if (headerLength < 6) fail(4, fmt::format("a header of {} bytes (6 expected)", headerLength));
    if (headerLength > size - 8)
        fail(4, fmt::format("the header says {} bytes, the file has {}", headerLength, size - 8));
    const std::uint32_t format = u16(8);
    const std::uint32_t tracks = u16(10);
    const std::uint32_t division = u16(12);
    // Format 2 holds independent patterns, not one piece: merging them (what libsmf did)
    // plays them at once, and playing them in a row guesses at an order the file does not
    // state. A user who means either can save the file as format 1.
    if (format == 2)
        fail(8, "format 2 (independent patterns) is not supported: save it as format 1");
    if (format > 2) fail(8, fmt::format("unknown format {}", format));
    if (division & 0x8000) {
        const int fps = -static_cast<int>(static_cast<std::int8_t>(division >> 8));
        const std::uint32_t perFrame = division & 0xFF;
        if (fps != 24 && fps != 25 && fps != 29 && fps != 30)
            fail(12, fmt::format("SMPTE division of {} frames a second (24, 25, 29 or 30 "
                                 "expected)",
                                 fps));
        if (perFrame == 0) fail(12, "SMPTE division of 0 ticks a frame");
        ticksPerSecond_ = (fps == 29 ? 30000.0 / 1001.0 : fps) * perFrame;
    } else {
        if (division == 0) fail(12, "division of 0 ticks a quarter note");
        ppq_ = division;
    }

    std::size_t pos = 8 + static_cast<std::size_t>(headerLength); // longer headers: skipped
    std::uint32_t found = 0;
    while (found < tracks) {
        if (size - pos < 8)
            fail(pos, fmt::format("the header says {} tracks, the file ends after {}: truncated",
                                  tracks, found));
        const bool isTrack =
            d_[pos] == 'M' && d_[pos + 1] == 'T' && d_[pos + 2] == 'r' && d_[pos + 3] == 'k';
        const std::uint32_t length = u32(pos + 4);
        if (length > size - pos - 8) {
            if (isTrack) track_ = static_cast<int>(found) + 1;
            fail(pos + 4, fmt::format("the {} chunk says {} bytes, the file has {} left: truncated",
                                      isTrack ? "track" : "unknown", length, size - pos - 8));
        }
        if (isTrack) {
            track_ = static_cast<int>(++found);
            readTrack(pos + 8, pos + 8 + length);
            track_ = 0;
        } // chunks of other types are skipped, as the specification asks
        pos += 8 + static_cast<std::size_t>(length);
    }
    // Anything after the last declared track is ignored.

    // Merge by tick: tracks were read in order, so a stable sort keeps track order,
    // then file order, at equal ticks.
    auto byTick = [](const auto& a, const auto& b) { return a.tick < b.tick; };
    std::stable_sort(events_.begin(), events_.end(), byTick);
    std::stable_sort(tempi_.begin(), tempi_.end(), byTick);
    std::stable_sort(meters_.begin(), meters_.end(), byTick);

    std::vector<Segment> map{{0, 500000, 0, 0}}; // 120 bpm until the file says otherwise
    for (const auto& t : tempi_) {
        const Segment& last = map.back();
        if (t.tick == last.tick) {
            map.back().usPerQuarter = t.usPerQuarter; // the later event at a tick wins
            continue;
        }
        const double seconds = secondsAt(last, t.tick);
        map.push_back({t.tick, t.usPerQuarter, seconds, beatAt(last, t.tick, seconds)});
    }
    auto segmentOf = [&](std::size_t& s, std::uint64_t tick) -> const Segment& {
        while (s + 1 < map.size() && map[s + 1].tick <= tick)
            ++s;
        return map[s];
    };

    MidiFile out;
    out.tempo.reserve(map.size());
    for (const auto& s : map)
        out.tempo.push_back({s.seconds, s.beat, 60e6 / s.usPerQuarter});
    std::size_t s = 0;
    for (const auto& m : meters_) {
        const Segment& seg = segmentOf(s, m.tick);
        const double seconds = secondsAt(seg, m.tick);
        MeterChange c{seconds, beatAt(seg, m.tick, seconds), m.numerator, m.denominator};
        if (!out.meter.empty() && out.meter.back().time == c.time)
            out.meter.back() = c;
        else
            out.meter.push_back(c);
    }
    out.events.reserve(events_.size());
    s = 0;
    for (const auto& e : events_) {
        MidiEvent m;
        m.time = secondsAt(segmentOf(s, e.tick), e.tick);
        m.size = e.size;
        std::copy(e.data, e.data + 3, m.data);
        out.events.push_back(m);
    }
    events_ = {};

    if (!out.events.empty() && !(out.events.back().time <= options.maxSeconds)) {
        if (options.dropLater) {
            const auto later =
                std::upper_bound(out.events.begin(), out.events.end(), options.maxSeconds,
                                 [](double limit, const MidiEvent& e) { return limit < e.time; });
            out.events.erase(later, out.events.end());
        } else {
            const double t = out.events.back().time;
            const auto whole = static_cast<long long>(std::min(t, 1e15));
            throw MidiFileError(fmt::format(
                "{}: the last MIDI message is at {}:{:02}:{:02} ({:.1f} s), past the limit of {} "
                "s: a damaged file? Give the render's length with --duration to play it anyway",
                name_, whole / 3600, whole / 60 % 60, whole % 60, t, options.maxSeconds));
        }
    }
    return out;
}

const TempoChange* tempoAt(const std::vector<TempoChange>& tempo, double seconds) {
    if (tempo.empty()) return nullptr;
    auto it = std::upper_bound(tempo.begin(), tempo.end(), seconds,
                               [](double t, const TempoChange& c) { return t < c.time; });
    return it == tempo.begin() ? &*it : &*(it - 1);
}

} // namespace

double MidiFile::end() const {
    return events.empty() ? 0 : events.back().time;
}

double MidiFile::beatAt(double seconds) const {
    const TempoChange* t = tempoAt(tempo, seconds);
    if (t == nullptr) return seconds * 2; // 120 bpm
    return t->beat + (seconds - t->time) * t->bpm / 60;
}

double MidiFile::bpmAt(double seconds) const {
    const TempoChange* t = tempoAt(tempo, seconds);
    return t == nullptr ? 120 : t->bpm;
}

MidiFile parseMidi(std::span<const std::uint8_t> bytes, const std::string& name,
                   const MidiReadOptions& options) {
    return Reader(bytes, name).read(options);
}

MidiFile readMidiFile(const std::string& path, const MidiReadOptions& options) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw MidiFileError(fmt::format("{}: cannot read the MIDI file", path));
    std::vector<std::uint8_t> bytes;
    char buf[65536];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        bytes.insert(bytes.end(), buf, buf + in.gcount());
        if (bytes.size() > kMaxFileBytes)
            throw MidiFileError(
                fmt::format("{}: more than {} MiB: not a MIDI file", path, kMaxFileBytes >> 20));
    }
    if (in.bad()) throw MidiFileError(fmt::format("{}: cannot read the MIDI file", path));
    return parseMidi(bytes, path, options);
}

} // namespace spinout
