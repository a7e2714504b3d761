#!/usr/bin/env bash
# The main job on a fresh machine: set up everything, then subtitle the bundled sample video.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/autosub/target}"
export AUTOSUB_MODELS_DIR="${AUTOSUB_MODELS_DIR:-$("$CARGO_TARGET_DIR/release/autosub" models path)}"
mkdir -p demo-output
echo "==> autosub process tests/fixtures/sample.mp4 --out demo-output" >&2
"$CARGO_TARGET_DIR/release/autosub" process tests/fixtures/sample.mp4 --out demo-output
echo "==> first cues of demo-output/sample.srt:" >&2
head -n 12 demo-output/sample.srt
