"""What the parity tests share: their failure type, the model keys of a preset, and running
pgolf with its stderr shown on failure."""
import json
import os
import subprocess

import reference_model as ref

HERE = os.path.dirname(os.path.abspath(__file__))


class Fail(Exception):
    pass


def preset_model_keys(name):
    """The model keys of configs/<name>.json (training keys are left out), and the rest."""
    path = os.path.normpath(os.path.join(HERE, "..", "..", "configs", name + ".json"))
    if not os.path.isfile(path):
        raise Fail(f"{name} config {path} does not exist")
    with open(path) as f:
        obj = json.load(f)
    known = {k: v for k, v in obj.items() if k in ref.DEFAULTS}
    return known, sorted(k for k in obj if k not in ref.DEFAULTS)


def run_cmd(cmd, what, timeout):
    """Runs cmd; on a timeout or a non-zero exit prints pgolf's stderr and raises Fail."""
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Fail(f"{what}: `{' '.join(cmd)}` ran past {timeout} s")
    if r.returncode != 0:
        print(f"---- pgolf stderr ----\n{r.stderr.rstrip()}\n----", flush=True)
        raise Fail(f"{what}: `{' '.join(cmd)}` exited with status {r.returncode}")
    return r
