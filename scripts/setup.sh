#!/usr/bin/env bash
# Set up everything forebear needs on a fresh Debian/Ubuntu machine: Graphviz, a virtual
# environment in .venv, and forebear with the extras named in $1 (default: demo).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-demo}"

# System packages: Graphviz draws diagrams.
packages=()
command -v dot >/dev/null 2>&1 || packages+=(graphviz)
if [ "$extras" = test ]; then
  # a real PostgreSQL server and Debian's Chromium (browser tests) for the test suite
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || packages+=(postgresql)
  [ -x /usr/bin/chromium ] || packages+=(chromium)
fi
if [ ${#packages[@]} -gt 0 ]; then
  sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null 2>&1; then
    echo "forebear: please install ${packages[*]} and run this again" >&2
    exit 1
  fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${packages[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if [ ! -x .venv/bin/uv ]; then
  .venv/bin/pip install -q uv 2>&1 | grep -v "is ignored" || true
fi
.venv/bin/uv pip install -q --compile-bytecode --python .venv/bin/python -e ".[${extras}]"
.venv/bin/python -m compileall -q src  # an editable install leaves its own modules uncompiled
