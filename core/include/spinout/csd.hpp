// A standalone .csd of what a session did: the orchestra the engine compiled,
// in order, and a score of every event and host write at its frame. The
// `csound` command renders it to the same samples.
#pragma once

#include "spinout/session.hpp"

#include <stdexcept>
#include <string>

namespace spinout {

struct CsdOptions {
    std::string output = "spinout.wav"; // -o in CsOptions (the command line overrides it)
    std::string input;                  // -i: the audio input of an effect
    double end = 0;                     // seconds
};

class CsdError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The session must have had its journal on (Session::setJournal) from the start. Throws
// CsdError for code a .csd cannot hold as it is (see csd.cpp).
std::string exportCsd(const Session& session, const CsdOptions& options);

} // namespace spinout
