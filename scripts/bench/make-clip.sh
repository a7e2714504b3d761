#!/usr/bin/env bash
# Builds the 60.0 s English benchmark clip from the real speech corpus (../shared/corpus/speech/en from the repo root).
#
#   scripts/bench/make-clip.sh OUT.wav        writes OUT.wav (16 kHz mono s16, exactly 960000 samples = 60.000 s)
#                                             and OUT.txt (the exact reference transcript of what is in OUT.wav)
#
# How the clip is made (fixed, so every run and every machine gets the same bytes for the same ffmpeg):
#   sequence = jfk (11.0 s), LJ001-0001 (9.66 s), LJ001-0003 (9.67 s), quilter (5.86 s), each followed by 0.5 s of
#   silence (38.2 s in all); the sequence is played twice and cut after the 6th clip (jfk, LJ001-0001 of the second
#   pass), then padded with silence to exactly 60.000 s. Every clip is resampled to 16 kHz mono first (the LJSpeech
#   ones are 22.05 kHz).
#   The cut falls between clips, never inside one, so the reference transcript is exact: the six .txt transcripts in
#   the same order. (A plain "loop and trim at 60 s" would cut LJ001-0003 mid-word and leave a fuzzy tail.)
#
# Environment: CORPUS (default <repo>/../shared/corpus), FFMPEG (default ffmpeg).
set -euo pipefail

usage() { echo "usage: $0 OUT.wav" >&2; exit 2; }
[ $# -eq 1 ] || usage
OUT="$1"
case "$OUT" in *.wav) ;; *) echo "make-clip: OUT must end in .wav" >&2; exit 2 ;; esac

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CORPUS="${CORPUS:-$ROOT/../shared/corpus}"
EN="$CORPUS/speech/en"
FFMPEG="${FFMPEG:-ffmpeg}"
command -v "$FFMPEG" >/dev/null || { echo "make-clip: ffmpeg not found (apt-get install ffmpeg)" >&2; exit 1; }

# The fixed order: one pass of the sequence, then the first two clips again (see above).
CLIPS=(en_jfk_inaugural_1961 en_ljspeech_LJ001-0001 en_ljspeech_LJ001-0003 en_librispeech_quilter
       en_jfk_inaugural_1961 en_ljspeech_LJ001-0001)
GAP=0.5        # seconds of silence after each clip
RATE=16000
SAMPLES=960000 # 60.000 s at 16 kHz

inputs=()
filters=""
labels=""
i=0
for c in "${CLIPS[@]}"; do
  for ext in wav txt; do
    [ -s "$EN/$c.$ext" ] || { echo "make-clip: missing $EN/$c.$ext (the shared corpus)" >&2; exit 1; }
  done
  inputs+=(-i "$EN/$c.wav")
  filters+="[$i:a]aresample=$RATE,aformat=sample_fmts=s16:channel_layouts=mono,apad=pad_dur=$GAP[a$i];"
  labels+="[a$i]"
  i=$((i + 1))
done
filters+="${labels}concat=n=${#CLIPS[@]}:v=0:a=1,apad=whole_len=$SAMPLES,atrim=end_sample=$SAMPLES[out]"

mkdir -p "$(dirname "$OUT")"
tmp="$OUT.tmp.$$.wav"
trap 'rm -f "$tmp"' EXIT
"$FFMPEG" -nostdin -hide_banner -loglevel error -y "${inputs[@]}" -filter_complex "$filters" -map '[out]' \
  -ac 1 -ar "$RATE" -c:a pcm_s16le -fflags +bitexact -flags:a +bitexact "$tmp"
mv "$tmp" "$OUT"

# Reference transcript: the clips' transcripts in the same order, one line each.
REF="${OUT%.wav}.txt"
: > "$REF"
for c in "${CLIPS[@]}"; do
  tr -d '\n' < "$EN/$c.txt" >> "$REF"
  echo >> "$REF"
done

dur=$(ffprobe -v error -show_entries stream=duration,sample_rate,channels -of csv=p=0 "$OUT")
echo "make-clip: $OUT ($dur) + $REF ($(wc -w < "$REF") words)" >&2
