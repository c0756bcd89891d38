#!/usr/bin/python3
"""One training step's worth of work, pgolf vs PyTorch, in the same invocation.

    /usr/bin/python3 bench/grad_vs_torch.py --pgolf build/pgolf [--preset record549]
        [--seq-len 1024] [--batch 1] [--threads 2] [--repeats 3]

Both compute the mean cross-entropy and every parameter gradient of the same weights
(a fresh `pgolf init` checkpoint) on the same tokens, in float32 on CPU with the same
number of threads. pgolf's time is the `seconds` its `grad --json` reports (forward +
backward, excluding checkpoint I/O); PyTorch's is forward + autograd backward of
tests/parity/reference_model.py, an independent implementation of SPEC §2 (explicit
attention: torch 1.13 has no fused SDPA). Best of --repeats after one warm-up each.
Prints both times and their ratio.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "parity"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import reference_model as ref  # noqa: E402
import st_io  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pgolf", required=True)
    ap.add_argument("--preset", default="record549")
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    with tempfile.TemporaryDirectory() as work:
        ckpt = os.path.join(work, "model.safetensors")
        shard = os.path.join(work, "tokens.bin")
        subprocess.run([a.pgolf, "init", "--preset", a.preset, "--out", ckpt], check=True,
                       env=env, stdout=subprocess.DEVNULL)
        tensors, meta = st_io.read_safetensors(ckpt)
        cfg = ref.full_config(json.loads(meta["pgolf_config"]))
        n = a.batch * a.seq_len
        tokens = np.random.default_rng(0).integers(0, cfg["vocab_size"], n + 1)
        st_io.write_shard(shard, tokens)

        # pgolf: forward + backward as timed by the binary itself.
        cmd = [a.pgolf, "grad", "--checkpoint", ckpt, "--tokens", shard, "--seq-len",
               str(a.seq_len), "--batch", str(a.batch), "--out",
               os.path.join(work, "grads.safetensors"), "--json"]
        pgolf_s, pgolf_loss = [], None
        for _ in range(a.repeats + 1):
            out = json.loads(subprocess.run(cmd, check=True, env=env, capture_output=True,
                                            text=True).stdout)
            pgolf_s.append(out["seconds"])
            pgolf_loss = out["val_loss"]

        # PyTorch: the same weights in float32 with autograd.
        P = {k: torch.from_numpy(v.astype(np.float32)).requires_grad_(True)
             for k, v in tensors.items()}
        t = torch.from_numpy(tokens.astype(np.int64))
        x, y = t[:n].view(a.batch, a.seq_len), t[1:].view(a.batch, a.seq_len)
        torch_s, torch_loss = [], None
        for _ in range(a.repeats + 1):
            for p in P.values():
                p.grad = None
            start = time.perf_counter()
            loss = ref.cross_entropy_mean(ref.forward_logits(P, cfg, x), y)
            loss.backward()
            torch_s.append(time.perf_counter() - start)
            torch_loss = float(loss)

    best_p, best_t = min(pgolf_s[1:]), min(torch_s[1:])
    print(f"{a.preset} B={a.batch} T={a.seq_len} threads={a.threads}: "
          f"pgolf {best_p:.3f} s (loss {pgolf_loss:.5f}), "
          f"torch {torch.__version__} {best_t:.3f} s (loss {torch_loss:.5f}), "
          f"speed-up {best_t / best_p:.2f}x")


if __name__ == "__main__":
    main()
