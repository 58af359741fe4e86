"""Adversarial harness (issue 16): feed a few hundred hostile scenarios to ``simdml
validate`` and count how each ends. Not a test: a measurement, run on two trees.

    PYTHONPATH=. python benchmarks/adversarial.py

Each input is a TOML file: one key of a small scenario set to a hostile value (a
400-digit integer, 5e-324, 1e308, 2**31 - 1, a 1 MB string, a nested list, ...), plus
the specific cases of the issue. "Clean" is exit 0, or exit 2 with one line on stderr;
anything else is a traceback (exit 1, an exception escaping ``main``); an input still
running after TIMEOUT seconds is a hang. The process runs under a memory cap, so that
an input that would eat the machine ends in MemoryError (a traceback) instead.
"""
import contextlib
import io
import json
import resource
import signal
import sys
import tempfile
from pathlib import Path

TIMEOUT = 20           # s per input
MEMORY_CAP = 3 * 2**30  # bytes of address space for this process
KEYS = ["cluster.workers", "cluster.speed", "cluster.server_speed", "cluster.jitter",
        "cluster.slowdown", "network.latency", "network.bandwidth", "network.loss",
        "faults.mttr", "faults.checkpoint_every", "data.n_samples", "data.n_features",
        "data.n_classes", "data.class_sep", "data.test_size", "data.alpha", "data.noise",
        "model.lr", "model.l2", "model.n_iter", "strategy.lr", "strategy.batch_size",
        "stop.rounds", "stop.time", "stop.wall_time", "seed", "eval_every"]
VALUES = [int("9" * 400), 5e-324, 1e-300, 1e308, 1e160, 2**31 - 1, 10**20, -1, "x" * 1_000_000,
          [[[1]]], [1e308, 1e308], 0]
SPECIFIC = [
    '[data]\ndataset = "synthetic"\nclass_sep = 1e160',
    '[model]\nclass_weight = {0 = inf}', '[model]\nclass_weight = {"99" = 5}',
    '[model]\nclass_weight = {0 = 0, 1 = 0, 2 = 0}',
    '[data]\nrebalance = true\n[cluster]\nworkers = 50',
    '[data]\ndataset = "synthetic"\nn_samples = 4\nn_classes = 4',
    '[data]\ndataset = "synthetic"\nweights = [1e-9, 1]\n[imbalance]\nmethod = "undersample"',
    '[data]\ndataset = "synthetic"\nweights = [1e308, 1e308]',
    '[cluster]\nspeed = 1e-300\nslowdown = 1e300',
    '[cluster]\ncompute_time = "lognormal"\njitter = 1e300',
    '[cluster]\ncompute_time = "pareto"\njitter = 1e-300',
    '[model]\nkind = "forest"\nn_estimators = 1000000000\n[strategy]\nkind = "local_fusion"',
    "x = " + "[" * 500 + "]" * 500,
]


def _toml(value) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(map(_toml, value)) + "]"
    return repr(value)


def inputs():
    for key in KEYS:
        for value in VALUES:
            *section, leaf = key.split(".")
            head = f"[{section[0]}]\n" if section else ""
            yield f"{key}={str(value)[:20]}", f"{head}{leaf} = {_toml(value)}\n[stop]\nrounds = 3" \
                if section != ["stop"] else f"{head}{leaf} = {_toml(value)}"
    for i, text in enumerate(SPECIFIC):
        yield f"specific[{i}]", text


def _timeout(signum, frame):
    raise TimeoutError


def main() -> dict:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    signal.signal(signal.SIGALRM, _timeout)
    from simdml.cli import main as simdml
    counts = {"tried": 0, "clean": 0, "traceback": 0, "hang": 0}
    bad = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in inputs():
            path = Path(tmp) / "s.toml"
            path.write_text(text)
            err = io.StringIO()
            counts["tried"] += 1
            signal.alarm(TIMEOUT)
            try:
                with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                    code = simdml(["validate", str(path)])
                outcome = "clean" if code == 0 or (code == 2 and err.getvalue().count("\n") == 1) \
                    else "traceback"
            except TimeoutError:
                outcome = "hang"
            except BaseException:  # MemoryError, RecursionError, SystemExit ...: not clean
                outcome = "traceback"
            finally:
                signal.alarm(0)
            counts[outcome] += 1
            if outcome != "clean":
                bad.append((name, outcome, err.getvalue()[:120].strip()))
    for name, outcome, line in bad:
        print(f"{outcome:9} {name}: {line}", file=sys.stderr)
    print(json.dumps(counts))
    return counts


if __name__ == "__main__":
    main()
