"""The checkers of the federated-learning and privacy exercises, beside the others in
:mod:`simdml.check`: 11.1 (the epsilon of a DP-SGD run from the RDP formula, lesson 18:
its cases against simdml's accountant at the same orders and conversion, the slips it
names, and a simulated run's epsilon, which the answer bounds from above) and 12.1
(FedBuff's staleness weight and buffered step, lesson 17: against simdml's, the slips it
names, and a FedBuff simulation with the answer's weight in place of simdml's).
"""
from __future__ import annotations

import math

__all__ = ["check_privacy_epsilon", "check_staleness_weight", "report_staleness_weight"]

_EPSILON_CASES = (  # (q, sigma, steps, delta)
    (256 / 60000, 1.1, 14040, 1e-5),
    (0.01, 1.0, 1000, 1e-5),
    (0.1, 2.0, 100, 1e-6),
    (0.05, 0.8, 1, 1e-5),
    (0.5, 4.0, 10, 1e-5),          # half the examples a step
)
_ORDERS = tuple(range(2, 64))
_RUN = {"data.dataset": "synthetic", "data.n_samples": 1000, "data.n_features": 5,
        "cluster.workers": 2, "stop.rounds": 20, "privacy.clip": 1.0,
        "privacy.noise_multiplier": 1.2, "privacy.sample_rate": 0.05}


def _reference(q, sigma, steps, delta, *, slip=None) -> float:
    from simdml.privacy import epsilon, rdp
    r = rdp(q, sigma, 1 if slip == "one_step" else steps, orders=_ORDERS)
    if slip == "log_delta":
        return float(min(v - math.log(1 / delta) / (a - 1) for v, a in zip(r, _ORDERS)))
    return epsilon(r, delta, orders=_ORDERS, conversion="mironov2017")[0]


_HINTS = {"one_step": "RDP composes by addition: multiply one step's eps(alpha) by steps "
                      "before converting.",
          "log_delta": "the conversion adds log(1 / delta) / (alpha - 1), which is positive "
                       "(delta < 1)."}


def check_privacy_epsilon(m) -> list[str]:
    """The problems of ``m.epsilon`` as an answer to exercise 11.1; [] is passed."""
    problems = []
    for q, sigma, steps, delta in _EPSILON_CASES:
        expected = _reference(q, sigma, steps, delta)
        got = float(m.epsilon(q, sigma, steps, delta))
        if abs(got - expected) <= 1e-9 * expected:
            continue
        slip = next((s for s in _HINTS
                     if abs(_reference(q, sigma, steps, delta, slip=s) - got)
                     <= 1e-9 * abs(got)), None)
        problems.append(f"q = {q:.6g}, sigma = {sigma}, {steps} steps, delta = {delta:g}: you "
                        f"say eps = {got:.6g}, the accountant {expected:.6g} at the orders "
                        f"2..63. " + (_HINTS[slip] if slip else "Check A's terms and the "
                                      "conversion."))
    if problems:
        return problems
    from simdml import Scenario, run
    r = run(Scenario().replace(**_RUN))          # a simulated run's epsilon column
    simulated = r.history[-1]["epsilon"]
    yours = m.epsilon(_RUN["privacy.sample_rate"], _RUN["privacy.noise_multiplier"],
                      r.history[-1]["update"], 1e-5)
    if not simulated <= yours <= 1.5 * simulated:   # its orders and conversion are tighter
        problems.append(f"a simulated DP-SGD run of {r.history[-1]['update']} steps reports "
                        f"eps = {simulated:.6g} (fractional orders too, and Balle et al.'s "
                        f"tighter conversion); yours, {yours:.6g}, should bound it from "
                        f"above and lie near it")
    return problems


# FedBuff: 200 clients with lognormal speeds, 20 training at once, a step every 10 reports
_FEDBUFF = {"data.dataset": "synthetic", "data.n_samples": 4000, "data.n_features": 5,
            "strategy.kind": "fedavg", "strategy.mode": "buffered", "strategy.buffer_size": 10,
            "strategy.local_epochs": 3, "clients.population": 200, "clients.per_round": 20,
            "clients.speed": 1e6, "clients.speed_sigma": 1.0, "stop.rounds": 30}
_WEIGHT_SLIPS = {"1 / (1 + s)": lambda s: 1 / (1 + s), "1": lambda s: 1.0}
_CHANGE_SLIPS = {
    "the weights divide by the rows only (sum_j n_j), not by sum_j n_j weight(s_j): "
    "normalized by the weights, a buffer of stale updates would step as far as a fresh one":
        lambda d, n, f: sum(ni * fi * di for di, ni, fi in zip(d, n, f)) /
        sum(ni * fi for ni, fi in zip(n, f)),
    "each change counts by its client's rows, n_i / sum_j n_j, not 1 / K":
        lambda d, n, f: sum(fi * di for di, fi in zip(d, f)) / len(d),
    "each change is weighted by its staleness too: times weight(s_i)":
        lambda d, n, f: sum(ni * di for di, ni in zip(d, n)) / sum(n)}


def check_staleness_weight(m) -> list[str]:
    """The problems of ``m.weight`` and ``m.buffered_change`` as an answer to 12.1."""
    import numpy as np
    from simdml import Scenario, run
    from simdml.strategies.fedbuff import buffered_change
    from simdml.strategies.federated import STALENESS_WEIGHTS
    sqrt = STALENESS_WEIGHTS["sqrt"]
    problems = []
    for s in (0, 1, 3, 8, 99):
        got = float(m.weight(s))
        if abs(got - sqrt(s)) > 1e-12:
            slip = next((k for k, f in _WEIGHT_SLIPS.items() if abs(f(s) - got) < 1e-12), None)
            problems.append(f"weight({s}) = {got:.6g}; FedBuff's is 1 / sqrt(1 + {s}) = "
                            f"{sqrt(s):.6g}" + (f" (yours is {slip}: the paper's weight "
                                                f"is the square root's)" if slip else ""))
            return problems
    rng = np.random.default_rng(12)
    for k in (1, 3, 10):
        changes = [rng.normal(size=6) for _ in range(k)]
        rows = [int(r) for r in rng.integers(5, 50, size=k)]
        stale = [int(s) for s in rng.integers(0, 6, size=k)]
        expected = buffered_change(changes, rows, stale, sqrt)
        got = np.asarray(m.buffered_change(changes, rows, stale), dtype=float)
        if got.shape == expected.shape and np.allclose(got, expected, rtol=0, atol=1e-12):
            continue
        factors = [sqrt(s) for s in stale]
        slip = next((hint for hint, f in _CHANGE_SLIPS.items() if got.shape == expected.shape
                     and np.allclose(got, f(changes, rows, factors), rtol=0, atol=1e-12)), None)
        problems.append(f"a buffer of {k} changes with rows {rows} and stalenesses {stale}: "
                        f"yours differs from sum_i (n_i / sum_j n_j) weight(s_i) Delta_i" +
                        (f"; {slip}" if slip else f" (largest difference "
                         f"{np.abs(got - expected).max() if got.shape == expected.shape else got.shape})"))
        break
    if problems:
        return problems
    s = Scenario().replace(**_FEDBUFF)
    ours, yours = run(s), run(s, staleness=m.weight)
    if not np.allclose(yours.model.params_, ours.model.params_, rtol=1e-9, atol=1e-12):
        problems.append("in a FedBuff simulation your weight gives another model than "
                        "simdml's 1 / sqrt(1 + s)")
    return problems


def report_staleness_weight(m) -> list[str]:
    """Your weight inside a FedBuff simulation, beside no weighting (lines to print)."""
    from simdml import Scenario, run
    s = Scenario().replace(**_FEDBUFF)
    runs = {"no weighting": run(s.replace(**{"strategy.staleness": "none"})),
            "yours": run(s, staleness=m.weight)}
    lines = ["in a simulation (200 clients, 20 training at once, a step every 10 reports, "
             "30 steps):"]
    for name, r in runs.items():
        lines.append(f"  {name:>12}: {r.summary['stale_updates']} stale updates, final loss "
                     f"{r.summary['final_loss']:.5f}")
    return lines
