"""Checks on the pgolf binary for the command-line tests: run it, record pass/fail lines,
and assert that bad input gives one sentence on stderr and a non-zero exit."""
import argparse
import json
import os
import shutil
import subprocess


class CliChecks:
    def __init__(self, pgolf, timeout=600):
        self.pgolf, self.timeout, self.failures = pgolf, timeout, []

    def check(self, cond, what):
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        if not cond:
            self.failures.append(what)
        return cond

    def run(self, *args):
        return subprocess.run([self.pgolf, *args], capture_output=True, text=True,
                              timeout=self.timeout)

    def expect_error(self, what, args, needle):
        """pgolf ARGS must exit non-zero with one line `pgolf: ...` containing needle."""
        r = self.run(*args)
        lines = r.stderr.strip().splitlines()
        self.check(r.returncode != 0 and len(lines) == 1 and lines[0].startswith("pgolf: ")
                   and needle in lines[0],
                   f"{what}: exit {r.returncode}, stderr {r.stderr.strip()[-300:]!r}")

    def finish(self, name):
        print(f"{name}: {len(self.failures)} failed" if self.failures
              else f"{name}: all checks passed")
        return 1 if self.failures else 0


def slice_data(checks, corpus, workdir, vocab=512):
    """`pgolf data` on 24 addresses of the default corpus spread over the years; returns
    the data folder, or None (with a failed check) when the corpus or the command fails."""
    texts = sorted(f for f in os.listdir(corpus) if f.endswith(".txt")) if os.path.isdir(corpus) else []
    if not checks.check(bool(texts), f"corpus texts in {corpus} (run scripts/install-deps.sh)"):
        return None
    slice_dir = os.path.join(workdir, "slice")
    os.makedirs(slice_dir)
    for f in texts[:: max(1, len(texts) // 24)][:24]:
        shutil.copy(os.path.join(corpus, f), slice_dir)
    out = os.path.join(workdir, "data")
    r = checks.run("data", "--text", slice_dir, "--vocab", str(vocab), "--val-fraction", "0.15",
                   "--out", out)
    ok = checks.check(r.returncode == 0,
                      f"pgolf data on the slice: {r.stdout.strip()[-400:]} {r.stderr.strip()}")
    return out if ok else None


def train_losses(run_dir):
    """{step: train_loss} of a run's metrics.jsonl."""
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        events = [json.loads(line) for line in f]
    return {e["step"]: e["train_loss"] for e in events if "train_loss" in e}


def corpus_test_args(doc):
    """The e2e tests' command line (--pgolf, --corpus, --workdir); the workdir starts empty."""
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--pgolf", required=True)
    ap.add_argument("--corpus", required=True, help="the default corpus's data folder")
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    return a
