# Sourced by the scripts: where builds and downloads go, outside the clone.
# Root uses /var/cache/autosub (shared, survives clones); other users ~/.cache/autosub.
if [ "$(id -u)" = 0 ]; then CACHE_BASE=/var/cache/autosub; else CACHE_BASE="${XDG_CACHE_HOME:-$HOME/.cache}/autosub"; fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE_BASE/target}"
AUTOSUB_CACHE="${AUTOSUB_CACHE:-$CACHE_BASE}"
AUTOSUB_BIN="$CARGO_TARGET_DIR/release/autosub"
