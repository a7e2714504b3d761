#!/usr/bin/env python3
"""Turns the raw runs of scripts/bench/transcribe.sh into the Markdown report (and, with --write, puts it into
docs/PERFORMANCE.md between <!-- bench:transcribe:start --> and <!-- bench:transcribe:end -->).

    python3 scripts/bench/report.py WORKDIR [--write DOC]

WORKDIR holds what transcribe.sh left there: configs.tsv, clips.tsv, runs.tsv, meta.env and out/ (each run's
output). Only standard-library Python.
"""

import argparse
import json
import os
import re
import statistics
import sys

START = "<!-- bench:transcribe:start -->"
END = "<!-- bench:transcribe:end -->"


def read_tsv(path):
    with open(path, encoding="utf-8") as f:
        lines = [ln.rstrip("\n") for ln in f if ln.strip()]
    head = lines[0].split("\t")
    return [dict(zip(head, ln.split("\t"))) for ln in lines[1:]]


def read_meta(path):
    meta = {}
    with open(path, encoding="utf-8") as f:
        for ln in f:
            if "=" in ln:
                k, v = ln.rstrip("\n").split("=", 1)
                meta[k] = v
    return meta


# --- text of an output ---------------------------------------------------------------------------------------------

def autosub_text(doc):
    """The recognised text of an `autosub transcribe` JSON document, whatever of its fields carries it."""
    if isinstance(doc.get("text"), str) and doc["text"].strip():
        return doc["text"].strip()
    words = doc.get("words")
    if isinstance(words, list) and words:
        parts = []
        for w in words:
            t = w.get("text", w.get("word", "")) if isinstance(w, dict) else str(w)
            parts.append(str(t).strip())
        return " ".join(p for p in parts if p)
    cues = doc.get("cues")
    if isinstance(cues, list):
        parts = []
        for c in cues:
            if isinstance(c, dict):
                t = c.get("text")
                if t is None and isinstance(c.get("lines"), list):
                    t = " ".join(map(str, c["lines"]))
                parts.append(str(t or "").strip())
        return " ".join(p for p in parts if p)
    return ""


def output_of(system, path):
    """(text, language, inner timings in seconds) of one run's output file, or (None, None, {})."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = f.read()
    except OSError:
        return None, None, {}
    try:
        if system == "faster-whisper":
            try:
                doc = json.loads(raw)
            except ValueError:  # its stdout: the last line is the JSON
                doc = json.loads(raw.strip().splitlines()[-1])
            return doc.get("text", ""), doc.get("language"), doc.get("timings_s", {})
        doc = json.loads(raw)
        timings = {k: v / 1000.0 for k, v in (doc.get("timings_ms") or {}).items() if isinstance(v, (int, float))}
        return autosub_text(doc), doc.get("language"), timings
    except (ValueError, IndexError, AttributeError):
        return None, None, {}


# --- word error rate -----------------------------------------------------------------------------------------------

def normalize(text):
    """Lower case; hyphens and dashes split words; every other punctuation mark dropped (apostrophes inside words
    kept). No spelling or number normalisation: 'woodcutters' vs 'wood cutters' counts as errors."""
    t = text.lower().replace("\u2019", "'")
    t = re.sub(r"[-\u2010-\u2015/]", " ", t)
    t = re.sub(r"[^\w\s']", "", t)
    t = re.sub(r"(^|\s)'+|'+(\s|$)", " ", t)
    return t.split()


def wer(ref, hyp):
    """(errors, reference words): Levenshtein distance over words."""
    r, h = normalize(ref), normalize(hyp)
    prev = list(range(len(h) + 1))
    for i, rw in enumerate(r, 1):
        cur = [i] + [0] * len(h)
        for j, hw in enumerate(h, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (rw != hw))
        prev = cur
    return prev[-1], len(r)


# --- report --------------------------------------------------------------------------------------------------------

def fmt_s(x):
    return f"{x:.2f}"


def build(work):
    meta = read_meta(os.path.join(work, "meta.env"))
    configs = read_tsv(os.path.join(work, "configs.tsv"))
    clips = read_tsv(os.path.join(work, "clips.tsv"))
    runs = read_tsv(os.path.join(work, "runs.tsv"))

    rows = {}  # (clip, cfg) -> dict
    for c in clips:
        ref = None
        if c.get("reference"):
            with open(c["reference"], encoding="utf-8") as f:
                ref = f.read()
        for cfg in configs:
            mine = [r for r in runs if r["clip"] == c["id"] and r["config"] == cfg["id"]]
            ok = [r for r in mine if r["rc"] == "0"]
            texts, langs, inner = [], [], {}
            for r in ok:
                t, lang, tim = output_of(cfg["system"], r["output"])
                if t is not None:
                    texts.append(t)
                    langs.append(lang)
                for k, v in tim.items():
                    inner.setdefault(k, []).append(v)
            row = {"clip": c, "cfg": cfg, "runs": mine, "ok": ok, "ref": ref, "texts": texts, "langs": langs,
                   "inner": {k: statistics.median(v) for k, v in inner.items()}}
            if ok:
                walls = [float(r["wall_s"]) for r in ok]
                row["walls"] = walls
                row["wall"] = statistics.median(walls)
                row["rtf"] = row["wall"] / float(c["duration_s"])
                row["rss"] = statistics.median(float(r["maxrss_kb"]) / 1024.0 for r in ok)
                row["cpu"] = statistics.median(float(r.get("cpu_s") or 0) for r in ok)
            rows[(c["id"], cfg["id"])] = row

    out = []
    p = out.append
    p(f"Measured {meta.get('date', '?')} on {meta.get('cpu', '?')}, `nproc` = {meta.get('nproc', '?')}, "
      f"{meta.get('mem', '?')} RAM, {meta.get('os', '?')}; runs of each configuration: {meta.get('runs', '?')}, "
      f"interleaved, median shown.  ")
    p(f"autosub: {meta.get('autosub_version', '?')} (release build); faster-whisper {meta.get('fw_version', '?')}, "
      f"ctranslate2 {meta.get('ct2_version', '?')}; ffmpeg {meta.get('ffmpeg_version', '?')}; load average "
      f"(1, 5, 15 min) {meta.get('load_before', '?')} before, {meta.get('load_after', '?')} after.  ")
    p(f"Weights: `{meta.get('ct2_dir', '?')}` (CTranslate2, what faster-whisper runs, int8 at load time) and the "
      f"ggml files autosub imported from that same folder (`{meta.get('models_dir', '?')}`).")
    p("")
    if meta.get("note"):
        p(f"**Note:** {meta['note']}")
        p("")
    p("| clip | system | model | decoding | word timings | wall, median (s) | runs (s) | RTF | CPU (s) "
      "| peak RSS (MB) | autosub / fw | WER |")
    p("|---|---|---|---|---|---:|---|---:|---:|---:|---:|---:|")
    for c in clips:
        for cfg in configs:
            row = rows[(c["id"], cfg["id"])]
            dec = "greedy" if cfg["beam"] == "1" else f"beam {cfg['beam']}"
            wt = "yes" if cfg["word_timestamps"] == "1" else "no"
            if not row["ok"]:
                p(f"| {c['id']} | {cfg['system']} | {cfg['model']} | {dec} | {wt} | failed | | | | | | |")
                continue
            ratio = ""
            if cfg["system"] == "autosub":
                base = rows.get((c["id"], cfg.get("baseline", "")))
                if base and base.get("wall"):
                    ratio = f"{row['wall'] / base['wall']:.2f}"
            acc = ""
            if row["texts"]:
                text = row["texts"][0]
                if row["ref"] is not None:
                    e, n = wer(row["ref"], text)
                    acc = f"{100.0 * e / n:.1f} %"
                else:
                    base = rows.get((c["id"], cfg.get("baseline") or cfg["id"]))
                    if cfg["system"] == "autosub" and base and base["texts"]:
                        e, n = wer(base["texts"][0], text)
                        acc = f"({100.0 * e / max(n, 1):.1f} % vs fw)"
                    else:
                        acc = "n/a"
            walls = " ".join(fmt_s(w) for w in row["walls"])
            failed = len(row["runs"]) - len(row["ok"])
            if failed:
                walls += f" ({failed} failed)"
            p(f"| {c['id']} | {cfg['system']} | {cfg['model']} | {dec} | {wt} | **{fmt_s(row['wall'])}** | {walls} "
              f"| {row['rtf']:.3f} | {row['cpu']:.1f} | {row['rss']:.0f} | {ratio} | {acc} |")
    p("")

    # Targets, for the default configuration (first autosub config: base-q8_0, beam 5).
    main_cfg = next((cfg for cfg in configs if cfg["system"] == "autosub"), None)
    if main_cfg:
        p(f"Targets, for `autosub transcribe --model {main_cfg['model']}` (beam 5, 2 threads):")
        p("")
        for c in clips:
            row = rows[(c["id"], main_cfg["id"])]
            if not row["ok"]:
                p(f"- {c['id']}: failed")
                continue
            base = rows.get((c["id"], main_cfg.get("baseline", "")))
            ok = lambda b: "met" if b else "**NOT met**"  # noqa: E731
            s = (f"- {c['id']}: RTF {row['rtf']:.3f} (target <= 0.10: {ok(row['rtf'] <= 0.10)}); peak RSS "
                 f"{row['rss']:.0f} MB (target <= 600: {ok(row['rss'] <= 600)})")
            if base and base.get("wall"):
                s += (f"; {fmt_s(row['wall'])} s vs faster-whisper int8 beam 5 {fmt_s(base['wall'])} s "
                      f"(target: not slower: {ok(row['wall'] <= base['wall'])})")
            p(s + ".")
        p("")

    # Inner timings and languages.
    p("<details><summary>Inner timings (median, seconds) and detected language</summary>")
    p("")
    p("| clip | system | model | decoding | word timings | language | inner timings |")
    p("|---|---|---|---|---|---|---|")
    for c in clips:
        for cfg in configs:
            row = rows[(c["id"], cfg["id"])]
            if not row["ok"]:
                continue
            dec = "greedy" if cfg["beam"] == "1" else f"beam {cfg['beam']}"
            wt = "yes" if cfg["word_timestamps"] == "1" else "no"
            langs = sorted({str(lang) for lang in row["langs"]}) or ["?"]
            inner = ", ".join(f"{k} {v:.2f}" for k, v in row["inner"].items()) or "n/a"
            p(f"| {c['id']} | {cfg['system']} | {cfg['model']} | {dec} | {wt} | {'/'.join(langs)} | {inner} |")
    p("")
    p("faster-whisper: `import` (Python modules), `load` (WhisperModel(): read model.bin, convert to int8), `decode` "
      "(audio to samples), `transcribe` (the whole generator), `total` (process start to end). autosub: the stage "
      "timings of its JSON document (`timings_ms`); wall time minus their sum is process start-up and model load.")
    p("")
    p("</details>")
    p("")

    p("Commands (each under `/usr/bin/time -f '%e %M %U %S' env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`; "
      "`%e` = wall seconds, `%M` = peak RSS in KB, `%U + %S` = the CPU (s) column: user + system CPU seconds, "
      "which other load on the machine disturbs less than wall time):")
    p("")
    p("```sh")
    for cfg in configs:
        p(cfg["command"].replace("{clip}", "CLIP.wav").replace("{out}", "OUT.json"))
    p("```")
    p("")
    p("Clips: " + "; ".join(f"`{c['id']}` = {c['describe']}" for c in clips) + ".")
    p("")
    p("WER: against the reference transcript, both lower-cased, hyphens split, other punctuation dropped, no "
      "number or spelling normalisation (`woodcutters` vs `wood cutters` counts); computed on the first run's text. "
      "Clips without a reference show the autosub text's word difference from the faster-whisper output of the "
      "same beam setting instead (not an error rate: neither is ground truth).")
    return "\n".join(out) + "\n"


def write_doc(doc_path, body):
    with open(doc_path, encoding="utf-8") as f:
        doc = f.read()
    if START not in doc or END not in doc or doc.index(START) > doc.index(END):
        print(f"report: {doc_path} lacks the markers {START} ... {END}", file=sys.stderr)
        sys.exit(1)
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END, 1)
    new = head + START + "\n" + body + END + tail
    tmp = doc_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(new)
    os.replace(tmp, doc_path)
    print(f"report: results written into {doc_path}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("--write", metavar="DOC", help="insert the report into DOC between the bench markers")
    a = ap.parse_args()
    body = build(a.work)
    sys.stdout.write(body)
    if a.write:
        write_doc(a.write, body)


if __name__ == "__main__":
    main()
