#!/usr/bin/env bash
# Builds pgweir's libFuzzer targets into build/fuzz and runs each for SECONDS (default 60), two at a time, on a
# temporary copy of its seed corpus with its dictionary. Exits non-zero on any crash, leak, timeout or OOM and prints
# the saved input. SECONDS=0 only replays the committed seeds (a quick regression check).
#   tests/fuzz/run.sh [SECONDS] [TARGET...]
# Environment: CXX (default clang++), PGWEIR_FUZZ_BUILD (build dir), PGWEIR_FUZZ_JOBS (parallel targets, default 2),
#   PGWEIR_FUZZ_TIMEOUT (seconds one input may take, default 10), PGWEIR_FUZZ_ARGS (extra libFuzzer flags),
#   PGWEIR_FUZZ_KEEP_CORPUS=1 (copy inputs found back into tests/fuzz/corpus — review before committing).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${PGWEIR_FUZZ_BUILD:-$root/build/fuzz}
jobs_max=${PGWEIR_FUZZ_JOBS:-2}
per_input_timeout=${PGWEIR_FUZZ_TIMEOUT:-10}
extra_args=${PGWEIR_FUZZ_ARGS:-}

seconds=60
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi

generator=()
if [[ ! -f $build/CMakeCache.txt ]] && command -v ninja >/dev/null; then generator=(-G Ninja); fi
cmake -S "$here" -B "$build" "${generator[@]}" -DCMAKE_CXX_COMPILER="${CXX:-clang++}" >/dev/null
cmake --build "$build" -j"${PGWEIR_FUZZ_BUILD_JOBS:-$(nproc)}"

if [[ $# -gt 0 ]]; then
  targets=("$@")
else
  mapfile -t targets < <(grep -v '^$' "$build/fuzz_targets.txt")
fi

# Longest input worth generating per target: a few messages, a startup packet just over its limit, a config file.
max_len_of() {
  case $1 in
    fuzz_startup) echo 10240 ;;
    fuzz_framing | fuzz_backend_messages | fuzz_config) echo 4096 ;;
    fuzz_hba) echo 2048 ;;
    fuzz_scram | fuzz_users_file) echo 1024 ;;  # users_file: each plain password costs a PBKDF2 derivation
    fuzz_console) echo 512 ;;
    *) echo 4096 ;;
  esac
}

work=$(mktemp -d "${TMPDIR:-/tmp}/pgweir-fuzz.XXXXXX")
echo "working directory: $work"

run_target() {
  local t=$1 dir=$work/$1
  local bin=$build/$t
  mkdir -p "$dir/corpus" "$dir/artifacts"
  if [[ -d $here/corpus/$t ]]; then cp "$here/corpus/$t"/* "$dir/corpus/" 2>/dev/null || true; fi
  local args=(-artifact_prefix="$dir/artifacts/" -timeout="$per_input_timeout" -rss_limit_mb=2048
              -max_len="$(max_len_of "$t")" -print_final_stats=1)
  [[ -f $here/dict/$t.dict ]] && args+=(-dict="$here/dict/$t.dict")
  if [[ $seconds -eq 0 ]]; then
    args+=(-runs=0)
  else
    args+=(-max_total_time="$seconds")
  fi
  # shellcheck disable=SC2086  # PGWEIR_FUZZ_ARGS is a list of flags
  set +e
  "$bin" "${args[@]}" $extra_args "$dir/corpus" >"$dir/log" 2>&1
  echo $? >"$dir/rc"
  set -e
}

for t in "${targets[@]}"; do
  if [[ ! -x $build/$t ]]; then
    echo "no such fuzz target: $t (built: $(tr '\n' ' ' <"$build/fuzz_targets.txt"))" >&2
    exit 2
  fi
done

for t in "${targets[@]}"; do
  while [[ $(jobs -rp | wc -l) -ge $jobs_max ]]; do wait -n || true; done
  echo "running $t for ${seconds}s"
  run_target "$t" &
done
wait

failed=0
printf '\n%-24s %-6s %12s %8s %8s\n' target result execs cov corpus
for t in "${targets[@]}"; do
  dir=$work/$t
  rc=$(cat "$dir/rc" 2>/dev/null || echo 99)
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$dir/log" | awk '{print $2}' | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$dir/log" | tail -1 | awk '{print $2}')
  corpus=$(find "$dir/corpus" -type f | wc -l)
  result=ok
  [[ $rc -ne 0 ]] && result=FAIL && failed=1
  printf '%-24s %-6s %12s %8s %8s\n' "$t" "$result" "${execs:-?}" "${cov:-?}" "$corpus"
done

for t in "${targets[@]}"; do
  dir=$work/$t
  [[ $(cat "$dir/rc" 2>/dev/null || echo 99) -eq 0 ]] && continue
  echo
  echo "=== $t failed (log: $dir/log)"
  grep -E 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)|runtime error|FUZZ_CHECK|SUMMARY' \
    "$dir/log" | head -5 || true
  while read -r artifact; do
    echo "crashing input: $artifact"
    echo "reproduce:      $build/$t $artifact"
  done < <(grep -oE 'Test unit written to [^ ]+' "$dir/log" | awk '{print $5}')
  [[ -n $(ls -A "$dir/artifacts") ]] || tail -20 "$dir/log"
done

if [[ ${PGWEIR_FUZZ_KEEP_CORPUS:-0} == 1 ]]; then
  for t in "${targets[@]}"; do
    mkdir -p "$here/corpus/$t"
    cp -n "$work/$t/corpus"/* "$here/corpus/$t/" 2>/dev/null || true
  done
fi

exit $failed
