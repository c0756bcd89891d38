#!/usr/bin/python3
"""Training throughput, `pgolf train` vs the PyTorch reference trainer, in one invocation.

    /usr/bin/python3 bench/train_vs_torch.py --pgolf build/pgolf [--threads 2]
        [--cases tiny,record549] [--steps N] [--tiny-batch 16] [--record-batch 4]
        [--shared SHARED_DATA_DIR]

Cases: `tiny` (preset tiny at train_seq_len 256) and `record549` (the record549 shape at
train_seq_len 1024). For each, both trainers start from the same `pgolf init` weights, read
the same shards (random tokens; the shared sp1024 tokenizer) with the same batch (one
micro-step of --*-batch sequences), the same optimizers (Muon + AdamW + Adam, grad clip as
configured) and the same number of threads, in float32 on CPU:

- pgolf: `pgolf train --preset P --set ...` with warmup_steps 0, val_loss_every 0, EMA/SWA/
  late QAT off (the reference trainer models none of them), max_wallclock_seconds 0; its
  per-step time is the `step_ms` of each train event in RUN/metrics.jsonl (forward +
  backward + optimizer, no evaluation, no I/O);
- PyTorch: tests/parity/reference_train.py (on reference_model.py: explicit attention, as
  torch 1.13 has no fused SDPA) with the run's own config.json; its per-step time is the
  same span, measured around each step.

Tokens/s of each is train_batch_tokens / median step time over the steps after the first
2. Prints `<case>: pgolf X tok/s, torch Y tok/s, speed-up Z×` (plus the step times and both
runs' first/last losses: same weights, same data, so they should agree closely).
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.dont_write_bytecode = True
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "parity"))

import torch  # noqa: E402

import reference_model as ref  # noqa: E402
import reference_train as rt  # noqa: E402
import st_io  # noqa: E402
from bench_support import (pgolf_init, pgolf_train, timed_train_settings,  # noqa: E402
                           write_random_shards)

SKIP = 2  # steps excluded from the median (first-touch allocations, cache warm-up)


def case_settings(case, a):
    """(preset, seq_len, batch sequences, steps)."""
    if case == "tiny":
        return "tiny", 256, a.tiny_batch, a.steps or 8
    if case == "record549":
        return "record549", 1024, a.record_batch, a.steps or 4
    raise SystemExit(f"unknown case {case} (known: tiny, record549)")


def write_data(ddir, vocab, n_train, n_val, shared):
    shards = write_random_shards(ddir, vocab, n_train, n_val)
    shutil.copyfile(os.path.join(shared, f"fineweb_{vocab}_bpe.model"),
                    os.path.join(ddir, "tokenizer.model"))
    return shards


def median_after_skip(ms):
    tail = ms[SKIP:] if len(ms) > SKIP else ms
    return statistics.median(tail)


def bench_case(case, a, env, work):
    preset, seq, batch, steps = case_settings(case, a)
    cdir = os.path.join(work, case)
    os.makedirs(cdir)
    init = os.path.join(cdir, "init.safetensors")
    vocab = pgolf_init(a.pgolf, preset, init, env)
    tokens = batch * seq
    ddir = os.path.join(cdir, "data")
    shards = write_data(ddir, vocab, (steps + 1) * (tokens + 1), 2 * seq + 1, a.shared)

    events, pg_wall, run_cfg = pgolf_train(
        [a.pgolf, "train", "--preset", preset, "--data", ddir, "--init", init],
        timed_train_settings(steps, seq, tokens), os.path.join(cdir, "run"), env, case)
    if "step_ms" in events[1]:
        pg_ms = [float(events[s]["step_ms"]) for s in range(1, steps + 1)]
    else:  # older metrics: tokens_per_s of the step
        pg_ms = [1000.0 * tokens / float(events[s]["tokens_per_s"]) for s in range(1, steps + 1)]
    pg_losses = [float(events[s]["train_loss"]) for s in range(1, steps + 1)]

    cfg_model = {k: v for k, v in run_cfg.items() if k in ref.DEFAULTS}
    cfg_train = {k: v for k, v in run_cfg.items() if k in rt.TRAIN_DEFAULTS}
    tensors, _ = st_io.read_safetensors(init)
    stats = []
    t0 = time.perf_counter()
    th_losses, _ = rt.train(tensors, cfg_model, cfg_train, shards, steps, torch.float32,
                            stats=stats)
    th_wall = time.perf_counter() - t0
    th_ms = [s["step_ms"] for s in stats]

    pg_tps = tokens / (median_after_skip(pg_ms) / 1000.0)
    th_tps = tokens / (median_after_skip(th_ms) / 1000.0)
    print(f"{case}: pgolf {pg_tps:,.0f} tok/s, torch {th_tps:,.0f} tok/s, "
          f"speed-up {pg_tps / th_tps:.2f}\u00d7")
    print(f"  {preset} B={batch} T={seq} ({tokens} tokens/step), {steps} steps, median of steps "
          f"{SKIP + 1}..{steps}, threads={a.threads}, torch {torch.__version__}")
    print(f"  step ms pgolf: {' '.join(f'{v:.0f}' for v in pg_ms)} (process {pg_wall:.1f} s)")
    print(f"  step ms torch: {' '.join(f'{v:.0f}' for v in th_ms)} (total {th_wall:.1f} s)")
    print(f"  loss step 1 / {steps}: pgolf {pg_losses[0]:.5f} / {pg_losses[-1]:.5f}, "
          f"torch {th_losses[0]:.5f} / {th_losses[-1]:.5f}", flush=True)
    return pg_tps, th_tps


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pgolf", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cases", default="tiny,record549")
    ap.add_argument("--steps", type=int, default=0,
                    help="steps per case (default: tiny 8, record549 4)")
    ap.add_argument("--tiny-batch", type=int, default=16, help="sequences per step, tiny")
    ap.add_argument("--record-batch", type=int, default=4, help="sequences per step, record549")
    ap.add_argument("--shared", default=os.path.normpath(os.path.join(ROOT, "..", "shared",
                                                                      "data")),
                    help="directory holding fineweb_1024_bpe.model")
    ap.add_argument("--keep", help="write the runs here instead of a temporary directory")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    cases = [c for c in a.cases.split(",") if c]
    if a.keep:
        os.makedirs(a.keep, exist_ok=True)
        work = tempfile.mkdtemp(dir=a.keep)
        for c in cases:
            bench_case(c, a, env, work)
    else:
        with tempfile.TemporaryDirectory() as work:
            for c in cases:
                bench_case(c, a, env, work)


if __name__ == "__main__":
    main()
