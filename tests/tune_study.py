#!/usr/bin/python3
"""ctest driver for pipelines/tune/tune.py on small generated PCam sets (32 px, width 4..8, --threads 1).

    tests/tune_study.py CASE WSI_HEATMAP SOURCE_DIR

CASE: study, determinism, resume, pruning, shared, bad-input, failures. Exit 77 (skipped) without Debian's
python3-optuna/python3-matplotlib, except under CI=true, where a missing prerequisite fails.
"""
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

case, cli, src = sys.argv[1], sys.argv[2], Path(sys.argv[3])
TUNE = [sys.executable, str(src / "pipelines" / "tune" / "tune.py")]
SMALL = ["--threads", "1", "--max-patches-per-epoch", "128"]

try:
    import h5py
    import numpy as np
    import optuna  # noqa: F401
    import matplotlib  # noqa: F401
except ImportError as e:
    if os.environ.get("CI") == "true":
        print(f"FAILED (CI=true): {e.name} is not installed (Debian: python3-optuna python3-matplotlib python3-h5py)")
        sys.exit(1)
    print(f"SKIPPED: {e.name} is not installed (Debian: python3-optuna python3-matplotlib python3-h5py)")
    sys.exit(77)


def fail(msg):
    print(f"FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def make_pcam(prefix, n, seed, flip=0.0):
    """PCam layout: NAME_x.h5 "x" N×32×32×3 uint8, NAME_y.h5 "y" N×1×1×1. Tumour patches are
    darker and bluer (a learnable colour signal); `flip` relabels that share at random, which
    caps the reachable AUC."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(np.uint8)
    rng.shuffle(y)
    x = rng.normal(200, 30, (n, 32, 32, 3))
    x[y == 1, :, :, 0] -= 25
    x[y == 1, :, :, 1] -= 40
    if flip:
        y = np.where(rng.random(n) < flip, 1 - y, y).astype(np.uint8)
    with h5py.File(f"{prefix}_x.h5", "w") as f:
        f.create_dataset("x", data=np.clip(x, 0, 255).astype(np.uint8))
    with h5py.File(f"{prefix}_y.h5", "w") as f:
        f.create_dataset("y", data=y.reshape(n, 1, 1, 1))


SPACE = {
    "arch": "cancernet",
    "input_size": 32,
    "width": {"choices": [4, 8]},
    "lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
    "dropout": {"type": "float", "low": 0.0, "high": 0.5},
    "augment": {"type": "float", "low": 0.0, "high": 1.0},
}


def tune(*args, out, check=True, train=(), **kw):
    cmd = [*TUNE, str(work / "train_x.h5"), "--val", str(work / "val_x.h5"), "-o", str(out), "--space", str(space),
           "--wsi-heatmap", cli, "-q", *args, "--", *SMALL, *train]
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        fail(f"tune.py exited {r.returncode}: {r.stdout}{r.stderr}")
    return r


def rows(out):
    with open(out / "trials.csv", newline="") as f:
        return list(csv.DictReader(f))


def train_processes_under(folder):
    """Live `wsi-heatmap train` processes writing under folder (a unique temporary path)."""
    found = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            argv = (p / "cmdline").read_bytes().split(b"\0")
            state = next(ln for ln in (p / "status").read_text().splitlines() if ln.startswith("State:"))
        except (OSError, StopIteration):
            continue
        if "Z" not in state and b"train" in argv and any(str(folder).encode() in a for a in argv):
            found.append(int(p.name))
    return found


work = Path(tempfile.mkdtemp(prefix="wsi-tune."))
space = work / "space.json"
space.write_text(json.dumps(SPACE))
make_pcam(str(work / "train"), 256, 1)
make_pcam(str(work / "val"), 128, 2)


def case_study():
    out = work / "out"
    tune("--trials", "3", "--epochs", "2", "--pruner", "none", out=out)
    r = rows(out)
    if len(r) != 3 or any(x["state"] != "complete" for x in r):
        fail(f"3 complete trials expected in trials.csv: {r}")
    for x in r:
        if not (0 <= float(x["value"]) <= 1) or x["epochs"] != "2" or not x["width"] or not x["lr"]:
            fail(f"a trials.csv row lacks its value, epochs or params: {x}")
    best = max(r, key=lambda x: (float(x["value"]), -int(x["number"])))
    marker = json.loads((out / "best_trial.json").read_text())
    if marker["number"] != int(best["number"]) or f"{marker['value']:.6g}" != best["value"]:
        fail(f"best_trial.json {marker} is not the best row of trials.csv {best}")
    if "<svg" not in (out / "history.svg").read_text():
        fail("history.svg is not an SVG")
    for f in ("best.pt", "best.json", "best.log.csv", "best.curve.svg"):
        if not (out / f).is_file():
            fail(f"missing {f}")
    if list(out.glob("trials/*/model.pt")):
        fail("trial models should be deleted without --keep-models (best.pt is the copy)")
    if list(out.glob("*.tmp-*")):
        fail("a temporary file was left behind")
    ev = subprocess.run([cli, "evaluate", str(work / "val_x.h5"), "-m", str(out / "best.pt"), "-o", str(work / "ev"),
                         "-q", "--threads", "1"], capture_output=True, text=True)
    if ev.returncode != 0:
        fail(f"wsi-heatmap evaluate cannot use best.pt: {ev.stderr}")
    auc = json.loads((work / "ev" / "metrics.json").read_text())
    if abs(auc["auc"] - marker["value"]) > 1e-3:
        fail(f"evaluate's AUC {auc['auc']} is not the best trial's validation AUC {marker['value']}")
    # A rerun with the budget already met runs nothing.
    r2 = tune("--trials", "3", "--epochs", "2", "--pruner", "none", out=out)
    if len(rows(out)) != 3:
        fail(f"a rerun with the budget met added trials: {r2.stdout}")
    print("3 trials, trials.csv, history.svg, best.pt evaluable with the best trial's AUC")


def case_determinism():
    args = ("--trials", "3", "--epochs", "2", "--seed", "7", "--startup-trials", "2", "--pruner", "none")
    a, b = work / "a", work / "b"
    tune(*args, out=a)
    tune(*args, out=b)
    strip = lambda rs: [{k: v for k, v in x.items() if k != "seconds"} for x in rs]  # noqa: E731
    if strip(rows(a)) != strip(rows(b)):
        fail(f"same seed, different trials:\n{(a / 'trials.csv').read_text()}\n{(b / 'trials.csv').read_text()}")
    if len({(x["width"], x["lr"]) for x in rows(a)}) != 3:
        fail("the three trials should have different parameters")
    tune("--trials", "1", "--epochs", "1", "--seed", "8", "--pruner", "none", out=work / "c")
    if rows(work / "c")[0]["lr"] == rows(a)[0]["lr"]:
        fail("another seed drew the same first learning rate")
    print("same seed on one worker: identical trials.csv (values and params); another seed differs")


def case_resume():
    out = work / "out"
    # Trials of 20 epochs (a few seconds each) so that the kill lands mid-trial.
    args = ("--trials", "3", "--epochs", "20", "--pruner", "none")
    cmd = [*TUNE, str(work / "train_x.h5"), "--val", str(work / "val_x.h5"), "-o", str(out), "--space", str(space),
           "--wsi-heatmap", cli, "-q", *args, "--", *SMALL, "--patience", "20"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if (out / "trials.csv").exists() and any(x["state"] == "complete" for x in rows(out)) and \
                (out / "trials" / "trial-0001" / "model.log.csv").exists():
            break
        if proc.poll() is not None:
            fail(f"the tuner ended (exit {proc.returncode}) before it could be killed mid-trial")
        time.sleep(0.1)
    else:
        fail("trial 1 did not start within 240 s")
    if not train_processes_under(out / "trials" / "trial-0001"):
        fail("no train process for trial 1 before the kill")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {x["number"]: x for x in rows(out) if x["state"] == "complete"}
    for _ in range(50):  # the train process follows its tuner (PR_SET_PDEATHSIG)
        if not train_processes_under(out):
            break
        time.sleep(0.1)
    else:
        fail("trial 1's train process outlived the SIGKILLed tuner")
    r = tune(*args, out=out, train=("--patience", "20"))
    after = rows(out)
    done = [x for x in after if x["state"] == "complete"]
    if len(done) != 3:
        fail(f"after the resume, {len(done)} complete trials instead of the budget 3:\n{(out / 'trials.csv').read_text()}")
    for n, x in before.items():
        if after[int(n)] != x:
            fail(f"trial {n} changed across the resume: {x} -> {after[int(n)]}")
    killed = after[1]
    if killed["state"] != "fail" or "died" not in killed["note"]:
        fail(f"the trial running at the kill should be failed (not counted): {killed}")
    if any(x["state"] == "running" for x in after):
        fail(f"a trial is still marked running: {after}")
    print(f"SIGKILL mid-trial; resume: {len(before)} earlier trial(s) kept, killed trial failed, "
          f"{len(done)} complete = budget ({r.stdout.strip()})")


def case_pruning():
    # Labels 30 % flipped cap the validation AUC far below 0.99: the threshold prunes every trial
    # at its first epoch, long before its 40 epochs.
    make_pcam(str(work / "noisy"), 128, 3, flip=0.3)
    out = work / "out"
    cmd = [*TUNE, str(work / "train_x.h5"), "--val", str(work / "noisy_x.h5"), "-o", str(out), "--space", str(space),
           "--wsi-heatmap", cli, "--trials", "2", "--epochs", "40", "--pruner", "threshold", "--prune-below", "0.99",
           "--prune-warmup-epochs", "0", "--", *SMALL, "--patience", "40"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"tune.py exited {r.returncode}: {r.stderr}")
    rs = rows(out)
    if len(rs) != 2 or any(x["state"] != "pruned" for x in rs):
        fail(f"both trials should be pruned: {rs}")
    for x in rs:
        if x["pruned_at_epoch"] != "1":
            fail(f"trial {x['number']} should be pruned at epoch 1: {x}")
        with open(out / "trials" / f"trial-{int(x['number']):04d}" / "model.log.csv") as f:
            epochs = sum(1 for _ in f) - 1
        if epochs >= 40:
            fail(f"trial {x['number']}'s train process ran all 40 epochs after being pruned")
    if train_processes_under(out):
        fail("a pruned trial's train process is still running")
    if (out / "best.pt").exists() or "no best model" not in r.stdout:
        fail(f"no trial completed, so there should be no best model: {r.stdout}")
    print("threshold pruner: both trials pruned at epoch 1, train processes gone, no best model")


def case_shared():
    # Two workers on one output folder and storage: pipelines/tune/tune-array.sbatch as Slurm array
    # tasks 1 and 2 would run it (the script run by bash with Slurm's environment, no scheduler).
    out = work / "out"
    procs = []
    for task in ("1", "2"):
        env = dict(os.environ, SLURM_ARRAY_TASK_ID=task, SLURM_SUBMIT_DIR=str(src), SLURM_CPUS_PER_TASK="1",
                   WSI_HEATMAP=cli, TUNE_ARGS=f"--space {space} --epochs 2 --pruner none --startup-trials 2 -q",
                   TRAIN_ARGS="--max-patches-per-epoch 128")
        cmd = ["bash", str(src / "pipelines" / "tune" / "tune-array.sbatch"), str(work / "train_x.h5"),
               str(work / "val_x.h5"), str(out), "4"]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    for p in procs:
        o, e = p.communicate(timeout=600)
        if p.returncode != 0:
            fail(f"a worker exited {p.returncode}: {o}{e}")
    rs = rows(out)
    if [x["number"] for x in rs] != ["0", "1", "2", "3"] or any(x["state"] != "complete" for x in rs):
        fail(f"two workers should finish exactly the budget of 4 trials:\n{(out / 'trials.csv').read_text()}")
    if len({(x["width"], x["lr"], x["dropout"]) for x in rs}) != 4:
        fail("the workers repeated a trial's parameters")
    import optuna
    study = optuna.load_study(study_name="wsi-heatmap-tune", storage=f"sqlite:///{out / 'study.db'}")
    pids = {t.user_attrs["pid"] for t in study.trials}
    if len(pids) != 2:
        fail(f"the trials should come from both workers, not only {pids}")
    seeds = {t.user_attrs["command"][t.user_attrs["command"].index("--seed") + 1] for t in study.trials}
    if seeds != {"1"}:
        fail(f"every trial should train with the base seed 1 whatever its worker's sampler seed, not {seeds}")
    marker = json.loads((out / "best_trial.json").read_text())
    if marker["number"] != study.best_trial.number:
        fail(f"best_trial.json names trial {marker['number']}, the study's best is {study.best_trial.number}")
    print("two workers, one study: trials 0-3 complete, none repeated, both workers ran trials, best.pt is the best")


def case_bad_input():
    out = work / "out"
    (work / "afile").write_text("x")
    (work / "bad_x.h5").write_text("not HDF5")
    (work / "bad_y.h5").write_text("not HDF5")
    bad_space = work / "bad_space.json"
    bad_space.write_text(json.dumps({"lr": {"type": "float", "low": 1e-3, "high": 1e-2}, "widht": 8}))
    base = [*TUNE, "-o", str(out), "--space", str(space), "--wsi-heatmap", cli, "--epochs", "1"]
    data = [str(work / "train_x.h5"), "--val", str(work / "val_x.h5")]
    cases = [
        ("missing data", [*base, str(work / "missing_x.h5")], 2, "missing_x.h5"),
        ("--trials 0", [*base, *data, "--trials", "0"], 2, "--trials"),
        ("train binary", [*TUNE, *data, "-o", str(out), "--wsi-heatmap", str(work / "nope")], 2, "--wsi-heatmap"),
        ("unknown space key", [*base[:4], "--space", str(bad_space), *base[6:], *data], 2, '"widht"'),
        ("missing space", [*base[:4], "--space", str(work / "none.json"), *base[6:], *data], 2, "none.json"),
        ("unwritable -o", [*TUNE, *data, "-o", str(work / "afile" / "sub"), "--space", str(space),
                           "--wsi-heatmap", cli], 2, "afile"),
        ("tuner-owned train option", [*base, *data, "--", "--out", "x.pt"], 2, "--out"),
        ("space-owned train option", [*base, *data, "--", "--width", "8"], 2, "--width"),
        ("unknown train option", [*base, *data, "--", "--wdith", "8"], 2, "--wdith"),
        ("threshold without level", [*base, *data, "--pruner", "threshold"], 2, "--prune-below"),
        ("bad sampler", [*base, *data, "--sampler", "gp"], 2, "--sampler"),
        ("bad data stops the study", [*base, str(work / "bad_x.h5"), "--trials", "5", "--", *SMALL], 1, "bad_x.h5"),
        ("another study in the folder", [*base, *data, "--study-name", "other"], 2, "--study-name"),
    ]
    for name, cmd, status, needle in cases:
        r = subprocess.run(cmd, capture_output=True, text=True)
        lines = r.stderr.strip().splitlines()
        if r.returncode != status or len(lines) != 1 or needle not in lines[0] or "Traceback" in r.stderr:
            fail(f"{name}: expected exit {status} and one line naming {needle}; got exit {r.returncode}:\n{r.stderr}")
        print(f"{name}: {lines[0]}")
    rs = rows(out)
    if len(rs) != 1 or rs[0]["state"] != "fail":
        fail(f"bad data should stop the study after its first trial, not burn the budget: {rs}")


def case_failures():
    # A stand-in for wsi-heatmap: train --help from the real one, then trials that diverge or die
    # by a signal (out of memory), failures that depend on a trial's values: the study goes on,
    # until --max-failures in a row.
    fake = work / "fake-wsi-heatmap"
    fake.write_text(f"""#!/bin/bash
[ "$2" = --help ] && exec '{cli}' "$@"
n=$(cat '{work}/calls' 2>/dev/null || echo 0); echo $((n + 1)) >'{work}/calls'
if [ "$n" -eq 0 ]; then echo "wsi-heatmap: error: training diverged (loss is not finite) in epoch 1: lower --lr" >&2; exit 1; fi
kill -9 $$
""")
    fake.chmod(0o755)
    out = work / "out"
    cmd = [*TUNE, str(work / "train_x.h5"), "--val", str(work / "val_x.h5"), "-o", str(out), "--space", str(space),
           "--wsi-heatmap", str(fake), "--trials", "5", "--max-failures", "2", "--", *SMALL]
    r = subprocess.run(cmd, capture_output=True, text=True)
    lines = r.stderr.strip().splitlines()
    if r.returncode != 1 or len(lines) != 1 or "2 trials failed in a row" not in lines[0]:
        fail(f"two failed trials in a row should stop the study (exit 1, one line); got {r.returncode}: {r.stderr}")
    rs = rows(out)
    if [x["state"] for x in rs] != ["fail", "fail"] or "diverged" not in rs[0]["note"] or "signal 9" not in rs[1]["note"]:
        fail(f"trials.csv should hold the diverged and the killed trial with their reasons: {rs}")
    print(f"diverged, then killed by a signal: both failed, the study went on, then stopped: {lines[0]}")


try:
    {"failures": case_failures, "study": case_study, "determinism": case_determinism, "resume": case_resume, "pruning": case_pruning,
     "shared": case_shared, "bad-input": case_bad_input}[case]()
finally:
    subprocess.run(["rm", "-rf", str(work)])
