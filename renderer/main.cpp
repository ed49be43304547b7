// The `spinout` command: render (one file or a batch), csd, check, info and bundle over
// session files.
#include "batch.hpp"
#include "bundle.hpp"
#include "render.hpp"
#include "render_options.hpp"
#include "session_json.hpp"

#include "spinout/check.hpp"
#include "spinout/policy.hpp"
#include "spinout/processor.hpp"
#include "spinout/session_file.hpp"
#include "spinout/suggest.hpp"
#include "spinout/text_file.hpp"
#include "spinout/trust.hpp"
#include "spinout/ttl.hpp"
#include "spinout/watchdog.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

using namespace spinout;

namespace {

constexpr int kOk = 0;
constexpr int kInputError = 1;
constexpr int kUsageError = 2;

double dbfs(double linear) {
    return linear > 0 ? 20 * std::log10(linear) : -INFINITY;
}

// What a command grants the session and how long it waits on it: --allow and --timeout.
struct TrustOptions {
    std::vector<std::string> allow;
    double timeout = 10;
};

void addAllowOption(CLI::App* cmd, TrustOptions& t) {
    // one value each time (repeatable), so that `--allow exec FILE` leaves FILE alone
    cmd->add_option("--allow", t.allow,
                    "grant the session permissions: exec, write, read, net, native, memory "
                    "(comma-separated, repeatable)")
        ->expected(1)
        ->allow_extra_args(false)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

void addTrustOptions(CLI::App* cmd, TrustOptions& t) {
    addAllowOption(cmd, t);
    cmd->add_option("--timeout", t.timeout,
                    "seconds the session may take to load and to finish each cycle (default "
                    "10; 0: no limit)");
}

// The files and presets go to `batch` (render takes several of each, csd one); the other
// options to `job`, shared by every render of a batch.
void addRenderOptions(CLI::App* cmd, BatchRequest& batch, RenderJob& job,
                      std::vector<std::string>& sets) {
    cmd->add_option("session", batch.sessions, "the session file (.toml); render: several")
        ->required();
    cmd->add_option("--midi", batch.midis, "a MIDI file to play; render: several, one file each");
    cmd->add_option("--score", batch.scores, "a score file (.toml); render: several");
    cmd->add_option("--input", batch.inputs, "a sound file as the audio input; render: several");
    cmd->add_option("--preset", batch.presets,
                    "a named preset of the session; render: several, a comma list, or all");
    cmd->add_option("--set", sets, "a port value, SYMBOL=VALUE (repeatable)");
    cmd->add_option("--sr", job.sr,
                    "sample rate, 1000 to 768000 (default: the input's, else 48000)");
    cmd->add_option("--ksmps", job.ksmps, "override the session's ksmps (1 to 8192)");
    cmd->add_option("--duration", job.duration,
                    "the file's length in seconds (default: the content's end and the tail)");
    cmd->add_option("--tail", job.tail, "seconds rendered after the content (default 2)");
    cmd->add_option("--bpm", job.bpm,
                    "the host's tempo for a session with host time, 1 to 1000 (default 120; "
                    "with --midi the file's tempo map)");
    cmd->add_flag_function(
        "-v,--verbose",
        [&job](std::int64_t) {
            job.messages = [](MessageLevel, const char* text) { std::cerr << text << "\n"; };
        },
        "show Csound's own messages");
    // CLI11 checks nothing here: checkValues() does, with messages in the session parser's style
    cmd->allow_extras();
}

PermissionSet parseAllow(const std::vector<std::string>& values) {
    PermissionSet set;
    for (const auto& v : values) {
        try {
            set |= parsePermissionList(v);
        } catch (const std::invalid_argument& e) {
            throw UsageError(fmt::format("--allow {}: {}", v, e.what()));
        }
    }
    return set;
}

void checkTimeout(const TrustOptions& t) {
    if (!std::isfinite(t.timeout) || t.timeout < 0 || t.timeout > kMaxSeconds)
        throw UsageError(fmt::format("--timeout {}: give a number of seconds from 0 (no limit) "
                                     "to {}",
                                     t.timeout, kMaxSeconds));
}

// What the session is granted: --allow, and what the user's trust file grants this very
// text.
PermissionSet grantsFor(const SessionSpec& spec, const PermissionSet& allow) {
    const auto report = recordedGrants(spec, TrustFile::defaultPath());
    for (const auto& w : report.warnings)
        std::cerr << "warning: " << w << "\n";
    return allow | report.granted;
}

// The same for the session at `path`. (One that does not parse is reported by the command
// itself.)
PermissionSet grantsFor(const std::string& path, const PermissionSet& allow) {
    try {
        return grantsFor(parseSessionFile(path), allow);
    } catch (const SessionFileError&) {
        return allow;
    }
}

// Ends a command whose session hangs: Csound cannot be stopped from outside, so the process
// is, without leaving a partial output file. Runs on the watchdog's thread.
[[noreturn]] void stopHungSession(const std::string& session, const std::string& what) {
    const auto text = fmt::format("error: {}: {}; stopped (an endless loop? --timeout SECONDS "
                                  "gives it longer)\n",
                                  session, what);
    if (isatty(STDERR_FILENO) != 0) std::fputs("\r\x1b[K", stderr); // the progress line
    std::fputs(text.c_str(), stderr);
    std::fflush(stderr);
    removePartialFiles();
    std::_Exit(1);
}

std::unique_ptr<Watchdog> makeWatchdog(const TrustOptions& t, const std::string& session) {
    if (t.timeout <= 0) return nullptr;
    const auto ms = std::chrono::milliseconds(static_cast<std::int64_t>(t.timeout * 1000));
    return std::make_unique<Watchdog>(
        std::max(ms, std::chrono::milliseconds(1)),
        [session](const std::string& what) { stopHungSession(session, what); });
}

void checkValues(CLI::App* cmd, const RenderJob& job, const BatchRequest& batch) {
    checkRenderValues(job, cmd->count("--sr") > 0);
    if (job.bpm && !batch.midis.empty())
        throw UsageError("--bpm: with --midi the MIDI file's tempo map gives the tempo");
}

void parseSets(const std::vector<std::string>& sets, RenderJob& job) {
    for (const auto& s : sets) {
        const auto eq = s.find('=');
        if (eq == std::string::npos || eq == 0)
            throw UsageError(fmt::format("--set '{}': give SYMBOL=VALUE", s));
        try {
            std::size_t used = 0;
            const double v = std::stod(s.substr(eq + 1), &used);
            if (used != s.size() - eq - 1 || !std::isfinite(v))
                throw std::invalid_argument("not a finite number");
            job.sets.emplace_back(s.substr(0, eq), v);
        } catch (const std::logic_error&) {
            throw UsageError(fmt::format("--set '{}': the value is not a finite number", s));
        }
    }
}

const std::vector<std::string> kCommands = {"render", "csd", "check", "info", "bundle", "trust"};

// The options of a subcommand as typed: --name and -n.
std::vector<std::string> optionNames(const CLI::App* cmd) {
    std::vector<std::string> names;
    for (const auto* o : cmd->get_options()) {
        for (const auto& n : o->get_lnames())
            names.push_back("--" + n);
        for (const auto& n : o->get_snames())
            names.push_back("-" + n);
    }
    return names;
}

// What CLI11 left over in a subcommand: an unknown option or an extra argument.
void checkExtras(const CLI::App* cmd) {
    const auto extras = cmd->remaining();
    if (extras.empty()) return;
    const std::string& first = extras.front();
    if (first.size() > 1 && first[0] == '-') {
        const auto name = first.substr(0, first.find('='));
        auto tail = didYouMean(name, optionNames(cmd));
        if (tail.empty()) tail = fmt::format(" (spinout {} --help lists them)", cmd->get_name());
        throw UsageError(fmt::format("{}: unknown option '{}'{}", cmd->get_name(), name, tail));
    }
    throw UsageError(fmt::format("{}: unexpected argument '{}'", cmd->get_name(), first));
}

// The first argument must be a command (or --help, --version): checked before CLI11, whose
// answer to a misspelt command is "a subcommand is required".
void checkCommand(int argc, char** argv) {
    if (argc < 2)
        throw UsageError(fmt::format("give a command: {} (spinout --help tells more)",
                                     fmt::join(kCommands, ", ")));
    const std::string first = argv[1];
    if (first.empty() || first[0] != '-') {
        if (std::find(kCommands.begin(), kCommands.end(), first) != kCommands.end()) return;
        throw UsageError(
            fmt::format("unknown command '{}'{}", first, didYouMean(first, kCommands, "commands")));
    }
    const std::vector<std::string> options = {"--help", "-h", "--version"};
    const auto name = first.substr(0, first.find('='));
    if (std::find(options.begin(), options.end(), name) != options.end()) return;
    auto tail = didYouMean(name, options);
    if (tail.empty()) tail = " (spinout --help lists the commands)";
    throw UsageError(fmt::format("unknown option '{}'{}", name, tail));
}

void printDiagnostics(const SessionFileError& e) {
    for (const auto& d : e.diagnostics())
        std::cerr << "error: " << d.str() << "\n";
}

void printWarnings(const std::vector<Diagnostic>& warnings) {
    for (const auto& d : warnings)
        std::cerr << "warning: " << d.str() << "\n";
}

// Refusals of the policy check, then how the user may grant them.
void printRefusals(const SessionFileError& e, const std::string& session,
                   const std::string& command) {
    printDiagnostics(e);
    const auto hint = grantHint(e.diagnostics(), session, command);
    if (!hint.empty()) std::cerr << "note: " << hint << "\n";
}

// On a terminal: position, speed and time left, a few times a second (as sox -S does).
class ProgressLine {
public:
    using Clock = std::chrono::steady_clock;
    void update(double done, double total) {
        const auto now = Clock::now();
        // the first line after a quarter second, when the speed means something
        if (now - last_ < std::chrono::milliseconds(250)) return;
        last_ = now;
        shown_ = true;
        const double elapsed = seconds(now);
        const double speed = elapsed > 0 ? done / elapsed : 0;
        const double left = speed > 0 ? (total - done) / speed : NAN;
        std::fprintf(stderr, "\r%s / %s (%3.0f%%)  %s real time  elapsed %s  left %s\x1b[K",
                     clockText(done).c_str(), clockText(total).c_str(),
                     total > 0 ? 100 * done / total : 100.0,
                     speed > 0 ? fmt::format("{:.1f}x", speed).c_str() : "--",
                     clockText(elapsed).c_str(), clockText(left).c_str());
        std::fflush(stderr);
    }
    void clear() {
        if (shown_) std::fprintf(stderr, "\r\x1b[K");
        shown_ = false;
    }
    double seconds(Clock::time_point t = Clock::now()) const {
        return std::chrono::duration<double>(t - start_).count();
    }

private:
    Clock::time_point start_ = Clock::now();
    Clock::time_point last_ = start_;
    bool shown_ = false;
};

// Say before rendering when nothing will play the session: its render would be silent.
std::string silenceReason(const RenderJob& job, const SessionSpec& spec) {
    if (spec.kind == SessionSpec::instrument && job.midi.empty() && job.score.empty())
        return fmt::format("nothing plays the instrument '{}': give --midi or --score", spec.name);
    if (spec.kind == SessionSpec::effect && job.input.empty())
        return fmt::format("the effect '{}' gets no input and processes silence: give --input",
                           spec.name);
    return {};
}

int runRender(RenderJob& job, const std::string& output) {
    job.output = output;
    const bool toStdout = output == "-";
    const std::string name = toStdout ? "standard output" : output;
    // the output is checked before rendering: a wrong -o fails now, not after the render
    (void)resolveOutput(output);
    const auto reason = silenceReason(job, *job.spec);
    if (!reason.empty()) std::cerr << "warning: " << reason << "\n";
    if (job.bpm && !job.spec->hostTime)
        std::cerr << "warning: the session takes no host time (host_time): --bpm changes nothing\n";
    ProgressLine progress;
    if (isatty(STDERR_FILENO) != 0)
        job.progress = [&](double done, double total) { progress.update(done, total); };
    const auto r = render(job);
    progress.clear();
    printWarnings(r.warnings);
    const double seconds = static_cast<double>(r.frames) / r.sr;
    const double took = progress.seconds();
    const bool rf64 =
        containerFor(job.format, r.nchnls, r.frames) == "rf64" && job.format.container == "wav";
    // on standard output the sound is the output: the summary goes with the messages
    auto& out = toStdout ? std::cerr : std::cout;
    out << fmt::format("{}: {:.3f} s, {} ch, {} Hz{}, peak {:.1f} dBFS, rms {:.1f} dBFS, rendered "
                       "in {:.2f} s ({:.0f}x real time)\n",
                       name, seconds, r.nchnls, r.sr, rf64 ? ", RF64" : "", dbfs(r.peak),
                       dbfs(r.rms), took, took > 0 ? seconds / took : 0);
    if (r.peak == 0) std::cerr << fmt::format("warning: {} is silent: every sample is 0\n", name);
    // The file is committed: leave without tearing Csound down.
    out.flush();
    std::_Exit(kOk);
}

// One render with what its session is granted (--allow and the trust file), watched for
// hangs: a single render, or one of a batch in its child process.
int renderGranted(RenderJob job, const TrustOptions& trust) {
    if (!job.spec) job.spec = std::make_shared<const SessionSpec>(parseSessionFile(job.session));
    job.allow = grantsFor(*job.spec, job.allow);
    const auto watchdog = makeWatchdog(trust, job.session);
    job.watchdog = watchdog.get();
    return runRender(job, job.output);
}

// A single render for a batch's child process: its messages printed, its status returned.
int renderOne(const BatchItem& item, const TrustOptions& trust) {
    try {
        return renderGranted(item.job, trust);
    } catch (const SessionFileError& e) {
        printRefusals(e, item.job.session, "render");
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
    }
    return kInputError;
}

// `render`: one file as before, or a batch (every session x preset x input) by processes.
int runRenderCommand(const BatchRequest& request, const RenderJob& job, int jobs,
                     const TrustOptions& trust) {
    auto items = planBatch(request, job);
    const auto size = items.size();
    if (!job.trace.empty()) {
        // each render's trace beside its sound file, named after it
        if (size > 1 && !job.traceOutput.empty())
            throw UsageError("--trace-file: a batch writes a trace for each render, named after "
                             "its sound file; drop --trace-file");
        for (auto& item : items)
            if (item.job.traceOutput.empty())
                item.job.traceOutput =
                    std::filesystem::path(item.job.output).replace_extension(".csv").string();
    }
    if (size == 1 && request.shards == 1) return renderGranted(items.front().job, trust);
    items = shardOf(std::move(items), request.shard, request.shards);
    if (items.empty()) {
        std::cout << fmt::format("batch: shard {}/{} of a batch of {} render{} is empty\n",
                                 request.shard, request.shards, size, size == 1 ? "" : "s");
        return kOk;
    }
    // What every render needs is checked before any starts: a batch does not fail late
    // (or a thousand times) for a missing file or folder.
    for (const auto* files : {&request.midis, &request.scores, &request.inputs})
        for (const auto& f : *files)
            if (!std::ifstream(f))
                throw RenderError(fmt::format("cannot read '{}': {}", f, std::strerror(errno)));
    for (const auto& item : items)
        (void)resolveOutput(item.job.output);
    return runBatch(items, size, jobs > 0 ? jobs : availableCpus(),
                    [&trust](const BatchItem& item) { return renderOne(item, trust); });
}

// csd writes one render: one of each at most.
void singleJob(const BatchRequest& batch, RenderJob& job) {
    for (const auto* v :
         {&batch.sessions, &batch.midis, &batch.scores, &batch.inputs, &batch.presets})
        if (v->size() > 1)
            throw UsageError("csd: a .csd holds one render: give one session, preset, MIDI "
                             "file, score and input at most");
    if (!batch.presets.empty() &&
        (batch.presets[0] == "all" || batch.presets[0].find(',') != std::string::npos))
        throw UsageError("csd: a .csd holds one render: give one preset");
    auto first = [](const std::vector<std::string>& v) { return v.empty() ? "" : v.front(); };
    job.session = first(batch.sessions);
    job.midi = first(batch.midis);
    job.score = first(batch.scores);
    job.input = first(batch.inputs);
    job.preset = first(batch.presets);
}

int runCheck(const std::string& path, const PermissionSet& allow, Watchdog* watchdog) {
    SessionSpec spec;
    try {
        spec = parseSessionFile(path);
    } catch (const SessionFileError& e) {
        printDiagnostics(e);
        std::cerr << fmt::format("{}: {} error{}\n", path, e.diagnostics().size(),
                                 e.diagnostics().size() == 1 ? "" : "s");
        return kInputError;
    }
    ProcessorOptions options;
    options.grants = Grants::none(spec.dir);
    options.grants.permissions = allow;
    options.watchdog = watchdog;
    const auto report = checkSession(spec, options);
    if (watchdog != nullptr) watchdog->idle();
    if (!report.errors.empty()) {
        printRefusals(SessionFileError(report.errors), path, "check");
        return kInputError;
    }
    printWarnings(report.warnings);
    std::cout << fmt::format("{}: ok ({} instrs, {} ports, {} presets)\n", path, spec.instrs.size(),
                             spec.ports.size(), spec.presets.size());
    return kOk;
}

std::string valueText(const ArgValue& v) {
    if (const auto* d = std::get_if<double>(&v)) return fmt::format("{}", *d);
    return fmt::format("\"{}\"", std::get<std::string>(v));
}

// " -> ms at the tempo" for a port converted from beats.
std::string unitTo(const PortSpec& p) {
    switch (p.to) {
    case BeatConversion::seconds:
        return " -> s at the tempo";
    case BeatConversion::ms:
        return " -> ms at the tempo";
    case BeatConversion::none:
        break;
    }
    return {};
}

int runInfo(const std::string& path) {
    const auto spec = parseSessionFile(path);
    std::cout << fmt::format(
        "{} ({})\n  uri: {}\n  kind: {}, {} audio in, {} audio out, ksmps {}\n", spec.name, path,
        spec.uri, spec.kind == SessionSpec::instrument ? "instrument" : "effect", spec.audioInputs,
        spec.audioOutputs, spec.ksmps);
    if (!spec.doc.empty()) std::cout << "  " << spec.doc << "\n";
    if (spec.hostTime) std::cout << "  takes the host's tempo and transport (host.* channels)\n";
    std::cout << "instrs:\n";
    for (const auto& is : spec.instrs) {
        const Instr& instr = *is.instr;
        std::cout << fmt::format("  {} (priority {})", is.name, is.priority.value_or(1));
        if (!is.doc.empty()) std::cout << " - " << is.doc;
        std::cout << "\n";
        for (const auto& a : instr.args())
            std::cout << fmt::format("    {:<12} = {:<10} {}\n", a.name, valueText(a.value),
                                     a.isControl() ? "dynamic control"
                                                   : fmt::format("p{}", a.index));
    }
    if (!spec.buses.empty()) std::cout << "buses:\n";
    for (const auto& b : spec.buses)
        std::cout << fmt::format(
            "  {} ({}{})\n", b.name, b.kind == BusKind::audio ? "audio" : "control",
            b.kind == BusKind::control ? fmt::format(", value {}", b.value) : "");
    if (spec.midi)
        std::cout << fmt::format(
            "midi: instr {}, pitch {}, velocity {}, {} voices, bend range {}\n", spec.midi->instr,
            spec.midi->pitch, spec.midi->velocity, spec.midi->voices, spec.midi->bendRange);
    if (!spec.ports.empty()) std::cout << "ports:\n";
    for (const auto& p : spec.ports)
        std::cout << fmt::format("  {:<12} {:<20} -> {:<18} {} .. {} (default {}{}{})\n", p.symbol,
                                 fmt::format("\"{}\"", p.name), p.targetText, p.min, p.max, p.def,
                                 p.unit.empty() ? "" : ", " + p.unit + unitTo(p),
                                 p.midiCC ? fmt::format(", cc {}", *p.midiCC) : "");
    if (!spec.presets.empty()) std::cout << "presets:\n";
    for (const auto& p : spec.presets) {
        std::string values;
        for (const auto& [k, v] : p.values)
            values += fmt::format(" {}={}", k, v);
        std::cout << fmt::format("  {} \"{}\":{}\n", p.name, p.label, values);
    }
    return kOk;
}

// The plugin binary next to this command: build/lib/spinout.so, or ../lib/spinout/ installed.
std::string defaultBinary() {
    const auto exe = std::filesystem::read_symlink("/proc/self/exe").parent_path();
    for (const auto& candidate :
         {exe / "lib" / "spinout.so", exe / ".." / "lib" / "spinout" / "spinout.so"})
        if (std::filesystem::exists(candidate)) return candidate.string();
    return {};
}

// Bundles: the session (and what it includes), its Turtle, and the plugin binary.
int runBundle(BundleJob job) {
    if (job.binary.empty()) job.binary = defaultBinary();
    if (job.binary.empty() || !std::filesystem::exists(job.binary))
        throw RenderError("cannot find the plugin binary spinout.so; give --binary PATH");
    makeBundles(job, std::cout);
    return kOk;
}

// `spinout trust`: the user's trust file, where the loader (and the command) find which
// sessions may do more than make sound.
struct TrustJob {
    std::string session;
    bool list = false;
    std::string remove;
    std::vector<std::string> allow;
};

int runTrust(const TrustJob& job) {
    const auto path = TrustFile::defaultPath();
    if (path.empty()) throw RenderError("no trust file: set HOME or XDG_CONFIG_HOME");
    auto file = TrustFile::load(path);
    if (job.list) {
        if (file.entries().empty()) std::cout << fmt::format("no trusted sessions ({})\n", path);
        for (const auto& e : file.entries())
            std::cout << fmt::format("{}  {}  {}\n", e.digest.sha256, permissionListText(e.allow),
                                     e.file.empty() ? "-" : e.file);
        return kOk;
    }
    if (!job.remove.empty()) {
        std::string sha = job.remove;
        const bool isHash =
            sha.size() == 64 && sha.find_first_not_of("0123456789abcdef") == std::string::npos;
        if (!isHash) sha = sha256Hex(parseSessionFile(job.remove).text);
        const int removed = file.remove(sha);
        if (removed == 0)
            throw RenderError(fmt::format("{} is not in the trust file {}", job.remove, path));
        file.save(path);
        std::cout << fmt::format("{}: no longer trusted ({})\n", job.remove, path);
        return kOk;
    }
    const auto spec = parseSessionFile(job.session);
    TrustEntry entry;
    entry.digest = sessionDigest(spec);
    // a grant names what it covers: a file that cannot be read is nothing to name
    for (const auto& [name, sha] : entry.digest.includes)
        if (sha == kUnreadable)
            throw RenderError(fmt::format("{}: its include file '{}' cannot be read (not a "
                                          "regular file, or over {} MiB): nothing trusted",
                                          job.session, name, kMaxTextFileBytes >> 20));
    entry.allow = job.allow.empty() ? declaredPermissions(spec) : parseAllow(job.allow);
    entry.file = std::filesystem::absolute(job.session).lexically_normal().string();
    // what the session would still be refused with these grants
    Grants grants = Grants::none(spec.dir);
    grants.permissions = entry.allow;
    const auto refusals = checkPolicy(spec, grants);
    file.put(entry);
    file.save(path);
    std::cout << fmt::format("{}: trusted with {} (sha256 {}) in {}\n", job.session,
                             permissionListText(entry.allow), entry.digest.sha256, path);
    for (const auto& d : refusals)
        std::cerr << "warning: " << d.str() << "\n";
    if (!refusals.empty())
        std::cerr << fmt::format("warning: {}: still refused when loaded; {}\n", job.session,
                                 grantHint(refusals, job.session));
    return kOk;
}

// Text (a .csd) to a path by the same rules as sound: a regular file atomically (links
// followed), a device or FIFO straight, "-" to standard output.
void writeOutputText(const std::string& path, const std::string& text) {
    const auto target = resolveOutput(path);
    if (target.kind == OutputTarget::standardOutput) {
        std::cout << text;
        std::cout.flush();
        if (!std::cout) throw RenderError("cannot write to standard output");
        return;
    }
    const bool file = target.kind == OutputTarget::file;
    const std::string written = file ? target.partial : target.target;
    {
        std::ofstream out(written, std::ios::binary);
        out << text;
        out.close();
        if (!out) {
            if (file) std::remove(written.c_str());
            throw RenderError(fmt::format("cannot write '{}'", path));
        }
    }
    if (file && std::rename(written.c_str(), target.target.c_str()) != 0) {
        std::remove(written.c_str());
        throw RenderError(fmt::format("cannot write '{}'", path));
    }
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"spinout: Csound sessions rendered, checked and exported"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "spinout " SPINOUT_VERSION);
    removePartialFilesOnSignals();

    RenderJob job;
    BatchRequest batch;
    std::vector<std::string> sets;
    std::string output = "out.wav";
    std::string format, encoding, shard;
    int jobs = 0;
    TrustOptions renderTrust, csdTrust, checkTrust, bundleTrust;
    PermissionSet checkAllow;
    auto* renderCmd =
        app.add_subcommand("render", "render a session to a sound file (or a batch of them)");
    addRenderOptions(renderCmd, batch, job, sets);
    addTrustOptions(renderCmd, renderTrust);
    renderCmd->add_option("-o,--output", output,
                          "the sound file to write (default out.wav; - for standard output); a "
                          "batch: a name template with {session}, {preset} and {input}");
    renderCmd->add_option("--jobs", jobs,
                          "a batch's renders at once (default: the number of CPUs)");
    renderCmd->add_option("--shard", shard, "render the K-th of N parts of the batch: K/N");
    renderCmd->add_option("--trace", job.trace,
                          "a port whose value at every cycle goes to a CSV file (repeatable)");
    renderCmd->add_option("--trace-file", job.traceOutput,
                          "the CSV file of --trace (default: the output's name with .csv)");
    renderCmd->add_option("--format", format,
                          "wav, rf64, flac, ogg or aiff (default: from the file name, else wav)");
    renderCmd->add_option("--encoding", encoding,
                          "pcm16, pcm24, pcm32, float32 or float64 (default float32; pcm24 for "
                          "flac)");

    RenderJob csdJob;
    BatchRequest csdBatch;
    std::vector<std::string> csdSets;
    std::string csdOutput;
    auto* csdCmd = app.add_subcommand(
        "csd", "write a standalone .csd that the csound command renders the same");
    addRenderOptions(csdCmd, csdBatch, csdJob, csdSets);
    addTrustOptions(csdCmd, csdTrust);
    csdCmd->add_option("-o,--output", csdOutput, "the .csd to write (- for standard output)")
        ->required();

    std::string checkPath, infoPath;
    auto* checkCmd = app.add_subcommand("check", "validate a session and compile its Csound code");
    checkCmd->add_option("session", checkPath, "the session file")->required();
    addTrustOptions(checkCmd, checkTrust);
    checkCmd->allow_extras();
    auto* infoCmd = app.add_subcommand("info", "list a session's instrs, buses, ports and presets");
    infoCmd->add_option("session", infoPath, "the session file")->required();
    bool infoJson = false;
    infoCmd->add_flag("--json", infoJson, "print the session as JSON, for scripts");
    infoCmd->allow_extras();

    BundleJob bundleJob;
    auto* bundleCmd =
        app.add_subcommand("bundle", "make installable LV2 bundles from session files");
    bundleCmd->add_option("sessions", bundleJob.sessions, "session files");
    bundleCmd->add_flag("--loader", bundleJob.loader, "also make the loader plugin's bundle");
    bundleCmd->add_option("--binary", bundleJob.binary,
                          "the plugin binary (default: the one installed with this command)");
    bundleCmd
        ->add_option("-o,--output", bundleJob.outDir,
                     "the folder to write the bundles in (e.g. ~/.lv2)")
        ->required();
    bundleCmd->add_flag("--force", bundleJob.force,
                        "make a bundle even if its uri is on the LV2 path with other content");
    addAllowOption(bundleCmd, bundleTrust);
    bundleCmd->allow_extras();

    TrustJob trustJob;
    auto* trustCmd = app.add_subcommand(
        "trust", "grant a session permissions in your trust file (the loader plugin reads it)");
    trustCmd->add_option("session", trustJob.session, "the session file to trust");
    trustCmd
        ->add_option("--allow", trustJob.allow,
                     "the permissions granted (default: those the session declares)")
        ->expected(1)
        ->allow_extra_args(false)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    trustCmd->add_flag("--list", trustJob.list, "list the trusted sessions");
    trustCmd->add_option("--remove", trustJob.remove,
                         "untrust a session (its file, or its SHA-256)");
    trustCmd->allow_extras();

    const std::vector<CLI::App*> commands = {renderCmd, csdCmd,    checkCmd,
                                             infoCmd,   bundleCmd, trustCmd};
    try {
        try {
            checkCommand(argc, argv);
            app.parse(argc, argv);
        } catch (const CLI::RequiredError&) {
            // an unknown option may have taken the place of what is missing: name it first
            for (auto* cmd : commands)
                if (cmd->parsed()) checkExtras(cmd);
            throw;
        }
        for (auto* cmd : commands)
            if (cmd->parsed()) checkExtras(cmd);
        if (bundleCmd->parsed() && bundleJob.sessions.empty() && !bundleJob.loader)
            throw UsageError("bundle: give session files or --loader");
        if (trustCmd->parsed()) {
            const int modes = (trustJob.session.empty() ? 0 : 1) + (trustJob.list ? 1 : 0) +
                              (trustJob.remove.empty() ? 0 : 1);
            if (modes != 1)
                throw UsageError("trust: give a session file, --list, or --remove SESSION");
            if (!trustJob.allow.empty() && trustJob.session.empty())
                throw UsageError("trust: --allow goes with a session file");
            (void)parseAllow(trustJob.allow);
        }
        for (const auto* t : {&renderTrust, &csdTrust, &checkTrust})
            checkTimeout(*t);
        job.allow = parseAllow(renderTrust.allow);
        bundleJob.allow = parseAllow(bundleTrust.allow);
        checkAllow = parseAllow(checkTrust.allow);
        if (renderCmd->parsed()) {
            checkValues(renderCmd, job, batch);
            parseSets(sets, job);
            if (renderCmd->count("--jobs") > 0 && (jobs < 1 || jobs > 1024))
                throw UsageError(
                    fmt::format("--jobs {}: give a number of renders from 1 to 1024", jobs));
            if (!shard.empty()) parseShard(shard, batch.shard, batch.shards);
            // a stray word after the session is a usage error, not a second session to read
            for (std::size_t i = 1; i < batch.sessions.size(); ++i)
                if (!std::filesystem::exists(batch.sessions[i]))
                    throw UsageError(
                        fmt::format("render: unexpected argument '{}': no such session file",
                                    batch.sessions[i]));
            batch.output = output;
            (void)checkTemplate(output);
            job.format = soundFormatFor(output, format, encoding);
            if (!job.trace.empty() && job.traceOutput.empty() && output == "-")
                throw UsageError("--trace with -o -: give --trace-file");
            if (output == "-" && job.format.container == "aiff")
                throw UsageError("-o -: aiff cannot be streamed (its header holds sizes); use "
                                 "--format wav or flac");
            if (output == "-" && isatty(STDOUT_FILENO) != 0)
                throw UsageError("-o -: standard output is a terminal; redirect it to a file or "
                                 "a pipe");
        }
        if (csdCmd->parsed()) {
            checkValues(csdCmd, csdJob, csdBatch);
            parseSets(csdSets, csdJob);
            singleJob(csdBatch, csdJob);
        }
        csdJob.allow = parseAllow(csdTrust.allow);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const UsageError& e) {
        std::cerr << "error: " << e.what() << "\n";
        return kUsageError;
    } catch (const CLI::ParseError& e) {
        std::string name;
        for (auto* cmd : commands)
            if (cmd->parsed()) name = cmd->get_name();
        std::cerr << fmt::format("error: {}{} (spinout {}--help tells more)\n",
                                 name.empty() ? "" : name + ": ", e.what(),
                                 name.empty() ? "" : name + " ");
        return kUsageError;
    }

    // the session the command runs, for the hint that follows a refusal
    std::string session;
    std::string command;
    for (auto* cmd : commands)
        if (cmd->parsed()) command = cmd->get_name();
    if (renderCmd->parsed() && batch.sessions.size() == 1) session = batch.sessions.front();
    if (csdCmd->parsed()) session = csdJob.session;
    if (checkCmd->parsed()) session = checkPath;
    std::unique_ptr<Watchdog> watchdog;
    try {
        if (renderCmd->parsed()) return runRenderCommand(batch, job, jobs, renderTrust);
        if (csdCmd->parsed()) {
            csdJob.allow = grantsFor(csdJob.session, csdJob.allow);
            watchdog = makeWatchdog(csdTrust, csdJob.session);
            csdJob.watchdog = watchdog.get();
            csdJob.csd = true;
            csdJob.csdOutput = csdOutput == "-" ? "spinout.wav"
                                                : std::filesystem::path(csdOutput)
                                                      .replace_extension(".wav")
                                                      .filename()
                                                      .string();
            (void)resolveOutput(csdOutput); // a wrong -o fails before the render
            const auto r = render(csdJob);
            printWarnings(r.warnings);
            writeOutputText(csdOutput, r.csd);
            (csdOutput == "-" ? std::cerr : std::cout) << fmt::format(
                "{}: {:.3f} s at {} Hz\n", csdOutput == "-" ? "standard output" : csdOutput,
                static_cast<double>(r.frames) / r.sr, r.sr);
            return kOk;
        }
        if (checkCmd->parsed()) {
            watchdog = makeWatchdog(checkTrust, checkPath);
            return runCheck(checkPath, grantsFor(checkPath, checkAllow), watchdog.get());
        }
        if (bundleCmd->parsed()) return runBundle(bundleJob);
        if (infoCmd->parsed() && infoJson) {
            std::cout << sessionJson(parseSessionFile(infoPath)) << "\n";
            return kOk;
        }
        if (infoCmd->parsed()) return runInfo(infoPath);
        if (trustCmd->parsed()) return runTrust(trustJob);
    } catch (const UsageError& e) {
        std::cerr << "error: " << e.what() << "\n";
        return kUsageError;
    } catch (const SessionFileError& e) {
        printRefusals(e, session, command == "bundle" ? "bundle" : command);
        return kInputError;
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return kInputError;
    }
    return kUsageError;
}
