"""The checkers of the federated-learning and privacy exercises, beside the others in
:mod:`simdml.check`: 11.1 (the epsilon of a DP-SGD run from the RDP formula, lesson 18:
its cases against simdml's accountant at the same orders and conversion, the slips it
names, and a simulated run's epsilon, which the answer bounds from above).
"""
from __future__ import annotations

import math

__all__ = ["check_privacy_epsilon"]

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
