#!/usr/bin/python3
"""Evaluation split across MPI ranks (issue 8): `mpirun -np 2 pgolf eval --json` gives the
single-process result for the standard, sliding (--stride 32) and score-first TTT
evaluations (tied and untied, several chunks trained, batches that split unevenly between
the ranks and into micro-batches that differ from the single process's), on a small
checkpoint (`pgolf init` of the tiny preset, narrowed) and a slice of the default corpus.

Token and byte counts must be equal; val_loss and val_bpb may differ only by float
summation order: the ranks sum their own windows and the all-reduce adds the two sums
(relative 1e-9; 4e-11 seen), and TTT's gradients are summed from the ranks' shares of each
batch, so the adapted weights, and every later score, move in the last bits (relative 1e-7;
2e-9 seen, AdamW). Only rank 0 prints: the job's stdout is one JSON line. Every process runs
one OpenMP thread, single and distributed alike, so that only the split differs.

    python3 tests/dist/test_dist_eval.py --pgolf PATH --mpirun PATH --corpus DIR --workdir DIR

A missing mpirun is a failure, not a skip: CI installs OpenMPI.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from cli_checks import CliChecks, slice_data  # noqa: E402

RANKS = 2
STANDARD_TOL = 1e-9
TTT_TOL = 1e-7
NARROW = ["--set", "vocab_size=512", "--set", "model_dim=64", "--set", "bigram_dim=32",
          "--set", "ve_dim=32"]
SLIDING = ["--stride", "32"]


def ttt(lr="0.05"):
    """TTT over the sliding windows: 5 chunks of 2048 targets (on this slice's 9,088), the
    first 4 trained twice on their 16 sequences of 128 in steps of 7, 7 and 2 sequences (3 +
    4 and 1 + 1 per rank, in micro-batches of 2)."""
    return [*SLIDING, "--ttt", "--ttt-lr", lr, "--ttt-chunk-tokens", "2048", "--ttt-epochs",
            "2", "--ttt-batch-seqs", "7", "--ttt-micro-seqs", "2"]


CASES = [("standard", [], STANDARD_TOL),
         ("sliding", SLIDING, STANDARD_TOL),
         ("ttt", ttt(), TTT_TOL),
         ("ttt --ttt-untie", [*ttt(), "--ttt-untie"], TTT_TOL),
         ("ttt --ttt-optimizer adamw", [*ttt("0.001"), "--ttt-optimizer", "adamw"], TTT_TOL)]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pgolf", required=True)
    ap.add_argument("--mpirun", required=True, help="OpenMPI's mpirun (find_program's result)")
    ap.add_argument("--corpus", required=True, help="the default corpus's data folder")
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    checks = CliChecks(a.pgolf)
    check = checks.check
    mpirun = shutil.which(a.mpirun)
    if not check(mpirun is not None,
                 f"mpirun found (got {a.mpirun!r}; install OpenMPI: apt-get install "
                 "openmpi-bin libopenmpi-dev)"):
        return checks.finish("dist.eval")
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    data = slice_data(checks, a.corpus, a.workdir)
    model = os.path.join(a.workdir, "model.safetensors")
    r = checks.run("init", "--preset", "tiny", *NARROW, "--seed", "3", "--out", model)
    if data is None or not check(r.returncode == 0, f"pgolf init: {r.stderr.strip()}"):
        return checks.finish("dist.eval")

    def evaluate(launcher, extra):
        cmd = [*launcher, a.pgolf, "eval", "--checkpoint", model, "--data", data,
               "--seq-len", "128", "--batch", "8", "--json", *extra]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
        lines = r.stdout.strip().splitlines()
        ok = r.returncode == 0 and len(lines) == 1
        return (json.loads(lines[0]) if ok else None), r

    launcher = [mpirun, "--allow-run-as-root", "--oversubscribe", "-np", str(RANKS),
                "-x", "OMP_NUM_THREADS=1"]
    results = {}
    for name, extra, tol in CASES:
        one, r1 = evaluate([], extra)
        many, rn = evaluate(launcher, extra)
        if not check(one is not None, f"{name}: single process: {r1.stderr.strip()[-400:]}"):
            continue
        if not check(many is not None, f"{name}: {RANKS} ranks print one JSON line (exit "
                     f"{rn.returncode}): {rn.stdout.strip()[-300:]} {rn.stderr.strip()[-600:]}"):
            continue
        rel = {k: abs(many[k] - one[k]) / abs(one[k]) for k in ("val_loss", "val_bpb")}
        check(many["tokens"] == one["tokens"] and many["bytes"] == one["bytes"] and
              max(rel.values()) <= tol,
              f"{name}: {RANKS} ranks give the single process's result: val_loss "
              f"{one['val_loss']!r} vs {many['val_loss']!r} (rel {rel['val_loss']:.1e}), "
              f"val_bpb {one['val_bpb']!r} vs {many['val_bpb']!r} (rel {rel['val_bpb']:.1e}, "
              f"limit {tol:.0e}), tokens {one['tokens']}/{many['tokens']}, bytes "
              f"{one['bytes']:.0f}/{many['bytes']:.0f}")
        results[name] = one
    # TTT must have adapted (else its comparison says nothing about the gradient sum).
    if "ttt" in results and "sliding" in results:
        check(results["ttt"]["val_loss"] != results["sliding"]["val_loss"],
              f"TTT's val_loss {results['ttt']['val_loss']:.6f} differs from the same sliding "
              f"windows' {results['sliding']['val_loss']:.6f} (the weights adapted)")
    return checks.finish("dist.eval")


if __name__ == "__main__":
    sys.exit(main())
