#!/usr/bin/env bash
# Peak memory of `spinout render` against the length of a score: scores of 1,000, 10,000
# and 100,000 short notes (never more than four sounding at once) for a small session.
# A score is read a part at a time and kept as its text and an index, and each event holds
# a slot only while it sounds, so memory should stay near flat. Writes a table to stdout.
# Usage: benchmarks/score_memory.sh   (after scripts/setup; needs GNU time, /usr/bin/time)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/spinout
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat > "$work/steps.toml" <<'TOML'
[session]
name = "Steps"
uri = "urn:spinout:bench-steps"
kind = "instrument"
audio_outputs = 1
[instr.dc]
body = '''
|iamp=0.1|
aone init 1
outch 1, aone * iamp
'''
[midi]
instr = "dc"
TOML

echo "| events | score file | audio | render (s) | peak RSS (MiB) |"
echo "|---|---|---|---|---|"
for n in 1000 10000 100000; do
  awk -v n="$n" 'BEGIN {
    for (k = 0; k < n; k++)
      printf "[[event]]\ninstr = \"dc\"\ntime = %.2f\ndur = 0.035\nargs = { iamp = %.2f }\n", k * 0.01, 0.1 + (k % 7) * 0.01
  }' > "$work/score.toml"
  size=$(du -h "$work/score.toml" | cut -f1)
  /usr/bin/time -f "%e %M" -o "$work/time" "$bin" render "$work/steps.toml" --score "$work/score.toml" \
    --tail 0.1 -o "$work/out.wav" > "$work/report"
  read -r secs kb < "$work/time"
  audio=$(awk '{print $2}' "$work/report")
  printf "| %d | %s | %s s | %.2f | %.1f |\n" "$n" "$size" "$audio" "$secs" "$(awk -v k="$kb" 'BEGIN {print k / 1024}')"
done
