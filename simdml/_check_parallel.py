"""The checkers of the model-parallel exercises, beside the others in :mod:`simdml.check`:
9.1 (a pipeline iteration's time, lesson 12: its cases, timed by the simulator's clock,
the slips it names, and the check that the clock is the simulated pipelines') and 10.1
(the memory of the fullest worker of a D x T x P factorisation, lesson 13).
"""
from __future__ import annotations

import functools

import numpy as np

__all__ = ["check_pipeline_bubble", "check_factorisation_memory"]

_PIPELINE_CASES = (  # (p, m, schedule, t_f s, t_b s, step s): equal stages
    (4, 8, "gpipe", 1e-3, 2e-3, 5e-4),
    (4, 8, "1f1b", 1e-3, 2e-3, 5e-4),
    (2, 1, "gpipe", 3e-3, 5e-3, 1e-3),
    (3, 2, "1f1b", 1e-3, 1e-3, 2e-4),            # fewer micro-batches than stages
    (6, 16, "1f1b", 5e-4, 1.2e-3, 1e-4),
    (5, 3, "gpipe", 2e-3, 3e-3, 1e-3),
)
# the simulator's pipeline: free communication, deterministic compute; 320 training
# rows, which every m below divides, and 5 layers (8 -> 12 -> 10 -> 9 -> 6 -> 4)
_PIPELINE_TIMED = {"model.kind": "mlp", "model.hidden": [12, 10, 9, 6],
                   "data.dataset": "synthetic", "data.n_samples": 400, "data.test_size": 0.2,
                   "data.n_features": 8, "data.n_classes": 4, "strategy.kind": "pipeline",
                   "strategy.lr": 0.1, "network.latency": 0.0, "network.bandwidth": float("inf"),
                   "cluster.jitter": 0.0, "cluster.speed": 1e8, "stop.rounds": 2,
                   "eval_every": 1}
_PIPELINE_ONE_STAGE = ((4, "gpipe"), (8, "1f1b"))               # (m, schedule), p = 1
_PIPELINE_CLOCK = ((2, 4, "gpipe"), (3, 8, "1f1b"), (4, 5, "gpipe"), (4, 16, "1f1b"))


def check_pipeline_bubble(m) -> list[str]:
    """The problems of ``m.iteration_time`` as an answer to exercise 9.1; [] is passed."""
    from simdml.strategies.pipeline_parallel import schedule_time
    wrong = []  # (case, args, predicted, expected)
    for p, n, schedule, t_f, t_b, step in _PIPELINE_CASES:
        expected = schedule_time(schedule, n, [t_f] * p, [t_b] * p, [step] * p)[0]
        predicted = m.iteration_time(p, n, t_f, t_b, step)
        if abs(predicted - expected) > 1e-9 * expected:
            wrong.append((f"p = {p} stages, m = {n} micro-batch{'es' * (n > 1)} ({schedule})",
                          (p, n, t_f, t_b, step), predicted, expected))
    for n, schedule in _PIPELINE_ONE_STAGE:     # one stage: the simulated run itself
        (t_f,), (t_b,), (step,), simulated = _pipeline_run(1, n, schedule)
        predicted = m.iteration_time(1, n, t_f, t_b, step)
        if abs(predicted - simulated[0]) > 1e-9 * simulated[0]:
            wrong.append((f"one stage, m = {n} micro-batches ({schedule}, a simulated run)",
                          (1, n, t_f, t_b, step), predicted, simulated[0]))
    # two slips may give the same time on one case: name the one that fits every case
    fits = [{slip for slip in _PIPELINE_SLIPS
             if abs(_pipeline_time(*args, slip=slip) - predicted) <= 1e-9 * abs(predicted)}
            for _, args, predicted, _ in wrong]
    common = set.intersection(*fits) if fits else set()
    slip = next((slip for slip in _PIPELINE_SLIPS if slip in common), None)
    problems = [f"{case}, t_f = {1e3 * args[2]:.6g} ms, t_b = {1e3 * args[3]:.6g} ms, step = "
                f"{1e3 * args[4]:.6g} ms: you predict {predicted:.6g} s, the pipeline takes "
                f"{expected:.6g} s. {_pipeline_hint(slip)}"
                for case, args, predicted, expected in wrong]
    return problems + list(_pipeline_clock())


def _pipeline_run(p: int, n: int, schedule: str):
    """A simulated pipeline of ``p`` stages, ``n`` micro-batches: each stage's t_f, t_b
    and step (s, from the layer flops), and when its two iterations end."""
    from simdml import OptimizerConfig, Scenario, run
    from simdml.models import MLPClassifier
    from simdml.strategies.pipeline_parallel import partition_layers
    s = Scenario().replace(**{**_PIPELINE_TIMED, "cluster.workers": p,
                              "strategy.microbatches": n, "strategy.schedule": schedule})
    model = MLPClassifier(hidden=_PIPELINE_TIMED["model.hidden"])
    model.init_params(8, 4)
    speed, flops = _PIPELINE_TIMED["cluster.speed"], model.layer_flops(320 // n)
    stages = partition_layers([f + b for f, b in flops], p)
    opt = OptimizerConfig().build(lr=0.1, horizon=1)
    forward = [sum(flops[l][0] for l in r) / speed for r in stages]
    backward = [sum(flops[l][1] for l in r) / speed for r in stages]
    step = [opt.flops(model.layer_slices(r[-1])[1].stop - model.layer_slices(r[0])[0].start)
            / speed for r in stages]
    return forward, backward, step, [h["time"] for h in run(s).history[1:]]


@functools.lru_cache(maxsize=None)   # the simulator's clock, checked once a process
def _pipeline_clock() -> tuple[str, ...]:
    """The cases above are timed by ``schedule_time``, the recurrence of the simulator's
    clock: check, on simulated pipelines of 2 to 4 unequal stages, that it is the
    simulator's (a failure is simdml's, not the student's)."""
    from simdml.strategies.pipeline_parallel import schedule_time
    problems = []
    for p, n, schedule in _PIPELINE_CLOCK:
        forward, backward, step, simulated = _pipeline_run(p, n, schedule)
        clock = schedule_time(schedule, n, forward, backward, step, iterations=2)
        if not np.allclose(simulated, clock, rtol=1e-9, atol=0):
            problems.append(f"simdml's pipeline ({p} stages, m = {n}, {schedule}) ends its "
                            f"iterations at {simulated} s, its recurrence says {clock} s: a "
                            f"bug in simdml, not in your answer")
    return tuple(problems)


_PIPELINE_SLIPS = {  # a common slip -> what the student's formula gets wrong
    "fill": "m (t_f + t_b) is only each stage's work: the pipeline also fills and drains, "
            "and while it does a stage idles (p - 1)(t_f + t_b)",
    "m_plus_p": "count m + p - 1 slots of t_f + t_b, not m + p: with one stage an iteration "
                "is m (t_f + t_b) + step",
    "forward_fill": "the backwards drain as the forwards fill: (p - 1) t_b idles too, not "
                    "only (p - 1) t_f",
    "sequential": "the stages work at once, on different micro-batches (that is what a "
                  "pipeline is for): only the fill and the drain idle",
    "no_step": "the step at the end (step) is missing",
    "p_steps": "the stages step at the same time, each its own block: an iteration ends "
               "with one step, not p",
    "m_steps": "a stage steps once an iteration, after its last backward (it adds up the "
               "micro-batches' gradients), not after each micro-batch",
}


def _pipeline_time(p, m, t_f, t_b, step, slip=None):
    """An iteration of p equal stages by the exercise's description, or with one
    ``slip`` in it."""
    slots = {"fill": m, "m_plus_p": m + p, "sequential": m * p}.get(slip, m + p - 1)
    work = slots * (t_f + t_b) - (p - 1) * t_b * (slip == "forward_fill")
    steps = {"no_step": 0, "p_steps": p, "m_steps": m}.get(slip, 1)
    return work + steps * step


def _pipeline_hint(slip: str | None) -> str:
    """Name what a wrong prediction gets wrong, when it matches one common slip."""
    if slip is not None:
        return f"Your formula matches one with a slip: {_PIPELINE_SLIPS[slip]}."
    return ("Each stage works m (t_f + t_b): how long does it wait while the first "
            "micro-batch goes down the pipeline, and while the last one comes back?")


_HYBRID_CASES = ((8, 1, 1, "adam"), (2, 2, 2, "adam"), (1, 2, 4, "momentum"), (1, 4, 2, "sgd"),
                 (2, 1, 4, "adam"), (1, 1, 8, "adam"))
_HYBRID = {"model.kind": "mlp", "model.hidden": [16, 8, 16, 8, 16, 8, 16],
           "data.dataset": "synthetic", "data.n_samples": 200, "data.n_features": 8,
           "data.n_classes": 4, "cluster.workers": 8, "strategy.kind": "hybrid",
           "strategy.lr": 0.01, "stop.rounds": 1}


def check_factorisation_memory(m) -> list[str]:
    from simdml import Scenario, run
    from simdml.optim import OPTIMIZERS
    sizes = [8] + _HYBRID["model.hidden"] + [4]
    layers = list(zip(sizes[:-1], sizes[1:]))
    problems = []
    for D, T, P, optimizer in _HYBRID_CASES:
        s = Scenario().replace(**{**_HYBRID, "strategy.data_parallel": D,
                                  "strategy.tensor_parallel": T,
                                  "strategy.pipeline_parallel": P,
                                  "optimizer.kind": optimizer})
        held = max(sum(r["breakdown"][c] for c in ("params", "grads", "optimizer"))
                   for name, r in run(s).memory.items() if name != "server")
        arrays = len(OPTIMIZERS[optimizer].state)
        answer = m.fullest_worker_bytes(layers, D, T, P, arrays)
        if abs(answer - held) > 1e-6 * held:
            problems.append(f"{D} x {T} x {P}, {optimizer}, layers {layers}: you say "
                            f"{answer:g} bytes, the fullest worker holds {held}. "
                            + _factorisation_hint(answer, held, T, P))
    return problems


def _factorisation_hint(answer: float, held: float, T: int, P: int) -> str:
    if T > 1:
        return ("A pair's second bias, b_b, is whole on every tensor rank, and an odd last "
                "layer of a stage is whole too.")
    if P > 1:
        return ("The stages are cut by count, the first ones one layer longer: the fullest "
                "worker holds the longest stage.")
    return "Parameters, gradients and state_arrays vectors: (2 + state_arrays) x 8 bytes each."
