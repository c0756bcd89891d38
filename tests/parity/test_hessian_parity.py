#!/usr/bin/python3
"""PyTorch parity test for `pgolf calibrate` (GPTQ calibration Hessians, SEEDS.md §4).

    /usr/bin/python3 tests/parity/test_hessian_parity.py --pgolf PATH_TO_PGOLF --workdir DIR

`pgolf init --set ...` writes a checkpoint with every feature that changes a block matrix's
input (XSA, gated attention, value residual, VE, BigramHash, U-Net skips, ln_scale) and a
layer_schedule that repeats blocks; its weights are then replaced by reference_model's
random ones (init zeroes attn.proj, mlp.proj and the gates, which would leave the deeper
inputs equal to the shallower ones). `pgolf calibrate --tokens` writes each block matrix's
H = (1/n) Σ x xᵀ over the n input rows of every virtual layer using its block; the
reference hooks the inputs of the same linears in reference_model.py (float64) on the
same weights and tokens and sums them the same way. Also: c_q, c_k and c_v share one H, the
metadata counts the tokens, too short a shard is one error line with no file written, and
--data DIR reads the same tokens from its training split.
Exits non-zero on any failure.
"""
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import reference_model as ref  # noqa: E402
import st_io  # noqa: E402
from harness import Fail, parity_args, report, run_cmd  # noqa: E402

# float32 pgolf (float SYRK per 1024 rows, summed in double) against float64 torch.
HESSIAN_RTOL = 1e-5
PGOLF_TIMEOUT_S = 300
B, T, SEED = 3, 32, 4004

SETTINGS = {
    "num_layers": "3",
    "layer_schedule": "0,1,2,1,2",
    "model_dim": "64",
    "num_heads": "4",
    "num_kv_heads": "2",
    "mlp_mult": "3",
    "vocab_size": "96",
    "tie_embeddings": "false",
    "bigram_vocab_size": "37",
    "bigram_dim": "24",
    "xsa_last_n": "2",
    "ln_scale": "true",
    "ve_enabled": "true",
    "ve_dim": "20",
    "ve_layers": "1,3",
    "gated_attention": "true",
    "value_residual": "true",
    "rope_dims": "8",
    "rope_train_seq_len": "16",
}
MATRICES = ("attn.c_q.weight", "attn.c_k.weight", "attn.c_v.weight", "attn.proj.weight",
            "mlp.fc.weight", "mlp.proj.weight")


def write_inputs(pgolf, wd):
    """pgolf init's checkpoint with reference random weights, and a token shard."""
    init = os.path.join(wd, "init.safetensors")
    cmd = [pgolf, "init", "--out", init]
    for k, v in SETTINGS.items():
        cmd += ["--set", f"{k}={v}"]
    run_cmd(cmd, "pgolf init", PGOLF_TIMEOUT_S)
    tensors, meta = st_io.read_safetensors(init)
    cfg = ref.full_config(json.loads(meta["pgolf_config"]))
    params = ref.random_params(cfg, SEED)
    if set(params) != set(tensors):
        raise Fail(f"pgolf init wrote tensors {sorted(set(tensors) ^ set(params))} that the "
                   f"reference's SPEC §5 table does not (or the reverse)")
    for n, t in params.items():
        if tuple(tensors[n].shape) != tuple(t.shape):
            raise Fail(f"{n}: pgolf init shape {list(tensors[n].shape)} != {list(t.shape)}")
    ck = os.path.join(wd, "model.safetensors")
    st_io.write_safetensors(ck, [(n, t.numpy()) for n, t in params.items()], meta)
    g = torch.Generator().manual_seed(SEED + 1)
    tokens = torch.randint(0, cfg["vocab_size"], (B * T + 1,), generator=g)
    sh = os.path.join(wd, "tokens.bin")
    st_io.write_shard(sh, tokens.numpy().astype(np.uint16))
    x = torch.stack([tokens[i * T:(i + 1) * T] for i in range(B)])
    return cfg, params, ck, sh, x


def reference_hessians(cfg, params, x):
    """name -> (1/n) Σ x xᵀ over every input row of that physical matrix, float64."""
    sums, rows = {}, {}

    def on_linear_input(name, inp):
        flat = inp.reshape(-1, inp.shape[-1])
        sums[name] = sums.get(name, 0) + flat.t() @ flat
        rows[name] = rows.get(name, 0) + flat.shape[0]

    P = {n: t.to(torch.float64) for n, t in params.items()}
    with torch.no_grad():
        ref.forward_logits(P, cfg, x, on_linear_input)
    return {n: (sums[n] / rows[n]).numpy() for n in sums}, rows


def run_calibrate(pgolf, ck, sh, out, batch):
    if os.path.exists(out):
        os.remove(out)
    cmd = [pgolf, "calibrate", "--checkpoint", ck, "--tokens", sh, "--seq-len", str(T),
           "--batch", str(batch), "--out", out, "--json"]
    return json.loads(run_cmd(cmd, "pgolf calibrate", PGOLF_TIMEOUT_S).stdout)


def compare(cfg, want, rows, got, meta, res):
    failures = []
    D = ref.Dims(cfg)
    names = {f"blocks.{p}.{m}" for p in range(D.P) for m in MATRICES}
    if set(want) != names:
        raise Fail(f"the reference hook saw {sorted(want)}, expected every block matrix")
    if set(got) != names:
        failures.append(f"pgolf wrote {sorted(got)}, expected {sorted(names)}")
    if int(res.get("tokens", -1)) != B * T or meta.get("calibration_tokens") != str(B * T):
        failures.append(f"pgolf reports {res.get('tokens')} tokens (metadata "
                        f"{meta.get('calibration_tokens')}), expected {B * T}")
    uses = [D.sched.count(p) for p in range(D.P)]
    worst, worst_name = -1.0, None
    for n in sorted(names & set(got)):
        p = int(n.split(".")[1])
        if rows[n] != uses[p] * B * T:
            raise Fail(f"the reference saw {rows[n]} rows for {n}, expected {uses[p] * B * T}")
        h_p = np.asarray(got[n], dtype=np.float64)
        h_t = want[n]
        if h_p.shape != h_t.shape:
            failures.append(f"{n}: pgolf Hessian shape {list(h_p.shape)} != {list(h_t.shape)}")
            continue
        rel = float(np.max(np.abs(h_p - h_t))) / float(np.max(np.abs(h_t)))
        if rel > worst:
            worst, worst_name = rel, n
        if not rel <= HESSIAN_RTOL:
            failures.append(f"{n}: max|H_pgolf - H_torch| / max|H_torch| = {rel:.3e} > "
                            f"{HESSIAN_RTOL}")
        if not np.array_equal(h_p, h_p.T):
            failures.append(f"{n}: pgolf Hessian is not symmetric")
    for p in range(D.P):
        q = got.get(f"blocks.{p}.attn.c_q.weight")
        for m in ("attn.c_k.weight", "attn.c_v.weight"):
            other = got.get(f"blocks.{p}.{m}")
            if q is not None and other is not None and not np.array_equal(q, other):
                failures.append(f"blocks.{p}.{m}: Hessian differs from c_q's (same input)")
    print(f"hessian parity: {len(names & set(got))} Hessians compared over {B * T} tokens, "
          f"blocks used {uses} times, worst {worst_name} rel {worst:.2e}")
    return failures


def check_short_shard(pgolf, ck, sh, wd):
    """B + 1 sequences do not fit: one error line, non-zero exit, no file."""
    out = os.path.join(wd, "short.safetensors")
    cmd = [pgolf, "calibrate", "--checkpoint", ck, "--tokens", sh, "--seq-len", str(T),
           "--batch", str(B + 1), "--out", out]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=PGOLF_TIMEOUT_S)
    failures = []
    if r.returncode == 0:
        failures.append("pgolf calibrate on too short a shard exited 0")
    if len(r.stderr.strip().splitlines()) != 1 or "tokens" not in r.stderr:
        failures.append(f"pgolf calibrate on too short a shard printed {r.stderr!r}, "
                        f"expected one line about the tokens")
    if os.path.exists(out):
        failures.append(f"pgolf calibrate on too short a shard wrote {out}")
    return failures


def check_data_dir(pgolf, ck, wd, tokens_hessians):
    """--data DIR --seqs B --batch 2: the training split's first B*T+1 tokens (split across two
    shards) in forwards of 2 and 1 sequences give the --tokens Hessians (up to float sums)."""
    tokens = st_io.read_shard(os.path.join(wd, "tokens.bin"))
    data = os.path.join(wd, "data")
    os.makedirs(data, exist_ok=True)
    st_io.write_shard(os.path.join(data, "x_train_000000.bin"), tokens[:50])
    st_io.write_shard(os.path.join(data, "x_train_000001.bin"), tokens[50:])
    st_io.write_shard(os.path.join(data, "x_val_000000.bin"), tokens[:T + 1])
    open(os.path.join(data, "tokenizer.model"), "wb").close()  # required by the layout, unread
    out = os.path.join(wd, "hessians_data.safetensors")
    cmd = [pgolf, "calibrate", "--checkpoint", ck, "--data", data, "--seqs", str(B),
           "--seq-len", str(T), "--batch", "2", "--out", out, "--json"]
    res = json.loads(run_cmd(cmd, "pgolf calibrate --data", PGOLF_TIMEOUT_S).stdout)
    got, _ = st_io.read_safetensors(out)
    failures = []
    if int(res.get("tokens", -1)) != B * T:
        failures.append(f"pgolf calibrate --data reports {res.get('tokens')} tokens, not {B * T}")
    if set(got) != set(tokens_hessians):
        failures.append(f"pgolf calibrate --data wrote {sorted(got)}")
    for n in sorted(set(got) & set(tokens_hessians)):
        a, b = np.asarray(got[n], np.float64), np.asarray(tokens_hessians[n], np.float64)
        rel = float(np.max(np.abs(a - b))) / float(np.max(np.abs(b)))
        if not rel <= 1e-6:
            failures.append(f"{n}: --data Hessian differs from --tokens by rel {rel:.2e}")
    return failures


def main():
    args = parity_args(__doc__, fresh_workdir=False)
    t0 = time.time()
    try:
        cfg, params, ck, sh, x = write_inputs(args.pgolf, args.workdir)
        want, rows = reference_hessians(cfg, params, x)
        out = os.path.join(args.workdir, "hessians.safetensors")
        res = run_calibrate(args.pgolf, ck, sh, out, B)
        got, meta = st_io.read_safetensors(out)
        failures = compare(cfg, want, rows, got, meta, res)
        failures += check_short_shard(args.pgolf, ck, sh, args.workdir)
        failures += check_data_dir(args.pgolf, ck, args.workdir, got)
    except Fail as e:
        print(f"hessian parity: FAIL: {e}")
        return 1
    return report("hessian parity", failures, t0)


if __name__ == "__main__":
    sys.exit(main())
