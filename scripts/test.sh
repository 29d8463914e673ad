#!/usr/bin/env bash
# Set up and run the whole test suite, plus the type and lint checks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
.venv/bin/ruff check src tests examples
.venv/bin/mypy
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
  echo "forebear: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
