#!/usr/bin/env bash
# Installs the Debian 12 packages pgolf needs to build and test (run as root, or with sudo).
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends \
  g++ cmake make git ca-certificates \
  libopenblas-openmp-dev libomp-dev \
  nlohmann-json3-dev libcli11-dev \
  libgtest-dev googletest \
  python3 python3-torch python3-numpy
