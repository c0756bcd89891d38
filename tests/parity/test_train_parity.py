#!/usr/bin/python3
"""PyTorch parity test for `pgolf train` (SPEC §3): ten training steps, loss by loss.

    /usr/bin/python3 tests/parity/test_train_parity.py --pgolf PATH_TO_PGOLF --workdir DIR
        [--shared SHARED_DATA_DIR] [--configs tiny,untied] [--no-pgolf [--sensitivity]]

For each config it writes `pgolf init` weights, a data directory (two training shards, the
second short so that the ten steps wrap the stream, a validation shard, the shared sp1024
tokenizer) and runs `pgolf train --init` for 10 steps with: a warmdown inside the run,
muon momentum warm-up, weight decay on both optimizers, gradient clipping that fires,
gradient accumulation, and 2 warm-up steps that pgolf runs and rolls back (the PyTorch side
never runs them, so equal losses prove the rollback of weights, optimizer state and data).
The per-step `train_loss` of RUN/metrics.jsonl must match reference_train.py (float64 from
the same float32 weights) to a relative 1e-4 at every step, and pgolf's final weights
(RUN/model.safetensors) must score step 11's batches like the reference's (the last update
shows in no logged loss).

Configs: `tiny` (configs/tiny.json's model keys: tied embeddings) and `untied` (lm_head,
gated attention, value residual, VE with a projection, bigram projection, a shared block):
together they put a tensor in every optimizer group.

`--no-pgolf` runs the reference only (weights from `pgolf init` when --pgolf is given,
else reference_model.random_params) in float64 and float32, and prints how far apart they
are: the float32 noise floor that the 1e-4 tolerance must sit above; with --sensitivity,
also how far each of a list of plausible mistakes moves the losses (each must exceed twice
the tolerance).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import reference_model as ref  # noqa: E402
import reference_train as rt  # noqa: E402
import st_io  # noqa: E402
from harness import Fail, preset_model_keys, run_cmd  # noqa: E402

LOSS_RTOL = 1e-4
STEPS = 10
PGOLF_TIMEOUT_S = 600
VOCAB = 1024  # the shared fineweb_1024_bpe tokenizer

UNTIED = {
    "vocab_size": VOCAB,
    "num_layers": 3,
    "layer_schedule": [0, 1, 2, 1, 2],
    "model_dim": 64,
    "num_heads": 4,
    "num_kv_heads": 2,
    "mlp_mult": 2,
    "tie_embeddings": False,
    "bigram_vocab_size": 64,
    "bigram_dim": 24,
    "xsa_last_n": 2,
    "ln_scale": True,
    "ve_enabled": True,
    "ve_dim": 24,
    "ve_layers": [1, 3],
    "gated_attention": True,
    "value_residual": True,
    "rope_dims": 8,
}

# Every training key the run depends on is written out, so defaults on either side do not
# matter. 2 micro-steps of 129 tokens per step; warmdown over the last 4 steps (lr x 1, .75,
# .5, .25 for steps 7..10); momentum .6 -> .95 over the first 5 steps; distinct learning
# rates and weight decays per group, large enough that each mistake in `--sensitivity`
# moves some step's loss by more than twice the tolerance.
TRAIN = {
    "seed": 1337,
    "iterations": STEPS,
    "warmdown_iters": 4,
    "max_wallclock_seconds": 0,
    "warmup_steps": 2,
    "train_batch_tokens": 2 * 128,
    "train_seq_len": 128,
    "grad_accum_steps": 2,
    "eval_seq_len": 128,
    "val_batch_size": 4 * 128,
    "train_log_every": 1,
    "val_loss_every": 0,
    "ema_enabled": False,
    "swa_enabled": False,
    "late_qat_threshold": 0,
    "grad_clip_norm": 0.3,
    "matrix_lr": 0.025,
    "scalar_lr": 0.02,
    "tied_embed_lr": 0.035,
    "embed_lr": 0.05,
    "head_lr": 0.008,
    "muon_momentum": 0.95,
    "muon_momentum_warmup_start": 0.6,
    "muon_momentum_warmup_steps": 5,
    "muon_backend_steps": 5,
    "muon_wd": 0.5,
    "adam_wd": 0.3,
    "beta1": 0.9,
    "beta2": 0.95,
    "adam_eps": 1e-8,
}
# Stream of 1500 + 300 tokens; the 10 steps read 10 * 258 = 2580 tokens: shard 0 -> shard 1
# inside step 6 (mid micro-batch), the wrap back to shard 0 inside step 7.
SHARD_TOKENS = (1500, 300)
VAL_TOKENS = 4 * 128 + 1


def load_tiny():
    return preset_model_keys("tiny")[0]


CONFIG_NAMES = ("tiny", "untied")


def model_config(name):
    if name == "tiny":
        cfg = load_tiny()
        if int(cfg.get("vocab_size", ref.DEFAULTS["vocab_size"])) != VOCAB:
            raise Fail(f"tiny: vocab_size must be {VOCAB} to use the shared tokenizer")
        return cfg
    if name == "untied":
        return dict(UNTIED)
    raise Fail(f"unknown config {name} (known: {', '.join(CONFIG_NAMES)})")


def markov_tokens(rng, n, vocab):
    """Learnable 'random' text: a sparse random Markov chain over 96 of the vocab's tokens,
    so ten steps move the loss far more than the tolerance (uniform tokens barely would)."""
    active = rng.choice(vocab, 96, replace=False)
    succ = rng.integers(0, 96, (96, 3))
    probs = np.array([0.6, 0.3, 0.1])
    out = np.empty(n, dtype=np.int64)
    s = int(rng.integers(0, 96))
    for i in range(n):
        out[i] = active[s]
        s = int(succ[s, rng.choice(3, p=probs)]) if rng.random() > 0.05 else int(rng.integers(0, 96))
    return out


def write_data(ddir, shared, seed):
    os.makedirs(ddir, exist_ok=True)
    rng = np.random.default_rng(seed)
    toks = markov_tokens(rng, sum(SHARD_TOKENS) + VAL_TOKENS, VOCAB)
    paths = []
    pos = 0
    for i, n in enumerate(SHARD_TOKENS):
        p = os.path.join(ddir, f"x_train_{i:06d}.bin")
        st_io.write_shard(p, toks[pos:pos + n])
        paths.append(p)
        pos += n
    st_io.write_shard(os.path.join(ddir, "x_val_000000.bin"), toks[pos:pos + VAL_TOKENS])
    if shared is not None:
        tok = os.path.join(shared, "fineweb_1024_bpe.model")
        if not os.path.isfile(tok):
            raise Fail(f"tokenizer {tok} does not exist (pass --shared DIR)")
        shutil.copyfile(tok, os.path.join(ddir, "tokenizer.model"))
    return paths


def has_subcommand(pgolf, name):
    r = subprocess.run([pgolf, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=60)
    return any(line.split()[:1] == [name] for line in r.stdout.splitlines())


def pgolf_init(pgolf, cdir, cfg_model, seed):
    cfg_path = os.path.join(cdir, "cfg.json")
    with open(cfg_path, "w") as f:
        json.dump(cfg_model, f, indent=1)
    init = os.path.join(cdir, "init.safetensors")
    run_cmd([pgolf, "init", "--config", cfg_path, "--seed", str(seed), "--out", init],
            "pgolf init", PGOLF_TIMEOUT_S)
    tensors, meta = st_io.read_safetensors(init)
    full = json.loads(meta["pgolf_config"])
    cfg = ref.full_config({k: v for k, v in full.items() if k in ref.DEFAULTS})
    asked = ref.full_config(cfg_model)
    for k, v in cfg_model.items():  # the checkpoint's config is the one asked for
        if cfg[k] != asked[k]:
            raise Fail(f"init checkpoint has {k} = {cfg[k]!r}, asked for {v!r}")
    for n, t in tensors.items():
        if t.dtype != np.float32:
            raise Fail(f"init checkpoint tensor {n} is {t.dtype}, expected float32")
    return init, cfg, tensors


def read_train_events(path):
    if not os.path.isfile(path):
        raise Fail(f"pgolf train wrote no {path}")
    events = {}
    with open(path) as f:
        for i, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                raise Fail(f"{path}:{i}: not JSON: {line[:200]!r}")
            if "train_loss" not in obj:
                continue
            if "step" not in obj:
                raise Fail(f"{path}:{i}: train event without `step`: {line[:200]!r}")
            events[int(obj["step"])] = obj
    missing = [s for s in range(1, STEPS + 1) if s not in events]
    if missing:
        raise Fail(f"{path}: {len(events)} train events (steps {sorted(events)}); "
                   f"steps {missing} are missing (expected 1..{STEPS})")
    return events


# Mistakes the test must catch: (label, training-key overrides, schedule shift). The shift
# evaluates the LR multiplier or the momentum one step late.
MISTAKES = [
    ("adam_wd ignored", {"adam_wd": 0.0}, None),
    ("muon_wd ignored", {"muon_wd": 0.0}, None),
    ("no momentum warm-up", {"muon_momentum_warmup_steps": 0}, None),
    ("momentum one step late", {}, "momentum"),
    ("no warmdown", {"warmdown_iters": 0}, None),
    ("LR multiplier one step late", {}, "lr"),
    ("scalar_lr x1.1", {"scalar_lr": TRAIN["scalar_lr"] * 1.1}, None),
    ("embed lr x1.1", {"embed_lr": TRAIN["embed_lr"] * 1.1,
                       "tied_embed_lr": TRAIN["tied_embed_lr"] * 1.1}, None),
    ("head_lr x1.1", {"head_lr": TRAIN["head_lr"] * 1.1}, None),
    ("beta2 0.99", {"beta2": 0.99}, None),
    ("no grad clip", {"grad_clip_norm": 0.0}, None),
    ("4 Newton-Schulz steps", {"muon_backend_steps": 4}, None),
]


def sensitivity(name, tensors, cfg, shards, base):
    """How far each MISTAKE moves the reference losses (worst step, relative)."""
    rows = []
    for label, over, shift in MISTAKES:
        c = dict(TRAIN)
        c.update(over)
        saved = rt.lr_mul, rt.muon_momentum
        if shift == "lr":
            rt.lr_mul = lambda st, cf, f=saved[0]: f(st + 1, cf)
        elif shift == "momentum":
            rt.muon_momentum = lambda st, cf, f=saved[1]: f(st + 1, cf)
        try:
            losses, _ = rt.train(tensors, cfg, c, shards, STEPS, torch.float64)
        finally:
            rt.lr_mul, rt.muon_momentum = saved
        rows.append((label, max(abs(a - b) / abs(b) for a, b in zip(losses, base))))
    print(f"train parity {name}: sensitivity (worst rel change of a step's loss): " +
          ", ".join(f"{lab} {r:.1e}" for lab, r in rows))
    return rows


def next_batches_loss(P, cfg, shards, ga):
    """Mean loss of weights P (float64) on the micro-batches of step STEPS + 1."""
    ld = rt.DistributedTokenLoader(shards)
    for _ in range(STEPS * ga):
        ld.next_batch(TRAIN["train_batch_tokens"], TRAIN["train_seq_len"], ga)
    tot = 0.0
    with torch.no_grad():
        for _ in range(ga):
            x, y = ld.next_batch(TRAIN["train_batch_tokens"], TRAIN["train_seq_len"], ga)
            tot += float(ref.cross_entropy_mean(ref.forward_logits(P, cfg, x), y))
    return tot / ga


def check_final_weights(run, cfg, shards, final_t):
    """pgolf's final weights (RUN/model.safetensors) score the next step's batches like the
    reference's: this covers the last update, whose effect no logged loss shows."""
    path = os.path.join(run, "model.safetensors")
    if not os.path.isfile(path):
        raise Fail(f"pgolf train wrote no {path}")
    got, _ = st_io.read_safetensors(path)
    if set(got) != set(final_t):
        raise Fail(f"{path}: tensors differ from the SPEC §5 table: "
                   f"{sorted(set(got) ^ set(final_t))}")
    Pp = {n: torch.from_numpy(np.asarray(t, dtype=np.float64)) for n, t in got.items()}
    ga = rt.effective_grad_accum(TRAIN)
    lp = next_batches_loss(Pp, cfg, shards, ga)
    lt = next_batches_loss(final_t, cfg, shards, ga)
    rel = abs(lp - lt) / abs(lt)
    wn, wr = max(((n, float((Pp[n] - final_t[n]).norm() / max(final_t[n].norm(), 1e-30)))
                  for n in final_t), key=lambda e: e[1])
    print(f"  final weights: loss on step {STEPS + 1}'s batches pgolf {lp:.7f} torch {lt:.7f} "
          f"rel {rel:.2e}; largest relative weight difference {wr:.1e} ({wn})")
    return rel


def run_config(name, args):
    cfg_model = model_config(name)
    cdir = os.path.join(args.workdir, name)
    os.makedirs(cdir, exist_ok=True)
    seed = 4242 + CONFIG_NAMES.index(name)
    ddir = os.path.join(cdir, "data")
    shards = write_data(ddir, None if args.no_pgolf else args.shared, seed)

    if args.pgolf:
        init, cfg, tensors = pgolf_init(args.pgolf, cdir, cfg_model, seed)
    else:
        cfg = ref.full_config(cfg_model)
        tensors = {n: t.numpy() for n, t in ref.random_params(cfg, seed).items()}
    if set(tensors) != set(ref.param_shapes(cfg)):
        raise Fail(f"{name}: init tensors {sorted(set(tensors) ^ set(ref.param_shapes(cfg)))} "
                   f"differ from the SPEC §5 table")
    groups = rt.optimizer_groups(list(tensors), cfg)
    empty = [g for g, ns in groups.items() if not ns]

    t0 = time.time()
    stats = []
    losses_t, final_t = rt.train(tensors, cfg, TRAIN, shards, STEPS, torch.float64,
                                 stats=stats)
    t_ref = time.time() - t0
    clipped = sum(s["clipped"] for s in stats)
    print(f"train parity {name}: groups " +
          ", ".join(f"{g} {len(ns)}" for g, ns in groups.items()) +
          f"; reference {t_ref:.1f} s; grad norms " +
          " ".join(f"{s['grad_norm']:.3g}" for s in stats) +
          f" (clip {TRAIN['grad_clip_norm']}: fired on {clipped}/{STEPS} steps)", flush=True)
    if clipped == 0:
        raise Fail(f"{name}: gradient clipping never fired (test construction error)")
    if losses_t[0] - losses_t[-1] < 100 * LOSS_RTOL * abs(losses_t[0]):
        raise Fail(f"{name}: the reference loss hardly moves over {STEPS} steps "
                   f"({losses_t[0]:.5f} -> {losses_t[-1]:.5f}): the test could not "
                   f"tell a wrong update from a right one")

    if args.no_pgolf:
        losses_32, _ = rt.train(tensors, cfg, TRAIN, shards, STEPS, torch.float32)
        rel32 = max(abs(a - b) / abs(b) for a, b in zip(losses_32, losses_t))
        for s, st in enumerate(stats):
            print(f"  step {s + 1:2d}: torch f64 {losses_t[s]:.9f}  f32 {losses_32[s]:.9f}  "
                  f"lr x{st['lr_mul']:.2f} momentum {st['momentum']:.3f} "
                  f"norm {st['grad_norm']:.4f}")
        print(f"train parity {name}: reference only; float32 vs float64 worst rel "
              f"{rel32:.2e} (tolerance {LOSS_RTOL:g}); empty groups: {empty or 'none'}")
        if args.sensitivity:
            rows = sensitivity(name, tensors, cfg, shards, losses_t)
            weak = [lab for lab, r in rows if r < 2 * LOSS_RTOL and
                    not (lab.startswith("head") and empty and "head" in empty)]
            if weak:
                print(f"train parity {name}: FAIL: the tolerance would miss: {', '.join(weak)}")
                return False, rel32
        return True, rel32

    run = os.path.join(cdir, "run")
    if os.path.isdir(run):
        shutil.rmtree(run)
    tcfg = dict(cfg_model)
    tcfg.update(TRAIN)
    tpath = os.path.join(cdir, "train.json")
    with open(tpath, "w") as f:
        json.dump(tcfg, f, indent=1)
    t0 = time.time()
    run_cmd([args.pgolf, "train", "--config", tpath, "--data", ddir, "--out", run,
             "--init", init], "pgolf train", PGOLF_TIMEOUT_S)
    t_pg = time.time() - t0
    events = read_train_events(os.path.join(run, "metrics.jsonl"))

    worst, ok = 0.0, True
    for s in range(1, STEPS + 1):
        lp = float(events[s]["train_loss"])
        lt = losses_t[s - 1]
        rel = abs(lp - lt) / abs(lt)
        worst = max(worst, rel) if rel == rel else float("inf")  # NaN -> inf
        good = rel <= LOSS_RTOL
        ok = ok and good
        st = stats[s - 1]
        print(f"  step {s:2d}: pgolf {lp:.7f}  torch {lt:.7f}  rel {rel:.2e}  "
              f"lr x{st['lr_mul']:.2f} momentum {st['momentum']:.3f} "
              f"norm {st['grad_norm']:.4f}{'' if good else '  FAIL'}")
    frel = check_final_weights(run, cfg, shards, final_t)
    if not frel <= LOSS_RTOL:
        print(f"  FAIL: final weights' loss rel {frel:.2e} > {LOSS_RTOL}")
        ok = False
    print(f"train parity {name}: {STEPS} steps, worst rel {worst:.2e} "
          f"(pgolf {t_pg:.1f} s) {'ok' if ok else 'FAIL'}", flush=True)
    return ok, worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pgolf", help="path to the pgolf binary")
    ap.add_argument("--workdir", required=True, help="scratch directory for the files")
    ap.add_argument("--shared", default=os.path.normpath(
        os.path.join(HERE, "..", "..", "..", "shared", "data")),
        help="directory holding fineweb_1024_bpe.model (default: <repo>/../shared/data)")
    ap.add_argument("--configs", default=",".join(CONFIG_NAMES),
                    help=f"comma-separated subset of: {', '.join(CONFIG_NAMES)}")
    ap.add_argument("--no-pgolf", action="store_true",
                    help="reference only: float64 vs float32 noise floor")
    ap.add_argument("--sensitivity", action="store_true",
                    help="with --no-pgolf: show that every mistake of MISTAKES moves some "
                         "step's loss by more than twice the tolerance")
    ap.add_argument("--no-selfcheck", action="store_true",
                    help="skip reference_train's self-checks")
    args = ap.parse_args()
    t0 = time.time()
    torch.set_num_threads(1)
    worst_all = 0.0
    try:
        if args.pgolf:
            if not (os.path.isfile(args.pgolf) and os.access(args.pgolf, os.X_OK)):
                raise Fail(f"pgolf binary {args.pgolf} does not exist or is not executable")
            if not args.no_pgolf and not has_subcommand(args.pgolf, "train"):
                raise Fail(f"{args.pgolf} has no `train` subcommand (see `{args.pgolf} --help`)")
        elif not args.no_pgolf:
            raise Fail("--pgolf PATH is required (or --no-pgolf)")
        if not args.no_selfcheck:
            try:
                rt.selfcheck()
            except AssertionError as e:
                raise Fail(f"reference_train self-check failed: {e!r}")
        os.makedirs(args.workdir, exist_ok=True)
    except Fail as e:
        print(f"train parity: FAIL: {e}")
        return 1
    ok = True
    for name in [c for c in args.configs.split(",") if c]:
        try:
            good, worst = run_config(name, args)
            ok = ok and good
            worst_all = max(worst_all, worst)
        except Fail as e:
            print(f"train parity {name}: FAIL: {e}", flush=True)
            ok = False
            worst_all = float("inf")
    what = "float32 vs float64 reference" if args.no_pgolf else "pgolf vs torch"
    print(f"train parity: {STEPS} steps, worst rel {worst_all:.2e} ({what}); "
          f"{'ok' if ok else 'FAILED'} in {time.time() - t0:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
