// Grants and where they are recorded (see trust.hpp): SHA-256 through nettle, the trust
// file and a bundle's grants.toml in TOML. Not real-time: reads and writes files.
#include "spinout/trust.hpp"
#include "spinout/quoted.hpp"
#include "spinout/text_file.hpp"

#include "spinout/suggest.hpp"
#include "toml_reader.hpp"

#include <fmt/format.h>
#include <nettle/sha2.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

namespace spinout {

namespace fs = std::filesystem;

namespace {

bool isSha256(const std::string& s) {
    return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

std::vector<std::string> permissionNames() {
    std::vector<std::string> names;
    for (auto p : kAllPermissions)
        names.emplace_back(permissionName(p));
    return names;
}

// The keys of one entry, as the trust file's [[session]] and grants.toml hold them.
std::string entryText(const TrustEntry& e, bool withFile) {
    std::string out = fmt::format("sha256 = {}\n", quotedString(e.digest.sha256));
    std::vector<std::string> allow;
    for (auto p : kAllPermissions)
        if (e.allow.test(static_cast<std::size_t>(p)))
            allow.push_back(quotedString(permissionName(p)));
    out += fmt::format("allow = [{}]\n", fmt::join(allow, ", "));
    if (!e.digest.includes.empty()) {
        std::vector<std::string> items;
        for (const auto& [name, sha] : e.digest.includes)
            items.push_back(fmt::format("{} = {}", quotedString(name), quotedString(sha)));
        out += fmt::format("includes = {{ {} }}\n", fmt::join(items, ", "));
    }
    if (withFile && !e.file.empty()) out += fmt::format("file = {}\n", quotedString(e.file));
    return out;
}

TrustEntry parseEntry(detail::Reader& r, const toml::table& t, const std::string& where) {
    r.checkKeys(t, {"sha256", "allow", "includes", "file"}, where);
    TrustEntry e;
    e.pos = r.pos(t);
    e.digest.sha256 = r.string(t, "sha256", where, true).value_or("");
    if (t.contains("sha256") && !isSha256(e.digest.sha256))
        r.error(r.pos(*t.get("sha256")),
                fmt::format("{}: sha256 must be 64 lowercase hex digits", where));
    e.file = r.string(t, "file", where).value_or("");
    if (const auto* allow = t.get("allow")) {
        if (!allow->is_array()) {
            r.error(r.pos(*allow), fmt::format("{}: allow must be an array of permissions", where));
        } else {
            for (const auto& x : *allow->as_array()) {
                const auto name = x.is_string() ? x.as_string()->get() : std::string();
                if (const auto p = parsePermission(name))
                    e.allow.set(static_cast<std::size_t>(*p));
                else
                    r.error(r.pos(x),
                            fmt::format("{}: unknown permission '{}'{}", where, name,
                                        didYouMean(name, permissionNames(), "permissions")));
            }
        }
    }
    if (const auto* inc = r.table(t, "includes", where)) {
        for (const auto& [k, v] : *inc) {
            if (!v.is_string() || !isSha256(v.as_string()->get())) {
                r.error(r.pos(v), fmt::format("{}: the include '{}' needs a SHA-256", where,
                                              std::string(k.str())));
                continue;
            }
            e.digest.includes.emplace_back(std::string(k.str()), v.as_string()->get());
        }
    }
    return e;
}

} // namespace

std::string sha256Hex(std::string_view data) {
    sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, data.size(), reinterpret_cast<const std::uint8_t*>(data.data()));
    std::uint8_t digest[SHA256_DIGEST_SIZE];
    sha256_digest(&ctx, SHA256_DIGEST_SIZE, digest);
    std::string out;
    for (const auto b : digest)
        out += fmt::format("{:02x}", b);
    return out;
}

PermissionSet parsePermissionList(std::string_view text) {
    PermissionSet set;
    std::string word;
    const auto flush = [&] {
        if (word.empty()) return;
        const auto p = parsePermission(word);
        if (!p) {
            auto tail = didYouMean(word, permissionNames(), "permissions");
            if (tail.empty())
                tail = fmt::format(" (the permissions are {})", fmt::join(permissionNames(), ", "));
            throw std::invalid_argument(fmt::format("unknown permission '{}'{}", word, tail));
        }
        set.set(static_cast<std::size_t>(*p));
        word.clear();
    };
    for (const char c : text) {
        if (c == ',' || c == ' ' || c == '\t')
            flush();
        else
            word += c;
    }
    flush();
    return set;
}

std::string permissionListText(const PermissionSet& set) {
    std::vector<std::string> names;
    for (auto p : kAllPermissions)
        if (set.test(static_cast<std::size_t>(p))) names.emplace_back(permissionName(p));
    return names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "));
}

PermissionSet declaredPermissions(const SessionSpec& spec) {
    PermissionSet set;
    for (const auto& [p, pos] : spec.permissions)
        set.set(static_cast<std::size_t>(p));
    return set;
}

SessionDigest sessionDigest(const SessionSpec& spec) {
    SessionDigest d;
    d.sha256 = sha256Hex(spec.text);
    // each file once, under the name it goes by
    const auto add = [&](const std::string& name, const fs::path& file) {
        if (std::any_of(d.includes.begin(), d.includes.end(),
                        [&](const auto& i) { return i.first == name; }))
            return;
        const auto text = readTextFile(file);
        d.includes.emplace_back(name, text ? sha256Hex(*text) : std::string(kUnreadable));
    };
    for (const auto& name : spec.includes)
        add(name, fs::path(name).is_absolute() ? fs::path(name) : fs::path(spec.dir) / name);
    // and the files its code #includes: code as much as the session's own
    for (const auto& file : codeIncludes(spec)) {
        const auto relative = fs::path(file).lexically_relative(spec.dir);
        const bool inside = !relative.empty() && *relative.begin() != "..";
        add(inside ? relative.string() : file, file);
    }
    // by name, as a trust file's table of includes reads back
    std::sort(d.includes.begin(), d.includes.end());
    return d;
}

std::string TrustFile::defaultPath() {
    const char* xdg = std::getenv("XDG_CONFIG_HOME");
    // the XDG spec: a relative value is invalid and ignored
    if (xdg != nullptr && xdg[0] == '/') return (fs::path(xdg) / "spinout" / "trust.toml").string();
    const char* home = std::getenv("HOME");
    if (home != nullptr && home[0] != '\0')
        return (fs::path(home) / ".config" / "spinout" / "trust.toml").string();
    return {};
}

TrustFile TrustFile::load(const std::string& path) {
    TrustFile file;
    if (path.empty()) return file;
    std::error_code ec;
    if (!fs::exists(path, ec)) return file;
    const auto text = readTextFile(path);
    if (!text) throw SessionFileError({{{path, 0, 0}, "cannot read the trust file"}});
    const auto root = detail::parseToml(*text, path);
    detail::Reader r(path, *text);
    r.checkKeys(root, {"session"}, "the trust file");
    for (const auto* t : r.arrayOfTables(root, "session"))
        file.entries_.push_back(parseEntry(r, *t, "[[session]]"));
    if (r.failed()) throw SessionFileError(r.errors());
    return file;
}

const TrustEntry* TrustFile::find(const SessionDigest& digest) const {
    for (const auto& e : entries_)
        if (e.digest == digest) return &e;
    return nullptr;
}

void TrustFile::put(TrustEntry entry) {
    for (auto& e : entries_)
        if (e.digest.sha256 == entry.digest.sha256) {
            e = std::move(entry);
            return;
        }
    entries_.push_back(std::move(entry));
}

int TrustFile::remove(const std::string& sha256) {
    const auto before = entries_.size();
    std::erase_if(entries_, [&](const TrustEntry& e) { return e.digest.sha256 == sha256; });
    return static_cast<int>(before - entries_.size());
}

std::string TrustFile::text() const {
    std::string out =
        "# Sessions trusted with permissions beyond making sound, each by the SHA-256 of\n"
        "# its text (and of the files it includes): an edited session is untrusted again.\n"
        "# Written by `spinout trust`; spinout's plugins and command read it.\n";
    for (const auto& e : entries_)
        out += "\n[[session]]\n" + entryText(e, true);
    return out;
}

void TrustFile::save(const std::string& path) const {
    if (path.empty())
        throw std::runtime_error("no trust file: neither XDG_CONFIG_HOME nor HOME is set");
    const fs::path target(path);
    const fs::path folder = target.parent_path();
    std::error_code ec;
    if (!fs::exists(folder, ec)) {
        fs::create_directories(folder, ec);
        if (ec)
            throw std::runtime_error(
                fmt::format("cannot make the folder {}: {}", folder.string(), ec.message()));
        ::chmod(folder.c_str(), 0700);
    }
    auto pattern = (folder / ".trust.toml.XXXXXX").string();
    const int fd = ::mkstemp(pattern.data());
    if (fd < 0)
        throw std::runtime_error(
            fmt::format("cannot write in {}: {}", folder.string(), std::strerror(errno)));
    const auto content = text();
    std::size_t done = 0;
    bool ok = true;
    while (ok && done < content.size()) {
        const auto n = ::write(fd, content.data() + done, content.size() - done);
        if (n < 0 && errno == EINTR) continue;
        ok = n > 0;
        if (ok) done += static_cast<std::size_t>(n);
    }
    ok = ::fchmod(fd, 0600) == 0 && ok;
    ok = ::close(fd) == 0 && ok;
    if (!ok || ::rename(pattern.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(pattern.c_str());
        throw std::runtime_error(fmt::format("cannot write {}: {}", path, std::strerror(err)));
    }
}

std::string bundleGrantsText(const TrustEntry& entry) {
    return "# What session.toml may do beyond making sound, granted by `spinout bundle --allow`.\n"
           "# It holds only for the session with this SHA-256 (and these includes): an edited\n"
           "# session loses it.\n" +
           entryText(entry, false);
}

TrustEntry parseBundleGrants(const std::string& text, const std::string& path) {
    const auto root = detail::parseToml(text, path);
    detail::Reader r(path, text);
    auto e = parseEntry(r, root, fs::path(path).filename().string());
    if (r.failed()) throw SessionFileError(r.errors());
    return e;
}

GrantReport recordedGrants(const SessionSpec& spec, const std::string& trustPath,
                           const std::string& bundleGrantsPath) {
    GrantReport report;
    const auto digest = sessionDigest(spec);
    if (!bundleGrantsPath.empty()) {
        std::error_code ec;
        if (fs::exists(bundleGrantsPath, ec)) {
            try {
                const auto text = readTextFile(bundleGrantsPath);
                if (!text) throw SessionFileError({{{bundleGrantsPath, 0, 0}, "cannot be read"}});
                const auto e = parseBundleGrants(*text, bundleGrantsPath);
                if (e.digest == digest) {
                    report.granted |= e.allow;
                    report.notes.push_back(
                        fmt::format("{} grants {}", bundleGrantsPath, permissionListText(e.allow)));
                } else {
                    report.warnings.push_back(fmt::format(
                        "{} is void: it grants {} to a session with SHA-256 {}, and this one's "
                        "is {}{} (edited after it was bundled?)",
                        bundleGrantsPath, permissionListText(e.allow), e.digest.sha256,
                        digest.sha256,
                        e.digest.sha256 == digest.sha256 ? " with other include files" : ""));
                }
            } catch (const SessionFileError& e) {
                for (const auto& d : e.diagnostics())
                    report.warnings.push_back(d.str() + " (the bundle's grants are ignored)");
            }
        }
    }
    if (!trustPath.empty()) {
        try {
            const auto file = TrustFile::load(trustPath);
            if (const auto* e = file.find(digest)) {
                report.granted |= e->allow;
                report.notes.push_back(fmt::format("{}:{} grants {}", trustPath, e->pos.line,
                                                   permissionListText(e->allow)));
            }
        } catch (const SessionFileError& e) {
            for (const auto& d : e.diagnostics())
                report.warnings.push_back(d.str() + " (the trust file is ignored)");
        }
    }
    return report;
}

std::string grantHint(const std::vector<Diagnostic>& refusals, const std::string& sessionPath,
                      const std::string& command) {
    PermissionSet asked;
    for (const auto& d : refusals)
        for (auto p : kAllPermissions)
            if (d.message.find(fmt::format("'{}' permission", permissionName(p))) !=
                std::string::npos)
                asked.set(static_cast<std::size_t>(p));
    if (asked.none()) return {};
    std::vector<std::string> names;
    for (auto p : kAllPermissions)
        if (asked.test(static_cast<std::size_t>(p))) names.emplace_back(permissionName(p));
    const auto list = fmt::format("{}", fmt::join(names, ","));
    if (!command.empty())
        return fmt::format("if you trust this session, grant it with: spinout {} --allow {} {}",
                           command, list, sessionPath);
    return fmt::format("if you trust this session, grant it with: spinout trust --allow {} {}",
                       list, sessionPath);
}

} // namespace spinout
