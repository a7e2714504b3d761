#!/usr/bin/env bash
# The main job on a fresh machine: set up everything, then subtitle the bundled sample video.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/env.sh
export AUTOSUB_MODELS_DIR="${AUTOSUB_MODELS_DIR:-$("$AUTOSUB_BIN" models path)}"
mkdir -p demo-output
echo "==> autosub process tests/fixtures/sample.mp4 --out demo-output" >&2
"$AUTOSUB_BIN" process tests/fixtures/sample.mp4 --out demo-output
echo "==> first cues of demo-output/sample.srt:" >&2
head -n 12 demo-output/sample.srt
