#!/usr/bin/env bash
# The main job on a fresh machine: set up everything, then subtitle the bundled sample video.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ "$(id -u)" = 0 ]; then CACHE_BASE=/var/cache/autosub; else CACHE_BASE="${XDG_CACHE_HOME:-$HOME/.cache}/autosub"; fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE_BASE/target}"
export AUTOSUB_MODELS_DIR="${AUTOSUB_MODELS_DIR:-$("$CARGO_TARGET_DIR/release/autosub" models path)}"
mkdir -p demo-output
echo "==> autosub process tests/fixtures/sample.mp4 --out demo-output" >&2
"$CARGO_TARGET_DIR/release/autosub" process tests/fixtures/sample.mp4 --out demo-output
echo "==> first cues of demo-output/sample.srt:" >&2
head -n 12 demo-output/sample.srt
