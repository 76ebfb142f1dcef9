#!/usr/bin/env bash
# Builds the container image with podman (chroot isolation, no registry: the debian:bookworm-slim base is made
# locally with debootstrap) and checks what is inside by running its files in a chroot. Slow (compiles pgweir), so
# it is not part of the default test run: `ctest -L container` with -DPGWEIR_CONTAINER_TESTS=ON, or run it directly
# from the repository root. Needs root, podman and debootstrap (apt-get install podman debootstrap); exits 77
# (skipped) without them. PGWEIR_BUILD_JOBS (default 2) limits the compile jobs inside the build.
set -euo pipefail
cd "$(dirname "$0")/.."

image=localhost/pgweir:test
base=docker.io/library/debian:bookworm-slim
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
failures=0

[[ $(id -u) -eq 0 ]] || skip "needs root (debootstrap, chroot)"
for tool in podman debootstrap; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (apt-get install -y podman debootstrap)"
done

# 1. A local stand-in for debian:bookworm-slim, made once per machine.
if ! podman image exists "$base"; then
  rootfs=$(mktemp -d /tmp/pgweir-bookworm.XXXXXX)
  debootstrap --variant=minbase bookworm "$rootfs" >/tmp/pgweir-debootstrap.log 2>&1 ||
    { rm -rf "$rootfs"; echo "debootstrap failed; see /tmp/pgweir-debootstrap.log" >&2; exit 1; }
  tar -C "$rootfs" -c . | podman import - localhost/bookworm:base
  podman tag localhost/bookworm:base "$base"
  rm -rf "$rootfs"
fi

# 2. The image, built as a user would build it, without pulling.
podman build --format docker --pull=never --isolation chroot --network host --build-arg BUILD_JOBS="${PGWEIR_BUILD_JOBS:-2}" \
  -f docker/Dockerfile -t "$image" .

# 3. Its metadata.
inspect() { podman image inspect --format "$1" "$image"; }
[[ $(inspect '{{.Config.User}}') == pgweir:pgweir ]] || fail "image user is '$(inspect '{{.Config.User}}')', not pgweir"
[[ $(inspect '{{json .Config.Entrypoint}}') == '["/usr/bin/pgweir"]' ]] || fail "entrypoint: $(inspect '{{json .Config.Entrypoint}}')"
[[ $(inspect '{{json .Config.Cmd}}') == '["-c","/etc/pgweir/pgweir.toml"]' ]] || fail "cmd: $(inspect '{{json .Config.Cmd}}')"
for port in 6432/tcp 9127/tcp; do
  inspect '{{json .Config.ExposedPorts}}' | grep -q "\"$port\"" || fail "port $port is not exposed"
done
podman image inspect --format '{{json .Config.Healthcheck}}' "$image" 2>/dev/null | grep -q '127.0.0.1:9127/healthz' ||
  podman inspect "$image" | grep -q '127.0.0.1:9127/healthz' || fail "no HEALTHCHECK on /healthz"

# 4. Its files: mount it and run the binary in a chroot, with test secrets bind-mounted at /run/secrets.
root=$(podman image mount "$image")
secrets=$(mktemp -d /tmp/pgweir-secrets.XXXXXX)
cleanup() {
  umount "$root/run/secrets" 2>/dev/null || true
  podman image unmount "$image" >/dev/null 2>&1 || true
  rm -rf "$secrets"
}
trap cleanup EXIT

out=$(chroot "$root" /usr/bin/pgweir --version) || fail "pgweir --version failed in the image"
[[ $out == pgweir* ]] || fail "unexpected --version output: $out"
missing=$(chroot "$root" ldd /usr/bin/pgweir | grep 'not found' || true)
[[ -z $missing ]] || fail "shared libraries missing in the image: $missing"
for tool in g++ cc cmake; do
  chroot "$root" sh -c "command -v $tool" >/dev/null 2>&1 && fail "the runtime image contains $tool"
done
chroot "$root" sh -c 'command -v curl' >/dev/null || fail "no curl for the HEALTHCHECK"
[[ -r $root/usr/share/doc/pgweir/examples/single-app.toml ]] || fail "example configs are not in the image"

echo "secret" >"$secrets/postgres_password"
printf '"appuser" "app-password"\n' >"$secrets/pgweir_userlist"
chmod 755 "$secrets"
chmod 644 "$secrets"/*
if mount --bind "$secrets" "$root/run/secrets" 2>/dev/null; then
  # A container's environment: HOME from the image user's passwd entry, nothing of ours.
  out=$(chroot --userspec=pgweir:pgweir "$root" env -i HOME=/nonexistent PATH=/usr/bin:/bin POSTGRES_HOST=postgres \
    /usr/bin/pgweir --check -c /etc/pgweir/pgweir.toml 2>&1) || fail "--check of the image's config: $out"
  out=$(chroot --userspec=pgweir:pgweir "$root" env -i HOME=/nonexistent /usr/bin/pgweir --check -c /etc/pgweir/pgweir.toml 2>&1) &&
    fail "--check passed without POSTGRES_HOST"
  [[ $out == *POSTGRES_HOST* ]] || fail "--check without POSTGRES_HOST does not name it: $out"
else
  echo "note: cannot bind-mount test secrets; --check of the image's config skipped"
fi

if ((failures > 0)); then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "container image checks passed"
