#!/usr/bin/env bash
# Benchmark: `autosub transcribe` vs faster-whisper (int8) on the same Whisper base weights and the same audio,
# 2 threads, 60 s of real speech. Reports median wall time, real-time factor, peak RSS, the autosub/faster-whisper
# time ratio and the word error rate; see docs/PERFORMANCE.md.
#
#   scripts/bench/transcribe.sh            run, print the Markdown table
#   scripts/bench/transcribe.sh --write    ... and put it into docs/PERFORMANCE.md (between the bench markers)
#
# Needs what scripts/setup.sh installs: the release build, the model base-q8_0 and the CTranslate2 folder it was
# converted from; plus faster-whisper (`pip install faster-whisper`) for the baseline.
#
# Environment:
#   BENCH_RUNS         runs of each configuration (default 3), interleaved A B C A B C ... so noise hits all alike
#   BENCH_CLIPS        which clips (default "en ru"): en = 60 s English built by make-clip.sh (with a reference
#                      transcript), ru = ../shared/corpus/speech/untranscribed/ru_silero_vad_60s.wav as it is
#   BENCH_NO_BUILD=1   do not run `cargo build` (use the binary as it is)
#   BENCH_WORK         folder for clips, outputs and raw timings (default: a new folder under /tmp, kept)
#   CARGO_TARGET_DIR   build folder (default /var/cache/autosub/target, as scripts/setup.sh)
#   AUTOSUB_MODELS_DIR models folder (default: what `autosub models path` says)
#   CT2_DIR            CTranslate2 model folder for faster-whisper (default /var/cache/autosub/ct2-base)
#   THREADS            threads for both systems (default 2)
#   BENCH_NOTE         a sentence to print above the table (e.g. what else ran on the machine)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"

WRITE=0
for arg in "$@"; do
  case "$arg" in
    --write) WRITE=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "transcribe.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

RUNS="${BENCH_RUNS:-3}"
CLIPS="${BENCH_CLIPS:-en ru}"
THREADS="${THREADS:-2}"
. scripts/env.sh
CT2_DIR="${CT2_DIR:-$AUTOSUB_CACHE/ct2-base}"
CORPUS="${CORPUS:-$ROOT/../shared/corpus}"
DOC="$ROOT/docs/PERFORMANCE.md"
BIN="$CARGO_TARGET_DIR/release/autosub"
FW="scripts/bench/fw_transcribe.py"
TIMEOUT=900 # seconds, per run
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { echo "transcribe.sh: $*" >&2; exit 1; }
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive number"

# --- tools -------------------------------------------------------------------------------------------------------
if [ ! -x /usr/bin/time ]; then
  say "installing GNU time (/usr/bin/time)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends time
fi
command -v ffmpeg >/dev/null || die "ffmpeg not found: run scripts/setup.sh"
python3 -c 'import faster_whisper' 2>/dev/null \
  || die "faster-whisper is not installed for python3 (pip install faster-whisper): it is the baseline"
[ -s "$CT2_DIR/model.bin" ] || die "no CTranslate2 model in $CT2_DIR: run scripts/setup.sh"

# --- build and models --------------------------------------------------------------------------------------------
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  say "building autosub (release) into $CARGO_TARGET_DIR"
  cargo build --release --locked -p autosub-cli
fi
[ -x "$BIN" ] || die "no binary at $BIN: run scripts/setup.sh (or cargo build --release -p autosub-cli)"
MODELS_DIR="${AUTOSUB_MODELS_DIR:-$("$BIN" models path)}"
export AUTOSUB_MODELS_DIR="$MODELS_DIR"
"$BIN" models path base-q8_0 >/dev/null 2>&1 || die "model base-q8_0 is not installed in $MODELS_DIR: run scripts/setup.sh"
HAVE_F16=0
if [ -s "$MODELS_DIR/ggml-base.bin" ]; then
  HAVE_F16=1
else
  echo "note: no f16 model $MODELS_DIR/ggml-base.bin: skipping --model base" \
       "(make it with: autosub models import $CT2_DIR --name base)" >&2
fi

# --- work folder and clips ---------------------------------------------------------------------------------------
WORK="${BENCH_WORK:-$(mktemp -d /tmp/autosub-bench.XXXXXX)}"
mkdir -p "$WORK/out"
say "work folder: $WORK"
printf 'id\tpath\tduration_s\treference\tdescribe\n' > "$WORK/clips.tsv"
declare -A CLIP_PATH=()
for c in $CLIPS; do
  case "$c" in
    en)
      CORPUS="$CORPUS" scripts/bench/make-clip.sh "$WORK/en60.wav"
      CLIP_PATH[en]="$WORK/en60.wav"
      printf 'en\t%s\t60.0\t%s\t%s\n' "$WORK/en60.wav" "$WORK/en60.txt" \
        "60.0 s of English: jfk, LJ001-0001, LJ001-0003, quilter, jfk, LJ001-0001 from ../shared/corpus/speech/en, 0.5 s of silence after each, padded to 60.0 s, 16 kHz mono (scripts/bench/make-clip.sh)" \
        >> "$WORK/clips.tsv" ;;
    ru)
      f="$CORPUS/speech/untranscribed/ru_silero_vad_60s.wav"
      [ -s "$f" ] || die "missing $f (the shared corpus)"
      CLIP_PATH[ru]="$f"
      printf 'ru\t%s\t60.0\t\t%s\n' "$f" \
        "60.0 s of Russian, ../shared/corpus/speech/untranscribed/ru_silero_vad_60s.wav as it is (16 kHz mono, no reference transcript)" \
        >> "$WORK/clips.tsv" ;;
    *) die "unknown clip '$c' in BENCH_CLIPS (en, ru)" ;;
  esac
done

# --- configurations ----------------------------------------------------------------------------------------------
# id, system, model, beam, word timestamps, the faster-whisper config it is compared with, argv template.
# Placeholders: {bin} autosub binary, {fw} fw_transcribe.py, {ct2} CT2_DIR, {clip} input, {out} output file.
printf 'id\tsystem\tmodel\tbeam\tword_timestamps\tbaseline\tcommand\n' > "$WORK/configs.tsv"
CFG_IDS=()
declare -A CFG_ARGV=()
cfg() { # id system model beam wt baseline argv-template
  CFG_IDS+=("$1")
  CFG_ARGV[$1]="$7"
  local shown="${7//\{bin\}/autosub}"
  shown="${shown//\{fw\}/$FW}"
  shown="${shown//\{ct2\}/$CT2_DIR}"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$shown" >> "$WORK/configs.tsv"
}
cfg as-q8-b5 autosub base-q8_0 5 1 fw-b5 "{bin} -q transcribe {clip} -o {out} --threads $THREADS --model base-q8_0"
cfg as-q8-g  autosub base-q8_0 1 1 fw-g  "{bin} -q transcribe {clip} -o {out} --threads $THREADS --model base-q8_0 --fast"
if [ "$HAVE_F16" = 1 ]; then
  cfg as-f16-b5 autosub "base (f16)" 5 1 fw-b5 "{bin} -q transcribe {clip} -o {out} --threads $THREADS --model base"
  cfg as-f16-g  autosub "base (f16)" 1 1 fw-g  "{bin} -q transcribe {clip} -o {out} --threads $THREADS --model base --fast"
fi
cfg fw-b5      faster-whisper "base (int8)" 5 1 "" "python3 {fw} {clip} --model {ct2} --threads $THREADS --beam 5 --word-timestamps --out {out}"
cfg fw-g       faster-whisper "base (int8)" 1 1 "" "python3 {fw} {clip} --model {ct2} --threads $THREADS --beam 1 --word-timestamps --out {out}"
cfg fw-b5-nowt faster-whisper "base (int8)" 5 0 "" "python3 {fw} {clip} --model {ct2} --threads $THREADS --beam 5 --out {out}"

# --- metadata ----------------------------------------------------------------------------------------------------
{
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "nproc=$(nproc)"
  echo "cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "mem=$(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
  echo "os=$(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "runs=$RUNS"
  echo "autosub_version=$("$BIN" --version 2>/dev/null | head -1 || echo unknown)"
  echo "fw_version=$(python3 -c 'import faster_whisper; print(faster_whisper.__version__)')"
  echo "ct2_version=$(python3 -c 'import ctranslate2; print(ctranslate2.__version__)')"
  echo "ffmpeg_version=$(ffmpeg -version | head -1 | awk '{print $3}')"
  echo "ct2_dir=$CT2_DIR"
  echo "models_dir=$MODELS_DIR"
  echo "load_before=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "note=${BENCH_NOTE:-}"
} > "$WORK/meta.env"

# Warm the page cache so no configuration pays for the first read of the weights.
cat "$CT2_DIR/model.bin" "$MODELS_DIR"/ggml-base*.bin > /dev/null 2>&1 || true

# --- runs --------------------------------------------------------------------------------------------------------
printf 'clip\tconfig\trun\twall_s\tmaxrss_kb\tcpu_s\trc\toutput\tload1\n' > "$WORK/runs.tsv"
total=$((RUNS * ${#CFG_IDS[@]} * ${#CLIP_PATH[@]}))
n=0
for r in $(seq 1 "$RUNS"); do
  for c in $CLIPS; do
    for id in "${CFG_IDS[@]}"; do
      n=$((n + 1))
      out="$WORK/out/$c.$id.$r.json"
      log="$WORK/out/$c.$id.$r.log"
      read -ra tmpl <<< "${CFG_ARGV[$id]}"
      argv=()
      for t in "${tmpl[@]}"; do
        case "$t" in
          "{bin}") argv+=("$BIN") ;;
          "{fw}") argv+=("$FW") ;;
          "{clip}") argv+=("${CLIP_PATH[$c]}") ;;
          "{out}") argv+=("$out") ;;
          "{ct2}") argv+=("$CT2_DIR") ;;
          *) argv+=("$t") ;;
        esac
      done
      rm -f "$out"
      # OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE (set on some machines to work around old OpenBLAS) slow down numpy's
      # current OpenBLAS; both are unset for this command only, for both systems alike.
      if /usr/bin/time -f '%e %M %U %S' -o "$WORK/time.txt" env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
           timeout "$TIMEOUT" "${argv[@]}" > "$log.stdout" 2> "$log"; then rc=0; else rc=$?; fi
      # faster-whisper prints its JSON on stdout (and writes --out); autosub writes --out.
      [ -s "$out" ] || cp "$log.stdout" "$out" 2>/dev/null || true
      read -r wall rss usr sys < <(grep -E '^[0-9.]+ [0-9]+ [0-9.]+ [0-9.]+$' "$WORK/time.txt" | tail -1 || echo "0 0 0 0")
      cpu=$(awk -v u="$usr" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$id" "$r" "$wall" "$rss" "$cpu" "$rc" "$out" \
        "$(cut -d' ' -f1 /proc/loadavg)" >> "$WORK/runs.tsv"
      printf '[%d/%d] %-3s %-11s run %d: %6.2f s %6d MB  cpu %6.2f s%s\n' "$n" "$total" "$c" "$id" "$r" "$wall" \
        "$((rss / 1024))" "$cpu" "$([ "$rc" = 0 ] || echo "  FAILED (exit $rc): $(tail -2 "$log" | tr '\n' ' ')")" >&2
    done
  done
done

echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$WORK/meta.env"

# --- report ------------------------------------------------------------------------------------------------------
if [ "$WRITE" = 1 ]; then
  python3 scripts/bench/report.py "$WORK" --write "$DOC"
else
  python3 scripts/bench/report.py "$WORK"
fi
say "raw timings and outputs: $WORK"
