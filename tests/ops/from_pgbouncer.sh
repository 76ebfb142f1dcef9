# `pgweir --from-pgbouncer` end to end: the converted fixture passes `pgweir --check` once the files it names
# exist (TLS files real, as --check loads them), and unreadable input is one clear line with exit 1.
source "$(dirname "$0")/lib.sh"

make_pki "$TMP/files"
mkdir -p "$TMP/ssl"
cp "$TMP/files/ca.crt" "$TMP/ssl/db-ca.pem"
cp "$TMP/files/ca.crt" "$TMP/ssl/analytics-ca.pem"
printf '"pgbouncer" "secret"\n"appuser" "apppass"\n' >"$TMP/files/userlist.txt"
echo "host all all 0.0.0.0/0 scram-sha-256" >"$TMP/files/pg_hba.conf"
sed -e "s#@DIR@#$TMP/files#g" -e "s#/etc/ssl/#$TMP/ssl/#g" "$(dirname "$0")/data/pgbouncer.ini" >"$TMP/pgbouncer.ini"

if ! "$PGWEIR" --from-pgbouncer "$TMP/pgbouncer.ini" >"$TMP/pgweir.toml" 2>"$TMP/stderr"; then
  fail "--from-pgbouncer exited non-zero: $(cat "$TMP/stderr")"
else
  for expected in '[databases.appdb]' '[databases."*"]' '[users.backupuser]' 'size = 30' \
    '# pgbouncer: logfile = /var/log/pgbouncer/pgbouncer.log (no equivalent: '; do
    grep -qF -- "$expected" "$TMP/pgweir.toml" || fail "converted config lacks: $expected"
  done
  [[ -s "$TMP/stderr" ]] && fail "--from-pgbouncer wrote to stderr: $(cat "$TMP/stderr")"
  expect_check "converted pgbouncer.ini" "$TMP/pgweir.toml"
fi

status=0
out=$("$PGWEIR" --from-pgbouncer "$TMP/missing.ini" 2>&1) || status=$?
[[ $status -eq 1 ]] || fail "missing file: expected exit 1, got $status"
[[ $(wc -l <<<"$out") -eq 1 && $out == *"cannot read $TMP/missing.ini"* ]] || fail "missing file: unclear message: $out"

status=0
out=$("$PGWEIR" --from-pgbouncer 2>&1) || status=$?
[[ $status -eq 1 ]] || fail "no file name: expected exit 1, got $status"
finish
