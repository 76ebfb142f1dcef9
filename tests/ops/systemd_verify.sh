# The systemd unit passes `systemd-analyze verify` without a single complaint (it exits 0 on unknown or
# malformed settings, so its output is checked too), and the sysusers/tmpfiles snippets apply to an empty root.
source "$(dirname "$0")/lib.sh"
command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed (apt-get install systemd)"

# verify resolves ExecStart: point it at the built binary.
sed "s#/usr/bin/pgweir#$PGWEIR#g" "$ROOT/systemd/pgweir.service" >"$TMP/pgweir.service"
if ! out=$(systemd-analyze verify "$TMP/pgweir.service" 2>&1); then
  fail "systemd-analyze verify exited non-zero: $out"
elif grep -q "pgweir.service" <<<"$out"; then
  fail "systemd-analyze verify complains: $out"
else
  echo "ok: systemd-analyze verify"
fi

unit="$ROOT/systemd/pgweir.service"
for line in "Type=notify" "NotifyAccess=main" "ExecStart=/usr/bin/pgweir -c /etc/pgweir/pgweir.toml" \
  'ExecReload=/bin/kill -HUP $MAINPID' "WatchdogSec=30" "Restart=on-failure" "LimitNOFILE=65536" \
  "User=pgweir" "Group=pgweir" "ProtectSystem=strict" "CapabilityBoundingSet=" "RuntimeDirectory=pgweir" \
  "ConfigurationDirectory=pgweir" "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" "NoNewPrivileges=yes"; do
  grep -qxF -- "$line" "$unit" || fail "pgweir.service lacks the line: $line"
done

if command -v systemd-sysusers >/dev/null && command -v systemd-tmpfiles >/dev/null; then
  mkdir -p "$TMP/root/etc"
  if ! out=$(systemd-sysusers --root="$TMP/root" "$ROOT/systemd/pgweir.sysusers.conf" 2>&1); then
    fail "systemd-sysusers: $out"
  elif ! grep -q '^pgweir:' "$TMP/root/etc/passwd"; then
    fail "systemd-sysusers created no pgweir user"
  elif ! out=$(systemd-tmpfiles --root="$TMP/root" --create "$ROOT/systemd/pgweir.tmpfiles.conf" 2>&1); then
    fail "systemd-tmpfiles: $out"
  elif [[ ! -d "$TMP/root/etc/pgweir/secrets" ]]; then
    fail "systemd-tmpfiles created no /etc/pgweir/secrets"
  else
    echo "ok: sysusers and tmpfiles"
  fi
fi
finish
