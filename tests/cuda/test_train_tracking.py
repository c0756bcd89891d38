#!/usr/bin/python3
"""50 training steps of `tiny` on the CPU and on the GPU track each other (issue 7).

Both runs start from the same seeded weights and read the same batches; they differ only
in precision (SPEC mixed precision: the GPU keeps fp32 master weights and optimizer state
but bf16 activations and GEMM operands, the CPU computes in fp32) and in the order of
floating-point sums. The run exercises every part of the GPU step: two micro-steps per step
(the captured micro-step graph replayed on different batches), a warm-up rolled back,
gradient clipping, EMA and SWA, late QAT, a checkpoint mid-run (device to host) and a resume
on the GPU (host to device); and `pgolf eval --device cuda` (standard and sliding) against
the CPU's on the same weights.

Tolerances (reasoned, not yet measured: no GPU has run this): bf16 rounds each activation to
a relative 2^-9 ≈ 2e-3, and the mean loss averages those errors over 8,192 tokens, so the
first step's losses agree to ~1e-3; the runs then drift apart slowly, as two seeds of one
run do not: 50 steps at these learning rates stay within a few percent.
  step 1:        |Δloss| / loss ≤ 5e-3
  every step:    |Δloss| / loss ≤ 3e-2
  val_bpb (step 50, EMA weights, the artifact's round trip): relative ≤ 2e-2
  pgolf eval of one set of weights, GPU vs CPU (no drift, only rounding): relative ≤ 1e-2
Without a GPU the test exits 77, which ctest reports as skipped, and says why.

    python3 tests/cuda/test_train_tracking.py --pgolf PATH --corpus DIR --workdir DIR
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from cli_checks import CliChecks, corpus_test_args, slice_data, train_losses  # noqa: E402

SKIP = 77


def main():
    a = corpus_test_args(__doc__)
    w = lambda *p: os.path.join(a.workdir, *p)  # noqa: E731
    checks = CliChecks(a.pgolf, timeout=1800)
    check, pgolf = checks.check, checks.run

    probe = pgolf("train", "--device", "cuda", "--preset", "tiny", "--data", w("none"),
                  "--out", w("probe"))
    if "no CUDA GPU found" in probe.stderr:
        print("SKIPPED: no CUDA GPU: the 50-step CPU/GPU tracking run cannot run here "
              f"({probe.stderr.strip()})")
        return SKIP

    if slice_data(checks, a.corpus, a.workdir) is None:
        return 1
    common = ["--preset", "tiny", "--data", w("data"), "--set", "vocab_size=512",
              "--set", "iterations=50", "--set", "warmdown_iters=20", "--set", "warmup_steps=2",
              "--set", "train_batch_tokens=8192", "--set", "train_seq_len=256",
              "--set", "grad_accum_steps=2", "--set", "val_batch_size=8192",
              "--set", "val_loss_every=25", "--set", "train_log_every=1",
              "--set", "max_wallclock_seconds=0", "--set", "grad_clip_norm=0.3",
              "--set", "ema_enabled=true", "--set", "swa_enabled=true",
              "--set", "late_qat_threshold=0.3", "--set", "checkpoint_every=20",
              "--set", "gptq=false", "--set", "eval_stride=0", "--set", "ttt_enabled=false"]
    runs = {}
    for device in ("cpu", "cuda"):
        r = pgolf("train", *common, "--device", device, "--out", w(device))
        if not check(r.returncode == 0, f"train on {device}: {r.stderr.strip()[-500:]}"):
            return checks.finish("cuda.train_tracking")
        runs[device] = json.load(open(w(device, "summary.json")))
    cpu, gpu = train_losses(w("cpu")), train_losses(w("cuda"))
    check(sorted(cpu) == sorted(gpu) == list(range(1, 51)), "50 logged steps on each device")
    rel = {s: abs(gpu[s] - cpu[s]) / cpu[s] for s in cpu if s in gpu}
    worst = max(rel, key=rel.get)
    print("step  cpu loss     gpu loss     rel")
    for s in (1, 2, 10, 20, 30, 40, 50):
        if s in rel:
            print(f"{s:4d}  {cpu[s]:.6f}  {gpu[s]:.6f}  {rel[s]:.2e}")
    check(rel.get(1, 1) <= 5e-3, f"step 1 losses agree: rel {rel.get(1, 1):.2e} <= 5e-3")
    check(rel[worst] <= 3e-2, f"every step tracks: worst rel {rel[worst]:.2e} at step {worst}")
    check(gpu[50] < gpu[1], f"the GPU run learns: {gpu[1]:.4f} -> {gpu[50]:.4f}")
    figures = lambda s: {"step 50": s["last_step_standard"]["val_bpb"],  # noqa: E731
                         "EMA weights": s["val_bpb_prequant"],
                         "artifact round trip": s["val_bpb_roundtrip"]}
    for key, c in figures(runs["cpu"]).items():
        g = figures(runs["cuda"])[key]
        check(abs(g - c) / c <= 2e-2, f"val_bpb, {key}: cpu {c:.5f} gpu {g:.5f} "
                                      f"(rel {abs(g - c) / c:.2e})")
    s = runs["cuda"]
    check(s.get("device", "").startswith("cuda") and s.get("peak_device_bytes", 0) > 0,
          f"the GPU summary names its device ({s.get('device')}) and peak memory "
          f"({s.get('peak_device_bytes')} bytes)")

    # pgolf eval --device cuda on the GPU run's weights, standard and sliding, against the CPU.
    for extra in ([], ["--stride", "64"]):
        got = {}
        for device in ("cpu", "cuda"):
            r = pgolf("eval", "--checkpoint", w("cuda", "model.safetensors"), "--data", w("data"),
                      "--seq-len", "256", "--batch", "8", "--json", "--device", device, *extra)
            if check(r.returncode == 0, f"eval {' '.join(extra)} on {device}: {r.stderr.strip()}"):
                got[device] = json.loads(r.stdout)
        if len(got) == 2:
            c, g = got["cpu"]["val_bpb"], got["cuda"]["val_bpb"]
            check(got["cuda"]["device"] == "cuda" and got["cuda"]["tokens"] == got["cpu"]["tokens"]
                  and abs(g - c) / c <= 1e-2,
                  f"eval {got['cuda']['eval']} on the GPU: val_bpb {g:.5f} vs cpu {c:.5f} over "
                  f"{got['cuda']['tokens']} tokens (bf16 activations: rel <= 1e-2)")

    # Stop at step 25 and resume on the GPU: the state goes device → checkpoint → device.
    r = pgolf("train", *common, "--device", "cuda", "--out", w("resumed"), "--stop-at-step", "25")
    check(r.returncode == 0, f"GPU run stopped at step 25: {r.stderr.strip()[-300:]}")
    r = pgolf("train", "--resume", "--device", "cuda", "--out", w("resumed"))
    if check(r.returncode == 0, f"GPU run resumed: {r.stderr.strip()[-300:]}"):
        res = train_losses(w("resumed"))
        worst = max(abs(res[s] - gpu[s]) / gpu[s] for s in range(26, 51))
        check(worst <= 3e-2, f"the resumed GPU run tracks the uninterrupted one: worst rel "
                             f"{worst:.2e} over steps 26-50")
    return checks.finish("cuda.train_tracking")


if __name__ == "__main__":
    sys.exit(main())
