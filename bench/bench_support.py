"""What the bench scripts that time `pgolf train` against the PyTorch reference share:
running pgolf, the seeded init both sides start from, random-token shards, the settings that
make a run time training steps only, and a timed `pgolf train` with its per-step events."""
import json
import os
import subprocess
import sys
import time

import numpy as np

import st_io  # tests/parity, on sys.path in the scripts that import this


def run(cmd, env, what=None):
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout[-4000:] + r.stderr[-4000:])
        raise SystemExit(f"{what + ': ' if what else ''}`{' '.join(cmd)}` exited with status "
                         f"{r.returncode}")
    return r


def pgolf_init(pgolf, preset, out, env):
    """`pgolf init --preset P --seed 1` into out; returns the model's vocab_size."""
    run([pgolf, "init", "--preset", preset, "--seed", "1", "--out", out], env, "pgolf init")
    _, meta = st_io.read_safetensors(out)
    return int(json.loads(meta["pgolf_config"])["vocab_size"])


def write_random_shards(ddir, vocab, n_train, n_val):
    """One train and one val shard of uniformly random tokens in ddir; returns [train shard]."""
    os.makedirs(ddir, exist_ok=True)
    rng = np.random.default_rng(0)
    train = os.path.join(ddir, "bench_train_000000.bin")
    st_io.write_shard(train, rng.integers(0, vocab, n_train))
    st_io.write_shard(os.path.join(ddir, "bench_val_000000.bin"), rng.integers(0, vocab, n_val))
    return [train]


def timed_train_settings(steps, seq, tokens, **extra):
    """`steps` steps of one micro-batch of `tokens` at T = seq, and nothing else timed: no
    warm-up, no evaluation in the loop, no EMA/SWA/late QAT (the reference trainer models
    none of them); `extra` adds keys."""
    return dict(iterations=steps, warmup_steps=0, val_loss_every=0, train_log_every=1,
                max_wallclock_seconds=0, train_seq_len=seq, eval_seq_len=seq,
                train_batch_tokens=tokens, grad_accum_steps=1, val_batch_size=2 * seq,
                ema_enabled=False, swa_enabled=False, late_qat_threshold=0, **extra)


def pgolf_train(cmd, settings, out, env, label=None):
    """Runs cmd (`pgolf train ...` up to its settings) with --set for each setting and --out
    out. Returns ({step: train event} for steps 1..iterations, every one present; wall
    seconds; the run's config.json)."""
    for k, v in settings.items():
        cmd = cmd + ["--set", f"{k}={json.dumps(v)}"]
    t0 = time.perf_counter()
    run(cmd + ["--out", out], env, label)
    wall = time.perf_counter() - t0
    events = {}
    with open(os.path.join(out, "metrics.jsonl")) as f:
        for line in f:
            e = json.loads(line)
            if "train_loss" in e:
                events[int(e["step"])] = e
    steps = settings["iterations"]
    if sorted(events) != list(range(1, steps + 1)):
        raise SystemExit(f"{label + ': ' if label else ''}pgolf logged train events for steps "
                         f"{sorted(events)}, expected 1..{steps}")
    with open(os.path.join(out, "config.json")) as f:
        return events, wall, json.load(f)
