#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite with the ruff lint first.
# Extra arguments go to pytest, e.g. bash scripts/test.sh -k bulge
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-egl}"
.venv/bin/ruff check synthgen tests scripts
.venv/bin/python -m pytest "$@"
