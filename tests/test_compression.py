"""Gradient compression (``[compression]``, ``simdml.compression``) in the sync parameter
server: top-k at ratio 1 trains today's model bit for bit; the bytes on the wire are
the payloads' by formula; QSGD is unbiased and within Alistarh et al.'s variance bound;
top-k with error feedback reaches the uncompressed loss, and without it two workers
whose top entries cancel stall (by hand, and in a simulated run on label-split shards);
signSGD's server takes the majority vote; the residual is worker memory; async and ssp
pushes compress; allreduce and ddp all-gather the payloads on a ring (the parameter
server's sum, in the all-gather's time), local_sgd compresses each round's change; bad
settings are refused by name.
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
    ({"compression.kind": "topk", "strategy.kind": "gossip"}, "'sync' | 'async' | 'ssp'"),
    ({"compression.kind": "topk", "strategy.kind": "allreduce", "strategy.collective": "tree"},
     "strategy.collective='tree': set it to 'ring'"),
    ({"compression.kind": "topk", "strategy.kind": "ddp", "model.kind": "mlp",
      "strategy.zero": 1}, "strategy.zero=1"),
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
    with pytest.raises(ScenarioError, match="got strategy.kind='gossip'"):
        run(s.replace(**{"strategy.kind": "gossip"}), compression=Compression.custom(
            solution.compress, solution.decompress))
    with pytest.raises(ScenarioError, match="in place of \\[compression\\]"):
        run(s.replace(**{"compression.kind": "sign"}), compression=Compression.custom(
            solution.compress, solution.decompress))
    gathered = run(s.replace(**{"strategy.kind": "allreduce"}), compression=Compression.custom(
        solution.compress, solution.decompress, ratio=0.05, error_feedback=True))
    np.testing.assert_allclose(gathered.model.params_, ours.model.params_, rtol=0, atol=1e-12)


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


# -- a simulated stall; all-gathered payloads; compressed model changes -------------------

STALL = {"data.dataset": "synthetic", "data.n_samples": 400, "data.n_features": 2,
         "data.class_sep": 0.5, "data.partition": "by_label", "data.classes_per_part": 1,
         "cluster.workers": 2, "stop.rounds": 300}


@pytest.mark.parametrize("strategy", ["sync", "allreduce"])
def test_on_label_split_shards_top_k_without_feedback_stalls_in_a_run(strategy):
    """Two workers, one class each, a two-class logistic model (6 parameters) and top-2:
    at 0 each worker's largest entries are the two intercepts' (+-1/2: all its rows are
    of one class; the weights' are smaller, the classes overlapping), and the two
    workers' cancel exactly, round after round: the model never moves from 0 and the
    loss stays ln 2. With error feedback the weights' entries pile up until they are
    sent, and the run reaches the dense loss (within 1 %)."""
    base = Scenario().replace(**{**STALL, "strategy.kind": strategy})
    dense = run(base)
    top2 = {"compression.kind": "topk", "compression.ratio": 2 / 6}
    plain = run(base.replace(**top2))
    ef = run(base.replace(**{**top2, "compression.error_feedback": True}))
    assert plain.model.params_.size == 6
    np.testing.assert_array_equal(plain.model.params_, 0.0)
    assert {h["loss"] for h in plain.history} == {np.log(2)}
    assert dense.summary["final_loss"] < 0.7 * np.log(2)
    assert ef.summary["final_loss"] <= 1.01 * dense.summary["final_loss"]


@pytest.mark.parametrize("kind, extra", [("topk", {"compression.ratio": 0.1}),
                                         ("randk", {"compression.ratio": 0.25}),
                                         ("qsgd", {"compression.levels": 4}),
                                         ("sign", {}),
                                         ("sign", {"compression.error_feedback": True})])
def test_allreduce_all_gathers_the_payloads_into_sync_s_model(kind, extra):
    """Every worker decodes every payload and aggregates them in worker order, as the
    sync server does, with the same random streams: sync's model, bit for bit."""
    changes = {**BASE, "compression.kind": kind, **extra}
    ours = run(Scenario().replace(**{**changes, "strategy.kind": "allreduce"}))
    sync = run(Scenario().replace(**changes))
    np.testing.assert_array_equal(ours.model.params_, sync.model.params_)
    assert [h["loss"] for h in ours.history] == [h["loss"] for h in sync.history]


@pytest.mark.parametrize("kind, extra", [("topk", {"compression.ratio": 0.1}),
                                         ("qsgd", {"compression.levels": 4}),
                                         ("sign", {})])
@pytest.mark.parametrize("n", [3, 4, 8])
def test_an_all_gathered_round_costs_the_all_gather_s_time_and_bytes(kind, extra, n):
    """Compute free: a round lasts ``allgather_time(p, c)`` = ``(p - 1)(alpha + c beta)``,
    ``c`` the payload's bytes by formula, and every worker sends ``p - 1`` payloads a
    round (and, when worker 0 stops, the others may have begun the next round's)."""
    from simdml.collectives import allgather_time
    s = Scenario().replace(**{**BASE, "strategy.kind": "allreduce", "cluster.workers": n,
                              "cluster.speed": float("inf"), "network.latency": 1e-3,
                              "network.bandwidth": 1e6, "compression.kind": kind, **extra})
    r = run(s)
    size = r.model.params_.size
    c = wire_bytes(kind, size, ratio=extra.get("compression.ratio", 0.01),
                   levels=extra.get("compression.levels", 16))
    rounds = np.diff([h["time"] for h in r.history])
    np.testing.assert_allclose(rounds, allgather_time(n, c, 1e-3, 1e6), rtol=1e-12)
    sent, per_round = r.summary["bytes_sent"], n * (n - 1) * c
    assert sent % c == 0
    assert BASE["stop.rounds"] * per_round <= sent < (BASE["stop.rounds"] + 1) * per_round


def test_ddp_compresses_each_bucket_with_a_residual_of_its_own():
    """Top-k at ratio 1 trains ddp's dense model (to rounding: the all-gathered sum adds in
    worker order, the ring in its own); each bucket all-gathers its own payload, so the
    bytes are the buckets' payloads by formula; with error feedback each bucket keeps a
    residual: together, one of the model's size, booked as optimizer memory."""
    from tests.test_ddp import TIMED
    base = Scenario().replace(**{**TIMED, "strategy.bucket_size": 2000})
    dense = run(base)
    full = run(base.replace(**{"compression.kind": "topk", "compression.ratio": 1.0}))
    np.testing.assert_allclose(full.model.params_, dense.model.params_, rtol=0, atol=1e-12)
    assert dense.summary["n_buckets"] > 1
    s = base.replace(**{"compression.kind": "topk", "compression.ratio": 0.1,
                        "compression.error_feedback": True})
    r = run(s)
    from simdml.strategies.ddp import buckets_of
    sizes = [b.span.stop - b.span.start for b in buckets_of(r.model, 2000)]
    p, iterations = s.cluster.workers, r.summary["updates"]
    per_iteration = p * (p - 1) * sum(wire_bytes("topk", m, ratio=0.1) for m in sizes)
    assert r.summary["bytes_sent"] == iterations * per_iteration
    n = r.model.params_.size
    state = r.memory["worker0"]["breakdown"]["optimizer"]
    assert state == n * 8 + run(s.replace(**{"compression.error_feedback": False})
                                ).memory["worker0"]["breakdown"]["optimizer"]


def test_local_sgd_sends_each_round_s_change_compressed():
    """Top-k at ratio 1 is local SGD's model (to rounding: the server adds the average
    change to the model); sign with error feedback sends 1 bit an entry and still
    trains; the bytes a round are the broadcasts plus the payloads by formula."""
    base = Scenario().replace(**{**BASE, "strategy.kind": "local_sgd"})
    dense = run(base)
    full = run(base.replace(**{"compression.kind": "topk", "compression.ratio": 1.0}))
    np.testing.assert_allclose(full.model.params_, dense.model.params_, rtol=0, atol=1e-12)
    sign = run(base.replace(**{"compression.kind": "sign", "compression.error_feedback": True}))
    assert sign.summary["final_loss"] < 1.5 * dense.summary["final_loss"]
    n, p, rounds = dense.model.params_.size, BASE["cluster.workers"], BASE["stop.rounds"]
    saved = p * rounds * (8 * n - wire_bytes("sign", n))
    assert dense.summary["bytes_sent"] - sign.summary["bytes_sent"] == saved


def test_a_crashed_worker_forgets_its_residual():
    comp = Compression("topk", ratio=0.5, levels=0, error_feedback=True, rngs=None)
    comp.encode(0, np.array([3.0, 1.0]))
    comp.encode(0, np.array([3.0, 1.0, 2.0, 0.5]), part=1)
    comp.encode(1, np.array([1.0, 3.0]))
    assert comp.residual_nbytes(0) == 6 * 8 and comp.residual_nbytes(1) == 2 * 8
    comp.forget(0)
    assert comp.residual_nbytes(0) == 0 and comp.residual_nbytes(1) == 2 * 8
    np.testing.assert_array_equal(decompress(comp.encode(0, np.array([3.0, 1.0]))), [3.0, 0.0])


def test_a_worker_that_crashes_restarts_without_its_residual():
    """crash_recovery.toml (worker 2 down from 20 to 60 ms): each worker's program begins
    with no residual, and worker 2's begins twice -- its residual is dropped on return."""
    from simdml.check import load
    solution = load("ex05", solution=True)

    class Watched(Compression):
        forgotten: list = []

        def forget(self, i):
            self.forgotten.append((i, self.residual_nbytes(i)))
            super().forget(i)

    comp = Watched.custom(solution.compress, solution.decompress, ratio=0.1,
                          error_feedback=True)
    r = run("crash_recovery", compression=comp)
    assert r.summary["updates"] > 0
    firsts = sorted(comp.forgotten[:4])
    assert firsts == [(0, 0), (1, 0), (2, 0), (3, 0)]
    (again, held), = comp.forgotten[4:]
    assert again == 2 and held > 0
    assert comp.residual_nbytes(2) > 0                     # and it built a new one
