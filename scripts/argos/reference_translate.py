#!/usr/bin/env python3
"""Translate lines with an extracted Argos package through the Python CTranslate2 wheel and sentencepiece, with the
settings of AutoSub's argos engine, as the reference the Rust engine's output is compared with in the tests.

    reference_translate.py PACKAGE_DIR [THREADS [MIN_LEN]] < lines.txt > translations.txt   (a line in, a line out)

THREADS: CTranslate2 intra-op threads (default 1); MIN_LEN: min_decoding_length (default 1), for the benchmark.
The time spent translating is printed on stderr as JSON.

Same settings as argostranslate's translate.py and AutoSub's engine: pieces without </s>, beam 4, length penalty
0.2, unknowns replaced, output at most 2 x the longest input + 10 pieces (at most 256), pieces joined by
sentencepiece (control pieces such as <s> dropped).
"""
import os
import sys

import ctranslate2
import sentencepiece as spm

import json
import time

pkg = sys.argv[1]
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 1
min_len = int(sys.argv[3]) if len(sys.argv) > 3 else 1
sp = spm.SentencePieceProcessor(model_file=os.path.join(pkg, "sentencepiece.model"))
tr = ctranslate2.Translator(os.path.join(pkg, "model"), device="cpu", inter_threads=1, intra_threads=threads)
lines = [l.rstrip("\n") for l in sys.stdin]
pieces = [sp.encode(l.strip(), out_type=str) for l in lines]
out = []
t0 = time.perf_counter()
for i in range(0, len(pieces), 16):
    batch = pieces[i:i + 16]
    longest = max((len(p) for p in batch), default=0)
    res = tr.translate_batch(batch, beam_size=4, length_penalty=0.2, replace_unknowns=True, max_batch_size=16,
                             max_decoding_length=max(min(2 * longest + 10, 256), min_len),
                             min_decoding_length=max(min_len, 1))
    for r in res:
        out.append(" ".join(sp.decode(r.hypotheses[0]).split()))
spent = time.perf_counter() - t0
sys.stdout.write("\n".join(out) + ("\n" if out else ""))
sys.stderr.write(json.dumps({"threads": threads, "lines": len(lines), "translate_s": round(spent, 3),
                             "lines_per_s": round(len(lines) / spent, 2) if spent else None}) + "\n")
