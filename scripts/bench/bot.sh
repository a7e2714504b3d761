#!/usr/bin/env bash
# Load benchmark of the Telegram bot (docs/PERFORMANCE.md, "Bot"): 200 simulated users over 60 s against the
# stand-in Bot API server, first `autosub serve` (bot + a worker in one process), then `autosub bot` + `autosub worker`
# (the bot's own memory). Prints one line per run: answer latency p50/p95/max, answered/confirmed, peak RSS.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/env.sh
USERS="${1:-200}"
SECONDS_WINDOW="${2:-60}"
cargo build --release --locked -p autosub-cli --bin autosub >&2
cargo build --release --locked -p autosub-bot --example bot_load >&2
export AUTOSUB_MODELS_DIR="${AUTOSUB_MODELS_DIR:-$("$AUTOSUB_BIN" models path)}"
export AUTOSUB_MODEL="${AUTOSUB_MODEL:-base-q8_0}"
echo "bench:bot $(date -u +%Y-%m-%d) $(nproc) cores"
for mode in serve split; do
  "$CARGO_TARGET_DIR/release/examples/bot_load" "$AUTOSUB_BIN" "$mode" "$USERS" "$SECONDS_WINDOW"
done
