#!/usr/bin/python3
"""End to end on a small slice of the default corpus (issue 3): `pgolf data` → a short
`pgolf train` → `pgolf eval --data` → a run stopped and resumed ends bitwise identical to
an uninterrupted one; and the bad inputs of training, each one sentence and a non-zero exit.

    python3 tests/e2e/test_train_e2e.py --pgolf PATH --corpus DIR --workdir DIR
"""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from cli_checks import CliChecks, corpus_test_args, slice_data  # noqa: E402


def main():
    a = corpus_test_args(__doc__)
    w = lambda *p: os.path.join(a.workdir, *p)  # noqa: E731

    checks = CliChecks(a.pgolf)
    check, pgolf, expect_error = checks.check, checks.run, checks.expect_error

    if slice_data(checks, a.corpus, a.workdir) is None:
        return 1

    common = ["--preset", "tiny", "--data", w("data"), "--set", "vocab_size=512",
              "--set", "iterations=8", "--set", "warmdown_iters=4", "--set", "warmup_steps=1",
              "--set", "train_batch_tokens=2048", "--set", "train_seq_len=128",
              "--set", "grad_accum_steps=2", "--set", "val_batch_size=4096",
              "--set", "val_loss_every=4", "--set", "train_log_every=1",
              "--set", "max_wallclock_seconds=0", "--set", "ema_enabled=true",
              "--set", "swa_enabled=true", "--set", "late_qat_threshold=0.6",
              "--set", "quant_passthrough_max=0", "--set", "gptq=true",
              "--set", "gptq_calib_seqs=3", "--set", "eval_stride=64",
              "--set", "ttt_enabled=true", "--set", "ttt_chunk_tokens=3000",
              "--set", "ttt_epochs=1", "--set", "ttt_batch_seqs=4"]
    r = pgolf("train", *common, "--out", w("runA"))
    check(r.returncode == 0, f"train runs to the end: {r.stderr.strip()[-500:]}")
    if r.returncode != 0:
        return 1
    summary = json.load(open(w("runA", "summary.json")))
    events = [json.loads(l) for l in open(w("runA", "metrics.jsonl"))]
    steps = [e for e in events if "train_loss" in e]
    check(summary["steps"] == 8 and len(steps) == 8 and all("step" in e for e in events),
          f"8 steps, 8 train events, every event has a step ({len(events)} events)")
    check(0 < summary["val_bpb_prequant"] < 10 and summary["averaging"] == "ema",
          f"summary: val_bpb {summary['val_bpb_prequant']:.4f} with {summary['averaging']} weights")
    for name in ("config.json", "log.txt", "metrics.jsonl", "model.safetensors", "model.pgolf",
                 "summary.json"):
        check(os.path.exists(w("runA", name)), f"RUN_DIR has {name}")
    check("late QAT on" in open(w("runA", "log.txt")).read(), "late QAT switched on in the warmdown")
    art = summary.get("artifact", {})
    check(art.get("bytes") == os.path.getsize(w("runA", "model.pgolf")) and
          summary["score"]["name"] == "roundtrip_ttt" and
          summary["score"]["val_bpb"] == summary["roundtrip_ttt"]["val_bpb"] == summary["val_bpb"],
          f"summary: the artifact's {art.get('bytes')} bytes; the score is the round trip's TTT "
          f"val_bpb {summary['val_bpb']:.4f} (standard {summary['val_bpb_roundtrip']:.4f}, "
          f"sliding {summary['roundtrip_sliding']['val_bpb']:.4f}, before quantisation "
          f"{summary['val_bpb_prequant']:.4f})")
    for name in ("roundtrip_standard", "roundtrip_sliding", "roundtrip_ttt"):
        check(any(e.get("eval") == name for e in events) and
              summary[name]["tokens"] == summary["final_standard"]["tokens"],
              f"metrics.jsonl has the {name} evaluation over every validation token")

    # The run's two figures, reproduced by pgolf eval on its two files.
    for flag, name, key in (("--checkpoint", "model.safetensors", "val_bpb_prequant"),
                            ("--artifact", "model.pgolf", "val_bpb_roundtrip")):
        r = pgolf("eval", flag, w("runA", name), "--data", w("data"), "--seq-len", "128",
                  "--batch", "16", "--json")
        if r.returncode == 0:
            e = json.loads(r.stdout)
            rel = abs(e["val_bpb"] - summary[key]) / summary[key]
            check(rel < 1e-5 and e["tokens"] == summary["final_standard"]["tokens"],
                  f"eval {flag} reproduces the run's {key} ({e['val_bpb']:.6f}, rel {rel:.1e})")
        else:
            check(False, f"eval {flag}: {r.stderr.strip()}")

    # Stop at step 3, resume: the same final weights, bit for bit.
    r = pgolf("train", *common, "--out", w("runB"), "--stop-at-step", "3")
    check(r.returncode == 0 and os.path.exists(w("runB", "checkpoint.safetensors")),
          f"--stop-at-step 3 leaves a checkpoint: {r.stderr.strip()[-300:]}")
    r = pgolf("train", "--resume", "--out", w("runB"))
    check(r.returncode == 0, f"--resume finishes the run: {r.stderr.strip()[-300:]}")
    same = all(os.path.exists(w("runB", f)) and
               open(w("runA", f), "rb").read() == open(w("runB", f), "rb").read()
               for f in ("model.safetensors", "model.pgolf"))
    check(same, "a stopped and resumed run ends bitwise identical to an uninterrupted one")

    # Ctrl-C: a checkpoint and exit 130; --resume then ends bitwise where runA did.
    proc = subprocess.Popen([a.pgolf, "train", *common, "--out", w("runC")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("step 2/"):
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=300)
    check(proc.returncode == 130 and "interrupted at step" in out and
          os.path.exists(w("runC", "checkpoint.safetensors")),
          f"Ctrl-C saves a checkpoint and exits 130 (exit {proc.returncode}) {err.strip()[-200:]}")
    r = pgolf("train", "--resume", "--out", w("runC"))
    check(r.returncode == 0 and os.path.exists(w("runC", "model.safetensors")) and
          open(w("runA", "model.safetensors"), "rb").read() ==
          open(w("runC", "model.safetensors"), "rb").read(),
          f"resuming after Ctrl-C ends bitwise identical {r.stderr.strip()[-200:]}")

    # Bad input: one sentence, non-zero exit.
    shard = sorted(f for f in os.listdir(w("data")) if "_train_" in f)[0]

    def broken_data(name, mutate):
        d = w(name)
        shutil.copytree(w("data"), d)
        mutate(d)
        return d

    def poke(path, offset, fmt, value):
        with open(path, "r+b") as f:
            f.seek(offset)
            f.write(struct.pack(fmt, value))

    d = broken_data("bad_magic", lambda d: poke(os.path.join(d, shard), 0, "<i", 1234))
    expect_error("wrong shard magic", ["train", *common[:2], "--data", d, "--out", w("r1"),
                                       *common[4:6]], shard)
    d = broken_data("bad_version", lambda d: poke(os.path.join(d, shard), 4, "<i", 7))
    expect_error("wrong shard version", ["train", *common[:2], "--data", d, "--out", w("r2"),
                                         *common[4:6]], shard)
    d = broken_data("bad_size", lambda d: open(os.path.join(d, shard), "ab").write(b"\0\0\0"))
    expect_error("shard size mismatch", ["train", *common[:2], "--data", d, "--out", w("r3"),
                                         *common[4:6]], shard)
    d = broken_data("bad_token", lambda d: poke(os.path.join(d, shard), 1024 + 20, "<H", 600))
    with_d = [d if arg == w("data") else arg for arg in common]
    expect_error("token >= vocab", ["train", *with_d, "--out", w("r4")],
                 "token 600 at position 10 is outside the model's vocabulary of 512")

    def no_val(d):
        for f in os.listdir(d):
            if "_val_" in f:
                os.remove(os.path.join(d, f))
    d = broken_data("no_val", no_val)
    expect_error("empty validation split", ["train", *common[:2], "--data", d, "--out", w("r5"),
                                            *common[4:6]], "no validation shards")
    expect_error("wrong tokenizer", ["train", *common, "--tokenizer",
                                     os.path.join(w("data"), "tokenizer.model") + ".missing",
                                     "--out", w("r6")], "tokenizer")
    expect_error("tokenizer of another vocabulary", ["train", "--preset", "tiny", "--data",
                                                     w("data"), "--out", w("r7")],
                 "has 512 pieces but the model's vocab_size is 1024")
    expect_error("unknown config key", ["train", *common, "--set", "matrix_lrr=1", "--out", w("r8")],
                 "matrix_lrr")
    expect_error("bad batch arithmetic", ["train", *common, "--set", "train_batch_tokens=1000",
                                          "--out", w("r9")], "train_batch_tokens")
    expect_error("non-finite loss", ["train", *common, "--set", "matrix_lr=1e30", "--set",
                                     "scalar_lr=1e30", "--set", "tied_embed_lr=1e30",
                                     "--out", w("r10")], "training loss became")
    expect_error("existing run without --resume", ["train", *common, "--out", w("runA")],
                 "already holds a run")
    expect_error("unknown device", ["train", *common, "--device", "gpu", "--out", w("r11")],
                 "--device must be auto, cpu or cuda")
    r = pgolf("train", *common, "--device", "cuda", "--out", w("r12"))
    if r.returncode != 0:  # a CPU build, or no GPU: one sentence saying which
        check(r.stderr.strip().count("\n") == 0 and "--device cuda:" in r.stderr,
              f"--device cuda without a usable GPU says why: {r.stderr.strip()}")
    else:
        device = json.load(open(w("r12", "summary.json")))["device"]
        check(device.startswith("cuda"), f"--device cuda trained on {device}")
    with open(w("runA", "model.safetensors"), "rb") as f:
        blob = f.read()
    with open(w("truncated.safetensors"), "wb") as f:
        f.write(blob[: len(blob) // 3])
    expect_error("truncated --init checkpoint", ["train", *common, "--init",
                                                 w("truncated.safetensors"), "--out", w("r11")],
                 "truncated.safetensors")

    return checks.finish("e2e")


if __name__ == "__main__":
    sys.exit(main())
