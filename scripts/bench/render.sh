#!/usr/bin/env bash
# Benchmark: the finished vertical clip, all in one run on a 60 s 1280x720 clip with speech (docs/PERFORMANCE.md).
#
#   (a) autosub:  `autosub process clip.mp4 --vertical --watermark @autosub` (karaoke captions, shorts profile,
#                 blur reframe, text watermark, one encode)
#   (b) floor:    `autosub transcribe clip.mp4` (the ASR alone) + ONE hand-written ffmpeg pass with the same filters
#                 and the same subtitle script (saved by (a) with --save-script)
#   (c) peers:    faster-whisper int8 (beam 5) -> SRT, then three ffmpeg passes as the usual tools chain them:
#                 burn the SRT (subtitles=), reframe to 1080x1920 over a full-resolution blurred copy, watermark
#                 (drawtext)
# Every encode uses the same x264 settings (autosub's default --quality balanced: veryfast, CRF 21) and copies the
# AAC audio. Targets: a <= 1.15 x b and a <= 0.5 x c.
#
#   scripts/bench/render.sh            run, print the Markdown table
#   scripts/bench/render.sh --write    ... and put it into docs/PERFORMANCE.md (between the bench:render markers)
#
# Environment: BENCH_RUNS (default 2; a b c a b c ...), BENCH_WORK (work folder, default a new one under /tmp),
# BENCH_NO_BUILD=1, THREADS (ASR threads for both systems, default 2), CT2_DIR (faster-whisper model folder).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
WRITE=0
for arg in "$@"; do
  case "$arg" in
    --write) WRITE=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "render.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done
RUNS="${BENCH_RUNS:-2}"
THREADS="${THREADS:-2}"
. scripts/env.sh
CT2_DIR="${CT2_DIR:-$AUTOSUB_CACHE/ct2-base}"
CORPUS="${CORPUS:-$ROOT/../shared/corpus}"
BIN="$CARGO_TARGET_DIR/release/autosub"
DOC="$ROOT/docs/PERFORMANCE.md"
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { echo "render.sh: $*" >&2; exit 1; }
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive number"
[ -x /usr/bin/time ] || die "GNU time is missing (apt-get install time)"
python3 -c 'import faster_whisper' 2>/dev/null || die "faster-whisper is not installed (pip install faster-whisper==1.2.1)"
[ -s "$CT2_DIR/model.bin" ] || die "no CTranslate2 model in $CT2_DIR: run scripts/setup.sh"
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then cargo build --release --locked -p autosub-cli; fi
export AUTOSUB_MODELS_DIR="${AUTOSUB_MODELS_DIR:-$("$BIN" models path)}"

WORK="${BENCH_WORK:-$(mktemp -d /tmp/autosub-bench-render.XXXXXX)}"
mkdir -p "$WORK"
say "work folder: $WORK"
CLIP="$WORK/clip.mp4"
if [ ! -s "$CLIP" ]; then
  CORPUS="$CORPUS" scripts/bench/make-clip.sh "$WORK/en60.wav"
  # Real footage (the corpus flower clip, looped) at 1280x720, 30000/1001 fps, under 60 s of real English speech.
  ffmpeg -nostdin -v error -y -stream_loop -1 -i "$CORPUS/video/flower_16x9.mp4" -i "$WORK/en60.wav" \
    -map 0:v -map 1:a -t 60 -vf "scale=1280:720:flags=bicubic,setsar=1" -c:v libx264 -preset fast -crf 20 \
    -pix_fmt yuv420p -c:a aac -b:a 128k "$CLIP"
fi
X264=(-c:v libx264 -preset veryfast -crf 21 -pix_fmt yuv420p -profile:v high)
FONT=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf
[ -s "$FONT" ] || die "missing $FONT (fonts-dejavu-core)"

# The floor's filtergraph: autosub's own graph for this input, written out by hand (see crates/autosub-core/src/render.rs).
FLOOR_GRAPH="[0:v]split=2[bgsrc][fgsrc];[bgsrc]crop=404:720:438:0,scale=180:320:flags=fast_bilinear,boxblur=luma_radius=11:luma_power=2:chroma_radius=5:chroma_power=2,eq=brightness=-0.08,scale=1080:1920:flags=fast_bilinear,setsar=1[bg];[fgsrc]scale=1080:608:flags=bicubic,setsar=1[fg];[bg][fg]overlay=x=0:y=656:format=yuv420[pic];[pic]ass=filename=$WORK/burn.ass[subs];[subs]format=yuv420p[v]"
# The peers' reframe: the usual recipe, the background scaled to 1080x1920 first and blurred at full size.
PEER_REFRAME="[0:v]split=2[a][b];[a]scale=1080:1920:force_original_aspect_ratio=increase,crop=1080:1920,boxblur=luma_radius=20:luma_power=2[bg];[b]scale=1080:-2[fg];[bg][fg]overlay=(W-w)/2:(H-h)/2,format=yuv420p"
PEER_MARK="drawtext=fontfile=$FONT:text=@autosub:fontsize=42:fontcolor=white@0.6:x=w-tw-58:y=58"

FW_TO_SRT='
import json, sys
d = json.load(open(sys.argv[1]))
def t(s):
    ms = int(round(s * 1000)); h, ms = divmod(ms, 3600000); m, ms = divmod(ms, 60000); s, ms = divmod(ms, 1000)
    return f"{h:02}:{m:02}:{s:02},{ms:03}"
with open(sys.argv[2], "w") as f:
    for i, s in enumerate(d["segments_detail"], 1):
        start, end, text = t(s["start"]), t(s["end"]), s["text"].strip()
        f.write(f"{i}\n{start} --> {end}\n{text}\n\n")
'

TSV="$WORK/steps.tsv"
printf 'run\tsystem\tstep\twall_s\n' > "$TSV"
step() { # run system step command...
  local run="$1" sys="$2" name="$3"; shift 3
  /usr/bin/time -f '%e' -o "$WORK/time.txt" "$@" > "$WORK/last.out" 2> "$WORK/last.err" \
    || die "$sys/$name failed: $(tail -3 "$WORK/last.err")"
  local wall; wall=$(tail -1 "$WORK/time.txt")
  printf '%s\t%s\t%s\t%s\n' "$run" "$sys" "$name" "$wall" >> "$TSV"
  printf '  run %s %-6s %-10s %7.2f s\n' "$run" "$sys" "$name" "$wall" >&2
}

cat "$AUTOSUB_MODELS_DIR"/ggml-base*.bin "$CT2_DIR/model.bin" > /dev/null 2>&1 || true
for r in $(seq 1 "$RUNS"); do
  say "run $r of $RUNS"
  rm -rf "$WORK/a" && mkdir -p "$WORK/a"
  step "$r" a process "$BIN" -q process "$CLIP" --vertical --watermark @autosub --threads "$THREADS" \
    --out "$WORK/a" --save-script "$WORK/burn.ass"
  step "$r" b asr "$BIN" -q transcribe "$CLIP" -o "$WORK/b.json" --threads "$THREADS"
  step "$r" b ffmpeg ffmpeg -nostdin -v error -y -i "$CLIP" -filter_complex "$FLOOR_GRAPH" -map '[v]' -map 0:a \
    "${X264[@]}" -c:a copy -movflags +faststart "$WORK/b.mp4"
  step "$r" c asr python3 scripts/bench/fw_transcribe.py "$CLIP" --model "$CT2_DIR" --threads "$THREADS" --beam 5 \
    --out "$WORK/fw.json"
  step "$r" c srt python3 -c "$FW_TO_SRT" "$WORK/fw.json" "$WORK/fw.srt"
  step "$r" c burn ffmpeg -nostdin -v error -y -i "$CLIP" -vf "subtitles=$WORK/fw.srt" "${X264[@]}" -c:a copy \
    "$WORK/c1.mp4"
  step "$r" c reframe ffmpeg -nostdin -v error -y -i "$WORK/c1.mp4" -filter_complex "$PEER_REFRAME" "${X264[@]}" \
    -c:a copy "$WORK/c2.mp4"
  step "$r" c watermark ffmpeg -nostdin -v error -y -i "$WORK/c2.mp4" -vf "$PEER_MARK" "${X264[@]}" -c:a copy \
    -movflags +faststart "$WORK/c3.mp4"
done

for f in "$WORK/a/clip.autosub.mp4" "$WORK/b.mp4" "$WORK/c3.mp4"; do
  ffprobe -v error -select_streams v:0 -show_entries stream=width,height -show_entries format=duration,size \
    -of default=nw=1 "$f" | tr '\n' ' ' | sed "s|^|$(basename "$f"): |"; echo
done > "$WORK/outputs.txt"

python3 - "$WORK" "$WRITE" "$DOC" "$RUNS" <<'EOF'
import csv, statistics, subprocess, sys, datetime, os, re
work, write, doc, runs = sys.argv[1], sys.argv[2] == "1", sys.argv[3], sys.argv[4]
rows = list(csv.DictReader(open(f"{work}/steps.tsv"), delimiter="\t"))
per = {}
for r in rows:
    per.setdefault((r["system"], r["step"]), []).append(float(r["wall_s"]))
totals = {}
for sysname in "abc":
    by_run = {}
    for r in rows:
        if r["system"] == sysname:
            by_run[r["run"]] = by_run.get(r["run"], 0.0) + float(r["wall_s"])
    totals[sysname] = statistics.median(by_run.values())
a, b, c = totals["a"], totals["b"], totals["c"]
med = lambda k: statistics.median(per[k])
cpu = open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(": \t")
out = []
out.append(f"Run {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores ({cpu}), {runs} run(s) of each, "
           f"interleaved; medians of wall time. Input: 60 s, 1280x720, 29.97 fps H.264 + AAC, real footage under real "
           f"English speech (`scripts/bench/render.sh`). All encodes: x264 veryfast CRF 21, audio copied.")
out.append("")
out.append("| system | steps (median s) | total (s) | ratio | target |")
out.append("|---|---|---:|---:|---|")
steps = lambda s: ", ".join(f"{k[1]} {med(k):.1f}" for k in per if k[0] == s)
out.append(f"| (a) `autosub process --vertical --watermark @autosub` | {steps('a')} | {a:.1f} | 1.00 | |")
out.append(f"| (b) floor: `autosub transcribe` + one hand-written ffmpeg pass, same filters | {steps('b')} | {b:.1f} | a/b = {a/b:.2f} | <= 1.15 {'met' if a <= 1.15*b else 'NOT met'} |")
out.append(f"| (c) peers: faster-whisper int8 + 3 ffmpeg passes (burn, reframe, watermark) | {steps('c')} | {c:.1f} | a/c = {a/c:.2f} | <= 0.50 {'met' if a <= 0.5*c else 'NOT met'} |")
out.append("")
out.append("Outputs (ffprobe):")
out.append("")
for line in open(f"{work}/outputs.txt"):
    out.append(f"    {line.rstrip()}")
text = "\n".join(out)
print(text)
if write:
    d = open(doc).read()
    start, end = "<!-- bench:render:start -->", "<!-- bench:render:end -->"
    if start in d:
        d = d.split(start)[0] + start + "\n" + text + "\n" + end + d.split(end)[1]
    else:
        d = d.rstrip() + "\n\n" + start + "\n" + text + "\n" + end + "\n"
    open(doc, "w").write(d)
    print(f"written to {doc}", file=sys.stderr)
EOF
