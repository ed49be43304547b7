// `spinout bundle`: session files made into installable LV2 bundles.
#pragma once

#include "spinout/permission.hpp"

#include <bitset>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace spinout {

class BundleError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct BundleJob {
    std::vector<std::string> sessions;
    bool loader = false; // also the loader's bundle
    std::string binary;  // the plugin binary to copy
    std::string outDir;  // bundles go in OUTDIR/spinout-NAME.lv2
    bool force = false;  // even if the URI is on the LV2 path with other content
    std::string lv2Path; // where hosts look; "" = $LV2_PATH, else LV2's default
    // What the user grants the sessions: checked now, and recorded in each bundle (its
    // grants.toml, tied to the session's SHA-256) for the plugin to read.
    std::bitset<kAllPermissions.size()> allow;
};

// Makes each bundle in a temporary folder next to its place and renames it there
// when complete: an error leaves nothing half-made and never replaces a bundle. A
// session the policy check refuses with job.allow makes no bundle (SessionFileError).
// Writes only inside the new bundle folder. Throws SessionFileError (with the
// session's line) or BundleError; prints a line per bundle made.
void makeBundles(const BundleJob& job, std::ostream& out);

// LV2_PATH as hosts read it: `lv2Path`, else $LV2_PATH, else
// ~/.lv2:/usr/local/lib/lv2:/usr/lib/lv2.
std::vector<std::string> lv2SearchPath(const std::string& lv2Path);

} // namespace spinout
