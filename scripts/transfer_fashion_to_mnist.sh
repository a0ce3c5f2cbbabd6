#!/usr/bin/env bash
# Issue 15, must-show 1: does transfer beat scratch on real data? A base trained on
# Fashion-MNIST, transferred to MNIST with only 100 training images per class (drawn
# with the seed), against the same architecture from scratch on those 1,000 images;
# each MNIST run 20 epochs, seeds 1-3, accuracy on the whole MNIST test set (10,000
# images). Every transferred model gets a new, freshly initialized top (--init-until),
# as a Keras user gives a base from include_top=False.
# Usage: NABLA_DATA=... scripts/transfer_fashion_to_mnist.sh [MODEL] [OUT]
# MODEL: keras-cnn (default; the README's table) or resnet20.
set -euo pipefail
NABLA=${NABLA:-target/release/nabla}
MODEL=${1:-keras-cnn}
OUT=${2:-runs/transfer-$MODEL}
case "$MODEL" in
  keras-cnn)
    # Base: 6 epochs with shifts, rotations and zooms (features less tied to where
    # and how large a garment is). Feature extraction keeps the base's first two conv
    # blocks (generic strokes and edges; its last block is the most clothing-specific)
    # frozen under a new conv2d_2 + dense top; fine-tuning loads the whole base, gives
    # it a new dense top and trains from conv2d_2 on.
    base=(--epochs 6 --augment shift=0.1,rotate=10,scale=0.1)
    fe=(--init-until max_pooling2d_1 --freeze-until max_pooling2d_1)
    ft=(--init-until flatten --fine-tune-from conv2d_2)
    ;;
  resnet20)
    # Base: 3 epochs (the recipe: SGD momentum, lr 0.1). Feature extraction: the
    # pooled 64 features frozen, a new linear top; fine-tuning: the last stage and a
    # new top train, at a tenth of the lr.
    base=(--epochs 3)
    fe=(--init-until avg_pool --freeze-until avg_pool)
    ft=(--init-until avg_pool --fine-tune-from conv4_block1_proj_conv --lr 0.01)
    ;;
  *)
    echo "unknown MODEL '$MODEL' (keras-cnn or resnet20)" >&2
    exit 2
    ;;
esac
mkdir -p "$OUT"
run() { "$NABLA" --threads 2 train --json "$@" | sed -n 's/.*"accuracy":\([0-9.]*\).*/\1/p' | head -1; }
if [ ! -f "$OUT/base/weights.safetensors" ]; then
  "$NABLA" --threads 2 train --model "$MODEL" --dataset fashion-mnist --seed 0 "${base[@]}" \
    --out "$OUT/base"
fi
echo "seed scratch feature_extraction fine_tuning"
for seed in 1 2 3; do
  common=(--model "$MODEL" --dataset mnist --per-class 100 --epochs 20 --seed "$seed")
  scratch=$(run "${common[@]}" --out "$OUT/scratch-$seed")
  fe_acc=$(run "${common[@]}" --init-from "$OUT/base" "${fe[@]}" --out "$OUT/fe-$seed")
  ft_acc=$(run "${common[@]}" --init-from "$OUT/base" "${ft[@]}" --out "$OUT/ft-$seed")
  echo "$seed $scratch $fe_acc $ft_acc"
done
