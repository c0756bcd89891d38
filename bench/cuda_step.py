#!/usr/bin/python3
"""GPU training step, `pgolf train --device cuda` vs the PyTorch parity model under
torch.compile, on one GPU in one invocation.

    python3 bench/cuda_step.py --pgolf build-cuda/pgolf [--preset record549] [--seq-len 2048]
        [--batch 48] [--steps 20] [--skip 5] [--peak-tflops 989] [--compile-mode default]
        [--sdpa flash|auto] [--keep DIR]
    /usr/bin/python3 bench/cuda_step.py --pgolf build/pgolf --smoke      (CPU plumbing check)

One step = one micro-batch of --batch sequences of --seq-len tokens (grad_accum_steps 1: what
one of 8 data-parallel ranks computes per step of record549's 786,432-token batch), forward +
backward + the optimizer update (Muon + AdamW + Adam, grad clip as configured), world size 1
(so each side runs all of Muon's Newton-Schulz work that 8 ranks would split, and no
communication). Both start from the same `pgolf init` weights and read the same shards:

- data: a tokenizer made here by `pgolf data --text` from a synthetic corpus (the GPU machine
  has no network and no shared data), and train/val shards of uniformly random token ids
  (the step does the same arithmetic whatever the ids are; only the embedding-gradient
  scatter sees their distribution);
- pgolf: `pgolf train --device DEV --preset P --init W --set ...` with warmup_steps 0,
  val_loss_every 0, EMA/SWA/late QAT off, max_wallclock_seconds 0; its step time is the
  `step_ms` of each train event in RUN/metrics.jsonl, its peak memory the
  `peak_device_bytes` of RUN/summary.json;
- PyTorch: tests/parity/reference_model.py (fp32 master weights, bf16 autocast, attention by
  F.scaled_dot_product_attention restricted to the flash backend; loss in fp32) wrapped in
  torch.compile(fullgraph=True, dynamic=False), the optimizers of reference_train.py
  (fused AdamW/Adam, Muon with a torch.compile'd bf16 Newton-Schulz, as the challenge's
  train_gpt.py), timed between torch.cuda.synchronize() calls; batches are staged on the
  device before the clock starts (pgolf's step_ms excludes I/O as well); peak memory is
  torch.cuda.max_memory_allocated() over the whole run (compile warm-up included).

Step time is the median over steps --skip+1..--steps (the first steps hold compilation,
CUDA-graph capture, cuBLASLt heuristics). MFU = (6*N_matmul + 6*L*d*T) FLOPs per token x
tokens per step / step time / --peak-tflops (989: H100/H200 bf16 dense), with N_matmul the
matmul parameters as run (block matrices counted once per virtual layer that runs them, the
tied head, the bigram and VE projections), L the virtual layers, d model_dim, T seq len.
Targets (issue): pgolf step <= 0.8 x PyTorch's, pgolf peak memory <= PyTorch's.
Prints a table and one JSON line.

--smoke: preset tiny, T=128, 4 sequences, 6 steps, on CPU in float32 without compile or SDPA
(torch 1.13 runs it), to check the plumbing end to end where there is no GPU.
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import OrderedDict

sys.dont_write_bytecode = True
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "parity"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import reference_model as ref  # noqa: E402
import reference_train as rt  # noqa: E402
import st_io  # noqa: E402
from bench_support import (pgolf_init, pgolf_train, run, timed_train_settings,  # noqa: E402
                           write_random_shards)

MATRIX_SUFFIXES = ref.ATTN_MATRICES + ref.MLP_MATRICES


# ----------------------------------------------------------------------------- data

def synthetic_corpus(dirpath, n_docs=40, words_per_doc=3000, seed=0):
    """Text files of pseudo-words (Zipf-distributed over a 4,000-word lexicon of random
    syllables, in sentences), enough for a SentencePiece BPE of vocab 1024."""
    os.makedirs(dirpath, exist_ok=True)
    rng = np.random.default_rng(seed)
    cons, vows = "bcdfghjklmnprstvwz", "aeiouy"
    syll = [c + v for c in cons for v in vows] + [c + v + e for c in cons for v in vows
                                                   for e in "nrst"]
    lexicon = ["".join(rng.choice(syll, rng.integers(1, 4))) for _ in range(4000)]
    p = 1.0 / np.arange(1, len(lexicon) + 1)
    p /= p.sum()
    for i in range(n_docs):
        words = rng.choice(len(lexicon), words_per_doc, p=p)
        out, k = [], 0
        while k < len(words):
            n = int(rng.integers(4, 16))
            sent = [lexicon[w] for w in words[k:k + n]]
            k += n
            sent[0] = sent[0].capitalize()
            out.append(" ".join(sent) + rng.choice([".", ".", ".", "?", "!"]))
        with open(os.path.join(dirpath, f"doc{i:03d}.txt"), "w") as f:
            f.write(" ".join(out) + "\n")


def make_data(a, env, work, vocab, n_train, n_val):
    """DATA dir: tokenizer.model from `pgolf data --text` on the synthetic corpus, random-token
    train and val shards. Returns (data dir, train shard paths)."""
    corpus, tok = os.path.join(work, "corpus"), os.path.join(work, "tokenizer_data")
    synthetic_corpus(corpus)
    run([a.pgolf, "data", "--text", corpus, "--vocab", str(vocab), "--out", tok], env,
        "pgolf data")
    ddir = os.path.join(work, "data")
    shards = write_random_shards(ddir, vocab, n_train, n_val)
    os.replace(os.path.join(tok, "tokenizer.model"), os.path.join(ddir, "tokenizer.model"))
    return ddir, shards


# ----------------------------------------------------------------------------- FLOPs

def flops_per_token(cfg, seq_len):
    """(6*N_matmul + 6*L*d*T, N_matmul, L): N_matmul counts each block matrix once per
    virtual layer that runs it, the attention gate, the head and the bigram / VE
    projections; embedding lookups are no matmuls."""
    D = ref.Dims(cfg)
    shapes = ref.param_shapes(cfg)
    numel = {n: int(np.prod(s)) if s else 1 for n, s in shapes.items()}
    layers = D.active(None)
    n = 0
    for v in layers:
        n += sum(numel[D.matrix_name(v, s)] for s in MATRIX_SUFFIXES)
        if cfg["gated_attention"]:
            n += numel[f"blocks.{D.owner[v]}.attn.attn_gate.weight"]
    n += numel["lm_head.weight" if "lm_head.weight" in shapes else "tok_emb.weight"]
    n += numel.get("bigram.proj.weight", 0)
    if D.ve_layers:
        n += numel.get("ve_shared.proj.weight", 0)
    L = len(layers)
    return 6 * n + 6 * L * D.d * seq_len, n, L


# ----------------------------------------------------------------------------- pgolf

def pgolf_device_args(a, env):
    """['--device', DEV], or [] when the binary has no --device and DEV is cpu."""
    if not a.pgolf_device:
        return []
    helptext = run([a.pgolf, "train", "--help"], env, "pgolf train --help").stdout
    if "--device" in helptext:
        return ["--device", a.pgolf_device]
    if a.pgolf_device == "cpu":
        print("note: this pgolf has no `train --device`; running it without (CPU)", flush=True)
        return []
    raise SystemExit(f"{a.pgolf} has no `train --device` option: build a pgolf with it")


def run_pgolf(a, env, work, preset, init, ddir, settings):
    out = os.path.join(work, "run")
    events, wall, run_cfg = pgolf_train(
        [a.pgolf, "train", *pgolf_device_args(a, env), "--preset", preset, "--data", ddir,
         "--init", init], settings, out, env, "pgolf train")
    steps = settings["iterations"]
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    return dict(step_ms=[float(events[s]["step_ms"]) for s in range(1, steps + 1)],
                losses=[float(events[s]["train_loss"]) for s in range(1, steps + 1)],
                peak_bytes=summary.get("peak_device_bytes"), wall_s=wall,
                step_avg_ms=summary.get("step_avg_ms"), device=summary.get("device")), run_cfg


# ----------------------------------------------------------------------------- PyTorch

def run_torch(a, device, init, run_cfg, shards, steps):
    """The parity model trained `steps` steps; per-step ms, losses, peak bytes."""
    cfg_model = ref.full_config({k: v for k, v in run_cfg.items() if k in ref.DEFAULTS})
    cfg_train = rt.full_train_config({k: v for k, v in run_cfg.items()
                                      if k in rt.TRAIN_DEFAULTS})
    rt._check_supported(cfg_train)
    cuda = device.type == "cuda"
    amp = cuda and not a.fp32
    tensors, _ = st_io.read_safetensors(init)
    P = OrderedDict((n, torch.from_numpy(np.asarray(tensors[n], dtype=np.float32)).to(device)
                     .requires_grad_(True)) for n in ref.param_shapes(cfg_model))
    params = list(P.values())

    if cuda and a.sdpa == "flash":  # only flash may run: anything else raises
        torch.backends.cuda.enable_flash_sdp(True)
        torch.backends.cuda.enable_mem_efficient_sdp(False)
        torch.backends.cuda.enable_math_sdp(False)
        if hasattr(torch.backends.cuda, "enable_cudnn_sdp"):
            torch.backends.cuda.enable_cudnn_sdp(False)
    sdpa_dtype = torch.bfloat16 if amp else None

    def loss_fn(P, x, y):
        logits = ref.forward_logits(P, cfg_model, x, sdpa_dtype=sdpa_dtype)
        return ref.cross_entropy_mean(logits.float(), y)

    def ns_bf16(G, steps):
        return rt.zeropower_via_newtonschulz5(G.bfloat16(), steps)

    ns = ns_bf16 if amp else None
    kw = {} if a.compile_mode == "default" else dict(mode=a.compile_mode)
    eager_loss_fn, fullgraph = loss_fn, a.fullgraph
    if a.compile:
        loss_fn = torch.compile(eager_loss_fn, fullgraph=fullgraph, dynamic=False, **kw)
        if ns is not None:
            ns = torch.compile(ns, dynamic=False)
    optimizers, muon = rt.build_optimizers(P, cfg_model, cfg_train, adam_fused=cuda,
                                           newton_schulz=ns)

    ga = rt.effective_grad_accum(cfg_train)
    loader = rt.DistributedTokenLoader(shards)
    batches = [[tuple(t.to(device) for t in loader.next_batch(
        int(cfg_train["train_batch_tokens"]), int(cfg_train["train_seq_len"]), ga))
        for _ in range(ga)] for _ in range(steps)]
    clip = float(cfg_train["grad_clip_norm"])

    def sync():
        if cuda:
            torch.cuda.synchronize()

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    step_ms, losses = [], []
    for step in range(steps):
        sync()
        t0 = time.perf_counter()
        total = None
        for x, y in batches[step]:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                try:
                    loss = loss_fn(P, x, y)
                except Exception as e:  # a graph break under fullgraph: compile in pieces
                    if not (a.compile and fullgraph and step == 0):
                        raise
                    print(f"  note: torch.compile(fullgraph=True) failed "
                          f"({type(e).__name__}: {str(e).strip().splitlines()[0][:200]}); "
                          f"compiling with fullgraph=False", flush=True)
                    fullgraph = False
                    torch._dynamo.reset()
                    loss_fn = torch.compile(eager_loss_fn, fullgraph=False, dynamic=False, **kw)
                    loss = loss_fn(P, x, y)
            (loss * (1.0 / ga)).backward()
            total = loss.detach() if total is None else total + loss.detach()
        rt.apply_schedule(step, cfg_train, optimizers, muon)
        for t in params:  # every tensor takes part in the step (zero when unused)
            if t.grad is None:
                t.grad = torch.zeros_like(t)
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(params, clip)
        for opt in optimizers:
            opt.step()
        muon.step()
        for t in params:
            t.grad = None
        sync()
        step_ms.append(1000.0 * (time.perf_counter() - t0))
        losses.append(total / ga)
        if step == 0:
            print(f"  torch step 1{' (compilation included)' if a.compile else ''}: "
                  f"{step_ms[0] / 1000:.1f} s", flush=True)
    peak = torch.cuda.max_memory_allocated() if cuda else None
    reserved = torch.cuda.max_memory_reserved() if cuda else None
    return dict(step_ms=step_ms, losses=[float(v) for v in losses], peak_bytes=peak,
                reserved_bytes=reserved, fullgraph=fullgraph)


# ----------------------------------------------------------------------------- report

def gib(b):
    return "n/a" if b is None else f"{b / 2 ** 30:.2f} GiB"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pgolf", required=True)
    ap.add_argument("--preset", default=None, help="default record549 (smoke: tiny)")
    ap.add_argument("--seq-len", type=int, default=None, help="T (default 2048; smoke 128)")
    ap.add_argument("--batch", type=int, default=None,
                    help="sequences per step (default 48; smoke 4)")
    ap.add_argument("--steps", type=int, default=None, help="steps (default 20; smoke 6)")
    ap.add_argument("--skip", type=int, default=None,
                    help="first steps left out of the median (default 5; smoke 2)")
    ap.add_argument("--peak-tflops", type=float, default=989.0,
                    help="peak bf16 dense TFLOP/s for MFU (H100 and H200 SXM: 989)")
    ap.add_argument("--device", default=None, help="torch device (default cuda; smoke cpu)")
    ap.add_argument("--pgolf-device", default=None,
                    help="pgolf train --device (default: --device); '' leaves the flag out")
    ap.add_argument("--compile-mode", default="default",
                    help="torch.compile mode: default, max-autotune-no-cudagraphs, ...")
    ap.add_argument("--no-compile", dest="compile", action="store_false", default=None)
    ap.add_argument("--no-fullgraph", dest="fullgraph", action="store_false",
                    help="torch.compile(fullgraph=False) from the start (without it, a "
                         "fullgraph failure falls back to this with a note)")
    ap.add_argument("--sdpa", choices=("flash", "auto"), default="flash",
                    help="flash: only the flash SDPA backend is enabled (others raise)")
    ap.add_argument("--fp32", action="store_true", help="torch side without bf16 autocast/SDPA")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: leave as is)")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny, T=128, 4 seqs, 6 steps, CPU, fp32, no compile")
    ap.add_argument("--keep", help="write the runs here instead of a temporary directory")
    a = ap.parse_args()

    smoke = a.smoke
    preset = a.preset or ("tiny" if smoke else "record549")
    seq = a.seq_len or (128 if smoke else 2048)
    batch = a.batch or (4 if smoke else 48)
    steps = a.steps or (6 if smoke else 20)
    skip = a.skip if a.skip is not None else (2 if smoke else 5)
    a.device = a.device or ("cpu" if smoke else "cuda")
    if a.pgolf_device is None:
        a.pgolf_device = a.device
    if a.compile is None:
        a.compile = not smoke
    if smoke:
        a.fp32 = True
        a.threads = a.threads or 2
    if steps <= skip:
        raise SystemExit("--steps must exceed --skip")
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device visible to torch (use --smoke on a CPU machine)")
    env = dict(os.environ)
    if a.threads:
        torch.set_num_threads(a.threads)
        env["OMP_NUM_THREADS"] = str(a.threads)
    tokens = batch * seq

    keep = a.keep
    if keep:
        os.makedirs(keep, exist_ok=True)
    work = tempfile.mkdtemp(prefix="cuda_step-", dir=keep)
    try:
        init = os.path.join(work, "init.safetensors")
        vocab = pgolf_init(a.pgolf, preset, init, env)
        ddir, shards = make_data(a, env, work, vocab, (steps + 1) * (tokens + 1), 2 * seq + 1)

        settings = timed_train_settings(steps, seq, tokens, checkpoint_every=0, eval_stride=0,
                                        ttt_enabled=False, gptq=False)
        print(f"pgolf train: {preset} B={batch} T={seq}, {steps} steps ...", flush=True)
        pg, run_cfg = run_pgolf(a, env, work, preset, init, ddir, settings)
        print(f"torch: {'compiled' if a.compile else 'eager'}, {device} ...", flush=True)
        th = run_torch(a, device, init, run_cfg, shards, steps)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)

    cfg_model = ref.full_config({k: v for k, v in run_cfg.items() if k in ref.DEFAULTS})
    fpt, n_matmul, L = flops_per_token(cfg_model, seq)
    pg_ms = statistics.median(pg["step_ms"][skip:])
    th_ms = statistics.median(th["step_ms"][skip:])
    mfu = lambda ms: fpt * tokens / (ms / 1000.0) / (a.peak_tflops * 1e12)  # noqa: E731
    ratio = pg_ms / th_ms
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    mem_ok = (None if pg["peak_bytes"] is None or th["peak_bytes"] is None
              else pg["peak_bytes"] <= th["peak_bytes"])

    compiled = (f"compile({a.compile_mode}{', fullgraph' if th['fullgraph'] else ''})"
                if a.compile else "eager")
    torch_desc = (f"torch {torch.__version__} {compiled}, "
                  f"{'fp32' if a.fp32 else 'bf16 autocast, SDPA ' + a.sdpa}")
    tps = lambda ms: tokens / (ms / 1000.0)  # noqa: E731
    print(f"{preset} B={batch} T={seq} ({tokens} tokens/step, grad accum 1), {steps} steps, "
          f"median of steps {skip + 1}..{steps}; torch on {dev_name}, pgolf on {pg['device']}")
    print(f"  FLOPs/token {fpt / 1e6:.1f} M (N_matmul {n_matmul / 1e6:.2f} M, L {L}, "
          f"d {cfg_model['model_dim']}), peak {a.peak_tflops:g} TFLOP/s")
    print(f"  {'':24s} {'step ms':>9s} {'tok/s':>11s} {'MFU':>7s} {'peak memory':>12s}  "
          f"loss 1 / {steps}")
    print(f"  {'pgolf ' + (a.pgolf_device or 'auto'):24s} {pg_ms:9.1f} {tps(pg_ms):11,.0f} "
          f"{mfu(pg_ms):7.2%} {gib(pg['peak_bytes']):>12s}  "
          f"{pg['losses'][0]:.4f} / {pg['losses'][-1]:.4f}")
    print(f"  {'torch ' + str(device) + (' compiled' if a.compile else ' eager'):24s} "
          f"{th_ms:9.1f} {tps(th_ms):11,.0f} {mfu(th_ms):7.2%} {gib(th['peak_bytes']):>12s}  "
          f"{th['losses'][0]:.4f} / {th['losses'][-1]:.4f}"
          + (f"  (reserved {gib(th['reserved_bytes'])})" if th["reserved_bytes"] else ""))
    print(f"  ratio pgolf/torch {ratio:.3f} (target <= 0.8: "
          f"{'met' if ratio <= 0.8 else 'NOT met'}); peak memory <= torch's: "
          f"{'n/a' if mem_ok is None else ('met' if mem_ok else 'NOT met')}; {torch_desc}")
    print(f"  step ms pgolf: {' '.join(f'{v:.1f}' for v in pg['step_ms'])} "
          f"(process {pg['wall_s']:.1f} s)")
    print(f"  step ms torch: {' '.join(f'{v:.1f}' for v in th['step_ms'])}", flush=True)
    print(json.dumps(dict(
        bench="cuda_step", preset=preset, batch=batch, seq_len=seq, tokens_per_step=tokens,
        steps=steps, median_from_step=skip + 1, device=dev_name, pgolf_device=pg["device"],
        torch=torch_desc,
        pgolf_step_ms=round(pg_ms, 3), torch_step_ms=round(th_ms, 3), ratio=round(ratio, 4),
        pgolf_mfu=round(mfu(pg_ms), 4), torch_mfu=round(mfu(th_ms), 4),
        pgolf_peak_bytes=pg["peak_bytes"], torch_peak_bytes=th["peak_bytes"],
        torch_reserved_bytes=th["reserved_bytes"], flops_per_token=fpt, n_matmul=n_matmul,
        virtual_layers=L, peak_tflops=a.peak_tflops,
        pgolf_loss=[pg["losses"][0], pg["losses"][-1]],
        torch_loss=[th["losses"][0], th["losses"][-1]],
        target_ratio_met=ratio <= 0.8, target_memory_met=mem_ok)))


if __name__ == "__main__":
    main()
