"""What the parity tests share: their failure type, the model keys of a preset, running
pgolf with its stderr shown on failure, a small everything-on config written as a checkpoint,
and the sliding-window plan (SPEC §4) with the PyTorch scores of its windows."""
import argparse
import json
import os
import shutil
import subprocess
import time

import numpy as np
import torch

import reference_model as ref
import st_io

HERE = os.path.dirname(os.path.abspath(__file__))


class Fail(Exception):
    pass


def parity_args(doc, fresh_workdir=True):
    """The parity tests' command line (--pgolf, --workdir), one torch thread, and the
    working directory made (emptied first when fresh_workdir)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--pgolf", required=True, help="path to the pgolf binary")
    ap.add_argument("--workdir", required=True, help="scratch directory for the files")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if fresh_workdir:
        shutil.rmtree(args.workdir, ignore_errors=True)
    os.makedirs(args.workdir, exist_ok=True)
    return args


def preset_model_keys(name):
    """The model keys of configs/<name>.json (training keys are left out), and the rest."""
    path = os.path.normpath(os.path.join(HERE, "..", "..", "configs", name + ".json"))
    if not os.path.isfile(path):
        raise Fail(f"{name} config {path} does not exist")
    with open(path) as f:
        obj = json.load(f)
    known = {k: v for k, v in obj.items() if k in ref.DEFAULTS}
    return known, sorted(k for k in obj if k not in ref.DEFAULTS)


def report(name, failures, t0):
    """Prints each failure and the verdict line; returns the exit status."""
    for f in failures:
        print(f"  FAIL {f}")
    print(f"{name}: {'ok' if not failures else 'FAILED'} in {time.time() - t0:.1f} s")
    return 1 if failures else 0


def run_cmd(cmd, what, timeout):
    """Runs cmd; on a timeout or a non-zero exit prints pgolf's stderr and raises Fail."""
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Fail(f"{what}: `{' '.join(cmd)}` ran past {timeout} s")
    if r.returncode != 0:
        print(f"---- pgolf stderr ----\n{r.stderr.rstrip()}\n----", flush=True)
        raise Fail(f"{what}: `{' '.join(cmd)}` exited with status {r.returncode}")
    return r


# A small config with every switch on, a reused block, and RoPE rescaled past 32 positions.
SMALL_CONFIG = {
    "num_layers": 2, "layer_schedule": [0, 1, 0], "model_dim": 48, "num_heads": 4,
    "num_kv_heads": 2, "mlp_mult": 2, "tie_embeddings": False, "bigram_vocab_size": 37,
    "bigram_dim": 16, "xsa_last_n": 1, "ln_scale": True, "ve_enabled": True, "ve_dim": 12,
    "ve_layers": [2], "gated_attention": True, "value_residual": True, "rope_dims": 8,
    "rope_train_seq_len": 32,
}


def write_checkpoint(path, params, cfg):
    """A pgolf checkpoint of `params` (name -> float32 tensor) and the full config `cfg`."""
    st_io.write_safetensors(path, [(n, t.numpy()) for n, t in params.items()],
                            {"pgolf_config": json.dumps(cfg)})


def sliding_plan(n, seq_len, stride):
    """{window start: [scored targets]} over n targets by SPEC §4 and pgolf's tail rule, target
    by target: target i (predicting token i+1) is scored in the window starting at 0 when
    i < seq_len, else at the first multiple of the stride whose window ends past i, or at
    n - seq_len (flush with the end) when that window would run past the end."""
    wins = {}
    for i in range(n):
        if i < seq_len or n <= seq_len:
            start = 0
        else:
            start = min(-(-(i + 1 - seq_len) // stride) * stride, n - seq_len)
        wins.setdefault(start, []).append(i)
    return wins


def window_nll(P, cfg, tokens, wins, seq_len):
    """[(target, NLL)] (float64) of the scored targets of windows {start: [targets]}, run
    through reference_model in one batch of seq_len-token windows (past the end: padded)."""
    starts = sorted(wins)
    x = torch.zeros(len(starts), seq_len, dtype=torch.int64)
    y = torch.zeros(len(starts), seq_len, dtype=torch.int64)
    for b, s in enumerate(starts):
        piece = torch.from_numpy(tokens[s:min(s + seq_len, len(tokens) - 1) + 1].astype(np.int64))
        x[b, :len(piece) - 1] = piece[:-1]
        y[b, :len(piece) - 1] = piece[1:]
    with torch.no_grad():
        logits = ref.forward_logits(P, cfg, x)
        mx = logits.max(dim=-1, keepdim=True).values
        lse = torch.log(torch.exp(logits - mx).sum(dim=-1)) + mx.squeeze(-1)
        nll = lse - logits.gather(-1, y.unsqueeze(-1)).squeeze(-1)
    return [(i, float(nll[b, i - s])) for b, s in enumerate(starts) for i in wins[s]]
