# Build a random-weight CTranslate2 Transformer (OpenNMT-py "transformer base" shape, as argos-train uses)
# and package it in the Argos .argosmodel layout.
import sys, json, os, shutil, zipfile, time
import numpy as np
import ctranslate2, ctranslate2.specs as specs
import sentencepiece as spm

spm_path, out_root = sys.argv[1], sys.argv[2]
layers = int(os.environ.get("LAYERS", "6")); d = int(os.environ.get("DMODEL", "512"))
ff = 4 * d; heads = 8
quant = os.environ.get("QUANT", "int8")
eos_bias = float(os.environ.get("EOS_BIAS", "0"))
from_code, to_code = os.environ.get("FROM", "en"), os.environ.get("TO", "ru")

sp = spm.SentencePieceProcessor(model_file=spm_path)
vocab = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]   # <unk>,<s>,</s>,...
V = len(vocab)
rng = np.random.default_rng(0)

spec = specs.TransformerSpec.from_config((layers, layers), heads, pre_norm=True)
emb = (rng.standard_normal((V, d)) * d ** -0.5).astype(np.float32)   # shared, like share_embeddings
def shape_for(name):
    leaf = name.split("/")[-2:]
    if "embeddings" in name or name.startswith("decoder/projection/weight"): return None
    if leaf[-1] in ("gamma", "beta"): return (d,)
    if "self_attention/linear_0" in name: return (3*d, d) if leaf[-1] == "weight" else (3*d,)
    if "/attention/linear_1" in name and "decoder" in name: return (2*d, d) if leaf[-1] == "weight" else (2*d,)
    if "ffn/linear_0" in name: return (ff, d) if leaf[-1] == "weight" else (ff,)
    if "ffn/linear_1" in name: return (d, ff) if leaf[-1] == "weight" else (d,)
    if "linear_" in name: return (d, d) if leaf[-1] == "weight" else (d,)
    raise KeyError(name)

def fill(layer, name, value):
    attr = name.split("/")[-1]
    if value is not None and not (attr == "bias" and value == "__optional"): return
    if name.endswith("embeddings_0/weight") or name.endswith("embeddings/weight") or name == "decoder/projection/weight":
        setattr(layer, attr, emb); return
    if name == "decoder/projection/bias":
        b = np.zeros((V,), np.float32); b[2] = eos_bias; setattr(layer, attr, b); return
    shp = shape_for(name)
    if attr == "gamma": v = np.ones(shp, np.float32)
    elif attr in ("beta", "bias"): v = np.zeros(shp, np.float32)
    else: v = (rng.standard_normal(shp) * shp[-1] ** -0.5).astype(np.float32)
    setattr(layer, attr, v)
spec._visit(fill)
spec.register_source_vocabulary(vocab)
spec.register_target_vocabulary(vocab)
spec.validate()
spec.optimize(quantization=quant)

pv = "1.9"
top = f"translate-{from_code}_{to_code}-{pv.replace('.', '_')}"
pkg = os.path.join(out_root, top)
shutil.rmtree(pkg, ignore_errors=True); os.makedirs(pkg)
os.makedirs(os.path.join(pkg, "model")); spec.save(os.path.join(pkg, "model"))
shutil.copy(spm_path, os.path.join(pkg, "sentencepiece.model"))
json.dump({"package_version": pv, "argos_version": "1.9.0", "from_code": from_code, "from_name": "English",
           "to_code": to_code, "to_name": "Russian"}, open(os.path.join(pkg, "metadata.json"), "w"), indent=4)
open(os.path.join(pkg, "README.md"), "w").write("# generated test model (random weights)\n")
zpath = os.path.join(out_root, top + ".argosmodel")
with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as z:
    for root, _, files in os.walk(pkg):
        for f in files:
            p = os.path.join(root, f); z.write(p, os.path.relpath(p, out_root))
print("wrote", zpath, os.path.getsize(zpath), "bytes")
