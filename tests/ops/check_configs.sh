# Every config shipped in the repository passes `pgweir --check`: the reference config, config/examples/*.toml and
# the container's docker/pgweir.toml. Their secret, TLS and users files live under /run/secrets and /etc/pgweir; a
# copy of each config has those prefixes moved into a temp dir where the test creates the files (TLS files are real
# certificates, as --check loads them).
source "$(dirname "$0")/lib.sh"

fake=$TMP/root
make_pki "$TMP/pki"
mkdir -p "$fake/etc/pgweir/tls" "$fake/etc/pgweir/secrets" "$fake/run/secrets/pgweir-tls" \
  "$fake/run/secrets/pgweir-users" "$fake/run/secrets/postgres" "$fake/run/pgweir"
userlist='"appuser" "app-password"
"backupuser" "backup-password"
"temporaluser" "temporal-password"'
for tls_dir in "$fake/etc/pgweir/tls" "$fake/run/secrets/pgweir-tls"; do
  cp "$TMP/pki/server.crt" "$tls_dir/server.crt"
  cp "$TMP/pki/server.key" "$tls_dir/server.key"
done
cp "$TMP/pki/server.crt" "$fake/run/secrets/pgweir-tls/tls.crt"
cp "$TMP/pki/server.key" "$fake/run/secrets/pgweir-tls/tls.key"
cp "$TMP/pki/server.crt" "$fake/run/secrets/pgweir_tls_cert"
cp "$TMP/pki/server.key" "$fake/run/secrets/pgweir_tls_key"
cp "$TMP/pki/ca.crt" "$fake/run/secrets/postgres_ca_bundle"
echo "$userlist" >"$fake/etc/pgweir/userlist.txt"
echo "$userlist" >"$fake/run/secrets/pgweir_userlist"
echo "$userlist" >"$fake/run/secrets/pgweir-users/userlist.txt"
echo "app-password" >"$fake/etc/pgweir/secrets/appuser_password"
echo "temporal-password" >"$fake/run/secrets/temporaluser_password"
echo "postgres-password" >"$fake/run/secrets/postgres_password"
echo "postgres-password" >"$fake/run/secrets/postgres/password"

# relocate FILE: sets RELOCATED to a copy with /run/… and /etc/pgweir/… moved under $fake.
relocate() {
  RELOCATED=$TMP/$(basename "$(dirname "$1")")-$(basename "$1")
  sed -e "s#\([\"=-]\)/run/#\1$fake/run/#g" -e "s#\([\"=-]\)/etc/pgweir/#\1$fake/etc/pgweir/#g" "$1" >"$RELOCATED"
  local missed
  missed=$(grep -vE '^[[:space:]]*#' "$RELOCATED" | sed 's/#.*//' | grep -E '[^a-z]/run/|[^a-z]/etc/pgweir/' || true)
  [[ -z $missed ]] || fail "$1 names a /run or /etc/pgweir path the test does not relocate: $missed"
}

expect_check "config/pgweir.toml" "$ROOT/config/pgweir.toml"

examples=("$ROOT"/config/examples/*.toml)
[[ ${#examples[@]} -ge 3 ]] || fail "expected at least 3 examples in config/examples, found ${#examples[@]}"
for example in "${examples[@]}"; do
  relocate "$example"
  expect_check "examples/$(basename "$example")" "$RELOCATED" POSTGRES_HOST=db.internal
done

relocate "$ROOT/docker/pgweir.toml"
docker_config=$RELOCATED
expect_check "docker/pgweir.toml (defaults)" "$docker_config" POSTGRES_HOST=postgres
expect_check "docker/pgweir.toml (client TLS on)" "$docker_config" POSTGRES_HOST=postgres PGWEIR_TLS_MODE=require \
  PGWEIR_POOL_MODE=session PGWEIR_LOG_LEVEL=debug POSTGRES_SSLMODE=require

# The ConfigMap in docker/k8s-sidecar.yaml is config/examples/k8s-sidecar.toml, comments aside.
awk '/^  pgweir.toml: \|/ {on=1; next} on && /^---/ {exit} on {sub(/^    /, ""); print}' \
  "$ROOT/docker/k8s-sidecar.yaml" >"$TMP/configmap.toml"
strip() { sed -e 's/[[:space:]]*#.*$//' -e '/^[[:space:]]*$/d' "$1"; }
if ! diff <(strip "$TMP/configmap.toml") <(strip "$ROOT/config/examples/k8s-sidecar.toml") >"$TMP/configmap.diff"; then
  fail "the ConfigMap in docker/k8s-sidecar.yaml differs from config/examples/k8s-sidecar.toml: $(cat "$TMP/configmap.diff")"
else
  echo "ok: k8s-sidecar.yaml ConfigMap matches the example"
fi

# The checks above can fail: the same configs without their environment or their secrets do not pass.
expect_check_fails "docker/pgweir.toml without POSTGRES_HOST" "$docker_config" "POSTGRES_HOST" -u POSTGRES_HOST
relocate "$ROOT/config/examples/k8s-sidecar.toml"
expect_check_fails "k8s-sidecar.toml without POSTGRES_HOST" "$RELOCATED" "POSTGRES_HOST" -u POSTGRES_HOST
rm "$fake/run/secrets/temporaluser_password"
relocate "$ROOT/config/examples/multi-db.toml"
expect_check_fails "multi-db.toml without its password file" "$RELOCATED" "temporaluser_password"
finish
