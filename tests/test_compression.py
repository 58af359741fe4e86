"""Gradient compression (``[compression]``, ``simdml.compression``) in the sync parameter
server: top-k at ratio 1 trains today's model bit for bit; the bytes on the wire are
the payloads' by formula; QSGD is unbiased and within Alistarh et al.'s variance bound;
top-k with error feedback reaches the uncompressed loss, and without it two workers
whose top entries cancel stall; signSGD's server takes the majority vote; the residual
is worker memory; bad settings are refused by name.
"""
import numpy as np
import pytest

from simdml import Scenario, ScenarioError, run
from simdml.compression import (Compression, compress, decompress, qsgd_variance_bound,
                                signs, wire_bytes)

BASE = {"cluster.workers": 4, "data.dataset": "synthetic", "data.n_samples": 800,
        "data.n_features": 50, "stop.rounds": 30}


def _weighted_sum(ws, vs):
    return sum(w * v for w, v in zip(ws, vs))


def test_top_k_at_ratio_one_trains_today_s_model_bit_for_bit():
    base = Scenario().replace(**BASE)
    dense = run(base)
    full = run(base.replace(**{"compression.kind": "topk", "compression.ratio": 1.0}))
    np.testing.assert_array_equal(full.model.params_, dense.model.params_)
    assert [h["loss"] for h in full.history] == [h["loss"] for h in dense.history]


@pytest.mark.parametrize("kind, extra", [("topk", {"compression.ratio": 0.1}),
                                         ("randk", {"compression.ratio": 0.25}),
                                         ("qsgd", {"compression.levels": 4}),
                                         ("qsgd", {"compression.levels": 300}),
                                         ("sign", {})])
def test_the_bytes_on_the_wire_are_the_payloads_by_formula(kind, extra):
    """Same rounds, same messages: the runs differ only by each gradient's payload."""
    base = Scenario().replace(**BASE)
    dense = run(base)
    r = run(base.replace(**{"compression.kind": kind, **extra}))
    n = dense.model.params_.size
    c = r.scenario.compression
    pushes = BASE["stop.rounds"] * BASE["cluster.workers"]
    assert dense.summary["messages_sent"] == r.summary["messages_sent"]
    assert r.summary["bytes_sent"] - dense.summary["bytes_sent"] == pushes * (
        wire_bytes(kind, n, ratio=c.ratio, levels=c.levels) - 8 * n)
    payload = compress(kind, np.random.default_rng(0).standard_normal(n),
                       np.random.default_rng(1), ratio=c.ratio, levels=c.levels)
    assert payload.nbytes == wire_bytes(kind, n, ratio=c.ratio, levels=c.levels)


@pytest.mark.parametrize("levels", [1, 2, 8])
def test_qsgd_is_unbiased_and_within_its_variance_bound(levels):
    rng = np.random.default_rng(levels)
    v = rng.standard_normal(64) * np.linspace(0.1, 3, 64)
    draws = np.array([decompress(compress("qsgd", v, rng, levels=levels))
                      for _ in range(20000)])
    se = draws.std(axis=0) / np.sqrt(len(draws))
    assert np.all(np.abs(draws.mean(axis=0) - v) < 5 * se + 1e-12)      # unbiased
    variance = np.mean(np.sum((draws - v) ** 2, axis=1))
    assert variance <= qsgd_variance_bound(v.size, levels) * np.sum(v ** 2)
    assert variance > 0.05 * qsgd_variance_bound(v.size, levels) * np.sum(v ** 2)


def test_top_k_with_error_feedback_reaches_the_uncompressed_loss():
    base = Scenario().replace(**{**BASE, "stop.rounds": 80})
    dense = run(base)
    ef = run(base.replace(**{"compression.kind": "topk", "compression.ratio": 0.05,
                             "compression.error_feedback": True}))
    plain = run(base.replace(**{"compression.kind": "topk", "compression.ratio": 0.05}))
    assert ef.summary["final_loss"] <= dense.summary["final_loss"] * 1.01
    assert plain.summary["final_loss"] > 3 * dense.summary["final_loss"]
    assert ef.summary["bytes_sent"] == plain.summary["bytes_sent"] < dense.summary["bytes_sent"]


def test_without_error_feedback_top_k_can_stall():
    """Two workers, f_i(x) = ||x - c_i||^2 / 2, c = (10, 1) and (-10, 1): from x = 0 each
    one's largest entry is the first, and they cancel; the second, which the optimum
    (0, 1) needs, is never sent: x stays 0. Error feedback sends it once its residual
    has grown, and x ends within O(lr) of the optimum (a constant step leaves a cycle
    whose size shrinks with lr)."""
    c = np.array([[10.0, 1.0], [-10.0, 1.0]])

    def descend(feedback, lr):
        comp = Compression("topk", ratio=0.5, levels=0, error_feedback=feedback, rngs=None)
        x = np.zeros(2)
        for _ in range(3000):
            payloads = [comp.encode(i, x - c[i]) for i in range(2)]
            x = x - lr * comp.aggregate(payloads, [0.5, 0.5], _weighted_sum)
        return np.abs(x - [0.0, 1.0]).max(), x
    for lr in (0.1, 0.05):
        gap, x = descend(False, lr)
        np.testing.assert_array_equal(x, [0.0, 0.0])           # not a step, ever
        assert gap == 1.0
    gaps = [descend(True, lr)[0] for lr in (0.1, 0.05, 0.01)]
    assert gaps[0] < 0.1 and gaps[1] < 0.07 and gaps[2] < 0.04 and gaps[2] < gaps[0]


def test_sign_sgd_takes_the_majority_vote():
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(33) for _ in range(5)]
    comp = Compression("sign", ratio=1, levels=0, error_feedback=False, rngs=None)
    payloads = [comp.encode(i, g) for i, g in enumerate(grads)]
    ws = [0.1, 0.2, 0.3, 0.15, 0.25]
    got = comp.aggregate(payloads, ws, _weighted_sum)
    vote = np.sign(np.sum([np.where(g < 0, -1.0, 1.0) for g in grads], axis=0))
    scale = sum(w * np.abs(g).mean() for w, g in zip(ws, grads))
    np.testing.assert_allclose(got, vote * scale, rtol=1e-15)
    assert payloads[0].nbytes == 5 + 8                        # 33 signs in 5 bytes, a scale
    np.testing.assert_array_equal(signs(payloads[0]), np.where(grads[0] < 0, -1.0, 1.0))


def test_the_residual_is_the_workers_memory_and_randomness_is_seeded():
    s = Scenario().replace(**{**BASE, "compression.kind": "randk", "compression.ratio": 0.2,
                              "compression.error_feedback": True})
    r = run(s)
    n = r.model.params_.size
    assert r.memory["worker0"]["breakdown"]["optimizer"] == 8 * n
    assert run(s).summary == r.summary
    other = run(s.replace(seed=1))
    assert other.summary["final_loss"] != r.summary["final_loss"]


@pytest.mark.parametrize("changes, match", [
    ({"compression.kind": "zip"}, "compression.kind"),
    ({"compression.kind": "topk", "compression.ratio": 0.0}, "compression.ratio"),
    ({"compression.kind": "topk", "compression.ratio": 1.5}, "compression.ratio"),
    ({"compression.kind": "qsgd", "compression.levels": 0}, "compression.levels"),
    ({"compression.kind": "topk", "strategy.kind": "allreduce"}, "'sync' | 'async' | 'ssp'"),
    ({"compression.kind": "topk", "math": False}, "timing-only"),
])
def test_a_bad_compression_is_refused_by_name(changes, match):
    with pytest.raises(ScenarioError, match=match):
        Scenario().replace(**{**BASE, **changes})


def test_a_compressor_of_your_own_runs_inside_a_simulation():
    """Exercise 5.1 plugged in (``run(..., compression=Compression.custom(...))``): the
    reference solution trains simdml's top-k model; its int64 indices cost 4 bytes an
    entry more than simdml's int32 ones, and the bytes say so."""
    from simdml.check import load
    solution = load("ex05", solution=True)
    s = Scenario().replace(**BASE)
    ours = run(s.replace(**{"compression.kind": "topk", "compression.ratio": 0.05,
                            "compression.error_feedback": True}))
    yours = run(s, compression=Compression.custom(solution.compress, solution.decompress,
                                                  ratio=0.05, error_feedback=True))
    np.testing.assert_allclose(yours.model.params_, ours.model.params_, rtol=0, atol=1e-12)
    k = round(0.05 * ours.model.params_.size)
    pushes = BASE["stop.rounds"] * BASE["cluster.workers"]
    assert yours.summary["bytes_sent"] - ours.summary["bytes_sent"] == pushes * 4 * k
    with pytest.raises(ScenarioError, match="strategy.kind='sync', 'async' or 'ssp'"):
        run(s.replace(**{"strategy.kind": "allreduce"}), compression=Compression.custom(
            solution.compress, solution.decompress))


@pytest.mark.parametrize("kind", ["async", "ssp"])
def test_async_and_ssp_pushes_compress_too(kind):
    """Each push is decoded alone: top-k at ratio 1 is today's run bit for bit; top-k at
    5 % with error feedback trains, sending fewer bytes a push by the formula."""
    base = Scenario().replace(**{**BASE, "strategy.kind": kind, "stop.rounds": 120})
    dense = run(base)
    full = run(base.replace(**{"compression.kind": "topk", "compression.ratio": 1.0}))
    np.testing.assert_array_equal(full.model.params_, dense.model.params_)
    assert [h["time"] for h in full.history] != [h["time"] for h in dense.history]  # 12 B/entry
    ef = run(base.replace(**{"compression.kind": "topk", "compression.ratio": 0.05,
                             "compression.error_feedback": True}))
    assert ef.summary["final_loss"] < 0.5 * ef.history[0]["loss"]
    assert ef.summary["bytes_sent"] < dense.summary["bytes_sent"]
    assert ef.memory["worker0"]["breakdown"]["optimizer"] == 8 * ef.model.params_.size
