#!/usr/bin/python3
"""Data-parallel training under mpirun (issue 8, docs/distributed.md), on a slice of the
default corpus:

1. `tiny` for 20 steps with the reference's 8 / world_size micro-steps: 2 ranks (4
   micro-steps each) give the loss curve of 1 process (8 micro-steps) over the same global
   batch within 1e-5 relative per step, and the same sliding val_bpb;
2. stopping at step 10 and resuming, on 2 ranks, continues the 2-rank run bit for bit, and
   the 2-rank checkpoint resumes in 1 process too;
3. a wall-clock cap stops both ranks at the same step (a disagreement would hang);
4. a rank killed mid-run (SIGKILL) makes the other exit non-zero with a message within
   60 s; a rank that hangs (SIGSTOP) is caught by the collectives' watchdog within
   PGOLF_COMM_TIMEOUT;
5. commands that do not run data parallel refuse a launch with several ranks.

    python3 tests/dist/test_dist_train.py --pgolf PATH --mpirun PATH --corpus DIR --workdir DIR
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from cli_checks import CliChecks, slice_data, train_losses  # noqa: E402

# tiny at its own width and depth, 20 steps of 8,192 tokens, the reference's micro-steps.
TINY = {"vocab_size": 512, "iterations": 20, "grad_accum_steps": 0, "max_wallclock_seconds": 0,
        "val_loss_every": 0, "train_log_every": 1, "checkpoint_every": 0, "warmdown_iters": 10,
        "eval_stride": 128, "val_batch_size": 16384}


def sets(d):
    out = []
    for k, v in d.items():
        out += ["--set", f"{k}={json.dumps(v)}"]
    return out


def summary(run):
    with open(os.path.join(run, "summary.json")) as f:
        return json.load(f)


def rank_pid(run_dir, rank):
    """The pid of the pgolf rank `rank` whose command line names run_dir, or None."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if (cmd and cmd[0].endswith(b"pgolf") and run_dir.encode() in cmd
                and f"OMPI_COMM_WORLD_RANK={rank}".encode() in env):
            return int(pid)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pgolf", required=True)
    ap.add_argument("--mpirun", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    checks = CliChecks(a.pgolf, timeout=900)
    check, pgolf = checks.check, checks.run
    if not check(shutil.which(a.mpirun) is not None or os.path.exists(a.mpirun),
                 f"mpirun at {a.mpirun} (scripts/install-deps.sh installs OpenMPI)"):
        return checks.finish("dist.train")
    data = slice_data(checks, a.corpus, a.workdir)
    if data is None:
        return checks.finish("dist.train")
    # One thread per rank: 2 ranks on 2 cores, and the single process on one too, so that
    # the comparison is of the arithmetic alone.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    mpi = [a.mpirun, "--allow-run-as-root", "--oversubscribe", "-x", "OMP_NUM_THREADS",
           "-x", "PGOLF_COMM_TIMEOUT", "-np", "2", a.pgolf]

    def train(ranks, run, extra=(), **kw):
        cmd = (mpi if ranks == 2 else [a.pgolf]) + ["train", "--preset", "tiny", "--data", data,
                                                    *sets(TINY), *extra, "--out", run]
        e = {**env, "PGOLF_COMM_TIMEOUT": kw.pop("timeout", "120")}
        return subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=900)

    # 1. One process against two ranks over the same global batch.
    one, two = os.path.join(a.workdir, "one"), os.path.join(a.workdir, "two")
    r1, r2 = train(1, one), train(2, two)
    ok = check(r1.returncode == 0, f"1 process trains tiny: {r1.stderr.strip()[-400:]}")
    ok &= check(r2.returncode == 0, f"mpirun -np 2 trains tiny: {r2.stderr.strip()[-600:]}")
    if ok:
        l1, l2 = train_losses(one), train_losses(two)
        worst = max(abs(l2[s] - l1[s]) / abs(l1[s]) for s in l1) if l1.keys() == l2.keys() else 1
        check(sorted(l1) == list(range(1, 21)) and worst <= 1e-5,
              f"20 steps: loss curves agree, worst relative difference {worst:.2e} (<= 1e-5)")
        for s in (1, 10, 20):
            print(f"     step {s}: 1 process {l1[s]:.8f}, 2 ranks {l2[s]:.8f}")
        s1, s2 = summary(one), summary(two)
        b1, b2 = s1["roundtrip_sliding"]["val_bpb"], s2["roundtrip_sliding"]["val_bpb"]
        check(abs(b1 - b2) / b1 <= 1e-5 and
              s1["roundtrip_sliding"]["tokens"] == s2["roundtrip_sliding"]["tokens"],
              f"sliding val_bpb: 1 process {b1:.8f}, 2 ranks {b2:.8f} (rel {abs(b1 - b2) / b1:.1e})")
        with open(os.path.join(two, "log.txt")) as f:
            log = f.read()
        check("2 ranks x 4 micro-steps" in log, "the 2-rank log names its split (2 ranks x 4)")
        check(r2.stdout.count("pgolf train:") == 1, "only rank 0 prints")

    # 2. Stop at step 10 and resume, on 2 ranks and in 1 process.
    stop = os.path.join(a.workdir, "stop")
    r = train(2, stop, ["--stop-at-step", "10"])
    if check(r.returncode == 0 and os.path.exists(os.path.join(stop, "checkpoint.safetensors")),
             f"2 ranks stop at step 10 with a checkpoint: {r.stderr.strip()[-400:]}"):
        shutil.copytree(stop, stop + "_1")
        r = subprocess.run(mpi + ["train", "--resume", "--out", stop], capture_output=True,
                           text=True, env={**env, "PGOLF_COMM_TIMEOUT": "120"}, timeout=900)
        if check(r.returncode == 0, f"2 ranks resume: {r.stderr.strip()[-400:]}") and ok:
            check(train_losses(stop) == train_losses(two) and
                  summary(stop)["val_bpb"] == summary(two)["val_bpb"],
                  "the resumed 2-rank run equals the uninterrupted one bit for bit")
        r = subprocess.run([a.pgolf, "train", "--resume", "--out", stop + "_1"],
                           capture_output=True, text=True, env=env, timeout=900)
        if check(r.returncode == 0, f"1 process resumes the 2-rank checkpoint: "
                                    f"{r.stderr.strip()[-400:]}") and ok:
            l1, lr = train_losses(one), train_losses(stop + "_1")
            worst = max(abs(lr[s] - l1[s]) / abs(l1[s]) for s in l1)
            check(worst <= 1e-5, f"its loss curve is the 1-process run's (worst rel {worst:.1e})")

    # 3. A wall-clock cap: both ranks must stop at the same step.
    cap = os.path.join(a.workdir, "cap")
    r = train(2, cap, sets({"iterations": 100000, "max_wallclock_seconds": 4}))
    s = summary(cap) if r.returncode == 0 else {}
    check(r.returncode == 0 and s.get("stopped_by_wallclock") is True,
          f"a 4 s wall-clock cap stops both ranks together (after {s.get('steps')} steps): "
          f"{r.stderr.strip()[-300:]}")

    # 4a. Kill rank 1 mid-run: rank 0 must end with a message within 60 s.
    def victim_run(name, sig, timeout):
        run = os.path.join(a.workdir, name)
        cmd = mpi + ["train", "--preset", "tiny", "--data", data,
                     *sets({**TINY, "iterations": 100000}), "--out", run]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**env, "PGOLF_COMM_TIMEOUT": timeout})
        deadline = time.time() + 300
        while time.time() < deadline and p.poll() is None and not losses_or_none(run):
            time.sleep(0.5)
        pid = rank_pid(os.path.abspath(run), 1) or rank_pid(run, 1)
        if not check(pid is not None and p.poll() is None,
                     f"{name}: the job trains and rank 1 is found"):
            p.kill()
            p.communicate()
            return None
        os.kill(pid, sig)
        t0 = time.time()
        try:
            out, err = p.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        if sig == signal.SIGSTOP:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        return p.returncode, time.time() - t0, err

    def losses_or_none(run):
        try:
            return train_losses(run)
        except (OSError, ValueError):
            return None

    # 4b. Stop rank 1 (it hangs, nobody exits): the watchdog must end rank 0's wait.
    for name, sig, timeout, needle, whose in (
            ("killed", signal.SIGKILL, "300", "rank 0 of 2", "rank 0's"),
            ("hung", signal.SIGSTOP, "5", "has waited", "the watchdog's")):
        res = victim_run(name, sig, timeout)
        if res:
            rc, took, err = res
            check(rc != 0 and took <= 60 and needle in err,
                  f"rank 1 {name}: the job exits {rc} after {took:.1f} s with {whose} message "
                  f"{[l for l in err.splitlines() if needle in l][:1]}")

    # 5. Commands that do not split their work refuse several ranks.
    r = subprocess.run(mpi + ["inspect", os.path.join(one, "model.pgolf")], capture_output=True,
                       text=True, env={**env, "PGOLF_COMM_TIMEOUT": "60"}, timeout=120)
    check(r.returncode != 0 and "only train and eval run as several ranks" in r.stderr,
          f"mpirun pgolf inspect is refused: {r.stderr.strip()[:200]!r}")
    return checks.finish("dist.train")


if __name__ == "__main__":
    sys.exit(main())
