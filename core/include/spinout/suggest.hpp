// "Did you mean": the one place that turns a misspelt name and the valid names
// into the tail of an error message. Used by the file parsers and the command.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace spinout {

// The candidate closest to `word` (Levenshtein) within a small distance, or "".
std::string closestName(const std::string& word, const std::vector<std::string>& candidates);

// "; did you mean 'X'?" when a candidate is close. Otherwise, with a `noun`,
// " (NOUN: a, b, c)" listing the candidates; without one, "".
std::string didYouMean(const std::string& word, const std::vector<std::string>& candidates,
                       std::string_view noun = {});

} // namespace spinout
