#!/usr/bin/env bash
# Forward-auth under load, with wrk on 127.0.0.1 (the same repeated RS256 token throughout, so
# the verified-token cache answers), four runs of $SECS seconds each:
#   1. `jwtgate serve` answering its own route `/me` (the JSON echo of the identity);
#   2. `jwtgate serve` answering the forward-auth check about `/me` (X-Original-URI, as nginx
#      asks it): the issue's bound is check cost <= 1.5 x route cost;
#   3. nginx in front of an app (nginx's own `return 200`), no auth;
#   4. the same nginx with the README's config: `auth_request` to jwtgate, then the app.
# Prints the throughputs and the cost ratios (cost = 1 / throughput).
#
#   bench/forward-auth-load.sh     # SECS=10 THREADS=2 CONNS=32 by default; needs wrk, nginx
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-10} THREADS=${THREADS:-2} CONNS=${CONNS:-32}
JWTGATE=${JWTGATE:-18481} APP=${APP:-18482} PROXY=${PROXY:-18483}
for tool in wrk nginx curl; do
  command -v "$tool" >/dev/null || { echo "$tool is needed (apt-get install $tool)" >&2; exit 2; }
done
PORT=$JWTGATE AUTH=jwt_api EXTRA_TOML="[forward_auth]"
. bench/serve-common.sh

# nginx: the README's server block as written (ports changed), and the app as a second server.
server_block=$(awk '/<!-- readme-config: nginx.conf -->/ {found=1; next}
  found && /^```/ {if (inside) exit; inside=1; next} inside {print}' README.md \
  | sed -e "s/127.0.0.1:8080/127.0.0.1:$JWTGATE/g" -e "s/127.0.0.1:3000/127.0.0.1:$APP/g" \
        -e "s/listen 8000;/listen 127.0.0.1:$PROXY;/")
[ -n "$server_block" ] || { echo "no nginx config in README.md" >&2; exit 1; }
nginx_conf() { # $1: the proxy's server block
  cat <<CONF
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server { listen 127.0.0.1:$APP; location / { return 200 "ok\n"; } }
$1
}
CONF
}
start_nginx() {
  nginx_conf "$1" > "$dir/nginx.conf"
  nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" &
  proxy=$!
  pids="$pids $proxy"
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$PROXY/" && break; sleep 0.1; done
}
stop_nginx() { kill "$proxy"; wait "$proxy" 2>/dev/null || true; }

status() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$@"; }
[ "$(status -H 'X-Original-URI: /me' "http://127.0.0.1:$JWTGATE/auth/check")" = 200 ] \
  || { echo "the check refuses the token" >&2; exit 1; }
rps() { wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" -H "Authorization: Bearer $token" "$@" \
  | awk '/Requests\/sec/ {print $2}'; }

route=$(rps "http://127.0.0.1:$JWTGATE/me")
check=$(rps -H "X-Original-URI: /me" "http://127.0.0.1:$JWTGATE/auth/check")

# The same proxying as the README's (a connection per request to the app), without the check.
alone="server { listen 127.0.0.1:$PROXY; location / { proxy_pass http://127.0.0.1:$APP; } }"
start_nginx "$alone"
[ "$(status "http://127.0.0.1:$PROXY/me")" = 200 ] || { echo "nginx alone does not answer" >&2; exit 1; }
nginx_alone=$(rps "http://127.0.0.1:$PROXY/me")
stop_nginx
start_nginx "$server_block"
[ "$(status "http://127.0.0.1:$PROXY/me")" = 200 ] || { echo "nginx + jwtgate refuses" >&2; cat "$dir/error.log" >&2; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PROXY/me")" = 401 ] \
  || { echo "nginx + jwtgate lets a request without a token through" >&2; exit 1; }
nginx_jwtgate=$(rps "http://127.0.0.1:$PROXY/me")
stop_nginx

echo "jwtgate serve, its own route /me:      $route requests/s"
echo "jwtgate serve, the check about /me:    $check requests/s"
awk -v r="$route" -v c="$check" 'BEGIN { printf "check cost / route cost:               %.3f (bound 1.5)\n", r / c }'
echo "nginx -> app:                          $nginx_alone requests/s"
echo "nginx -> auth_request jwtgate -> app:  $nginx_jwtgate requests/s"
awk -v a="$nginx_alone" -v j="$nginx_jwtgate" 'BEGIN { printf "cost with jwtgate / cost without:      %.3f\n", a / j }'
