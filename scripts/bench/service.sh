#!/usr/bin/env bash
# Benchmark: the service's own costs (docs/PERFORMANCE.md, "Service").
#
#   (1) queue overhead: trivial jobs (`sleep`, 0 ms) claimed and finished per second by 4 `autosub worker`
#       processes, on PostgreSQL (127.0.0.1:5432) and on SQLite (goals: >= 500/s and >= 200/s);
#   (2) `autosub submit --wait` of the 11 s sample (through `autosub serve`: queue, worker, model loaded once) vs
#       `autosub process` of it, alternated in the same run (goal: <= 1.1x);
#   (3) peak RSS (VmHWM) of an idle worker, and of a worker running two jobs of the sample at once with the default
#       model (goal: < 600 MB).
#
# Environment: BENCH_RUNS (default 3), BENCH_JOBS (default 2000), BENCH_NO_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
. scripts/env.sh
RUNS="${BENCH_RUNS:-3}"
JOBS="${BENCH_JOBS:-2000}"
if [ -z "${BENCH_NO_BUILD:-}" ]; then
  cargo build --release -q -p autosub-cli
  cargo build --release -q -p autosub-service --example queue_bench
fi
BIN="$AUTOSUB_BIN"
BENCH="$CARGO_TARGET_DIR/release/examples/queue_bench"
WORK="$(mktemp -d /tmp/autosub-bench-service.XXXXXX)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
echo "## Service benchmark ($(date -u +%Y-%m-%d), $(nproc) cores)"
echo
echo "### Queue overhead (4 worker processes, $JOBS trivial jobs)"
for db in postgres sqlite; do
  for i in 1 2; do "$BENCH" "$BIN" "$db" 4 "$JOBS"; done
done
echo
echo "### submit --wait vs process (tests/fixtures/sample.mp4, 11 s, default options)"
export AUTOSUB_DATA_DIR="$WORK/data" AUTOSUB_DATABASE_URL="sqlite:$WORK/bench.db"
PORT=$((20000 + RANDOM % 20000))
AUTOSUB_HTTP_ADDR="127.0.0.1:$PORT" AUTOSUB_LOG=warn "$BIN" serve 2>"$WORK/serve.log" &
SERVE=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
# One job first: the worker loads the model once, as a running service has.
"$BIN" -q submit tests/fixtures/sample.mp4 --wait --out "$WORK/warm" >/dev/null
now() { date +%s.%N; }
p_times=(); s_times=()
for r in $(seq "$RUNS"); do
  t0=$(now); "$BIN" -q process tests/fixtures/sample.mp4 --out "$WORK/p$r" >/dev/null; t1=$(now)
  "$BIN" -q submit tests/fixtures/sample.mp4 --wait --out "$WORK/s$r" >/dev/null; t2=$(now)
  p_times+=("$(echo "$t1 - $t0" | bc)"); s_times+=("$(echo "$t2 - $t1" | bc)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
P=$(median "${p_times[@]}"); S=$(median "${s_times[@]}")
echo "process: ${p_times[*]} s (median $P); submit --wait: ${s_times[*]} s (median $S); ratio $(echo "scale=3; $S / $P" | bc)"
kill -TERM "$SERVE"; wait "$SERVE" || true
echo
echo "### Peak RSS of a worker (default model)"
AUTOSUB_LOG=warn "$BIN" worker --concurrency 2 2>"$WORK/worker.log" &
W=$!
sleep 3
echo "idle: $(awk '/VmHWM/ {printf "%.0f MB", $2/1024}' /proc/$W/status)"
"$BIN" -q submit tests/fixtures/sample.mp4 --vertical >/dev/null
"$BIN" -q submit tests/fixtures/sample.mp4 >/dev/null
for _ in $(seq 600); do
  left=$("$BIN" jobs list --status queued | wc -l)
  running=$("$BIN" jobs list --status processing | wc -l)
  [ "$left" = 0 ] && [ "$running" = 0 ] && break
  sleep 0.2
done
echo "two jobs at once: $(awk '/VmHWM/ {printf "%.0f MB", $2/1024}' /proc/$W/status)"
"$BIN" jobs list --limit 3
kill -TERM "$W"; wait "$W" || true
