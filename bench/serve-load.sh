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
cargo build --release -q -p jwtgate-cli
bin=target/release/jwtgate
dir=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$dir"' EXIT
keys=crates/jwtgate-test/keys
cat > "$dir/serve.toml" <<TOML
[[validator]]
name = "api"
issuer = "https://issuer.example"
audience = "bench-api"
algorithm = "RS256"
public_key_file = "$PWD/$keys/rsa_pub.pem"
user = { claim = "sub" }

[[route]]
path = "/me"
auth = "public_or_jwt_api"
TOML
token=$("$bin" mint --alg RS256 --key-file "$keys/rsa.pem" --kid k1 \
  --iss https://issuer.example --aud bench-api --sub user-1234 --email alice@example.com \
  --claims '{"name":"Alice Example","scope":"read write"}')
"$bin" serve --config "$dir/serve.toml" --listen "127.0.0.1:$PORT" >"$dir/serve.log" 2>&1 &
server=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$PORT/me" >/dev/null 2>&1 && break; sleep 0.1; done
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "http://127.0.0.1:$PORT/me")" = 200 ] \
  || { echo "the token is refused" >&2; cat "$dir/serve.log" >&2; exit 1; }
rps() { wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency "$@" "http://127.0.0.1:$PORT/me" \
  | awk '/Requests\/sec/ {print $2}'; }
anon=$(rps)
auth=$(rps -H "Authorization: Bearer $token")
echo "anonymous answer:      $anon requests/s"
echo "valid RS256 token:     $auth requests/s"
awk -v a="$auth" -v n="$anon" 'BEGIN { printf "ratio token/anonymous: %.3f\n", a / n }'
