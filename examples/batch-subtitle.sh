#!/usr/bin/env bash
# Subtitle every media file in a folder: `examples/batch-subtitle.sh DIR [autosub process options]`.
# Writes DIR/NAME.srt etc. next to each input; prints one line per file; exits 1 if any file failed.
set -uo pipefail
dir="${1:?usage: batch-subtitle.sh DIR [autosub options]}"; shift
autosub="${AUTOSUB:-autosub}"
failed=0
while IFS= read -r -d '' f; do
  if out=$("$autosub" -q process "$f" --json "$@"); then
    printf 'ok    %s  (%s cues, language %s)\n' "$f" \
      "$(printf '%s' "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["cues"])')" \
      "$(printf '%s' "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["language"])')"
  else
    code=$?
    printf 'FAIL  %s  (exit %d)\n' "$f" "$code"
    failed=1
  fi
done < <(find "$dir" -maxdepth 1 -type f \( -iname '*.mp4' -o -iname '*.mkv' -o -iname '*.mov' -o -iname '*.webm' \
           -o -iname '*.mp3' -o -iname '*.wav' -o -iname '*.m4a' \) -print0 | sort -z)
exit "$failed"
