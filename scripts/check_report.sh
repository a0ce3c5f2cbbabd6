#!/usr/bin/env bash
# Must-shows of the report issue, checked as a person would:
# 1. trains keras-cnn (by default on MNIST for 3 epochs) with --report and
#    --tensorboard, screenshots report.html in headless Chromium, and checks report.json
#    against `nabla evaluate --confusion` (scripts/check_report.py);
# 2. reads the TensorBoard event files back with the `tensorboard` package and compares
#    them with history.json.
#
# usage: scripts/check_report.sh [WORK_DIR]      (default /tmp/nabla-report-check)
# env:   DATASET (mnist), EPOCHS (3), MODEL (keras-cnn; autoencoder or conv-autoencoder
#        for their page, screenshotted only), EXTRA (more train flags),
#        SKIP_TRAIN=1 to check an existing WORK_DIR/run.
# Installs Chromium (apt) and a venv with tensorboard (pip, /tmp/nabla-tb-venv) if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export NABLA_DATA="${NABLA_DATA:-$(cd .. && pwd)/shared/data}"
WORK="${1:-/tmp/nabla-report-check}"
DATASET="${DATASET:-mnist}"
EPOCHS="${EPOCHS:-3}"
MODEL="${MODEL:-keras-cnn}"
RUN="$WORK/run"
TB="$WORK/tb"
SHOT="$WORK/report.png"
mkdir -p "$WORK"

cargo build --release --quiet
NABLA=./target/release/nabla
if [ "${SKIP_TRAIN:-0}" != 1 ]; then
    rm -rf "$RUN" "$TB"
    # shellcheck disable=SC2086
    "$NABLA" train --model "$MODEL" --dataset "$DATASET" --epochs "$EPOCHS" \
        --validation-split 0.1 --seed 1 --report --tensorboard "$TB" --out "$RUN" ${EXTRA:-}
fi
# An autoencoder run (MODEL=autoencoder or conv-autoencoder) has no classes to confuse:
# its page (reconstructions, generated images, code space) is only screenshotted.
AUTOENCODER=0
case "$MODEL" in autoencoder | conv-autoencoder) AUTOENCODER=1 ;; esac
if [ "$AUTOENCODER" = 0 ]; then
    "$NABLA" evaluate "$RUN" --confusion
    "$NABLA" evaluate "$RUN" --confusion --json > "$WORK/evaluate.json"
fi

if ! command -v chromium > /dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null
fi
# The flags keep Chromium off the network (there is none) and out of the user's profile.
PROFILE="$(mktemp -d)"
chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --disable-quic \
    --user-data-dir="$PROFILE" --hide-scrollbars --window-size=1400,6400 \
    --screenshot="$SHOT" "file://$(realpath "$RUN/report/report.html")" 2> "$WORK/chromium.log"
rm -rf "$PROFILE"
test -s "$SHOT"
echo "screenshot: $SHOT"
if [ "$AUTOENCODER" = 1 ]; then
    exit 0
fi

VENV=/tmp/nabla-tb-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import tensorboard" 2> /dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q tensorboard
fi
"$VENV/bin/python" scripts/check_report.py "$RUN" "$TB" "$WORK/evaluate.json"
