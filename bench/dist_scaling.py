#!/usr/bin/python3
"""Data-parallel scaling on CPU (issue 8): the same global batch trained by 1 process and by
2 MPI ranks, in one invocation.

    /usr/bin/python3 bench/dist_scaling.py --pgolf build/pgolf --data DATA_DIR
        [--preset tiny] [--steps 12] [--set key=value ...]

Three runs of `pgolf train --preset P` over the same data, global batch and micro-step
split (grad_accum_steps 0: 8 micro-steps in 1 process, 4 per rank on 2), with evaluation
off:
  1 proc x 1 thread    the baseline;
  2 ranks x 1 thread   `mpirun -np 2` (OMP_NUM_THREADS=1 per rank);
  1 proc x 2 threads   the same two cores used by OpenMP instead, for comparison.
Per-step time is the median `step_ms` of the train events after the first 2; the ranks'
communication time per step is rank 0's `comm_ms` (time inside collectives, waiting for
the other rank included). Scaling efficiency = t(1 proc x 1) / (2 x t(2 ranks x 1)).
Run it on an otherwise idle machine with at least 2 cores.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile


def median_after_warmup(events, key):
    values = [e[key] for e in events if key in e and e["step"] > 2]
    return statistics.median(values) if values else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pgolf", required=True)
    ap.add_argument("--data", required=True, help="a pgolf data directory")
    ap.add_argument("--mpirun", default=shutil.which("mpirun") or "mpirun")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--set", action="append", default=[], help="more --set key=value")
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="pgolf-dist-bench-")
    vocab = json.load(open(os.path.join(a.data, "data.json")))["vocab_size"]
    settings = {"vocab_size": vocab, "iterations": a.steps, "grad_accum_steps": 0,
                "max_wallclock_seconds": 0, "val_loss_every": 0, "train_log_every": 1,
                "checkpoint_every": 0, "warmup_steps": 0, "eval_stride": 0,
                "ttt_enabled": False}
    sets = []
    for k, v in settings.items():
        sets += ["--set", f"{k}={json.dumps(v)}"]
    for kv in a.set:
        sets += ["--set", kv]

    def run(name, ranks, threads):
        out = os.path.join(work, name)
        cmd = [a.pgolf, "train", "--preset", a.preset, "--data", a.data, *sets, "--out", out]
        if ranks > 1:
            cmd = [a.mpirun, "--allow-run-as-root", "--oversubscribe", "-x", "OMP_NUM_THREADS",
                   "-np", str(ranks)] + cmd
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            sys.exit(f"{name} failed: {r.stderr.strip()[-600:]}")
        with open(os.path.join(out, "metrics.jsonl")) as f:
            events = [json.loads(line) for line in f if '"train_loss"' in line]
        return median_after_warmup(events, "step_ms"), median_after_warmup(events, "comm_ms")

    one, _ = run("1proc_1thread", 1, 1)
    two, comm = run("2ranks_1thread", 2, 1)
    omp, _ = run("1proc_2threads", 1, 2)
    shutil.rmtree(work, ignore_errors=True)
    print(f"{a.preset}, {a.steps} steps, same global batch (median step after the first 2):")
    print(f"  1 proc x 1 thread    {one:8.1f} ms/step")
    print(f"  2 ranks x 1 thread   {two:8.1f} ms/step  speed-up {one / two:.2f}x, "
          f"scaling efficiency {one / (2 * two):.0%}, communication {comm:.1f} ms/step "
          f"({comm / two:.0%} of the step)")
    print(f"  1 proc x 2 threads   {omp:8.1f} ms/step  speed-up {one / omp:.2f}x (OpenMP)")


if __name__ == "__main__":
    main()
