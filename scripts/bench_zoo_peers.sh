#!/usr/bin/env bash
# nabla vs PyTorch on the zoo's small-image nets (issue "Speed 2"), 2 threads, Fashion-MNIST
# 1x28x28, batch 128, Adam 1e-3, one machine, in one sitting: per round, nabla (A), nabla
# without layer fusion (B, `--no-fusion`), PyTorch eager (C) and PyTorch channels-last (D),
# so drift of a shared machine hits all alike; then the medians and the median per-round
# ratios of training img/s and batch-1000 inference img/s.
#
# usage: scripts/bench_zoo_peers.sh [ROUNDS] [MODEL...]
#        (default 3 rounds of resnet20 se-resnet20 vgg-small inception-mini; also resnet32,
#        resnet56)
# env:   PEERS_VENV (default /tmp/peers-venv, torch + numpy), NABLA_DATA, STEPS (default
#        50 measured steps after 20 warm-up, both frameworks), THREADS (default 2), OUT
#        (raw JSON; default a new folder under /tmp). PyTorch's resnets come from
#        ../shared/peers/bench_torch_resnet.py, the others from scripts/peers/bench_torch_zoo.py.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${1:-3}
shift || true
MODELS=("$@")
[ ${#MODELS[@]} -gt 0 ] || MODELS=(resnet20 se-resnet20 vgg-small inception-mini)
PY=${PEERS_VENV:-/tmp/peers-venv}/bin/python
export NABLA_DATA=${NABLA_DATA:-$ROOT/../shared/data}
STEPS=${STEPS:-50}
THREADS=${THREADS:-2}
OUT=${OUT:-$(mktemp -d /tmp/bench-zoo.XXXXXX)}
mkdir -p "$OUT"
"$PY" -c 'import torch, numpy' 2>/dev/null || { echo "$PY lacks torch or numpy" >&2; exit 2; }
(cd "$ROOT" && cargo build --release --quiet)
NABLA="$ROOT/target/release/nabla"
load() { local a; read -r a _ < /proc/loadavg; echo "load $a"; }

peer() { # MODEL [--channels-last]
  local m=$1; shift
  case "$m" in
    resnet*) DATA="$NABLA_DATA/fashion-mnist" OMP_NUM_THREADS=$THREADS "$PY" \
      "$ROOT/../shared/peers/bench_torch_resnet.py" --depth "${m#resnet}" --steps "$STEPS" \
      --threads "$THREADS" "$@" ;;
    *) OMP_NUM_THREADS=$THREADS "$PY" "$ROOT/scripts/peers/bench_torch_zoo.py" --model "$m" \
      --steps "$STEPS" --threads "$THREADS" "$@" ;;
  esac | sed -n 's/^RESULT //p'
}
for model in "${MODELS[@]}"; do
  for round in $(seq 1 "$ROUNDS"); do
    for variant in nabla nabla-unfused eager channels-last; do
      echo "[$model round $round] $variant ($(load))" >&2
      case $variant in
        nabla) "$NABLA" --threads "$THREADS" bench model "$model" --dataset fashion-mnist \
          --batch-size 128 --steps "$STEPS" --profile-steps 0 --json | tail -n 1 ;;
        nabla-unfused) "$NABLA" --threads "$THREADS" bench model "$model" --no-fusion \
          --dataset fashion-mnist --batch-size 128 --steps "$STEPS" --profile-steps 0 --json \
          | tail -n 1 ;;
        eager) peer "$model" ;;
        channels-last) peer "$model" --channels-last ;;
      esac > "$OUT/$model.$round.$variant.json"
    done
  done
done
"$PY" - "$OUT" "$ROUNDS" "${MODELS[@]}" <<'PYEOF'
import json, statistics, sys
out, rounds, models = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
vs = ["nabla", "nabla-unfused", "eager", "channels-last"]
print("| model | metric | nabla | nabla unfused | PyTorch eager | PyTorch channels-last | nabla/unfused | nabla/eager | nabla/channels-last |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for m in models:
    runs = {v: [json.load(open("%s/%s.%d.%s.json" % (out, m, r, v))) for r in range(1, rounds + 1)] for v in vs}
    for key, label in [("train_img_per_s", "train img/s"), ("infer_b1000_img_per_s", "b1000 img/s")]:
        med = lambda v: statistics.median(r[key] for r in runs[v])
        ratio = lambda v: statistics.median(a[key] / b[key] for a, b in zip(runs["nabla"], runs[v]))
        print("| %s | %s | %.0f | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f |" % (
            m, label, med("nabla"), med("nabla-unfused"), med("eager"), med("channels-last"),
            ratio("nabla-unfused"), ratio("eager"), ratio("channels-last")))
print("\nmedians over %d rounds; ratios are medians of the per-round ratios" % rounds)
PYEOF
