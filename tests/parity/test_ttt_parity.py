#!/usr/bin/python3
"""PyTorch parity of `pgolf eval --ttt` (score-first test-time training, SPEC §4).

    /usr/bin/python3 tests/parity/test_ttt_parity.py --pgolf PATH_TO_PGOLF --workdir DIR

Random F32 weights of a small everything-on config go into a checkpoint, and a shard of
Markov-chain tokens (something to adapt to) is evaluated whole. The PyTorch side (float64
parameters, reference_model.py, torch.optim) does score-first TTT as SPEC §4 words it:
- the targets are cut into chunks of C; the sliding windows (harness.sliding_plan) each
  belong to the chunk of their first scored target;
- for chunk c: score its windows with the current weights (Σ NLL in float64); then, unless c
  is the last chunk, E epochs over its whole T-token sequences (sequence k: targets
  [cC + kT, cC + (k+1)T)), b sequences per step: mean cross-entropy over the step's tokens,
  backward, clip_grad_norm_ over the adapted tensors (when the clip is > 0), then
  torch.optim.SGD(momentum) or torch.optim.AdamW(0.9, 0.999, 1e-8, no weight decay) at
  lr · ½(1 + cos(π c / max(chunks - 1, 1))); one optimizer for the whole run;
- adapted tensors: all but those of the first N virtual layers (their per-layer tensors and
  the block matrices all of whose uses are among them); or, with adapt_last K (#490), the
  tensors of the last K virtual layers (per-layer ones and their blocks' matrices), every
  tensor whose name holds norm / scale / gain / lm_head, and tok_emb. Only they change;
- val_loss = Σ NLL / targets.
pgolf trains in float32 (in micro-batches of m sequences), so val_loss agrees to RTOL; each
training case must also move val_loss away from the plain sliding one by more than 20 RTOL,
so that the comparison means something. Cases: (1) SGD with momentum and clipping,
freeze_blocks 1 on the schedule [0, 1, 0] (block 0 is also used by the last layer, so only
layer 0's scalars freeze); (1b) the same with freeze_blocks 2 (block 1's matrices freeze
too); (2) AdamW with adapt_last 1, no clipping; (3) lr 0: pgolf's TTT val_loss equals its
plain sliding one (to 1e-12). Exits non-zero on any failure.
"""
import json
import math
import os
import re
import sys
import time
from collections import OrderedDict

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import reference_model as ref  # noqa: E402
import st_io  # noqa: E402
from harness import (SMALL_CONFIG, Fail, parity_args, report, run_cmd, sliding_plan,  # noqa: E402
                     window_nll, write_checkpoint)

RTOL = 1e-5       # float32 training against float64 (they agree to about 3e-8)
EXACT_RTOL = 1e-12  # lr 0 against plain sliding windows, both pgolf
V = 64
N_TOKENS = 591    # 590 targets
T = 40            # > rope_train_seq_len 32: RoPE rescaled
STRIDE = 16
SCORE_BATCH = 5   # windows per forward; lr 0 uses 1 (see CASES)
MATRICES = ("attn.c_q.weight", "attn.c_k.weight", "attn.c_v.weight", "attn.proj.weight",
            "mlp.fc.weight", "mlp.proj.weight")

# chunk 170: 4 chunks, 4 whole sequences each (10 targets left over), steps of 3 + 1 sequences;
# chunk 200: 3 chunks, 5 whole sequences each, steps of 2 + 2 + 1.
SGD = dict(chunk=170, epochs=2, lr=0.05, batch_seqs=3, micro_seqs=2, grad_clip=3.0,
           momentum=0.9, freeze_blocks=1, adapt_last=0, optimizer="sgd", score_batch=SCORE_BATCH)
CASES = [
    ("sgd momentum clip freeze_blocks 1", SGD),
    ("sgd momentum clip freeze_blocks 2", {**SGD, "freeze_blocks": 2}),
    ("adamw adapt_last 1", dict(chunk=200, epochs=2, lr=0.003, batch_seqs=2, micro_seqs=2,
                                grad_clip=0.0, momentum=0.9, freeze_blocks=0, adapt_last=1,
                                optimizer="adamw", score_batch=SCORE_BATCH)),
    # pgolf's float32 forward depends on which windows share a batch (about 1e-9 relative),
    # and TTT batches windows within a chunk: one window per forward makes both runs alike.
    ("lr 0", {**SGD, "lr": 0.0, "score_batch": 1}),
]


def markov_tokens(seed):
    """N_TOKENS tokens of a random chain: each token is followed by one of 3 successors."""
    g = torch.Generator().manual_seed(seed)
    succ = torch.randint(0, V, (V, 3), generator=g)
    pick = torch.multinomial(torch.tensor([0.6, 0.3, 0.1]), N_TOKENS, replacement=True,
                             generator=g)
    out = [int(torch.randint(0, V, (1,), generator=g))]
    for k in range(1, N_TOKENS):
        out.append(int(succ[out[-1], pick[k]]))
    return np.array(out, dtype=np.int64)


def uses(name, sched):
    """The virtual layers a tensor belongs to: a per-layer tensor's own layer, every layer
    that runs a physical block matrix, None for tensors outside the blocks."""
    m = re.fullmatch(r"blocks\.(\d+)\.(.+)", name)
    if not m:
        return None
    i, rest = int(m[1]), m[2]
    return [v for v, p in enumerate(sched) if p == i] if rest in MATRICES else [i]


def adapted_names(cfg, o):
    """The tensors TTT changes (SPEC §4's freeze rule, or #490's with adapt_last)."""
    sched = ref.Dims(cfg).sched
    L, K, N = len(sched), o["adapt_last"], o["freeze_blocks"]
    out = set()
    for name in ref.param_shapes(cfg):
        layers = uses(name, sched)
        if K > 0:
            ok = (layers is not None and any(v >= L - K for v in layers)) or \
                any(w in name for w in ("norm", "scale", "gain", "lm_head")) or \
                name == "tok_emb.weight"
        else:
            ok = layers is None or not all(v < N for v in layers)
        if ok:
            out.add(name)
    return out


def torch_ttt(params, cfg, tokens, o):
    """Score-first TTT in float64: (val_loss, targets, stats)."""
    n = len(tokens) - 1
    C = o["chunk"]
    chunks = -(-n // C)
    by_chunk = [{} for _ in range(chunks)]
    for start, targets in sliding_plan(n, T, STRIDE).items():
        by_chunk[min(targets) // C][start] = targets
    adapt = adapted_names(cfg, o)
    P = OrderedDict((name, t.detach().double().clone().requires_grad_(name in adapt))
                    for name, t in params.items())
    train = [P[name] for name in P if name in adapt]
    if o["optimizer"] == "sgd":
        opt = torch.optim.SGD(train, lr=o["lr"], momentum=o["momentum"])
    else:
        opt = torch.optim.AdamW(train, lr=o["lr"], betas=(0.9, 0.999), eps=1e-8,
                                weight_decay=0.0)
    frozen0 = {name: t.detach().clone() for name, t in P.items() if name not in adapt}
    scored, steps, clipped = [], 0, 0
    for c in range(chunks):
        if by_chunk[c]:
            scored += window_nll(P, cfg, tokens, by_chunk[c], T)
        if c == chunks - 1:
            break
        for group in opt.param_groups:
            group["lr"] = o["lr"] * 0.5 * (1 + math.cos(math.pi * c / max(chunks - 1, 1)))
        begin = c * C
        seqs = (min(begin + C, n) - begin) // T
        for _ in range(o["epochs"]):
            for s0 in range(0, seqs, o["batch_seqs"]):
                rows = [begin + k * T for k in range(s0, min(s0 + o["batch_seqs"], seqs))]
                x = torch.from_numpy(np.stack([tokens[r:r + T] for r in rows]))
                y = torch.from_numpy(np.stack([tokens[r + 1:r + T + 1] for r in rows]))
                opt.zero_grad(set_to_none=True)
                ref.cross_entropy_mean(ref.forward_logits(P, cfg, x), y).backward()
                if o["grad_clip"] > 0:
                    norm = torch.nn.utils.clip_grad_norm_(train, o["grad_clip"])
                    clipped += int(norm > o["grad_clip"])
                opt.step()
                steps += 1
    targets = sorted(i for i, _ in scored)
    if targets != list(range(n)):
        raise Fail("the test's own plan misses or repeats targets")
    if any(not torch.equal(P[name], t) for name, t in frozen0.items()):
        raise Fail("a frozen tensor changed on the PyTorch side")
    stats = dict(chunks=chunks, steps=steps, clipped=clipped, adapted=len(adapt),
                 frozen=len(frozen0))
    return math.fsum(l for _, l in scored) / len(scored), len(scored), stats


def pgolf_eval(args, ck, shard, score_batch, o=None):
    cmd = [args.pgolf, "eval", "--checkpoint", ck, "--tokens", shard, "--seq-len", str(T),
           "--stride", str(STRIDE), "--batch", str(score_batch), "--json"]
    if o is not None:
        cmd += ["--ttt", "--ttt-chunk-tokens", str(o["chunk"]), "--ttt-epochs", str(o["epochs"]),
                "--ttt-lr", repr(o["lr"]), "--ttt-batch-seqs", str(o["batch_seqs"]),
                "--ttt-micro-seqs", str(o["micro_seqs"]), "--ttt-grad-clip", repr(o["grad_clip"]),
                "--ttt-momentum", repr(o["momentum"]), "--ttt-freeze-blocks",
                str(o["freeze_blocks"]), "--ttt-optimizer", o["optimizer"],
                "--ttt-adapt-last", str(o["adapt_last"])]
    r = run_cmd(cmd, "pgolf eval" + (" --ttt" if o is not None else ""), 120)
    got = json.loads(r.stdout)
    want_mode = "ttt" if o is not None else "sliding"
    if got.get("eval") != want_mode or not isinstance(got.get("val_loss"), float) or \
            got.get("tokens") != len(st_io.read_shard(shard)) - 1:
        raise Fail(f"pgolf eval JSON lacks eval={want_mode}, val_loss or every target: {got}")
    return got


def main():
    args = parity_args(__doc__)
    t0 = time.time()
    failures = []
    try:
        cfg = ref.full_config({**SMALL_CONFIG, "vocab_size": V})
        params = ref.random_params(cfg, 4343)
        ck = os.path.join(args.workdir, "model.safetensors")
        write_checkpoint(ck, params, cfg)
        tokens = markov_tokens(11)
        shard = os.path.join(args.workdir, "tokens.bin")
        st_io.write_shard(shard, tokens.astype(np.uint16))
        n = len(tokens) - 1

        P = {name: t.double() for name, t in params.items()}
        torch_sliding = math.fsum(l for _, l in window_nll(P, cfg, tokens,
                                                           sliding_plan(n, T, STRIDE), T)) / n
        sliding = {b: pgolf_eval(args, ck, shard, b)["val_loss"]
                   for b in sorted({o["score_batch"] for _, o in CASES})}
        for b, v in sliding.items():
            rel = abs(v - torch_sliding) / abs(torch_sliding)
            print(f"parity sliding: {n} targets, T {T}, stride {STRIDE}, batch {b}: pgolf {v!r} "
                  f"torch {torch_sliding!r} (rel {rel:.1e})")
            if not rel <= RTOL:
                failures.append(f"sliding batch {b}: pgolf {v!r} vs torch {torch_sliding!r}")

        for name, o in CASES:
            want, count, stats = torch_ttt(params, cfg, tokens, o)
            got = pgolf_eval(args, ck, shard, o["score_batch"], o)
            g, plain = got["val_loss"], sliding[o["score_batch"]]
            rel = abs(g - want) / abs(want)
            change = (g - plain) / abs(plain)
            print(f"parity ttt {name}: {stats['chunks']} chunks, {stats['steps']} steps "
                  f"({stats['clipped']} clipped), {stats['adapted']} tensors adapted, "
                  f"{stats['frozen']} frozen")
            print(f"  val_loss pgolf {g!r} torch {want!r} (rel {rel:.1e}); sliding {plain!r} "
                  f"(ttt change {change:+.2e})")
            if got.get("tokens") != count:
                failures.append(f"{name}: tokens pgolf {got.get('tokens')!r} vs {count}")
            if not rel <= RTOL:
                failures.append(f"{name}: val_loss pgolf {g!r} vs torch {want!r} (rel {rel:.1e})")
            if o["lr"] == 0:
                if not abs(g - plain) <= EXACT_RTOL * abs(plain):
                    failures.append(f"{name}: val_loss {g!r} differs from plain sliding "
                                    f"{plain!r}")
            elif not abs(change) > 20 * RTOL:
                failures.append(f"{name}: TTT moved val_loss by only {change:+.1e} (relative), "
                                f"too little for the comparison to mean anything")
    except Fail as e:
        failures.append(str(e))
    return report("parity.ttt", failures, t0)


if __name__ == "__main__":
    sys.exit(main())
