#!/usr/bin/env python3
"""Build an Argos Translate package (.argosmodel) with a random-weight model, for tests and benchmarks.

No real English<->Russian weights can be had on machines without a model hub, so the tests exercise the whole
argos path (index, download, install, load, translate, re-segment, render) with a package in the real layout:
a sentencepiece model trained here on a synthetic corpus, and a CTranslate2 TransformerSpec (OpenNMT-py
"transformer base" shape, as argos-train makes) with random weights, quantised like real packages. Its output is
nonsense but deterministic; CTranslate2 itself (the Python wheel) serves as the reference the Rust engine is
compared with.

    make_package.py OUT_DIR [--from en] [--to ru] [--vocab 1000] [--layers 2] [--dmodel 64] [--eos-bias 0]
                    [--version 1.9] [--quant int8] [--lines 20000]

Needs `pip install ctranslate2 sentencepiece numpy`. Prints the package path, its size and sha256.
Deterministic: the same arguments give the same model (the zip's timestamps are fixed too).
"""
import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import zipfile

import numpy as np


def corpus(path, lines, seed=1):
    """A synthetic corpus: pseudo-words of Latin syllables with a Zipf-like frequency, one sentence a line."""
    rnd = random.Random(seed)
    syl = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"] + ["th", "sh", "ch", "qu", "ng"]
    words = set()
    while len(words) < 60000:
        words.add("".join(rnd.choice(syl) for _ in range(rnd.randint(1, 4))))
    words = sorted(words)
    cum, acc = [], 0.0
    for i in range(len(words)):
        acc += 1.0 / (i + 1) ** 0.8
        cum.append(acc)
    with open(path, "w") as f:
        for _ in range(lines):
            s = " ".join(rnd.choices(words, cum_weights=cum, k=rnd.randint(4, 16)))
            f.write(s.capitalize() + ".\n")


def train_spm(out_dir, vocab, lines):
    import sentencepiece as spm

    prefix = os.path.join(out_dir, f"spm{vocab}")
    if not os.path.exists(prefix + ".model"):
        text = os.path.join(out_dir, f"corpus{lines}.txt")
        if not os.path.exists(text):
            corpus(text, lines)
        spm.SentencePieceTrainer.train(
            input=text, model_prefix=prefix, vocab_size=vocab, model_type="unigram",
            character_coverage=1.0, num_threads=2, seed_sentencepiece_size=200000,
            input_sentence_size=lines, shuffle_input_sentence=False, minloglevel=2)
    return prefix + ".model"


def build_model(spm_path, model_dir, layers, d, quant, eos_bias):
    import ctranslate2.specs as specs
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=spm_path)
    vocab = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]  # <unk>, <s>, </s>, ...
    V, ff = len(vocab), 4 * d
    rng = np.random.default_rng(0)
    spec = specs.TransformerSpec.from_config((layers, layers), 8, pre_norm=True)
    emb = (rng.standard_normal((V, d)) * d ** -0.5).astype(np.float32)  # shared, like share_embeddings

    def shape_for(name):
        leaf = name.split("/")[-2:]
        if leaf[-1] in ("gamma", "beta"):
            return (d,)
        if "self_attention/linear_0" in name:
            return (3 * d, d) if leaf[-1] == "weight" else (3 * d,)
        if "/attention/linear_1" in name and "decoder" in name:
            return (2 * d, d) if leaf[-1] == "weight" else (2 * d,)
        if "ffn/linear_0" in name:
            return (ff, d) if leaf[-1] == "weight" else (ff,)
        if "ffn/linear_1" in name:
            return (d, ff) if leaf[-1] == "weight" else (d,)
        if "linear_" in name:
            return (d, d) if leaf[-1] == "weight" else (d,)
        raise KeyError(name)

    def fill(layer, name, value):
        attr = name.split("/")[-1]
        if value is not None and not (attr == "bias" and value == "__optional"):
            return
        if name.endswith("embeddings_0/weight") or name.endswith("embeddings/weight") or name == "decoder/projection/weight":
            setattr(layer, attr, emb)
            return
        if name == "decoder/projection/bias":
            b = np.zeros((V,), np.float32)
            b[2] = eos_bias  # </s>: a bias makes the random model stop
            setattr(layer, attr, b)
            return
        shp = shape_for(name)
        if attr == "gamma":
            v = np.ones(shp, np.float32)
        elif attr in ("beta", "bias"):
            v = np.zeros(shp, np.float32)
        else:
            v = (rng.standard_normal(shp) * shp[-1] ** -0.5).astype(np.float32)
        setattr(layer, attr, v)

    spec._visit(fill)
    spec.register_source_vocabulary(vocab)
    spec.register_target_vocabulary(vocab)
    spec.validate()
    spec.optimize(quantization=quant)
    spec.save(model_dir)


NAMES = {"en": "English", "ru": "Russian", "de": "German", "es": "Spanish", "fr": "French"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--from", dest="src", default="en")
    ap.add_argument("--to", dest="tgt", default="ru")
    ap.add_argument("--vocab", type=int, default=1000)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--dmodel", type=int, default=64)
    ap.add_argument("--eos-bias", type=float, default=0.0)
    ap.add_argument("--version", default="1.9")
    ap.add_argument("--quant", default="int8")
    ap.add_argument("--lines", type=int, default=20000)
    a = ap.parse_args()

    os.makedirs(a.out, exist_ok=True)
    spm_path = train_spm(a.out, a.vocab, a.lines)
    top = f"translate-{a.src}_{a.tgt}-{a.version.replace('.', '_')}"
    work = os.path.join(a.out, "build-" + top)
    shutil.rmtree(work, ignore_errors=True)
    pkg = os.path.join(work, top)
    os.makedirs(os.path.join(pkg, "model"))
    build_model(spm_path, os.path.join(pkg, "model"), a.layers, a.dmodel, a.quant, a.eos_bias)
    shutil.copy(spm_path, os.path.join(pkg, "sentencepiece.model"))
    meta = {"package_version": a.version, "argos_version": "1.9.0", "from_code": a.src,
            "from_name": NAMES.get(a.src, a.src), "to_code": a.tgt, "to_name": NAMES.get(a.tgt, a.tgt),
            "type": "translate"}
    with open(os.path.join(pkg, "metadata.json"), "w") as f:
        json.dump(meta, f, indent=4)
    with open(os.path.join(pkg, "README.md"), "w") as f:
        f.write("# Generated test package (random weights): output is nonsense\n")
    zpath = os.path.join(a.out, top + ".argosmodel")
    tmp = zpath + ".tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for root, dirs, files in os.walk(pkg):
            dirs.sort()
            for name in sorted(files):
                p = os.path.join(root, name)
                info = zipfile.ZipInfo(os.path.relpath(p, work), date_time=(2024, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                with open(p, "rb") as f:
                    z.writestr(info, f.read())
    os.replace(tmp, zpath)
    shutil.rmtree(work)
    h = hashlib.sha256(open(zpath, "rb").read()).hexdigest()
    print(json.dumps({"path": zpath, "size": os.path.getsize(zpath), "sha256": h, "spm": spm_path,
                      **meta}))


if __name__ == "__main__":
    sys.exit(main())
