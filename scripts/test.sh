#!/usr/bin/env bash
# The test command: installs dependencies, builds, and runs the whole suite (ctest):
# kernel and model gradient checks, io/config tests, and PyTorch parity.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
cd build && ctest --output-on-failure -j1 "$@"
