#!/usr/bin/env bash
# Set up synthgen in ./.venv: system OpenGL libraries for headless rendering (EGL + Mesa),
# then the package with the extras given (default: gl,cad,augment,torch,blender,distributed,dev). Safe to run again.
#   bash scripts/setup.sh            # all but none of the GPU-only parts
#   EXTRAS=gl,dev bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${EXTRAS:-gl,cad,augment,torch,blender,distributed,dev}"
PYTHON="${PYTHON:-python3}"

# Headless OpenGL: libEGL + Mesa's software rasteriser (Debian package names).
missing=()
for pkg in libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri libgbm1; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: please install these system packages for headless rendering: ${missing[*]}" >&2
  fi
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[${EXTRAS}]"
echo "setup: synthgen installed in .venv with extras [${EXTRAS}]"
