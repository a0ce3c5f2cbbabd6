#!/usr/bin/env bash
# nabla vs PyTorch on the same MNIST nets, 2 threads, one machine, in one run.
#
# For each model, runs `nabla bench model` (A), PyTorch eager (B) and PyTorch eager
# channels-last (C) in turn, ROUNDS times (A B C A B C ...), so slow drift of a shared
# machine hits every framework alike, then prints the medians and the median per-round
# ratios nabla/PyTorch of training img/s, inference img/s at batch 1000, batch-1 latency
# and peak RSS. Ratios above 1 mean nabla is faster for img/s, slower for latency, and
# heavier for RSS.
#
# usage: scripts/bench_peers.sh [ROUNDS] [MODEL...]
#        (default: 3 rounds, so the median is one real run, of keras-cnn,
#        simple-convnet and deep-convnet)
# env:   PEERS_VENV   virtualenv with torch and numpy (default /tmp/peers-venv)
#        PEERS_DIR    folder of bench_torch.py and common.py (default ../shared/peers
#                     beside the repository)
#        NABLA_DATA   MNIST folder (default ../shared/data beside the repository)
#        STEPS        measure STEPS steps after the 20 warm-up steps instead of a full
#                     epoch (both frameworks train the same first (20 + STEPS) batches)
#        THREADS      worker threads for both (default 2)
#        OUT          where the raw JSON goes (default a new folder under /tmp)
#        WAIT_IDLE    before each run, wait up to this many seconds for no other
#                     runnable process (default 0: do not wait); the log shows the load
#        BASELINE     an earlier nabla binary (e.g. built from the commit before a
#                     change): it runs in every round beside the others, and the table
#                     gains the columns baseline and nabla/baseline (before vs after in
#                     one sitting, alternating rounds)
#
# The venv lives outside the repository and is never a dependency of the build or the
# tests. To create it (a few minutes, several GB: PyPI's torch wheel pulls CUDA
# libraries, unused on CPU):
#     python3 -m venv /tmp/peers-venv
#     /tmp/peers-venv/bin/pip install torch numpy
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${1:-3}
shift || true
MODELS=("$@")
[ ${#MODELS[@]} -gt 0 ] || MODELS=(keras-cnn simple-convnet deep-convnet)
PEERS_VENV=${PEERS_VENV:-/tmp/peers-venv}
PEERS_DIR=${PEERS_DIR:-$ROOT/../shared/peers}
export NABLA_DATA=${NABLA_DATA:-$ROOT/../shared/data}
THREADS=${THREADS:-2}
OUT=${OUT:-$(mktemp -d /tmp/bench-peers.XXXXXX)}
mkdir -p "$OUT"
PY="$PEERS_VENV/bin/python"

[ -x "$PY" ] || { echo "no python at $PY; create the venv (see the top of $0)" >&2; exit 2; }
[ -f "$PEERS_DIR/bench_torch.py" ] || { echo "no bench_torch.py in $PEERS_DIR" >&2; exit 2; }
"$PY" -c 'import torch, numpy' 2>/dev/null || { echo "$PY lacks torch or numpy" >&2; exit 2; }

# Build first: nothing compiles while anything is measured.
(cd "$ROOT" && cargo build --release --quiet)
NABLA="$ROOT/target/release/nabla"

# Best effort on a shared machine: other processes on the 2 cores slow PyTorch's OpenMP
# threads far more than nabla's, so quieter runs give fairer ratios.
# /proc/loadavg: 1-minute load, ..., runnable/total. Read with builtins so that no
# process of ours is counted as runnable but this shell.
runnable() { local a b c r; read -r a b c r _ < /proc/loadavg; echo "${r%/*}"; }
wait_idle() {
  local waited=0
  while [ "$waited" -lt "${WAIT_IDLE:-0}" ]; do
    [ "$(runnable)" -le 1 ] && return 0
    sleep 1
    waited=$((waited + 1))
  done
}
load() { local a; read -r a _ < /proc/loadavg; echo "load $a, runnable $(runnable)"; }

batch_of() { case "$1" in keras-cnn) echo 64 ;; *) echo 100 ;; esac; }

if [ -n "${STEPS:-}" ]; then span="$STEPS steps after 20 warm-up steps"; else span="full epochs"; fi
echo "results in $OUT; $ROUNDS rounds; $THREADS threads; $span" >&2
for model in "${MODELS[@]}"; do
  nabla_extra=(); torch_extra=()
  if [ -n "${STEPS:-}" ]; then
    nabla_extra=(--steps "$STEPS")
    torch_extra=(--train-limit $(( (20 + STEPS) * $(batch_of "$model") )))
  fi
  for round in $(seq 1 "$ROUNDS"); do
    wait_idle
    echo "[$model round $round] nabla ($(load))" >&2
    "$NABLA" --threads "$THREADS" bench model "$model" --json --profile-steps 0 "${nabla_extra[@]}" \
      | tail -n 1 > "$OUT/$model.$round.nabla.json"
    if [ -n "${BASELINE:-}" ]; then
      wait_idle
      echo "[$model round $round] nabla baseline $BASELINE ($(load))" >&2
      "$BASELINE" --threads "$THREADS" bench model "$model" --json --profile-steps 0 "${nabla_extra[@]}" \
        | tail -n 1 > "$OUT/$model.$round.baseline.json"
    fi
    for variant in eager eager-cl; do
      cl=(); [ "$variant" = eager-cl ] && cl=(--channels-last)
      wait_idle
      echo "[$model round $round] pytorch $variant ($(load))" >&2
      OMP_NUM_THREADS=$THREADS PEER_RESULTS_DIR="$OUT/peer-raw" "$PY" "$PEERS_DIR/bench_torch.py" \
        --model "$model" --threads "$THREADS" "${cl[@]}" "${torch_extra[@]}" \
        | sed -n 's/^RESULT //p' > "$OUT/$model.$round.$variant.json"
    done
  done
done

"$PY" - "$OUT" "$ROUNDS" "${MODELS[@]}" <<'PYEOF'
import json, os, statistics, sys
out, rounds, models = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
variants = ["nabla", "eager", "eager-cl"]
if os.path.exists("%s/%s.1.baseline.json" % (out, models[0])):
    variants.append("baseline")
metrics = [("train_img_per_s", "train img/s", "%.0f"),
           ("train_img_per_s_median_step", "train img/s, median step", "%.0f"),
           ("infer_b1000_img_per_s", "b1000 img/s", "%.0f"),
           ("b1_latency_ms_median", "b1 latency ms (median)", "%.3f"),
           ("b1_latency_ms_p90", "b1 latency ms (p90)", "%.3f"),
           ("peak_rss_mb_train", "peak RSS MiB", "%.0f"),
           ("acc_1ep", "test acc", "%.4f")]


def get(r, key):
    # The peer keeps its median-step rate per epoch.
    v = r.get(key)
    if v is None and r.get("epochs"):
        v = r["epochs"][0].get(key)
    return v
base = "baseline" in variants
print("| model | metric | nabla | PyTorch eager | PyTorch eager-cl | nabla/eager | nabla/eager-cl |"
      + (" baseline | nabla/baseline |" if base else ""))
print("|---|---|---:|---:|---:|---:|---:|" + ("---:|---:|" if base else ""))
for m in models:
    runs = {v: [json.load(open("%s/%s.%d.%s.json" % (out, m, r, v))) for r in range(1, rounds + 1)]
            for v in variants}
    for key, label, fmt in metrics:
        def med(v):
            xs = [get(r, key) for r in runs[v] if get(r, key) is not None]
            return fmt % statistics.median(xs) if xs else "-"
        def ratio(v):
            xs = [get(a, key) / get(b, key) for a, b in zip(runs["nabla"], runs[v])
                  if get(a, key) and get(b, key)]
            return "%.3g" % statistics.median(xs) if xs else "-"
        r1 = ratio("eager") if key != "acc_1ep" else ""
        r2 = ratio("eager-cl") if key != "acc_1ep" else ""
        row = "| %s | %s | %s | %s | %s | %s | %s |" % (m, label, med("nabla"), med("eager"), med("eager-cl"), r1, r2)
        if base:
            row += " %s | %s |" % (med("baseline"), ratio("baseline") if key != "acc_1ep" else "")
        print(row)
print("\nmedians over %d rounds; ratios are medians of the per-round ratios" % rounds)
PYEOF
