#!/usr/bin/env bash
# Fuzzes every parser of untrusted input (IDX, CIFAR-10 batches and archive, safetensors,
# PyTorch .pth,
# model.json, CSV, NPY/NPZ, MAT, PNG/JPEG images, label<TAB>text files, saved
# vocabularies) with libFuzzer through cargo-fuzz, a bounded time per target. The corpus
# kept in the repository (fuzz/corpus/<target>) is where each run starts; a crash stops
# the script with the input saved under fuzz/artifacts/<target>/ and the command that
# replays it.
#
# usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#        (default: 20 seconds for each of the targets `cargo fuzz list` gives)
# env:   FUZZ_KEEP=1   add the new inputs libFuzzer finds to fuzz/corpus (to commit
#                      after a long run; `cargo +nightly fuzz cmin TARGET` shrinks it);
#                      by default they go to a temporary folder and the tree stays clean.
#        FUZZ_SEED=N  libFuzzer's random seed (default: a new one each run). CI sets it so
#                      that a red run is reproducible and a green one is not luck: the same
#                      corpus, binary and seed explore the same inputs in the same order.
#
# Needs the nightly toolchain and cargo-fuzz; both are installed here when missing.
# Built without a sanitizer (the parsers are safe Rust) but with debug assertions, so
# integer overflow panics instead of wrapping. Limits: a single allocation over 1.5 GB,
# RSS over 2.5 GB or an input taking 10 s counts as a failure.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_PER=${1:-20}
shift || true
cd "$ROOT/fuzz"

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
FUZZ=(cargo +nightly fuzz)
OPTS=(--sanitizer none --debug-assertions)

TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || mapfile -t TARGETS < <("${FUZZ[@]}" list)
"${FUZZ[@]}" build "${OPTS[@]}"

for t in "${TARGETS[@]}"; do
  seeds="$ROOT/fuzz/corpus/$t"
  mkdir -p "$seeds"
  if [ "${FUZZ_KEEP:-0}" = 1 ]; then
    dirs=("$seeds")
  else
    work=$(mktemp -d "/tmp/nabla-fuzz-$t.XXXXXX")
    dirs=("$work" "$seeds")
  fi
  echo "== $t: ${SECONDS_PER}s from $(ls "$seeds" | wc -l) corpus inputs"
  # libFuzzer's log is long; keep the summary lines and anything about a failure.
  set +e
  "${FUZZ[@]}" run "${OPTS[@]}" "$t" "${dirs[@]}" -- \
    -max_total_time="$SECONDS_PER" -timeout=10 -rss_limit_mb=2560 -malloc_limit_mb=1536 \
    -print_final_stats=1 ${FUZZ_SEED:+-seed="$FUZZ_SEED"} 2>&1 |
    grep -E '^(#[0-9]+ *DONE|stat::number_of_executed_units|stat::peak_rss)|panicked|ERROR|SUMMARY|Test unit written|^thread'
  rc=${PIPESTATUS[0]}
  set -e
  [ "${FUZZ_KEEP:-0}" = 1 ] || rm -rf "$work"
  if [ "$rc" -ne 0 ]; then
    echo "fuzz target $t failed (exit $rc); replay the input named above:" \
      "cd fuzz && cargo +nightly fuzz run ${OPTS[*]} $t artifacts/$t/<file>" >&2
    exit 1
  fi
done
