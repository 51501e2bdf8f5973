#!/usr/bin/env bash
# wrk-vs-nginx.sh: issue 3's figure. Requests per second and p99 of the
# Thunderbird document (plain HTTP) and the cached signed Apple profile
# (HTTPS), wrk -t2 -c64 keep-alive on loopback, next to nginx serving the
# same bytes as static files, in alternating rounds of one run.
#
#   RIG=/tmp/skydesk-bench ROUNDS=3 DUR=10 internal/httpfront/testdata/wrk-vs-nginx.sh
#
# RIG is a writable copy of ../shared/bench with ./setup-peers.sh done;
# nginx is started here if it is not running. skydeskd runs with --dev
# (127.0.0.1:8080 and :8443) from a build of this checkout.
#
# Two p99 figures per run. "p99" is the one wrk prints. wrk 4.1 corrects
# it for coordinated omission (stats_correct in wrk.c): every latency of
# at least twice the mean per-connection interval I (= 64 / rate) adds
# synthetic samples at latency - I, - 2I, ... So the same stall adds more
# samples, and a higher p99, the faster the server, and on a 2-core box
# the stalls are mostly wrk's own threads waiting for a CPU. "raw p99" is
# the p99 of the requests wrk really sent, the correction taken back out
# exactly from wrk's histogram (wrk-hist.lua; the raw count equals the
# request count, checked).
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

# rawp99 HIST: the p99 in ms of wrk's histogram with its correction
# undone. Correction: for n >= 2I, data[n - kI] += data[n] while n - kI > I.
# So for m > I, raw[m] = data[m] - S[m] with S[m] = raw[m + I] + S[m + I].
rawp99() {
  awk 'NR == 1 { rt = $3; req = $5; next }
       { c[$1] = $2; if ($1 > max) max = $1 }
       END {
         I = int(rt / int(req / 64))
         for (m = max; m >= 0; m--) {
           raw[m] = c[m]
           if (m > I) { s[m] = raw[m + I] + s[m + I]; raw[m] -= s[m] }
           total += raw[m]
         }
         if (total != req) { print "raw count " total " != requests " req > "/dev/stderr"; exit 1 }
         rank = int(0.99 * total + 1)
         for (m = 0; m <= max; m++) if ((sum += raw[m]) >= rank) { printf "%.2f\n", m / 1000; exit }
       }' "$1"
}
run() { # name url [wrk args]
  local name=$1 url=$2; shift 2
  WRK_HIST="$WORK/hist" wrk -t2 -c64 -d"${DUR}s" --latency -s "$ROOT/internal/httpfront/testdata/wrk-hist.lua" "$@" "$url" >"$WORK/out"
  local rps p99 raw
  rps=$(awk '/^Requests\/sec/ {print $2}' "$WORK/out")
  p99=$(awk '$1 == "99%" {print $2}' "$WORK/out")
  raw=$(rawp99 "$WORK/hist")
  printf '%-14s %10.0f req/s  p99 %-8s raw p99 %sms\n' "$name" "$rps" "$p99" "$raw"
  echo "$name $rps $p99 $raw" >>"$WORK/all"
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
  or=$(awk -v n="ours-$w" '$1 == n {print $4}' "$WORK/all" | median)
  gr=$(awk -v n="nginx-$w" '$1 == n {print $4}' "$WORK/all" | median)
  awk -v w="$w" -v o="$o" -v g="$g" -v op="$op" -v gp="$gp" -v or="$or" -v gr="$gr" \
    'BEGIN {printf "%-6s ours %.0f req/s p99 %.2fms (raw %.2fms)  nginx %.0f req/s p99 %.2fms (raw %.2fms)  rate ratio %.2f\n", w, o, op, or, g, gp, gr, o / g}'
done
