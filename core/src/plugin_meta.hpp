// [session] author, license, version and category: what a host shows of the
// plugin (internal to the core; the session parser calls it).
#pragma once

#include "toml_reader.hpp"

namespace spinout::detail {

// Reads the four keys of [session] into spec.meta (spec.kind must be set), with
// an error naming the line for each bad value.
void parsePluginMeta(Reader& r, const toml::table& session, SessionSpec& spec);

} // namespace spinout::detail
