#!/usr/bin/env bash
# Load test of `jwtgate serve` with wrk on 127.0.0.1: the same route answering a valid RS256
# token (repeated, as an API client sends it) and answering anonymously (public_or_jwt, no
# token). Prints both throughputs and their ratio. Bounded in time: two runs of $SECS seconds.
#
#   bench/serve-load.sh            # SECS=10 THREADS=2 CONNS=32 by default
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-10} THREADS=${THREADS:-2} CONNS=${CONNS:-32} PORT=${PORT:-18480}
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 2; }
AUTH=public_or_jwt_api
. bench/serve-common.sh
rps() { wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency "$@" "http://127.0.0.1:$PORT/me" \
  | awk '/Requests\/sec/ {print $2}'; }
anon=$(rps)
auth=$(rps -H "Authorization: Bearer $token")
echo "anonymous answer:      $anon requests/s"
echo "valid RS256 token:     $auth requests/s"
awk -v a="$auth" -v n="$anon" 'BEGIN { printf "ratio token/anonymous: %.3f\n", a / n }'
