#!/usr/bin/env bash
# Set up everything forebear needs on a fresh Debian/Ubuntu machine: Graphviz, a virtual
# environment in .venv, and forebear with the extras named in $1 (default: demo).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-demo}"

if ! command -v dot >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null
  else
    echo "forebear: please install Graphviz (the 'dot' program) and run this again" >&2
    exit 1
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if [ ! -x .venv/bin/uv ]; then
  .venv/bin/pip install -q uv 2>&1 | grep -v "is ignored" || true
fi
.venv/bin/uv pip install -q --compile-bytecode --python .venv/bin/python -e ".[${extras}]"
