"""Checkers of the classroom exercises: ``python -m simdml.check ex01`` tests your
``lessons/exercises/ex01_*.py`` and says, in words, what is wrong (or that it passes).
``--solution`` checks the reference solution instead.

Each checker returns a list of problems (empty: passed); it runs the student's code on
cases whose answers come from the simulator or from the contracts the tests hold.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import traceback
from pathlib import Path

import numpy as np

from . import _check_federated as _fed, _check_parallel as _par

__all__ = ["check", "export", "main", "EXERCISES"]

EXERCISES = {"ex01": "ex01_round_time", "ex02": "ex02_policy", "ex03": "ex03_fusion_rule",
             "ex04": "ex04_partitioner", "ex05": "ex05_compression",
             "ex06": "ex06_straggler_aggregation", "ex07": "ex07_bucket_time",
             "ex08": "ex08_zero_memory", "ex09": "ex09_pipeline_bubble",
             "ex10": "ex10_factorisation_memory", "ex11": "ex11_privacy_epsilon",
             "ex12": "ex12_staleness_weight"}


def _folder() -> Path:
    return Path(__file__).resolve().parents[1] / "lessons" / "exercises"


def load(name: str, solution: bool = False, folder: Path | None = None,
         path: Path | None = None):
    """Import an exercise module by path (the student's file, the solution, or ``path``)."""
    folder = folder or _folder()
    path = Path(path) if path else folder / ("solutions" if solution else "") / f"{EXERCISES[name]}.py"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found (the exercises live in a clone's "
                                f"lessons/exercises/)")
    spec = importlib.util.spec_from_file_location(f"_exercise_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check(name: str, module) -> list[str]:
    """The problems of ``module`` as an answer to exercise ``name``; [] means passed."""
    try:
        return CHECKERS[name](module)
    except NotImplementedError as exc:
        return [f"not done yet: {exc}"]
    except Exception as exc:  # the student's code raised: say where, in one line
        return [f"your code raised {type(exc).__name__}: {exc}{_where(exc, module)}"]


def _where(exc: BaseException, module) -> str:
    """`` (line N of file.py: code)``: the last line of the student's file that ran, or ""."""
    path = getattr(module, "__file__", None)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == path]
    if not frames:
        return ""
    return f" (line {frames[-1].lineno} of {Path(path).name}: {frames[-1].line})"


def export(folder: Path) -> list[Path]:
    """Copy the exercises and their README, without the solutions, into ``folder`` (made
    if need be; an existing exercise file there is not overwritten): what a teacher
    hands out. Returns the files written."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"--export {str(folder)!r} is a file; give a folder")
    sources = [_folder() / "README.md"] + [_folder() / f"{stem}.py" for stem in EXERCISES.values()]
    clashes = [src.name for src in sources if (folder / src.name).exists()]
    if clashes:
        raise FileExistsError(f"--export {str(folder)!r} already holds {', '.join(clashes)}: "
                              f"give an empty folder (nothing was copied)")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for src in sources:
        (folder / src.name).write_bytes(src.read_bytes())
        written.append(folder / src.name)
    return written


# --------------------------------------------------------------------- checkers


def _check_round_time(m) -> list[str]:
    from simdml import Scenario, run
    from simdml.experiment import prepare_data
    from simdml.messages import TAGGED_GRADIENT_HEADER, TAGGED_MODEL_HEADER
    from simdml.models import LogisticRegression
    problems = []
    for n, latency, bandwidth in ((2, 1e-3, 1e6), (4, 1e-3, 1e6), (4, 1e-4, 1e8)):
        s = Scenario().replace(**{"cluster.workers": n, "cluster.speed": 2e5,
                                  "cluster.server_speed": 1e9, "network.latency": latency,
                                  "network.bandwidth": bandwidth, "stop.rounds": 3,
                                  "data.dataset": "synthetic", "data.n_samples": 4 * n * 10})
        parts = prepare_data(s).parts
        model = LogisticRegression()
        size = model.init_params(4, 2).size
        compute = model.grad_flops(len(parts[0])) / 2e5
        simulated = run(s).history[1]["time"]
        predicted = m.predict_round_time(n, compute, latency, bandwidth,
                                         TAGGED_MODEL_HEADER + 8 * size,
                                         TAGGED_GRADIENT_HEADER + 8 * size, (n + 2) * size / 1e9)
        if abs(predicted - simulated) > 1e-9 * simulated:
            args = (n, compute, latency, bandwidth, TAGGED_MODEL_HEADER + 8 * size,
                    TAGGED_GRADIENT_HEADER + 8 * size, (n + 2) * size / 1e9)
            problems.append(f"with {n} workers, latency {latency:g} s and bandwidth "
                            f"{bandwidth:g} B/s you predict {predicted:.6g} s, the simulator "
                            f"measures {simulated:.6g} s. {_round_time_hint(predicted, args)}")
    return problems


_ROUND_TIME_SLIPS = {  # a common slip -> what the student's formula is missing
    "server": "the server's own step at the end (server_compute) is missing",
    "latencies": "count the latency twice: once for the model going out, once for the "
                 "gradient coming back",
    "queue": "the server's card receives one gradient at a time: a gradient that arrives "
             "while another is coming in waits for it (a queue)",
    "grad_wire": "a gradient takes grad_bytes / bandwidth on the wire, like the model",
}


def _round_time(n, compute, latency, bandwidth, model_bytes, grad_bytes, server_compute,
                slip=None):
    """A round's time by the exercise's description, or with one ``slip`` in it."""
    wire = 0.0 if slip == "grad_wire" else grad_bytes / bandwidth
    trips = 1 if slip == "latencies" else 2
    first_bits = [k * model_bytes / bandwidth + trips * latency + compute
                  for k in range(1, n + 1)]
    free = 0.0
    for t in sorted(first_bits):
        free = t + wire if slip == "queue" else max(t, free) + wire
    return free + (0.0 if slip == "server" else server_compute)


def _round_time_hint(predicted: float, args) -> str:
    """Name the term a wrong prediction misses, when it matches one common slip."""
    for slip, says in _ROUND_TIME_SLIPS.items():
        if abs(_round_time(*args, slip=slip) - predicted) <= 1e-9 * predicted:
            return f"Your formula matches one with a slip: {says}."
    return ("Did you let the copies of the model leave one after another, and the "
            "gradients queue at the server?")


def _check_policy(m) -> list[str]:
    from collections import deque
    from simdml import Scenario, run
    from simdml.scheduling import POLICIES, RoundState
    problems = []
    state = RoundState(np.ones(12, dtype=int), np.array([1e9, 1e9, 5e7, 2e9]), {},
                       np.random.default_rng(0))
    queues = m.Threshold().assign(list(range(12)), [0, 1, 2, 3], state)
    got = sorted(b for q in queues.values() for b in q)
    if got != list(range(12)):
        problems.append(f"every block must be in exactly one queue; your queues hold {got}")
    if set(queues) != {0, 1, 2, 3} or not all(isinstance(q, deque) for q in queues.values()):
        problems.append("return a deque for every worker (an empty one for those left out)")
    elif len(queues[2]) != 0:
        problems.append("worker 2 runs at 5 % of the fastest speed: it must get no block")
    elif not len(queues[3]) > len(queues[0]):
        problems.append("worker 3 is twice as fast as worker 0: it should get more blocks")
    if problems:
        return problems
    for share in (0.09, 0.12):  # 200 blocks: a plain proportional share is 6-8 blocks
        speeds = np.array([1e9, 1e9, share * 1e9, 1e9])
        state = RoundState(np.ones(200, dtype=int), speeds, {}, np.random.default_rng(0))
        queues = m.Threshold().assign(list(range(200)), [0, 1, 2, 3], state)
        fair = 200 * speeds[2] / speeds.sum()
        if share < m.MIN_SHARE and len(queues[2]) != 0:
            problems.append(f"worker 2 runs at {share:.0%} of the fastest speed: a proportional "
                            f"share would be about {fair:.0f} of 200 blocks, but below "
                            f"MIN_SHARE = {m.MIN_SHARE:.0%} it must get none; you gave it "
                            f"{len(queues[2])}")
        elif share > m.MIN_SHARE and abs(len(queues[2]) - fair) > 1:
            problems.append(f"worker 2 runs at {share:.0%} of the fastest speed, above MIN_SHARE "
                            f"= {m.MIN_SHARE:.0%}: it gets its proportional share, about "
                            f"{fair:.1f} of 200 blocks; you gave it {len(queues[2])}")
    if problems:
        return problems
    POLICIES["threshold"] = m.Threshold
    try:
        base = Scenario().replace(**{"data.dataset": "digits", "cluster.workers": 4,
                                     "cluster.speed": [1e8, 1e8, 1e6, 2e8], "stop.rounds": 3,
                                     "scheduling.blocks": 16})
        ours = run(base.replace(**{"scheduling.policy": "threshold"}))
        rr = run(base.replace(**{"scheduling.policy": "round_robin"}))
    finally:
        POLICIES.pop("threshold", None)
    if not np.array_equal(ours.model.params_, rr.model.params_):
        problems.append("the model changed with the policy: did a block go missing?")
    if not ours.summary["sim_time"] < 0.2 * rr.summary["sim_time"]:
        problems.append(f"with a worker 100x slower, your policy takes "
                        f"{ours.summary['sim_time']:.3g} s against round robin's "
                        f"{rr.summary['sim_time']:.3g} s: it should be far faster")
    return problems


class _Fixed:
    """A fake member that predicts given labels for the rows of a fixed X."""

    def __init__(self, labels):
        self.labels = np.asarray(labels)

    def predict(self, X):
        return self.labels[: len(X)]


def _check_fusion_rule(m) -> list[str]:
    problems = []
    y_val = np.array([0, 0, 1, 1, 2, 2])
    good, bad1, bad2 = _Fixed([0, 0, 1, 1, 2, 2]), _Fixed([1, 1, 1, 1, 1, 1]), _Fixed([1] * 6)
    predict = m.accuracy_weighted_vote([good, bad1, bad2], np.zeros((6, 1)), y_val, [0, 1, 2])
    got = np.asarray(predict(np.zeros((6, 1))))
    if got.tolist() != [0, 0, 1, 1, 2, 2]:
        problems.append(f"one member always right (weight 1) against two that say 1 (weight "
                        f"1/3 each): the right one should win everywhere; you predict "
                        f"{got.tolist()}")
    tie = m.accuracy_weighted_vote([_Fixed([0, 1]), _Fixed([1, 0])], np.zeros((2, 1)),
                                   np.array([0, 0]), [0, 1])
    if np.asarray(tie(np.zeros((2, 1)))).tolist() != [0, 0]:
        problems.append("equal weights on two classes: the tie goes to the lower class")
    return problems


def _check_partitioner(m) -> list[str]:
    problems = []
    y = np.array([2, 0, 1, 0, 2, 1, 0, 2, 1, 1])
    shards = m.sorted_by_label(y, 3, np.random.default_rng(0))
    if len(shards) != 3:
        return [f"asked for 3 shards, got {len(shards)}"]
    flat = np.sort(np.concatenate(shards))
    if not np.array_equal(flat, np.arange(10)):
        problems.append("every index must be in exactly one shard")
    if [len(s) for s in shards] != [4, 3, 3]:
        problems.append(f"sizes should be [4, 3, 3] (as np.array_split); got {[len(s) for s in shards]}")
    labels = np.concatenate([y[s] for s in shards])
    if not np.all(np.diff(labels) >= 0):
        problems.append(f"the labels along the shards should never decrease; got {labels.tolist()}")
    many = np.random.default_rng(0).integers(0, 3, size=1000)
    order = np.concatenate(m.sorted_by_label(many, 4, np.random.default_rng(0)))
    if not np.array_equal(order, np.argsort(many, kind="stable")):
        problems.append("samples of the same label must keep their index order (ties by "
                        "index): sort stably")
    if any(np.asarray(s).dtype != np.int64 for s in shards):
        problems.append("return int64 index arrays")
    return problems


def _check_compression(m) -> list[str]:
    problems = []
    g = np.array([0.5, -3.0, 0.0, 2.0, -2.0, 1.0])
    idx, val = m.compress(g, 3)
    if np.asarray(idx).tolist() != [1, 3, 4] or np.asarray(val).tolist() != [-3.0, 2.0, -2.0]:
        problems.append(f"top-3 by magnitude of {g.tolist()} is indices [1, 3, 4] with values "
                        f"[-3, 2, -2] (ties: the lower index); got {np.asarray(idx).tolist()}, "
                        f"{np.asarray(val).tolist()}")
    back = np.asarray(m.decompress(*m.compress(g, g.size), g.size))
    if not np.array_equal(back, g):
        problems.append("with k = size, decompress(compress(g)) must give g back exactly")
    rng = np.random.default_rng(0)
    h = rng.normal(size=100)
    errors = [np.linalg.norm(h - np.asarray(m.decompress(*m.compress(h, k), 100))) for k in (5, 20, 60)]
    if not errors[0] > errors[1] > errors[2]:
        problems.append("keeping more entries should always lose less of the gradient")
    return problems


def _report_compression(m) -> list[str]:
    """Your compress/decompress inside a simulation: 4 workers of a sync parameter
    server, 40 rounds, top-5 % with error feedback, beside no compression and
    simdml's own top-k (lines to print)."""
    from .compression import Compression
    from .experiment import run
    from .scenario import Scenario
    s = Scenario(name="ex05").replace(**{
        "cluster.workers": 4, "data.dataset": "synthetic", "data.n_samples": 800,
        "data.n_features": 50, "stop.rounds": 40})
    runs = {"no compression": run(s),
            "simdml's topk + EF": run(s.replace(**{"compression.kind": "topk",
                                                 "compression.ratio": 0.05,
                                                 "compression.error_feedback": True})),
            "yours + EF": run(s, compression=Compression.custom(
                m.compress, m.decompress, ratio=0.05, error_feedback=True))}
    lines = ["in a simulation (4 workers, 40 sync rounds, 5 % of the entries, error feedback):"]
    for name, r in runs.items():
        lines.append(f"  {name:>20}: {r.summary['bytes_sent']:>8,} bytes sent, final loss "
                     f"{r.summary['final_loss']:.5f}")
    return lines


def _check_straggler_aggregation(m) -> list[str]:
    problems = []
    weights = [0.1, 0.2, 0.3, 0.4]
    rng = np.random.default_rng(1)
    grads = {i: rng.normal(size=5) for i in range(4)}
    full = m.aggregate(grads, weights)
    if not np.allclose(full, sum(w * grads[i] for i, w in enumerate(weights)), rtol=0, atol=1e-12):
        problems.append("with every gradient in, the result is sum_i w_i g_i (weights sum to 1)")
    some = {2: grads[2], 0: grads[0]}  # arrived in this order
    expected = (0.1 * grads[0] + 0.3 * grads[2]) / 0.4
    got = m.aggregate(some, weights)
    if not np.allclose(got, expected, rtol=0, atol=1e-12):
        problems.append("with workers 0 and 2 only: (0.1 g_0 + 0.3 g_2) / 0.4 -- re-normalize "
                        "by the weights of the workers that answered")
    # floating-point sums depend on the order: with these magnitudes they differ
    n = 6
    big = {i: np.array([10.0 ** (8 * (i % 3)) * (-1) ** i, 1.0]) for i in range(n)}
    equal = [1.0 / n] * n
    forward = m.aggregate({i: big[i] for i in range(n)}, equal)
    backward = m.aggregate({i: big[i] for i in reversed(range(n))}, equal)
    if not np.array_equal(np.asarray(forward), np.asarray(backward)):
        problems.append("the arrival order changed the result: sum in worker order "
                        "(sorted(grads)), whatever order the gradients arrived in")
    return problems


# the ddp timing cases (as tests/test_ddp.py's): 240 training rows, 60 per worker;
# layers of 248, 1024 and 132 parameters, each a multiple of n = 4 (equal ring chunks)
_DDP_TIMED = {"model.kind": "mlp", "model.hidden": [31, 32], "model.l2": 0.0,
              "data.dataset": "synthetic", "data.n_samples": 320, "data.n_features": 7,
              "data.n_classes": 4, "cluster.workers": 4, "strategy.kind": "ddp",
              "strategy.lr": 0.1, "stop.rounds": 2, "eval_every": 1}
_DDP_CASES = (  # (what the case is, speed flop/s, latency s, bandwidth B/s, bucket_size B)
    ("compute-bound, a bucket per layer", 1e8, 1e-5, 1e10, 1),
    ("communication-bound, a bucket per layer", 1e10, 1e-4, 1e8, 1),
    ("communication-bound, buckets of two layers and one", 1e10, 1e-4, 1e8, 8 * 1156),
    ("between the regimes, a bucket per layer", 1e9, 2e-5, 1e9, 1),
    ("between the regimes, buckets of two layers and one", 1e9, 2e-5, 1e9, 8 * 1156),
)


def _check_bucket_time(m) -> list[str]:
    from simdml import OptimizerConfig, Scenario, run
    from simdml.models import MLPClassifier
    from simdml.strategies.ddp import buckets_of, ring_time
    wrong = []  # (case, args, predicted, simulated)
    for case, speed, latency, bandwidth, size in _DDP_CASES:
        s = Scenario().replace(**{**_DDP_TIMED, "cluster.speed": speed,
                                  "network.latency": latency, "network.bandwidth": bandwidth,
                                  "strategy.bucket_size": size})
        model = MLPClassifier(hidden=[31, 32])
        model.init_params(7, 4)
        flops = model.layer_flops(60)
        buckets = buckets_of(model, size)
        args = (sum(f for f, _ in flops) / speed, [b / speed for _, b in flops],
                [b.layers for b in buckets],
                [ring_time(4, 8 * (b.span.stop - b.span.start), latency, bandwidth)
                 for b in buckets],
                OptimizerConfig().build(lr=0.1, horizon=1).flops(model.n_params) / speed)
        times = [h["time"] for h in run(s).history]
        simulated = times[2] - times[1]
        predicted = m.iteration_time(*args)
        if abs(predicted - simulated) > 1e-9 * simulated:
            wrong.append((case, args, predicted, simulated))
    # two slips may give the same time on one case: name the one that fits every case
    fits = [{slip for slip in _BUCKET_TIME_SLIPS
             if abs(_bucket_time(*args, slip=slip) - predicted) <= 1e-9 * predicted}
            for _, args, predicted, _ in wrong]
    common = set.intersection(*fits) if fits else set()
    slip = next((slip for slip in _BUCKET_TIME_SLIPS if slip in common), None)
    return [f"{case} (buckets {args[2]}): you predict {predicted:.6g} s, the simulator "
            f"measures {simulated:.6g} s. {_bucket_time_hint(slip)}"
            for case, args, predicted, simulated in wrong]


_BUCKET_TIME_SLIPS = {  # a common slip -> what the student's formula gets wrong
    "parallel": "buckets are all-reduced one after another, on one stream: a bucket that "
                "is ready while the previous one is still being summed waits for it",
    "early": "a bucket is ready only when backward has passed its lowest layer (the last "
             "of its layers that backward reaches), not its first",
    "no_overlap": "with overlap a bucket's all-reduce starts as soon as the bucket is "
                  "ready, under the rest of the backward pass, not after it",
    "last_only": "only the last bucket's all-reduce is exposed when each all-reduce ends "
                 "before the next bucket is ready; here the stream is still busy",
    "step": "the optimizer's step at the end (step) is missing",
}


def _bucket_time(forward, backward, buckets, allreduce, step, slip=None):
    """A ddp iteration's time with overlap, by the exercise's description, or with one
    ``slip`` in it."""
    if slip == "no_overlap":
        return forward + sum(backward) + sum(allreduce) + step
    if slip == "last_only":
        return forward + sum(backward) + allreduce[-1] + step
    free = end = 0.0
    for layers, seconds in zip(buckets, allreduce):
        ready = forward + sum(backward[(max if slip == "early" else min)(layers):])
        free = max(free, ready) + seconds
        end = max(end, ready + seconds)
    return (end if slip == "parallel" else free) + (0.0 if slip == "step" else step)


def _bucket_time_hint(slip: str | None) -> str:
    """Name what a wrong prediction gets wrong, when it matches one common slip."""
    if slip is not None:
        return f"Your formula matches one with a slip: {_BUCKET_TIME_SLIPS[slip]}."
    return ("Did you start each bucket when backward has passed its lowest layer, and "
            "only once the previous bucket is summed?")


_ZERO_CASES = ((0, 4, "adam"), (1, 4, "adam"), (2, 4, "adam"), (3, 4, "adam"),
               (1, 4, "sgd"), (2, 2, "momentum"), (3, 2, "momentum"))
_ZERO_RULES = {  # what a worker holds of each, by stage
    "params": "the parameters are whole on every worker at stages 0-2, sharded (1/n each) "
              "only at stage 3",
    "grads": "the gradients are whole at stages 0 and 1, sharded from stage 2",
    "optimizer": "the optimizer state is state_arrays vectors of the parameters' size, "
                 "whole at stage 0 and sharded from stage 1",
}


def _check_zero_memory(m) -> list[str]:
    from simdml import Scenario, run
    from simdml.optim import OPTIMIZERS
    problems = []
    for stage, n, optimizer in _ZERO_CASES:
        s = Scenario().replace(**{**_DDP_TIMED, "cluster.workers": n, "strategy.zero": stage,
                                  "optimizer.kind": optimizer, "strategy.lr": 0.01,
                                  "strategy.bucket_size": 1})
        held = run(s).memory["worker0"]["breakdown"]
        arrays = len(OPTIMIZERS[optimizer].state)
        answer = m.memory_per_worker(stage, 1404, n, arrays)
        if not isinstance(answer, dict) or set(answer) != set(_ZERO_RULES):
            return [f"return a dict with the keys params, grads, optimizer; got "
                    f"{answer!r:.80}"]
        for category, rule in _ZERO_RULES.items():
            if abs(answer[category] - held[category]) > 1e-9:
                problems.append(f"stage {stage}, {n} workers, {optimizer} ({arrays} state "
                                f"array{'' if arrays == 1 else 's'}), 1404 parameters: you "
                                f"say {answer[category]:g} "
                                f"bytes of {category}, a worker holds {held[category]}: "
                                f"{rule}")
    return problems


CHECKERS = {"ex01": _check_round_time, "ex02": _check_policy, "ex03": _check_fusion_rule,
            "ex04": _check_partitioner, "ex05": _check_compression,
            "ex06": _check_straggler_aggregation, "ex07": _check_bucket_time,
            "ex08": _check_zero_memory, "ex09": _par.check_pipeline_bubble,
            "ex10": _par.check_factorisation_memory, "ex11": _fed.check_privacy_epsilon,
            "ex12": _fed.check_staleness_weight}
#: what a passed exercise shows next: its code at work in a simulation
REPORTS = {"ex05": _report_compression, "ex12": _fed.report_staleness_weight}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m simdml.check",
                                description="Check a classroom exercise.",
                                epilog="example: python -m simdml.check ex02")
    p.add_argument("exercise", nargs="?", choices=sorted(EXERCISES))
    p.add_argument("--solution", action="store_true", help="check the reference solution")
    p.add_argument("--file", metavar="PATH", help="check this file instead (your own copy)")
    p.add_argument("--export", metavar="DIR", help="copy the exercises, without the "
                   "solutions, into DIR (to hand out) and stop")
    args = p.parse_args(argv)
    if args.export is not None:
        try:
            written = export(Path(args.export))
        except (FileExistsError, OSError) as exc:
            print(f"simdml.check: {exc}", file=sys.stderr)
            return 2
        print(f"copied {len(written)} files (the exercises and their README, no solutions) "
              f"to {args.export}")
        return 0
    if args.exercise is None:
        p.error("give an exercise to check (one of " + ", ".join(sorted(EXERCISES)) +
                ") or --export DIR")
    try:
        module = load(args.exercise, args.solution, path=args.file)
    except FileNotFoundError as exc:
        print(f"simdml.check: {exc}", file=sys.stderr)
        return 2
    except SyntaxError as exc:
        print(f"{args.exercise}: not yet:\n  - Python cannot read your file: {exc.msg} "
              f"(line {exc.lineno}: {(exc.text or '').strip()})")
        return 1
    except Exception as exc:  # it raised while being imported
        print(f"{args.exercise}: not yet:\n  - your file raised {type(exc).__name__} when "
              f"imported: {exc}")
        return 1
    problems = check(args.exercise, module)
    if not problems:
        print(f"{args.exercise}: passed -- well done.")
        for line in REPORTS.get(args.exercise, lambda m: [])(module):
            print(line)
        return 0
    print(f"{args.exercise}: not yet:")
    for problem in problems:
        print(f"  - {problem}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
