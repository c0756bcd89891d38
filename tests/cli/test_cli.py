#!/usr/bin/python3
"""Command-line behaviour of `pgolf init/eval/grad` (SPEC §6): results on good input, and on
bad input one sentence on stderr, a non-zero exit, and no half-written or clobbered file.

    python3 tests/cli/test_cli.py --pgolf PATH --workdir DIR
"""
import argparse
import json
import os
import shutil
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from cli_checks import CliChecks  # noqa: E402


def write_shard(path, tokens, magic=20240520, version=1, count=None):
    header = [magic, version, len(tokens) if count is None else count] + [0] * 253
    with open(path, "wb") as f:
        f.write(struct.pack("<256i", *header))
        f.write(struct.pack(f"<{len(tokens)}H", *tokens))


def check_pack(checks, w, score):
    """pgolf pack and eval --artifact: sizes, the decoded model's loss, and bad input."""
    check, pgolf, expect_error = checks.check, checks.run, checks.expect_error
    ckpt = w("model.safetensors")
    ref = json.loads(pgolf("eval", *score).stdout)["val_loss"]
    for extra, tol in (([], 1e-3), (["--passthrough-max", "0", "--bits", "5"], 0.05)):
        art = w("model.pgolf")
        r = pgolf("pack", "--checkpoint", ckpt, "--out", art, "--json", *extra)
        if not check(r.returncode == 0, f"pack {' '.join(extra)}: exit {r.returncode} {r.stderr}"):
            continue
        j = json.loads(r.stdout)
        check(j["bytes"] == os.path.getsize(art) and j["code_bytes"] > 10_000 and
              j["total_bytes"] == j["bytes"] + j["code_bytes"] and
              j["headroom"] == 16_000_000 - j["total_bytes"],
              f"pack reports the file's {j['bytes']} bytes, code {j['code_bytes']}, headroom")
        ev = pgolf("eval", "--artifact", art, *score[2:])
        if check(ev.returncode == 0, f"eval --artifact: exit {ev.returncode} {ev.stderr}"):
            loss = json.loads(ev.stdout)["val_loss"]
            check(abs(loss - ref) <= tol * ref,
                  f"eval --artifact {' '.join(extra)}: loss {loss:.5f} vs {ref:.5f} (tol {tol})")
    text = pgolf("pack", "--checkpoint", ckpt, "--out", w("text.pgolf"))
    check(text.returncode == 0 and "bytes" in text.stdout and "headroom" in text.stdout,
          f"pack prints bytes and headroom: {text.stdout.strip()}")

    blob = open(w("model.pgolf"), "rb").read()
    with open(w("cut.pgolf"), "wb") as f:
        f.write(blob[:-7])
    expect_error("truncated artifact", ["eval", "--artifact", w("cut.pgolf"), *score[2:]],
                 "cut.pgolf")
    expect_error("a checkpoint given as an artifact", ["eval", "--artifact", ckpt, *score[2:]],
                 "not a pgolf artifact")
    expect_error("both --checkpoint and --artifact",
                 ["eval", "--artifact", w("model.pgolf"), *score], "excludes")
    expect_error("eval without a model", ["eval", *score[2:]], "--checkpoint")
    expect_error("eval --ttt on the GPU", ["eval", *score, "--stride", "8", "--ttt",
                                           "--device", "cuda"], "--ttt runs on the CPU only")
    expect_error("eval on an unknown device", ["eval", *score, "--device", "tpu"],
                 "--device must be auto, cpu or cuda")
    expect_error("pack of a missing checkpoint",
                 ["pack", "--checkpoint", w("none.safetensors"), "--out", w("n.pgolf")],
                 "none.safetensors")
    expect_error("pack with 9 bits", ["pack", "--checkpoint", ckpt, "--out", w("n.pgolf"),
                                      "--bits", "9"], "--bits")
    check(not os.path.exists(w("n.pgolf")), "a failed pack writes nothing")
    expect_error("pack into a missing directory",
                 ["pack", "--checkpoint", ckpt, "--out", w("missing/a.pgolf")], "missing")
    expect_error("a usage error", ["pack", "--checkpoint", ckpt], "--out is required")
    expect_error("--gptq without calibration data",
                 ["pack", "--checkpoint", ckpt, "--out", w("n.pgolf"), "--gptq"], "--data")


def check_sliding(checks, score):
    """eval --stride (SPEC §4) on a --tokens shard: a sliding result, and bad strides."""
    check, pgolf, expect_error = checks.check, checks.run, checks.expect_error
    plain = pgolf("eval", *score)
    slid = pgolf("eval", *score, "--stride", "16")  # T = 16: the same two windows
    tail = pgolf("eval", *score, "--stride", "4", "--reference-tail")
    if check(plain.returncode == 0 and slid.returncode == 0 and tail.returncode == 0,
             f"eval --stride runs: {slid.stderr.strip()} {tail.stderr.strip()}"):
        p, s, t = (json.loads(r.stdout) for r in (plain, slid, tail))
        check(s["eval"] == "sliding" and s["stride"] == 16 and s["tokens"] == 32 and
              abs(s["val_loss"] - p["val_loss"]) <= 1e-12 * p["val_loss"],
              f"--stride T scores the shard's 32 targets as plain eval does ({s['val_loss']})")
        check(t["tokens"] == 32 + 16 - 4 and t["reference_tail"],
              f"--reference-tail re-scores the reference's tail: {t['tokens']} targets")
    for bad in ("0", "17", "-3"):
        expect_error(f"--stride {bad} with --seq-len 16", ["eval", *score, "--stride", bad],
                     "--stride must lie in 1..16")
    expect_error("--reference-tail without --stride", ["eval", *score, "--reference-tail"],
                 "--stride")


def check_ttt_flags(checks, score):
    """eval --ttt: lr 0 is the sliding result; its flags' errors are one sentence."""
    check, pgolf, expect_error = checks.check, checks.run, checks.expect_error
    slid = pgolf("eval", *score, "--stride", "8")
    ttt = pgolf("eval", *score, "--stride", "8", "--ttt", "--ttt-lr", "0",
                "--ttt-chunk-tokens", "16", "--ttt-batch-seqs", "1")
    if check(slid.returncode == 0 and ttt.returncode == 0, f"eval --ttt runs: {ttt.stderr}"):
        s, t = json.loads(slid.stdout), json.loads(ttt.stdout)
        check(t["eval"] == "ttt" and t["val_loss"] == s["val_loss"] and t["ttt"]["lr"] == 0,
              f"--ttt --ttt-lr 0 gives the sliding val_loss ({t['val_loss']})")
    expect_error("--ttt-lr without --ttt", ["eval", *score, "--ttt-lr", "0.1"], "--ttt")
    expect_error("--ttt with --fp64", ["eval", *score, "--ttt", "--fp64"], "float32")
    expect_error("--ttt with --reference-tail",
                 ["eval", *score, "--stride", "8", "--ttt", "--reference-tail"], "once")
    expect_error("an unknown TTT optimizer", ["eval", *score, "--ttt", "--ttt-optimizer", "lion"],
                 "lion")
    expect_error("a zero TTT chunk", ["eval", *score, "--ttt", "--ttt-chunk-tokens", "0"],
                 "chunk")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pgolf", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    w = lambda name: os.path.join(a.workdir, name)  # noqa: E731

    checks = CliChecks(a.pgolf)
    check, pgolf, expect_error = checks.check, checks.run, checks.expect_error

    r = pgolf("--help")
    check(r.returncode == 0 and all(c in r.stdout for c in ("init", "eval", "grad")),
          "--help lists init, eval and grad")

    small = ["--set", "num_layers=2", "--set", "model_dim=32", "--set", "num_heads=2",
             "--set", "num_kv_heads=1", "--set", "vocab_size=64",
             "--set", "bigram_vocab_size=31", "--set", "ve_enabled=true", "--set", "ve_layers=1"]
    r = pgolf("init", *small, "--out", w("model.safetensors"))
    check(r.returncode == 0 and os.path.exists(w("model.safetensors")), "init writes a checkpoint")
    write_shard(w("tokens.bin"), [(7 * i + 3) % 64 for i in range(2 * 16 + 1)])
    score = ["--checkpoint", w("model.safetensors"), "--tokens", w("tokens.bin"),
             "--seq-len", "16", "--batch", "2", "--json"]
    ev = pgolf("eval", *score)
    gr = pgolf("grad", *score, "--out", w("grads.safetensors"))
    ok = ev.returncode == 0 and gr.returncode == 0
    if ok:
        e, g = json.loads(ev.stdout), json.loads(gr.stdout)
        check(e["tokens"] == 32 and e["val_loss"] == g["val_loss"] and e["val_loss"] > 0,
              f"eval and grad agree on the loss ({e['val_loss']}) over 32 tokens")
    else:
        check(False, f"eval/grad run: {ev.stderr} {gr.stderr}")
    check(not [f for f in os.listdir(a.workdir) if ".tmp" in f], "no temporary files are left")

    # Bad input: one sentence, non-zero exit.
    expect_error("unknown preset", ["init", "--preset", "nope", "--out", w("x.safetensors")],
                 "unknown preset")
    expect_error("unknown --set key", ["init", "--set", "num_layerz=3", "--out", w("x.safetensors")],
                 "num_layerz")
    check(not os.path.exists(w("x.safetensors")), "a failed init writes nothing")
    expect_error("missing checkpoint", ["eval", "--checkpoint", w("none.safetensors"),
                                        "--tokens", w("tokens.bin")], "none.safetensors")
    with open(w("model.safetensors"), "rb") as f:
        blob = f.read()
    with open(w("truncated.safetensors"), "wb") as f:
        f.write(blob[: len(blob) // 2])
    expect_error("truncated checkpoint", ["eval", "--checkpoint", w("truncated.safetensors"),
                                          "--tokens", w("tokens.bin")], "truncated.safetensors")
    write_shard(w("badmagic.bin"), [1, 2, 3], magic=1234)
    expect_error("wrong shard magic", ["eval", *score[:2], "--tokens", w("badmagic.bin")],
                 "badmagic.bin")
    write_shard(w("short.bin"), [1] * 20)
    expect_error("shard shorter than B*T+1", ["eval", *score[:2], "--tokens", w("short.bin"),
                                              "--seq-len", "16", "--batch", "2"], "short.bin")
    write_shard(w("oov.bin"), [1] * 10 + [64] + [1] * 30)
    expect_error("token outside the vocabulary", ["eval", *score[:2], "--tokens", w("oov.bin"),
                                                  "--seq-len", "16", "--batch", "2"],
                 "outside the model's vocabulary")

    # A failing grad leaves an existing output untouched.
    before = open(w("grads.safetensors"), "rb").read()
    expect_error("grad on a bad shard", ["grad", *score[:2], "--tokens", w("oov.bin"),
                                         "--seq-len", "16", "--batch", "2", "--out",
                                         w("grads.safetensors")], "oov.bin")
    check(open(w("grads.safetensors"), "rb").read() == before,
          "a failed grad leaves the old output intact")
    expect_error("output into a missing directory",
                 ["grad", *score, "--out", w("missing/dir/grads.safetensors")], "missing/dir")

    check_pack(checks, w, score)
    check_ttt_flags(checks, score)
    check_sliding(checks, score)
    return checks.finish("cli")


if __name__ == "__main__":
    sys.exit(main())
