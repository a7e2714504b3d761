#!/usr/bin/env bash
# Load benchmark of the payment callback (docs/PERFORMANCE.md, "Billing"): a real `autosub billing` process against
# the Platega stand-in, on SQLite and on PostgreSQL: N first callbacks (each activates a user), every one replayed
# 10 times at once, 1000 forged ones; answer times beside /healthz's in the same run. Goal: every answer < 1 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/env.sh
N="${1:-200}"
cargo build --release --locked -p autosub-cli --bin autosub >&2
cargo build --release --locked -p autosub-billing --example callback_load >&2
echo "bench:billing $(date -u +%Y-%m-%d) $(nproc) cores"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"; psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS autosub_bench_billing WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
"$CARGO_TARGET_DIR/release/examples/callback_load" "$AUTOSUB_BIN" "sqlite:$dir/bench.db" "$N"
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS autosub_bench_billing WITH (FORCE)" >/dev/null
psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE autosub_bench_billing" >/dev/null
"$CARGO_TARGET_DIR/release/examples/callback_load" "$AUTOSUB_BIN" "postgres://postgres@127.0.0.1:5432/autosub_bench_billing" "$N"
