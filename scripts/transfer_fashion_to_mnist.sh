#!/usr/bin/env bash
# Issue 15, must-show 1: does transfer beat scratch on real data? A keras-cnn base trained
# on Fashion-MNIST (3 epochs, seed 0), transferred to MNIST with only 100 training
# images per class (drawn with the seed), against the same architecture from scratch on
# those 1,000 images; each setting 20 epochs, seeds 1-3, accuracy on the whole MNIST
# test set (10,000 images). Usage: NABLA_DATA=... scripts/transfer_fashion_to_mnist.sh [OUT]
set -euo pipefail
NABLA=${NABLA:-target/release/nabla}
OUT=${1:-runs/transfer}
mkdir -p "$OUT"
run() { "$NABLA" --threads 2 train --json "$@" | sed -n 's/.*"accuracy":\([0-9.]*\).*/\1/p' | head -1; }
if [ ! -f "$OUT/base/weights.safetensors" ]; then
  "$NABLA" --threads 2 train --model keras-cnn --dataset fashion-mnist --epochs 3 --seed 0 \
    --out "$OUT/base"
fi
echo "seed scratch feature_extraction fine_tuning all_from_base"
for seed in 1 2 3; do
  common=(--model keras-cnn --dataset mnist --per-class 100 --epochs 20 --seed "$seed")
  scratch=$(run "${common[@]}" --out "$OUT/scratch-$seed")
  # Feature extraction: the convolutional base frozen, the dense top trains.
  fe=$(run "${common[@]}" --init-from "$OUT/base" --freeze-until flatten --out "$OUT/fe-$seed")
  # Fine-tuning: the last conv block and the top train, at a lower learning rate.
  ft=$(run "${common[@]}" --init-from "$OUT/base" --fine-tune-from conv2d_2 --lr 0.0005 \
    --out "$OUT/ft-$seed")
  # Every layer starts from the base, none frozen.
  all=$(run "${common[@]}" --init-from "$OUT/base" --out "$OUT/all-$seed")
  echo "$seed $scratch $fe $ft $all"
done
