#!/usr/bin/env bash
# Instructions per request (valgrind's callgrind counts instructions, not time, so the figure
# repeats exactly for the same binary): RS256 through the layer, cached and verified.
set -euo pipefail
cd "$(dirname "$0")/instructions"
cargo build -q --release
bin=target/release/jwtgate-instructions
for mode in hit verify; do
  count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$mode" "$1" 2>&1 \
      | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
  }
  small=$(count 2000)
  large=$(count 4000)
  echo "$mode: $(( (large - small) / 2000 )) instructions per request"
done
