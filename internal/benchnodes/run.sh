#!/usr/bin/env bash
# run.sh — `make bench-nodes` (issue 14): POP3S and SMTPS throughput of
# skydeskd on SQLite, one node on PostgreSQL, two nodes on PostgreSQL
# behind HAProxy (PROXY protocol v2), and Dovecot, in one run with the
# rig's mailload, 16 concurrent sessions each:
#   POP3S RETR   16 sessions, each RETR 100 × ~20 KB          (msg/s)
#   POP3S login  TLS + USER/PASS + QUIT, no RETR               (sessions/s)
#   SMTPS 1      TLS + AUTH + 1 message of ~20 KB per session  (msg/s)
#   SMTPS 10     TLS + AUTH + 10 messages per session          (msg/s)
# RIG is a set-up copy of ../shared/bench (setup-peers.sh done). Everything
# listens on loopback; PostgreSQL is a throwaway cluster in a temporary
# directory (initdb + pg_ctl, no system service), removed at the end with
# the nodes and HAProxy. Dovecot and the SMTP sink are started through the
# rig if they are not running, and stopped again only if this run started
# them. Knobs: DUR (seconds per load, default 8), RETR_DUR (default 20),
# C (sessions at once, default 16), KEEP=1 keeps the work directory.
set -euo pipefail
RIG=${RIG:-/tmp/skydesk-bench}
DUR=${DUR:-8}
RETR_DUR=${RETR_DUR:-20}
C=${C:-16}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ML=$RIG/bin/mailload
[ -x "$ML" ] || { echo "no $ML: set RIG to a set-up copy of ../shared/bench" >&2; exit 2; }
command -v haproxy >/dev/null || { echo "haproxy not installed" >&2; exit 2; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || PGBIN=$(dirname "$(command -v initdb)")

W=$(mktemp -d /tmp/bench-nodes.XXXXXX)
chmod 755 "$W"
PIDS=()
STARTED_PEERS=()
PG_UP=0
AS_PG=()
[ "$(id -u)" = 0 ] && AS_PG=(runuser -u postgres --)

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ "$PG_UP" = 1 ] && "${AS_PG[@]}" "$PGBIN/pg_ctl" stop -m fast -D "$W/pg/data" >/dev/null 2>&1 || true
  for s in "${STARTED_PEERS[@]}"; do stop_peer "$s"; done
  if [ "${KEEP:-0}" = 1 ]; then echo "work directory kept: $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT

# stop_peer NAME: stop a rig daemon this run started, by its recorded PID.
stop_peer() {
  local f comm
  case $1 in dovecot) f=$RIG/run/dovecot/master.pid comm=dovecot;; sink) f=$RIG/run/sink.pid comm=mailload;; esac
  [ -s "$f" ] || return 0
  local pid; pid=$(cat "$f")
  if [[ "$(cat /proc/"$pid"/comm 2>/dev/null)" == "$comm"* ]]; then kill "$pid"; fi
  rm -f "$f"
}

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

waitport() { # port
  for _ in $(seq 1 300); do ss -H -lnt "sport = :$1" | grep -q . && return 0; sleep 0.1; done
  echo "port $1 did not open" >&2; return 1
}

echo "== building skydeskd and the seeder"
(cd "$ROOT" && go build -o "$W/skydeskd" ./cmd/skydeskd && go build -o "$W/benchnodes" ./internal/benchnodes)

echo "== PostgreSQL (throwaway cluster)"
mkdir -p "$W/pg"
[ "${#AS_PG[@]}" -gt 0 ] && chown postgres "$W/pg"
"${AS_PG[@]}" "$PGBIN/initdb" -D "$W/pg/data" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
PGPORT=$(freeport)
"${AS_PG[@]}" "$PGBIN/pg_ctl" start -w -D "$W/pg/data" -l "$W/pg/server.log" \
  -o "-c listen_addresses=127.0.0.1 -c port=$PGPORT -c unix_socket_directories=$W/pg -c max_connections=200" >/dev/null
PG_UP=1
"${AS_PG[@]}" "$PGBIN/psql" -q -h 127.0.0.1 -p "$PGPORT" -U postgres -c "CREATE DATABASE skydeskd" postgres
PGURL="postgres://postgres@127.0.0.1:$PGPORT/skydeskd?sslmode=disable"

echo "== seeding bench01..16@skydesk.jp, 100 messages each (SQLite and PostgreSQL)"
mkdir -p "$W/sqlite" "$W/pga" "$W/pgb"
"$W/benchnodes" -driver sqlite -data "$W/sqlite" &
"$W/benchnodes" -driver postgres -url "$PGURL"
wait
: > "$W/users.txt"; : > "$W/dovecot-users.txt"
for i in $(seq -w 1 16); do
  echo "bench$i@skydesk.jp benchpass1" >> "$W/users.txt"
  echo "bench$i@example.test benchpass" >> "$W/dovecot-users.txt"
done

# node NAME DBYAML: write a config (POP3S and SMTPS on free ports, PROXY
# v2 accepted from HAProxy's source 127.0.0.3 only) and start serve.
node() {
  local pop smtp; pop=$(freeport); smtp=$(freeport)
  cat > "$W/$1/skydeskd.yaml" <<EOF
data_dir: $W/$1
log: {format: json, level: warn}
listen: {http: "", https: "", dns: "", pop3s: "127.0.0.1:$pop", pop3: "", smtps: "127.0.0.1:$smtp", submission: "", mx: ""}
proxy_protocol: {listeners: [pop3s, smtps], trusted: [127.0.0.3/32]}
$2
EOF
  "$W/skydeskd" serve --config "$W/$1/skydeskd.yaml" > "$W/$1/serve.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  waitport "$pop"; waitport "$smtp"
  eval "${1^^}_POP=127.0.0.1:$pop ${1^^}_SMTP=127.0.0.1:$smtp ${1^^}_PID=$pid"
}

# rss NAME PID: the node's resident memory now and at its peak (/proc).
rss() {
  printf '  %-14s RSS %s, peak %s\n' "$1" "$(awk '/^VmRSS/ {print $2, $3}' /proc/"$2"/status)" \
    "$(awk '/^VmHWM/ {print $2, $3}' /proc/"$2"/status)" | tee -a "$W/rss.txt"
}

RES=$W/results.tsv
: > "$RES"
# measure SYSTEM POP SMTP USERS RCPT: the four loads, one line each in RES.
measure() {
  local sys=$1 pop=$2 smtp=$3 users=$4 rcpt=$5 out
  run() { # LOAD FIELD mailload-args...
    local load=$1 field=$2; shift 2
    out=$("$ML" -users "$users" -tls -c "$C" "$@" 2>&1 || true)
    local rate err
    rate=$(grep -o "$field=[0-9.]*" <<<"$out" | head -1 | cut -d= -f2)
    err=$(grep -o 'err=[0-9]*' <<<"$out" | head -1 | cut -d= -f2)
    printf '%s\t%s\t%s\t%s\n' "$sys" "$load" "${rate:-0}" "${err:-?}" >> "$RES"
    printf '  %-14s %-12s %10s %-10s errors %s\n' "$sys" "$load" "${rate:-0}" "$field" "${err:-?}"
    grep '^error' <<<"$out" | head -3 | sed 's/^/      /' || true
  }
  run "pop3s-retr" "msg/s" -mode pop3 -addr "$pop" -n $((C * 10)) -d "${RETR_DUR}s" -retr 100
  run "pop3s-login" "sessions/s" -mode pop3 -addr "$pop" -n 1000000 -d "${DUR}s" -retr 0 -uidl=false
  run "smtps-1" "msg/s" -mode smtp -addr "$smtp" -rcpt "$rcpt" -size 20000 -n 1000000 -d "${DUR}s" -m 1
  run "smtps-10" "msg/s" -mode smtp -addr "$smtp" -rcpt "$rcpt" -size 20000 -n 1000000 -d "${DUR}s" -m 10
}

echo "== (1) one node on SQLite"
node sqlite ""
measure sqlite "$SQLITE_POP" "$SQLITE_SMTP" "$W/users.txt" sink@skydesk.jp
rss sqlite "$SQLITE_PID"
kill "$SQLITE_PID"; wait "$SQLITE_PID" 2>/dev/null || true

echo "== (2) one node on PostgreSQL"
DB="database: {driver: postgres, url: \"$PGURL\"}"
node pga "$DB"
measure pg-1node "$PGA_POP" "$PGA_SMTP" "$W/users.txt" sink@skydesk.jp
rss "pg A alone" "$PGA_PID"

echo "== (3) two nodes on PostgreSQL behind HAProxy (PROXY v2)"
node pgb "$DB"
HP_POP=127.0.0.1:$(freeport); HP_SMTP=127.0.0.1:$(freeport)
cat > "$W/haproxy.cfg" <<EOF
global
  maxconn 4000
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
EOF
for svc in pop3s smtps; do
  if [ $svc = pop3s ]; then front=$HP_POP a=$PGA_POP b=$PGB_POP; else front=$HP_SMTP a=$PGA_SMTP b=$PGB_SMTP; fi
  cat >> "$W/haproxy.cfg" <<EOF
frontend ${svc}_in
  bind $front
  default_backend $svc
backend $svc
  balance roundrobin
  server a $a send-proxy-v2 source 127.0.0.3
  server b $b send-proxy-v2 source 127.0.0.3
EOF
done
haproxy -c -q -f "$W/haproxy.cfg"
haproxy -db -f "$W/haproxy.cfg" > "$W/haproxy.log" 2>&1 &
PIDS+=($!)
waitport "${HP_POP##*:}"; waitport "${HP_SMTP##*:}"
measure pg-2nodes-hap "$HP_POP" "$HP_SMTP" "$W/users.txt" sink@skydesk.jp
rss "pg node A" "$PGA_PID"
rss "pg node B" "$PGB_PID"

echo "== (4) Dovecot (pop3s 10995, submissions 10465 relaying to the rig's sink)"
for s in sink dovecot; do
  case $s in dovecot) f=$RIG/run/dovecot/master.pid;; sink) f=$RIG/run/sink.pid;; esac
  alive "$f" || { RIG=$RIG "$RIG/start-peers.sh" "$s" >/dev/null; STARTED_PEERS+=("$s"); }
done
measure dovecot 127.0.0.1:10995 127.0.0.1:10465 "$W/dovecot-users.txt" rcpt@example.org

echo
echo "mailload, $C sessions at once, $(nproc) CPUs shared with the load generator; figure, ratio to Dovecot, failed sessions"
awk -F'\t' '
  { rate[$1 FS $2] = $3; errs[$1 FS $2] = $4
    if (!($1 in seen)) { seen[$1] = 1; sys[++ns] = $1 } if (!($2 in seenl)) { seenl[$2] = 1; load[++nl] = $2 } }
  END {
    printf "%-12s", "load"; for (i = 1; i <= ns; i++) printf " %24s", sys[i]; printf "\n"
    for (j = 1; j <= nl; j++) {
      printf "%-12s", load[j]; d = rate["dovecot" FS load[j]]
      for (i = 1; i <= ns; i++) { r = rate[sys[i] FS load[j]]; printf " %8.1f %5.2fx %6se", r, (d > 0 ? r / d : 0), errs[sys[i] FS load[j]] }
      printf "\n"
    }
  }' "$RES"
echo "Resident memory of our nodes after their loads:"; cat "$W/rss.txt"
echo "(pop3s-retr: msg/s; pop3s-login: sessions/s; smtps-1/10: msg/s; Ne: failed sessions. POP failures on ours are"
echo " IN-USE refusals: 16 sessions over 16 accounts collide and skydeskd locks the maildrop (RFC 1939 §8), Dovecot by"
echo " default does not. Our accounts use argon2id with a verified-login cache, the rig's Dovecot {PLAIN} passwords;"
echo " our SMTPS stores locally, Dovecot's submission relays to the rig's sink. PostgreSQL runs with its durable defaults.)"
