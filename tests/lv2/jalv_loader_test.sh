#!/usr/bin/env bash
# The README's way to give jalv's loader a session: `jalv -l DIR`, DIR/state.ttl naming
# the file. A good file plays (Csound starts: "SECTION 1"); a missing one is named in an error.
set -u
build=$1
source=$2
server="spinout-loader-test-$$"
work=$(mktemp -d)
jackd -n "$server" -d dummy -r 48000 -p 256 > /dev/null 2>&1 &
jack=$!
trap 'kill $jack 2>/dev/null; wait $jack 2>/dev/null; rm -rf "$work"' EXIT
# wait until the server answers (a fixed sleep failed on a loaded machine)
jack_wait -s "$server" -w -t 20 > /dev/null 2>&1 || { echo "jackd did not start"; exit 1; }
export JACK_DEFAULT_SERVER=$server LV2_PATH=$build/lv2
state() { # DIR FILE: a state.ttl in DIR naming FILE as the loader's session
  mkdir -p "$1"
  cat > "$1/state.ttl" <<TTL
@prefix lv2: <http://lv2plug.in/ns/lv2core#> .
@prefix pset: <http://lv2plug.in/ns/ext/presets#> .
@prefix state: <http://lv2plug.in/ns/ext/state#> .

<> a pset:Preset ;
    lv2:appliesTo <urn:spinout:loader> ;
    state:state [
        <urn:spinout:loader#session> <file://$2>
    ] .
TTL
}
failed=0
state "$work/good" "$source/presets/polysynth.toml"
out=$( (sleep 1; echo "") | timeout 20 jalv -n "jalv-$$" -l "$work/good" urn:spinout:loader 2>&1)
if grep -q "^error: spinout" <<< "$out" || ! grep -q "SECTION 1" <<< "$out"; then
  echo "FAIL: jalv -l with polysynth.toml"; echo "$out" | head -20; failed=1
else
  echo "ok   jalv -l loads polysynth.toml"
fi
state "$work/missing" "$work/no-such-session.toml"
out=$( (sleep 1; echo "") | timeout 20 jalv -n "jalv-$$" -l "$work/missing" urn:spinout:loader 2>&1)
if ! grep -q "cannot read the session file '$work/no-such-session.toml'" <<< "$out"; then
  echo "FAIL: jalv -l with a missing file names it"; echo "$out" | head -20; failed=1
else
  echo "ok   jalv -l names a missing session file"
fi
exit $failed
