#!/usr/bin/env bash
# Instructions per request (valgrind's callgrind counts instructions, not time, so the figure
# repeats exactly for the same binary): RS256 through the layer, cached and verified, the
# forward-auth check of a cached token, a
# cookie-mode session, a sign-in's session (fresh, and due a refresh at every request), with
# REVOKED entries in the revocation mirror (default 0; BENCHMARKS.md uses 0 and 100000).
set -euo pipefail
cd "$(dirname "$0")/instructions"
cargo build -q --release
bin=target/release/jwtgate-instructions
# The start-up (aws-lc's entropy source) varies by a few hundred thousand instructions from
# run to run: the two counts lie far enough apart that this moves a figure by under 0.2 %.
for spec in "hit 10000 30000" "check 10000 30000" "verify 1000 3000" "cookie 2000 6000" "signin 2000 6000" "refresh 100 300" "mint 100 300"; do
  read -r mode small_n large_n <<<"$spec"
  count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$mode" "$1" "${REVOKED:-0}" 2>&1 \
      | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
  }
  small=$(count "$small_n")
  large=$(count "$large_n")
  echo "$mode (${REVOKED:-0} revoked): $(( (large - small) / (large_n - small_n) )) instructions per request"
done
"$bin" memory "${REVOKED:-0}"
