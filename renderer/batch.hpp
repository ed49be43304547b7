// Batch renders for `spinout render`: several sessions, presets and inputs in one call, one
// file per combination named by a template, rendered by parallel processes, and a shard of
// the batch for spreading it over machines. Runs in the command's main thread only.
#pragma once

#include "render.hpp"
#include "render_options.hpp"

#include <cstddef>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace spinout {

// What `spinout render` was given. Files of one kind are alternatives, kinds play together:
// the batch is every session x each of its presets x every MIDI file x every score x every
// sound file (a kind not given counts once, as "none").
struct BatchRequest {
    std::vector<std::string> sessions;
    std::vector<std::string> presets; // names, comma lists or "all"; empty: the defaults
    std::vector<std::string> midis;
    std::vector<std::string> scores;
    std::vector<std::string> inputs;
    std::string output; // a name, or a template with {session}, {preset}, {input}
    int shard = 1;      // render the shard-th (1-based) of `shards` parts
    int shards = 1;
};

struct BatchItem {
    RenderJob job;         // session, preset, midi, score, input and output set
    std::size_t index = 0; // in the whole batch, from 0
    std::string session;   // the template's values
    std::string preset;
    std::string input;
};

// The fields of an output template; throws UsageError for an unknown field or a stray brace.
// Returns whether the template has any field.
bool checkTemplate(const std::string& output);

// The whole batch in its fixed order (sessions as given; a session's presets as given, or in
// the session's order for "all", as info lists them; then MIDI files, scores and sound files as
// given), each item's output named by the template. Throws SessionFileError for a session that does
// not parse, RenderError for a preset a session lacks, UsageError for a template that gives two
// renders one name. `base` holds the options every render shares.
std::vector<BatchItem> planBatch(const BatchRequest& request, const RenderJob& base);

// The items of the request's shard: those whose index is shard-1 modulo shards, so the
// parts differ in size by one at most and each gets a spread of the batch.
std::vector<BatchItem> shardOf(std::vector<BatchItem> items, int shard, int shards);

// "K/N" with 1 <= K <= N; throws UsageError.
void parseShard(const std::string& text, int& shard, int& shards);

// m:ss.s, or h:mm:ss from an hour on ("--" for no time): progress lines.
std::string clockText(double seconds);

// The CPUs this process may run on (as nproc counts them).
int availableCpus();

// Renders `items` with up to `jobs` child processes at once. Each child runs
// `renderOne(item)` (which prints what a single render prints and returns its exit status),
// its output captured and passed on when it ends. Progress covers the batch: on a terminal
// a line with renders done, elapsed and left; elsewhere each finished render's lines. A
// failed render does not stop the others; it is named at the end. SIGINT, SIGTERM and SIGHUP
// are passed to the renders running, which remove their partial files, and the command
// then dies of the signal. Returns 0 when every render succeeded, else 1.
int runBatch(const std::vector<BatchItem>& items, std::size_t batchSize, int jobs,
             const std::function<int(const BatchItem&)>& renderOne);

} // namespace spinout
