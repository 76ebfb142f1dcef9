#!/usr/bin/env bash
# Side-by-side benchmark: PostgreSQL direct / PgBouncer / pgweir, all in front of one throwaway PostgreSQL 15.
# See bench/README.md for what each number means.
#
# Usage: bench/run.sh [--smoke] [--reps N] [--duration SECONDS] [--only a,b,c,d,e,f,g,h,s] [--out DIR]
#   --smoke     tiny version for CI (1 repetition, 1 s runs, 10 clients, no 10k idle clients), ~90 s
#   --only      workloads to run (default all): a throughput, b latency, c idle memory, d connect rate,
#               e TLS, f result streaming, g pgweir workers, h the floor (bare relays), s syscalls (strace)
# Env: PGWEIR=path   use this pgweir binary instead of building a Release one in build-bench/
#      CLIENTS="1 10 100 1000" MODES="simple extended prepared" TLS_CLIENTS="10 100" IDLE_COUNTS="1000 10000"
#      STREAM_ROWS="10000 1000000" G_CLIENTS=… G_MODES="simple extended" H_CLIENTS="1 10" H_MODES="simple extended"
#      RATE=2000 SCALE=10 STRACE_TX=2000
#      PGWEIR_IO=io_uring|epoll (server.io of the main pgweir, the one in a, b, c, d, e and f; default io_uring,
#      as pgweir's own; pgweir-w1 and pgweir-w2 in g, h and s use epoll, pgweir-w1-uring and pgweir-w2-uring io_uring)
#      BUSY_SETTLE=4 (seconds between the busy clients' query and the RSS reading in c)
#      REPS, DURATION (override the options), SETTLE (seconds between runs)
#      B_REPS=24 B_DURATION=10 (b's repetitions and run length; REPS and DURATION with --smoke)
# Everything listens on 127.0.0.1 or in a temporary directory; every process started here is stopped on exit.
# The whole script is one brace group, read before any of it runs: editing this file during a run (a full one
# takes 85-100 minutes) cannot change what the run does next.
{
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

smoke=0
only=a,b,c,d,e,f,g,h,s
out=
opt_reps= opt_duration=
while (($#)); do
  case "$1" in
    --smoke) smoke=1 ;;
    --reps) opt_reps=$2; shift ;;
    --duration) opt_duration=$2; shift ;;
    --only) only=$2; shift ;;
    --out) out=$2; shift ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "$0: unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

if ((smoke)); then
  : "${REPS:=1}" "${DURATION:=1}" "${CLIENTS:=10}" "${MODES:=simple extended prepared}" "${TLS_CLIENTS:=10}"
  : "${IDLE_COUNTS:=1000}" "${STREAM_ROWS:=10000 1000000}" "${G_CLIENTS:=10}" "${G_MODES:=simple}"
  : "${SCALE:=1}" "${STRACE_TX:=1000}" "${SETTLE:=0.2}" "${H_MODES:=simple}" "${H_CLIENTS:=10}"
else
  : "${REPS:=3}" "${DURATION:=10}" "${CLIENTS:=1 10 100 1000}" "${MODES:=simple extended prepared}"
  : "${TLS_CLIENTS:=10 100}" "${IDLE_COUNTS:=1000 10000}" "${STREAM_ROWS:=10000 1000000}"
  : "${G_MODES:=simple extended}" "${SCALE:=10}" "${STRACE_TX:=2000}" "${SETTLE:=1}" "${H_MODES:=simple extended}"
  : "${G_CLIENTS:=$CLIENTS}"
fi
: "${RATE:=2000}" "${H_CLIENTS:=1 10}" "${PGWEIR_IO:=io_uring}"
# (b) latency at a light rate drifts by tens of µs from minute to minute on a shared machine: many repetitions,
# each running every target back to back, pair the targets better than three long ones. 24 of 10 s (about 18
# minutes) narrow the 90 % interval of pgweir's p99 difference from PgBouncer's to about ±240 µs, where 10 of 5 s
# left it at about ±550; at p50 both give about ±17-20 µs (bench/RESULTS.md, twentieth session).
if ((smoke)); then : "${B_REPS:=$REPS}" "${B_DURATION:=$DURATION}"; else : "${B_REPS:=24}" "${B_DURATION:=10}"; fi
# (c) busy variant: seconds between the clients' one query and the RSS reading (pgweir parks clients idle for
# server.client_park_after, 2 s by default).
: "${BUSY_SETTLE:=4}"
[[ -n "$opt_reps" ]] && REPS=$opt_reps
[[ -n "$opt_duration" ]] && DURATION=$opt_duration
want() { [[ ",$only," == *",$1,"* ]]; }

PG_BIN=/usr/lib/postgresql/15/bin
export PATH="$PG_BIN:$PATH"

# ---------------------------------------------------------------- prerequisites
need_pkgs=()
for pair in pgbench:postgresql-15 pgbouncer:pgbouncer python3:python3 openssl:openssl ss:iproute2 \
  strace:strace gnuplot:gnuplot-nox cmake:cmake ninja:ninja-build; do
  cmd=${pair%%:*} pkg=${pair#*:}
  [[ "$cmd" == pgbench ]] && { [[ -x "$PG_BIN/pgbench" ]] || need_pkgs+=("$pkg"); continue; }
  [[ "$cmd" == pgbouncer ]] && { [[ -x /usr/sbin/pgbouncer ]] || need_pkgs+=("$pkg"); continue; }
  [[ "$cmd" == cmake || "$cmd" == ninja ]] && [[ -n "${PGWEIR:-}" ]] && continue
  command -v "$cmd" >/dev/null || need_pkgs+=("$pkg")
done
if want h; then
  command -v g++ >/dev/null || need_pkgs+=(g++)
  [[ -f /usr/include/liburing.h ]] || need_pkgs+=(liburing-dev)
  [[ -f /usr/include/postgresql/libpq-fe.h ]] || need_pkgs+=(libpq-dev)
fi
if ((${#need_pkgs[@]})); then
  log "installing: ${need_pkgs[*]}"
  sudo=()
  [[ $(id -u) -ne 0 ]] && sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
# The Debian pgbouncer package starts a system instance; ours runs on its own port and files.

if [[ -z "${PGWEIR:-}" ]]; then
  log "building a Release pgweir in $root/build-bench"
  # PGWEIR_WERROR=OFF: GCC 12 -O2 false positives (-Wrestrict in std::string) must not stop a benchmark.
  mkdir -p "$root/build-bench"
  build_log=$root/build-bench/bench-build.log
  { cmake -S "$root" -B "$root/build-bench" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPGWEIR_TESTS=OFF -DPGWEIR_WERROR=OFF &&
    cmake --build "$root/build-bench" --target pgweir; } >"$build_log" 2>&1 \
    || { grep -m5 -B2 -A3 -E 'error|Error' "$build_log" >&2; die "build failed (full log: $build_log)"; }
  PGWEIR=$root/build-bench/src/daemon/pgweir
fi
[[ -x "$PGWEIR" ]] || die "pgweir binary not found: $PGWEIR"
PGWEIR=$(readlink -f "$PGWEIR")

# ---------------------------------------------------------------- directories, cleanup
NOFILE=$(ulimit -Hn)
[[ "$NOFILE" == unlimited ]] && NOFILE=1048576
((NOFILE > 65536)) && NOFILE=65536
stamp=$(date +%Y%m%d-%H%M%S)
RESULTS=${out:-$here/results/$stamp}
mkdir -p "$RESULTS/raw"
RESULTS=$(cd "$RESULTS" && pwd)
CSV=$RESULTS/results.csv
echo "workload,variant,clients,target,rep,metric,value" >"$CSV"
BENCH_TMP=$(mktemp -d /tmp/pgweir-bench.XXXXXX)
chmod 755 "$BENCH_TMP"
if [[ ${#AS_PG[@]} -gt 0 ]]; then chown postgres: "$BENCH_TMP"; fi
started_at=$(date +%s)

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local p t
  for p in "${BG_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for t in "${!TWAIT[@]}"; do stop_target "$t"; done
  stop_pg
  # keep the proxies' logs next to the results
  for t in "$BENCH_TMP"/*/; do
    [[ -d "$t" ]] || continue
    for f in "$t"*.log; do [[ -f "$f" ]] && cp "$f" "$RESULTS/raw/$(basename "$t")-$(basename "$f")" 2>/dev/null; done
  done
  rm -rf "$BENCH_TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

max_clients=10
for c in $CLIENTS $G_CLIENTS $TLS_CLIENTS; do ((c > max_clients)) && max_clients=$c; done

# ---------------------------------------------------------------- machine description
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "mode: $( ((smoke)) && echo smoke || echo full), repetitions $REPS, duration ${DURATION}s per run (b: $B_REPS of ${B_DURATION}s)"
  echo "cpu: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(nproc) cores"
  echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "kernel: $(uname -sr)"
  echo "postgresql: $("$PG_BIN/postgres" --version)"
  echo "pgbench: $("$PG_BIN/pgbench" --version)"
  echo "pgbouncer: $(/usr/sbin/pgbouncer --version | head -1)"
  echo "pgweir: $("$PGWEIR" --version 2>&1 | head -1) ($PGWEIR)"
  echo "pgweir commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "pgweir server.io (the main pgweir, in a–f): $PGWEIR_IO"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$RESULTS/meta.txt"
cat "$RESULTS/meta.txt" >&2

# ---------------------------------------------------------------- setup
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$BENCH_TMP/server.key" -out "$BENCH_TMP/server.crt" >/dev/null 2>&1
chmod 644 "$BENCH_TMP/server.key" # read by pgbouncer running as postgres; a throwaway key

start_pg "$((max_clients + 60))"
log "pgbench -i -s $SCALE"
pg_psql bench -c "SELECT 1" >/dev/null
"${AS_PG[@]}" "$PG_BIN/pgbench" -i -q -s "$SCALE" -h "$BENCH_TMP/pg" -p "$PG_PORT" -U bench bench >"$RESULTS/raw/pgbench-init.log" 2>&1 \
  || { cat "$RESULTS/raw/pgbench-init.log" >&2; die "pgbench -i failed"; }
pg_psql bench -c "VACUUM ANALYZE" >/dev/null
# What pgbench -i and VACUUM wrote is checkpointed before the first run, which otherwise shared the machine with
# PostgreSQL writing it out. The data set (scale 10: about 150 MB) fits in shared_buffers; warm_servers (below)
# reads all of it, through each proxy, before the proxy's first run.
pg_psql bench -c "CHECKPOINT" >/dev/null
cat >"$BENCH_TMP/touch.sql" <<'SQL'
BEGIN;
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT count(abalance) FROM pgbench_accounts WHERE aid > 0;
COMMIT;
SQL

SSLMODE=disable
start_main() { # auth tls
  start_pgbouncer pgbouncer "$1" "$2"
  start_pgweir pgweir "$1" "$2" 0 "$PGWEIR_IO"
  warm_servers pgbouncer pgweir
}
stop_proxies() { local t; for t in "${!TWAIT[@]}"; do stop_target "$t"; done; }

# warm_servers TARGET...: opens each proxy's 10 server connections and has their PostgreSQL backends read all of
# pgbench_accounts through its index (touch.sql, one transaction per client, 10 at once). A new backend maps the
# pages of shared_buffers it reads one by one, at first touch: measured here, the 10 backends of a proxy just
# started took about 25 000 page faults in their first 4 s of pgbench -S and ran a quarter fewer transactions
# than in the next 4 s (a fresh PgBouncer's first seconds climbed the same way). After the warm-up: under 1 000
# faults, and no climb.
warm_servers() {
  local t
  for t in "$@"; do
    target_env "$t" "$PG_BIN/pgbench" -n -c 10 -j 2 -t 1 -f "$BENCH_TMP/touch.sql" >/dev/null 2>&1 \
      || log "  the warm-up through $t failed"
  done
}

# matrix WORKLOAD "VARIANTS" "CLIENTS" "TARGETS" ARGS_FUNCTION
# For each repetition, variant and client count, runs every target once, in a rotated order.
matrix() {
  local wl=$1 variants=$2 clients=$3 targets=$4 argsfn=$5 rep v c t k=0
  for ((rep = 1; rep <= REPS; rep++)); do
    for v in $variants; do
      for c in $clients; do
        k=$((k + 1))
        # shellcheck disable=SC2086
        for t in $(rotate "$k" $targets); do
          local args
          run_seconds "$t" "$c"
          mapfile -t args < <("$argsfn" "$v" "$c")
          run_pgbench "$wl" "$v" "$c" "$t" "$rep" -- "${args[@]}"
        done
      done
    done
  done
}

# pgbench's -T clock starts before its clients have logged in, and logins (a backend fork each for direct,
# client-side PBKDF2 for SCRAM, TLS handshakes) can take longer than a short run. So the login time is measured
# once per target, client count and sslmode (pgbench -t 1, which is also a warm-up), and 1.5 times it is added
# to -T when that is 150 ms or more. TPS excludes login time anyway ("without initial connection time").
declare -A LOGIN_S=()
run_seconds() { # target clients -> T_SECONDS (no subshell: the cache must survive)
  local key="$1:$2:${SSLMODE}" ms
  if (($2 >= 10)) && [[ -z "${LOGIN_S[$key]:-}" ]]; then
    ms=$( (ulimit -n "$NOFILE"; target_env "$1" timeout -k 5 300 "$PG_BIN/pgbench" -n -S -c "$2" -j "$(jobs_for "$2")" -t 1) 2>&1 \
      | awk '/initial connection time/ {print int($5); exit}')
    [[ "$ms" =~ ^[0-9]+$ ]] || ms=30000
    LOGIN_S[$key]=0
    ((ms * 3 / 2 < 150)) || LOGIN_S[$key]=$(((ms * 3 / 2 + 999) / 1000))
    ((LOGIN_S[$key] == 0)) || log "  $1 with $2 clients: login takes $ms ms, its runs get ${LOGIN_S[$key]} s more"
    sleep "$SETTLE"
  fi
  T_SECONDS=$((DURATION + ${LOGIN_S[$key]:-0}))
}
args_select() { printf '%s\n' -n -S -M "${1%-tls}" -c "$2" -j "$(jobs_for "$2")" -T "$T_SECONDS"; }
args_connect() { printf '%s\n' -n -S -C -M simple -c "$2" -j "$(jobs_for "$2")" -T "$T_SECONDS"; }

# ---------------------------------------------------------------- workloads with the main proxies
log "PgBouncer and pgweir: transaction mode, pool 10, scram-sha-256, TLS off"
start_main scram-sha-256 disable

if want a; then
  log "== a. pgbench -S throughput: modes [$MODES], clients [$CLIENTS]"
  matrix a "$MODES" "$CLIENTS" "direct pgbouncer pgweir" args_select
fi

if want b; then
  log "== b. latency at a fixed rate of $RATE tx/s, 10 clients, $B_REPS repetitions of ${B_DURATION}s"
  mkdir -p "$BENCH_TMP/lat"
  # A second PgBouncer, configured like the first: how far two copies of one program land apart in the same
  # repetitions is the noise a pgweir - PgBouncer difference has to be read against (an A/A comparison).
  start_pgbouncer pgbouncer-2 scram-sha-256 disable
  warm_servers pgbouncer-2
  for ((rep = 1; rep <= B_REPS; rep++)); do
    for t in $(rotate "$rep" direct pgbouncer pgbouncer-2 pgweir); do
      prefix=$BENCH_TMP/lat/${t}_r$rep
      run_pgbench b rate$RATE 10 "$t" "$rep" -- -n -S -M simple -c 10 -j 2 -R "$RATE" -T "$B_DURATION" --log --log-prefix="$prefix"
      if [[ "$R_STATUS" == ok ]]; then
        read -r p50 p99 p999 n < <(python3 "$here/report.py" latency "$prefix".*)
        csv_row b "rate$RATE" 10 "$t" "$rep" lat_p50_us "$p50"
        csv_row b "rate$RATE" 10 "$t" "$rep" lat_p99_us "$p99"
        csv_row b "rate$RATE" 10 "$t" "$rep" lat_p999_us "$p999"
        log "    latency p50 ${p50} us, p99 ${p99} us over $n transactions"
      fi
      rm -f "$prefix".*
    done
  done
  stop_target pgbouncer-2
fi

if want f; then
  log "== f. result streaming: rows [$STREAM_ROWS], 1 client"
  for n in $STREAM_ROWS; do
    echo "SELECT generate_series(1, $n);" >"$BENCH_TMP/stream_$n.sql"
  done
  for ((rep = 1; rep <= REPS; rep++)); do
    for n in $STREAM_ROWS; do
      # bytes PostgreSQL sends per execution: RowDescription, DataRows (1+4+2+4+digits), CommandComplete, ReadyForQuery
      bytes=$(python3 -c "
n = $n; digits = sum((min(n, 10**d - 1) - 10**(d - 1) + 1) * d for d in range(1, len(str(n)) + 1))
print(1 + 4 + 2 + len('generate_series') + 1 + 18 + 11 * n + digits + 1 + 4 + len('SELECT %d' % n) + 1 + 6)")
      for t in $(rotate "$rep" direct pgbouncer pgweir); do
        run_pgbench f "rows$n" 1 "$t" "$rep" -- -n -M simple -c 1 -j 1 -T "$DURATION" -f "$BENCH_TMP/stream_$n.sql"
        if [[ "$R_STATUS" == ok ]]; then
          csv_row f "rows$n" 1 "$t" "$rep" mb_per_s "$(awk -v t="$R_TPS" -v b="$bytes" 'BEGIN {printf "%.2f", t * b / 1e6}')"
          [[ -n "$R_CPU_US" ]] && csv_row f "rows$n" 1 "$t" "$rep" cpu_us_per_mb \
            "$(awk -v c="$R_CPU_US" -v x="$R_TX" -v b="$bytes" 'BEGIN {printf "%.1f", c / (x * b / 1e6)}')"
        fi
      done
    done
  done
fi

if want d; then
  log "== d. new connections per second (pgbench -C), scram-sha-256"
  matrix d scram-sha-256 10 "direct pgbouncer pgweir" args_connect
fi

if want s; then
  log "== s. syscalls per transaction (strace -c -f), pgbench -S -M simple, $STRACE_TX transactions"
  per_client=$((STRACE_TX / 10))
  # PgBouncer is one thread: pgweir with one worker too, beside the default instance (one worker per core), whose
  # event loops each wait in epoll_wait of their own.
  start_pgweir pgweir-w1 scram-sha-256 disable 1
  start_pgweir pgweir-w1-uring scram-sha-256 disable 1 io_uring
  warm_servers pgweir-w1 pgweir-w1-uring
  for ((rep = 1; rep <= REPS; rep++)); do
    for t in $(rotate "$rep" pgbouncer pgweir pgweir-w1 pgweir-w1-uring); do
      sout=$RESULTS/raw/s_strace_${t}_r$rep.txt
      # Warm: the proxy's 10 server connections open before strace attaches (they were, after warm_servers, unless
      # idle_timeout closed some since), so no count includes logins to PostgreSQL.
      target_env "$t" "$PG_BIN/pgbench" -n -S -M simple -c 10 -j 2 -t 20 >/dev/null 2>&1 || true
      strace -c -f -p "${TPID[$t]}" -o "$sout" 2>"$BENCH_TMP/strace.err" &
      spid=$!
      BG_PIDS+=("$spid")
      # wait until strace has attached (TracerPid set) or give up after 5 s
      for _ in $(seq 1 50); do
        [[ "$(awk '/^TracerPid:/ {print $2}' "/proc/${TPID[$t]}/status")" != 0 ]] && break
        sleep 0.1
      done
      run_pgbench s simple 10 "$t" "$rep" -- -n -S -M simple -c 10 -j 2 -t "$per_client"
      sleep 0.3
      kill -INT "$spid" 2>/dev/null || true
      wait "$spid" 2>/dev/null || true
      calls=$(awk '$NF == "total" {print $4}' "$sout" 2>/dev/null || true)
      if [[ "$R_STATUS" == ok && -n "$calls" ]]; then
        csv_row s simple 10 "$t" "$rep" syscalls "$calls"
        csv_row s simple 10 "$t" "$rep" syscalls_per_tx "$(awk -v c="$calls" -v x="$R_TX" 'BEGIN {printf "%.2f", c / x}')"
        log "    $calls syscalls / $R_TX transactions"
      else
        log "    strace gave no summary: $(head -c 300 "$BENCH_TMP/strace.err")"
        csv_row s simple 10 "$t" "$rep" status strace_failed
      fi
    done
  done
  stop_target pgweir-w1
  stop_target pgweir-w1-uring
fi

if want d; then
  log "== d. new connections per second (pgbench -C), trust (PostgreSQL too)"
  stop_proxies
  set_pg_auth trust
  start_main trust disable
  matrix d trust 10 "direct pgbouncer pgweir" args_connect
  stop_proxies
  set_pg_auth scram-sha-256
fi

if want e; then
  log "== e. client TLS (sslmode=require): pgbench -S at [$TLS_CLIENTS] clients and pgbench -C"
  stop_proxies
  SSLMODE=require
  start_main scram-sha-256 require
  check_login direct
  matrix e simple-tls "$TLS_CLIENTS" "direct pgbouncer pgweir" args_select
  matrix e connect-tls 10 "direct pgbouncer pgweir" args_connect
  SSLMODE=disable
  stop_proxies
fi

if want g; then
  log "== g. pgweir workers = 1 and 2, epoll and io_uring (PgBouncer alongside): modes [$G_MODES], clients [$G_CLIENTS]"
  stop_proxies
  start_pgbouncer pgbouncer scram-sha-256 disable
  start_pgweir pgweir-w1 scram-sha-256 disable 1
  start_pgweir pgweir-w2 scram-sha-256 disable 2
  start_pgweir pgweir-w1-uring scram-sha-256 disable 1 io_uring
  start_pgweir pgweir-w2-uring scram-sha-256 disable 2 io_uring
  warm_servers pgbouncer pgweir-w1 pgweir-w2 pgweir-w1-uring pgweir-w2-uring
  matrix g "$G_MODES" "$G_CLIENTS" "pgbouncer pgweir-w1 pgweir-w2 pgweir-w1-uring pgweir-w2-uring" args_select
  stop_proxies
fi

if want h; then
  log "== h. the floor: bare relays (epoll, io_uring, io_uring woken through epoll) beside PgBouncer and pgweir (one worker, epoll and io_uring): modes [$H_MODES], clients [$H_CLIENTS]"
  stop_proxies
  start_pgbouncer pgbouncer scram-sha-256 disable
  start_pgweir pgweir-w1 scram-sha-256 disable 1
  start_pgweir pgweir-w1-uring scram-sha-256 disable 1 io_uring
  h_targets="pgbouncer pgweir-w1 pgweir-w1-uring"
  for kind in epoll uring hybrid; do
    if start_relay "relay-$kind" "$kind"; then h_targets+=" relay-$kind"; fi
  done
  # shellcheck disable=SC2086
  warm_servers $h_targets
  matrix h "$H_MODES" "$H_CLIENTS" "$h_targets" args_select
  stop_proxies
fi

if want c; then
  log "== c. memory per idle client: [$IDLE_COUNTS] idle logged-in clients (idle: logged in only; busy: one query each, then idle ${BUSY_SETTLE}s)"
  stop_proxies
  for n in $IDLE_COUNTS; do
    for variant in idle busy; do
      query=()
      settle=1
      if [[ "$variant" == busy ]]; then query=(--query); settle=$BUSY_SETTLE; fi
      for ((rep = 1; rep <= REPS; rep++)); do
        for t in $(rotate "$rep" pgbouncer pgweir); do
          # a fresh proxy per measurement, warmed up with its server connections open
          if [[ "$t" == pgbouncer ]]; then start_pgbouncer pgbouncer scram-sha-256 disable; else start_pgweir pgweir scram-sha-256 disable 0 "$PGWEIR_IO"; fi
          target_env "$t" "$PG_BIN/pgbench" -n -S -c 10 -j 2 -t 20 >/dev/null 2>&1 || true
          sleep 1
          before=$(rss_kb "${TPID[$t]}")
          ready=$BENCH_TMP/idle.ready
          rm -f "$ready"
          (ulimit -n "$NOFILE"; exec python3 "$here/idle_clients.py" --port "${TPORT[$t]}" --password bench -n "$n" \
            "${query[@]}" --ready-file "$ready" --timeout 120 --hold 300) >"$RESULTS/raw/c_${variant}_${n}_${t}_r$rep.log" 2>&1 &
          hpid=$!
          BG_PIDS+=("$hpid")
          for _ in $(seq 1 1300); do [[ -f "$ready" ]] && break; kill -0 "$hpid" 2>/dev/null || break; sleep 0.1; done
          sleep "$settle"
          after=$(rss_kb "${TPID[$t]}")
          ok=$(sed -n 's/.*ok=\([0-9]*\).*/\1/p' "$ready" 2>/dev/null || echo 0)
          kill -TERM "$hpid" 2>/dev/null || true
          wait "$hpid" 2>/dev/null || true
          csv_row c "$variant$n" "$n" "$t" "$rep" rss_before_kb "$before"
          csv_row c "$variant$n" "$n" "$t" "$rep" rss_after_kb "$after"
          csv_row c "$variant$n" "$n" "$t" "$rep" clients_ok "${ok:-0}"
          if [[ "${ok:-0}" -gt 0 ]]; then
            csv_row c "$variant$n" "$n" "$t" "$rep" status ok
            csv_row c "$variant$n" "$n" "$t" "$rep" kb_per_client "$(awk -v a="$after" -v b="$before" -v n="$ok" 'BEGIN {printf "%.2f", (a - b) / n}')"
          else
            csv_row c "$variant$n" "$n" "$t" "$rep" status fail
          fi
          log "  c $variant$n $t rep $rep: $(cat "$ready" 2>/dev/null || echo 'no READY'); RSS $before -> $after KB"
          stop_target "$t"
        done
      done
    done
  done
fi

stop_proxies
log "all workloads done in $(($(date +%s) - started_at)) s; writing the report"
echo "elapsed: $(($(date +%s) - started_at)) s" >>"$RESULTS/meta.txt"
python3 "$here/report.py" report "$RESULTS"
log "results in $RESULTS"
exit
}
