// The MIDI file reader: the shipped files give what libsmf gave, the tempo map moves
// notes and answers beat and bpm queries, and malformed input is a clean error.
#include "spinout/midi_file.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>

using namespace spinout;
namespace fs = std::filesystem;

namespace {

const fs::path kRoot = SPINOUT_SOURCE_DIR;

using Bytes = std::vector<std::uint8_t>;

Bytes operator+(Bytes a, const Bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

Bytes be32(std::uint32_t v) {
    return {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
            static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
}

Bytes chunk(const char* id, const Bytes& body) {
    return Bytes(id, id + 4) + be32(static_cast<std::uint32_t>(body.size())) + body;
}

Bytes header(int format, int tracks, std::uint16_t division) {
    return chunk("MThd",
                 {0, static_cast<std::uint8_t>(format), 0, static_cast<std::uint8_t>(tracks),
                  static_cast<std::uint8_t>(division >> 8),
                  static_cast<std::uint8_t>(division & 0xFF)});
}

// A format 0 file of one track, 480 ticks a quarter note.
Bytes smf0(const Bytes& track) {
    return header(0, 1, 480) + chunk("MTrk", track);
}

const Bytes kEnd = {0x00, 0xFF, 0x2F, 0x00};

Bytes tempo(int bpm) {
    const auto us = static_cast<std::uint32_t>(60000000 / bpm);
    return {0xFF,
            0x51,
            0x03,
            static_cast<std::uint8_t>(us >> 16),
            static_cast<std::uint8_t>(us >> 8),
            static_cast<std::uint8_t>(us)};
}

Bytes readBytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

MidiFile parse(const Bytes& b, const MidiReadOptions& o = {}) {
    return parseMidi(b, "t.mid", o);
}

// The error text of parsing `b`, or "" when it parses.
std::string errorOf(const Bytes& b, const MidiReadOptions& o = {}) {
    try {
        parse(b, o);
    } catch (const MidiFileError& e) {
        return e.what();
    }
    return "";
}

std::string bytesOf(const MidiEvent& e) {
    std::string s;
    for (int i = 0; i < e.size; ++i)
        s += fmt::format("{}{:02x}", i ? " " : "", e.data[i]);
    return s;
}

} // namespace

// tests/fixtures/midi/libsmf/*.events: what the libsmf-based reader gave for each file
// (time in seconds, then the bytes), written before it was removed.
TEST(MidiFile, GivesWhatLibsmfGave) {
    for (const auto& mid :
         {kRoot / "presets/polysynth.mid", kRoot / "presets/fmbells.mid",
          kRoot / "tests/fixtures/midi/phrase.mid", kRoot / "tests/fixtures/midi/storm.mid",
          kRoot / "tests/fixtures/midi/tempo.mid"}) {
        const auto expected =
            kRoot / "tests/fixtures/midi/libsmf" / (mid.stem().string() + ".events");
        std::ifstream in(expected);
        ASSERT_TRUE(in) << expected;
        const MidiFile f = readMidiFile(mid.string());
        std::string line;
        std::size_t i = 0;
        while (std::getline(in, line)) {
            ASSERT_LT(i, f.events.size()) << mid;
            std::istringstream ls(line);
            double time;
            ls >> time;
            std::string rest;
            std::getline(ls, rest);
            EXPECT_NEAR(f.events[i].time, time, 1e-9) << mid << " event " << i;
            EXPECT_EQ(" " + bytesOf(f.events[i]), rest) << mid << " event " << i;
            ++i;
        }
        EXPECT_EQ(i, f.events.size()) << mid;
        EXPECT_GT(i, 10u) << mid;
    }
}

TEST(MidiFile, RunningStatusAndTwoByteMessages) {
    const auto f = parse(smf0(Bytes{0x00, 0x90, 60, 100,  0x00, 64, 90,   0x83, 0x60, 60,   0,
                                    0x00, 64,   0,  0x00, 0xC2, 7,  0x00, 9,    0x00, 0xD2, 0x40} +
                              kEnd));
    ASSERT_EQ(f.events.size(), 7u);
    const char* expected[] = {"90 3c 64", "90 40 5a", "90 3c 00", "90 40 00",
                              "c2 07",    "c2 09",    "d2 40"};
    for (std::size_t i = 0; i < 7; ++i)
        EXPECT_EQ(bytesOf(f.events[i]), expected[i]) << i;
    EXPECT_EQ(f.events[4].size, 2);
    EXPECT_EQ(f.events[4].data[2], 0);       // unused bytes are 0
    EXPECT_DOUBLE_EQ(f.events[2].time, 0.5); // 480 ticks at 120 bpm
    EXPECT_DOUBLE_EQ(f.end(), 0.5);
}

TEST(MidiFile, TempoChangeInAnotherTrackMovesLaterNotes) {
    // track 1: a note-on every quarter note; track 2: 60 bpm from beat 2 on
    Bytes notes;
    for (int i = 0; i < 4; ++i)
        notes = notes + (i ? Bytes{0x83, 0x60} : Bytes{0x00}) + // 480 ticks apart
                Bytes{0x90, static_cast<std::uint8_t>(60 + i), 100};
    const Bytes tempoTrack = Bytes{0x87, 0x40} + tempo(60) + kEnd; // 960 ticks = beat 2
    const auto f =
        parse(header(1, 2, 480) + chunk("MTrk", notes + kEnd) + chunk("MTrk", tempoTrack));
    ASSERT_EQ(f.events.size(), 4u);
    EXPECT_DOUBLE_EQ(f.events[0].time, 0.0);
    EXPECT_DOUBLE_EQ(f.events[1].time, 0.5);
    EXPECT_DOUBLE_EQ(f.events[2].time, 1.0);
    EXPECT_DOUBLE_EQ(f.events[3].time, 2.0); // a quarter note now lasts 1 s
    ASSERT_EQ(f.tempo.size(), 2u);
    EXPECT_DOUBLE_EQ(f.tempo[1].time, 1.0);
    EXPECT_DOUBLE_EQ(f.tempo[1].beat, 2.0);
    EXPECT_DOUBLE_EQ(f.tempo[1].bpm, 60.0);
}

TEST(MidiFile, BeatAndBpmThroughTheTempoMap) {
    // tempo.mid: 3/4; 100 bpm, 150 bpm from beat 4 (2.4 s), 60 bpm from beat 8 (4.0 s)
    const auto f = readMidiFile((kRoot / "tests/fixtures/midi/tempo.mid").string());
    ASSERT_EQ(f.tempo.size(), 3u);
    EXPECT_NEAR(f.tempo[1].time, 2.4, 1e-9);
    EXPECT_NEAR(f.tempo[2].time, 4.0, 1e-9);
    EXPECT_NEAR(f.beatAt(0), 0, 1e-12);
    EXPECT_NEAR(f.beatAt(1.2), 2, 1e-9);
    EXPECT_NEAR(f.beatAt(3.0), 5.5, 1e-9);
    EXPECT_NEAR(f.beatAt(5.0), 9, 1e-9);
    EXPECT_NEAR(f.bpmAt(0), 100, 1e-9);
    EXPECT_NEAR(f.bpmAt(2.39), 100, 1e-9);
    EXPECT_NEAR(f.bpmAt(2.41), 150, 1e-9);
    EXPECT_NEAR(f.bpmAt(100), 60, 1e-9);
    ASSERT_EQ(f.meter.size(), 1u);
    EXPECT_EQ(f.meter[0].numerator, 3);
    EXPECT_EQ(f.meter[0].denominator, 4);
    EXPECT_EQ(f.meter[0].time, 0);
    // without a tempo event: 120 bpm
    const auto plain = parse(smf0(kEnd));
    EXPECT_DOUBLE_EQ(plain.bpmAt(3), 120);
    EXPECT_DOUBLE_EQ(plain.beatAt(3), 6);
}

TEST(MidiFile, SmpteDivisionCountsRealTime) {
    // 25 frames a second, 40 ticks a frame: a tick is 1 ms, whatever the tempo
    const Bytes track = Bytes{0x00} + tempo(60) + Bytes{0x00, 0x90, 60, 100, 0x87, 0x68, 60, 0} +
                        Bytes{0x00} + tempo(240) + Bytes{0x87, 0x68, 0x90, 62, 100} + kEnd;
    const auto f = parse(header(0, 1, 0xE728) + chunk("MTrk", track));
    ASSERT_EQ(f.events.size(), 3u);
    EXPECT_DOUBLE_EQ(f.events[1].time, 1.0);
    EXPECT_DOUBLE_EQ(f.events[2].time, 2.0);
    EXPECT_DOUBLE_EQ(f.beatAt(1.0), 1.0); // 60 bpm for the first second
    EXPECT_DOUBLE_EQ(f.beatAt(2.0), 5.0); // then 240
    // 29 stands for 29.97 (30000/1001) frames a second
    const auto drop = parse(header(0, 1, 0xE301) +
                            chunk("MTrk", Bytes{0x81, 0x75, 0x90, 60, 1} + kEnd)); // 245 ticks
    EXPECT_DOUBLE_EQ(drop.events[0].time, 245 * 1001.0 / 30000.0);
}

TEST(MidiFile, EqualTimesKeepTrackOrder) {
    const auto f = parse(header(1, 3, 96) + chunk("MTrk", Bytes{0x10, 0x92, 1, 1} + kEnd) +
                         chunk("MTrk", Bytes{0x10, 0x91, 1, 1, 0x00, 0x91, 2, 2} + kEnd) +
                         chunk("MTrk", Bytes{0x08, 0x90, 1, 1, 0x08, 0x90, 3, 3} + kEnd));
    std::vector<std::string> got;
    for (const auto& e : f.events)
        got.push_back(bytesOf(e));
    EXPECT_EQ(got, (std::vector<std::string>{"90 01 01", "92 01 01", "91 01 01", "91 02 02",
                                             "90 03 03"}));
}

TEST(MidiFile, SkipsUnknownChunksSysexAndGarbage) {
    const auto good = readBytes(kRoot / "tests/fixtures/midi/tempo.mid");
    const auto reference = parse(good).events;
    // an unknown chunk after the header and between tracks, garbage after the last track
    Bytes b(good.begin(), good.begin() + 14);
    b = b + chunk("XFIH", {1, 2, 3}) + Bytes(good.begin() + 14, good.end());
    b = b + Bytes{0, 0, 'g', 'a', 'r', 'b', 'a', 'g', 'e'};
    const auto f = parse(b);
    ASSERT_EQ(f.events.size(), reference.size());
    for (std::size_t i = 0; i < reference.size(); ++i) {
        EXPECT_EQ(f.events[i].time, reference[i].time);
        EXPECT_EQ(bytesOf(f.events[i]), bytesOf(reference[i]));
    }
    // F0 and F7 (escape) sysex, text metas and bytes after the end of track are skipped
    const auto s =
        parse(smf0(Bytes{0x00, 0xF7, 0x03, 0xF8, 0xFA, 0x01, 0x00, 0xF0, 0x02, 0x7E, 0xF7,
                         0x00, 0xFF, 0x01, 0x02, 'h',  'i',  0x00, 0x90, 60,   1} +
                   kEnd + Bytes{0x00, 0x90, 61, 1}));
    ASSERT_EQ(s.events.size(), 1u);
    EXPECT_EQ(bytesOf(s.events[0]), "90 3c 01");
}

TEST(MidiFile, MissingEndOfTrackAndZeroTracksAreFine) {
    const auto f = parse(smf0({0x00, 0x90, 60, 1, 0x60, 0x80, 60, 0}));
    EXPECT_EQ(f.events.size(), 2u);
    const auto empty = parse(header(1, 0, 480));
    EXPECT_TRUE(empty.events.empty());
    EXPECT_EQ(empty.end(), 0);
    ASSERT_EQ(empty.tempo.size(), 1u);
    EXPECT_EQ(empty.tempo[0].bpm, 120);
}

TEST(MidiFile, InputsThatAbortedLibsmfAreCleanErrors) {
    // the bytes: a system common status (F1) inside a track
    const Bytes f1 = Bytes{'M', 'T', 'h', 'd', 0, 0, 0, 6, 0, 0, 0, 1, 0x01, 0xE0} +
                     Bytes{'M', 'T', 'r', 'k', 0, 0, 0, 8, 0x00, 0xF1, 0, 0, 0x00, 0xFF, 0x2F, 0};
    EXPECT_EQ(errorOf(f1), "t.mid: not a valid MIDI file: track 1, byte 23: status 0xF1 (a system "
                           "common or real-time message) is not allowed in a MIDI file");
    // an F7 escape is read (libsmf asserted on any), then running status after a sysex
    for (const auto* name : {"sysex_escape", "sysex_running"}) {
        const auto b = readBytes(kRoot / "tests/fixtures/bad" / (std::string(name) + ".mid"));
        EXPECT_NE(errorOf(b).find("with no status byte before it (running status ends at each "
                                  "sysex and meta event)"),
                  std::string::npos)
            << name << ": " << errorOf(b);
    }
    EXPECT_NE(errorOf(smf0({0x00, 0x90, 60, 1, 0x00, 0xFF, 0x01, 0x00, 0x00, 61, 1}))
                  .find("track 1, byte 31: data byte 0x3D with no status"),
              std::string::npos);
}

TEST(MidiFile, EveryTruncationIsAnError) {
    const auto good = readBytes(kRoot / "tests/fixtures/midi/tempo.mid");
    for (std::size_t n = 0; n < good.size(); ++n) {
        const auto e = errorOf(Bytes(good.begin(), good.begin() + static_cast<long>(n)));
        EXPECT_NE(e.find("t.mid: not a valid MIDI file: "), std::string::npos) << n << ": " << e;
    }
    EXPECT_NE(errorOf(Bytes(good.begin(), good.end() - 1)).find("truncated"), std::string::npos);
    EXPECT_NE(errorOf(readBytes(kRoot / "tests/fixtures/bad/truncated.mid")).find("truncated"),
              std::string::npos);
}

TEST(MidiFile, MalformedStructureIsNamed) {
    auto has = [](const Bytes& b, const std::string& text) {
        const auto e = errorOf(b);
        EXPECT_NE(e.find(text), std::string::npos) << "expected: " << text << "\ngot: " << e;
    };
    has({'R', 'I', 'F', 'F', 0, 0, 0, 6, 0, 0, 0, 1, 0, 96}, "byte 0: no MIDI header (MThd)");
    has(header(0, 1, 0) + chunk("MTrk", kEnd), "byte 12: division of 0 ticks a quarter note");
    has(header(0, 1, 0xE800) + chunk("MTrk", kEnd), "SMPTE division of 0 ticks a frame");
    has(header(0, 1, 0x9C10) + chunk("MTrk", kEnd), "SMPTE division of 100 frames a second");
    has(header(2, 1, 96) + chunk("MTrk", kEnd), "format 2 (independent patterns) is not supported");
    has(header(7, 1, 96) + chunk("MTrk", kEnd), "unknown format 7");
    has(Bytes{'M', 'T', 'h', 'd', 0, 0, 0, 4, 0, 0, 0, 1, 0, 96}, "a header of 4 bytes");
    has(Bytes{'M', 'T', 'h', 'd', 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 1, 0, 96},
        "the header says 4294967295 bytes");
    // huge declared lengths: a chunk, a meta event, a sysex
    has(header(0, 1, 96) + Bytes{'M', 'T', 'r', 'k', 0xFF, 0xFF, 0xFF, 0xFF} + kEnd,
        "track 1, byte 18: the track chunk says 4294967295 bytes, the file has 4 left: truncated");
    has(header(0, 1, 96) + Bytes{'J', 'U', 'N', 'K', 0xFF, 0xFF, 0xFF, 0xF0},
        "the unknown chunk says");
    has(smf0({0x00, 0xFF, 0x01, 0xFF, 0xFF, 0xFF, 0x7F}), "the meta event's length says 268435455");
    has(smf0({0x00, 0xF0, 0x8F, 0xFF, 0xFF, 0x7F, 0xF7}), "the sysex length says");
    // a variable-length number of 5 bytes, or cut by the track's end
    has(smf0(Bytes{0x80, 0x80, 0x80, 0x80, 0x00, 0x90, 1, 1} + kEnd),
        "byte 22: the delta time is longer than 4 bytes");
    has(smf0({0x00, 0x90, 60, 1, 0x81}), "the delta time runs past the end of the track");
    has(smf0({0x00, 0x90, 60}), "a channel message cut short");
    has(smf0({0x00, 0x90, 60, 0x90}), "0x90 where a data byte (below 0x80) is expected");
    has(smf0({0x00, 0xFF}), "a meta event cut short");
    has(smf0({0x00}), "the track ends after a delta time, with no event");
    has(smf0({0x00, 0x40, 1}), "data byte 0x40 with no status byte");
    has(header(1, 3, 96) + chunk("MTrk", kEnd), "the header says 3 tracks, the file ends after 1");
    // the tempo and time signature events that set the map must be well formed
    has(smf0(Bytes{0x00, 0xFF, 0x51, 0x03, 0, 0, 0} + kEnd), "a tempo of 0 microseconds");
    has(smf0(Bytes{0x00, 0xFF, 0x51, 0x02, 1, 0} + kEnd), "a tempo event of 2 bytes");
    has(smf0(Bytes{0x00, 0xFF, 0x58, 0x04, 4, 40, 24, 8} + kEnd), "a time signature of 4/2^40");
}

TEST(MidiFile, AbsurdLengthIsAnErrorUnlessAsked) {
    const auto b = readBytes(kRoot / "tests/fixtures/bad/absurd_delta.mid");
    EXPECT_NE(errorOf(b).find("t.mid: the last MIDI message is at 77:40:"), std::string::npos)
        << errorOf(b);
    EXPECT_NE(errorOf(b).find("--duration"), std::string::npos);
    // with a longer limit it is read; with dropLater the late message is left out
    const auto all = parse(b, {.maxSeconds = 1e6});
    ASSERT_EQ(all.events.size(), 3u);
    EXPECT_NEAR(all.events[2].time, (0x60 + 0x0FFFFFFF) / 960.0, 1e-6);
    const auto cut = parse(b, {.maxSeconds = 10, .dropLater = true});
    ASSERT_EQ(cut.events.size(), 2u);
    EXPECT_DOUBLE_EQ(cut.end(), 0.1);
}

TEST(MidiFile, FilesThatCannotBeRead) {
    try {
        readMidiFile((kRoot / "no-such.mid").string());
        FAIL();
    } catch (const MidiFileError& e) {
        EXPECT_NE(std::string(e.what()).find("no-such.mid: cannot read the MIDI file"),
                  std::string::npos);
    }
    EXPECT_THROW(readMidiFile(kRoot.string()), MidiFileError); // a folder
}
