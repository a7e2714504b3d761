#!/usr/bin/env bash
# A/B benchmark of two autosub builds: `autosub transcribe` of the same clip(s), runs interleaved A B A B ... so the
# machine's noise hits both alike; prints each run, the medians and the B/A ratio, and whether the outputs' text is
# the same. For a change to the recogniser (or its build) measured against the build before it; see
# docs/PERFORMANCE.md.
#
#   scripts/bench/ab.sh BIN_A BIN_B [CLIP ...]
#
# CLIP defaults to the 60 s English clip of make-clip.sh (built into $BENCH_WORK) and the 60 s Russian corpus clip.
# Environment: BENCH_RUNS (default 7), THREADS (2), AB_ARGS (extra transcribe arguments, default
# "--model base-q8_0"), BENCH_WORK (folder for clips and outputs, default a new one under /tmp),
# AUTOSUB_MODELS_DIR (default: what BIN_A's `models path` says), CORPUS (default ../shared/corpus).
# Each build needs its own CARGO_TARGET_DIR (or a copy of its binary): whisper-rs-sys does not rebuild when only
# the whisper.cpp patch or the GGML_* settings change.
set -euo pipefail
export LC_NUMERIC=C
[ $# -ge 2 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
for f in "$@"; do [ -e "$f" ] || { echo "ab.sh: no such file: $f" >&2; exit 2; }; done
A="$(realpath "$1")" B="$(realpath "$2")"; shift 2
for b in "$A" "$B"; do [ -x "$b" ] || { echo "ab.sh: not an executable: $b" >&2; exit 2; }; done
CLIPS=()
for c in "$@"; do CLIPS+=("$(realpath "$c")"); done
cd "$(dirname "$0")/../.."
RUNS="${BENCH_RUNS:-7}"
THREADS="${THREADS:-2}"
read -r -a EXTRA <<< "${AB_ARGS:---model base-q8_0}"
WORK="${BENCH_WORK:-$(mktemp -d /tmp/autosub-ab.XXXXXX)}"
mkdir -p "$WORK"
export AUTOSUB_MODELS_DIR="${AUTOSUB_MODELS_DIR:-$("$A" models path)}"
CORPUS="${CORPUS:-$(cd .. && pwd)/shared/corpus}"
if [ ${#CLIPS[@]} -eq 0 ]; then
  [ -f "$WORK/en60.wav" ] || CORPUS="$CORPUS" scripts/bench/make-clip.sh "$WORK/en60.wav" >&2
  CLIPS=("$WORK/en60.wav" "$CORPUS/speech/untranscribed/ru_silero_vad_60s.wav")
fi

now() { date +%s.%N; }
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
text_of() { python3 -c 'import json,sys; print("".join(w["text"] for w in json.load(open(sys.argv[1]))["words"]).strip())' "$1"; }

echo "A: $A"
echo "B: $B"
echo "transcribe ${EXTRA[*]} --threads $THREADS, $RUNS runs each, interleaved; $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M UTC')"
for clip in "${CLIPS[@]}"; do
  name="$(basename "$clip")"
  ta=() tb=()
  for r in $(seq 1 "$RUNS"); do
    for side in A B; do
      bin="$A"; [ "$side" = B ] && bin="$B"
      t0=$(now)
      "$bin" -q transcribe "$clip" -o "$WORK/$side.json" --threads "$THREADS" "${EXTRA[@]}" >/dev/null
      t=$(awk -v a="$t0" -v b="$(now)" 'BEGIN {print b - a}')
      if [ "$side" = A ]; then ta+=("$t"); else tb+=("$t"); fi
      printf '%s run %d %s: %.2f s\n' "$name" "$r" "$side" "$t" >&2
    done
  done
  ma=$(med "${ta[@]}") mb=$(med "${tb[@]}")
  same="same text"; [ "$(text_of "$WORK/A.json")" = "$(text_of "$WORK/B.json")" ] || same="TEXT DIFFERS"
  printf '%s: A median %.2f s, B median %.2f s, B/A %.3f; %s\n' "$name" "$ma" "$mb" "$(awk -v a="$ma" -v b="$mb" 'BEGIN {print b / a}')" "$same"
  if [ "$same" != "same text" ]; then
    echo "  A: $(text_of "$WORK/A.json")"
    echo "  B: $(text_of "$WORK/B.json")"
  fi
done
