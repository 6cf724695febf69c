#!/usr/bin/env bash
# Render a sample HTML report (a faulty op, an op with kinks, passing ops) and screenshot it
# in headless Chromium, to look at the page as a reader would (docs/html-report.md).
#   usage: docs/screenshot-report.sh [OUTDIR]      (default: gradverify-report/screenshot)
# Needs chromium (Debian: apt-get install chromium) and gradverify with the plots extra.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-gradverify-report/screenshot}"
mkdir -p "$out"
python3 -m gradverify check examples/custom_op/faulty/mysoftplus_faulty/ops.py \
    --ops 'MySoftplusFaulty,Abs,Square' --properties metadata,shapes,gradient,gradient_order2 \
    --examples 8 --mode full --seed 0 --jobs 2 --plain --quiet \
    --report-dir "$out" >/dev/null || true      # exit 1: the faulty op fails, as intended
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome)"
"$browser" --headless --no-sandbox --disable-gpu --disable-background-networking \
    --no-first-run --hide-scrollbars --window-size=1300,4200 \
    --screenshot="$out/index.png" "file://$(realpath "$out/index.html")" 2>/dev/null
echo "$out/index.html -> $out/index.png"
