# Shared by the ops shell tests: a temp dir removed on exit, failure reporting, and test certificates.
set -euo pipefail

PGWEIR=${1:?usage: $0 PGWEIR_BINARY REPO_ROOT}
ROOT=${2:?usage: $0 PGWEIR_BINARY REPO_ROOT}
TMP=$(mktemp -d /tmp/pgweir-ops.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
FAILURES=0

fail() {
  echo "FAIL: $*" >&2
  FAILURES=$((FAILURES + 1))
}

skip() {
  echo "SKIP: $*"
  exit 77
}

finish() {
  if ((FAILURES > 0)); then
    echo "$FAILURES failure(s)" >&2
    exit 1
  fi
  echo "all passed"
}

# make_pki DIR: a CA (ca.crt) and a server certificate for localhost signed by it (server.crt, server.key).
make_pki() {
  local dir=$1
  command -v openssl >/dev/null || skip "openssl is not installed"
  mkdir -p "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=pgweir test CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
    -out "$dir/server.crt" 2>/dev/null
  chmod 600 "$dir/server.key"
}

# expect_check NAME FILE [VAR=value…]: `pgweir --check -c FILE` with those variables must exit 0.
expect_check() {
  local name=$1 file=$2
  shift 2
  local out
  if out=$(env "$@" "$PGWEIR" --check -c "$file" 2>&1); then
    echo "ok: $name"
  else
    fail "$name: pgweir --check -c $file exited $?:"
    echo "$out" >&2
  fi
}

# expect_check_fails NAME FILE PATTERN [VAR=value…]: --check must exit 1 and print PATTERN.
expect_check_fails() {
  local name=$1 file=$2 pattern=$3
  shift 3
  local out status=0
  out=$(env "$@" "$PGWEIR" --check -c "$file" 2>&1) || status=$?
  if [[ $status -ne 1 ]]; then
    fail "$name: expected exit 1, got $status: $out"
  elif ! grep -q -- "$pattern" <<<"$out"; then
    fail "$name: expected \"$pattern\" in: $out"
  else
    echo "ok: $name"
  fi
}
