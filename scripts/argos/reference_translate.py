#!/usr/bin/env python3
"""Translate lines with an extracted Argos package the way Argos Translate does (Python CTranslate2 and
sentencepiece), as the reference the Rust engine's output is compared with in the tests.

    reference_translate.py PACKAGE_DIR < lines.txt > translations.txt     (one line in, one line out)

Same settings as argostranslate's translate.py and AutoSub's engine: pieces without </s>, beam 4, length penalty
0.2, unknowns replaced, output at most 2 x the longest input + 10 pieces (at most 256), pieces joined by
sentencepiece (control pieces such as <s> dropped).
"""
import os
import sys

import ctranslate2
import sentencepiece as spm

pkg = sys.argv[1]
sp = spm.SentencePieceProcessor(model_file=os.path.join(pkg, "sentencepiece.model"))
tr = ctranslate2.Translator(os.path.join(pkg, "model"), device="cpu", inter_threads=1, intra_threads=1)
lines = [l.rstrip("\n") for l in sys.stdin]
pieces = [sp.encode(l.strip(), out_type=str) for l in lines]
out = []
for i in range(0, len(pieces), 16):
    batch = pieces[i:i + 16]
    longest = max((len(p) for p in batch), default=0)
    res = tr.translate_batch(batch, beam_size=4, length_penalty=0.2, replace_unknowns=True, max_batch_size=16,
                             max_decoding_length=min(2 * longest + 10, 256))
    for r in res:
        out.append(" ".join(sp.decode(r.hypotheses[0]).split()))
sys.stdout.write("\n".join(out) + ("\n" if out else ""))
