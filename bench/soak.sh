#!/usr/bin/env bash
# Soak test: pgbench in transaction mode (pool 10, 50 clients) through pgweir in front of a throwaway
# PostgreSQL 15 that restarts every 2 minutes (pg_ctl restart -m fast) while pgweir reloads (SIGHUP) every 10 s.
#
#   bench/soak.sh                 # 10 minutes
#   bench/soak.sh --minutes 2     # shorter
#   PGWEIR=/path/to/pgweir bench/soak.sh   # use this binary instead of building build/release
#
# pgbench aborts a client when its connection is lost, so it runs in back-to-back 30 s slices, each counted
# on its own (transactions, failed transactions, aborted clients). Every 10 s it records pgweir's VmRSS, the
# number of server connections (pg_stat_activity for the pool's user) and whether a probe query through
# pgweir answers within 10 s (no answer = hung). At the end it waits 15 s idle and prints a summary.
# Exit status: 0 if all is well; 1 if a probe or a slice hung, pgweir died, more server connections than the
# pool size remain after the idle wait, or RSS grew by more than 50%; 2 on a setup error.
# The Release build uses -DPGWEIR_WERROR=OFF: GCC 12 at -O3 reports a false -Wrestrict in libstdc++.
# Everything listens on 127.0.0.1 (free ports) or in a temp dir; a trap stops what the script started.
set -euo pipefail

MINUTES=10
usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --minutes) MINUTES=${2:?--minutes needs a number}; shift 2 ;;
    --minutes=*) MINUTES=${1#*=}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ $MINUTES =~ ^[0-9]+$ && $MINUTES -ge 1 ]] || { echo "--minutes must be a whole number >= 1" >&2; exit 2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
POOL_SIZE=10
CLIENTS=50
SLICE=30            # seconds per pgbench run
RESTART_EVERY=120   # PostgreSQL restart period (first one half a period in)
RELOAD_EVERY=10
SAMPLE_EVERY=10
PROBE_TIMEOUT=10
SETTLE=15
DURATION=$((MINUTES * 60))
DB=soakdb
DBUSER=soak_user

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }

AS_PG=()
if [[ $(id -u) -eq 0 ]]; then AS_PG=(runuser -u postgres --); fi
for p in initdb pg_ctl psql pgbench; do [[ -x $PG_BIN/$p ]] || die "$PG_BIN/$p not found (set PG_BIN)"; done

# --- clean-up: only the processes this script started, by PID -------------------------------------------
TMP=$(mktemp -d /tmp/pgweir-soak.XXXXXX)
PG_STARTED=0
PGWEIR_PID=""
SLICE_PID=""
LOOP_PIDS=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  touch "$TMP/stop" 2>/dev/null || true
  [[ -n $SLICE_PID ]] && kill "$SLICE_PID" 2>/dev/null || true
  for pid in "${LOOP_PIDS[@]}"; do
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill "$pid" 2>/dev/null || true
  done
  if [[ -n $PGWEIR_PID ]] && kill -0 "$PGWEIR_PID" 2>/dev/null; then
    kill -TERM "$PGWEIR_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$PGWEIR_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$PGWEIR_PID" 2>/dev/null || true
  fi
  if [[ $PG_STARTED -eq 1 ]]; then
    "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$TMP/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  fi
  if [[ -n ${KEEP_TMP:-} ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

chmod 755 "$TMP"
[[ $(id -u) -eq 0 ]] && chown postgres: "$TMP"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- pgweir binary -------------------------------------------------------------------------------------
if [[ -z ${PGWEIR:-} ]]; then
  log "building a Release pgweir in $ROOT/build/release"
  cmake -S "$ROOT" -B "$ROOT/build/release" -DCMAKE_BUILD_TYPE=Release -DPGWEIR_TESTS=OFF -DPGWEIR_WERROR=OFF >"$TMP/cmake.log" 2>&1 ||
    { cat "$TMP/cmake.log" >&2; die "cmake configure failed"; }
  cmake --build "$ROOT/build/release" --target pgweir >>"$TMP/cmake.log" 2>&1 ||
    { tail -50 "$TMP/cmake.log" >&2; die "build failed"; }
  PGWEIR=$(find "$ROOT/build/release" -type f -name pgweir -perm -u+x | head -1)
fi
[[ -x ${PGWEIR:-} ]] || die "no pgweir binary (PGWEIR=${PGWEIR:-})"
log "pgweir: $PGWEIR"

# --- PostgreSQL ------------------------------------------------------------------------------------------
PG_PORT=$(free_port)
"${AS_PG[@]}" "$PG_BIN/initdb" -D "$TMP/data" -U postgres --auth=trust -E UTF8 --locale=C --no-sync \
  --no-instructions >"$TMP/initdb.log" 2>&1 || { cat "$TMP/initdb.log" >&2; die "initdb failed"; }
cat >>"$TMP/data/postgresql.auto.conf" <<EOF
port = $PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$TMP'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
pg_ctl_() { "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$TMP/data" -l "$TMP/postgres.log" -w -t 60 "$@"; }
pg_ctl_ start >/dev/null || { cat "$TMP/postgres.log" >&2; die "PostgreSQL did not start"; }
PG_STARTED=1
su_psql() { "$PG_BIN/psql" -X -q -At -h "$TMP" -p "$PG_PORT" -U postgres -d postgres "$@"; }
su_psql -c "CREATE ROLE $DBUSER LOGIN" -c "CREATE DATABASE $DB OWNER $DBUSER" >/dev/null
"$PG_BIN/pgbench" -i -q -s 2 -h 127.0.0.1 -p "$PG_PORT" -U "$DBUSER" "$DB" >"$TMP/pgbench-init.log" 2>&1 ||
  { cat "$TMP/pgbench-init.log" >&2; die "pgbench -i failed"; }

# --- pgweir ----------------------------------------------------------------------------------------------
PGWEIR_PORT=$(free_port)
cat >"$TMP/pgweir.toml" <<EOF
[server]
listen = ["127.0.0.1:$PGWEIR_PORT"]
workers = 2
shutdown_timeout = "5s"

[tls]
mode = "disable"

[auth]
method = "trust"

[pool]
mode = "transaction"
size = $POOL_SIZE
max_overflow = 0
timeout = "30s"
connect_timeout = "5s"

[metrics]
listen = ""

[databases.$DB]
dsn = "postgresql://127.0.0.1:$PG_PORT/$DB?sslmode=disable"
EOF
"$PGWEIR" -c "$TMP/pgweir.toml" >"$TMP/pgweir.log" 2>&1 &
PGWEIR_PID=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PGWEIR_PORT") 2>/dev/null && break
  kill -0 "$PGWEIR_PID" 2>/dev/null || { cat "$TMP/pgweir.log" >&2; die "pgweir exited at start"; }
  sleep 0.1
done
log "PostgreSQL on 127.0.0.1:$PG_PORT, pgweir (PID $PGWEIR_PID) on 127.0.0.1:$PGWEIR_PORT, $MINUTES min"

START=$(date +%s)
END=$((START + DURATION))
elapsed() { echo $(($(date +%s) - START)); }
# Sleeps in 1 s steps until `elapsed` reaches $1 or the stop file appears; false if stopped.
sleep_until() { while [[ $(elapsed) -lt $1 ]]; do [[ -e $TMP/stop ]] && return 1; sleep 1; done; [[ ! -e $TMP/stop ]]; }

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$PGWEIR_PID/status" 2>/dev/null || echo NA; }
server_conns() { su_psql -c "SELECT count(*) FROM pg_stat_activity WHERE usename = '$DBUSER'" 2>/dev/null || echo NA; }

# --- background activity ---------------------------------------------------------------------------------
( # PostgreSQL restarts
  at=$((RESTART_EVERY / 2))
  while sleep_until "$at"; do
    t=$(elapsed)
    if pg_ctl_ -m fast restart >>"$TMP/restarts.log" 2>&1; then r=ok; else r=FAILED; fi
    echo "$t restart $r took=$(($(elapsed) - t))s" >>"$TMP/events.log"
    at=$((at + RESTART_EVERY))
  done
) &
LOOP_PIDS+=($!)
( # reloads
  at=$RELOAD_EVERY
  while sleep_until "$at"; do kill -HUP "$PGWEIR_PID" 2>/dev/null || true; at=$((at + RELOAD_EVERY)); done
) &
LOOP_PIDS+=($!)
( # samples: seconds rss_kb server_conns probe(ok|error|hung) probe_ms
  at=0
  while sleep_until "$at"; do
    t=$(elapsed)
    rss=$(rss_kb)
    conns=$(server_conns)
    t0=$(date +%s%N)
    set +e
    timeout -k 2 "$PROBE_TIMEOUT" "$PG_BIN/psql" -X -At \
      "host=127.0.0.1 port=$PGWEIR_PORT dbname=$DB user=$DBUSER sslmode=disable connect_timeout=$PROBE_TIMEOUT" \
      -c "SELECT 1" >"$TMP/probe.out" 2>&1
    prc=$?
    set -e
    ms=$((($(date +%s%N) - t0) / 1000000))
    if [[ $prc -eq 0 ]]; then probe=ok; elif [[ $prc -eq 124 || $prc -eq 137 ]]; then probe=hung; else probe=error; fi
    echo "$t $rss $conns $probe $ms" >>"$TMP/samples.txt"
    [[ $probe == ok ]] || echo "$t probe $probe: $(tr '\n' ' ' <"$TMP/probe.out")" >>"$TMP/events.log"
    at=$((at + SAMPLE_EVERY))
  done
) &
LOOP_PIDS+=($!)

# --- pgbench slices --------------------------------------------------------------------------------------
# slice start_s exit tx failed aborted errors
touch "$TMP/slices.txt" "$TMP/events.log" "$TMP/samples.txt"
n=0
while [[ $(elapsed) -lt $((DURATION - 5)) ]]; do
  n=$((n + 1))
  left=$((END - $(date +%s)))
  secs=$((left < SLICE ? left : SLICE))
  t=$(elapsed)
  out="$TMP/slice-$n.log"
  timeout -k 5 $((secs + 60)) "$PG_BIN/pgbench" -n -M extended -c "$CLIENTS" -j 4 -T "$secs" \
    -h 127.0.0.1 -p "$PGWEIR_PORT" -U "$DBUSER" "$DB" >"$out" 2>&1 &
  SLICE_PID=$!
  set +e; wait "$SLICE_PID"; rc=$?; set -e
  SLICE_PID=""
  tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out" | head -1)
  failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out" | head -1)
  aborted=$(grep -cE 'client [0-9]+ (script [0-9]+ )?aborted' "$out" || true)
  errors=$(grep -c '^pgbench: error' "$out" || true)
  echo "$n $t $rc ${tx:-0} ${failed:-NA} $aborted $errors" >>"$TMP/slices.txt"
  log "slice $n (t=${t}s, ${secs}s): exit $rc, tx ${tx:-0}, failed ${failed:-NA}, aborted clients $aborted, errors $errors"
  kill -0 "$PGWEIR_PID" 2>/dev/null || { log "pgweir died"; break; }
  # A slice that could not even start (PostgreSQL restarting: pgweir refuses logins with 08006) is retried
  # after a pause rather than in a tight loop.
  [[ $rc -eq 0 || $(elapsed) -ge $((t + 5)) ]] || sleep 1
done

touch "$TMP/stop"
for pid in "${LOOP_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
LOOP_PIDS=()
log "load done; ${SETTLE}s idle"
sleep "$SETTLE"
PGWEIR_ALIVE=yes
kill -0 "$PGWEIR_PID" 2>/dev/null || PGWEIR_ALIVE=no
SETTLED_CONNS=$(server_conns)
SETTLED_RSS=$(rss_kb)

# --- summary ---------------------------------------------------------------------------------------------
read -r SLICES_OK SLICES_BAD SLICES_HUNG TX_TOTAL FAILED_TOTAL ABORTED_TOTAL < <(awk '
  { if ($3 == 0 && $5 == "0" && $6 == 0) ok++; else bad++; if ($3 == 124 || $3 == 137) hung++;
    tx += $4; if ($5 != "NA") f += $5; ab += $6 }
  END { printf "%d %d %d %d %d %d\n", ok, bad, hung, tx, f, ab }' "$TMP/slices.txt")
# Baseline RSS: the first sample after the first slice warmed pgweir up (startup RSS is not comparable).
read -r RSS_START RSS_MID RSS_END MAX_CONNS PROBES PROBES_ERR PROBES_HUNG < <(awk -v warm="$SLICE" '
  { n++; t[n] = $1; rss[n] = $2; if ($3 != "NA" && $3 > max) max = $3;
    if ($4 == "error") err++; if ($4 == "hung") hung++ }
  END { s = 0; for (i = 1; i <= n; i++) if (t[i] >= warm && rss[i] != "NA") { s = i; break }
        if (s == 0) s = 1; m = int((s + n) / 2); if (m < 1) m = 1
        printf "%s %s %s %d %d %d %d\n", rss[s], rss[m], rss[n], max, n, err, hung }' "$TMP/samples.txt")
RESTARTS=$(grep -c ' restart ' "$TMP/events.log" || true)
RESTARTS_BAD=$(grep -c ' restart FAILED' "$TMP/events.log" || true)
RELOADS=$(grep -c config_reloaded "$TMP/pgweir.log" || true)
RELOADS_BAD=$(grep -c config_reload_failed "$TMP/pgweir.log" || true)

echo
echo "pgweir soak: $MINUTES min, pool $POOL_SIZE, $CLIENTS clients, PostgreSQL restart every ${RESTART_EVERY}s, reload every ${RELOAD_EVERY}s"
echo
printf '%-5s %-7s %-5s %-9s %-7s %-8s %s\n' slice start_s exit tx failed aborted errors
awk '{ printf "%-5s %-7s %-5s %-9s %-7s %-8s %s\n", $1, $2, $3, $4, $5, $6, $7 }' "$TMP/slices.txt"
echo
printf '%-44s %s\n' \
  "slices ok / with errors, failures or aborts" "$SLICES_OK / $SLICES_BAD (hung: $SLICES_HUNG)" \
  "transactions / failed / aborted clients" "$TX_TOTAL / $FAILED_TOTAL / $ABORTED_TOTAL" \
  "PostgreSQL restarts (failed)" "$RESTARTS ($RESTARTS_BAD)" \
  "pgweir reloads logged (failed)" "$RELOADS ($RELOADS_BAD)" \
  "RSS kB start (warmed up) / middle / end" "$RSS_START / $RSS_MID / $RSS_END" \
  "RSS kB after ${SETTLE}s idle" "$SETTLED_RSS" \
  "max server connections (sampled)" "$MAX_CONNS" \
  "server connections after ${SETTLE}s idle" "$SETTLED_CONNS (pool size $POOL_SIZE)" \
  "probes / errors / hung" "$PROBES / $PROBES_ERR / $PROBES_HUNG" \
  "pgweir alive at end" "$PGWEIR_ALIVE"
if [[ -s $TMP/events.log ]]; then echo; echo "events:"; sed 's/^/  /' "$TMP/events.log"; fi

VERDICT=()
[[ $PROBES_HUNG -eq 0 ]] || VERDICT+=("$PROBES_HUNG probe(s) hung")
[[ $SLICES_HUNG -eq 0 ]] || VERDICT+=("$SLICES_HUNG pgbench slice(s) hung")
[[ $PGWEIR_ALIVE == yes ]] || VERDICT+=("pgweir died")
if [[ $SETTLED_CONNS == NA || $SETTLED_CONNS -gt $POOL_SIZE ]]; then
  VERDICT+=("server connections after settle: $SETTLED_CONNS, expected <= $POOL_SIZE")
fi
if [[ $RSS_START =~ ^[0-9]+$ && $RSS_END =~ ^[0-9]+$ ]]; then
  ((RSS_END * 2 <= RSS_START * 3)) || VERDICT+=("RSS grew from $RSS_START kB to $RSS_END kB (> 50%)")
else
  VERDICT+=("RSS not sampled")
fi
echo
if [[ ${#VERDICT[@]} -eq 0 ]]; then
  echo "RESULT: PASS"
  exit 0
fi
printf "RESULT: FAIL:"; printf " %s;" "${VERDICT[@]}"; echo
[[ -n ${KEEP_TMP:-} ]] || { echo "pgweir log tail:"; tail -20 "$TMP/pgweir.log"; }
exit 1
