#!/usr/bin/env bash
# wrk-vs-nginx.sh: issue 3's figure. Requests per second and p99 of the
# Thunderbird document (plain HTTP) and the cached signed Apple profile
# (HTTPS), wrk -t2 -c64 keep-alive on loopback, next to nginx serving the
# same bytes as static files, in alternating rounds of one run.
#
#   RIG=/tmp/skydesk-bench ROUNDS=3 DUR=10 autoconfig/httpfront/testdata/wrk-vs-nginx.sh
#
# RIG is a writable copy of ../shared/bench with ./setup-peers.sh done;
# nginx is started here if it is not running. skydeskd runs with --dev
# (127.0.0.1:8080 and :8443) from a build of this checkout.
set -euo pipefail
RIG=${RIG:-/tmp/skydesk-bench}
ROUNDS=${ROUNDS:-3}
DUR=${DUR:-10}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
WORK=$(mktemp -d)
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

command -v wrk >/dev/null || { echo "wrk missing: run $RIG/setup-peers.sh" >&2; exit 2; }
(cd "$RIG" && ./start-peers.sh nginx >/dev/null)

go build -C "$ROOT" -o "$WORK/skydeskd" ./cmd/skydeskd
"$WORK/skydeskd" serve --dev --data "$WORK/data" >"$WORK/log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:8080/healthz >/dev/null && break; sleep 0.1; done

TB="/mail/config-v1.1.xml?emailaddress=taro%40skydesk.jp"
APPLE="/apple/mobileconfig?email=taro%40skydesk.jp"
# nginx serves our own bytes; the first requests also fill our caches.
curl -sf "http://127.0.0.1:8080$TB" -o "$RIG/www/mail/config-v1.1.xml"
curl -sfk "https://127.0.0.1:8443$APPLE" -o "$RIG/www/example.test.mobileconfig"

run() { # name url [wrk args]
  local name=$1 url=$2; shift 2
  wrk -t2 -c64 -d"${DUR}s" --latency "$@" "$url" >"$WORK/out"
  local rps p99
  rps=$(awk '/^Requests\/sec/ {print $2}' "$WORK/out")
  p99=$(awk '$1 == "99%" {print $2}' "$WORK/out")
  printf '%-14s %10.0f req/s  p99 %s\n' "$name" "$rps" "$p99"
  echo "$name $rps $p99" >>"$WORK/all"
}
for r in $(seq "$ROUNDS"); do
  echo "# round $r"
  run nginx-tb    "http://127.0.0.1:10080$TB" -H "Host: autoconfig.example.test"
  run ours-tb     "http://127.0.0.1:8080$TB"
  run ours-apple  "https://127.0.0.1:8443$APPLE"
  run nginx-apple "https://127.0.0.1:10443/example.test.mobileconfig"
done
echo "# medians over $ROUNDS rounds"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms() { sed -e 's/ms$//' -e 's/^\([0-9.]*\)us$/\1 1000/' | awk 'NF == 2 {print $1 / $2; next} {print $1}'; }
for w in tb apple; do
  o=$(awk -v n="ours-$w" '$1 == n {print $2}' "$WORK/all" | median)
  g=$(awk -v n="nginx-$w" '$1 == n {print $2}' "$WORK/all" | median)
  op=$(awk -v n="ours-$w" '$1 == n {print $3}' "$WORK/all" | ms | median)
  gp=$(awk -v n="nginx-$w" '$1 == n {print $3}' "$WORK/all" | ms | median)
  awk -v w="$w" -v o="$o" -v g="$g" -v op="$op" -v gp="$gp" \
    'BEGIN {printf "%-6s ours %.0f req/s p99 %.2fms  nginx %.0f req/s p99 %.2fms  rate ratio %.2f\n", w, o, op, g, gp, o / g}'
done
