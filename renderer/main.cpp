// The `spinout` command: render, csd, check and info over session files.
#include "render.hpp"

#include "spinout/processor.hpp"
#include "spinout/session_file.hpp"
#include "spinout/ttl.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

using namespace spinout;

namespace {

constexpr int kOk = 0;
constexpr int kInputError = 1;
constexpr int kUsageError = 2;

double dbfs(double linear) {
    return linear > 0 ? 20 * std::log10(linear) : -INFINITY;
}

void addRenderOptions(CLI::App* cmd, RenderJob& job, std::vector<std::string>& sets) {
    cmd->add_option("session", job.session, "the session file (.toml)")->required();
    cmd->add_option("--midi", job.midi, "a MIDI file to play");
    cmd->add_option("--score", job.score, "a score file (.toml)");
    cmd->add_option("--input", job.input, "a sound file as the audio input");
    cmd->add_option("--preset", job.preset, "a named preset of the session");
    cmd->add_option("--set", sets, "a port value, SYMBOL=VALUE (repeatable)");
    cmd->add_option("--sr", job.sr, "sample rate (default: the input's, else 48000)");
    cmd->add_option("--ksmps", job.ksmps, "override the session's ksmps");
    cmd->add_option("--duration", job.duration,
                    "seconds before the tail (default: the content's end)");
    cmd->add_option("--tail", job.tail, "seconds rendered after the content (default 2)");
}

void parseSets(const std::vector<std::string>& sets, RenderJob& job) {
    for (const auto& s : sets) {
        const auto eq = s.find('=');
        if (eq == std::string::npos || eq == 0)
            throw CLI::ValidationError("--set", fmt::format("'{}' is not SYMBOL=VALUE", s));
        try {
            std::size_t used = 0;
            const double v = std::stod(s.substr(eq + 1), &used);
            if (used != s.size() - eq - 1) throw std::invalid_argument("trailing");
            job.sets.emplace_back(s.substr(0, eq), v);
        } catch (const std::logic_error&) {
            throw CLI::ValidationError("--set", fmt::format("'{}' has no numeric value", s));
        }
    }
}

void printDiagnostics(const SessionFileError& e) {
    for (const auto& d : e.diagnostics())
        std::cerr << "error: " << d.str() << "\n";
}

int runRender(RenderJob& job, const std::string& output) {
    job.output = output;
    const bool tty = isatty(STDERR_FILENO) != 0;
    int shown = -1;
    if (tty)
        job.progress = [&](double f) {
            const int pct = static_cast<int>(f * 100);
            if (pct == shown) return;
            shown = pct;
            const int bar = pct * 30 / 100;
            std::fprintf(stderr, "\r[%s%s] %3d%%",
                         std::string(static_cast<std::size_t>(bar), '#').c_str(),
                         std::string(static_cast<std::size_t>(30 - bar), ' ').c_str(), pct);
            std::fflush(stderr);
        };
    const auto r = render(job);
    if (tty) std::fprintf(stderr, "\r%40s\r", "");
    std::cout << fmt::format("{}: {:.3f} s, {} ch, {} Hz, peak {:.1f} dBFS, rms {:.1f} dBFS\n",
                             output, static_cast<double>(r.frames) / r.sr, r.nchnls, r.sr,
                             dbfs(r.peak), dbfs(r.rms));
    // The file is committed: leave without tearing Csound down.
    std::cout.flush();
    std::_Exit(kOk);
}

int runCheck(const std::string& path) {
    SessionSpec spec;
    try {
        spec = parseSessionFile(path);
    } catch (const SessionFileError& e) {
        printDiagnostics(e);
        std::cerr << fmt::format("{}: {} error{}\n", path, e.diagnostics().size(),
                                 e.diagnostics().size() == 1 ? "" : "s");
        return kInputError;
    }
    // The whole chain first: runs, voices, ports (one engine for a good session).
    std::vector<Diagnostic> errors;
    try {
        Processor p(spec);
    } catch (const SessionFileError& e) {
        errors = e.diagnostics();
    }
    // Then every instr on its own, so that each Csound error is reported.
    std::vector<Diagnostic> each;
    for (const auto& is : errors.empty() ? std::vector<InstrSpec>{} : spec.instrs) {
        SessionSpec one = spec;
        one.instrs = {is};
        one.runs.clear();
        one.midi.reset();
        one.ports.clear();
        one.presets.clear();
        try {
            Processor p(one);
        } catch (const SessionFileError& e) {
            for (const auto& d : e.diagnostics())
                if (std::none_of(each.begin(), each.end(),
                                 [&](const Diagnostic& x) { return x.str() == d.str(); }))
                    each.push_back(d);
        }
    }
    if (!each.empty()) errors = each;
    if (!errors.empty()) {
        printDiagnostics(SessionFileError(errors));
        return kInputError;
    }
    std::cout << fmt::format("{}: ok ({} instrs, {} ports, {} presets)\n", path, spec.instrs.size(),
                             spec.ports.size(), spec.presets.size());
    return kOk;
}

std::string valueText(const ArgValue& v) {
    if (const auto* d = std::get_if<double>(&v)) return fmt::format("{}", *d);
    return fmt::format("\"{}\"", std::get<std::string>(v));
}

int runInfo(const std::string& path) {
    const auto spec = parseSessionFile(path);
    std::cout << fmt::format(
        "{} ({})\n  uri: {}\n  kind: {}, {} audio in, {} audio out, ksmps {}\n", spec.name, path,
        spec.uri, spec.kind == SessionSpec::instrument ? "instrument" : "effect", spec.audioInputs,
        spec.audioOutputs, spec.ksmps);
    if (!spec.doc.empty()) std::cout << "  " << spec.doc << "\n";
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
                                 p.unit.empty() ? "" : ", " + p.unit,
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

void writeFile(const std::filesystem::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
    if (!out) throw RenderError(fmt::format("cannot write '{}'", path.string()));
}

// The plugin binary next to this command: build/lib/spinout.so, or ../lib/spinout/ installed.
std::string defaultBinary() {
    const auto exe = std::filesystem::read_symlink("/proc/self/exe").parent_path();
    for (const auto& candidate :
         {exe / "lib" / "spinout.so", exe / ".." / "lib" / "spinout" / "spinout.so"})
        if (std::filesystem::exists(candidate)) return candidate.string();
    return {};
}

// A bundle: the session (and what it includes), its Turtle, and the plugin binary.
int runBundle(const std::vector<std::string>& sessions, bool loader, std::string binary,
              const std::string& outDir) {
    if (binary.empty()) binary = defaultBinary();
    if (binary.empty() || !std::filesystem::exists(binary))
        throw RenderError("cannot find the plugin binary spinout.so; give --binary PATH");
    const std::filesystem::path out(outDir);
    std::filesystem::create_directories(out);
    auto makeBundle = [&](const std::string& name) {
        const auto dir = out / (name + ".lv2");
        std::filesystem::create_directories(dir);
        std::filesystem::copy_file(binary, dir / "spinout.so",
                                   std::filesystem::copy_options::overwrite_existing);
        return dir;
    };
    for (const auto& path : sessions) {
        const auto spec = parseSessionFile(path);
        const auto dir = makeBundle("spinout-" + std::filesystem::path(path).stem().string());
        std::filesystem::copy_file(path, dir / "session.toml",
                                   std::filesystem::copy_options::overwrite_existing);
        for (const auto& inc : spec.includes) {
            std::filesystem::create_directories((dir / inc).parent_path());
            std::filesystem::copy_file(std::filesystem::path(spec.dir) / inc, dir / inc,
                                       std::filesystem::copy_options::overwrite_existing);
        }
        writeFile(dir / "manifest.ttl", manifestTtl(spec, "spinout.so"));
        writeFile(dir / "plugin.ttl", pluginTtl(spec));
        writeFile(dir / "presets.ttl", presetsTtl(spec));
        std::cout << fmt::format("{}: {} ({})\n", dir.string(), spec.name, spec.uri);
    }
    if (loader) {
        const auto dir = makeBundle("spinout-loader");
        writeFile(dir / "manifest.ttl", loaderManifestTtl("spinout.so"));
        writeFile(dir / "plugin.ttl", loaderTtl());
        std::cout << fmt::format("{}: spinout loader ({})\n", dir.string(), kLoaderUri);
    }
    return kOk;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"spinout: Csound sessions rendered, checked and exported"};
    app.require_subcommand(1);

    RenderJob job;
    std::vector<std::string> sets;
    std::string output = "out.wav";
    std::string format, encoding;
    auto* renderCmd = app.add_subcommand("render", "render a session to a sound file");
    addRenderOptions(renderCmd, job, sets);
    renderCmd->add_option("-o,--output", output, "the sound file to write (default out.wav)");
    renderCmd
        ->add_option("--format", format, "wav, flac, ogg or aiff (default: from the file name)")
        ->check(CLI::IsMember({"wav", "flac", "ogg", "aiff"}));
    renderCmd
        ->add_option("--encoding", encoding,
                     "pcm16, pcm24, pcm32, float32 or float64 (default float32; pcm24 for flac)")
        ->check(CLI::IsMember({"pcm16", "pcm24", "pcm32", "float32", "float64"}));

    RenderJob csdJob;
    std::vector<std::string> csdSets;
    std::string csdOutput;
    auto* csdCmd = app.add_subcommand(
        "csd", "write a standalone .csd that the csound command renders the same");
    addRenderOptions(csdCmd, csdJob, csdSets);
    csdCmd->add_option("-o,--output", csdOutput, "the .csd to write")->required();

    std::string checkPath, infoPath;
    auto* checkCmd = app.add_subcommand("check", "validate a session and compile its Csound code");
    checkCmd->add_option("session", checkPath, "the session file")->required();
    auto* infoCmd = app.add_subcommand("info", "list a session's instrs, buses, ports and presets");
    infoCmd->add_option("session", infoPath, "the session file")->required();

    std::vector<std::string> bundleSessions;
    bool bundleLoader = false;
    std::string bundleBinary, bundleOut;
    auto* bundleCmd =
        app.add_subcommand("bundle", "make installable LV2 bundles from session files");
    bundleCmd->add_option("sessions", bundleSessions, "session files");
    bundleCmd->add_flag("--loader", bundleLoader, "also make the loader plugin's bundle");
    bundleCmd->add_option("--binary", bundleBinary,
                          "the plugin binary (default: the one installed with this command)");
    bundleCmd
        ->add_option("-o,--output", bundleOut, "the folder to write the bundles in (e.g. ~/.lv2)")
        ->required();

    try {
        app.parse(argc, argv);
        if (bundleCmd->parsed() && bundleSessions.empty() && !bundleLoader)
            throw CLI::ValidationError("bundle", "give session files or --loader");
        if (renderCmd->parsed()) {
            parseSets(sets, job);
            std::string ext = std::filesystem::path(output).extension().string();
            if (!ext.empty()) ext = ext.substr(1);
            if (ext == "aif") ext = "aiff";
            job.format.container = !format.empty() ? format : (ext.empty() ? "wav" : ext);
            // float32 keeps every sample; FLAC holds integers only
            job.format.encoding = !encoding.empty()
                                      ? encoding
                                      : (job.format.container == "flac" ? "pcm24" : "float32");
            if (job.format.container == "ogg" && !encoding.empty())
                throw CLI::ValidationError("--encoding", "ogg is always Vorbis; drop --encoding");
        }
        if (csdCmd->parsed()) parseSets(csdSets, csdJob);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return kUsageError;
    }

    try {
        if (renderCmd->parsed()) return runRender(job, output);
        if (csdCmd->parsed()) {
            csdJob.csd = true;
            csdJob.csdOutput =
                std::filesystem::path(csdOutput).replace_extension(".wav").filename().string();
            const auto r = render(csdJob);
            const std::string partial = csdOutput + ".partial";
            {
                std::ofstream out(partial, std::ios::binary);
                out << r.csd;
                if (!out) {
                    std::remove(partial.c_str());
                    throw RenderError(fmt::format("cannot write '{}'", csdOutput));
                }
            }
            std::filesystem::rename(partial, csdOutput);
            std::cout << fmt::format("{}: {:.3f} s at {} Hz\n", csdOutput,
                                     static_cast<double>(r.frames) / r.sr, r.sr);
            return kOk;
        }
        if (checkCmd->parsed()) return runCheck(checkPath);
        if (bundleCmd->parsed())
            return runBundle(bundleSessions, bundleLoader, bundleBinary, bundleOut);
        if (infoCmd->parsed()) return runInfo(infoPath);
    } catch (const SessionFileError& e) {
        printDiagnostics(e);
        return kInputError;
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return kInputError;
    }
    return kUsageError;
}
