#!/usr/bin/env bash
# Set up a virtual environment with the test extras and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e '.[test]'
# Real trained models for tests/test_real_models.py. --no-deps: their declared pins
# (numpy<1.17, tensorflow==2.5) cannot be met next to a current TensorFlow, and no code of
# theirs runs (only their data files are read).
python -m pip install -q --no-deps musicnn==0.1.0 retinaface==1.1.1
export QT_QPA_PLATFORM=offscreen
python -m pytest -q "$@"
