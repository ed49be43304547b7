// The renderer: an ordinary host of Processor. It reads the session, the MIDI file, the
// score and the input, and feeds the processor block by block (MIDI and score events at
// their frames, input audio), writing what comes out to a sound file.
#include "render.hpp"

#include "spinout/csd.hpp"
#include "spinout/midi_file.hpp"
#include "spinout/processor.hpp"
#include "spinout/score_feeder.hpp"
#include "spinout/score_file.hpp"
#include "spinout/suggest.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <span>

namespace spinout {

namespace {

// The audio input: a sound file, or samples held in memory (the Python module's arrays).
class InputSource {
public:
    explicit InputSource(const std::string& path)
        : file_(std::make_unique<SoundFileReader>(path)) {}
    explicit InputSource(std::shared_ptr<const Audio> audio) : audio_(std::move(audio)) {}
    int sr() const { return file_ ? file_->sr() : audio_->sr; }
    int nchnls() const { return file_ ? file_->nchnls() : audio_->nchnls; }
    std::int64_t frames() const { return file_ ? file_->frames() : audio_->frames(); }
    std::int64_t read(double* interleaved, std::int64_t frames) {
        if (file_) return file_->read(interleaved, frames);
        const std::int64_t n = std::min(frames, audio_->frames() - pos_);
        const auto* from = audio_->samples.data() + pos_ * audio_->nchnls;
        std::copy(from, from + n * audio_->nchnls, interleaved);
        pos_ += n;
        return n;
    }

private:
    std::unique_ptr<SoundFileReader> file_;
    std::shared_ptr<const Audio> audio_;
    std::int64_t pos_ = 0;
};

// Csound's messages of the last block: runtime errors end the render, in the session's
// terms; with `verbose`, every message goes to the job's message callback.
void checkMessages(Processor& proc, const RenderJob& job) {
    std::vector<Diagnostic> errors;
    proc.drainMessages(job.messages, [&](const Diagnostic& d) { errors.push_back(d); });
    if (!errors.empty()) throw SessionFileError(std::move(errors));
}

// Adds the samples to a running peak and sum of squares. Four sums in turn: one chain of
// dependent additions waits on each (a millisecond of a short render).
void measureLevel(std::span<const float> samples, double& peak, double& sumSquares) {
    std::array<double, 4> sums{}, peaks{};
    std::size_t i = 0;
    for (; i + 4 <= samples.size(); i += 4)
        for (std::size_t k = 0; k < 4; ++k) {
            const double v = samples[i + k];
            peaks[k] = std::max(peaks[k], std::fabs(v));
            sums[k] += v * v;
        }
    for (; i < samples.size(); ++i) {
        const double v = samples[i];
        peaks[0] = std::max(peaks[0], std::fabs(v));
        sums[0] += v * v;
    }
    peak = std::max({peak, peaks[0], peaks[1], peaks[2], peaks[3]});
    sumSquares += (sums[0] + sums[1]) + (sums[2] + sums[3]);
}

} // namespace

std::vector<HostPosition> transportOf(std::span<const TempoChange> tempo,
                                      std::span<const MeterChange> meter, int sr) {
    // the meter's segments: where each starts, in quarters, bars and beats of its own
    struct Segment {
        double quarter = 0, bar = 0, beat = 0;
        int numerator = 4, denominator = 4;
        double barQuarters() const { return numerator * 4.0 / denominator; }
    };
    std::vector<Segment> segments{{}};
    for (const auto& m : meter) {
        if (m.numerator < 1 || m.denominator < 1) continue;
        const auto& prev = segments.back();
        const double dq = std::max(0.0, m.beat - prev.quarter);
        // a meter changes at a bar line: one that comes inside a bar starts a new bar
        Segment s{m.beat, prev.bar + std::ceil(dq / prev.barQuarters() - 1e-9),
                  prev.beat + dq * prev.denominator / 4, m.numerator, m.denominator};
        if (dq == 0) segments.pop_back(); // a change at the same time replaces the last
        segments.push_back(s);
    }
    std::vector<double> times{0};
    for (const auto& t : tempo)
        times.push_back(t.time);
    for (const auto& m : meter)
        times.push_back(m.time);
    std::sort(times.begin(), times.end());
    times.erase(std::unique(times.begin(), times.end()), times.end());
    std::vector<HostPosition> out;
    for (const double time : times) {
        if (time < 0) continue;
        // the tempo and the quarter notes at `time`
        TempoChange at{0, 0, 120};
        for (const auto& t : tempo)
            if (t.time <= time) at = t;
        const double quarter = at.beat + (time - at.time) * at.bpm / 60;
        Segment seg = segments.front();
        for (const auto& s : segments)
            if (s.quarter <= quarter + 1e-9) seg = s;
        const double dq = std::max(0.0, quarter - seg.quarter);
        const double bars = dq / seg.barQuarters();
        HostPosition p;
        p.frame = static_cast<std::int64_t>(std::llround(time * sr));
        p.time.fields = HostTime::allFields;
        p.time.bpm = at.bpm * seg.denominator / 4;
        p.time.beat = seg.beat + dq * seg.denominator / 4;
        p.time.bar = seg.bar + std::floor(bars);
        p.time.barBeat = (bars - std::floor(bars)) * seg.numerator;
        p.time.beatsPerBar = seg.numerator;
        p.time.beatUnit = seg.denominator;
        p.time.speed = 1;
        p.time.frame = p.frame;
        if (!out.empty() && out.back().frame == p.frame) out.pop_back();
        out.push_back(p);
    }
    return out;
}

RenderResult render(const RenderJob& job) {
    SessionSpec spec = job.spec ? *job.spec : parseSessionFile(job.session);
    if (job.ksmps) spec.ksmps = *job.ksmps;

    std::unique_ptr<InputSource> input;
    if (job.inputAudio) {
        if (spec.audioInputs == 0)
            throw RenderError(fmt::format("{}: the session has no audio input", job.session));
        input = std::make_unique<InputSource>(job.inputAudio);
    } else if (!job.input.empty()) {
        if (spec.audioInputs == 0)
            throw RenderError(
                fmt::format("{}: the session has no audio input for --input", job.session));
        try {
            input = std::make_unique<InputSource>(job.input);
        } catch (const SoundFileError& e) {
            throw RenderError(e.what());
        }
    }
    const int inputSr = input ? input->sr() : 0;
    const int sr = job.sr > 0 ? job.sr : (inputSr > 0 ? inputSr : 48000);
    if (inputSr > 0 && inputSr != sr)
        throw RenderError(
            fmt::format("{}: the input is at {} Hz, the render at {} Hz (give --sr {})", job.input,
                        inputSr, sr, inputSr));
    if (sr < 1000 || sr > 768000) throw RenderError(fmt::format("--sr {} is out of range", sr));

    std::vector<MidiEvent> midi;
    std::vector<TempoChange> tempo; // the MIDI file's, for a session with host time
    std::vector<MeterChange> meter;
    if (!job.midi.empty()) {
        try {
            // with --duration, messages past the render's end are left out, not refused
            MidiReadOptions options;
            if (job.duration)
                options = {.maxSeconds = *job.duration + std::max(job.tail, 0.0),
                           .dropLater = true};
            auto file = readMidiFile(job.midi, options);
            midi = std::move(file.events);
            tempo = std::move(file.tempo);
            meter = std::move(file.meter);
        } catch (const MidiFileError& e) {
            throw RenderError(e.what());
        }
    }
    Score score;
    if (!job.score.empty()) score = parseScoreFile(job.score, spec);

    ProcessorOptions po;
    po.sr = sr;
    po.session.journal = job.csd;
    po.grants = Grants::none(spec.dir);
    po.grants.permissions = job.allow;
    po.watchdog = job.watchdog;
    po.realTime = false;
    // Csound's time between two calls: the watchdog waits on it, and on nothing else
    const auto busy = [&](const char* what) {
        if (job.watchdog != nullptr) job.watchdog->busy(what);
    };
    const auto idle = [&] {
        if (job.watchdog != nullptr) job.watchdog->idle();
    };
    // A preset and --set are the ports' values from the start: what loads sees them.
    if (!job.preset.empty()) {
        const auto* preset = spec.preset(job.preset);
        if (preset == nullptr) {
            std::vector<std::string> names;
            for (const auto& p : spec.presets)
                names.push_back(p.name);
            throw RenderError(fmt::format("{}: no preset '{}'{}", job.session, job.preset,
                                          didYouMean(job.preset, names, "presets")));
        }
        for (const auto& [symbol, value] : preset->values)
            if (const int i = spec.portIndex(symbol); i >= 0)
                po.portValues.emplace_back(static_cast<std::size_t>(i), value);
    }
    for (const auto& [symbol, value] : job.sets) {
        const int i = spec.portIndex(symbol);
        if (i < 0) {
            std::vector<std::string> names;
            for (const auto& p : spec.ports)
                names.push_back(p.symbol);
            throw RenderError(fmt::format("{}: no port '{}'{}", job.session, symbol,
                                          didYouMean(symbol, names, "ports")));
        }
        const auto& port = spec.ports[static_cast<std::size_t>(i)];
        if (value < port.min || value > port.max)
            throw RenderError(
                fmt::format("--set {}={}: outside {} .. {}", symbol, value, port.min, port.max));
        po.portValues.emplace_back(static_cast<std::size_t>(i), value);
    }
    busy("loading the session");
    auto owner = std::make_shared<Processor>(spec, po);
    Processor& proc = *owner;

    // The score reaches the processor block by block, as MIDI does.
    ScoreFeeder feeder(proc, score);
    // So does the host's time, for a session that takes it.
    std::vector<HostPosition> transport;
    if (proc.takesHostTime()) {
        if (tempo.empty()) tempo.push_back({0, 0, job.bpm.value_or(120)});
        transport = transportOf(tempo, meter, sr);
    }

    double contentEnd = feeder.end();
    if (!midi.empty()) contentEnd = std::max(contentEnd, midi.back().time);
    if (input) contentEnd = std::max(contentEnd, static_cast<double>(input->frames()) / sr);
    if (job.tail < 0) throw RenderError("--tail must be 0 or more");
    // --duration is the file's length; the tail follows the material's end
    const double seconds = job.duration ? *job.duration : contentEnd + job.tail;
    // a score's times are finite but may be absurd: a frame count must not overflow
    if (!(seconds <= kMaxSeconds))
        throw RenderError(fmt::format("the content ends at {:g} s, past the {:g} s a render "
                                      "may last: give --duration",
                                      contentEnd, kMaxSeconds));
    const auto frames = static_cast<std::int64_t>(std::llround(seconds * sr));
    if (frames <= 0)
        throw RenderError("nothing to render: give --duration, a score, MIDI or an input");

    std::unique_ptr<SoundFileWriter> writer;
    if (!job.output.empty()) {
        try {
            writer = std::make_unique<SoundFileWriter>(job.output, sr, proc.numOutputs(),
                                                       job.format, frames);
        } catch (const SoundFileError& e) {
            throw RenderError(e.what());
        }
    }

    // --trace: the traced ports' values at every cycle (blocks of ksmps give every cycle;
    // the output is the same at any block size)
    std::vector<std::size_t> traced;
    std::vector<double> row; // the traced input ports' values for the cycle
    std::ofstream trace;
    auto blocks = job.blocks;
    if (!job.trace.empty()) {
        std::vector<std::string> symbols;
        for (const auto& p : spec.ports)
            symbols.push_back(p.symbol);
        std::string header = "time";
        for (const auto& symbol : job.trace) {
            const int i = spec.portIndex(symbol);
            if (i < 0)
                throw RenderError(fmt::format("--trace {}: no port '{}'{}", symbol, symbol,
                                              didYouMean(symbol, symbols, "ports")));
            traced.push_back(static_cast<std::size_t>(i));
            header += "," + symbol;
        }
        trace.open(job.traceOutput, std::ios::binary | std::ios::trunc);
        if (!trace) throw RenderError(fmt::format("cannot write the trace '{}'", job.traceOutput));
        trace << header << "\n";
        row.assign(traced.size(), 0.0);
        blocks = {static_cast<std::uint32_t>(proc.latency())};
    }

    RenderResult result;
    result.warnings = proc.warnings();
    result.sr = sr;
    result.nchnls = proc.numOutputs();
    result.frames = frames;
    result.latency = proc.latency();
    const int nin = proc.numInputs();
    const int nout = proc.numOutputs();
    const std::uint32_t maxBlock = *std::max_element(blocks.begin(), blocks.end());
    std::vector<std::vector<float>> inBufs(static_cast<std::size_t>(nin),
                                           std::vector<float>(maxBlock));
    std::vector<std::vector<float>> outBufs(static_cast<std::size_t>(nout),
                                            std::vector<float>(maxBlock));
    std::vector<const float*> inPtrs;
    std::vector<float*> outPtrs;
    for (auto& b : inBufs)
        inPtrs.push_back(b.data());
    for (auto& b : outBufs)
        outPtrs.push_back(b.data());
    std::vector<MidiMessage> blockMidi, stepMidi;
    std::vector<TimePosition> blockPositions, stepPositions;
    std::size_t ti = 0;
    std::vector<const float*> ins(inPtrs); // a part of the block, with a score
    std::vector<float*> outs(outPtrs);
    std::vector<float> interleaved(static_cast<std::size_t>(maxBlock) *
                                   static_cast<std::size_t>(nout));
    double sumSquares = 0;
    std::size_t mi = 0;
    std::size_t blockIndex = 0;
    const std::int64_t total = frames + proc.latency();
    const int fileChannels = input ? input->nchnls() : 1;
    std::vector<double> fileBlock(static_cast<std::size_t>(maxBlock) *
                                  static_cast<std::size_t>(fileChannels));
    for (std::int64_t pos = 0; pos < total;) {
        const auto n = static_cast<std::uint32_t>(
            std::min<std::int64_t>(blocks[blockIndex++ % blocks.size()], total - pos));
        if (input) {
            // the file's channels in turn feed the inputs (a mono file feeds both)
            const auto got = static_cast<std::uint32_t>(input->read(fileBlock.data(), n));
            for (int ch = 0; ch < nin; ++ch) {
                float* buf = inBufs[static_cast<std::size_t>(ch)].data();
                const double* src = fileBlock.data() + ch % fileChannels;
                for (std::uint32_t i = 0; i < got; ++i)
                    buf[i] = static_cast<float>(
                        src[static_cast<std::size_t>(i) * static_cast<std::size_t>(fileChannels)]);
                std::fill(buf + got, buf + n, 0.0f);
            }
        }
        blockMidi.clear();
        for (; mi < midi.size(); ++mi) {
            const auto f = static_cast<std::int64_t>(std::llround(midi[mi].time * sr));
            if (f >= pos + n) break;
            MidiMessage m;
            m.frame = static_cast<std::uint32_t>(std::max<std::int64_t>(0, f - pos));
            m.size = midi[mi].size;
            std::copy(midi[mi].data, midi[mi].data + 3, m.data);
            blockMidi.push_back(m);
        }
        busy("a cycle");
        blockPositions.clear();
        for (; ti < transport.size() && transport[ti].frame < pos + n; ++ti)
            blockPositions.push_back(
                {static_cast<std::uint32_t>(std::max<std::int64_t>(0, transport[ti].frame - pos)),
                 transport[ti].time});
        if (feeder.done() && !trace.is_open()) {
            proc.process(inPtrs.data(), outPtrs.data(), n, blockMidi, blockPositions);
        } else {
            // the score cycle by cycle: what it hands over at once stays within a cycle's
            // worth (a dense score would fill the session's queue a whole block ahead)
            std::size_t next = 0, nextPosition = 0;
            for (std::uint32_t done = 0; done < n;) {
                const auto step =
                    std::min<std::uint32_t>(n - done, static_cast<std::uint32_t>(proc.latency()));
                for (int ch = 0; ch < nin; ++ch)
                    ins[static_cast<std::size_t>(ch)] = inPtrs[static_cast<std::size_t>(ch)] + done;
                for (int ch = 0; ch < nout; ++ch)
                    outs[static_cast<std::size_t>(ch)] =
                        outPtrs[static_cast<std::size_t>(ch)] + done;
                std::size_t last = next;
                while (last < blockMidi.size() && blockMidi[last].frame < done + step)
                    ++last;
                stepMidi.assign(blockMidi.begin() + static_cast<std::ptrdiff_t>(next),
                                blockMidi.begin() + static_cast<std::ptrdiff_t>(last));
                for (auto& m : stepMidi)
                    m.frame -= done;
                next = last;
                stepPositions.clear();
                for (; nextPosition < blockPositions.size() &&
                       blockPositions[nextPosition].frame < done + step;
                     ++nextPosition) {
                    stepPositions.push_back(blockPositions[nextPosition]);
                    stepPositions.back().frame -= done;
                }
                feeder.feed(pos + done + step);
                // an input port's value for this cycle is the one it has before it
                for (std::size_t j = 0; j < traced.size(); ++j)
                    if (!spec.ports[traced[j]].output) row[j] = proc.port(traced[j]);
                proc.process(ins.data(), outs.data(), step, stepMidi, stepPositions);
                done += step;
            }
        }
        idle(); // what follows waits on files and pipes, not on Csound
        checkMessages(proc, job);
        if (trace.is_open() && pos < frames) {
            // the cycle just performed sounds in the file from `pos` on (after the latency); an
            // output port shows what it left
            trace << fmt::format("{}", static_cast<double>(pos) / sr);
            for (std::size_t j = 0; j < traced.size(); ++j)
                trace << fmt::format(",{}",
                                     spec.ports[traced[j]].output ? proc.port(traced[j]) : row[j]);
            trace << "\n";
        }

        // the first `latency` frames are the processor's delay: the file starts after them
        const std::int64_t skip = std::max<std::int64_t>(0, proc.latency() - pos);
        if (skip < n) {
            const auto count = static_cast<std::size_t>(n - skip);
            const auto stride = static_cast<std::size_t>(nout);
            for (std::size_t ch = 0; ch < stride; ++ch) {
                const float* src = outBufs[ch].data() + skip;
                for (std::size_t i = 0; i < count; ++i)
                    interleaved[i * stride + ch] = src[i];
                measureLevel({src, count}, result.peak, sumSquares);
            }
            if (job.keepSamples)
                result.samples.insert(result.samples.end(), interleaved.begin(),
                                      interleaved.begin() +
                                          static_cast<std::ptrdiff_t>(count * stride));
            if (writer) writer->write(interleaved.data(), static_cast<std::int64_t>(count));
        }
        pos += n;
        if (job.progress)
            job.progress(static_cast<double>(pos) / sr, static_cast<double>(total) / sr);
    }
    result.rms = std::sqrt(sumSquares / static_cast<double>(frames * nout));
    if (trace.is_open()) {
        trace.close();
        if (!trace) throw RenderError(fmt::format("cannot write the trace '{}'", job.traceOutput));
    }
    if (writer) writer->commit();
    if (job.csd) {
        CsdOptions co;
        co.output = job.csdOutput;
        co.input = job.input.empty() ? "" : std::filesystem::absolute(job.input).string();
        co.end = static_cast<double>(frames) / sr;
        result.csd = exportCsd(proc.session(), co);
    }
    result.processor = owner;
    return result;
}

} // namespace spinout
