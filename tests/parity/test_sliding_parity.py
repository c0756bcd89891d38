#!/usr/bin/python3
"""PyTorch parity of `pgolf eval --stride` (sliding-window evaluation, SPEC §4).

    /usr/bin/python3 tests/parity/test_sliding_parity.py --pgolf PATH_TO_PGOLF --workdir DIR

Random F32 weights of a small everything-on config go into a checkpoint; reference_model.py
(float64) scores the same windows, derived independently from SPEC §4 (here and in
harness.sliding_plan):
- pgolf's rule, target by target: target i (predicting token i+1) is scored in the window
  starting at 0 when i < T, else at the first multiple of the stride whose window ends past
  i, or at n - T (flush with the end) when that window would run past the end;
- the reference's eval_val_sliding: for ws in range(0, n, stride), wlen = min(ws+T, n) - ws,
  scored = [s, wlen) with s = 0 if ws == 0 else max(wlen - stride, 0) (--reference-tail).
Windows that run past the end are padded, as the reference pads them; every forward has T
positions. Cases: a --tokens shard whose length is a multiple of neither T nor the stride
(val_loss, tokens), and the validation split of a data directory made by `pgolf data` from
generated text (val_loss, val_bpb with byte tables built here from the SentencePiece model,
tokens, bytes). Exits non-zero on any failure.
"""
import glob
import json
import math
import os
import random
import sys
import time

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import sentencepiece as spm  # noqa: E402
import torch  # noqa: E402

import reference_model as ref  # noqa: E402
import st_io  # noqa: E402
from harness import (SMALL_CONFIG, Fail, parity_args, report, run_cmd, sliding_plan,  # noqa: E402
                     window_nll, write_checkpoint)

RTOL = 1e-5
T = 64
CONFIG = SMALL_CONFIG  # every switch on, a reused block, and RoPE rescaled (T > 32)


def pgolf_windows(n, stride):
    """{window start: [scored targets]} by SPEC §4 and pgolf's tail rule, target by target."""
    return sliding_plan(n, T, stride)


def reference_windows(n, stride):
    """{window start: [scored targets]} exactly as the reference's eval_val_sliding."""
    wins = {}
    for ws in range(0, n, stride):
        wlen = min(ws + T, n) - ws
        s = 0 if ws == 0 else max(wlen - stride, 0)
        wins[ws] = list(range(ws + s, ws + wlen))
    return wins


def torch_sliding(P, cfg, tokens, wins):
    """Per-target NLL (float64) of every scored target, in one batch of T-token windows."""
    return window_nll(P, cfg, tokens, wins, T)


def byte_tables(model_file):
    """SPEC §4's tables from the SentencePiece model: (base_bytes, leading_space, boundary)."""
    sp = spm.SentencePieceProcessor(model_file=model_file)
    V = sp.vocab_size()
    base, lead, boundary = [0] * V, [False] * V, [True] * V
    for i in range(V):
        if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i):
            continue
        boundary[i] = False
        if sp.is_byte(i):
            base[i] = 1
            continue
        piece = sp.id_to_piece(i)
        if piece.startswith("\u2581"):
            lead[i], piece = True, piece[1:]
        base[i] = len(piece.encode("utf-8"))
    return base, lead, boundary


def pgolf_eval(args, ck, *source):
    r = run_cmd([args.pgolf, "eval", "--checkpoint", ck, *source, "--json"], "pgolf eval", 300)
    return json.loads(r.stdout)


def compare(name, got, want, failures):
    for key, w in want.items():
        g = got.get(key)
        exact = isinstance(w, int)
        ok = g is not None and (g == w if exact else abs(g - w) <= RTOL * abs(w))
        print(f"  {name}: {key} pgolf {g!r} torch {w!r}" + ("" if exact or g is None else
                                                            f" (rel {abs(g - w) / abs(w):.1e})"))
        if not ok:
            failures.append(f"{name}: {key} pgolf {g!r} vs torch {w!r}")


def generated_text(seed, words):
    """Text with words, punctuation, digits and a few multi-byte characters."""
    rnd = random.Random(seed)
    syll = ["ka", "lo", "mi", "ne", "ru", "sta", "pel", "dor", "vin", "qu", "éo", "ß", "—"]
    out = []
    for k in range(words):
        w = "".join(rnd.choice(syll) for _ in range(rnd.randint(1, 3)))
        out.append(w + (". " if k % 11 == 10 else ", " if k % 7 == 6 else " "))
        if k % 97 == 96:
            out.append(f"{rnd.randint(0, 9999)}\n")
    return "".join(out)


def make_data(args):
    text_dir = os.path.join(args.workdir, "text")
    os.makedirs(text_dir)
    for d in range(12):
        with open(os.path.join(text_dir, f"doc{d:02d}.txt"), "w", encoding="utf-8") as f:
            f.write(generated_text(d, 900))
    data = os.path.join(args.workdir, "data")
    run_cmd([args.pgolf, "data", "--text", text_dir, "--vocab", "256", "--val-fraction", "0.3",
             "--out", data], "pgolf data", 300)
    return data


def main():
    args = parity_args(__doc__)
    t0 = time.time()
    failures = []
    try:
        data = make_data(args)
        luts = byte_tables(os.path.join(data, "tokenizer.model"))
        cfg = ref.full_config({**CONFIG, "vocab_size": len(luts[0])})
        params = ref.random_params(cfg, 4242)
        ck = os.path.join(args.workdir, "model.safetensors")
        write_checkpoint(ck, params, cfg)
        P = {n: t.double() for n, t in params.items()}

        # A shard of 1000 tokens: 999 targets, a multiple of neither T nor the stride.
        g = torch.Generator().manual_seed(7)
        shard_tokens = torch.randint(0, cfg["vocab_size"], (1000,), generator=g).numpy()
        shard = os.path.join(args.workdir, "tokens.bin")
        st_io.write_shard(shard, shard_tokens.astype(np.uint16))
        # The validation split, truncated to whole windows of T plus one as the reference loads it.
        val = np.concatenate([st_io.read_shard(f) for f in
                              sorted(glob.glob(os.path.join(data, "*_val_*.bin")))])
        val = val[:(len(val) - 1) // T * T + 1].astype(np.int64)
        base, lead, boundary = luts

        cases = [("tokens", shard_tokens, ["--tokens", shard], 24, 5),
                 ("data", val, ["--data", data], 16, 8)]
        for name, tokens, source, stride, batch in cases:
            n = len(tokens) - 1
            for tail in (False, True):
                label = f"{name} stride {stride}{' reference tail' if tail else ''}"
                wins = (reference_windows if tail else pgolf_windows)(n, stride)
                scored = torch_sliding(P, cfg, tokens, wins)
                nll = math.fsum(l for _, l in scored)
                want = {"tokens": len(scored), "val_loss": nll / len(scored)}
                if name == "data":
                    nbytes = sum(base[tokens[i + 1]] +
                                 (lead[tokens[i + 1]] and not boundary[tokens[i]])
                                 for i, _ in scored)
                    want.update({"bytes": nbytes, "val_bpb": nll / math.log(2) / nbytes})
                if not tail and sorted(i for i, _ in scored) != list(range(n)):
                    failures.append(f"{label}: the test's own plan misses or repeats targets")
                got = pgolf_eval(args, ck, *source, "--seq-len", str(T), "--stride", str(stride),
                                 "--batch", str(batch), *(["--reference-tail"] if tail else []))
                if got.get("eval") != "sliding" or got.get("stride") != stride:
                    failures.append(f"{label}: JSON lacks eval=sliding, stride={stride}: {got}")
                if "bytes" in got:
                    got["bytes"] = int(got["bytes"])
                print(f"parity {label}: {len(wins)} windows, {n} targets")
                compare(label, got, want, failures)
    except Fail as e:
        failures.append(str(e))
    return report("parity.sliding", failures, t0)


if __name__ == "__main__":
    sys.exit(main())
