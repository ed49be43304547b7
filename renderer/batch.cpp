// Batch renders (see batch.hpp): the plan of a batch, its shards, and the processes that
// render it. A render per process keeps Csound instances apart (Csound keeps global state
// per process, and a crash takes one render down, not the batch).
#include "batch.hpp"

#include "spinout/session_file.hpp"
#include "spinout/suggest.hpp"

#include <fmt/format.h>

#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <set>

namespace spinout {

namespace {

const std::vector<std::string> kFields = {"session", "preset", "input"};

std::string stem(const std::string& path) {
    return std::filesystem::path(path).stem().string();
}

// The fields named by `output`, checked.
std::set<std::string> templateFields(const std::string& output) {
    std::set<std::string> fields;
    for (std::size_t i = 0; i < output.size(); ++i) {
        if (output[i] == '}')
            throw UsageError(fmt::format("-o '{}': a '}}' without its '{{'", output));
        if (output[i] != '{') continue;
        const auto close = output.find('}', i);
        if (close == std::string::npos)
            throw UsageError(fmt::format("-o '{}': a '{{' without its '}}'", output));
        const auto name = output.substr(i + 1, close - i - 1);
        if (std::find(kFields.begin(), kFields.end(), name) == kFields.end()) {
            std::vector<std::string> braced;
            for (const auto& f : kFields)
                braced.push_back("{" + f + "}");
            auto tail = didYouMean("{" + name + "}", braced);
            if (tail.empty()) tail = " (the fields: {session}, {preset}, {input})";
            throw UsageError(fmt::format("-o '{}': unknown field {{{}}}{}", output, name, tail));
        }
        fields.insert(name);
        i = close;
    }
    return fields;
}

// A value put into a file name: a '/' would make a folder of it.
std::string nameSafe(std::string s) {
    std::replace(s.begin(), s.end(), '/', '_');
    return s;
}

std::string fill(const std::string& output, const BatchItem& item) {
    std::string out;
    for (std::size_t i = 0; i < output.size(); ++i) {
        if (output[i] != '{') {
            out += output[i];
            continue;
        }
        const auto close = output.find('}', i);
        const auto name = output.substr(i + 1, close - i - 1);
        out += nameSafe(name == "session"  ? item.session
                        : name == "preset" ? item.preset
                                           : item.input);
        i = close;
    }
    return out;
}

// "polysynth.toml, preset pad, a.mid": what an item renders, for messages.
std::string describe(const BatchItem& item) {
    std::string text = item.job.session;
    text += item.job.preset.empty() ? ", no preset" : ", preset " + item.job.preset;
    for (const auto* f : {&item.job.midi, &item.job.score, &item.job.input})
        if (!f->empty()) text += ", " + *f;
    return text;
}

// Every name of --preset, comma lists split, "all" expanded, for one session.
std::vector<std::string> presetsOf(const SessionSpec& spec, const std::vector<std::string>& given) {
    std::vector<std::string> names;
    auto add = [&](const std::string& n) {
        if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
    };
    for (const auto& entry : given) {
        std::size_t start = 0;
        while (start <= entry.size()) {
            auto end = entry.find(',', start);
            if (end == std::string::npos) end = entry.size();
            auto name = entry.substr(start, end - start);
            name.erase(0, name.find_first_not_of(' '));
            name.erase(name.find_last_not_of(' ') + 1);
            if (name.empty())
                throw UsageError(fmt::format("--preset '{}': an empty preset name", entry));
            if (name == "all") {
                for (const auto& p : spec.presets)
                    add(p.name);
            } else {
                if (spec.preset(name) == nullptr) {
                    std::vector<std::string> known;
                    for (const auto& p : spec.presets)
                        known.push_back(p.name);
                    throw RenderError(fmt::format("{}: no preset '{}'{}", spec.path, name,
                                                  didYouMean(name, known, "presets")));
                }
                add(name);
            }
            start = end + 1;
        }
    }
    // no --preset, or "all" of a session without presets: its defaults
    if (names.empty()) names.push_back("");
    return names;
}

// One of each kind of input file, and the name {input} gives it.
struct InputSet {
    std::string midi, score, input, name;
};

std::vector<InputSet> inputSets(const BatchRequest& r) {
    const std::vector<const std::vector<std::string>*> kinds = {&r.midis, &r.scores, &r.inputs};
    // {input} names the files of the kinds that vary; when none does, every file given
    bool anyVaries = false;
    for (const auto* k : kinds)
        anyVaries = anyVaries || k->size() > 1;
    std::vector<InputSet> sets = {InputSet{}};
    for (std::size_t k = 0; k < kinds.size(); ++k) {
        const auto& files = *kinds[k];
        if (files.empty()) continue;
        std::vector<InputSet> next;
        for (const auto& set : sets)
            for (const auto& f : files) {
                InputSet s = set;
                (k == 0 ? s.midi : k == 1 ? s.score : s.input) = f;
                if (!anyVaries || files.size() > 1) s.name += (s.name.empty() ? "" : "+") + stem(f);
                next.push_back(std::move(s));
            }
        sets = std::move(next);
    }
    return sets;
}

} // namespace

bool checkTemplate(const std::string& output) {
    return !templateFields(output).empty();
}

void parseShard(const std::string& text, int& shard, int& shards) {
    const auto slash = text.find('/');
    try {
        if (slash == std::string::npos) throw std::invalid_argument("no slash");
        std::size_t usedK = 0, usedN = 0;
        const auto k = text.substr(0, slash), n = text.substr(slash + 1);
        shard = std::stoi(k, &usedK);
        shards = std::stoi(n, &usedN);
        if (usedK != k.size() || usedN != n.size()) throw std::invalid_argument("trailing text");
    } catch (const std::logic_error&) {
        throw UsageError(
            fmt::format("--shard '{}': give K/N, the K-th of N parts (1 <= K <= N)", text));
    }
    if (shards < 1 || shard < 1 || shard > shards)
        throw UsageError(fmt::format("--shard {}: give K/N with 1 <= K <= N", text));
}

std::vector<BatchItem> planBatch(const BatchRequest& request, const RenderJob& base) {
    const auto fields = templateFields(request.output);
    const auto sets = inputSets(request);
    std::vector<BatchItem> items;
    for (const auto& session : request.sessions) {
        // parsed once: each render of the session takes this spec
        const auto spec = std::make_shared<const SessionSpec>(parseSessionFile(session));
        for (const auto& preset : presetsOf(*spec, request.presets))
            for (const auto& set : sets) {
                BatchItem item;
                item.job = base;
                item.job.session = session;
                item.job.spec = spec;
                item.job.preset = preset;
                item.job.midi = set.midi;
                item.job.score = set.score;
                item.job.input = set.input;
                item.index = items.size();
                item.session = stem(session);
                item.preset = preset.empty() ? "default" : preset;
                item.input = set.name;
                items.push_back(std::move(item));
            }
    }
    if (items.size() > 1 && request.output == "-")
        throw UsageError(fmt::format("-o -: the batch has {} renders and standard output takes "
                                     "one; give a name template such as -o '{{preset}}.wav'",
                                     items.size()));
    // the fields that tell renders apart, for the suggestions below
    std::vector<std::string> varying;
    if (request.sessions.size() > 1) varying.push_back("{session}");
    bool presetsVary = false;
    for (const auto& item : items)
        presetsVary = presetsVary || item.preset != items.front().preset;
    if (presetsVary) varying.push_back("{preset}");
    if (sets.size() > 1) varying.push_back("{input}");
    std::vector<std::string> missing;
    for (const auto& v : varying)
        if (fields.count(v.substr(1, v.size() - 2)) == 0) missing.push_back(v);

    std::map<std::string, std::size_t> names;
    for (auto& item : items) {
        item.job.output = fill(request.output, item);
        const auto key = std::filesystem::path(item.job.output).lexically_normal().string();
        const auto [it, fresh] = names.emplace(key, item.index);
        if (fresh) continue;
        const auto& first = items[it->second];
        std::string fix = missing.empty()
                              ? "two inputs or sessions have the same file name; rename one"
                              : fmt::format("add {} to the name", fmt::join(missing, " and "));
        if (fields.empty())
            throw UsageError(fmt::format("-o {}: the batch has {} renders, one file each; give a "
                                         "name template, e.g. -o 'out/{}.wav'",
                                         request.output, items.size(),
                                         fmt::join(varying.empty() ? kFields : varying, "-")));
        throw UsageError(fmt::format("-o '{}' gives two renders the name '{}' ({}; {}): {}",
                                     request.output, item.job.output, describe(first),
                                     describe(item), fix));
    }
    return items;
}

std::vector<BatchItem> shardOf(std::vector<BatchItem> items, int shard, int shards) {
    std::vector<BatchItem> part;
    for (auto& item : items)
        if (static_cast<int>(item.index % static_cast<std::size_t>(shards)) == shard - 1)
            part.push_back(std::move(item));
    return part;
}

std::string clockText(double s) {
    if (!std::isfinite(s) || s < 0) return "--";
    s = std::round(s * 10) / 10; // 59.96 is 1:00.0, not 0:60.0
    if (s >= 3600)
        return fmt::format("{}:{:02}:{:02}", static_cast<long>(s / 3600),
                           static_cast<long>(s / 60) % 60, static_cast<long>(s) % 60);
    return fmt::format("{}:{:04.1f}", static_cast<long>(s / 60), std::fmod(s, 60.0));
}

int availableCpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? static_cast<int>(n) : 1;
}

namespace {

// What a child printed: read back from its capture file.
std::string slurp(std::FILE* f) {
    std::string text;
    std::rewind(f);
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
        text.append(buf, n);
    std::fclose(f);
    return text;
}

struct Child {
    const BatchItem* item = nullptr;
    std::FILE* out = nullptr; // its standard output and error, captured
    std::FILE* err = nullptr;
};

} // namespace

int runBatch(const std::vector<BatchItem>& items, std::size_t batchSize, int jobs,
             const std::function<int(const BatchItem&)>& renderOne) {
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    const bool terminal = isatty(STDERR_FILENO) != 0;
    const auto elapsed = [&] {
        return std::chrono::duration<double>(Clock::now() - start).count();
    };

    // The parent waits for its children and for the termination signals in one place:
    // blocked, and taken by sigtimedwait. Signals the command ignores stay ignored.
    sigset_t waited, original;
    sigemptyset(&waited);
    sigaddset(&waited, SIGCHLD);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
        struct sigaction old {};
        if (sigaction(sig, nullptr, &old) == 0 && old.sa_handler != SIG_IGN)
            sigaddset(&waited, sig);
    }
    sigprocmask(SIG_BLOCK, &waited, &original);

    std::map<pid_t, Child> running;
    std::size_t succeeded = 0;
    std::vector<const BatchItem*> failed;
    std::size_t next = 0, done = 0;
    bool shown = false;
    auto clearLine = [&] {
        if (shown) std::fprintf(stderr, "\r\x1b[K");
        shown = false;
    };
    auto drawLine = [&] {
        if (!terminal) return;
        const double t = elapsed();
        const double left =
            done > 0 ? t / static_cast<double>(done) * static_cast<double>(items.size() - done)
                     : NAN;
        std::fprintf(stderr, "\r%zu / %zu renders (%zu running)  elapsed %s  left %s\x1b[K", done,
                     items.size(), running.size(), clockText(t).c_str(), clockText(left).c_str());
        std::fflush(stderr);
        shown = true;
    };

    auto startOne = [&](const BatchItem& item) {
        Child c;
        c.item = &item;
        c.out = std::tmpfile();
        c.err = std::tmpfile();
        if (c.out == nullptr || c.err == nullptr)
            throw RenderError(
                fmt::format("cannot make a temporary file: {}", std::strerror(errno)));
        std::cout.flush();
        std::fflush(nullptr);
        const pid_t pid = fork();
        if (pid < 0)
            throw RenderError(fmt::format("cannot start a render: {}", std::strerror(errno)));
        if (pid == 0) {
            // the child: a single render, as `spinout render` alone would do it
            sigprocmask(SIG_SETMASK, &original, nullptr);
            dup2(fileno(c.out), STDOUT_FILENO);
            dup2(fileno(c.err), STDERR_FILENO);
            int status = 1;
            try {
                status = renderOne(item);
            } catch (...) {
            }
            std::cout.flush();
            std::fflush(nullptr);
            std::_Exit(status);
        }
        running.emplace(pid, c);
    };

    int stopSignal = 0;
    auto finish = [&](pid_t pid, int status) {
        auto node = running.extract(pid);
        Child& c = node.mapped();
        const auto out = slurp(c.out);
        const auto err = slurp(c.err);
        ++done;
        clearLine();
        if (!terminal) std::cout << out << std::flush;
        std::cerr << err;
        const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (ok) ++succeeded;
        if (!ok && stopSignal != 0) {
            std::cerr << fmt::format("{}: stopped\n", c.item->job.output);
        } else if (!ok) {
            failed.push_back(c.item);
            const std::string why = WIFSIGNALED(status)
                                        ? fmt::format("killed by signal {} ({})", WTERMSIG(status),
                                                      strsignal(WTERMSIG(status)))
                                        : fmt::format("exit status {}", WEXITSTATUS(status));
            std::cerr << fmt::format("error: {}: render {} of {} failed, {} ({})\n",
                                     c.item->job.output, c.item->index + 1, batchSize, why,
                                     describe(*c.item));
        }
        std::cerr.flush();
        drawLine();
    };

    jobs = std::max(1, jobs);
    while ((stopSignal == 0 && next < items.size()) || !running.empty()) {
        while (stopSignal == 0 && next < items.size() && static_cast<int>(running.size()) < jobs)
            startOne(items[next++]);
        int status = 0;
        bool reaped = false;
        for (pid_t pid; (pid = waitpid(-1, &status, WNOHANG)) > 0;) {
            if (running.count(pid) != 0) finish(pid, status);
            reaped = true;
        }
        if (reaped) continue;
        if (stopSignal != 0) {
            // stopping: wait for the renders told to stop
            const pid_t pid = waitpid(-1, &status, 0);
            if (pid > 0 && running.count(pid) != 0) finish(pid, status);
            continue;
        }
        const timespec quarter = {0, 250'000'000};
        const int sig = sigtimedwait(&waited, nullptr, &quarter);
        if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
            stopSignal = sig;
            for (const auto& [pid, c] : running)
                kill(pid, sig);
        }
        drawLine();
    }
    clearLine();

    if (stopSignal != 0) {
        std::cerr << fmt::format("error: batch stopped ({}): {} of {} renders written\n",
                                 strsignal(stopSignal), succeeded, items.size());
        std::cerr.flush();
        std::cout.flush();
        signal(stopSignal, SIG_DFL);
        raise(stopSignal);
        sigprocmask(SIG_SETMASK, &original, nullptr);
        std::_Exit(128 + stopSignal); // not reached: the signal ends the command
    }
    sigprocmask(SIG_SETMASK, &original, nullptr);

    const auto count = succeeded;
    const std::string part =
        items.size() == batchSize ? "" : fmt::format(" (this shard's part of {})", batchSize);
    if (failed.empty()) {
        std::cout << fmt::format(
            "batch: {} render{} written{} in {:.2f} s, {} at once\n", count, count == 1 ? "" : "s",
            part, elapsed(), std::min<std::size_t>(static_cast<std::size_t>(jobs), items.size()));
        return 0;
    }
    std::cerr << fmt::format("error: batch: {} of {} renders failed{}:\n", failed.size(),
                             items.size(), part);
    for (const auto* item : failed)
        std::cerr << fmt::format("  {} ({})\n", item->job.output, describe(*item));
    std::cout << fmt::format("batch: {} of {} renders written in {:.2f} s\n", count, items.size(),
                             elapsed());
    return 1;
}

} // namespace spinout
