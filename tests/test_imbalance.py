"""Contracts of imbalance handling: class weights are exact under distribution, and they
(and resampling) raise the recall of a rare class by the margins stated here."""
import numpy as np
import pytest

from simdml import Scenario, run
from simdml.experiment import prepare_data
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
