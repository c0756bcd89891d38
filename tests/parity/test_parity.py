#!/usr/bin/python3
"""PyTorch parity test for `pgolf grad` (SPEC §2, §5, §6).

    /usr/bin/python3 tests/parity/test_parity.py --pgolf PATH_TO_PGOLF --workdir DIR

For each config (`tiny` from configs/tiny.json, `everything` defined below, the depth
recurrence cases of docs/recurrence.md and the seed presets narrowed) it writes a
checkpoint of random F32 weights and a token shard, runs
`pgolf grad --checkpoint ... --tokens ... --seq-len T --batch B --out grads.safetensors --json`
(with `--active-repeats K` for the cases that run a subset of the layers), and compares the
loss and every gradient with reference_model.py (float64 autograd).
Exits non-zero on any failure. `--no-pgolf` runs everything except pgolf (self-checks and
the reference forward/backward), for developing the reference.
"""
import argparse
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import reference_model as ref  # noqa: E402
import st_io  # noqa: E402
from harness import Fail, preset_model_keys, run_cmd  # noqa: E402

LOSS_RTOL = 1e-5
GRAD_RTOL = 1e-4
PGOLF_TIMEOUT_S = 300
# The tensors whose true gradient is zero come from reference_model.expected_zero_grads:
# value residual's lambda where only virtual layer 0 reads it, and with --active-repeats
# what only the inactive layers read.

EVERYTHING = {
    "num_layers": 3,
    "layer_schedule": [0, 1, 2, 1, 2],
    "model_dim": 64,
    "num_heads": 4,
    "num_kv_heads": 2,
    "mlp_mult": 2,
    "vocab_size": 96,
    "tie_embeddings": False,
    "bigram_vocab_size": 37,
    "bigram_dim": 24,
    "xsa_last_n": 2,
    "ln_scale": True,
    "ve_enabled": True,
    "ve_dim": 20,
    "ve_layers": [1, 3],
    "gated_attention": True,
    "value_residual": True,
    "negative_slope": 0.5,
    "rope_dims": 8,
    "rope_train_seq_len": 16,
    "logit_softcap": 30.0,
    "unet_skips": True,
}


def load_preset(name):
    """The model keys of configs/<name>.json."""
    known, ignored = preset_model_keys(name)
    if ignored:
        print(f"parity {name}: note: ignoring non-model keys of configs/{name}.json: "
              f"{', '.join(ignored)}")
    return known


# #686's form of a schedule: blocks 0..2, then 1 and 2 again, then 3 (6 virtual layers).
RECUR = {**{k: v for k, v in EVERYTHING.items() if k != "layer_schedule"}, "num_layers": 4,
         "recur_layers": [1, 2], "ve_layers": [1, 4]}

# ---- docs/recurrence.md
# (a) #857's sharing: block-owned scalars, XSA on every use of a flagged block, ln scale
#     indexed by the block's first use; block 2 used 3 times (xsa_last_n 2 flags v4, v5 ->
#     blocks 2 and 3 -> v2..v5; ln index 2 for v2..v4).
SHARE_BLOCK = {**EVERYTHING, "num_layers": 4, "layer_schedule": [0, 1, 2, 2, 2, 3],
               "ve_layers": [1, 4], "scalar_sharing": "block", "xsa_placement": "block",
               "ln_scale": True, "xsa_last_n": 2}
# (b) untied repeat MLPs on #686's form
UNTIE_DOWN = {**RECUR, "repeat_untie_mlp": "down"}
UNTIE_FULL = {**RECUR, "repeat_untie_mlp": "full"}
# (c) untied repeat attention (+ full MLP: a fully untied model), block 1 used 3 times
UNTIE_ATTN = {**EVERYTHING, "layer_schedule": [0, 1, 2, 1, 2, 1], "repeat_untie_attn": True,
              "repeat_untie_mlp": "full"}
UNTIE_ATTN_ONLY = {**UNTIE_ATTN, "repeat_untie_mlp": "none"}
# (d) #784's form: 3 blocks x 3 repeats on the naive baseline, every #784 piece
FORM784 = {
    "num_layers": 3, "layer_schedule": [0, 1, 2, 0, 1, 2, 0, 1, 2], "model_dim": 64,
    "num_heads": 4, "num_kv_heads": 2, "mlp_mult": 2, "vocab_size": 96,
    "tie_embeddings": True, "unet_skips": False, "smear_gate": False, "bigram_vocab_size": 0,
    "loop_embed": True, "residual_ve_tables": 2, "cross_repeat": True,
    "scalar_sharing": "block", "xsa_last_n": 4, "init_scheme": "kaiming_uniform",
}
# (e) everything at once, so the order of the pre-block additions matters: U-Net skip,
#     loop_embed, residual VE, cross-repeat; blocks 1 and 2 used 3 times each
MIXED = {**EVERYTHING, "num_layers": 4, "layer_schedule": [0, 1, 2, 1, 2, 1, 2, 3],
         "ve_layers": [1, 7], "loop_embed": True, "residual_ve_tables": 2,
         "cross_repeat": True, "repeat_untie_mlp": "down", "scale_proj_init": True}

# name -> (model keys, B, T, seed, active_repeats)
RECURRENCE_CASES = {
    "share_block": (SHARE_BLOCK, 2, 32, 5005, None),
    "untie_down": (UNTIE_DOWN, 2, 32, 5006, None),
    "untie_full": (UNTIE_FULL, 2, 32, 5007, None),
    "untie_attn": (UNTIE_ATTN, 2, 32, 5008, None),
    "untie_attn_only": (UNTIE_ATTN_ONLY, 2, 24, 5009, None),
    "form784": (FORM784, 2, 32, 5010, None),
    "mixed": (MIXED, 2, 32, 5011, None),
    # a subset of the layers (`pgolf grad --active-repeats K`): 2 of 3 repeats moves the
    # U-Net split from 4 to 3 and leaves the third repeats' cross-repeat inputs out;
    # 1 is the plain stack
    "active_mixed": (MIXED, 2, 32, 5012, 2),
    "active_plain": (MIXED, 2, 24, 5013, 1),
    "active_784": (FORM784, 2, 24, 5014, 2),
    # block-owned scalars, block XSA placement and ln index keep their identity: active
    # [0, 1, 2, 3, 5], XSA on v2, v3, v5
    "active_share_block": (SHARE_BLOCK, 2, 24, 5015, 2),
}

SEED_PRESETS = ("seed686", "seed857", "seed784", "seed490")

CONFIG_NAMES = ("tiny", "everything", "baseline", "recur") + tuple(RECURRENCE_CASES) + \
    SEED_PRESETS


def narrow_preset(name):
    """A seed preset's model keys at test size: d 64, 4 heads / 2 KV heads, vocab 96, the
    schedule (num_layers, layer_schedule / recur_layers) and every switch kept; side
    tables narrowed so that what is a projection at full size stays one."""
    keys = load_preset(name)
    full = ref.full_config(keys)
    D = ref.Dims(full)
    k = dict(keys)
    k.update(model_dim=64, num_heads=4, num_kv_heads=2, vocab_size=96)
    hd, kv = 64 // 4, 2 * (64 // 4)
    if D.Bv > 0:
        k["bigram_vocab_size"] = 37
        k["bigram_dim"] = 64 if D.bd == D.d else 24
    if full["ve_enabled"]:
        k["ve_dim"] = kv if D.ve == D.kv else 20
    if int(full["rope_dims"]) > 0:
        k["rope_dims"] = hd if D.rd == D.hd else 8
    return k


def make_config(name):
    """(full config, B, T, seed, active_repeats)."""
    if name == "tiny":
        return ref.full_config(load_preset("tiny")), 2, 64, 1001, None
    if name == "baseline":  # the naive baseline's math (relu², no SmearGate), narrowed
        return ref.full_config({**load_preset("baseline"), "model_dim": 128, "num_layers": 4}), \
            2, 64, 3003, None
    if name == "everything":
        return ref.full_config(EVERYTHING), 2, 32, 2002, None
    if name == "recur":
        return ref.full_config(RECUR), 2, 32, 4004, None
    if name in RECURRENCE_CASES:
        keys, B, T, seed, k = RECURRENCE_CASES[name]
        return ref.full_config(keys), B, T, seed, k
    if name in SEED_PRESETS:
        return ref.full_config(narrow_preset(name)), 2, 32, 6000 + int(name[4:]), None
    raise Fail(f"unknown config {name} (known: {', '.join(CONFIG_NAMES)})")


def run_config(name, args):
    """Returns True when the config passes; raises Fail for a failure that stops it."""
    try:
        cfg, B, T, seed, k = make_config(name)
        zero_ok = ref.expected_zero_grads(cfg, k)
    except ValueError as e:
        raise Fail(f"{name}: {e}")
    cdir = os.path.join(args.workdir, name)
    os.makedirs(cdir, exist_ok=True)
    params, ck, sh, x, y = write_inputs(cdir, cfg, B, T, seed)
    loss_t, grads_t = ref.loss_and_grads(params, cfg, x, y, active_repeats=k)
    zero = {n for n, g in grads_t.items() if not g.abs().max() > 0}
    if zero != zero_ok:
        raise Fail(f"{name}: reference gradients are all zero for {sorted(zero)}, expected "
                   f"exactly {sorted(zero_ok)} (every other path should carry signal)")
    what = f" (--active-repeats {k})" if k is not None else ""
    if args.no_pgolf:
        gmin = min((float(g.abs().max()), n) for n, g in grads_t.items() if n not in zero_ok)
        print(f"parity {name}: reference only{what}: loss {loss_t:.9g}, "
              f"{len(grads_t)} tensors, smallest max|g| {gmin[0]:.2e} ({gmin[1]})")
        return True
    out = os.path.join(cdir, "grads.safetensors")
    res = run_pgolf(args.pgolf, ck, sh, T, B, out, k)
    return compare(name + what, cfg, loss_t, grads_t, res, out, B, T, zero_ok)


def write_inputs(cdir, cfg, B, T, seed):
    params = ref.random_params(cfg, seed)
    flat = [n for n, t in params.items() if not t.abs().max() > 0]
    if flat:  # a zero tensor (e.g. a zero-init scale) would hide the paths behind it
        raise Fail(f"random parameters are all zero for {', '.join(flat)}")
    ck = os.path.join(cdir, "model.safetensors")
    st_io.write_safetensors(ck, [(n, t.numpy()) for n, t in params.items()],
                            {"pgolf_config": json.dumps(cfg)})
    g = torch.Generator().manual_seed(seed + 1)
    tokens = torch.randint(0, cfg["vocab_size"], (B * T + 1,), generator=g)
    sh = os.path.join(cdir, "tokens.bin")
    st_io.write_shard(sh, tokens.numpy().astype(np.uint16))
    # check the files read back bit-exactly
    back, meta = st_io.read_safetensors(ck)
    assert json.loads(meta["pgolf_config"]) == json.loads(json.dumps(cfg))
    for n, t in params.items():
        assert back[n].dtype == np.float32 and np.array_equal(back[n], t.numpy()), n
    assert np.array_equal(st_io.read_shard(sh).astype(np.int64), tokens.numpy())
    x = torch.stack([tokens[i * T:(i + 1) * T] for i in range(B)])
    y = torch.stack([tokens[i * T + 1:(i + 1) * T + 1] for i in range(B)])
    return params, ck, sh, x, y


_grad_help = {}


def grad_has_flag(pgolf, flag):
    """Whether `pgolf grad --help` lists `flag`."""
    if pgolf not in _grad_help:
        r = run_cmd([pgolf, "grad", "--help"], "pgolf grad --help", 60)
        _grad_help[pgolf] = r.stdout + r.stderr
    return any(w.strip(",=[]") == flag for w in _grad_help[pgolf].split())


def run_pgolf(pgolf, ck, sh, T, B, out, active_repeats=None):
    if os.path.exists(out):
        os.remove(out)
    cmd = [pgolf, "grad", "--checkpoint", ck, "--tokens", sh, "--seq-len", str(T),
           "--batch", str(B), "--out", out, "--json"]
    if active_repeats is not None:
        if not grad_has_flag(pgolf, "--active-repeats"):
            raise Fail(f"`{pgolf} grad --help` lists no --active-repeats: the subset of "
                       f"active layers (docs/recurrence.md, \"Switching depth\") cannot be "
                       f"checked through pgolf grad")
        cmd += ["--active-repeats", str(active_repeats)]
    r = run_cmd(cmd, "pgolf grad", PGOLF_TIMEOUT_S)
    objs = []
    text = r.stdout.strip()
    try:
        objs = [json.loads(text)]
    except ValueError:
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    objs.append(json.loads(line))
                except ValueError:
                    pass
    if len(objs) != 1 or not isinstance(objs[0], dict):
        raise Fail(f"pgolf grad --json printed {len(objs)} JSON objects on stdout, "
                   f"expected one: {r.stdout[:300]!r}")
    res = objs[0]
    for key in ("val_loss", "tokens"):
        if key not in res:
            raise Fail(f"pgolf grad --json output lacks `{key}`: {res}")
    if not os.path.isfile(out):
        raise Fail(f"pgolf grad did not write {out}")
    return res


def compare(name, cfg, loss_t, grads_t, res, grads_file, B, T, zero_ok):
    failures = []
    loss_p = float(res["val_loss"])
    loss_rel = abs(loss_p - loss_t) / abs(loss_t)
    if not loss_rel <= LOSS_RTOL:
        failures.append(f"loss {loss_p!r} vs torch {loss_t!r}: rel {loss_rel:.3e} > {LOSS_RTOL}")
    if int(res["tokens"]) != B * T:
        failures.append(f"pgolf reports tokens {res['tokens']}, expected B*T = {B * T}")

    gp, _ = st_io.read_safetensors(grads_file)
    want = set(grads_t)
    got = set(gp)
    if want - got:
        failures.append(f"gradients missing from {os.path.basename(grads_file)}: "
                        f"{', '.join(sorted(want - got))}")
    if got - want:
        failures.append(f"unexpected tensors in {os.path.basename(grads_file)}: "
                        f"{', '.join(sorted(got - want))}")

    worst_name, worst = None, -1.0
    n_cmp = 0
    for n, gt in grads_t.items():
        if n not in gp:
            continue
        g_t = gt.numpy()
        g_p = np.asarray(gp[n], dtype=np.float64)
        if tuple(g_p.shape) != tuple(g_t.shape):
            failures.append(f"{n}: pgolf gradient shape {list(g_p.shape)} != {list(g_t.shape)}")
            continue
        n_cmp += 1
        if not np.all(np.isfinite(g_p)):
            failures.append(f"{n}: pgolf gradient has non-finite values")
            continue
        scale = float(np.max(np.abs(g_t))) if g_t.size else 0.0
        if scale == 0.0:
            if n not in zero_ok:
                failures.append(f"{n}: torch gradient is all zero (test construction error: "
                                f"every path should carry signal)")
            pmax = float(np.max(np.abs(g_p))) if g_p.size else 0.0
            if pmax != 0.0:
                failures.append(f"{n}: torch gradient is zero but pgolf's max |g| is {pmax:.3e}")
            continue
        rel = float(np.max(np.abs(g_p - g_t))) / scale
        if rel > worst:
            worst, worst_name = rel, n
        if not rel <= GRAD_RTOL:
            failures.append(f"{n}: max|g_pgolf - g_torch| / max|g_torch| = {rel:.3e} > "
                            f"{GRAD_RTOL} (max|g_torch| {scale:.3e})")
    print(f"parity {name}: loss {loss_p:.9g} vs {loss_t:.9g} (rel {loss_rel:.2e}), "
          f"{n_cmp} tensors compared, worst {worst_name} rel {worst:.2e}")
    for f in failures:
        print(f"  FAIL {name}: {f}")
    return not failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pgolf", help="path to the pgolf binary")
    ap.add_argument("--workdir", required=True, help="scratch directory for the files")
    ap.add_argument("--configs", default=",".join(CONFIG_NAMES),
                    help="comma-separated subset of: " + ", ".join(CONFIG_NAMES))
    ap.add_argument("--no-pgolf", action="store_true",
                    help="skip pgolf: run self-checks and the reference only")
    ap.add_argument("--no-selfcheck", action="store_true",
                    help="skip reference_model's self-checks (a few seconds)")
    args = ap.parse_args()
    t0 = time.time()
    torch.set_num_threads(1)  # small tensors: threads only add overhead on a busy machine
    try:
        if not args.no_pgolf:
            if not args.pgolf:
                raise Fail("--pgolf PATH is required (or --no-pgolf)")
            if not (os.path.isfile(args.pgolf) and os.access(args.pgolf, os.X_OK)):
                raise Fail(f"pgolf binary {args.pgolf} does not exist or is not executable")
        if not args.no_selfcheck:
            try:
                ref.selfcheck()
            except AssertionError as e:
                raise Fail(f"reference self-check failed: {e!r}")
    except Fail as e:
        print(f"parity: FAIL: {e}")
        return 1
    ok = True
    for name in [c for c in args.configs.split(",") if c]:
        try:
            ok = run_config(name, args) and ok
        except Fail as e:
            print(f"parity {name}: FAIL: {e}", flush=True)
            ok = False
    print(f"parity: {'ok' if ok else 'FAILED'} in {time.time() - t0:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
