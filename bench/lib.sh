# Helpers for bench/run.sh: a throwaway PostgreSQL, PgBouncer and pgweir instances in front of it, and the
# measurements (pgbench runs, /proc CPU and RSS). Sourced, not executed. Expects from the caller:
#   BENCH_TMP (work dir, owned by postgres when root), RESULTS (output dir), CSV (raw results file),
#   PG_BIN, PGWEIR (binary), NOFILE (fd limit for proxies and clients), here (the bench directory).
# shellcheck shell=bash

AS_PG=()
if [[ $(id -u) -eq 0 ]]; then
  AS_PG=(runuser -u postgres --)
fi

declare -gA TPORT=()   # target name -> TCP port on 127.0.0.1
declare -gA TPID=()    # target name -> PID whose /proc/PID/stat is the proxy's CPU (empty for direct)
declare -gA TWAIT=()   # target name -> PID to wait for (the runuser wrapper for PgBouncer)
declare -ga BG_PIDS=() # helpers (strace, idle clients) to kill on exit
PG_STARTED=0
CLK_TCK=$(getconf CLK_TCK)

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# A TCP port on 127.0.0.1 nobody listens on, below the ephemeral range, not handed out before in this run.
declare -gA _PORTS_TAKEN=()
free_port() {
  local low=32768 high port
  if [[ -r /proc/sys/net/ipv4/ip_local_port_range ]]; then read -r low high </proc/sys/net/ipv4/ip_local_port_range; fi
  ((low > 11000)) || low=61000
  for _ in $(seq 1 500); do
    port=$((10000 + RANDOM % (low - 10000)))
    [[ -n "${_PORTS_TAKEN[$port]:-}" ]] && continue
    if ! ss -Htan "sport = :$port" 2>/dev/null | grep -q .; then
      _PORTS_TAKEN[$port]=1
      echo "$port"
      return 0
    fi
  done
  die "no free port found"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# utime+stime of a whole process (all threads), in clock ticks.
cpu_ticks() {
  local line rest
  read -r line <"/proc/$1/stat" || return 1
  rest=${line##*) }
  # shellcheck disable=SC2086
  set -- $rest
  echo $((${12} + ${13}))
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

csv_row() { # workload variant clients target rep metric value
  local IFS=,
  echo "$*" >>"$CSV"
}

# ---------------------------------------------------------------- PostgreSQL
start_pg() { # max_connections
  local dir=$BENCH_TMP/pg
  mkdir -p "$dir"
  if [[ ${#AS_PG[@]} -gt 0 ]]; then chown postgres: "$dir"; fi
  PG_PORT=$(free_port)
  log "PostgreSQL: initdb, 127.0.0.1:$PG_PORT, max_connections=$1"
  "${AS_PG[@]}" "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  cp "$BENCH_TMP/server.crt" "$BENCH_TMP/server.key" "$dir/data/"
  if [[ ${#AS_PG[@]} -gt 0 ]]; then chown postgres: "$dir/data/server.crt" "$dir/data/server.key"; fi
  chmod 600 "$dir/data/server.key"
  cat >>"$dir/data/postgresql.conf" <<CONF
port = $PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = $1
shared_buffers = 256MB
fsync = off
synchronous_commit = off
full_page_writes = off
password_encryption = 'scram-sha-256'
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
logging_collector = off
log_min_messages = warning
CONF
  set_pg_auth scram-sha-256 noreload
  "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start >/dev/null \
    || { cat "$dir/postgres.log" >&2; die "PostgreSQL did not start"; }
  PG_STARTED=1
  TPORT[direct]=$PG_PORT
  TPID[direct]=
  pg_psql postgres -c "CREATE ROLE bench LOGIN PASSWORD 'bench'" -c "CREATE DATABASE bench OWNER bench"
  BENCH_SCRAM=$(pg_psql postgres -Atc "SELECT rolpassword FROM pg_authid WHERE rolname = 'bench'")
  printf '"bench" "%s"\n' "$BENCH_SCRAM" >"$BENCH_TMP/userlist.txt"
  chmod 644 "$BENCH_TMP/userlist.txt"
}

pg_psql() { # db args...   (superuser, unix socket)
  local db=$1
  shift
  "${AS_PG[@]}" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$BENCH_TMP/pg" -p "$PG_PORT" -U postgres -d "$db" "$@"
}

# TCP clients (pgbench direct, and both proxies' server connections) authenticate with METHOD; local is trust.
set_pg_auth() { # trust|scram-sha-256 [noreload]
  local hba=$BENCH_TMP/pg/data/pg_hba.conf
  printf 'local all all trust\nhost all all 127.0.0.1/32 %s\n' "$1" >"$hba"
  if [[ ${#AS_PG[@]} -gt 0 ]]; then chown postgres: "$hba"; fi
  if [[ "${2:-}" != noreload ]]; then
    "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$BENCH_TMP/pg/data" reload >/dev/null
    sleep 0.5
  fi
}

stop_pg() {
  ((PG_STARTED)) || return 0
  "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$BENCH_TMP/pg/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  PG_STARTED=0
}

# ---------------------------------------------------------------- proxies
# Both proxies: transaction pooling, 10 server connections, no overflow/reserve, the same users file,
# server connections to PostgreSQL over TCP as "bench" with the password "bench".
start_pgbouncer() { # name auth(trust|scram-sha-256) tls(disable|require)
  local name=$1 auth=$2 tls=$3 dir=$BENCH_TMP/$1 port
  port=$(free_port)
  mkdir -p "$dir/sock"
  cat >"$dir/pgbouncer.ini" <<INI
[databases]
bench = host=127.0.0.1 port=$PG_PORT dbname=bench user=bench password=bench

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir = $dir/sock
auth_type = $auth
auth_file = $BENCH_TMP/userlist.txt
pool_mode = transaction
default_pool_size = 10
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 12000
max_db_connections = 0
server_tls_sslmode = disable
client_tls_sslmode = $tls
client_tls_cert_file = $BENCH_TMP/server.crt
client_tls_key_file = $BENCH_TMP/server.key
log_connections = 0
log_disconnections = 0
log_pooler_errors = 1
stats_period = 3600
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
  if [[ ${#AS_PG[@]} -gt 0 ]]; then chown -R postgres: "$dir"; fi
  rm -f "$dir/pgbouncer.pid"
  # runuser goes through PAM (pam_limits resets the soft fd limit to 1024): raise it again inside.
  (ulimit -n "$NOFILE"; exec "${AS_PG[@]}" sh -c 'ulimit -n "$1" && exec /usr/sbin/pgbouncer "$2"' sh "$NOFILE" "$dir/pgbouncer.ini") \
    >"$dir/stderr.log" 2>&1 &
  TWAIT[$name]=$!
  wait_listening "$name" "$port" "$dir/stderr.log"
  local pid=
  for _ in $(seq 1 50); do
    pid=$(cat "$dir/pgbouncer.pid" 2>/dev/null) && [[ -n "$pid" ]] && break
    sleep 0.1
  done
  [[ -n "$pid" ]] || die "$name: no pidfile"
  TPORT[$name]=$port
  TPID[$name]=$pid
  check_login "$name"
}

start_pgweir() { # name auth tls workers [io: epoll (default) | io_uring]
  local name=$1 auth=$2 tls=$3 workers=$4 io=${5:-epoll} dir=$BENCH_TMP/$1 port
  port=$(free_port)
  mkdir -p "$dir/sock"
  local tls_mode=disable
  [[ "$tls" == require ]] && tls_mode=require
  cat >"$dir/pgweir.toml" <<TOML
[server]
listen = ["127.0.0.1:$port"]
unix_socket_dir = "$dir/sock"
workers = $workers
io = "$io"
max_client_connections = 12000
shutdown_timeout = "2s"

[tls]
mode = "$tls_mode"
cert_file = "$BENCH_TMP/server.crt"
key_file = "$BENCH_TMP/server.key"

[auth]
method = "$auth"
users_file = "$BENCH_TMP/userlist.txt"

[pool]
mode = "transaction"
size = 10
max_overflow = 0
max_lifetime = "1h"  # PgBouncer's server_lifetime default: neither proxy renews its backends within a run

[metrics]
listen = ""

[log]
level = "warn"

[databases.bench]
dsn = "postgresql://bench@127.0.0.1:$PG_PORT/bench?sslmode=disable"
password = "bench"
TOML
  "$PGWEIR" --check -c "$dir/pgweir.toml" >"$dir/check.log" 2>&1 || { cat "$dir/check.log" >&2; die "$name: config rejected"; }
  (ulimit -n "$NOFILE"; exec "$PGWEIR" -c "$dir/pgweir.toml") >"$dir/stderr.log" 2>&1 &
  TWAIT[$name]=$!
  TPID[$name]=$!
  TPORT[$name]=$port
  wait_listening "$name" "$port" "$dir/stderr.log"
  check_login "$name"
}

# start_relay NAME epoll|uring|hybrid: a bare relay (bench/floor/relay.cpp) to PostgreSQL, built on first use. Its
# backends log in as bench over TCP, as the proxies' do. Returns 1 (and logs why) when it cannot be built or does
# not start, e.g. where io_uring is not available.
start_relay() {
  local name=$1 kind=$2 dir=$BENCH_TMP/$1 port
  mkdir -p "$dir"
  if [[ ! -x "$BENCH_TMP/relay" ]]; then
    g++ -std=c++20 -O2 -I/usr/include/postgresql -o "$BENCH_TMP/relay" "$here/floor/relay.cpp" -luring -lpq \
      >"$BENCH_TMP/relay-build.log" 2>&1 \
      || { log "  the bare relay does not build: $(head -c 300 "$BENCH_TMP/relay-build.log")"; return 1; }
  fi
  port=$(free_port)
  (ulimit -n "$NOFILE"; exec "$BENCH_TMP/relay" "$kind" "$port" \
    "host=127.0.0.1 port=$PG_PORT dbname=bench user=bench password=bench sslmode=disable") >"$dir/stderr.log" 2>&1 &
  TWAIT[$name]=$!
  TPID[$name]=$!
  TPORT[$name]=$port
  for _ in $(seq 1 50); do
    port_open "$port" && kill -0 "${TPID[$name]}" 2>/dev/null && { check_login "$name"; return 0; }
    kill -0 "${TPID[$name]}" 2>/dev/null || break
    sleep 0.1
  done
  log "  $name did not start: $(head -c 300 "$dir/stderr.log")"
  stop_target "$name"
  return 1
}

wait_listening() { # name port logfile
  for _ in $(seq 1 100); do
    port_open "$2" && return 0
    kill -0 "${TWAIT[$1]}" 2>/dev/null || { cat "$3" >&2; die "$1 exited during start-up"; }
    sleep 0.1
  done
  cat "$3" >&2
  die "$1 is not listening on $2 after 10 s"
}

check_login() { # name: one query through the target, with the target's auth and TLS settings
  local out
  out=$(target_env "$1" "$PG_BIN/psql" -X -At -c "SELECT 1" 2>&1) || die "$1: login/query failed: $out"
  [[ "$out" == 1 ]] || die "$1: unexpected answer: $out"
}

# Run a client command against target NAME (libpq environment; SSLMODE global: disable|require).
target_env() {
  local name=$1
  shift
  PGHOST=127.0.0.1 PGPORT="${TPORT[$name]}" PGUSER=bench PGPASSWORD=bench PGDATABASE=bench \
    PGSSLMODE="${SSLMODE:-disable}" PGCONNECT_TIMEOUT=30 "$@"
}

stop_target() { # name
  local name=$1 pid=${TPID[$1]:-} w=${TWAIT[$1]:-}
  [[ -n "$w" ]] || return 0
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -INT "$pid" 2>/dev/null || true  # PgBouncer: SIGINT = safe shutdown; pgweir: graceful
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$w" 2>/dev/null || true
  unset "TPORT[$name]" "TPID[$name]" "TWAIT[$name]"
}

target_alive() { [[ -z "${TPID[$1]:-}" ]] || kill -0 "${TPID[$1]}" 2>/dev/null; }

# ---------------------------------------------------------------- measurements
# run_pgbench WORKLOAD VARIANT CLIENTS TARGET REP -- pgbench args...
# Writes the log to $RESULTS/raw/, rows tps / tx / cpu_us_per_tx / status to the CSV, and leaves
# R_STATUS, R_TPS, R_TX, R_CPU_US (proxy CPU µs during the run, empty for direct) for the caller.
run_pgbench() {
  local wl=$1 var=$2 clients=$3 target=$4 rep=$5
  shift 6
  local out="$RESULTS/raw/${wl}_${var}_c${clients}_${target}_r${rep}.log" pid=${TPID[$target]:-} t0= t1= rc=0
  R_STATUS=fail R_TPS= R_TX= R_CPU_US=
  if ! target_alive "$target"; then
    log "  $target is not running; skipped"
    csv_row "$wl" "$var" "$clients" "$target" "$rep" status dead
    return 0
  fi
  [[ -n "$pid" ]] && t0=$(cpu_ticks "$pid")
  (ulimit -n "$NOFILE"; target_env "$target" timeout -k 5 "$((DURATION + 120))" "$PG_BIN/pgbench" "$@") >"$out" 2>&1 || rc=$?
  [[ -n "$pid" ]] && t1=$(cpu_ticks "$pid" 2>/dev/null || true)
  R_TPS=$(awk '/^tps = / {print $3; exit}' "$out")
  R_TX=$(awk -F': *' '/number of transactions actually processed/ {split($2, a, "/"); print a[1]; exit}' "$out")
  if ((rc == 0)) && [[ -n "$R_TPS" && -n "$R_TX" ]] && ((R_TX > 0)); then
    R_STATUS=ok
  fi
  csv_row "$wl" "$var" "$clients" "$target" "$rep" status "$R_STATUS"
  if [[ "$R_STATUS" == ok ]]; then
    csv_row "$wl" "$var" "$clients" "$target" "$rep" tps "$R_TPS"
    csv_row "$wl" "$var" "$clients" "$target" "$rep" tx "$R_TX"
    if [[ -n "$t0" && -n "$t1" ]]; then
      R_CPU_US=$(((t1 - t0) * 1000000 / CLK_TCK))
      csv_row "$wl" "$var" "$clients" "$target" "$rep" cpu_us "$R_CPU_US"
      csv_row "$wl" "$var" "$clients" "$target" "$rep" cpu_us_per_tx "$(awk -v c="$R_CPU_US" -v t="$R_TX" 'BEGIN {printf "%.2f", c / t}')"
    fi
    log "  $wl $var c=$clients $target rep $rep: tps $R_TPS${R_CPU_US:+, proxy CPU $(awk -v c="$R_CPU_US" -v t="$R_TX" 'BEGIN {printf "%.1f", c / t}') us/tx}"
  else
    log "  $wl $var c=$clients $target rep $rep: FAILED (exit $rc, ${R_TX:-no} transactions): $(grep -m1 -iE 'error|fatal|abort' "$out" | cut -c1-160)"
  fi
  if ! target_alive "$target"; then
    log "  $target DIED during the run"
    csv_row "$wl" "$var" "$clients" "$target" "$rep" status died
  fi
  sleep "$SETTLE"
}

# Targets of the list in an order rotated by N, and reversed (then rotated by N + 1) when N is even: no target
# always runs first, nor always right after the same other one. A rotation alone keeps the cycle, and by hand a
# target's latency at a light rate depended on which target had run just before it (by 150-300 µs at p99).
rotate() { # n targets...
  local n=$1
  shift
  local a=("$@") k=${#a[@]} i
  if ((n % 2 == 0)); then
    a=()
    for ((i = k; i > 0; i--)); do a+=("${!i}"); done
    n=$((n + 1))
  fi
  for ((i = 0; i < k; i++)); do echo "${a[$(((i + n) % k))]}"; done
}

jobs_for() { (($1 < 2)) && echo "$1" || echo 2; }
