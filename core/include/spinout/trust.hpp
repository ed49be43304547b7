// Who grants a session what. A session is untrusted unless the user grants it permissions:
// on the command line (--allow), when making its bundle (the bundle's grants.toml), or in
// the trust file of their configuration (`spinout trust`). Recorded grants name the
// session by SHA-256, so that an edited session loses them. The plugin and the command
// share this; it reads and writes files, so never on the audio thread.
#pragma once

#include "spinout/policy.hpp"
#include "spinout/spec.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spinout {

using PermissionSet = decltype(Grants::permissions);

// The SHA-256 of `data`, as 64 lowercase hex digits (what sha256sum prints).
std::string sha256Hex(std::string_view data);

// "exec,write" (commas, spaces or both). Throws std::invalid_argument naming an unknown
// word, with the closest permission suggested.
PermissionSet parsePermissionList(std::string_view text);
// "exec, write", or "none".
std::string permissionListText(const PermissionSet& set);
// What the session declares in [session].permissions.
PermissionSet declaredPermissions(const SessionSpec& spec);

// What a grant is tied to: the session file's text, the files of its [engine].includes and
// the files its code #includes (codeIncludes). Changing any of them by one byte voids the
// grant.
struct SessionDigest {
    std::string sha256;                                        // of the session file's text
    std::vector<std::pair<std::string, std::string>> includes; // name as written, SHA-256
    bool operator==(const SessionDigest&) const = default;
};
// The include files are read from the session's folder; one that cannot be read hashes
// as kUnreadable (so that it matches no grant made while it could be read).
inline constexpr const char* kUnreadable = "unreadable";
SessionDigest sessionDigest(const SessionSpec& spec);

struct TrustEntry {
    SessionDigest digest;
    PermissionSet allow;
    std::string file; // where the session was when it was trusted (for people to read)
    SourcePos pos;    // where the entry stands in its file
};

// The user's trust file: sessions by SHA-256 with the permissions granted to each.
class TrustFile {
public:
    // $XDG_CONFIG_HOME/spinout/trust.toml, else $HOME/.config/spinout/trust.toml; "" when
    // neither variable is set.
    static std::string defaultPath();
    // A missing file is an empty one; errors name the line (SessionFileError).
    static TrustFile load(const std::string& path);

    const std::vector<TrustEntry>& entries() const noexcept { return entries_; }
    // The entry granted to this very session, if any.
    const TrustEntry* find(const SessionDigest& digest) const;
    // Adds the entry, or replaces the one for the same session text.
    void put(TrustEntry entry);
    // Removes the entries whose session text has this SHA-256; how many were removed.
    int remove(const std::string& sha256);
    std::string text() const;
    // Written whole to a temporary file and renamed over `path` (its folder made 0700).
    void save(const std::string& path) const;

private:
    std::vector<TrustEntry> entries_;
};

// The grants a bundle records for its session.toml (`spinout bundle --allow`).
inline constexpr const char* kBundleGrantsFile = "grants.toml";
std::string bundleGrantsText(const TrustEntry& entry);
TrustEntry parseBundleGrants(const std::string& text, const std::string& path);

// Where a session's grants came from, each a line for the user or the host's log.
struct GrantReport {
    PermissionSet granted;
    std::vector<std::string> notes;    // "granted exec by the trust file (...)"
    std::vector<std::string> warnings; // a bundle's grants void, an unreadable trust file
};
// The grants of the trust file at `trustPath` ("" for none) for this session, and those
// of a bundle's grants.toml at `bundleGrantsPath` ("" for none) when its digest matches.
GrantReport recordedGrants(const SessionSpec& spec, const std::string& trustPath,
                           const std::string& bundleGrantsPath = "");

// A line that tells the user how to grant what the refusals ask for: the permissions
// named in them, by --allow (`command` "render", "check"...) or, for the loader and
// bundles, by `spinout trust`.
std::string grantHint(const std::vector<Diagnostic>& refusals, const std::string& sessionPath,
                      const std::string& command = "");

} // namespace spinout
