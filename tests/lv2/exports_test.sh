#!/usr/bin/env bash
# The plugin binary exports the LV2 entry points and nothing else (lv2lint's "Plugin Symbols").
set -u
binary=$1
symbols=$(nm -D --defined-only "$binary" | awk '{print $NF}' | sort)
unexpected=$(grep -v -x -e lv2_descriptor -e lv2_lib_descriptor <<< "$symbols")
if ! grep -q -x lv2_lib_descriptor <<< "$symbols"; then
  echo "FAIL: $binary does not export lv2_lib_descriptor"; exit 1
fi
if [ -n "$unexpected" ]; then
  echo "FAIL: $binary exports $(wc -l <<< "$unexpected") symbols besides the LV2 entry points:"
  head -20 <<< "$unexpected"; exit 1
fi
echo "ok: $binary exports only: $(tr '\n' ' ' <<< "$symbols")"
