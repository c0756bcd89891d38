#!/usr/bin/env bash
# The main job, end to end. Until training lands (issue 3) it is a smoke run: build,
# initialise a `tiny` model, and compute its loss and every gradient on a random shard.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
out=runs/smoke
mkdir -p "$out"
# A shard of 4097 random tokens in the challenge format (SPEC §5).
perl -e 'srand(1); my $n = 4097; print pack("l<256", 20240520, 1, $n, (0) x 253);
         print pack("S<*", map { int(rand(1024)) } 1 .. $n)' > "$out/random_tokens.bin"
./build/pgolf init --preset tiny --out "$out/tiny.safetensors"
./build/pgolf grad --checkpoint "$out/tiny.safetensors" --tokens "$out/random_tokens.bin" \
  --seq-len 1024 --batch 4 --out "$out/tiny_grads.safetensors"
