#!/usr/bin/env bash
# The whole test suite: set-up (packages, build, model), formatting, lints, unit + integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
scripts/setup.sh
# The deployment test validates deploy/docker-compose.yml with docker-compose (Debian's package).
# The operators' page is tested in headless Chromium through chromedriver (Debian's packages).
NEED=""
command -v docker-compose >/dev/null || NEED="$NEED docker-compose"
{ command -v chromium >/dev/null && command -v chromedriver >/dev/null; } || NEED="$NEED chromium chromium-driver"
if [ -n "$NEED" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  # shellcheck disable=SC2086
  $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $NEED
fi
# The S3 storage tests run moto's S3 server (PyPI moto[server]).
if ! command -v moto_server >/dev/null && ! python3 -c "import moto.server" 2>/dev/null; then
  python3 -m pip install -q "moto[server]"
fi
export AUTOSUB_MODELS_DIR="${AUTOSUB_MODELS_DIR:-$("$AUTOSUB_BIN" models path)}"
echo "==> cargo fmt --check" >&2
cargo fmt --all -- --check
echo "==> cargo clippy" >&2
cargo clippy --locked --release --workspace --all-targets -- -D warnings
echo "==> cargo test (release: real inference; every test binary runs even after a failure)" >&2
cargo test --locked --release --workspace --no-fail-fast -- --test-threads="${AUTOSUB_TEST_THREADS:-1}"
