#!/usr/bin/env python3
"""faster-whisper side of the AutoSub benchmark (scripts/bench/transcribe.sh).

Transcribes one audio file with faster-whisper on a local CTranslate2 model folder -- by default the same weights
that `scripts/setup.sh` converts into AutoSub's ggml model -- and prints ONE JSON line on stdout:

    {"text": ..., "language": ..., "language_probability": ..., "segments": N, "words": N,
     "timings_s": {"import": ..., "load": ..., "decode": ..., "transcribe": ..., "total": ...}, "config": {...}}

"load" is WhisperModel() (reads model.bin, converts it to int8), "decode" is reading the audio file to 16 kHz
samples, "transcribe" is consuming the whole segment generator (language detection, features, encoder, decoder,
word alignment when asked). Nothing is downloaded: HF_HUB_OFFLINE=1 and the model must be a local folder.

    python3 scripts/bench/fw_transcribe.py CLIP.wav [--model DIR] [--beam 5] [--word-timestamps] [--language en]
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

T_START = time.perf_counter()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("audio", help="audio or video file")
    p.add_argument("--model", default="/var/cache/autosub/ct2-base",
                   help="CTranslate2 model folder (default: %(default)s, made by scripts/setup.sh)")
    p.add_argument("--beam", type=int, default=5, help="beam size; 1 = greedy (default: %(default)s)")
    p.add_argument("--word-timestamps", action="store_true", help="also align words (as autosub always does)")
    p.add_argument("--language", default=None, help="ISO 639-1 code; detected when omitted")
    p.add_argument("--threads", type=int, default=2, help="cpu_threads (default: %(default)s)")
    p.add_argument("--compute-type", default="int8", help="CTranslate2 compute type (default: %(default)s)")
    p.add_argument("--vad", action="store_true", help="vad_filter=True (default: off)")
    p.add_argument("--out", default=None, help="also write the segments (with words) as JSON to this file")
    a = p.parse_args()

    if not os.path.isfile(os.path.join(a.model, "model.bin")):
        print(f"fw_transcribe: no CTranslate2 model in {a.model} (run scripts/setup.sh)", file=sys.stderr)
        return 4
    if not os.path.isfile(a.audio):
        print(f"fw_transcribe: no such file: {a.audio}", file=sys.stderr)
        return 3

    t0 = time.perf_counter()
    from faster_whisper import WhisperModel, decode_audio  # heavy: ctranslate2, av, tokenizers

    t1 = time.perf_counter()
    model = WhisperModel(a.model, device="cpu", compute_type=a.compute_type, cpu_threads=a.threads,
                         local_files_only=True)
    t2 = time.perf_counter()
    audio = decode_audio(a.audio, sampling_rate=16000)
    t3 = time.perf_counter()
    segments, info = model.transcribe(audio, language=a.language, beam_size=a.beam,
                                      word_timestamps=a.word_timestamps, vad_filter=a.vad)
    segs = list(segments)  # the generator does the work: consume it fully
    t4 = time.perf_counter()

    text = "".join(s.text for s in segs).strip()
    n_words = sum(len(s.words or []) for s in segs) if a.word_timestamps else len(text.split())
    result = {
        "text": text,
        "language": info.language,
        "language_probability": round(float(info.language_probability), 4),
        "duration_s": round(float(info.duration), 3),
        "segments": len(segs),
        "words": n_words,
        "timings_s": {
            "import": round(t1 - t0, 3),
            "load": round(t2 - t1, 3),
            "decode": round(t3 - t2, 3),
            "transcribe": round(t4 - t3, 3),
            "total": round(t4 - T_START, 3),
        },
        "config": {
            "model": a.model, "compute_type": a.compute_type, "cpu_threads": a.threads, "beam_size": a.beam,
            "word_timestamps": a.word_timestamps, "language": a.language, "vad_filter": a.vad,
        },
    }
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            json.dump({**result, "segments_detail": [
                {"start": s.start, "end": s.end, "text": s.text,
                 "words": [{"start": w.start, "end": w.end, "word": w.word, "probability": w.probability}
                           for w in (s.words or [])]}
                for s in segs]}, f, ensure_ascii=False, indent=1)
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
