#!/usr/bin/env bash
# Set up a virtual environment and open the app on a bundled example.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e .
exec surgeon-gui "${1:-resources/examples/tf1_cond_bn_dropout.pb}"
