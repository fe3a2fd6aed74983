#!/usr/bin/python3
"""Bayesian hyper-parameter search of `wsi-heatmap train` with Optuna.

    pipelines/tune/tune.py TRAIN_x.h5 --val VAL_x.h5 -o OUT [--trials N] [-- TRAIN OPTIONS...]

Each trial is one `wsi-heatmap train` process in OUT/trials/trial-NNNN/. Its per-epoch validation
AUC is read from model.log.csv while it runs and reported to Optuna; a pruned trial's process is
terminated. The study lives in SQLite (default OUT/study.db), so a killed run resumes and several
workers (Slurm array tasks) can share it. See pipelines/README.md, "Hyper-parameter search".
"""
import argparse
import csv
import ctypes
import fcntl
import json
import logging
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
# `augment` in the space is one factor on these train options' defaults (read from train --help).
AUGMENT_OPTIONS = ("rotation", "zoom", "shift", "stain-jitter", "hue", "saturation", "brightness")
# Train options the tuner sets itself for every trial.
TUNER_OWNED = {"out": "-o", "val": "--val", "seed": "--seed", "epochs": "--epochs", "quiet": "-q", "help": "-h"}
FINISHED = ("COMPLETE", "PRUNED")
STATUS_USAGE, STATUS_DATA = 2, 1


class Stop(Exception):
    """One line for the user and an exit status; raised anywhere, printed once by main()."""

    def __init__(self, message, status=STATUS_USAGE):
        super().__init__(message)
        self.status = status


class Interrupted(Exception):
    pass


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        raise Stop(f"{message} (see --help)")


def parse_args(argv):
    # Everything after `--` goes to every trial's `wsi-heatmap train` unchanged.
    if "--" in argv:
        i = argv.index("--")
        argv, train_args = argv[:i], argv[i + 1:]
    else:
        train_args = []
    p = OneLineParser(
        prog="tune.py",
        usage="%(prog)s DATA [--val VAL] -o OUT [options] [-- TRAIN OPTIONS...]",
        description="Bayesian hyper-parameter search of `wsi-heatmap train` (Optuna). "
        "Options after -- are passed to every trial's train command.",
    )
    p.add_argument("data", help="training set: a PCam *_x.h5, a Kaggle labels CSV or a directory (as train)")
    p.add_argument("--val", help="validation set (as train --val); default: train's random --val-fraction split")
    p.add_argument("-o", "--out", required=True, help="output folder (created)")
    p.add_argument("--space", default=str(HERE / "space.json"), help="search space JSON (default: %(default)s)")
    p.add_argument("--trials", type=int, default=20,
                   help="finished (complete or pruned) trials the study should hold, counted across resumes "
                   "and workers (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=0,
                   help="seconds for this invocation (0 = none); a trial still running then is stopped and "
                   "marked failed, and the next invocation continues the study")
    p.add_argument("--epochs", type=int, default=20, help="train --epochs of each trial (default: %(default)s)")
    p.add_argument("--sampler", default="tpe", choices=["tpe", "random", "cmaes", "qmc"],
                   help="tpe (default), random, cmaes or qmc (Sobol); Optuna 3.1 has no GP sampler")
    p.add_argument("--seed", type=int, default=1,
                   help="seed of the sampler (default: %(default)s); give concurrent workers different seeds")
    p.add_argument("--train-seed", type=int, default=None,
                   help="every trial's train --seed (default: --seed); keep it equal across workers")
    p.add_argument("--startup-trials", type=int, default=10,
                   help="random trials before TPE/CMA-ES model the results (default: %(default)s)")
    p.add_argument("--pruner", default="median", choices=["median", "percentile", "threshold", "none"],
                   help="stop unpromising trials early (default: %(default)s)")
    p.add_argument("--prune-warmup-epochs", type=int, default=2,
                   help="epochs of each trial that are never pruned (default: %(default)s)")
    p.add_argument("--prune-startup-trials", type=int, default=5,
                   help="median/percentile: complete trials before pruning starts (default: %(default)s)")
    p.add_argument("--prune-percentile", type=float, default=25.0,
                   help="percentile: keep trials in the top PERCENT at each epoch (default: %(default)s)")
    p.add_argument("--prune-below", type=float, default=None,
                   help="threshold: prune a trial whose validation AUC is below this (required with threshold)")
    p.add_argument("--storage", help="Optuna storage URL (default: sqlite:///OUT/study.db)")
    p.add_argument("--study-name", default="wsi-heatmap-tune", help="study in the storage (default: %(default)s)")
    p.add_argument("--keep-models", action="store_true",
                   help="keep every trial's model.pt (default: only the best, copied to OUT/best.pt)")
    p.add_argument("--max-failures", type=int, default=3,
                   help="stop after this many failed trials in a row (diverged, out of memory; default: %(default)s)")
    p.add_argument("--heartbeat", type=int, default=60,
                   help="seconds between a running trial's heartbeats; a trial silent for 3x this (its worker "
                   "died) is marked failed (default: %(default)s)")
    p.add_argument("--wsi-heatmap", dest="exe",
                   help="the program (default: $WSI_HEATMAP, else build/wsi-heatmap of this repository, "
                   "else wsi-heatmap on PATH)")
    p.add_argument("-q", "--quiet", action="store_true", help="no line per trial")
    a = p.parse_args(argv)
    a.train_args = train_args
    checks = [
        (a.trials >= 1, f"--trials must be at least 1, not {a.trials}"),
        (a.timeout >= 0 and math.isfinite(a.timeout), f"--timeout must be 0 (none) or more seconds, not {a.timeout}"),
        (a.epochs >= 1, f"--epochs must be at least 1, not {a.epochs}"),
        (a.startup_trials >= 0, f"--startup-trials must be 0 or more, not {a.startup_trials}"),
        (a.prune_warmup_epochs >= 0, f"--prune-warmup-epochs must be 0 or more, not {a.prune_warmup_epochs}"),
        (a.prune_startup_trials >= 0, f"--prune-startup-trials must be 0 or more, not {a.prune_startup_trials}"),
        (0 < a.prune_percentile < 100, f"--prune-percentile must be in (0, 100), not {a.prune_percentile}"),
        (a.max_failures >= 1, f"--max-failures must be at least 1, not {a.max_failures}"),
        (a.heartbeat >= 1, f"--heartbeat must be at least 1 second, not {a.heartbeat}"),
        (a.seed >= 0, f"--seed must be 0 or more, not {a.seed}"),
        (a.train_seed is None or a.train_seed >= 0, f"--train-seed must be 0 or more, not {a.train_seed}"),
    ]
    for ok, message in checks:
        if not ok:
            raise Stop(message)
    if a.pruner == "threshold":
        if a.prune_below is None:
            raise Stop("--pruner threshold needs --prune-below AUC (e.g. 0.7)")
        if not 0 < a.prune_below <= 1:
            raise Stop(f"--prune-below is a validation AUC in (0, 1], not {a.prune_below}")
    elif a.prune_below is not None:
        raise Stop("--prune-below is for --pruner threshold; add --pruner threshold or leave it out")
    if a.train_seed is None:
        a.train_seed = a.seed
    return a


# ---- the train program -----------------------------------------------------------------------

def find_exe(given):
    if given:
        where = "--wsi-heatmap"
        candidates = [given]
    elif os.environ.get("WSI_HEATMAP"):
        where = "$WSI_HEATMAP"
        candidates = [os.environ["WSI_HEATMAP"]]
    else:
        built = HERE.parent.parent / "build" / "wsi-heatmap"
        if built.is_file() and os.access(built, os.X_OK):
            return str(built)
        on_path = shutil.which("wsi-heatmap")
        if on_path:
            return on_path
        raise Stop(f"wsi-heatmap not found ({built} nor on PATH): build it (cmake --build build) or give --wsi-heatmap PATH")
    path = candidates[0]
    resolved = shutil.which(path) if os.sep not in path else (path if os.access(path, os.X_OK) and os.path.isfile(path) else None)
    if not resolved:
        raise Stop(f"{where} {path}: not an executable file; give the path of wsi-heatmap")
    return resolved


def train_options(exe):
    """train's options from `train --help`: {long name: (short or None, type or None for a flag, default)}."""
    try:
        r = subprocess.run([exe, "train", "--help"], capture_output=True, text=True, timeout=120)
    except OSError as e:
        raise Stop(f"{exe}: cannot run it ({e.strerror}); give the path of wsi-heatmap with --wsi-heatmap")
    except subprocess.TimeoutExpired:
        raise Stop(f"{exe} train --help did not answer within 120 s; is it wsi-heatmap?")
    opts = {}
    for line in r.stdout.splitlines():
        m = re.match(r"\s+(?:-(\w),)?--([a-z][a-z0-9-]*)(?: ([A-Z]+)(\S*))?", line)
        if not m:
            continue
        short, name, typ, rest = m.groups()
        if typ not in (None, "TEXT", "INT", "UINT", "FLOAT"):
            typ, rest = None, ""
        default = rest.rsplit("=", 1)[1] if rest and "=" in rest else None
        opts[name] = (short, typ, default)
    if r.returncode != 0 or "epochs" not in opts:
        raise Stop(f"{exe} train --help does not list train's options; is {exe} wsi-heatmap (built with train)?")
    return opts


# ---- the search space ------------------------------------------------------------------------

def _no_duplicates(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise ValueError(f'"{k}" appears twice')
        seen[k] = v
    return seen


def load_space(path, opts):
    """The space as an ordered {param: spec}; spec["kind"] is fixed, float, int or choices."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise Stop(f"--space {path}: {e.strerror}; give a search-space JSON file (see pipelines/tune/space.json)")
    try:
        raw = json.loads(text, object_pairs_hook=_no_duplicates)
    except ValueError as e:
        raise Stop(f"--space {path}: not valid JSON ({e})")
    if not isinstance(raw, dict) or not raw:
        raise Stop(f'--space {path}: must be a JSON object of train options, e.g. {{"lr": {{"type": "float", "low": 1e-4, "high": 1e-2, "log": true}}}}')
    space = {}
    for key, spec in raw.items():
        name, opt = key.replace("-", "_"), key.replace("_", "-")
        where = f'--space {path}: "{key}"'
        if name in space:
            raise Stop(f"{where} appears twice")
        if opt == "augment":
            typ = "FLOAT"
        elif opt not in opts:
            raise Stop(f'{where} is not a `wsi-heatmap train` option (see train --help) nor "augment"')
        elif opt in TUNER_OWNED or opt == "no-augment" and "augment" in (k.replace("_", "-") for k in raw):
            raise Stop(f"{where} is set by the tuner itself; leave it out of the space")
        else:
            typ = opts[opt][1]
        is_value = (lambda v: isinstance(v, bool)) if typ is None else (
            (lambda v: isinstance(v, int) and not isinstance(v, bool)) if typ in ("INT", "UINT") else
            (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)) if typ == "FLOAT" else
            (lambda v: isinstance(v, str)))
        kind_word = {None: "true or false (a flag)", "INT": "an integer", "UINT": "an integer", "FLOAT": "a number",
                     "TEXT": "a string"}[typ]
        entry = {"option": opt}
        if not isinstance(spec, dict):
            if not is_value(spec):
                raise Stop(f"{where}: a fixed value must be {kind_word}, not {json.dumps(spec)}")
            entry.update(kind="fixed", value=spec)
        else:
            unknown = set(spec) - {"type", "low", "high", "log", "step", "choices", "if"}
            if unknown:
                raise Stop(f"{where}: unknown field {sorted(unknown)[0]!r}; use type/low/high/log/step, choices, if")
            if "choices" in spec:
                if set(spec) - {"choices", "if"}:
                    raise Stop(f'{where}: "choices" goes alone (with an optional "if"), not with type/low/high')
                ch = spec["choices"]
                if not isinstance(ch, list) or not ch or not all(is_value(v) for v in ch):
                    raise Stop(f'{where}: "choices" must be a non-empty list of values, each {kind_word}')
                if len(set(map(json.dumps, ch))) != len(ch):
                    raise Stop(f'{where}: "choices" lists a value twice')
                entry.update(kind="choices", choices=ch)
            else:
                kind = spec.get("type")
                if kind not in ("float", "int"):
                    raise Stop(f'{where}: give "type": "float" or "int" with "low" and "high", or "choices": [...]')
                if typ not in ("FLOAT", "INT", "UINT") or (kind == "float" and typ != "FLOAT"):
                    raise Stop(f'{where}: a {kind} range does not fit this option ({kind_word}); use "choices"')
                low, high, log, step = spec.get("low"), spec.get("high"), spec.get("log", False), spec.get("step")
                num = (lambda v: isinstance(v, int) and not isinstance(v, bool)) if kind == "int" else is_value
                if not num(low) or not num(high) or not low < high:
                    raise Stop(f'{where}: "low" and "high" must be {"integers" if kind == "int" else "numbers"} with low < high')
                if not isinstance(log, bool) or (log and low <= 0):
                    raise Stop(f'{where}: "log" must be true or false, and a log range needs low > 0')
                if step is not None and (not num(step) or step <= 0 or log):
                    raise Stop(f'{where}: "step" must be a positive {kind} and cannot go with "log"')
                if opt == "augment" and low < 0:
                    raise Stop(f"{where}: the augmentation factor must be 0 or more")
                entry.update(kind=kind, low=low, high=high, log=log, step=step)
            cond = spec.get("if")
            if cond is not None:
                if not isinstance(cond, dict) or not cond:
                    raise Stop(f'{where}: "if" must be an object such as {{"arch": "resnet"}}')
                for k in cond:
                    if k.replace("-", "_") not in space:
                        raise Stop(f'{where}: "if" names "{k}", which must come earlier in the space')
                entry["if"] = {k.replace("-", "_"): v for k, v in cond.items()}
        if opt == "augment" and entry["kind"] == "fixed" and entry["value"] < 0:
            raise Stop(f"{where}: the augmentation factor must be 0 or more")
        if opt == "augment" and entry["kind"] == "choices" and min(entry["choices"]) < 0:
            raise Stop(f"{where}: the augmentation factor must be 0 or more")
        space[name] = entry
    return space


def sample(trial, space):
    """Every parameter's value for this trial (fixed ones included, conditional ones left out)."""
    values = {}
    for name, s in space.items():
        if any(values.get(k) != v for k, v in s.get("if", {}).items()):
            continue
        if s["kind"] == "fixed":
            values[name] = s["value"]
        elif s["kind"] == "choices":
            values[name] = trial.suggest_categorical(name, s["choices"])
        elif s["kind"] == "float":
            values[name] = trial.suggest_float(name, s["low"], s["high"], log=s["log"], step=s["step"])
        else:
            values[name] = trial.suggest_int(name, s["low"], s["high"], log=s["log"], step=s["step"] or 1)
    return values


def fmt(v):
    return repr(v) if isinstance(v, float) else str(v)


def train_args_for(values, space, opts):
    args = []
    for name, v in values.items():
        opt = space[name]["option"]
        if opt == "augment":
            for a in AUGMENT_OPTIONS:
                strength = float(opts[a][2]) * v
                if a == "rotation":
                    strength = min(strength, 180.0)  # ±180° already covers every angle
                args += [f"--{a}", fmt(round(strength, 10))]
        elif isinstance(v, bool):
            if v:
                args.append(f"--{opt}")
        else:
            args += [f"--{opt}", fmt(v)]
    return args


def check_train_args(train_args, space, opts):
    shorts = {s: n for n, (s, _, _) in opts.items() if s}
    owned = set(TUNER_OWNED) | {s["option"] for s in space.values()}
    if "augment" in owned:
        owned |= set(AUGMENT_OPTIONS) | {"no-augment"}
    for tok in train_args:
        if not tok.startswith("-") or re.fullmatch(r"-[0-9.].*", tok):
            continue
        name = tok[2:].split("=", 1)[0] if tok.startswith("--") else shorts.get(tok[1:2], tok[1:])
        if name not in opts:
            raise Stop(f"{tok} after --: not a `wsi-heatmap train` option (see {Path(sys.argv[0]).name} --help and train --help)")
        if name in TUNER_OWNED:
            raise Stop(f"{tok} after --: the tuner sets it for each trial; use the tuner's own option (--epochs, --train-seed, --val)")
        if name in owned:
            raise Stop(f"{tok} after --: the search space sets it ({'augment scales train defaults' if name in AUGMENT_OPTIONS or name == 'no-augment' else 'tuned or fixed there'}); remove it here or from --space")


# ---- one trial -------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent(parent):
    def preexec():
        _libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: a killed tuner takes its train process along
        if os.getppid() != parent:
            os._exit(1)
    return preexec


def stop_process(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def read_log(path):
    """[(epoch, val_auc)] from train's OUT.log.csv (rewritten whole, by rename, after each epoch)."""
    try:
        with open(path, newline="") as f:
            return [(int(r["epoch"]), float(r["val_auc"])) for r in csv.DictReader(f)]
    except (OSError, KeyError, ValueError):
        return []


def train_failure(log_path):
    try:
        lines = [ln.strip() for ln in Path(log_path).read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no output"
    errors = [ln for ln in lines if "error:" in ln]
    return (errors or lines or ["no output"])[-1]


# Failures that depend on the trial's own values: the study goes on (up to --max-failures in a row).
TRIAL_SPECIFIC = re.compile(r"diverged|not finite|bad_alloc|out of memory|cannot allocate", re.I)


class Tuner:
    def __init__(self, a, exe, opts, space, optuna):
        self.a, self.exe, self.opts, self.space, self.optuna = a, exe, opts, space, optuna
        self.out = Path(a.out)
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.deadline = time.monotonic() + a.timeout if a.timeout > 0 else None
        self.written = None

    # -- study bookkeeping
    def study_config(self):
        return {
            "data": str(Path(self.a.data).resolve()),
            "val": str(Path(self.a.val).resolve()) if self.a.val else None,
            "space": {k: {f: v for f, v in s.items()} for k, s in self.space.items()},
            "epochs": self.a.epochs,
            "train_args": _identity_args(self.a.train_args),
        }

    def reap_dead_local_trials(self, study):
        """Running trials of a dead tuner on this host are failed at once (elsewhere the heartbeat does it)."""
        TrialState = self.optuna.trial.TrialState
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            host, pid = t.user_attrs.get("host"), t.user_attrs.get("pid")
            if host != self.host or not pid or pid == self.pid or _tuner_alive(pid):
                continue
            try:
                study._storage.set_trial_user_attr(t._trial_id, "note", "its tuner died (killed?) while it ran")
                study.tell(t.number, state=TrialState.FAIL)
            except (RuntimeError, ValueError):
                continue  # another worker got there first
            if not self.a.keep_models:
                (self.out / "trials" / f"trial-{t.number:04d}" / "model.pt").unlink(missing_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.optuna.storages.fail_stale_trials(study)

    def counts(self, study):
        states = [t.state.name for t in study.get_trials(deepcopy=False)]
        return sum(s in FINISHED for s in states), states.count("RUNNING"), len(states)

    # -- the run
    def run(self, study):
        a = self.a
        failures_in_a_row = 0
        waiting_said = False
        while True:
            # Counting and asking under the output folder's lock: workers sharing it never overshoot --trials.
            with self.lock():
                self.reap_dead_local_trials(study)
                finished, running, _ = self.counts(study)
                if finished >= a.trials:
                    return f"{finished} finished trials (budget --trials {a.trials})"
                if self.deadline is not None and time.monotonic() >= self.deadline:
                    return (f"--timeout {a.timeout:g} s passed with {finished} of {a.trials} trials finished; "
                            "run the same command again to continue")
                trial = None
                if finished + running < a.trials:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # "heartbeat is meant for optimize()": we beat ourselves
                        trial = study.ask()
                    study._storage.record_heartbeat(trial._trial_id)
                    trial.set_user_attr("host", self.host)
                    trial.set_user_attr("pid", self.pid)
            if trial is None:
                # The rest of the budget is being spent by other workers: wait for them (or for their heartbeat to stop).
                if not waiting_said and not a.quiet:
                    print(f"waiting for {running} trial(s) running elsewhere", flush=True)
                    waiting_said = True
                time.sleep(min(5.0, a.heartbeat))
                continue
            waiting_said = False
            state = self.one_trial(study, trial)
            failures_in_a_row = failures_in_a_row + 1 if state == "FAIL" else 0
            if failures_in_a_row >= a.max_failures:
                raise Stop(f"{failures_in_a_row} trials failed in a row (see the note column of {self.out / 'trials.csv'}); "
                           "narrow the space (--space) or raise --max-failures", STATUS_DATA)

    def one_trial(self, study, trial):
        a, optuna = self.a, self.optuna
        TrialState = optuna.trial.TrialState
        storage = study._storage
        values = sample(trial, self.space)
        tdir = self.out / "trials" / f"trial-{trial.number:04d}"
        tdir.mkdir(parents=True, exist_ok=True)
        model = tdir / "model.pt"
        # Absolute paths: best_trial.json's train_command reproduces the trial from any folder.
        cmd = [self.exe, "train", os.path.abspath(a.data), "-o", str(model.resolve()), "--epochs", str(a.epochs),
               "--seed", str(a.train_seed), "-q"]
        if a.val:
            cmd += ["--val", os.path.abspath(a.val)]
        if not any(t == "--name" or t.startswith("--name=") for t in a.train_args):
            cmd += ["--name", f"trial-{trial.number:04d}"]
        cmd += train_args_for(values, self.space, self.opts) + a.train_args
        trial.set_user_attr("command", cmd)
        log_path, csv_path = tdir / "train.log", tdir / "model.log.csv"
        started = time.monotonic()
        reported = []
        outcome, note = None, None
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, preexec_fn=_die_with_parent(self.pid))
        try:
            last_beat, last_stat = time.monotonic(), None
            while outcome is None:
                done = proc.poll() is not None
                st = _stat(csv_path)
                if st != last_stat or done:
                    last_stat = st
                    for epoch, auc in read_log(csv_path)[len(reported):]:
                        reported.append((epoch, auc))
                        trial.report(auc, epoch)
                        if trial.should_prune():
                            outcome = "PRUNED"
                            break
                if outcome or done:
                    break
                if self.deadline is not None and time.monotonic() >= self.deadline:
                    outcome, note = "FAIL", f"stopped at --timeout {a.timeout:g} s"
                    break
                if time.monotonic() - last_beat >= a.heartbeat:
                    storage.record_heartbeat(trial._trial_id)
                    last_beat = time.monotonic()
                time.sleep(0.2)
        except BaseException:  # interrupted (SIGTERM, Ctrl-C): the trial is not counted, a resume redoes it
            stop_process(proc)
            trial.set_user_attr("note", "interrupted")
            study.tell(trial, state=TrialState.FAIL)
            self.write_outputs(study)
            raise
        stop_process(proc)
        rc = proc.returncode
        fatal = None
        if outcome is None:
            if rc == 0 and reported and all(math.isfinite(v) for _, v in reported):
                outcome = "COMPLETE"
            elif rc == 0:
                fatal = Stop(f"trial {trial.number}: train wrote no finite validation AUC to {csv_path}; "
                             "does the validation set hold both classes?", STATUS_DATA)
            elif rc < 0:
                note = f"train was killed by signal {-rc} (out of memory?)"
            else:
                reason = train_failure(log_path)
                note = f"train failed (exit {rc}): {reason}"
                if not TRIAL_SPECIFIC.search(reason):
                    # A refused command line or unreadable data fails every trial alike: stop now.
                    fatal = Stop(f"trial {trial.number}: `wsi-heatmap train` failed (exit {rc}): {reason} "
                                 f"-- every trial would fail alike, so the study stops (full log: {log_path})",
                                 STATUS_USAGE if rc == 2 else STATUS_DATA)
            outcome = outcome or "FAIL"
        if note:
            trial.set_user_attr("note", note)
        trial.set_user_attr("seconds", round(time.monotonic() - started, 1))
        if reported:
            best_epoch, best_auc = max(reported, key=lambda r: (r[1], -r[0]))
            trial.set_user_attr("best_epoch", best_epoch)
        if outcome == "COMPLETE":
            study.tell(trial, best_auc)
            self.keep_if_best(trial.number, best_auc, tdir, values, cmd)
        else:
            study.tell(trial, state=getattr(TrialState, outcome))
        if not a.keep_models:
            model.unlink(missing_ok=True)
        self.write_outputs(study)
        if not a.quiet:
            shown = " ".join(f"{k}={fmt(v) if not isinstance(v, float) else f'{v:.4g}'}" for k, v in values.items()
                             if self.space[k]["kind"] != "fixed")
            seconds = time.monotonic() - started
            if outcome == "COMPLETE":
                what = f"val AUC {best_auc:.4f} (epoch {best_epoch})"
            elif outcome == "PRUNED":
                what = f"pruned at epoch {reported[-1][0]} (val AUC {reported[-1][1]:.4f})"
            else:
                what = f"failed: {note}"
            print(f"trial {trial.number}: {what}, {seconds:.1f} s; {shown}", flush=True)
        if fatal:
            raise fatal
        return outcome

    # -- outputs
    def lock(self):
        f = open(self.out / ".tune.lock", "w")
        fcntl.flock(f, fcntl.LOCK_EX)
        return f

    def keep_if_best(self, number, value, tdir, values, cmd):
        """Copies the trial's model to OUT/best.* when it beats the best so far (any worker's)."""
        with self.lock():
            marker = self.out / "best_trial.json"
            try:
                old = json.loads(marker.read_text())
                if (old["value"], -old["number"]) >= (value, -number):
                    return
            except (OSError, ValueError, KeyError):
                pass
            tmp = f".tmp-{self.pid}"
            pairs = [(tdir / f"model{suffix}", self.out / f"best{suffix}")
                     for suffix in (".pt", ".json", ".log.csv", ".curve.svg")]
            for src, dst in pairs:
                shutil.copyfile(src, str(dst) + tmp)
            for _, dst in pairs:
                os.replace(str(dst) + tmp, dst)
            _write_atomic(marker, json.dumps({"number": number, "value": value, "params": values,
                                              "train_command": cmd}, indent=2) + "\n", tmp)

    def write_outputs(self, study):
        with self.lock():
            trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
            seen = [(t.number, t.state, t.value, len(t.intermediate_values), tuple(t.user_attrs.items())) for t in trials]
            if seen == self.written:  # unchanged since this process wrote them (the plot costs ~0.5 s)
                return
            self.written = seen
            names = [k for k, s in self.space.items() if s["kind"] != "fixed"]
            names += sorted({p for t in trials for p in t.params} - set(names))
            tmp = f".tmp-{self.pid}"
            rows = [["number", "state", "value", "best_epoch", "epochs", "pruned_at_epoch", "seconds", *names, "note"]]
            for t in trials:
                rows.append([
                    t.number, t.state.name.lower(), "" if t.value is None else f"{t.value:.6g}",
                    t.user_attrs.get("best_epoch", ""), len(t.intermediate_values),
                    t.last_step if t.state.name == "PRUNED" and t.last_step is not None else "",
                    t.user_attrs.get("seconds", ""),
                    *[fmt(t.params[n]) if n in t.params else "" for n in names],
                    t.user_attrs.get("note", ""),
                ])
            path = self.out / "trials.csv"
            with open(str(path) + tmp, "w", newline="") as f:
                csv.writer(f, lineterminator="\n").writerows(rows)
            os.replace(str(path) + tmp, path)
            plot_history(trials, self.out / "history.svg", tmp, self.a.epochs)


def _identity_args(args):
    """The train options that define the objective: --threads and --name may differ between workers."""
    out, skip = [], False
    for tok in args:
        if skip:
            skip = False
        elif tok in ("--threads", "--name"):
            skip = True
        elif not tok.startswith(("--threads=", "--name=")):
            out.append(tok)
    return out


def _stat(path):
    try:
        s = os.stat(path)
        return (s.st_mtime_ns, s.st_size, s.st_ino)
    except OSError:
        return None


def _tuner_alive(pid):
    try:
        return b"tune" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _write_atomic(path, text, tmp):
    with open(str(path) + tmp, "w") as f:
        f.write(text)
    os.replace(str(path) + tmp, path)


def plot_history(trials, path, tmp, epochs):
    """Two panels: each trial's value with the best so far, and every trial's validation AUC per epoch."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    done = [t for t in trials if t.state.name == "COMPLETE"]
    pruned = [t for t in trials if t.state.name == "PRUNED" and t.value is not None]
    ax1.scatter([t.number for t in done], [t.value for t in done], color="#2c7fb8", label="complete", zorder=3)
    ax1.scatter([t.number for t in pruned], [t.value for t in pruned], color="#999999", marker="x",
                label="pruned (AUC when stopped)", zorder=3)
    best, xs, ys = -math.inf, [], []
    for t in trials:
        if t.state.name == "COMPLETE":
            best = max(best, t.value)
        if best > -math.inf:
            xs.append(t.number)
            ys.append(best)
    ax1.step(xs, ys, where="post", color="#d95f0e", label="best so far")
    ax1.set(title="Optimisation history", xlabel="trial", ylabel="best validation AUC")
    ax1.legend(loc="lower right", fontsize=8)
    for t in trials:
        steps = sorted(t.intermediate_values.items())
        if not steps:
            continue
        style = {"COMPLETE": dict(color="#2c7fb8", alpha=0.8), "PRUNED": dict(color="#999999", alpha=0.6, ls="--")}
        ax2.plot([s for s, _ in steps], [v for _, v in steps], lw=1,
                 **style.get(t.state.name, dict(color="#cc0000", alpha=0.5, ls=":")))
    ax2.set(title="Validation AUC per epoch (grey dashed: pruned)", xlabel="epoch", ylabel="validation AUC",
            xlim=(1, max(2, epochs)))
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    fig.tight_layout()
    fig.savefig(str(path) + tmp, format="svg", metadata={"Date": None})
    plt.close(fig)
    os.replace(str(path) + tmp, path)


# ---- main ------------------------------------------------------------------------------------

def open_study(a, optuna, out, config):
    url = a.storage or f"sqlite:///{(out / 'study.db').resolve()}"
    if "://" not in url:
        raise Stop(f"--storage {url}: give a database URL such as sqlite:///DIR/study.db")
    if url.startswith("sqlite:///"):
        db = Path(url[len("sqlite:///"):])
        if not db.parent.is_dir():
            raise Stop(f"--storage {url}: the folder {db.parent} does not exist; create it first")
    engine = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    try:
        storage = optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=a.heartbeat,
                                             grace_period=3 * a.heartbeat)
        sampler = make_sampler(a, optuna, 0)
        study = optuna.create_study(storage=storage, study_name=a.study_name, direction="maximize",
                                    sampler=sampler, pruner=make_pruner(a, optuna), load_if_exists=True)
    except Exception as e:  # SQLAlchemy/driver errors: one line, not a traceback
        raise Stop(f"--storage {url}: cannot open the study ({type(e).__name__}: {str(e).splitlines()[0]})", STATUS_DATA)
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise Stop(f"--storage {url}: study {a.study_name!r} minimises; use another --study-name")
    old = study.user_attrs.get("config")
    if old is None:
        study.set_user_attr("config", config)
    elif old != config:
        diff = [k for k in config if old.get(k) != config[k]]
        raise Stop(f"--storage {url}: study {a.study_name!r} was started with another {'/'.join(diff)}; "
                   "resume it with the same data, --val, --space, --epochs and train options, or use another "
                   "--study-name or -o")
    # A resumed study must not replay the first run's random draws: seed by what is already there.
    study.sampler = make_sampler(a, optuna, len(study.get_trials(deepcopy=False)))
    return study, url


def make_sampler(a, optuna, existing):
    seed = (a.seed * 1_000_003 + existing) % 2**32
    s = optuna.samplers
    if a.sampler == "tpe":
        return s.TPESampler(seed=seed, n_startup_trials=a.startup_trials)
    if a.sampler == "random":
        return s.RandomSampler(seed=seed)
    if a.sampler == "cmaes":  # categorical parameters are drawn at random (CMA-ES models numbers only)
        return s.CmaEsSampler(seed=seed, n_startup_trials=a.startup_trials, warn_independent_sampling=False)
    return s.QMCSampler(seed=a.seed, warn_independent_sampling=False)  # one Sobol sequence for the whole study


def make_pruner(a, optuna):
    p = optuna.pruners
    warm = a.prune_warmup_epochs + 1  # steps are epochs (1-based); Optuna prunes from step n_warmup_steps on
    if a.pruner == "median":
        return p.MedianPruner(n_startup_trials=a.prune_startup_trials, n_warmup_steps=warm)
    if a.pruner == "percentile":
        return p.PercentilePruner(a.prune_percentile, n_startup_trials=a.prune_startup_trials, n_warmup_steps=warm)
    if a.pruner == "threshold":
        return p.ThresholdPruner(lower=a.prune_below, n_warmup_steps=warm)
    return p.NopPruner()


def main(argv):
    a = parse_args(argv)
    exe = find_exe(a.exe)
    opts = train_options(exe)
    space = load_space(a.space, opts)
    check_train_args(a.train_args, space, opts)
    for what, path in (("DATA", a.data), ("--val", a.val)):
        if path is not None and not os.path.exists(path):
            raise Stop(f"{what} {path}: no such file or directory; give a PCam *_x.h5 file, a Kaggle labels CSV or a directory")
    out = Path(a.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise Stop(f"-o {out}: cannot create the folder ({e.strerror}); choose another")
    if not os.access(out, os.W_OK | os.X_OK):
        raise Stop(f"-o {out}: the folder is not writable; fix its permissions or choose another")
    # Library chatter (matplotlib's first-run font cache, Optuna's notes) would break the one-line
    # error contract on stderr; trials.csv and the per-trial lines say what happened.
    logging.getLogger("matplotlib").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="optuna")
    try:
        import optuna
        import matplotlib  # noqa: F401  (the plot; fail before the first trial, not after it)
    except ImportError as e:
        raise Stop(f"{e.name} is not installed for {sys.executable} (Debian: apt-get install python3-optuna python3-matplotlib)", STATUS_DATA)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    tuner = Tuner(a, exe, opts, space, optuna)
    with tuner.lock():  # workers starting together would race to create the SQLite schema
        # One study per folder: trials/trial-NNNN and best.* of two studies would overwrite each other.
        marker = out / ".tune-study"
        if marker.exists() and marker.read_text().strip() != a.study_name:
            raise Stop(f"-o {out} holds study {marker.read_text().strip()!r}, not --study-name {a.study_name!r}; "
                       "use another -o for another study")
        study, url = open_study(a, optuna, out, tuner.study_config())
        if not marker.exists():
            _write_atomic(marker, a.study_name + "\n", f".tmp-{os.getpid()}")
    finished, _, total = tuner.counts(study)
    if not a.quiet:
        print(f"study {a.study_name!r} in {url}: {finished} of {a.trials} trials finished"
              f"{f' ({total} recorded)' if total else ''}; sampler {a.sampler}, pruner {a.pruner}", flush=True)
    if total:
        with tuner.lock():
            tuner.reap_dead_local_trials(study)
        tuner.write_outputs(study)
    why = tuner.run(study)
    tuner.write_outputs(study)
    if not a.quiet:
        try:
            b = study.best_trial
            print(f"{why}. Best: trial {b.number}, val AUC {b.value:.4f} -> {out / 'best.pt'}", flush=True)
        except ValueError:
            print(f"{why}. No trial completed (all pruned or failed), so there is no best model", flush=True)
    return 0


def _on_signal(signum, _frame):
    raise Interrupted(signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        sys.exit(main(sys.argv[1:]))
    except Stop as e:
        print(f"tune.py: error: {e}", file=sys.stderr)
        sys.exit(e.status)
    except (KeyboardInterrupt, Interrupted) as e:
        signum = e.args[0] if isinstance(e, Interrupted) else signal.SIGINT
        print(f"tune.py: interrupted ({signal.Signals(signum).name}); the running trial is marked failed, "
              "run the same command to resume", file=sys.stderr)
        sys.exit(128 + signum)
    except Exception as e:  # a bug or an unforeseen storage error: one line; TUNE_DEBUG=1 for the traceback
        if os.environ.get("TUNE_DEBUG"):
            raise
        first = (str(e).splitlines() or [""])[0]
        print(f"tune.py: error: unexpected {type(e).__name__}: {first} (rerun with TUNE_DEBUG=1 for the traceback)",
              file=sys.stderr)
        sys.exit(1)
