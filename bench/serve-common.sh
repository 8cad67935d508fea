# What the `jwtgate serve` load tests share (sourced, from the repository root): the release
# CLI, a temporary directory removed on exit with every process in $pids, and `jwtgate serve`
# on 127.0.0.1:$PORT with one RS256 validator on `/me` in mode $AUTH (plus $EXTRA_TOML),
# answering $token (repeated, as an API client sends it) with 200.
cargo build --release -q -p jwtgate-cli
bin=$PWD/target/release/jwtgate
dir=$(mktemp -d)
pids=""
trap 'kill $pids 2>/dev/null || true; rm -rf "$dir"' EXIT
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
auth = "$AUTH"
${EXTRA_TOML:-}
TOML
token=$("$bin" mint --alg RS256 --key-file "$keys/rsa.pem" --kid k1 \
  --iss https://issuer.example --aud bench-api --sub user-1234 --email alice@example.com \
  --claims '{"name":"Alice Example","scope":"read write"}')
"$bin" serve --config "$dir/serve.toml" --listen "127.0.0.1:$PORT" >"$dir/serve.log" 2>&1 &
pids="$pids $!"
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "http://127.0.0.1:$PORT/me")" = 200 ] \
  || { echo "the token is refused" >&2; cat "$dir/serve.log" >&2; exit 1; }
