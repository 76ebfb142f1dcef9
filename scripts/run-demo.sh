#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 cluster and a Release pgweir in front of it (TLS, SCRAM, metrics),
# prints how to connect, and cleans everything up on Ctrl-C / SIGTERM.
# Usage: scripts/run-demo.sh [--no-wait]   (--no-wait: run one query through pgweir, then stop)
# Env: PGWEIR_BINARY=path to use an already built pgweir instead of building build/release.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

no_wait=0
for arg in "$@"; do
  case "$arg" in
    --no-wait) no_wait=1 ;;
    -h|--help) echo "usage: $0 [--no-wait]"; exit 0 ;;
    *) echo "$0: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

root=$(pgweir_repo_root)
cd "$root"
pgweir_install_packages
pgweir_setup_path

# PGWEIR_BINARY=path skips the build and demos that binary instead.
pgweir_bin="${PGWEIR_BINARY:-}"
if [[ -z "$pgweir_bin" ]]; then
  cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DPGWEIR_SANITIZE=OFF
  cmake --build build/release -j"$(nproc)" --target pgweir
  pgweir_bin="$root/build/release/src/daemon/pgweir"
fi
[[ -x "$pgweir_bin" ]] || { echo "pgweir binary not found at $pgweir_bin" >&2; exit 1; }

# PostgreSQL refuses to run as root: the cluster belongs to "postgres" then.
as_pg=()
if [[ $(id -u) -eq 0 ]]; then
  as_pg=(runuser -u postgres --)
fi

tmp=$(mktemp -d /tmp/pgweir-demo.XXXXXX)
pgweir_pid=
pg_started=0
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "$pgweir_pid" ]] && kill -0 "$pgweir_pid" 2>/dev/null; then
    kill -TERM "$pgweir_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pgweir_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pgweir_pid" 2>/dev/null || true
    wait "$pgweir_pid" 2>/dev/null || true
  fi
  if ((pg_started)); then
    "${as_pg[@]}" pg_ctl -D "$tmp/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ((${#as_pg[@]})); then
  chown postgres: "$tmp"
fi

pg_port=$(pgweir_free_port)
pgweir_port=$(pgweir_free_port)
while [[ "$pgweir_port" == "$pg_port" ]]; do pgweir_port=$(pgweir_free_port); done
metrics_port=$(pgweir_free_port)
while [[ "$metrics_port" == "$pg_port" || "$metrics_port" == "$pgweir_port" ]]; do metrics_port=$(pgweir_free_port); done

echo "== PostgreSQL 15 cluster in $tmp/data on 127.0.0.1:$pg_port"
"${as_pg[@]}" initdb -D "$tmp/data" -U postgres -A trust --auth-host=scram-sha-256 >"$tmp/initdb.log" 2>&1 \
  || { cat "$tmp/initdb.log" >&2; exit 1; }
cat >>"$tmp/data/postgresql.conf" <<CONF
port = $pg_port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$tmp'
password_encryption = 'scram-sha-256'
CONF
"${as_pg[@]}" pg_ctl -D "$tmp/data" -l "$tmp/postgres.log" -w start >/dev/null \
  || { cat "$tmp/postgres.log" >&2; exit 1; }
pg_started=1
"${as_pg[@]}" psql -X -q -v ON_ERROR_STOP=1 -h "$tmp" -p "$pg_port" -U postgres -d postgres \
  -c "CREATE ROLE demo LOGIN PASSWORD 'demo'" -c "CREATE DATABASE demo OWNER demo"

echo "== self-signed TLS certificate"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$tmp/server.key" -out "$tmp/server.crt" >/dev/null 2>&1
chmod 600 "$tmp/server.key"

# userlist.txt format; a plain password here, a SCRAM verifier from pg_authid would do as well.
printf '"demo" "demo"\n' >"$tmp/userlist.txt"
chmod 600 "$tmp/userlist.txt"

cat >"$tmp/pgweir.toml" <<TOML
[server]
listen = ["127.0.0.1:$pgweir_port"]
shutdown_timeout = "5s"

[tls]
mode = "prefer"
cert_file = "$tmp/server.crt"
key_file = "$tmp/server.key"

[auth]
method = "scram-sha-256"
users_file = "$tmp/userlist.txt"

[pool]
mode = "transaction"
size = 5

[metrics]
listen = "127.0.0.1:$metrics_port"

[databases.demo]
dsn = "postgresql://demo@127.0.0.1:$pg_port/demo?sslmode=disable"
password = "demo"
TOML

echo "== pgweir on 127.0.0.1:$pgweir_port (config $tmp/pgweir.toml, log $tmp/pgweir.log)"
"$pgweir_bin" -c "$tmp/pgweir.toml" 2>"$tmp/pgweir.log" &
pgweir_pid=$!

ready=0
for _ in $(seq 1 100); do
  if ! kill -0 "$pgweir_pid" 2>/dev/null; then break; fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$pgweir_port") 2>/dev/null; then ready=1; break; fi
  sleep 0.1
done
if ((!ready)); then
  echo "pgweir did not start listening on 127.0.0.1:$pgweir_port; its log:" >&2
  cat "$tmp/pgweir.log" >&2
  exit 1
fi

dsn="postgresql://demo:demo@127.0.0.1:$pgweir_port/demo?sslmode=require"
echo
echo "pgweir is ready."
echo "  DSN:     $dsn"
echo "  psql:    psql '$dsn'"
echo "  metrics: curl http://127.0.0.1:$metrics_port/metrics"
echo

if ((no_wait)); then
  if ! psql -X -v ON_ERROR_STOP=1 "$dsn" -c "SELECT current_user, current_database(), version()"; then
    echo "query through pgweir failed; pgweir's log:" >&2
    cat "$tmp/pgweir.log" >&2
    exit 1
  fi
  exit 0
fi

echo "Press Ctrl-C to stop pgweir and PostgreSQL."
set +e
wait "$pgweir_pid"
status=$?
set -e
pgweir_pid=
# Ctrl-C reaches pgweir too (same process group), which then shuts down cleanly with status 0.
if ((status != 0)); then
  echo "pgweir exited with status $status; its log:" >&2
  cat "$tmp/pgweir.log" >&2
  exit 1
fi
echo "pgweir stopped."
