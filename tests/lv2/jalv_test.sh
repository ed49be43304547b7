#!/usr/bin/env bash
# jalv loads each bundle (a JACK server with the dummy driver stands in for a sound card).
set -u
build=$1
server="spinout-test-$$"
jackd -n "$server" -d dummy -r 48000 -p 256 > /dev/null 2>&1 &
jack=$!
trap 'kill $jack 2>/dev/null; wait $jack 2>/dev/null' EXIT
# wait until the server answers (a fixed sleep failed on a loaded machine)
jack_wait -s "$server" -w -t 20 > /dev/null 2>&1 || { echo "jackd did not start"; exit 1; }
export JACK_DEFAULT_SERVER=$server LV2_PATH=$build/lv2
failed=0
for uri in $(lv2ls); do
  # a second try when JACK itself failed (a client can time out on a loaded machine)
  for try in 1 2; do
    out=$(echo "" | timeout 20 jalv -n "jalv-$$" "$uri" 2>&1)
    status=$?
    grep -qi "jack.*\(fail\|error\|cannot\)\|could not connect" <<< "$out" || break
  done
  if [ $status -ne 0 ] || ! grep -q "Block length" <<< "$out" || grep -q "^error: spinout" <<< "$out"; then
    echo "FAIL $uri (exit $status)"; echo "$out" | head -20; failed=1
  else
    echo "ok   $uri"
  fi
done
exit $failed
