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

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
since() { awk -v x="$1" -v y="$(now)" 'BEGIN {print y - x}'; }

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
batch 1 "$work/j1" # warm the page cache and Csound's plugin libraries
for ((i = 0; i < runs; i++)); do
  t=$(now); batch 1 "$work/j1"; since "$t" >> "$work/t1"
  t=$(now); batch 2 "$work/j2"; since "$t" >> "$work/t2"
  t=$(now); loop "$work/loop"; since "$t" >> "$work/tl"
done
n=$(find "$work/j1" -name '*.wav' | wc -l)
[ "$n" -eq 32 ] || { echo "batch.sh: $n files, not 32" >&2; exit 1; }
for f in "$work"/j1/*.wav; do
  cmp -s "$f" "$work/j2/$(basename "$f")" && cmp -s "$f" "$work/loop/$(basename "$f")" ||
    { echo "batch.sh: $(basename "$f") differs between the three ways" >&2; exit 1; }
done

t1=$(median < "$work/t1"); t2=$(median < "$work/t2"); tl=$(median < "$work/tl")
audio=$("$bin" render presets/polysynth.toml --midi "${takes[0]}" -o "$work/one.wav" | awk '{print $2}')
ratio() { awk -v x="$1" -v y="$2" 'BEGIN {printf "%.2f", x / y}'; }
echo "| way | wall (s) | per render (s) | speed-up over --jobs 1 |"
echo "|---|---|---|---|"
printf "| \`render --jobs 1\` | %.2f | %.3f | 1.00 |\n" "$t1" "$(ratio "$t1" 32)"
printf "| \`render --jobs 2\` | %.2f | %.3f | %s |\n" "$t2" "$(ratio "$t2" 32)" "$(ratio "$t1" "$t2")"
printf "| shell loop of 32 \`render\` | %.2f | %.3f | %s |\n" "$tl" "$(ratio "$tl" 32)" "$(ratio "$t1" "$tl")"
echo
echo "Each render: ${audio} s of audio. Median of $runs alternating runs; min..max:"
for k in t1 t2 tl; do
  printf "%s %s..%s; " "$k" "$(sort -g "$work/$k" | head -1)" "$(sort -g "$work/$k" | tail -1)"
done | sed 's/t1/--jobs 1/; s/t2/--jobs 2/; s/tl/loop/; s/; $/./'
echo
