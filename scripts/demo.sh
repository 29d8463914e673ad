#!/usr/bin/env bash
# The main job: log a dataset, train and log a model, print and draw its lineage.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh demo
.venv/bin/python examples/demo.py
