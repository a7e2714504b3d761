#!/usr/bin/env bash
# Benchmark: the argos translator on 500 subtitle lines with a generated model of real size (6+6 layers,
# d_model 512, 32k sentencepiece vocabulary, int8, the real Argos package layout), 1 and 2 threads, against the
# Python CTranslate2 wheel running the same package the way Argos Translate does, in the same run; plus the time
# share of AutoSub's re-segmentation (sentences out, translations retimed and re-cut) next to the translation.
#
#   scripts/bench/argos.sh            run, print the Markdown table
#   scripts/bench/argos.sh --write    ... and put it into docs/PERFORMANCE.md (between the bench:argos markers)
#
# The generated model has random weights, biased towards </s>: with min_decoding_length 16 every line's
# translation is exactly 16 pieces (the lines average about 15), so both systems do the same decoding work.
#
# Environment: BENCH_RUNS (default 2, interleaved), BENCH_NO_BUILD=1, CARGO_TARGET_DIR, AUTOSUB_CACHE.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
WRITE=0
for arg in "$@"; do
  case "$arg" in
    --write) WRITE=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "argos.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done
. scripts/env.sh
RUNS="${BENCH_RUNS:-2}"
MIN_LEN=16
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
python3 -c 'import ctranslate2, sentencepiece' 2>/dev/null || { echo "argos.sh: run scripts/setup.sh first" >&2; exit 1; }

if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  say "building (release, with the argos engine)"
  cargo build --release --locked -p autosub-cli
  cargo build --release --locked -p autosub-core --features argos --example bench_argos
fi
BIN="$CARGO_TARGET_DIR/release/autosub"
BENCH="$CARGO_TARGET_DIR/release/examples/bench_argos"

WORK="$AUTOSUB_CACHE/bench-argos"
mkdir -p "$WORK"
say "generating the full-size test package in $WORK (cached)"
INFO=$(python3 scripts/argos/make_package.py "$WORK/pkg" --vocab 32000 --layers 6 --dmodel 512 --lines 200000 \
  --eos-bias 8 | tail -1)
PKG=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["path"])' "$INFO")
MODELS=$(mktemp -d)
trap 'rm -rf "$MODELS"' EXIT
"$BIN" -q --models-dir "$MODELS" models import "$PKG" >/dev/null
PKG_DIR="$MODELS/argos/translate-en_ru"
LINES="$WORK/lines500.txt"
head -500 "$WORK/pkg/corpus200000.txt" > "$LINES"

RESULTS="$WORK/results.jsonl"
: > "$RESULTS"
for run in $(seq "$RUNS"); do
  say "run $run/$RUNS: autosub (1 and 2 threads)"
  "$BENCH" "$MODELS" "$LINES" "$MIN_LEN" | sed 's/^{/{"system": "autosub", /' >> "$RESULTS"
  for t in 1 2; do
    say "run $run/$RUNS: Python CTranslate2, $t thread(s)"
    python3 scripts/argos/reference_translate.py "$PKG_DIR" "$t" "$MIN_LEN" < "$LINES" 2>&1 >/dev/null \
      | tail -1 | sed 's/^{/{"system": "ctranslate2-python", /' >> "$RESULTS"
  done
done

TABLE=$(python3 - "$RESULTS" "$RUNS" <<'EOF'
import json, statistics, subprocess, sys, datetime, platform
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
runs = sys.argv[2]
def med(sys_, t, key):
    v = [r[key] for r in rows if r["system"] == sys_ and r["threads"] == t]
    return statistics.median(v) if v else None
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
ct2 = subprocess.run(["python3", "-c", "import ctranslate2; print(ctranslate2.__version__)"], capture_output=True, text=True).stdout.strip()
print(f"Run {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC on {cpu}, `nproc` = {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()}; "
      f"{runs} run(s) of each, interleaved, medians. Model: generated, 6+6 layers, d_model 512, 32,000 pieces, int8; "
      f"500 lines of 15.5 pieces on average, every translation 16 pieces. Baseline: Python ctranslate2 {ct2}.")
print()
print("| threads | autosub argos (ct2rs, ruy) lines/s | Python CTranslate2 lines/s | autosub / Python | re-segmentation | share of translation time |")
print("|---:|---:|---:|---:|---:|---:|")
for t in (1, 2):
    a = med("autosub", t, "lines_per_s"); p = med("ctranslate2-python", t, "lines_per_s")
    rs = med("autosub", t, "resegment_ms"); sh = med("autosub", t, "resegment_share_pct")
    print(f"| {t} | {a:.1f} | {p:.1f} | {a/p:.2f} | {rs:.1f} ms | {sh:.3f} % (target < 1 %: {'met' if sh < 1 else 'NOT met'}) |")
EOF
)
echo "$TABLE"
if [ "$WRITE" = 1 ]; then
  python3 - "$ROOT/docs/PERFORMANCE.md" "$TABLE" <<'EOF'
import sys, re
path, table = sys.argv[1], sys.argv[2]
doc = open(path).read()
start, end = "<!-- bench:argos:start -->", "<!-- bench:argos:end -->"
new = f"{start}\n{table}\n{end}"
doc = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda m: new, doc, flags=re.S) if start in doc else doc + "\n" + new + "\n"
open(path, "w").write(doc)
EOF
  say "wrote docs/PERFORMANCE.md"
fi
