# Shared helpers for scripts/*.sh: the packages pgweir needs to build, test and demo, and how to install them.
# Sourced, not executed.

PGWEIR_PACKAGES=(
  g++ cmake ninja-build pkg-config
  libboost1.81-dev libssl-dev libpq-dev libtomlplusplus-dev doctest-dev liburing-dev
  postgresql-15 postgresql-client-15
  openssl procps iproute2
  prometheus pgbouncer prometheus-pgbouncer-exporter
  python3-psycopg curl
  clang libclang-rt-14-dev
)

PGWEIR_PG_BIN=/usr/lib/postgresql/15/bin

# Installs whichever of PGWEIR_PACKAGES is missing; does nothing (and touches no network) when all are present.
pgweir_install_packages() {
  local missing=() pkg
  for pkg in "${PGWEIR_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  echo "installing: ${missing[*]}" >&2
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    sudo=(sudo)
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  # The Debian postgresql package creates and starts a "main" cluster on 5432; pgweir's tests
  # and demo make their own clusters, so policy-rc.d would be nice but is not needed.
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# PostgreSQL 15's own binaries first: other initdb/pg_ctl copies may be earlier on PATH.
pgweir_setup_path() {
  export PATH="$PGWEIR_PG_BIN:$PATH"
}

pgweir_repo_root() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd
}

# Prints a TCP port on 127.0.0.1 that no socket uses right now. It is taken from below the kernel's
# ephemeral range, so an outgoing connection cannot grab it before our server binds it.
pgweir_free_port() {
  local low=32768 high port
  if [[ -r /proc/sys/net/ipv4/ip_local_port_range ]]; then
    read -r low high </proc/sys/net/ipv4/ip_local_port_range
  fi
  ((low > 11000)) || low=61000
  for _ in $(seq 1 200); do
    port=$((10000 + RANDOM % (low - 10000)))
    if ! ss -Htan "sport = :$port" 2>/dev/null | grep -q .; then
      echo "$port"
      return 0
    fi
  done
  echo "no free port found" >&2
  return 1
}
