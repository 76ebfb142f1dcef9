#!/usr/bin/env bash
# Builds pgweir and runs its whole test suite (unit + integration against a real PostgreSQL 15).
# Usage: scripts/run-tests.sh [--release]   (default: Debug with ASan/UBSan in build/asan)
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

build_type=Debug
build_dir=build/asan
sanitize=ON
for arg in "$@"; do
  case "$arg" in
    --release) build_type=Release; build_dir=build/release; sanitize=OFF ;;
    -h|--help) echo "usage: $0 [--release]"; exit 0 ;;
    *) echo "$0: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

root=$(pgweir_repo_root)
cd "$root"
pgweir_install_packages
pgweir_setup_path

cmake -S . -B "$build_dir" -G Ninja \
  -DCMAKE_BUILD_TYPE="$build_type" -DPGWEIR_SANITIZE="$sanitize" -DPGWEIR_TESTS=ON
cmake --build "$build_dir" -j"$(nproc)"

# Fuzz targets (tests/fuzz, clang libFuzzer): PGWEIR_FUZZ_SECONDS per target when set (.ci/run sets 60);
# unset, they are not built. They run before ctest so that ctest's summary closes the output.
if [[ -n "${PGWEIR_FUZZ_SECONDS:-}" ]]; then
  tests/fuzz/run.sh "$PGWEIR_FUZZ_SECONDS"
fi

# Each integration test executable runs its own PostgreSQL cluster and pgweir on random free ports,
# so two test processes at once do not collide.
set +e
ctest --test-dir "$build_dir" --output-on-failure -j2
status=$?
set -e
exit "$status"
