"""Batched cohorts (``strategies.job.Cohort``): every sync worker's gradient at one model in
one stacked pass is each worker's own ``grad`` bit for bit, and a run with it is the run
without it byte for byte (history, summary, trace)."""
import numpy as np
import pytest

from simdml import Scenario, run
from simdml.models import MODELS
from simdml.strategies import job as job_module

BASE = {"strategy.kind": "sync", "cluster.workers": 16, "data.dataset": "synthetic",
        "data.n_samples": 2000, "data.n_features": 10, "stop.rounds": 15}


@pytest.mark.parametrize("kind", ["logistic", "svm", "linear"])
@pytest.mark.parametrize("K, m, d, k", [(3, 5, 4, 2), (7, 100, 20, 2), (50, 39, 50, 3),
                                        (10, 1, 3, 2), (9, 257, 13, 5)])
def test_stacked_gradients_are_each_shard_s_gradient_bit_for_bit(kind, K, m, d, k):
    rng = np.random.default_rng(K * m + d)
    k = 1 if kind == "linear" else k
    model = MODELS[kind](l2=1e-3 if K % 2 else 0.0)
    params = rng.standard_normal(model.init_params(d, max(k, 2) if kind != "linear" else 1).size)
    X = rng.standard_normal((K * m + 3, d))[2:K * m + 2]              # a view, offset
    y = rng.standard_normal(K * m) if kind == "linear" else rng.integers(0, k, K * m)
    stacked = model.stacked_grads(params, X, y, m)
    assert stacked.shape == (K, params.size)
    for s in range(K):
        assert np.array_equal(stacked[s], model.grad(params, X[s * m:(s + 1) * m],
                                                     y[s * m:(s + 1) * m])), s


def _both(changes, monkeypatch):
    """The run with cohorts and without, and how many shards the cohorts computed."""
    s = Scenario().replace(**{**BASE, **changes})
    computed = []
    model = MODELS[s.model.kind]
    real = model.stacked_grads

    def counted(self, params, X, y, m):
        computed.append(len(y) // m)
        return real(self, params, X, y, m)
    monkeypatch.setattr(model, "stacked_grads", counted)
    batched = run(s)
    monkeypatch.setattr(job_module.Cohort, "applies", staticmethod(lambda job: False))
    alone = run(s)
    return batched, alone, sum(computed)


@pytest.mark.parametrize("changes", [
    {},                                                           # 16 shards of 100: one run
    {"data.n_samples": 2013, "cluster.workers": 7},               # two sizes: two runs
    {"data.partition": "label_skew"},                             # sizes differ: alone
    {"strategy.wait_for": 12, "cluster.compute_time": "lognormal", "cluster.jitter": 0.8},
    {"strategy.round_timeout": 1e-3, "stop.rounds": 30,
     "faults.crash": [{"node": 1, "at": 2e-4, "recover_after": 5e-3}]},
    {"model.kind": "linear", "data.dataset": "synthetic_regression"},
    {"model.kind": "svm", "optimizer.kind": "adam"},
    {"compression.kind": "topk", "compression.ratio": 0.3},
    {"faults.byzantine": [2], "aggregation.rule": "median"},
], ids=["equal", "two_sizes", "label_skew", "k_of_n", "crash", "linear", "svm_adam",
        "topk", "byzantine"])
def test_a_run_with_cohorts_is_the_run_without_byte_for_byte(changes, monkeypatch):
    batched, alone, computed = _both(changes, monkeypatch)
    assert batched.to_json() == alone.to_json()
    assert batched.trace.spans == alone.trace.spans
    if changes.get("data.partition") == "label_skew":
        assert computed == 0                       # no two neighbours of one size
    else:
        assert computed >= changes.get("stop.rounds", BASE["stop.rounds"]) * 2


def test_shards_larger_than_the_cohort_s_bound_compute_alone(monkeypatch):
    """Above ``SHARD_ROWS`` rows a shard's own products dwarf numpy's per-call cost: no
    stacking (and nothing changes)."""
    monkeypatch.setattr(job_module.Cohort, "SHARD_ROWS", 93)   # shards of 94 and 93 rows
    batched, alone, computed = _both({}, monkeypatch)
    assert batched.to_json() == alone.to_json()
    assert computed == BASE["stop.rounds"] * 4                 # only the run of 93s


@pytest.mark.parametrize("changes", [
    {"strategy.batch_size": 10},                                  # drawn rows: per worker
    {"model.class_weight": "balanced"},                           # weighted rows
    {"privacy.clip": 1.0},                                        # DP-SGD's own sum
    {"strategy.kind": "async"},                                   # a model per worker
])
def test_where_workers_do_not_share_whole_unweighted_shards_there_is_no_cohort(changes,
                                                                              monkeypatch):
    batched, alone, computed = _both(changes, monkeypatch)
    assert computed == 0 and batched.to_json() == alone.to_json()


@pytest.mark.parametrize("rows", [250, 470, 1, 10_000])
def test_a_cohort_s_passes_are_bounded_in_rows_and_change_no_byte(rows, monkeypatch):
    monkeypatch.setattr(job_module.Cohort, "ROWS", rows)
    passes = []
    model = MODELS["logistic"]
    real = model.stacked_grads

    def recorded(self, params, X, y, m):
        passes.append(len(y))
        return real(self, params, X, y, m)
    monkeypatch.setattr(model, "stacked_grads", recorded)
    s = Scenario().replace(**BASE)
    batched = run(s)
    # 1,500 training rows on 16 workers: 12 shards of 94, then 4 of 93 (two runs)
    assert sum(passes) % 1500 == 0                             # every round, all rows
    assert all(p <= max(rows, 94) for p in passes)             # bounded, a shard at least
    assert max(passes) == min(max(rows // 94, 1), 12) * 94     # as full as whole shards go
    monkeypatch.setattr(job_module.Cohort, "applies", staticmethod(lambda job: False))
    assert batched.to_json() == run(s).to_json()


def test_a_cohort_s_plan_cuts_runs_of_one_size_into_bounded_passes(monkeypatch):
    monkeypatch.setattr(job_module.Cohort, "ROWS", 470)            # five shards of 94
    plan = job_module.Cohort.plan([94] * 12 + [93] * 4 + [50] + [600] * 3 + [7] * 2)
    assert plan == [(0, 5), (5, 10), (10, 12), (12, 16), (20, 22)]  # 50 alone; 600 > 512
