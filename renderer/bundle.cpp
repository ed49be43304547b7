// `spinout bundle`: session files made into LV2 bundles (the binary, the session,
// what it includes, its Turtle). Every file a bundle holds comes from inside the
// session's folder, and every write goes into a new folder of our own, made next
// to the bundle's place and renamed there when complete.
#include "bundle.hpp"
#include "spinout/text_file.hpp"

#include "spinout/policy.hpp"
#include "spinout/session_file.hpp"
#include "spinout/trust.hpp"
#include "spinout/ttl.hpp"

#include <fmt/format.h>
#include <serd/serd.h>

#include <fcntl.h>
#include <stdio.h> // renameat2
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace spinout {

namespace fs = std::filesystem;

namespace {

// A bundle carries sound files and the plugin binary: larger than any text file.
constexpr std::size_t kMaxBundleFileBytes = std::size_t{1} << 30;

// The files the plugin reads from its bundle, which an include must not replace.
const std::vector<std::string> kBundleFiles = {"manifest.ttl", "plugin.ttl", "presets.ttl",
                                               "session.toml", "spinout.so", kBundleGrantsFile};

// One bundle, planned before anything is written.
struct Plan {
    std::string source;                                     // the session file ("" for the loader)
    std::string uri;                                        // the plugin it declares
    std::string label;                                      // for the line printed when it is made
    fs::path dest;                                          // OUTDIR/spinout-NAME.lv2
    std::vector<std::pair<std::string, std::string>> files; // name in the bundle, content
};

// The session's includes, each resolved (symlinks too) inside the session's folder.
std::vector<std::pair<std::string, std::string>> includeFiles(const SessionSpec& spec) {
    std::vector<Diagnostic> errors;
    std::vector<std::pair<std::string, std::string>> files;
    std::error_code ec;
    const fs::path root = fs::canonical(spec.dir, ec);
    if (ec)
        throw BundleError(
            fmt::format("cannot resolve the folder '{}': {}", spec.dir, ec.message()));
    for (std::size_t i = 0; i < spec.includes.size(); ++i) {
        const auto& name = spec.includes[i];
        const SourcePos pos =
            i < spec.includePos.size() ? spec.includePos[i] : SourcePos{spec.path, 0, 0};
        const fs::path p(name);
        const auto error = [&](const std::string& why) {
            errors.push_back({pos, fmt::format("include '{}' {}", name, why)});
        };
        if (p.is_absolute()) {
            error("is an absolute path: a bundle holds only files inside the session's folder");
            continue;
        }
        if (std::any_of(p.begin(), p.end(), [](const fs::path& c) { return c == ".."; })) {
            error("goes up with '..': a bundle holds only files inside the session's folder");
            continue;
        }
        const fs::path target = fs::canonical(root / p, ec);
        if (ec) {
            error(fmt::format("cannot be resolved: {}", ec.message()));
            continue;
        }
        const fs::path rel = target.lexically_relative(root);
        if (rel.empty() || *rel.begin() == "..") {
            error(fmt::format("leads out of the session's folder (to {})", target.string()));
            continue;
        }
        if (!fs::is_regular_file(target)) {
            error("is not a file");
            continue;
        }
        const auto inBundle = p.lexically_normal().string();
        if (std::find(kBundleFiles.begin(), kBundleFiles.end(), inBundle) != kBundleFiles.end()) {
            error("has the name of a file the bundle is made of");
            continue;
        }
        if (std::any_of(files.begin(), files.end(),
                        [&](const auto& f) { return f.first == inBundle; }))
            continue; // named twice
        auto content = readTextFile(target, kMaxBundleFileBytes);
        if (!content) {
            error("cannot be read");
            continue;
        }
        files.emplace_back(inBundle, std::move(*content));
    }
    if (!errors.empty()) throw SessionFileError(errors);
    return files;
}

// ---- the LV2 path: which bundles declare which plugins (as hosts read manifests) ----

struct ManifestReader {
    SerdEnv* env;
    std::vector<std::string> plugins;
    std::string lv2Plugin = "http://lv2plug.in/ns/lv2core#Plugin";
    std::string rdfType = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";

    std::string expand(const SerdNode* n) const {
        SerdNode full = serd_env_expand_node(env, n);
        std::string s = full.buf ? reinterpret_cast<const char*>(full.buf) : "";
        serd_node_free(&full);
        return s;
    }
};

// The URIs a bundle's manifest.ttl declares `a lv2:Plugin`; empty if it cannot be read.
std::vector<std::string> pluginsIn(const fs::path& bundle) {
    const auto manifest = bundle / "manifest.ttl";
    FILE* file = std::fopen(manifest.c_str(), "rb");
    if (file == nullptr) return {};
    SerdNode base = serd_node_new_file_uri(reinterpret_cast<const uint8_t*>(manifest.c_str()),
                                           nullptr, nullptr, true);
    ManifestReader r{serd_env_new(&base), {}};
    SerdReader* reader = serd_reader_new(
        SERD_TURTLE, &r, nullptr,
        [](void* h, const SerdNode* uri) {
            return serd_env_set_base_uri(static_cast<ManifestReader*>(h)->env, uri);
        },
        [](void* h, const SerdNode* name, const SerdNode* uri) {
            return serd_env_set_prefix(static_cast<ManifestReader*>(h)->env, name, uri);
        },
        [](void* h, SerdStatementFlags, const SerdNode*, const SerdNode* s, const SerdNode* p,
           const SerdNode* o, const SerdNode*, const SerdNode*) {
            auto& m = *static_cast<ManifestReader*>(h);
            if (s->type == SERD_BLANK || o->type == SERD_LITERAL) return SERD_SUCCESS;
            if (m.expand(p) == m.rdfType && m.expand(o) == m.lv2Plugin)
                m.plugins.push_back(m.expand(s));
            return SERD_SUCCESS;
        },
        nullptr);
    // a broken manifest of someone else's is not ours to report
    serd_reader_set_error_sink(
        reader, [](void*, const SerdError*) { return SERD_SUCCESS; }, nullptr);
    serd_reader_read_file_handle(reader, file, base.buf);
    serd_reader_free(reader);
    serd_env_free(r.env);
    serd_node_free(&base);
    std::fclose(file);
    return r.plugins;
}

// Another bundle holding the same files is the same plugin; anything else is not.
bool sameContent(const fs::path& bundle, const Plan& plan) {
    for (const auto& [name, content] : plan.files) {
        if (name == "spinout.so") continue; // the binary may be another build of the same code
        const auto theirs = readTextFile(bundle / name, kMaxBundleFileBytes);
        if (!theirs || *theirs != content) return false;
    }
    return true;
}

// Refuses a URI that a host would find twice: lilv keeps one of two bundles that
// declare the same plugin ("Duplicate plugin") and drops the other.
void checkLv2Path(const std::vector<Plan>& plans, const BundleJob& job) {
    auto dirs = lv2SearchPath(job.lv2Path);
    dirs.push_back(job.outDir);
    std::vector<fs::path> seen;
    for (const auto& dir : dirs) {
        std::error_code ec;
        const auto canonicalDir = fs::canonical(dir, ec);
        if (ec || std::find(seen.begin(), seen.end(), canonicalDir) != seen.end()) continue;
        seen.push_back(canonicalDir);
        for (const auto& entry : fs::directory_iterator(canonicalDir, ec)) {
            std::error_code ec2;
            if (!entry.is_directory(ec2)) continue;
            const auto bundle = fs::canonical(entry.path(), ec2);
            if (ec2) continue;
            const auto uris = pluginsIn(bundle);
            for (const auto& plan : plans) {
                if (std::find(uris.begin(), uris.end(), plan.uri) == uris.end()) continue;
                std::error_code ec3;
                if (fs::equivalent(bundle, plan.dest, ec3)) continue; // the one it replaces
                if (sameContent(bundle, plan)) continue;
                throw BundleError(fmt::format(
                    "{}: the plugin {} is already in {} with other content; a host would load "
                    "only one of the two (lilv: \"Duplicate plugin\"). Give this session its own "
                    "uri, remove the other bundle, or make it anyway with --force",
                    plan.source.empty() ? plan.label : plan.source, plan.uri, bundle.string()));
            }
        }
    }
}

// ---- writing: only inside a new folder of our own, never through a link ----

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

// Writes `name` (which may hold folders) below the folder `dir`, creating it new.
void writeBelow(const fs::path& dir, const fs::path& name, const std::string& content,
                mode_t mode) {
    const auto fail = [&](const char* what) {
        throw BundleError(fmt::format("cannot {} '{}' in {}: {}", what, name.string(), dir.string(),
                                      std::strerror(errno)));
    };
    auto current = std::make_unique<Fd>(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (current->get() < 0) fail("open the folder for");
    const auto parts = std::vector<fs::path>(name.begin(), name.end());
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
        if (::mkdirat(current->get(), parts[i].c_str(), 0755) != 0 && errno != EEXIST)
            fail("make a folder for");
        auto next = std::make_unique<Fd>(::openat(current->get(), parts[i].c_str(),
                                                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (next->get() < 0) fail("enter the folder of");
        current = std::move(next);
    }
    Fd file(::openat(current->get(), parts.back().c_str(),
                     O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
    if (file.get() < 0) fail("create");
    std::size_t done = 0;
    while (done < content.size()) {
        const auto n = ::write(file.get(), content.data() + done, content.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail("write");
        done += static_cast<std::size_t>(n);
    }
}

// A folder being made: removed unless it was put in place.
class TempBundle {
public:
    explicit TempBundle(const fs::path& dest) {
        auto pattern = (dest.parent_path() / ("." + dest.filename().string() + ".XXXXXX")).string();
        if (::mkdtemp(pattern.data()) == nullptr)
            throw BundleError(fmt::format("cannot make a folder in {}: {}",
                                          dest.parent_path().string(), std::strerror(errno)));
        path_ = pattern;
    }
    ~TempBundle() {
        std::error_code ec;
        if (!path_.empty()) fs::remove_all(path_, ec);
    }
    TempBundle(const TempBundle&) = delete;
    TempBundle& operator=(const TempBundle&) = delete;
    const fs::path& path() const { return path_; }

    // In place of `dest`, atomically: a bundle there before is removed afterwards.
    void install(const fs::path& dest) {
        if (::renameat2(AT_FDCWD, path_.c_str(), AT_FDCWD, dest.c_str(), RENAME_NOREPLACE) == 0) {
            path_.clear();
            return;
        }
        if (errno != EEXIST ||
            ::renameat2(AT_FDCWD, path_.c_str(), AT_FDCWD, dest.c_str(), RENAME_EXCHANGE) != 0)
            throw BundleError(fmt::format("cannot put the bundle in place at {}: {}", dest.string(),
                                          std::strerror(errno)));
        // path_ now names the bundle that was there: the destructor removes it
    }

private:
    fs::path path_;
};

void make(const Plan& plan) {
    TempBundle tmp(plan.dest);
    // manifest.ttl last: until it exists, hosts take the folder for no bundle
    for (const auto& [name, content] : plan.files)
        if (name != "manifest.ttl")
            writeBelow(tmp.path(), name, content, name == "spinout.so" ? 0755 : 0644);
    for (const auto& [name, content] : plan.files)
        if (name == "manifest.ttl") writeBelow(tmp.path(), name, content, 0644);
    tmp.install(plan.dest);
}

} // namespace

std::vector<std::string> lv2SearchPath(const std::string& lv2Path) {
    std::string path = lv2Path;
    if (path.empty()) {
        const char* env = std::getenv("LV2_PATH");
        path = env != nullptr && *env != '\0' ? env : "~/.lv2:/usr/local/lib/lv2:/usr/lib/lv2";
    }
    const char* home = std::getenv("HOME");
    std::vector<std::string> dirs;
    std::stringstream ss(path);
    for (std::string dir; std::getline(ss, dir, ':');) {
        if (dir.empty()) continue;
        if (dir[0] == '~' && (dir.size() == 1 || dir[1] == '/')) {
            if (home == nullptr) continue;
            dir = home + dir.substr(1);
        }
        dirs.push_back(dir);
    }
    return dirs;
}

void makeBundles(const BundleJob& job, std::ostream& out) {
    const auto binary = readTextFile(job.binary, kMaxBundleFileBytes);
    if (!binary) throw BundleError(fmt::format("cannot read the plugin binary '{}'", job.binary));
    const fs::path outDir(job.outDir);

    // Plan every bundle first: a bad session, include or URI stops before any write.
    std::vector<Plan> plans;
    for (const auto& path : job.sessions) {
        const auto spec = parseSessionFile(path);
        Plan plan;
        plan.source = path;
        plan.uri = spec.uri;
        plan.label = fmt::format("{} ({})", spec.name, spec.uri);
        plan.dest = outDir / ("spinout-" + fs::path(path).stem().string() + ".lv2");
        plan.files = {{"spinout.so", *binary}, {"session.toml", spec.text}};
        for (auto& f : includeFiles(spec))
            plan.files.push_back(std::move(f));
        // what the plugin will run: refused now rather than in a host
        Grants grants = Grants::none(spec.dir);
        grants.permissions = job.allow;
        if (auto refusals = checkPolicy(spec, grants); !refusals.empty())
            throw SessionFileError(std::move(refusals));
        if (job.allow.any()) {
            TrustEntry grant;
            grant.digest = sessionDigest(spec);
            grant.allow = job.allow;
            plan.files.emplace_back(kBundleGrantsFile, bundleGrantsText(grant));
        }
        try {
            plan.files.emplace_back("manifest.ttl", manifestTtl(spec, "spinout.so"));
            plan.files.emplace_back("plugin.ttl", pluginTtl(spec));
            plan.files.emplace_back("presets.ttl", presetsTtl(spec));
        } catch (const TtlError& e) {
            throw BundleError(fmt::format("{}: {}", path, e.what()));
        }
        if (spec.kind == SessionSpec::effect && spec.meta.lv2Class.empty())
            std::cerr << fmt::format("warning: {}: an effect without [session] category is a "
                                     "plain lv2:Plugin, which hosts list as \"Plugin\"\n",
                                     path);
        plans.push_back(std::move(plan));
    }
    if (job.loader) {
        Plan plan;
        plan.uri = kLoaderUri;
        plan.label = fmt::format("spinout loader ({})", kLoaderUri);
        plan.dest = outDir / "spinout-loader.lv2";
        plan.files = {{"spinout.so", *binary},
                      {"manifest.ttl", loaderManifestTtl("spinout.so")},
                      {"plugin.ttl", loaderTtl()}};
        plans.push_back(std::move(plan));
    }
    for (std::size_t i = 0; i < plans.size(); ++i)
        for (std::size_t j = 0; j < i; ++j) {
            const auto name = [&](const Plan& p) { return p.source.empty() ? p.label : p.source; };
            if (plans[i].uri == plans[j].uri)
                throw BundleError(fmt::format("{} and {} declare the same uri {}", name(plans[j]),
                                              name(plans[i]), plans[i].uri));
            if (plans[i].dest == plans[j].dest)
                throw BundleError(fmt::format("{} and {} would both make {}", name(plans[j]),
                                              name(plans[i]), plans[i].dest.string()));
        }

    std::error_code ec;
    fs::create_directories(outDir, ec);
    if (ec)
        throw BundleError(fmt::format("cannot make the folder {}: {}", job.outDir, ec.message()));
    if (!job.force) checkLv2Path(plans, job);
    for (const auto& plan : plans) {
        make(plan);
        out << fmt::format("{}: {}\n", plan.dest.string(), plan.label);
    }
}

} // namespace spinout
