"""3D parallelism (``strategy.kind = "hybrid"``): every factorisation D x T x P of the
workers trains the model of one node on the same batches (1e-12); 1 x 1 x P is the
pipeline strategy and 1 x T x 1 the tensor strategy, bit for bit, byte for byte and
second for second; the replicas' all-reduce sends 2 (D - 1) / D of the gradient.
"""
import numpy as np
import pytest

from simdml import Scenario, ScenarioError, run
from simdml.strategies.hybrid import coordinates

# 320 training rows; layers 8->12->10->20->16->8->4 (6 layers; paired widths 12, 20, 8)
BASE = {"model.kind": "mlp", "model.hidden": [12, 10, 20, 16, 8], "data.dataset": "synthetic",
        "data.n_samples": 400, "data.test_size": 0.2, "data.n_features": 8,
        "data.n_classes": 4, "strategy.lr": 0.3, "stop.rounds": 3, "eval_every": 1}


def _hybrid(D, T, P, **changes):
    return {**BASE, "strategy.kind": "hybrid", "cluster.workers": D * T * P,
            "strategy.data_parallel": D, "strategy.tensor_parallel": T,
            "strategy.pipeline_parallel": P, **changes}


def _single(config):
    keep = {k: v for k, v in config.items() if not k.startswith("strategy.") or k in (
        "strategy.lr", "strategy.batch_size")}
    return run(Scenario().replace(**{**keep, "strategy.kind": "sync", "cluster.workers": 1}))


@pytest.mark.parametrize("D, T, P", [(8, 1, 1), (1, 8, 1), (4, 2, 1), (2, 4, 1), (4, 1, 2),
                                     (2, 2, 2), (1, 4, 2), (2, 1, 4), (1, 2, 4), (1, 2, 3)])
def test_every_factorisation_trains_the_same_model(D, T, P):
    """Only time, bytes and memory differ (1e-12 from one node on the same batches)."""
    config = _hybrid(D, T, P, **{"strategy.microbatches": 2})
    split, whole = run(Scenario().replace(**config)), _single(config)
    np.testing.assert_allclose(split.model.params_, whole.model.params_, rtol=0, atol=1e-12)
    np.testing.assert_allclose([h["loss"] for h in split.history],
                               [h["loss"] for h in whole.history], rtol=1e-12)


@pytest.mark.parametrize("changes", [
    {"strategy.schedule": "gpipe", "strategy.microbatches": 5},
    {"strategy.batch_size": 64, "optimizer.kind": "adam", "strategy.lr": 0.01},
    {"strategy.partition": "balanced", "model.activation": "tanh", "model.l2": 0.01},
    {"model.kind": "mlp_regression", "data.dataset": "synthetic_regression",
     "strategy.lr": 0.05},
    {"strategy.virtual_stages": 2, "strategy.microbatches": 4, "model.hidden": [12, 10, 20, 16, 8, 6, 6]},
], ids=["gpipe-m5", "minibatch-adam", "balanced-tanh-l2", "regression", "interleaved-v2"])
def test_two_by_two_by_two_on_every_kind_of_training(changes):
    config = _hybrid(2, 2, 2, **changes)
    split, whole = run(Scenario().replace(**config)), _single(config)
    np.testing.assert_allclose(split.model.params_, whole.model.params_, rtol=0, atol=1e-12)


def _same_run(a, b):
    np.testing.assert_array_equal(a.model.params_, b.model.params_)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    np.testing.assert_allclose([h["time"] for h in a.history], [h["time"] for h in b.history],
                               rtol=1e-12)
    assert a.summary["bytes_sent"] == b.summary["bytes_sent"]


@pytest.mark.parametrize("schedule, v", [("gpipe", 1), ("1f1b", 1), ("1f1b", 2)])
def test_one_by_one_by_p_is_the_pipeline(schedule, v):
    options = {"strategy.microbatches": 6 if v > 1 else 4, "strategy.schedule": schedule,
               "strategy.virtual_stages": v}
    hybrid = run(Scenario().replace(**_hybrid(1, 1, 3, **options)))
    pipeline = run(Scenario().replace(**{**BASE, **options, "strategy.kind": "pipeline",
                                         "cluster.workers": 3}))
    _same_run(hybrid, pipeline)
    assert hybrid.summary["bubble_fraction"] == pipeline.summary["bubble_fraction"] > 0


@pytest.mark.parametrize("T", [2, 4])
def test_one_by_t_by_one_is_the_tensor_strategy(T):
    hybrid = run(Scenario().replace(**_hybrid(1, T, 1)))
    tensor = run(Scenario().replace(**{**BASE, "strategy.kind": "tensor", "cluster.workers": T}))
    _same_run(hybrid, tensor)


@pytest.mark.parametrize("D", [2, 4])
def test_the_replicas_all_reduce_their_whole_gradient(D):
    """D x 1 x 1: per step every worker sends 2 (D - 1) / D of the 8 Psi gradient bytes."""
    r = run(Scenario().replace(**_hybrid(D, 1, 1)))
    psi = r.model.params_.size
    assert r.summary["bytes_sent"] == pytest.approx(3 * D * 2 * (D - 1) / D * 8 * psi,
                                                    rel=1e-12)


def test_coordinates_put_the_tensor_rank_fastest():
    assert [coordinates(r, 2, 3) for r in range(6)] == [
        (0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1), (0, 2, 0), (0, 2, 1)]
    assert coordinates(7, 2, 2) == (1, 1, 1)


@pytest.mark.parametrize("changes, message", [
    ({"cluster.workers": 7}, r"data_parallel x tensor_parallel x pipeline_parallel must equal "
                             r"cluster.workers=7; got 2 x 2 x 2 = 8"),
    ({"strategy.pipeline_parallel": 8, "strategy.data_parallel": 1, "strategy.tensor_parallel": 1},
     r"pipeline_parallel=8 puts at least one layer on each stage; the MLP has 6 layers"),
    ({"strategy.partition": [3, 2]}, r"adding up to the 6 layers"),
    ({"strategy.tensor_parallel": 0}, r"tensor_parallel must be an integer >= 1"),
    ({"strategy.schedule": "zb"}, r"schedule must be one of"),
])
def test_a_bad_hybrid_scenario_names_the_key(changes, message):
    with pytest.raises(ScenarioError, match=message):
        Scenario().replace(**{**_hybrid(2, 2, 2), **changes})


def test_too_narrow_a_layer_for_the_tensor_ranks_is_an_error():
    with pytest.raises(ValueError, match=r"strategy.tensor_parallel=16 splits the 8 units "
                                         r"after layer 4: each rank needs one \(model.hidden\)"):
        run(Scenario().replace(**_hybrid(1, 16, 1)))


def test_too_few_rows_for_the_micro_batches_is_an_error():
    with pytest.raises(ScenarioError, match=r"microbatches=40 on each of the data_parallel=2 "
                                            r"replicas needs 80 rows; strategy.batch_size=64"):
        Scenario().replace(**_hybrid(2, 1, 1, **{"strategy.batch_size": 64,
                                                 "strategy.microbatches": 40}))
    with pytest.raises(ValueError, match=r"microbatches=200 on each of the data_parallel=2 "
                                         r"replicas needs 400 rows; a batch has 320"):
        run(Scenario().replace(**_hybrid(2, 1, 1, **{"strategy.microbatches": 200})))
