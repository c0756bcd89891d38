"""An independent, deliberately plain PyTorch (float64) implementation of SPEC §2.

Used by test_parity.py as the reference for `pgolf grad`. Nothing here calls fused or
high-level ops (no F.rms_norm, no scaled_dot_product_attention, no F.cross_entropy):
every formula of SPEC §2 is written out so that it can be read against the spec line by
line. Parameters are a dict name -> float64 tensor (requires_grad), named and shaped as in
the SPEC §5 table.

Depth recurrence (docs/recurrence.md) is written from that page: scalar sharing, untied
repeat matrices, XSA placement, #784's loop_embed / residual value embeddings /
cross-repeat skip, and running a subset of the virtual layers (`active_repeats`).

Run directly (`/usr/bin/python3 reference_model.py`) for the self-checks.
"""
import json
import math
from collections import OrderedDict

import torch

# float32 machine epsilon (F.rms_norm(eps=None) on float32); 1.1920929e-07 rounded to f32.
RMS_EPS = 1.1920928955078125e-07
NORMALIZE_EPS = 1e-12  # F.normalize's default eps (XSA)

DEFAULTS = OrderedDict([
    ("vocab_size", 1024),
    ("num_layers", 9),
    ("model_dim", 512),
    ("num_heads", 8),
    ("num_kv_heads", 4),
    ("mlp_mult", 2),
    ("tie_embeddings", True),
    ("rope_base", 10000.0),
    ("rope_dims", 0),
    ("logit_softcap", 30.0),
    ("qk_gain_init", 1.5),
    ("bigram_vocab_size", 0),
    ("bigram_dim", 128),
    ("xsa_last_n", 0),
    ("ln_scale", False),
    ("ve_enabled", False),
    ("ve_dim", 128),
    ("ve_layers", []),
    ("gated_attention", False),
    ("value_residual", False),
    ("negative_slope", 0.5),
    ("tied_embed_init_std", 0.005),
    ("rope_train_seq_len", 1024),
    ("unet_skips", True),
    ("layer_schedule", []),
    ("smear_gate", True),
    ("recur_layers", []),
    # docs/recurrence.md
    ("scalar_sharing", "layer"),
    ("repeat_untie_mlp", "none"),
    ("repeat_untie_attn", False),
    ("xsa_placement", "virtual"),
    ("loop_embed", False),
    ("residual_ve_tables", 0),
    ("cross_repeat", False),
    ("init_scheme", "orthogonal"),   # init only: no effect on shapes or the forward
    ("scale_proj_init", False),      # init only
])

CHOICES = {
    "scalar_sharing": ("layer", "block"),
    "repeat_untie_mlp": ("none", "down", "full"),
    "xsa_placement": ("virtual", "block"),
    "init_scheme": ("orthogonal", "kaiming_uniform"),
}

# Per-layer scalars (owned by the virtual layer, or by the physical block with
# scalar_sharing="block"), and the block matrices.
SCALAR_SUFFIXES = ("attn_scale", "mlp_scale", "resid_mix", "attn.q_gain",
                   "attn.attn_gate.weight", "attn.attn_gate.bias", "attn.vr_lambda")
ATTN_MATRICES = ("attn.c_q.weight", "attn.c_k.weight", "attn.c_v.weight", "attn.proj.weight")
MLP_MATRICES = ("mlp.fc.weight", "mlp.proj.weight")


def _int_list(v, key):
    if isinstance(v, str):
        v = [s for s in v.replace(" ", "").split(",") if s != ""]
    if not isinstance(v, (list, tuple)):
        raise ValueError(f"config key {key} must be a list of integers, got {v!r}")
    return [int(e) for e in v]


def full_config(partial):
    """Fills every key of DEFAULTS; `partial` must hold only known keys."""
    unknown = sorted(set(partial) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"reference model does not know config key(s) {unknown}")
    cfg = OrderedDict((k, partial.get(k, v)) for k, v in DEFAULTS.items())
    cfg["ve_layers"] = _int_list(cfg["ve_layers"], "ve_layers")
    cfg["layer_schedule"] = _int_list(cfg["layer_schedule"], "layer_schedule")
    cfg["recur_layers"] = _int_list(cfg["recur_layers"], "recur_layers")
    for k in ("tie_embeddings", "ln_scale", "ve_enabled", "gated_attention",
              "value_residual", "unet_skips", "smear_gate", "repeat_untie_attn",
              "loop_embed", "cross_repeat", "scale_proj_init"):
        cfg[k] = bool(cfg[k])
    for k, ok in CHOICES.items():
        if cfg[k] not in ok:
            raise ValueError(f"config key {k} must be one of {list(ok)}, got {cfg[k]!r}")
    cfg["residual_ve_tables"] = int(cfg["residual_ve_tables"])
    if cfg["residual_ve_tables"] < 0:
        raise ValueError("residual_ve_tables must be >= 0")
    return cfg


class Dims:
    """Derived sizes of a full config (SPEC §2 notation)."""

    def __init__(self, cfg):
        self.V = int(cfg["vocab_size"])
        self.d = int(cfg["model_dim"])
        self.H = int(cfg["num_heads"])
        self.Hkv = int(cfg["num_kv_heads"])
        if self.d % self.H:
            raise ValueError("model_dim must be a multiple of num_heads")
        if self.H % self.Hkv:
            raise ValueError("num_heads must be a multiple of num_kv_heads")
        self.hd = self.d // self.H
        self.kv = self.Hkv * self.hd
        self.m = int(cfg["mlp_mult"] * self.d)
        self.P = int(cfg["num_layers"])
        sched, recur = list(cfg["layer_schedule"]), list(cfg["recur_layers"])
        if sched and recur:
            raise ValueError("layer_schedule and recur_layers together")
        if recur:  # PR #686: list(range(m)) + recur_layers + list(range(m, n)), m = max + 1
            m = max(recur) + 1
            sched = list(range(m)) + recur + list(range(m, self.P))
        self.sched = sched if sched else list(range(self.P))
        if any(p < 0 or p >= self.P for p in self.sched):
            raise ValueError(f"layer_schedule {sched} uses blocks outside 0..{self.P - 1}")
        self.L = len(self.sched)
        self.enc = self.L // 2
        self.dec = self.L - self.enc
        self.S = min(self.enc, self.dec) if cfg["unet_skips"] else 0
        self.Bv = int(cfg["bigram_vocab_size"])
        self.bd = int(cfg["bigram_dim"])
        self.ve = int(cfg["ve_dim"])
        self.ve_layers = list(cfg["ve_layers"]) if cfg["ve_enabled"] else []
        if any(v < 0 or v >= self.L for v in self.ve_layers):
            raise ValueError(f"ve_layers {self.ve_layers} outside virtual layers 0..{self.L - 1}")
        rd = int(cfg["rope_dims"])
        self.rd = rd if rd > 0 else self.hd
        if self.rd > self.hd or self.rd % 2:
            raise ValueError("rope_dims must be even and at most head_dim")

        # docs/recurrence.md "Words": rep(v), prev(v), first(p), K.
        self.rep, self.prev, self.first = [], [], {}
        last = {}
        for v, p in enumerate(self.sched):
            self.rep.append(sum(1 for u in range(v) if self.sched[u] == p))
            self.prev.append(last.get(p))  # None for a first use
            self.first.setdefault(p, v)
            last[p] = v
        self.K = 1 + max(self.rep)
        # Who owns virtual layer v's per-layer scalars (the `blocks.{i}.*` index).
        self.block_scalars = cfg["scalar_sharing"] == "block"
        self.owner = list(self.sched) if self.block_scalars else list(range(self.L))
        self.n_owners = self.P if self.block_scalars else self.L
        # ln scale index: v, or the first use of v's block.
        self.ln_index = [self.first[p] for p in self.sched] if self.block_scalars \
            else list(range(self.L))
        # XSA flags: the last n virtual layers, or every use of a block with a use among them.
        n = int(cfg["xsa_last_n"])
        last_n = [n > 0 and v >= self.L - n for v in range(self.L)]
        if cfg["xsa_placement"] == "block":
            xb = {self.sched[v] for v in range(self.L) if last_n[v]}
            self.xsa = [p in xb for p in self.sched]
        else:
            self.xsa = last_n
        # Untied matrices of the repeats (rep >= 1): repeats.{v}.<suffix>.
        untied = []
        if cfg["repeat_untie_attn"]:
            untied += list(ATTN_MATRICES)
        if cfg["repeat_untie_mlp"] == "full":
            untied += list(MLP_MATRICES)
        elif cfg["repeat_untie_mlp"] == "down":
            untied += ["mlp.proj.weight"]
        self.untied = tuple(untied)
        self.J = int(cfg["residual_ve_tables"])
        if cfg["cross_repeat"] and self.K < 2:
            raise ValueError("cross_repeat needs a schedule with repeats (K >= 2)")

    def matrix_name(self, v, suffix):
        """The parameter name of the block matrix `suffix` that virtual layer v runs."""
        if self.rep[v] >= 1 and suffix in self.untied:
            return f"repeats.{v}.{suffix}"
        return f"blocks.{self.sched[v]}.{suffix}"

    def active(self, active_repeats=None):
        """The virtual layers that run with k active repeats (rep(v) < k), in order."""
        if active_repeats is None:
            return list(range(self.L))
        k = int(active_repeats)
        if k < 1:
            raise ValueError("active_repeats must be >= 1")
        return [v for v in range(self.L) if self.rep[v] < k]


def param_shapes(cfg):
    """OrderedDict name -> shape, exactly the SPEC §5 table plus docs/recurrence.md's
    tensors (per-layer scalars indexed by physical block with scalar_sharing="block";
    repeats.{v}.* untied matrices; loop_embed, value_embeds.{j}, value_scales,
    cross_repeat_scales)."""
    D = Dims(cfg)
    s = OrderedDict()
    s["tok_emb.weight"] = (D.V, D.d)
    if not cfg["tie_embeddings"]:
        s["lm_head.weight"] = (D.V, D.d)
    if D.Bv > 0:
        s["bigram.embed.weight"] = (D.Bv, D.bd)
        if D.bd != D.d:
            s["bigram.proj.weight"] = (D.d, D.bd)
        s["bigram.scale"] = ()
    if cfg["smear_gate"]:
        s["smear.gate"] = (D.d,)
    if cfg["unet_skips"] and D.S > 0:
        s["skip_weights"] = (D.S, D.d)
    if cfg["ve_enabled"]:
        s["ve_shared.embed.weight"] = (D.V, D.ve)
        if D.ve != D.kv:
            s["ve_shared.proj.weight"] = (D.kv, D.ve)
        s["ve_shared.scale"] = ()
        for k in range(len(cfg["ve_layers"])):
            s[f"ve_layer_scales.{k}"] = (1,)
    mat_shapes = OrderedDict([
        ("attn.c_q.weight", (D.d, D.d)), ("attn.c_k.weight", (D.kv, D.d)),
        ("attn.c_v.weight", (D.kv, D.d)), ("attn.proj.weight", (D.d, D.d)),
        ("mlp.fc.weight", (D.m, D.d)), ("mlp.proj.weight", (D.d, D.m))])
    for p in range(D.P):
        for suffix, shape in mat_shapes.items():
            s[f"blocks.{p}.{suffix}"] = shape
    for i in range(D.n_owners):  # virtual layers, or physical blocks with "block" sharing
        s[f"blocks.{i}.attn_scale"] = (D.d,)
        s[f"blocks.{i}.mlp_scale"] = (D.d,)
        s[f"blocks.{i}.resid_mix"] = (2, D.d)
        s[f"blocks.{i}.attn.q_gain"] = (D.H,)
        if cfg["gated_attention"]:
            s[f"blocks.{i}.attn.attn_gate.weight"] = (D.H, D.d)
            s[f"blocks.{i}.attn.attn_gate.bias"] = (D.H,)
        if cfg["value_residual"]:
            s[f"blocks.{i}.attn.vr_lambda"] = (2,)
    for v in range(D.L):
        if D.rep[v] >= 1:
            for suffix in D.untied:
                s[f"repeats.{v}.{suffix}"] = mat_shapes[suffix]
    if cfg["loop_embed"]:
        s["loop_embed"] = (D.L, D.d)
    if D.J > 0:
        for j in range(D.J):
            s[f"value_embeds.{j}.weight"] = (D.V, D.d)
        s["value_scales"] = (D.L, D.J, D.d)
    if cfg["cross_repeat"]:
        s["cross_repeat_scales"] = (D.P, D.K - 1, D.d)
    return s


# ----------------------------------------------------------------------------- pieces

def rms(z):
    """z / sqrt(mean(z^2) + eps) over the last dim, no weight."""
    return z / torch.sqrt((z * z).mean(dim=-1, keepdim=True) + RMS_EPS)


def wrap_int32(t):
    """Two's-complement wrap of an int64 tensor to the int32 range (kept as int64)."""
    return torch.remainder(t + 2 ** 31, 2 ** 32) - 2 ** 31


def bigram_hash(x, Bv):
    """idx_0 = Bv-1; idx_t = ((36313*x_t) XOR (27191*x_{t-1})) floor-mod (Bv-1), int32."""
    x = x.to(torch.int64)
    a = wrap_int32(36313 * x[:, 1:])
    b = wrap_int32(27191 * x[:, :-1])
    h = torch.bitwise_xor(a, b)  # XOR of two int32 values stays in int32 range
    mod = Bv - 1
    idx = torch.empty_like(x)
    idx[:, 0] = mod
    idx[:, 1:] = torch.remainder(h, mod)  # floor mod: result in [0, mod)
    return idx


def rope_tables(T, rd, base, train_seq_len, device=None):
    """cos, sin [T, rd/2] float64 (on `device`; default CPU); base rescaled when
    T > train_seq_len."""
    if T > train_seq_len:
        if rd <= 2:
            raise ValueError("the RoPE base rescale needs rope_dims > 2")
        base = base * (T / train_seq_len) ** (rd / (rd - 2))
    j = torch.arange(rd // 2, dtype=torch.float64, device=device)
    inv_freq = 1.0 / (base ** (2.0 * j / rd))
    t = torch.arange(T, dtype=torch.float64, device=device)
    ang = t[:, None] * inv_freq[None, :]
    return torch.cos(ang), torch.sin(ang)


def apply_rope(z, cos, sin, rd):
    """z [B,T,nh,hd]: rotate the first rd dims of each head, pass the rest through."""
    half = rd // 2
    x1 = z[..., :half]
    x2 = z[..., half:rd]
    c = cos[None, :, None, :]
    s = sin[None, :, None, :]
    out1 = x1 * c + x2 * s
    out2 = -x1 * s + x2 * c
    return torch.cat([out1, out2, z[..., rd:]], dim=-1)


def causal_gqa_attention(q, k, u):
    """q [B,T,H,hd], k/u [B,T,Hkv,hd] -> y [B,T,H,hd]. Head h reads kv head h // (H/Hkv)."""
    B, T, H, hd = q.shape
    Hkv = k.shape[2]
    group = H // Hkv
    kv_of_head = torch.arange(H, device=q.device) // group
    kh = k[:, :, kv_of_head, :]  # [B,T,H,hd]
    uh = u[:, :, kv_of_head, :]
    scores = torch.einsum("bthd,bshd->bhts", q, kh) / math.sqrt(hd)
    allowed = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()  # s <= t
    scores = scores.masked_fill(~allowed, float("-inf"))
    smax = scores.max(dim=-1, keepdim=True).values
    e = torch.exp(scores - smax)  # exp(-inf) = 0 on masked entries
    p = e / e.sum(dim=-1, keepdim=True)
    return torch.einsum("bhts,bshd->bthd", p, uh)


def sdpa_gqa_attention(q, k, u, dtype):
    """causal_gqa_attention by torch's fused F.scaled_dot_product_attention (torch >= 2.5:
    enable_gqa), on q, k, u cast to `dtype`; the result is in `dtype`. Not used by the parity
    tests (torch 1.13 has no such call): bench/cuda_step.py runs it on a GPU, where it selects
    the flash-attention backend."""
    y = torch.nn.functional.scaled_dot_product_attention(
        q.to(dtype).transpose(1, 2), k.to(dtype).transpose(1, 2), u.to(dtype).transpose(1, 2),
        is_causal=True, enable_gqa=q.shape[2] != k.shape[2])
    return y.transpose(1, 2)


def leaky_relu(z, slope):
    return torch.where(z >= 0, z, slope * z)


# ----------------------------------------------------------------------------- model

def forward_logits(P, cfg, x, on_linear_input=None, active_repeats=None, sdpa_dtype=None):
    """P: dict name -> float64 tensor; x: int64 [B,T]. Returns logits [B,T,V] (softcapped).
    on_linear_input, if given, is called as on_linear_input(name, inp) with the input
    [B,T,in] of every block matrix (the parameter name it runs: blocks.{p}.* or an untied
    repeats.{v}.*), for GPTQ calibration. active_repeats=k runs only the virtual layers with
    rep(v) < k (docs/recurrence.md, "Switching depth"); None runs them all.
    sdpa_dtype (e.g. torch.bfloat16) computes attention with sdpa_gqa_attention in that dtype
    instead of the written-out causal_gqa_attention (bench/cuda_step.py, on a GPU); every
    tensor made here is made on x's device."""
    D = Dims(cfg)
    B, T = x.shape
    d, H, Hkv, hd = D.d, D.H, D.Hkv, D.hd

    # Embedding
    h = P["tok_emb.weight"][x]
    if D.Bv > 0:
        e = P["bigram.embed.weight"][bigram_hash(x, D.Bv)]
        if D.bd != d:
            e = e @ P["bigram.proj.weight"].t()
        h = h + P["bigram.scale"] * e
    h = rms(h)
    if cfg["smear_gate"]:
        g = torch.sigmoid(P["smear.gate"])
        h_prev = torch.cat([torch.zeros_like(h[:, :1]), h[:, :-1]], dim=1)
        h = (1 - g) * h + g * h_prev
    x0 = h
    xs = h

    ve_base = None
    if cfg["ve_enabled"] and D.ve_layers:
        ve_base = P["ve_shared.embed.weight"][x]
        if D.ve != D.kv:
            ve_base = ve_base @ P["ve_shared.proj.weight"].t()
        ve_base = P["ve_shared.scale"] * ve_base  # [B,T,kv]
    # #784's residual value embeddings: raw table rows, added to the stream
    res_ve = [P[f"value_embeds.{j}.weight"][x] for j in range(D.J)]  # each [B,T,d]

    cos, sin = rope_tables(T, D.rd, float(cfg["rope_base"]), int(cfg["rope_train_seq_len"]),
                           device=h.device)
    cos, sin = cos.to(h.dtype), sin.to(h.dtype)  # float64 tables, in the model dtype
    slope = float(cfg["negative_slope"])

    active = D.active(active_repeats)
    enc = len(active) // 2  # the U-Net over the layers that run
    stack = []
    out = {}  # out(u): the stream leaving virtual layer u (cross-repeat input)
    u0 = None
    for idx, v in enumerate(active):
        # the four pre-block additions, in docs/recurrence.md's order
        if cfg["unet_skips"] and idx >= enc:
            i = idx - enc
            if stack:
                xs = xs + P["skip_weights"][i] * stack.pop()
        if cfg["loop_embed"]:
            xs = xs + P["loop_embed"][v]
        for j in range(D.J):
            xs = xs + P["value_scales"][v, j] * res_ve[j]
        if cfg["cross_repeat"] and D.rep[v] >= 1:
            xs = xs + P["cross_repeat_scales"][D.sched[v], D.rep[v] - 1] * out[D.prev[v]]

        def W(n, inp, v=v):  # the matrix virtual layer v runs, applied to inp
            name = D.matrix_name(v, n)
            if on_linear_input is not None:
                on_linear_input(name, inp)
            return inp @ P[name].t()

        o_ = D.owner[v]
        S = lambda n: P[f"blocks.{o_}.{n}"]  # noqa: E731  (the layer's scalars)

        rm = S("resid_mix")
        x_in = rm[0] * xs + rm[1] * x0
        s = 1.0 / math.sqrt(D.ln_index[v] + 1) if cfg["ln_scale"] else 1.0
        a = rms(x_in) * s

        q = W("attn.c_q.weight", a).reshape(B, T, H, hd)
        k = W("attn.c_k.weight", a).reshape(B, T, Hkv, hd)
        u = W("attn.c_v.weight", a)  # [B,T,kv]
        if v in D.ve_layers:
            kpos = D.ve_layers.index(v)
            u = u + P[f"ve_layer_scales.{kpos}"] * ve_base
        u = u.reshape(B, T, Hkv, hd)
        raw_u = u
        if cfg["value_residual"] and v > 0:
            lam = S("attn.vr_lambda")
            u = lam[0] * u0 + lam[1] * u
        if v == 0:
            u0 = raw_u

        q = rms(q)
        k = rms(k)
        q = apply_rope(q, cos, sin, D.rd)
        k = apply_rope(k, cos, sin, D.rd)
        q = q * S("attn.q_gain")[None, None, :, None]

        if sdpa_dtype is None:
            y = causal_gqa_attention(q, k, u)  # [B,T,H,hd]
        else:
            y = sdpa_gqa_attention(q, k, u, sdpa_dtype)

        if D.xsa[v]:
            norm = torch.sqrt((u * u).sum(dim=-1, keepdim=True))
            n = u / torch.clamp(norm, min=NORMALIZE_EPS)
            n_h = n[:, :, torch.arange(H, device=n.device) // (H // Hkv), :]
            y = y - (y * n_h).sum(dim=-1, keepdim=True) * n_h

        if cfg["gated_attention"]:
            gate = torch.sigmoid(a @ S("attn.attn_gate.weight").t() + S("attn.attn_gate.bias"))
            y = y * gate[..., None]

        o = W("attn.proj.weight", y.reshape(B, T, d))
        xs = x_in + S("attn_scale") * o

        mm = rms(xs) * s
        hid = leaky_relu(W("mlp.fc.weight", mm), slope)
        xs = xs + S("mlp_scale") * W("mlp.proj.weight", hid * hid)

        out[v] = xs
        if cfg["unet_skips"] and idx < enc:
            stack.append(xs)

    z = rms(xs)
    head = P["tok_emb.weight"] if cfg["tie_embeddings"] else P["lm_head.weight"]
    logits = z @ head.t()
    c = float(cfg["logit_softcap"])
    if c > 0:
        logits = c * torch.tanh(logits / c)
    return logits


def cross_entropy_mean(logits, y):
    """mean over all positions of logsumexp(logits) - logits[y], written out."""
    mx = logits.max(dim=-1, keepdim=True).values.detach()
    lse = torch.log(torch.exp(logits - mx).sum(dim=-1)) + mx.squeeze(-1)
    picked = logits.gather(-1, y.unsqueeze(-1)).squeeze(-1)
    return (lse - picked).mean()


def loss_and_grads(params_f32, cfg, x, y, active_repeats=None):
    """params_f32: dict name -> tensor (float32 values). Computes in float64.
    Returns (loss float, OrderedDict name -> float64 grad tensor)."""
    P = OrderedDict((n, t.detach().to(torch.float64).clone().requires_grad_(True))
                    for n, t in params_f32.items())
    loss = cross_entropy_mean(forward_logits(P, cfg, x, active_repeats=active_repeats), y)
    names = list(P)
    grads = torch.autograd.grad(loss, [P[n] for n in names], allow_unused=True)
    out = OrderedDict()
    for n, g in zip(names, grads):
        out[n] = torch.zeros_like(P[n]) if g is None else g
    return float(loss), out


def expected_zero_grads(cfg, active_repeats=None):
    """The tensors whose gradient is zero by construction: value residual's lambda when
    only virtual layer 0 reads it, and, with a subset of the layers active, what only
    inactive layers read (their own scalars and untied matrices, VE scales of inactive VE
    layers, cross_repeat_scales and skip_weights when nothing active uses them)."""
    D = Dims(cfg)
    shapes = param_shapes(cfg)
    act = D.active(active_repeats)
    enc = len(act) // 2
    used = set()
    for name in shapes:
        if not (name.startswith("blocks.") or name.startswith("repeats.")
                or name.startswith("ve_") or name in ("skip_weights", "cross_repeat_scales")):
            used.add(name)
    for v in act:
        for suffix in ATTN_MATRICES + MLP_MATRICES:
            used.add(D.matrix_name(v, suffix))
        for suffix in SCALAR_SUFFIXES:
            if suffix == "attn.vr_lambda" and v == 0:
                continue
            used.add(f"blocks.{D.owner[v]}.{suffix}")
        if v in D.ve_layers:
            used.update({f"ve_layer_scales.{D.ve_layers.index(v)}", "ve_shared.embed.weight",
                         "ve_shared.proj.weight", "ve_shared.scale"})
        if D.rep[v] >= 1:
            used.add("cross_repeat_scales")
    if cfg["unet_skips"] and min(enc, len(act) - enc) > 0:
        used.add("skip_weights")
    return {n for n in shapes if n not in used}


# ----------------------------------------------------------------------------- init

def random_params(cfg, seed):
    """Every tensor of the SPEC §5 table, perturbed so every path carries an O(1) signal.
    Returns OrderedDict name -> float32 tensor."""
    D = Dims(cfg)
    g = torch.Generator().manual_seed(seed)
    shapes = param_shapes(cfg)

    def normal(shape, mean, std):
        return (torch.randn(shape, generator=g, dtype=torch.float32) * std + mean).float()

    def std_for(name, shape):
        # (mean, std)
        if name in ("tok_emb.weight", "lm_head.weight"):
            return 0.0, 2.0 / math.sqrt(D.d)  # tied/untied head logits ~ N(0, 2)
        if name == "bigram.embed.weight" or name == "ve_shared.embed.weight":
            return 0.0, 0.5
        if name in ("bigram.scale", "ve_shared.scale") or name.startswith("ve_layer_scales."):
            return 0.5, 0.1
        if name == "smear.gate":
            return 0.0, 1.0
        if name == "skip_weights":
            return 0.5, 0.1
        if name == "loop_embed":
            return 0.0, 0.5
        if name.startswith("value_embeds."):
            return 0.0, 1.0  # the N(0, 1) of the init
        if name == "value_scales":
            return 0.0, 0.3
        if name == "cross_repeat_scales":
            return 0.25, 0.1
        if name.endswith(".resid_mix"):
            return None  # special
        if name.endswith(".attn.q_gain"):
            return 1.5, 0.1
        if name.endswith(".attn.vr_lambda"):
            return 0.5, 0.1
        if name.endswith(".attn.attn_gate.bias"):
            return 0.0, 1.0
        if name.endswith("attn_scale") or name.endswith("mlp_scale"):
            return 1.0, 0.1
        if len(shape) == 2:  # every other matrix, incl. Wo / Wdown / gate weight / projs,
            #                  and untied repeats.{v}.* (independent of the shared ones)
            return 0.0, 1.0 / math.sqrt(shape[1])
        raise KeyError(name)

    out = OrderedDict()
    for name, shape in shapes.items():
        ms = std_for(name, shape)
        if ms is None:
            t = normal(shape, 0.0, 0.1)
            t[0] += 1.0
            out[name] = t
        else:
            out[name] = normal(shape, ms[0], ms[1])
    return out


# ----------------------------------------------------------------------------- self-checks

def _selfcheck_attention():
    g = torch.Generator().manual_seed(1)
    B, T, H, Hkv, hd = 2, 5, 4, 2, 3
    q = torch.randn(B, T, H, hd, generator=g, dtype=torch.float64)
    k = torch.randn(B, T, Hkv, hd, generator=g, dtype=torch.float64)
    u = torch.randn(B, T, Hkv, hd, generator=g, dtype=torch.float64)
    y = causal_gqa_attention(q, k, u)
    ref = torch.zeros_like(y)
    for b in range(B):
        for h in range(H):
            kvh = h // (H // Hkv)
            for t in range(T):
                sc = [float(sum(q[b, t, h, i] * k[b, s, kvh, i] for i in range(hd))) / math.sqrt(hd)
                      for s in range(t + 1)]
                mx = max(sc)
                w = [math.exp(c - mx) for c in sc]
                tot = sum(w)
                for i in range(hd):
                    ref[b, t, h, i] = sum(w[s] / tot * float(u[b, s, kvh, i]) for s in range(t + 1))
    err = (y - ref).abs().max().item()
    assert err < 1e-12, f"attention vs explicit loop: {err}"
    return err


def _selfcheck_rope():
    g = torch.Generator().manual_seed(2)
    B, T, nh, hd = 1, 7, 2, 10
    for rd, base, tsl in ((6, 10000.0, 1024), (10, 500.0, 4), (4, 10000.0, 3)):
        z = torch.randn(B, T, nh, hd, generator=g, dtype=torch.float64)
        cos, sin = rope_tables(T, rd, base, tsl)
        out = apply_rope(z, cos, sin, rd)
        eff = base * (T / tsl) ** (rd / (rd - 2)) if T > tsl else base
        ref = z.clone()
        half = rd // 2
        for t in range(T):
            for j in range(half):
                theta = t / eff ** (2 * j / rd)
                # (x1 + i x2) * exp(-i theta) = [x1 cos + x2 sin] + i[-x1 sin + x2 cos]
                c = complex(float(z[0, t, 0, j]), float(z[0, t, 0, j + half])) * complex(
                    math.cos(theta), -math.sin(theta))
                ref[0, t, 0, j] = c.real
                ref[0, t, 0, j + half] = c.imag
                c = complex(float(z[0, t, 1, j]), float(z[0, t, 1, j + half])) * complex(
                    math.cos(theta), -math.sin(theta))
                ref[0, t, 1, j] = c.real
                ref[0, t, 1, j + half] = c.imag
        err = (out - ref).abs().max().item()
        assert err < 1e-12, f"rope rd={rd}: {err}"
        # rotation preserves the norm of the rotated part and leaves the rest unchanged
        assert torch.equal(out[..., rd:], z[..., rd:])
    return err


def _selfcheck_bigram():
    def py_hash(cur, prev, Bv):
        def i32(v):
            v &= 0xFFFFFFFF
            return v - (1 << 32) if v >= (1 << 31) else v
        hv = i32(i32(36313 * cur) ^ i32(27191 * prev))
        return hv % (Bv - 1)  # python % is floor mod

    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 65536, (3, 50), generator=g)
    x[0, :4] = torch.tensor([65535, 65535, 0, 59139])  # force wraps / negative hashes
    for Bv in (37, 2048, 4096):
        idx = bigram_hash(x, Bv)
        for b in range(x.shape[0]):
            assert idx[b, 0].item() == Bv - 1
            for t in range(1, x.shape[1]):
                want = py_hash(int(x[b, t]), int(x[b, t - 1]), Bv)
                assert idx[b, t].item() == want, (Bv, b, t, idx[b, t].item(), want)
    # torch's own int32 arithmetic agrees (wrapping multiply, floor remainder)
    t32 = x.to(torch.int32)
    h32 = torch.bitwise_xor(36313 * t32[:, 1:], 27191 * t32[:, :-1]) % 36
    assert torch.equal(h32.long(), bigram_hash(x, 37)[:, 1:])


def _selfcheck_rms():
    g = torch.Generator().manual_seed(4)
    z = torch.randn(3, 4, 8, generator=g, dtype=torch.float64)
    ref = torch.empty_like(z)
    for i in range(3):
        for j in range(4):
            ms = sum(float(e) ** 2 for e in z[i, j]) / 8
            ref[i, j] = z[i, j] / math.sqrt(ms + 1.1920929e-07)
    assert (rms(z) - ref).abs().max().item() < 1e-12


def _fd_check(P64, grads, loss_at, seed, per_tensor=2):
    """Central finite differences on `per_tensor` random entries of every tensor against
    the autograd gradients; returns the worst relative error."""
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for name, t in P64.items():
        for _ in range(per_tensor):
            i = int(torch.randint(0, max(t.numel(), 1), (1,), generator=gen))
            h = 1e-6
            Pp = dict(P64)
            Pm = dict(P64)
            tp = t.clone().reshape(-1)
            tm = t.clone().reshape(-1)
            tp[i] += h
            tm[i] -= h
            Pp[name] = tp.reshape(t.shape)
            Pm[name] = tm.reshape(t.shape)
            fd = (loss_at(Pp) - loss_at(Pm)) / (2 * h)
            an = grads[name].reshape(-1)[i].item()
            err = abs(fd - an) / max(1e-6, abs(an))
            worst = max(worst, err)
            assert abs(fd - an) < 1e-7 + 1e-5 * abs(an), (name, i, fd, an)
    return worst


def _selfcheck_model():
    """Whole-model checks on a small `everything`-style config."""
    cfg = full_config(dict(num_layers=2, layer_schedule=[0, 1, 0], model_dim=32, num_heads=4,
                           num_kv_heads=2, vocab_size=11, tie_embeddings=False,
                           bigram_vocab_size=7, bigram_dim=6, xsa_last_n=2, ln_scale=True,
                           ve_enabled=True, ve_dim=5, ve_layers=[0, 2], gated_attention=True,
                           value_residual=True, rope_dims=4, rope_train_seq_len=4))
    params = random_params(cfg, 7)
    g = torch.Generator().manual_seed(8)
    tok = torch.randint(0, cfg["vocab_size"], (2 * 6 + 1,), generator=g)
    x = torch.stack([tok[0:6], tok[6:12]])
    y = torch.stack([tok[1:7], tok[7:13]])
    loss, grads = loss_and_grads(params, cfg, x, y)
    assert math.isfinite(loss)

    # 1) cross-entropy written out vs torch's
    P64 = {n: t.double() for n, t in params.items()}
    logits = forward_logits(P64, cfg, x)
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    assert abs(ce.item() - loss) < 1e-12

    # 2) central finite differences on a few entries of every tensor
    def loss_at(P):
        return cross_entropy_mean(forward_logits(P, cfg, x), y).item()

    worst = _fd_check(P64, grads, loss_at, 9)

    # 3) causality: changing the last input token changes no earlier logits
    x2 = x.clone()
    x2[:, -1] = (x2[:, -1] + 1) % cfg["vocab_size"]
    l2 = forward_logits(P64, cfg, x2)
    assert torch.equal(l2[:, :-1], logits[:, :-1]) or (l2[:, :-1] - logits[:, :-1]).abs().max() < 1e-14
    assert (l2[:, -1] - logits[:, -1]).abs().max() > 1e-6

    # 4) only blocks.0.attn.vr_lambda has an all-zero gradient
    zero = [n for n, gr in grads.items() if not gr.abs().max() > 0]
    assert zero == ["blocks.0.attn.vr_lambda"], zero
    assert set(zero) == expected_zero_grads(cfg)

    # 5) a shared block's gradient is the sum over its virtual uses: untie the schedule
    #    into 3 physical blocks holding copies and compare.
    cfg_u = dict(cfg)
    cfg_u["num_layers"] = 3
    cfg_u["layer_schedule"] = [0, 1, 2]
    pu = OrderedDict()
    for n, t in params.items():
        pu[n] = t
    for suffix in ("attn.c_q.weight", "attn.c_k.weight", "attn.c_v.weight", "attn.proj.weight",
                   "mlp.fc.weight", "mlp.proj.weight"):
        pu[f"blocks.2.{suffix}"] = params[f"blocks.0.{suffix}"]
    assert set(pu) == set(param_shapes(cfg_u))
    loss_u, grads_u = loss_and_grads(pu, cfg_u, x, y)
    assert abs(loss_u - loss) < 1e-13
    for suffix in ("attn.c_q.weight", "mlp.proj.weight"):
        a = grads[f"blocks.0.{suffix}"]
        b = grads_u[f"blocks.0.{suffix}"] + grads_u[f"blocks.2.{suffix}"]
        assert (a - b).abs().max() < 1e-13
    return worst


def _small_batch(cfg, seed, B=2, T=6):
    g = torch.Generator().manual_seed(seed)
    tok = torch.randint(0, cfg["vocab_size"], (B * T + 1,), generator=g)
    x = torch.stack([tok[i * T:(i + 1) * T] for i in range(B)])
    y = torch.stack([tok[i * T + 1:(i + 1) * T + 1] for i in range(B)])
    return x, y


def _subset_twin(cfg, params, k):
    """The config and parameters of a model whose full forward is `cfg`'s forward with k
    active repeats: the schedule is the active layers', and every per-virtual-layer piece
    (scalars, loop_embed and value_scales rows, VE slots, XSA flags) moves with its layer."""
    D = Dims(cfg)
    act = D.active(k)
    assert cfg["scalar_sharing"] == "layer" and not cfg["ln_scale"]
    assert cfg["xsa_placement"] == "virtual" and not D.untied
    n = len(act)
    xsa_n = sum(D.xsa)
    assert [D.xsa[v] for v in act] == [i >= n - xsa_n for i in range(n)], "xsa does not map"
    tw = dict(cfg)
    tw["layer_schedule"] = [D.sched[v] for v in act]
    tw["recur_layers"] = []
    tw["ve_layers"] = [act.index(v) for v in D.ve_layers if v in act]
    assert len(tw["ve_layers"]) == len(D.ve_layers)
    tw["cross_repeat"] = cfg["cross_repeat"] and max(D.rep[v] for v in act) >= 1
    tp = OrderedDict()
    for name, shape in param_shapes(tw).items():
        parts = name.split(".")
        if parts[0] == "blocks" and ".".join(parts[2:]) in SCALAR_SUFFIXES:
            t = params[f"blocks.{act[int(parts[1])]}.{'.'.join(parts[2:])}"]
        elif name in ("loop_embed", "value_scales"):
            t = params[name][act]
        elif name == "skip_weights":
            t = params[name][:shape[0]]
        elif name == "cross_repeat_scales":
            t = params[name][:, :shape[1]]
        else:
            t = params[name]
        assert tuple(t.shape) == tuple(shape), name
        tp[name] = t
    return tw, tp


def _selfcheck_recurrence():
    """docs/recurrence.md: the words on the seeds' schedules, finite differences with every
    new piece on (whole model and a subset), and equivalences: untied copies = tied (with
    summed gradients), block-owned scalars = per-layer copies, zero new tensors = the model
    without them, a subset of the layers = the model of just those layers."""
    # 1) the words, XSA placement and ln index on the seeds' schedules
    c857 = full_config(dict(num_layers=11, layer_schedule=list(range(9)) + [9] * 5 + [10],
                            xsa_last_n=4, scalar_sharing="block", xsa_placement="block"))
    D = Dims(c857)
    assert D.xsa == [v >= 9 for v in range(15)], D.xsa  # blocks 9 and 10 -> virtual 9-14
    assert D.ln_index == list(range(10)) + [9] * 4 + [14]
    assert D.rep == [0] * 10 + [1, 2, 3, 4, 0] and D.K == 5 and D.prev[12] == 11
    assert Dims(full_config({**c857, "xsa_placement": "virtual"})).xsa == \
        [v >= 11 for v in range(15)]
    assert Dims(full_config({**c857, "scalar_sharing": "layer"})).ln_index == list(range(15))
    D = Dims(full_config(dict(num_layers=11, recur_layers=[4, 5])))
    assert D.sched == [0, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 10] and D.K == 2
    assert D.rep[6:8] == [1, 1] and D.prev[6:8] == [4, 5] and D.first[5] == 5
    c784 = full_config(dict(num_layers=3, layer_schedule=[0, 1, 2] * 4, cross_repeat=True,
                            scalar_sharing="block", loop_embed=True, residual_ve_tables=2))
    D = Dims(c784)
    assert D.K == 4 and D.prev[3:] == list(range(9)) and D.rep == [0] * 3 + [1] * 3 + \
        [2] * 3 + [3] * 3
    sh = param_shapes(full_config({**c784, "model_dim": 8, "num_heads": 2, "num_kv_heads": 1,
                                   "vocab_size": 5}))
    assert sh["cross_repeat_scales"] == (3, 3, 8) and sh["value_scales"] == (12, 2, 8)
    assert sh["loop_embed"] == (12, 8) and sh["value_embeds.1.weight"] == (5, 8)
    assert "blocks.2.attn_scale" in sh and "blocks.3.attn_scale" not in sh
    assert D.active(2) == list(range(6)) and D.active(9) == list(range(12))
    for bad in (dict(scalar_sharing="virtual"), dict(repeat_untie_mlp="up"),
                dict(xsa_placement="layer"), dict(init_scheme="xavier")):
        try:
            full_config(bad)
            raise AssertionError(f"accepted {bad}")
        except ValueError:
            pass
    try:
        Dims(full_config(dict(cross_repeat=True)))
        raise AssertionError("cross_repeat without repeats accepted")
    except ValueError:
        pass

    # 2) finite differences, every new piece on, whole model and 2 active repeats of 3
    base = dict(num_layers=3, layer_schedule=[0, 1, 0, 2, 1, 0], model_dim=16, num_heads=2,
                num_kv_heads=1, vocab_size=11, tie_embeddings=False, bigram_vocab_size=7,
                bigram_dim=6, xsa_last_n=1, ln_scale=True, ve_enabled=True, ve_dim=5,
                ve_layers=[1, 4], gated_attention=True, value_residual=True, rope_dims=4,
                rope_train_seq_len=4)
    cfg = full_config({**base, "scalar_sharing": "block", "xsa_placement": "block",
                       "repeat_untie_attn": True, "repeat_untie_mlp": "down",
                       "loop_embed": True, "residual_ve_tables": 2, "cross_repeat": True})
    params = random_params(cfg, 21)
    P64 = OrderedDict((n, t.double()) for n, t in params.items())
    x, y = _small_batch(cfg, 22)
    worst = 0.0
    for k in (None, 2):
        loss, grads = loss_and_grads(params, cfg, x, y, active_repeats=k)
        zero = {n for n, gr in grads.items() if not gr.abs().max() > 0}
        assert zero == expected_zero_grads(cfg, k), (k, zero, expected_zero_grads(cfg, k))
        worst = max(worst, _fd_check(
            P64, grads, lambda P, k=k: cross_entropy_mean(
                forward_logits(P, cfg, x, active_repeats=k), y).item(), 23))
    assert expected_zero_grads(cfg, 2) == {"repeats.5.attn.c_q.weight",
                                           "repeats.5.attn.c_k.weight",
                                           "repeats.5.attn.c_v.weight",
                                           "repeats.5.attn.proj.weight",
                                           "repeats.5.mlp.proj.weight"}

    # 3) untied repeats holding copies of their block = the tied model; the tied
    #    gradient is the sum over the block's matrix and its repeats' copies
    tied = full_config({**cfg, "repeat_untie_attn": False, "repeat_untie_mlp": "none"})
    pt = OrderedDict((n, t) for n, t in params.items() if not n.startswith("repeats."))
    assert set(pt) == set(param_shapes(tied))
    for mode in ((True, "full"), (False, "down"), (False, "full"), (True, "none")):
        un = full_config({**cfg, "repeat_untie_attn": mode[0], "repeat_untie_mlp": mode[1]})
        Du = Dims(un)
        pu = OrderedDict(pt)
        for v in range(Du.L):
            if Du.rep[v] >= 1:
                for suffix in Du.untied:
                    pu[f"repeats.{v}.{suffix}"] = pt[f"blocks.{Du.sched[v]}.{suffix}"]
        assert set(pu) == set(param_shapes(un))
        lt, gt = loss_and_grads(pt, tied, x, y)
        lu, gu = loss_and_grads(pu, un, x, y)
        assert abs(lt - lu) < 1e-13, (mode, lt, lu)
        for p in range(Du.P):
            for suffix in ATTN_MATRICES + MLP_MATRICES:
                tot = gu[f"blocks.{p}.{suffix}"].clone()
                for v in range(Du.L):
                    if Du.sched[v] == p and Du.rep[v] >= 1 and suffix in Du.untied:
                        tot += gu[f"repeats.{v}.{suffix}"]
                assert (tot - gt[f"blocks.{p}.{suffix}"]).abs().max() < 1e-12, (mode, p, suffix)

    # 4) block-owned scalars = per-layer copies of them (ln_scale off: its index differs by
    #    design); the block's gradient is the sum over its uses
    blk = full_config({**tied, "ln_scale": False})
    lay = full_config({**blk, "scalar_sharing": "layer"})
    Db = Dims(blk)
    pl = OrderedDict()
    for name in param_shapes(lay):
        parts = name.split(".")
        if parts[0] == "blocks" and ".".join(parts[2:]) in SCALAR_SUFFIXES:
            pl[name] = pt[f"blocks.{Db.sched[int(parts[1])]}.{'.'.join(parts[2:])}"]
        else:
            pl[name] = pt[name]
    lb, gb = loss_and_grads(pt, blk, x, y)
    ll, gl = loss_and_grads(pl, lay, x, y)
    assert abs(lb - ll) < 1e-13, (lb, ll)
    for p in range(Db.P):
        for suffix in ("attn_scale", "resid_mix", "attn.q_gain", "attn.attn_gate.weight",
                       "attn.vr_lambda"):
            tot = sum(gl[f"blocks.{v}.{suffix}"] for v in range(Db.L) if Db.sched[v] == p)
            assert (tot - gb[f"blocks.{p}.{suffix}"]).abs().max() < 1e-12, (p, suffix)

    # 5) loop_embed, value_scales and cross_repeat_scales at zero = the model without them
    pz = OrderedDict(params)
    for n in ("loop_embed", "value_scales", "cross_repeat_scales"):
        pz[n] = torch.zeros_like(params[n])
    plain = full_config({**cfg, "loop_embed": False, "residual_ve_tables": 0,
                         "cross_repeat": False})
    lz, gz = loss_and_grads(pz, cfg, x, y)
    lp, gp = loss_and_grads(OrderedDict((n, t) for n, t in pz.items()
                                        if n in param_shapes(plain)), plain, x, y)
    assert abs(lz - lp) < 1e-13 and all((gz[n] - gp[n]).abs().max() < 1e-13 for n in gp)
    assert gz["value_embeds.0.weight"].abs().max() == 0  # only through value_scales
    assert gz["cross_repeat_scales"].abs().max() > 0 and gz["loop_embed"].abs().max() > 0

    # 6) k active repeats = the model of just those layers (U-Net rebuilt over them,
    #    cross-repeat inputs from active previous uses); k >= K = the whole model
    sub = full_config(dict(base, num_layers=4, layer_schedule=[0, 1, 2, 1, 2, 1, 2, 3],
                           ve_layers=[1, 7], ln_scale=False, loop_embed=True,
                           residual_ve_tables=1, cross_repeat=True))
    ps = random_params(sub, 24)
    xs_, ys_ = _small_batch(sub, 25)
    l_all, _ = loss_and_grads(ps, sub, xs_, ys_)
    l_k3, _ = loss_and_grads(ps, sub, xs_, ys_, active_repeats=3)
    assert l_all == l_k3
    for k, want in ((1, [0, 1, 2, 7]), (2, [0, 1, 2, 3, 4, 7])):
        assert Dims(sub).active(k) == want
        tw, tp = _subset_twin(sub, ps, k)
        lk, gk = loss_and_grads(ps, sub, xs_, ys_, active_repeats=k)
        lt, _ = loss_and_grads(tp, tw, xs_, ys_)
        assert abs(lk - lt) < 1e-13, (k, lk, lt)
        assert {n for n, gr in gk.items() if not gr.abs().max() > 0} == \
            expected_zero_grads(sub, k)
    return worst


def selfcheck(verbose=True):
    e1 = _selfcheck_attention()
    e2 = _selfcheck_rope()
    _selfcheck_bigram()
    _selfcheck_rms()
    fd = _selfcheck_model()
    fr = _selfcheck_recurrence()
    if verbose:
        print(f"reference self-check ok: attention loop err {e1:.1e}, rope err {e2:.1e}, "
              f"bigram hash, rms, finite differences (worst rel {fd:.1e}), causality, "
              f"shared-block gradient sums; recurrence: finite differences (worst rel "
              f"{fr:.1e}), untied copies = tied, block scalars = per-layer copies, zero "
              f"new tensors = without them, active subsets = their own models")


if __name__ == "__main__":
    selfcheck()
    print(json.dumps(DEFAULTS))
