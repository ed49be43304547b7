#!/usr/bin/env bash
# spinout render against the csound command on the exported .csd of the same render.
# Alternating runs; the ratio of median wall times (spinout / csound) per case, and a
# the render's length. (That both write the same samples is asserted by the test
# Cli.CsoundCommandRendersTheExportedCsdToTheSameSamples.) Writes benchmarks/RESULTS.md's render table
# to stdout. Usage: benchmarks/render_vs_csound.sh [RUNS]   (after scripts/setup)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
bin=build/spinout
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# two seconds of stereo input for the effects
"$bin" render presets/polysynth.toml --midi presets/polysynth.mid --duration 6 --tail 0 -o "$work/input.wav" >/dev/null

cases=(
  "polysynth|presets/polysynth.toml --midi presets/polysynth.mid --preset pad --tail 4"
  "fmbells|presets/fmbells.toml --midi presets/fmbells.mid --tail 4"
  "stereodelay|presets/stereodelay.toml --input $work/input.wav --preset dub"
  "lfofilter|presets/lfofilter.toml --input $work/input.wav --preset wobble"
)

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "| case | audio (s) | spinout render (s) | csound (s) | ratio |"
echo "|---|---|---|---|---|"
for c in "${cases[@]}"; do
  name=${c%%|*}
  args=${c#*|}
  # shellcheck disable=SC2086
  "$bin" csd $args -o "$work/$name.csd" >/dev/null
  : > "$work/a"; : > "$work/b"
  for ((i = 0; i < runs; i++)); do
    t0=$(now)
    # shellcheck disable=SC2086
    "$bin" render $args -o "$work/$name.spinout.wav" > "$work/report"
    t1=$(now)
    csound -o "$work/$name.csound.wav" "$work/$name.csd" >/dev/null 2>&1
    t2=$(now)
    awk -v x="$t0" -v y="$t1" 'BEGIN {print y - x}' >> "$work/a"
    awk -v x="$t1" -v y="$t2" 'BEGIN {print y - x}' >> "$work/b"
  done
  a=$(median < "$work/a"); b=$(median < "$work/b")
  secs=$(awk '{print $2}' "$work/report")
  printf "| %s | %s | %.3f | %.3f | %.3f |\n" "$name" "$secs" "$a" "$b" "$(awk -v x="$a" -v y="$b" 'BEGIN {print x / y}')"
done
