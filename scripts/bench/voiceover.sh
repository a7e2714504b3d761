#!/usr/bin/env bash
# Benchmark: the voice-over of 60 s of dense subtitles per engine (`autosub speak`: every line synthesised,
# fitted into its slot, loudness-normalised, placed on the track), wall time and real-time factor; and the whole
# `process --translate en --voiceover --vertical` run on 60 s of Russian speech, counting its video encodes.
#
#   scripts/bench/voiceover.sh            run, print the Markdown table
#   scripts/bench/voiceover.sh --write    ... and put it into docs/PERFORMANCE.md (between the bench:voiceover markers)
#
# Subtitles: English = `autosub transcribe` of the 60 s English benchmark clip (scripts/bench/make-clip.sh), cut
# with the standard profile (real speech, so real density); Russian = the sentences of the voice-over test spoken
# back to back over 60 s. Needs what scripts/setup.sh installs. BENCH_RUNS (default 3, interleaved).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
WRITE=0
for arg in "$@"; do
  case "$arg" in
    --write) WRITE=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "voiceover.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done
. scripts/env.sh
RUNS="${BENCH_RUNS:-3}"
BIN="$AUTOSUB_BIN"
CORPUS="${CORPUS:-$ROOT/../shared/corpus}"
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
[ -x "$BIN" ] || { echo "voiceover.sh: build first (scripts/setup.sh)" >&2; exit 1; }
export AUTOSUB_MODELS_DIR="${AUTOSUB_MODELS_DIR:-$("$BIN" models path)}"
WORK=$(mktemp -d /tmp/autosub-voice-bench.XXXXXX)

say "subtitles: English (transcribed) and Russian (written), 60 s each"
scripts/bench/make-clip.sh "$WORK/en60.wav" >/dev/null
"$BIN" -q transcribe "$WORK/en60.wav" --lang en --model base-q8_0 -o "$WORK/en.json" >/dev/null
python3 - "$WORK/ru.srt" <<'EOF'
import sys
S = ["Сегодня хорошая погода, и мы пойдём гулять в парк.", "Пожалуйста, отправьте мне отчёт до завтрашней встречи.",
     "Мой брат купил новую машину на прошлой неделе.", "Она любит читать книги по вечерам.",
     "Нам нужно больше времени, чтобы закончить этот проект.", "Дети играют в саду за домом.",
     "Добрый вечер, дорогие друзья.", "Сегодня мы поговорим о погоде в городе.",
     "Утром было холодно, а днём выглянуло солнце.", "Завтра обещают сильный ветер и дождь.",
     "Не забудьте взять с собой тёплую куртку.", "Дети пойдут в школу к девяти часам утра.",
     "Магазины откроются после обеда.", "Вечером в парке будет играть оркестр.",
     "Приходите всей семьёй, вход свободный.", "Спасибо, что были с нами, до свидания."]
ts = lambda ms: "00:%02d:%02d,%03d" % (ms // 60000, ms // 1000 % 60, ms % 1000)
out, t, i = [], 300, 0
while t < 59000:
    text = S[i % len(S)]
    n = 3000 + max(0, len(text) - 30) * 40
    end = min(t + n, 59900)
    out.append(f"{i + 1}\n{ts(t)} --> {ts(end)}\n{text}\n")
    t, i = end + 150, i + 1
open(sys.argv[1], "w").write("\n".join(out) + "\n")
EOF
EN_CUES=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["cues"]))' "$WORK/en.json")
RU_CUES=$(grep -c -- '-->' "$WORK/ru.srt")

# name | subtitles | voice
CONFIGS=(
  "piper-en|$WORK/en.json|piper:en_US-joe-medium"
  "espeak-en|$WORK/en.json|espeak:en-us"
  "festival-ru|$WORK/ru.srt|festival:msu_ru_nsh_clunits"
  "espeak-ru|$WORK/ru.srt|espeak:ru"
)
: > "$WORK/runs.tsv"
for run in $(seq "$RUNS"); do
  for c in "${CONFIGS[@]}"; do
    IFS='|' read -r name subs voice <<< "$c"
    say "run $run/$RUNS: $name"
    /usr/bin/time -f '%e %M' -o "$WORK/time.txt" "$BIN" -q speak "$subs" --voice "$voice" -o "$WORK/$name.wav" \
      --json > "$WORK/$name.json"
    echo "$name $(cat "$WORK/time.txt")" >> "$WORK/runs.tsv"
  done
done

say "process --translate en --voiceover --vertical on 60 s of Russian speech"
ffmpeg -nostdin -v error -y -f lavfi -i "color=c=darkgreen:s=1280x720:r=30:d=60" \
  -i "$CORPUS/speech/untranscribed/ru_silero_vad_60s.wav" -t 60 -c:v libx264 -preset ultrafast -c:a aac -shortest \
  "$WORK/ru60.mp4"
mkdir -p "$WORK/out"
/usr/bin/time -f '%e %M' -o "$WORK/ptime.txt" env AUTOSUB_COMMAND_LOG="$WORK/commands.log" "$BIN" -q process \
  "$WORK/ru60.mp4" --translate en --voiceover --vertical --model base-q8_0 --out "$WORK/out" --json > "$WORK/process.json"
ENCODES=$(grep -c libx264 "$WORK/commands.log" || true)

TABLE=$(python3 - "$WORK" "$RUNS" "$EN_CUES" "$RU_CUES" "$ENCODES" <<'EOF'
import json, statistics, sys, datetime, subprocess, collections
work, runs, en_cues, ru_cues, encodes = sys.argv[1:6]
times = collections.defaultdict(list)
for line in open(f"{work}/runs.tsv"):
    name, wall, rss = line.split()
    times[name].append((float(wall), int(rss)))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"Run {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC on {cpu}, `nproc` = "
      f"{subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()}; {runs} run(s) of each, "
      f"interleaved, medians. 60 s of subtitles: English {en_cues} cues (transcribed speech), Russian {ru_cues} cues.")
print()
print("| engine, voice | language | wall, median (s) | runs (s) | RTF | peak RSS (MB) | lines: in slot / sped up / into gap / cut |")
print("|---|---|---:|---|---:|---:|---|")
labels = {"piper-en": ("Piper, en_US-joe-medium", "en"), "espeak-en": ("espeak-ng, en-us", "en"),
          "festival-ru": ("Festival, msu_ru_nsh_clunits", "ru"), "espeak-ru": ("espeak-ng, ru", "ru")}
for name, (label, lang) in labels.items():
    w = [t for t, _ in times[name]]
    med = statistics.median(w)
    rss = max(r for _, r in times[name]) / 1024
    rep = json.load(open(f"{work}/{name}.json"))
    fits = f"{rep['in_slot']} / {rep['sped_up']} / {rep['into_gap']} / {rep['cut']}"
    print(f"| {label} | {lang} | **{med:.2f}** | {' '.join(f'{x:.2f}' for x in w)} | {med / 60:.3f} | {rss:.0f} | {fits} |")
p = json.load(open(f"{work}/process.json"))
wall = open(f"{work}/ptime.txt").read().split()[0]
print()
print(f"`autosub process ru60.mp4 --translate en --voiceover --vertical` (60 s, 1280x720, Russian speech): "
      f"{float(wall):.1f} s in all; voice {p['voiceover']['voice']}, {p['voiceover']['lines']} lines; "
      f"stage timings (ms): {json.dumps(p['timings_ms'], sort_keys=True)}; **video encodes: {encodes}** "
      f"(the voice track joins the one encode).")
EOF
)
echo "$TABLE"
if [ "$WRITE" = 1 ]; then
  python3 - "$ROOT/docs/PERFORMANCE.md" "$TABLE" <<'EOF'
import sys, re
path, table = sys.argv[1], sys.argv[2]
doc = open(path).read()
start, end = "<!-- bench:voiceover:start -->", "<!-- bench:voiceover:end -->"
new = f"{start}\n{table}\n{end}"
doc = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda m: new, doc, flags=re.S) if start in doc else doc + "\n" + new + "\n"
open(path, "w").write(doc)
EOF
  say "wrote docs/PERFORMANCE.md"
fi
say "work folder: $WORK"
