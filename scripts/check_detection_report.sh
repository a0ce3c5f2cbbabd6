#!/usr/bin/env bash
# Must-shows 2-4 of the detection issue, checked as a person would:
# trains tiny-yolo on mnist-detect with --report (the plain recipe), scores it with
# `nabla evaluate` (COCO results JSON), draws one test canvas with `nabla detect`, and
# screenshots the report page in headless Chromium.
#
# usage: scripts/check_detection_report.sh [WORK_DIR]   (default /tmp/nabla-detection-check)
# env:   SKIP_TRAIN=1 to check an existing WORK_DIR/run; EXTRA (more train flags).
set -euo pipefail
cd "$(dirname "$0")/.."
export NABLA_DATA="${NABLA_DATA:-$(cd .. && pwd)/shared/data}"
WORK="${1:-/tmp/nabla-detection-check}"
RUN="$WORK/run"
SHOT="$WORK/report.png"
mkdir -p "$WORK"

cargo build --release --quiet
NABLA=./target/release/nabla
if [ "${SKIP_TRAIN:-0}" != 1 ]; then
    rm -rf "$RUN"
    # shellcheck disable=SC2086
    "$NABLA" train --model tiny-yolo --dataset mnist-detect --report --out "$RUN" ${EXTRA:-}
fi
"$NABLA" evaluate "$RUN"
CANVAS="$(ls "${NABLA_CACHE:-$HOME/.cache/nabla}"/mnist-detect/*/test-*/images/000001.png | head -1)"
"$NABLA" detect "$RUN" "$CANVAS" --out "$WORK/detect"

if ! command -v chromium > /dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null
fi
# The flags keep Chromium off the network (there is none) and out of the user's profile.
PROFILE="$(mktemp -d)"
chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --disable-quic \
    --user-data-dir="$PROFILE" --hide-scrollbars --window-size=1400,4200 \
    --screenshot="$SHOT" "file://$(realpath "$RUN/report/report.html")" 2> "$WORK/chromium.log"
rm -rf "$PROFILE"
test -s "$SHOT"
echo "screenshot: $SHOT"
echo "detections drawn: $WORK/detect/000001.detections.png"
# Any COCO tool scores the same files: pycocotools, if it is installed.
PY="${PYTHON:-python3}"
if "$PY" -c "import pycocotools" 2> /dev/null; then
    "$PY" scripts/rescore_coco.py "$RUN"
fi
