"""The reference's training semantics (SPEC §3) in plain PyTorch, on reference_model.py.

Used by test_train_parity.py as the reference for `pgolf train`, and by
bench/train_vs_torch.py. Parameters are a dict name -> tensor (SPEC §5 names). What is
written here is the challenge's train_gpt.py training loop (the "#414/#549 stack", see
SEEDS.md §0) with world_size 1 and without bf16 autocast:

- optimizer groups: Muon for the block matrices (c_q, c_k, c_v, attn.proj, mlp.fc,
  mlp.proj) at matrix_lr with muon_wd; AdamW for tok_emb / bigram.embed / ve_shared.embed
  at tied_embed_lr (embed_lr when untied); AdamW at scalar_lr for every other tensor; Adam
  (no weight decay) at head_lr for lm_head;
- Muon: buf = mu*buf + g; g = g + mu*buf (nesterov); u = NS5(g) * max(1, rows/cols)^0.5;
  p *= 1 - lr*wd (when wd > 0); p -= lr*u;
- one step: mean CE over grad_accum_steps micro-batches (each backward with loss/accum),
  muon momentum warm-up, LR multiplier (warmdown by iterations), global grad-norm clip,
  every optimizer steps, grads zeroed;
- data: DistributedTokenLoader (world_size 1): one stream over the sorted train shards,
  wrapping; each micro-step takes train_batch_tokens // grad_accum_steps + 1 tokens.

The warm-up steps that the reference runs and rolls back are not run here: rolled back, they
leave no trace. Run directly (`/usr/bin/python3 reference_train.py`) for the self-checks.
"""
import math
import time
from collections import OrderedDict

import numpy as np
import torch

import reference_model as ref
import st_io

# The training keys and their defaults (pgolf's TrainConfig, src/train/train_config.h: the
# reference's hyperparameters in lower case). Callers that compare against pgolf should set
# every key they rely on explicitly.
TRAIN_DEFAULTS = OrderedDict([
    ("seed", 1337),
    ("iterations", 20000),
    ("warmdown_iters", 1200),
    ("warmup_steps", 20),
    ("train_batch_tokens", 524288),
    ("train_seq_len", 1024),
    ("grad_accum_steps", 0),
    ("eval_seq_len", 0),
    ("val_batch_size", 524288),
    ("val_loss_every", 1000),
    ("train_log_every", 200),
    ("max_wallclock_seconds", 600.0),
    ("matrix_lr", 0.04),
    ("scalar_lr", 0.04),
    ("tied_embed_lr", 0.05),
    ("embed_lr", 0.6),
    ("head_lr", 0.008),
    ("muon_momentum", 0.95),
    ("muon_momentum_warmup_start", 0.85),
    ("muon_momentum_warmup_steps", 500),
    ("muon_backend_steps", 5),
    ("muon_wd", 0.0),
    ("adam_wd", 0.0),
    ("beta1", 0.9),
    ("beta2", 0.95),
    ("adam_eps", 1e-8),
    ("grad_clip_norm", 0.0),
    ("ema_enabled", False),
    ("ema_decay", 0.997),
    ("swa_enabled", False),
    ("swa_every", 50),
    ("late_qat_threshold", 0.0),
    ("checkpoint_every", 0),
])

NS_COEFFS = (3.4445, -4.7750, 2.0315)
NS_EPS = 1e-7
MUON_SUFFIXES = ("attn.c_q.weight", "attn.c_k.weight", "attn.c_v.weight",
                 "attn.proj.weight", "mlp.fc.weight", "mlp.proj.weight")
EMBED_NAMES = ("tok_emb.weight", "bigram.embed.weight", "ve_shared.embed.weight")
HEAD_NAME = "lm_head.weight"


def full_train_config(partial):
    """Every key of TRAIN_DEFAULTS filled; model keys (reference_model.DEFAULTS) are
    ignored, anything else is an error."""
    unknown = sorted(k for k in partial if k not in TRAIN_DEFAULTS and k not in ref.DEFAULTS)
    if unknown:
        raise ValueError(f"reference trainer does not know config key(s) {unknown}")
    cfg = OrderedDict((k, partial.get(k, v)) for k, v in TRAIN_DEFAULTS.items())
    for k in ("ema_enabled", "swa_enabled"):
        cfg[k] = bool(cfg[k])
    return cfg


def effective_grad_accum(cfg_train, world_size=1):
    ga = int(cfg_train["grad_accum_steps"])
    if ga <= 0:
        if 8 % world_size:
            raise ValueError("world_size must divide 8 when grad_accum_steps is 0")
        ga = 8 // world_size
    return ga


# ----------------------------------------------------------------------------- schedules

def lr_mul(step, cfg_train):
    """LR multiplier before step `step` (= completed steps), warmdown by iterations
    (the reference's lr_mul with max_wallclock_ms None)."""
    warmdown = int(cfg_train["warmdown_iters"])
    iterations = int(cfg_train["iterations"])
    if warmdown <= 0:
        return 1.0
    warmdown_start = max(iterations - warmdown, 0)
    if warmdown_start <= step < iterations:
        return max((iterations - step) / max(warmdown, 1), 0.0)
    return 1.0


def muon_momentum(step, cfg_train):
    n = int(cfg_train["muon_momentum_warmup_steps"])
    frac = min(step / n, 1.0) if n > 0 else 1.0
    return (1 - frac) * float(cfg_train["muon_momentum_warmup_start"]) + \
        frac * float(cfg_train["muon_momentum"])


# ----------------------------------------------------------------------------- groups

def is_muon_name(name):
    parts = name.split(".")
    return len(parts) >= 4 and parts[0] == "blocks" and ".".join(parts[2:]) in MUON_SUFFIXES


def optimizer_groups(names, cfg_model):
    """name lists for "muon", "embed", "scalar", "head" (SPEC §3)."""
    g = OrderedDict((k, []) for k in ("muon", "embed", "scalar", "head"))
    for n in names:
        if is_muon_name(n):
            g["muon"].append(n)
        elif n in EMBED_NAMES:
            g["embed"].append(n)
        elif n == HEAD_NAME:
            if cfg_model["tie_embeddings"]:
                raise ValueError("lm_head.weight present with tie_embeddings true")
            g["head"].append(n)
        else:
            g["scalar"].append(n)
    return g


# ----------------------------------------------------------------------------- Muon

def zeropower_via_newtonschulz5(G, steps=5, eps=NS_EPS):
    """The reference's Newton-Schulz iteration, in G's dtype (the reference uses bf16)."""
    assert G.ndim == 2
    a, b, c = NS_COEFFS
    X = G.clone()
    X = X / (X.norm() + eps)
    transposed = G.size(0) > G.size(1)
    if transposed:
        X = X.T
    for _ in range(steps):
        A = X @ X.T
        B = b * A + c * A @ A
        X = a * X + B @ X
    return X.T if transposed else X


class Muon:
    """The reference's Muon (nesterov) on a list of 2-D tensors, world_size 1.
    newton_schulz(G, steps) replaces zeropower_via_newtonschulz5 when given (e.g. a
    torch.compile'd bf16 one, as the reference runs it: bench/cuda_step.py)."""

    def __init__(self, params, lr, momentum, weight_decay, backend_steps=5, newton_schulz=None):
        self.params = list(params)
        self.newton_schulz = newton_schulz or zeropower_via_newtonschulz5
        self.lr = lr
        self.base_lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.backend_steps = backend_steps
        self.bufs = [None] * len(self.params)

    @torch.no_grad()
    def step(self):
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad
            if self.bufs[i] is None:
                self.bufs[i] = torch.zeros_like(g)
            buf = self.bufs[i]
            buf.mul_(self.momentum).add_(g)
            g = g.add(buf, alpha=self.momentum)
            u = self.newton_schulz(g, steps=self.backend_steps)
            u = u * max(1, g.size(0) / g.size(1)) ** 0.5
            if self.weight_decay > 0.0:
                p.mul_(1.0 - self.lr * self.weight_decay)
            p.add_(u.to(p.dtype), alpha=-self.lr)


# ----------------------------------------------------------------------------- data

class TokenStream:
    """Sorted shards read one after the other, wrapping to the first at the end."""

    def __init__(self, paths):
        self.paths = sorted(paths)
        if not self.paths:
            raise ValueError("no training shards")
        self.file_idx = 0
        self.tokens = self._load(0)
        self.pos = 0

    def _load(self, i):
        return torch.from_numpy(st_io.read_shard(self.paths[i]).astype(np.int64))

    def _advance_file(self):
        self.file_idx = (self.file_idx + 1) % len(self.paths)
        self.tokens = self._load(self.file_idx)
        self.pos = 0

    def take(self, n):
        chunks = []
        remaining = n
        while remaining > 0:
            avail = self.tokens.numel() - self.pos
            if avail <= 0:
                self._advance_file()
                continue
            k = min(remaining, avail)
            chunks.append(self.tokens[self.pos:self.pos + k])
            self.pos += k
            remaining -= k
        return chunks[0] if len(chunks) == 1 else torch.cat(chunks)


class DistributedTokenLoader:
    """Each call takes world_size spans of (global_tokens / (world_size*accum) + 1)
    contiguous tokens from the one stream; rank r uses the r-th span."""

    def __init__(self, paths, rank=0, world_size=1):
        self.rank = rank
        self.world_size = world_size
        self.stream = TokenStream(paths)

    def next_batch(self, global_tokens, seq_len, grad_accum_steps):
        local_tokens = global_tokens // (self.world_size * grad_accum_steps)
        if local_tokens <= 0 or local_tokens % seq_len:
            raise ValueError(f"train_batch_tokens / (world_size*grad_accum_steps) = "
                             f"{local_tokens} is not a positive multiple of train_seq_len "
                             f"{seq_len}")
        span = local_tokens + 1
        chunk = self.stream.take(span * self.world_size)
        local = chunk[self.rank * span:(self.rank + 1) * span]
        return local[:-1].reshape(-1, seq_len), local[1:].reshape(-1, seq_len)


# ----------------------------------------------------------------------------- training

def build_optimizers(P, cfg_model, cfg_train, adam_fused=False, newton_schulz=None):
    """(AdamW/Adam optimizers, Muon) over the dict P (name -> tensor) by optimizer_groups;
    cfg_model / cfg_train full configs. The Adams run per tensor (foreach=False), or fused
    (adam_fused, CUDA: as the reference on a GPU); newton_schulz as in Muon."""
    groups = optimizer_groups(list(P), cfg_model)
    betas = (float(cfg_train["beta1"]), float(cfg_train["beta2"]))
    eps = float(cfg_train["adam_eps"])
    adam_wd = float(cfg_train["adam_wd"])
    impl = dict(fused=True) if adam_fused else dict(foreach=False)
    embed_lr = float(cfg_train["tied_embed_lr"] if cfg_model["tie_embeddings"]
                     else cfg_train["embed_lr"])
    optimizers = []
    if groups["embed"]:
        optimizers.append(torch.optim.AdamW(
            [{"params": [P[n] for n in groups["embed"]], "lr": embed_lr, "base_lr": embed_lr}],
            betas=betas, eps=eps, weight_decay=adam_wd, **impl))
    muon = Muon([P[n] for n in groups["muon"]], lr=float(cfg_train["matrix_lr"]),
                momentum=float(cfg_train["muon_momentum"]),
                weight_decay=float(cfg_train["muon_wd"]),
                backend_steps=int(cfg_train["muon_backend_steps"]),
                newton_schulz=newton_schulz)
    if groups["scalar"]:
        lr = float(cfg_train["scalar_lr"])
        optimizers.append(torch.optim.AdamW(
            [{"params": [P[n] for n in groups["scalar"]], "lr": lr, "base_lr": lr}],
            betas=betas, eps=eps, weight_decay=adam_wd, **impl))
    if groups["head"]:
        lr = float(cfg_train["head_lr"])
        optimizers.append(torch.optim.Adam(
            [{"params": [P[n] for n in groups["head"]], "lr": lr, "base_lr": lr}],
            betas=betas, eps=eps, weight_decay=0.0, **impl))
    return optimizers, muon


def apply_schedule(step, cfg_train, optimizers, muon):
    """Sets the LR multiplier and Muon momentum before step `step` (= completed steps) on
    every optimizer; returns (lr multiplier, momentum)."""
    mom = muon_momentum(step, cfg_train)
    muon.momentum = mom
    scale = lr_mul(step, cfg_train)
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = group["base_lr"] * scale
    muon.lr = muon.base_lr * scale
    return scale, mom


def _check_supported(cfg_train):
    if float(cfg_train["max_wallclock_seconds"]) > 0:
        raise ValueError("reference trainer: max_wallclock_seconds must be 0 (the wall-clock "
                         "warmdown depends on measured step times and cannot be reproduced)")
    if cfg_train["swa_enabled"]:
        raise ValueError("reference trainer: swa_enabled is not modelled")
    if float(cfg_train["late_qat_threshold"]) > 0:
        raise ValueError("reference trainer: late_qat_threshold > 0 is not modelled")


def train(params_f32, cfg_model, cfg_train, train_shard_paths, steps, dtype=torch.float64,
          stats=None):
    """Runs `steps` training steps from `params_f32` (dict name -> float32 tensor or array).

    cfg_model: a reference_model config (partial or full); cfg_train: training keys
    (partial; see TRAIN_DEFAULTS). Computes in `dtype`. Returns (losses, params): the
    per-step train loss (mean over the step's micro-batches, before its update) and the
    final parameters (dict name -> tensor in `dtype`; the EMA when ema_enabled).
    If `stats` is a list, one dict per step is appended: step, loss, lr_mul, momentum,
    grad_norm (before clipping), clipped, step_ms.
    """
    cfg_model = ref.full_config({k: v for k, v in cfg_model.items() if k in ref.DEFAULTS})
    cfg_train = full_train_config(cfg_train)
    _check_supported(cfg_train)
    want = ref.param_shapes(cfg_model)
    if set(want) != set(params_f32):
        raise ValueError(f"parameters do not match the config: missing "
                         f"{sorted(set(want) - set(params_f32))}, extra "
                         f"{sorted(set(params_f32) - set(want))}")

    P = OrderedDict()
    for n in want:  # SPEC §5 order
        t = torch.as_tensor(np.asarray(params_f32[n])) if not torch.is_tensor(params_f32[n]) \
            else params_f32[n]
        t = t.detach().to(dtype).clone()
        if tuple(t.shape) != tuple(want[n]):
            raise ValueError(f"{n}: shape {list(t.shape)} != {list(want[n])}")
        P[n] = t.requires_grad_(True)

    optimizers, muon = build_optimizers(P, cfg_model, cfg_train)

    ga = effective_grad_accum(cfg_train)
    seq_len = int(cfg_train["train_seq_len"])
    batch_tokens = int(cfg_train["train_batch_tokens"])
    loader = DistributedTokenLoader(train_shard_paths)
    clip = float(cfg_train["grad_clip_norm"])
    all_params = list(P.values())
    ema = None
    if cfg_train["ema_enabled"]:
        ema = OrderedDict((n, t.detach().clone()) for n, t in P.items())
    ema_decay = float(cfg_train["ema_decay"])

    def zero_grad():
        for t in all_params:
            t.grad = None

    losses = []
    zero_grad()
    for step in range(steps):
        t0 = time.perf_counter()
        train_loss = 0.0
        for _ in range(ga):
            x, y = loader.next_batch(batch_tokens, seq_len, ga)
            loss = ref.cross_entropy_mean(ref.forward_logits(P, cfg_model, x), y)
            train_loss += float(loss.detach())
            (loss * (1.0 / ga)).backward()
        train_loss /= ga

        scale, mom = apply_schedule(step, cfg_train, optimizers, muon)

        for t in all_params:  # every tensor takes part in the step (zero when unused)
            if t.grad is None:
                t.grad = torch.zeros_like(t)
        if clip > 0:
            norm = float(torch.nn.utils.clip_grad_norm_(all_params, clip))
        else:
            norm = float(torch.sqrt(sum((t.grad.detach() ** 2).sum() for t in all_params)))
        for opt in optimizers:
            opt.step()
        muon.step()
        zero_grad()
        if ema is not None:
            with torch.no_grad():
                for n, t in P.items():
                    ema[n].mul_(ema_decay).add_(t.detach(), alpha=1.0 - ema_decay)
        losses.append(train_loss)
        if stats is not None:
            stats.append(dict(step=step + 1, loss=train_loss, lr_mul=scale, momentum=mom,
                              grad_norm=norm, clipped=bool(clip > 0 and norm > clip),
                              step_ms=1000.0 * (time.perf_counter() - t0)))
    final = ema if ema is not None else OrderedDict((n, t.detach().clone()) for n, t in P.items())
    return losses, final


# ----------------------------------------------------------------------------- self-checks

def _ns_plain(G, steps):
    """NS5 written with numpy float64 as the polynomial p(X) = aX + b(XXᵀ)X + c(XXᵀ)²X."""
    a, b, c = NS_COEFFS
    X = G.astype(np.float64)
    X = X / (np.sqrt((X * X).sum()) + NS_EPS)
    tr = X.shape[0] > X.shape[1]
    if tr:
        X = X.T.copy()
    for _ in range(steps):
        S = X @ X.T
        X = a * X + b * (S @ X) + c * (S @ (S @ X))
    return X.T if tr else X


def _selfcheck_muon():
    rng = np.random.default_rng(11)
    worst = 0.0
    for shape in ((6, 10), (10, 6), (8, 8)):
        G = rng.standard_normal(shape)
        out = zeropower_via_newtonschulz5(torch.from_numpy(G), 5).numpy()
        err = np.abs(out - _ns_plain(G, 5)).max()
        worst = max(worst, err)
        assert err < 1e-12, (shape, err)
        # NS5 pushes singular values towards ~[0.7, 1.2]
        sv = np.linalg.svd(out, compute_uv=False)
        assert sv.min() > 0.5 and sv.max() < 1.3, sv
    # zero gradient -> zero update
    assert torch.equal(zeropower_via_newtonschulz5(torch.zeros(4, 3, dtype=torch.float64)),
                       torch.zeros(4, 3, dtype=torch.float64))
    # three Muon steps with changing lr/momentum vs a plain loop
    for shape in ((6, 10), (12, 4)):
        p0 = rng.standard_normal(shape)
        gs = [rng.standard_normal(shape) for _ in range(3)]
        lrs, moms, wd = (0.02, 0.03, 0.01), (0.85, 0.9, 0.95), 0.04
        p = torch.from_numpy(p0.copy()).requires_grad_(True)
        m = Muon([p], lr=lrs[0], momentum=moms[0], weight_decay=wd)
        pe, buf = p0.copy(), np.zeros(shape)
        for g, lr, mu in zip(gs, lrs, moms):
            p.grad = torch.from_numpy(g.copy())
            m.lr, m.momentum = lr, mu
            m.step()
            buf = mu * buf + g
            u = _ns_plain(g + mu * buf, 5) * math.sqrt(max(1.0, shape[0] / shape[1]))
            pe = pe * (1 - lr * wd) - lr * u
        err = np.abs(p.detach().numpy() - pe).max()
        worst = max(worst, err)
        assert err < 1e-12, (shape, err)
    return worst


def _selfcheck_adamw():
    """torch.optim.AdamW / Adam as used here vs the textbook update."""
    rng = np.random.default_rng(12)
    p0 = rng.standard_normal((5, 3))
    gs = [rng.standard_normal((5, 3)) for _ in range(4)]
    b1, b2, eps, wd = 0.9, 0.95, 1e-8, 0.04
    lrs = (0.05, 0.04, 0.02, 0.01)
    for decoupled in (True, False):
        p = torch.from_numpy(p0.copy()).requires_grad_(True)
        cls = torch.optim.AdamW if decoupled else torch.optim.Adam
        opt = cls([{"params": [p], "lr": lrs[0]}], betas=(b1, b2), eps=eps,
                  weight_decay=wd if decoupled else 0.0, foreach=False)
        pe, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
        for t, (g, lr) in enumerate(zip(gs, lrs), start=1):
            p.grad = torch.from_numpy(g.copy())
            opt.param_groups[0]["lr"] = lr
            opt.step()
            if decoupled:
                pe = pe * (1 - lr * wd)
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            mh, vh = m / (1 - b1 ** t), v / (1 - b2 ** t)
            pe = pe - lr * mh / (np.sqrt(vh) + eps)
        err = np.abs(p.detach().numpy() - pe).max()
        assert err < 1e-12, (decoupled, err)


def _selfcheck_loader(tmpdir):
    import os
    # shard contents are their global positions, so every slice is checkable by hand
    a = np.arange(0, 50, dtype=np.uint16)
    b = np.arange(50, 57, dtype=np.uint16)
    pa, pb = os.path.join(tmpdir, "x_train_000000.bin"), os.path.join(tmpdir, "x_train_000001.bin")
    st_io.write_shard(pb, b)  # written out of order: the loader sorts by name
    st_io.write_shard(pa, a)
    ld = DistributedTokenLoader([pb, pa])
    stream = list(range(57))
    pos = 0
    for call in range(12):  # 12 * 13 = 156 tokens: wraps the 57-token stream twice
        x, y = ld.next_batch(24, 4, 2)  # 12 tokens + 1 per micro-step
        want = [stream[(pos + i) % 57] for i in range(13)]
        pos += 13
        assert x.shape == (3, 4) and y.shape == (3, 4)
        assert x.reshape(-1).tolist() == want[:-1], (call, x, want)
        assert y.reshape(-1).tolist() == want[1:], (call, y, want)
    # world_size 2: rank r takes the r-th span, the stream moves past both
    l0 = DistributedTokenLoader([pa, pb], rank=0, world_size=2)
    l1 = DistributedTokenLoader([pa, pb], rank=1, world_size=2)
    x0, _ = l0.next_batch(16, 4, 1)
    x1, _ = l1.next_batch(16, 4, 1)
    assert x0.reshape(-1).tolist() == list(range(0, 8))
    assert x1.reshape(-1).tolist() == list(range(9, 17))
    x0, _ = l0.next_batch(16, 4, 1)
    assert x0.reshape(-1).tolist() == list(range(18, 26))


def _selfcheck_schedules():
    c = full_train_config(dict(iterations=10, warmdown_iters=4, muon_momentum_warmup_steps=5,
                               muon_momentum_warmup_start=0.85, muon_momentum=0.95))
    assert [lr_mul(s, c) for s in range(10)] == [1, 1, 1, 1, 1, 1, 1, 0.75, 0.5, 0.25]
    assert lr_mul(10, c) == 1.0  # past the end: outside the warmdown window
    c2 = full_train_config(dict(iterations=10, warmdown_iters=0))
    assert all(lr_mul(s, c2) == 1.0 for s in range(10))
    c3 = full_train_config(dict(iterations=3, warmdown_iters=6))  # warmdown longer than run
    assert [lr_mul(s, c3) for s in range(3)] == [0.5, 2 / 6, 1 / 6]
    want = [0.85, 0.87, 0.89, 0.91, 0.93, 0.95, 0.95]
    assert all(abs(muon_momentum(s, c) - w) < 1e-15 for s, w in enumerate(want))
    c4 = full_train_config(dict(muon_momentum_warmup_steps=0, muon_momentum=0.99))
    assert muon_momentum(0, c4) == 0.99
    names = ["tok_emb.weight", "lm_head.weight", "bigram.embed.weight", "bigram.proj.weight",
             "bigram.scale", "ve_shared.embed.weight", "ve_shared.proj.weight",
             "blocks.0.attn.c_q.weight", "blocks.3.mlp.proj.weight",
             "blocks.0.attn.attn_gate.weight", "blocks.1.attn.q_gain", "skip_weights"]
    g = optimizer_groups(names, dict(tie_embeddings=False))
    assert g["muon"] == ["blocks.0.attn.c_q.weight", "blocks.3.mlp.proj.weight"]
    assert g["embed"] == ["tok_emb.weight", "bigram.embed.weight", "ve_shared.embed.weight"]
    assert g["head"] == ["lm_head.weight"]
    assert g["scalar"] == ["bigram.proj.weight", "bigram.scale", "ve_shared.proj.weight",
                           "blocks.0.attn.attn_gate.weight", "blocks.1.attn.q_gain",
                           "skip_weights"]


def _selfcheck_train(tmpdir):
    """A small end-to-end run: with every lr 0 the losses are the initial weights' losses on
    the loader's batches; the clip fires and leaves a total norm of grad_clip_norm."""
    import os
    cfg = ref.full_config(dict(num_layers=2, model_dim=16, num_heads=2, num_kv_heads=1,
                               vocab_size=13, tie_embeddings=False, mlp_mult=2))
    params = ref.random_params(cfg, 5)
    rng = np.random.default_rng(13)
    p0 = os.path.join(tmpdir, "t_train_000000.bin")
    st_io.write_shard(p0, rng.integers(0, 13, 70))
    ct = dict(iterations=4, warmdown_iters=2, max_wallclock_seconds=0, train_batch_tokens=16,
              train_seq_len=8, grad_accum_steps=2, matrix_lr=0.0, scalar_lr=0.0,
              embed_lr=0.0, head_lr=0.0, grad_clip_norm=0.0)
    losses, final = train(params, cfg, ct, [p0], 4)
    ld = DistributedTokenLoader([p0])
    P64 = {n: torch.as_tensor(t).double() for n, t in params.items()}
    for s in range(4):
        want = 0.0
        for _ in range(2):
            x, y = ld.next_batch(16, 8, 2)
            want += float(ref.cross_entropy_mean(ref.forward_logits(P64, cfg, x), y)) / 2
        assert abs(losses[s] - want) < 1e-12, (s, losses[s], want)
    for n in params:
        assert torch.equal(final[n], P64[n]), n
    ct.update(matrix_lr=0.02, scalar_lr=0.02, embed_lr=0.05, head_lr=0.01, grad_clip_norm=0.05,
              muon_wd=0.04, adam_wd=0.04, ema_enabled=True)
    st = []
    losses, final = train(params, cfg, ct, [p0], 4, stats=st)
    assert all(s["clipped"] for s in st), st
    assert all(math.isfinite(v) for v in losses)
    assert not torch.equal(final["tok_emb.weight"], P64["tok_emb.weight"])


def selfcheck(verbose=True):
    import tempfile
    e = _selfcheck_muon()
    _selfcheck_adamw()
    _selfcheck_schedules()
    with tempfile.TemporaryDirectory() as d:
        _selfcheck_loader(d)
        _selfcheck_train(d)
    if verbose:
        print(f"reference_train self-check ok: Newton-Schulz and Muon steps vs a plain numpy "
              f"loop (worst {e:.1e}), AdamW/Adam vs the textbook update, LR/momentum "
              f"schedules, optimizer groups, loader slices (wrap, ranks), lr-0 losses, clip")


if __name__ == "__main__":
    selfcheck()
