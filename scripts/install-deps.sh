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
)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" != 0 ] && SUDO=sudo
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
