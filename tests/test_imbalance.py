"""Contracts of imbalance handling: class weights are exact under distribution, and they
(and resampling) raise the recall of a rare class by the margins stated here."""
import numpy as np
import pytest

from simdml import Scenario, ScenarioError, run
from simdml.experiment import prepare_data
from simdml.imbalance import random_oversample, random_undersample, resample, smote
from simdml.models import KernelSVM, LogisticRegression

RARE = {"data.dataset": "synthetic", "data.n_samples": 2000, "data.n_features": 4,
        "data.n_classes": 2, "data.weights": [0.95, 0.05], "data.class_sep": 0.7,
        "cluster.workers": 4, "stop.rounds": 150, "strategy.lr": 0.5}


@pytest.mark.parametrize("partition", ["iid", "label_skew", "size_skew"])
@pytest.mark.parametrize("strategy", [{}, {"scheduling.policy": "pull"}])
def test_class_weighted_sync_is_weighted_full_batch_gd(partition, strategy):
    """Class weights make each row weigh its class's weight; the server weighs each
    shard by its share of the total weight, so sync (and task rounds) compute exactly
    the centralized class-weighted gradient descent, for any partition."""
    s = Scenario().replace(**{**RARE, "data.partition": partition, "stop.rounds": 20,
                              "model.class_weight": "balanced", **strategy})
    split = prepare_data(s)
    central = LogisticRegression(n_iter=20, class_weight="balanced").fit(split.X_train,
                                                                         split.y_train)
    np.testing.assert_allclose(run(s).model.params_, central.params_, rtol=0, atol=1e-12)


def test_balanced_class_weights_raise_minority_recall():
    """On the 95:5 synthetic set, balanced class weights raise the rare class's test
    recall by at least 30 points (at some cost in accuracy), and balanced accuracy too."""
    plain = run(Scenario().replace(**RARE)).summary
    balanced = run(Scenario().replace(**{**RARE, "model.class_weight": "balanced"})).summary
    assert balanced["recall"][1] >= plain["recall"][1] + 0.30
    assert balanced["balanced_accuracy"] > plain["balanced_accuracy"] + 0.10


def test_kernel_svm_class_weight_scales_the_box():
    """class_weight multiplies C per class (libsvm's -wi): a dict {1: w} equals fitting
    with sample_weight w on class 1's rows."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 2))
    y = (X[:, 0] + 0.5 * rng.normal(size=80) > 0.9).astype(int)
    by_class = KernelSVM(class_weight={1: 4.0}).fit(X, y)
    by_row = KernelSVM().fit(X, y, sample_weight=np.where(y == 1, 4.0, 1.0))
    np.testing.assert_allclose(by_class.dual_coef_, by_row.dual_coef_, rtol=1e-12)


# ------------------------------------------------------------------- resampling


def _skewed(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(50, 3))
    y = np.array([0] * 40 + [1] * 8 + [2] * 2)
    return X, y, rng


def test_oversampling_and_smote_bring_every_class_to_the_largest():
    X, y, rng = _skewed()
    for method in (random_oversample, smote):
        Xr, yr, _ = method(X, y, rng)
        assert np.bincount(yr).tolist() == [40, 40, 40]
        np.testing.assert_array_equal(Xr[:50], X)  # the original rows are kept, first


def test_undersampling_brings_every_class_to_the_smallest():
    X, y, rng = _skewed()
    Xr, yr, _ = random_undersample(X, y, rng)
    assert np.bincount(yr).tolist() == [2, 2, 2]
    assert all(any(np.array_equal(r, x) for x in X) for r in Xr)  # only real rows


def test_smote_rows_lie_between_two_rows_of_their_class():
    """With two rows in the rare class, every synthetic row is on the segment between
    them (the only neighbour pair): collinear, and inside it."""
    X, y, rng = _skewed()
    Xr, yr, flops = smote(X, y, rng, k_neighbors=5)
    a, b = X[y == 2]
    for r in Xr[50:][yr[50:] == 2]:
        t = (r - a) @ (b - a) / ((b - a) @ (b - a))
        np.testing.assert_allclose(r, a + t * (b - a), atol=1e-12)
        assert 0.0 <= t <= 1.0
    assert flops > 0
    with pytest.raises(ValueError, match=r"unknown resampling method 'smite'"):
        resample("smite", X, y, rng)


@pytest.mark.parametrize("method", ["oversample", "undersample", "smote"])
@pytest.mark.parametrize("where", ["global", "local"])
def test_resampling_raises_minority_recall(method, where):
    """Each resampler, applied globally or per worker, raises the rare class's recall by
    at least 30 points on the 95:5 set, and reports the rows it added or removed."""
    plain = run(Scenario().replace(**RARE)).summary
    s = run(Scenario().replace(**{**RARE, "imbalance.method": method,
                                  "imbalance.where": where})).summary
    assert s["recall"][1] >= plain["recall"][1] + 0.30
    assert s["rows_added"] + s["rows_removed"] > 0


def test_imbalance_needs_classes():
    with pytest.raises(ScenarioError, match=r"imbalance.method='smote' balances classes"):
        Scenario().replace(**{"data.dataset": "synthetic_regression", "model.kind": "linear",
                              "imbalance.method": "smote"})


# ------------------------------------------------------------------- rebalancing


def test_rebalancing_moves_the_fewest_rows_to_fair_shares():
    """After rebalancing every shard holds each class's fair share (within one row); the
    rows moved are exactly the shards' surpluses; they travel as messages of
    (d + 1) x 8 bytes per row before training; sync trains the same model (it is
    partition-free) and every row is still there once."""
    base = {"data.dataset": "digits", "cluster.workers": 8, "data.partition": "by_label",
            "stop.rounds": 5}
    s0 = Scenario().replace(**base)
    s1 = Scenario().replace(**{**base, "data.rebalance": True})
    before, after = prepare_data(s0), prepare_data(s1)
    counts = np.array([np.bincount(after.y_train[p], minlength=10) for p in after.parts])
    assert (counts.max(axis=0) - counts.min(axis=0)).max() <= 1
    shares = counts.sum(axis=0) / 8
    surplus = sum(np.maximum(0, np.bincount(before.y_train[p], minlength=10) - np.ceil(shares)).sum()
                  for p in before.parts)
    r0, r1 = run(s0), run(s1)
    moved = r1.summary["rows_moved"]
    assert surplus <= moved <= surplus + 8 * 10
    assert r1.summary["bytes_sent"] - r0.summary["bytes_sent"] == moved * 65 * 8
    np.testing.assert_allclose(r1.model.params_, r0.model.params_, rtol=0, atol=1e-12)
    assert sorted(map(tuple, after.X_train.tolist())) == sorted(map(tuple, before.X_train.tolist()))
    assert r1.history[0]["time"] > 0  # training starts once the rows have arrived


@pytest.mark.parametrize("changes, message", [
    ({"imbalance.method": "smite"}, r"imbalance.method must be one of 'oversample', "
                                    r"'undersample', 'smote'; got 'smite'"),
    ({"imbalance.method": "smote", "imbalance.where": "node"},
     r"imbalance.where must be one of 'global', 'local'; got 'node'"),
    ({"data.label_noise": 1.0}, r"data.label_noise must be < 1 \(a fraction\); got 1.0"),
    ({"data.dataset": "synthetic_regression", "model.kind": "linear", "data.rebalance": True},
     r"data.rebalance balances the classes of the shards"),
    ({"data.rebalance": "yes"}, r"data.rebalance must be true or false; got 'yes'"),
    ({"stop.wall_time": 0}, r"stop.wall_time must be > 0 \(s\); got 0"),
])
def test_new_scenario_keys_are_checked(changes, message):
    with pytest.raises(ScenarioError, match=message):
        Scenario().replace(**changes)
