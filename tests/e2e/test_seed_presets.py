#!/usr/bin/python3
"""The four seed presets end to end (issue 6): each trains a few steps, writes and scores
its artifact (standard, sliding and, where the preset has it, TTT), packs again with
`pgolf pack`, and `pgolf eval --artifact` reproduces the run's round-trip score. Widths are
reduced (model_dim 64, 4 heads) so this runs on 2 cores; every preset keeps its schedule,
sharing, recurrent-form switches, quantisation and TTT settings. Depth switching is
exercised too: seed686 turns its repeats on at step 2 (recur_start_step, as #1204) and
adapts untied in TTT; seed784 grows 2 → 3 → 4 repeats (progressive, as #1384).

    python3 tests/e2e/test_seed_presets.py --pgolf PATH --corpus DIR --workdir DIR
"""
import json
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from cli_checks import CliChecks, corpus_test_args, slice_data  # noqa: E402

SMALL = {"vocab_size": 512, "model_dim": 64, "num_heads": 4, "num_kv_heads": 2,
         "bigram_dim": 32, "ve_dim": 32, "rope_dims": 8, "iterations": 4, "warmdown_iters": 2,
         "warmup_steps": 1, "train_batch_tokens": 1024, "train_seq_len": 128,
         "eval_seq_len": 128, "grad_accum_steps": 1, "val_batch_size": 4096,
         "max_wallclock_seconds": 0, "val_loss_every": 0, "train_log_every": 1,
         "gptq_calib_seqs": 2, "eval_stride": 64, "ttt_chunk_tokens": 8000, "ttt_epochs": 1,
         "ttt_batch_seqs": 2, "swa_every": 1}
EXTRA = {
    "seed686": {"recur_start_step": 2, "ttt_untie": True},
    "seed857": {},
    "seed784": {"rope_dims": 0, "progressive_repeats": [2, 3, 4],
                "progressive_fractions": [0.25, 0.5]},
    "seed490": {"rope_dims": 0},
}


def settings(preset):
    out = []
    for k, v in {**SMALL, **EXTRA[preset]}.items():
        out += ["--set", f"{k}={json.dumps(v)}"]
    return out


def main():
    a = corpus_test_args(__doc__)
    checks = CliChecks(a.pgolf)
    check, pgolf = checks.check, checks.run
    data = slice_data(checks, a.corpus, a.workdir)
    if data is None:
        return checks.finish("e2e.seed_presets")

    for preset in EXTRA:
        run = os.path.join(a.workdir, preset)
        r = pgolf("train", "--preset", preset, "--data", data, *settings(preset), "--out", run)
        if not check(r.returncode == 0, f"{preset}: pgolf train: {r.stderr.strip()[-600:]}"):
            continue
        s = json.load(open(os.path.join(run, "summary.json")))
        scores = {k: s[k]["val_bpb"] for k in ("roundtrip_standard", "roundtrip_sliding",
                                               "roundtrip_ttt") if k in s}
        check(all(math.isfinite(v) and v > 0 for v in scores.values()) and
              "roundtrip_sliding" in scores,
              f"{preset}: finite round-trip scores {scores}")
        check(s["artifact"]["total_bytes"] < s["artifact"]["limit"],
              f"{preset}: artifact {s['artifact']['total_bytes']} B under the cap")
        if preset in ("seed686", "seed490"):
            check("roundtrip_ttt" in scores, f"{preset}: TTT scored the artifact")
        log = open(os.path.join(run, "log.txt")).read()
        if preset == "seed686":
            check("depth: 2 of 2 repeats active (13 virtual layers) at step 2" in log,
                  f"{preset}: repeats switched on at step 2")
        if preset == "seed784":
            check("depth: 3 of 4 repeats active (9 virtual layers) at step 1" in log and
                  "depth: 4 of 4 repeats active (12 virtual layers) at step 2" in log,
                  f"{preset}: progressive repeats 2 → 3 → 4")
        # pgolf pack on the checkpoint with the preset's quantisation, then eval --artifact.
        packed = os.path.join(run, "repacked.pgolf")
        args = ["pack", "--checkpoint", os.path.join(run, "model.safetensors"), "--out", packed]
        if preset == "seed490":
            args += ["--prune", "0.02"]
        if preset == "seed784":
            args += ["--bits", "8", "--per-row-clip"]
        r = pgolf(*args)
        check(r.returncode == 0 and os.path.exists(packed), f"{preset}: pgolf pack: {r.stderr.strip()[-300:]}")
        r = pgolf("eval", "--artifact", os.path.join(run, "model.pgolf"), "--data", data,
                  "--seq-len", "128", "--batch", "16", "--json")
        if check(r.returncode == 0, f"{preset}: eval --artifact: {r.stderr.strip()[-300:]}"):
            e = json.loads(r.stdout)
            rel = abs(e["val_bpb"] - s["val_bpb_roundtrip"]) / s["val_bpb_roundtrip"]
            check(rel < 1e-5, f"{preset}: eval --artifact reproduces val_bpb_roundtrip "
                              f"({e['val_bpb']:.6f}, rel {rel:.1e})")
    return checks.finish("e2e.seed_presets")


if __name__ == "__main__":
    sys.exit(main())
