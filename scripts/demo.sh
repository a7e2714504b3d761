#!/usr/bin/env bash
# The main job on a fresh machine: set up everything, subtitle the bundled sample video, then run the same job
# through the service on its embedded default (autosub serve: SQLite, in-process worker).
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
# The same job through the service on the embedded default: SQLite in a data folder, one in-process worker.
export AUTOSUB_DATA_DIR="$PWD/demo-output/service" AUTOSUB_HTTP_ADDR="${AUTOSUB_HTTP_ADDR:-127.0.0.1:0}"
echo "==> autosub serve (SQLite in $AUTOSUB_DATA_DIR) + autosub submit tests/fixtures/sample.mp4 --wait" >&2
AUTOSUB_LOG=warn "$AUTOSUB_BIN" serve &
SERVE=$!
trap 'kill -TERM $SERVE 2>/dev/null || true' EXIT
"$AUTOSUB_BIN" submit tests/fixtures/sample.mp4 --wait --out demo-output/service/results
"$AUTOSUB_BIN" jobs list --limit 1
kill -TERM "$SERVE"; wait "$SERVE"
