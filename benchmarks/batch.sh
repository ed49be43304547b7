#!/usr/bin/env bash
# A batch of 32 renders (the polysynth's 4 presets x 8 MIDI files) three ways: one
# `spinout render` call with --jobs 1, the same with --jobs 2, and a shell loop of 32 single
# renders. Alternating runs; median wall times. Checks that the three write the same files
# (cmp). Writes benchmarks/RESULTS.md's batch table to stdout.
# Usage: benchmarks/batch.sh [RUNS]   (after scripts/setup)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
bin=build/spinout
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 8 inputs: the demo MIDI file under 8 names (the same work in each render)
for i in 1 2 3 4 5 6 7 8; do cp presets/polysynth.mid "$work/take$i.mid"; done
takes=("$work"/take*.mid)
presets=(bright pad bass pluck)

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# wall and CPU seconds (user + system, children included) of a command, appended to FILE
TIMEFORMAT='%R %U %S'
timed() { # FILE COMMAND...
  local file=$1; shift
  { time "$@"; } 2>&1 | awk '{print $1, $2 + $3}' >> "$file"
}

batch() { # JOBS OUTDIR
  "$bin" render presets/polysynth.toml --midi "${takes[@]}" --preset all --jobs "$1" \
    -o "$2/{preset}-{input}.wav" >/dev/null
}
loop() { # OUTDIR
  for p in "${presets[@]}"; do
    for m in "${takes[@]}"; do
      "$bin" render presets/polysynth.toml --midi "$m" --preset "$p" \
        -o "$1/$p-$(basename "$m" .mid).wav" >/dev/null
    done
  done
}

mkdir -p "$work/j1" "$work/j2" "$work/loop"
: > "$work/t1"; : > "$work/t2"; : > "$work/tl"
load0=$(cut -d' ' -f1 /proc/loadavg)
batch 1 "$work/j1" # warm the page cache and Csound's plugin libraries
for ((i = 0; i < runs; i++)); do
  timed "$work/t1" batch 1 "$work/j1"
  timed "$work/t2" batch 2 "$work/j2"
  timed "$work/tl" loop "$work/loop"
done
load1=$(cut -d' ' -f1 /proc/loadavg)
n=$(find "$work/j1" -name '*.wav' | wc -l)
[ "$n" -eq 32 ] || { echo "batch.sh: $n files, not 32" >&2; exit 1; }
for f in "$work"/j1/*.wav; do
  cmp -s "$f" "$work/j2/$(basename "$f")" && cmp -s "$f" "$work/loop/$(basename "$f")" ||
    { echo "batch.sh: $(basename "$f") differs between the three ways" >&2; exit 1; }
done

wall() { awk '{print $1}' "$1" | median; }
cpu() { awk '{print $2}' "$1" | median; }
t1=$(wall "$work/t1"); t2=$(wall "$work/t2"); tl=$(wall "$work/tl")
audio=$("$bin" render presets/polysynth.toml --midi "${takes[0]}" -o "$work/one.wav" | awk '{print $2}')
ratio() { awk -v x="$1" -v y="$2" 'BEGIN {printf "%.2f", x / y}'; }
range() { awk '{print $1}' "$1" | sort -g | awk 'NR == 1 {a = $1} {b = $1} END {printf "%.2f..%.2f", a, b}'; }
echo "| way | wall (s) | range (s) | CPU (s) | per render (s) | speed-up over --jobs 1 |"
echo "|---|---|---|---|---|---|"
row() { # NAME FILE WALL
  printf "| %s | %.2f | %s | %.2f | %.3f | %s |\n" "$1" "$3" "$(range "$2")" "$(cpu "$2")" \
    "$(ratio "$3" 32)" "$(ratio "$t1" "$3")"
}
row '`render --jobs 1`' "$work/t1" "$t1"
row '`render --jobs 2`' "$work/t2" "$t2"
row 'shell loop of 32 `render`' "$work/tl" "$tl"
echo
echo "Each render: ${audio} s of audio. Median of $runs alternating runs (range: min..max); CPU:"
echo "user + system time of the command and its children. Load average before and after:"
echo "$load0 and $load1 (other work on the machine takes cores from \`--jobs 2\`)."
