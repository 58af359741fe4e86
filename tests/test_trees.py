"""Contracts of the trees: the histogram split is the brute-force best split, the
distributed histogram tree is the centralized tree for any partition, voting with every
feature is exact, and the wire carries what the protocol says."""
import numpy as np
import pytest

from simdml import Scenario, ScenarioError, run
from simdml.data import load, train_test_split
from simdml.experiment import prepare_data
from simdml.models import DecisionTree, NotFittedError, RandomForest
from simdml.models._hist import apply_bins, bin_edges, impurity, split_scores


def _tree_scenario(kind="hist_tree", **changes) -> Scenario:
    base = {"strategy.kind": kind, "model.kind": "tree", "cluster.workers": 4,
            "data.dataset": "wine"}
    return Scenario().replace(**{**base, **changes})


def _same_tree(a: DecisionTree, b: DecisionTree) -> None:
    np.testing.assert_array_equal(a.feature_, b.feature_)
    np.testing.assert_array_equal(a.bin_, b.bin_)
    np.testing.assert_array_equal(a.children_left_, b.children_left_)
    np.testing.assert_array_equal(a.counts_, b.counts_)


# ------------------------------------------------------------------ centralized tree


def _brute_force_split(X, y, criterion, n_classes):
    """Every threshold between distinct values of every feature, scored naively."""
    best = (-np.inf, None, None)
    parent = np.bincount(y, minlength=n_classes)
    for j in range(X.shape[1]):
        values = np.unique(X[:, j])
        for t in (values[:-1] + values[1:]) / 2:
            left = X[:, j] <= t
            cl, cr = (np.bincount(y[m], minlength=n_classes) for m in (left, ~left))
            gain = (len(y) * impurity(parent, criterion) - left.sum() * impurity(cl, criterion)
                    - (~left).sum() * impurity(cr, criterion)) / len(y)
            if gain > best[0] + 1e-12:
                best = (gain, j, t)
    return best


@pytest.mark.parametrize("criterion", ["gini", "entropy"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_root_split_is_the_brute_force_best(criterion, seed):
    """With a bin per distinct value, the root split is the best threshold found by
    trying every one (same feature, same threshold, same decrease)."""
    rng = np.random.default_rng(seed)
    X = np.round(rng.normal(size=(60, 4)), 1)
    y = (X[:, 0] + 0.5 * X[:, 2] + rng.normal(scale=0.5, size=60) > 0).astype(int) \
        + (X[:, 1] > 1)
    tree = DecisionTree(criterion=criterion, max_depth=1).fit(X, y)
    gain, feature, threshold = _brute_force_split(X, y, criterion, 3)
    assert tree.feature_[0] == feature and tree.threshold_[0] == pytest.approx(threshold)
    counts = tree.counts_
    decrease = (60 * impurity(counts[0], criterion) - counts[1].sum() * impurity(counts[1], criterion)
                - counts[2].sum() * impurity(counts[2], criterion)) / 60
    assert decrease == pytest.approx(gain, rel=1e-12)


def test_bins_split_between_values_and_cap_at_max_bins():
    """Few distinct values: one bin each, thresholds at the midpoints; many: at most
    max_bins bins; code <= b iff x <= edges[b]."""
    X = np.array([[0.0], [1.0], [1.0], [3.0]])
    edges = bin_edges(X, 255)
    np.testing.assert_array_equal(edges[0], [0.5, 2.0])
    np.testing.assert_array_equal(apply_bins(X, edges)[:, 0], [0, 1, 1, 2])
    many = np.random.default_rng(0).normal(size=(5000, 1))
    e = bin_edges(many, 16)[0]
    assert e.size <= 15 and np.all(np.diff(e) > 0)
    codes = apply_bins(many, [e])[:, 0]
    for b in range(e.size):
        np.testing.assert_array_equal(codes <= b, many[:, 0] <= e[b])


def test_unlimited_tree_fits_distinct_rows_perfectly_and_limits_hold():
    """Grown to the end it separates the training set (distinct rows); max_depth,
    min_samples_leaf and min_impurity_decrease each stop growth where they say."""
    d = load("breast_cancer")
    full = DecisionTree().fit(d.X, d.y)
    assert full.score(d.X, d.y) == 1.0 and full.training_loss(d.X, d.y) == 0.0
    assert DecisionTree(max_depth=3).fit(d.X, d.y).depth_ == 3
    leafy = DecisionTree(min_samples_leaf=20).fit(d.X, d.y)
    assert leafy.counts_[leafy.feature_ < 0].sum(axis=1).min() >= 20
    stump = DecisionTree(min_impurity_decrease=0.5).fit(d.X, d.y)
    assert stump.n_leaves_ == 1


def test_balanced_class_weight_raises_minority_recall():
    """On a 9:1 problem, 'balanced' weights recall more of the rare class at depth 2."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 2))
    y = (X[:, 0] + 0.8 * rng.normal(size=2000) > 1.6).astype(int)
    assert 0.03 < y.mean() < 0.15
    plain = DecisionTree(max_depth=2).fit(X, y).predict(X)
    balanced = DecisionTree(max_depth=2, class_weight="balanced").fit(X, y).predict(X)
    recall = lambda p: np.mean(p[y == 1] == 1)  # noqa: E731
    assert recall(balanced) > recall(plain) + 0.2


def test_accuracy_is_that_of_a_reference_cart():
    """Mean test accuracy over 5 splits, as measured against scikit-learn's
    DecisionTreeClassifier (gini; iris 0.943, wine 0.908, breast_cancer 0.918,
    digits 0.856): within 2 points."""
    reference = {"iris": 0.9426, "wine": 0.9084, "breast_cancer": 0.9183, "digits": 0.8562}
    for name, expected in reference.items():
        d = load(name)
        scores = []
        for seed in range(5):
            Xtr, Xte, ytr, yte = train_test_split(d.X, d.y, rng=np.random.default_rng(seed))
            scores.append(DecisionTree().fit(Xtr, ytr).score(Xte, yte))
        assert np.mean(scores) > expected - 0.02, name


def test_forest_beats_a_tree_and_is_reproducible():
    """On wine a 15-tree forest is better than one tree by 5 points; same seed, same
    forest; another seed, another."""
    d = load("wine")
    Xtr, Xte, ytr, yte = train_test_split(d.X, d.y, rng=np.random.default_rng(0))
    forest = RandomForest(n_estimators=15, seed=3).fit(Xtr, ytr)
    assert forest.score(Xte, yte) > DecisionTree().fit(Xtr, ytr).score(Xte, yte) + 0.05
    again = RandomForest(n_estimators=15, seed=3).fit(Xtr, ytr)
    np.testing.assert_array_equal(forest.predict_proba(Xte), again.predict_proba(Xte))
    other = RandomForest(n_estimators=15, seed=4).fit(Xtr, ytr)
    assert not np.array_equal(forest.predict_proba(Xte), other.predict_proba(Xte))


@pytest.mark.parametrize("params, message", [
    ({"criterion": "mse"}, r"The 'criterion' parameter of DecisionTree must be one of 'gini', "
                           r"'entropy'. Got 'mse' instead."),
    ({"max_depth": 0}, r"The 'max_depth' parameter of DecisionTree must be an int >= 1"),
    ({"max_bins": 300}, r"The 'max_bins' parameter of DecisionTree must be <= 255"),
    ({"class_weight": "even"}, r"The 'class_weight' parameter of DecisionTree must be None, "
                               r"'balanced' or a dict"),
    ({"max_features": 0.5}, r"The 'max_features' parameter of DecisionTree must be None, 'sqrt'"),
])
def test_bad_parameters_are_named(params, message):
    with pytest.raises(ValueError, match=message):
        DecisionTree(**params).fit(np.zeros((4, 2)), [0, 1, 0, 1])


def test_unfitted_tree_says_so():
    with pytest.raises(NotFittedError, match="DecisionTree is not fitted yet"):
        DecisionTree().predict(np.zeros((1, 2)))


# --------------------------------------------------------------- distributed trees


@pytest.mark.parametrize("workers, partition", [(1, "iid"), (3, "iid"), (8, "label_skew"),
                                                (4, "proportional")])
@pytest.mark.parametrize("model", [{}, {"model.criterion": "entropy"},
                                   {"model.class_weight": "balanced", "model.max_depth": 4}])
@pytest.mark.parametrize("subtraction", [True, False])
def test_hist_tree_is_the_centralized_tree(workers, partition, model, subtraction):
    """For any partition, the tree built from summed shard histograms is the
    centralized tree on the same bins: same splits, same counts, same predictions."""
    changes = {"cluster.workers": workers, "data.partition": partition,
               "strategy.subtraction": subtraction, **model}
    if partition == "proportional":
        changes["cluster.speed"] = [1e9, 2e9, 3e9, 5e8]
    s = _tree_scenario(**changes)
    r = run(s)
    split = prepare_data(s)
    options = {k.split(".")[1]: v for k, v in model.items()}
    central = DecisionTree(**options).fit(split.X_train, split.y_train)
    _same_tree(r.model, central)
    np.testing.assert_array_equal(r.model.predict(split.X_test), central.predict(split.X_test))
    assert r.summary["stop_reason"].startswith("tree complete")


def test_subtraction_sends_fewer_bytes_for_the_same_tree():
    """Building only the smaller child and subtracting gives the same tree with fewer
    histogram bytes."""
    full = run(_tree_scenario(**{"strategy.subtraction": False, "data.dataset": "digits"}))
    sub = run(_tree_scenario(**{"strategy.subtraction": True, "data.dataset": "digits"}))
    _same_tree(full.model, sub.model)
    assert sub.summary["bytes_sent"] < 0.8 * full.summary["bytes_sent"]


def test_hist_tree_bytes_follow_the_protocol():
    """A stump (max_depth 1) on 2 workers: the server sends each worker the bins with the
    first instruction; each worker sends one root histogram (d x B x k int32 and its
    index)."""
    s = _tree_scenario(**{"cluster.workers": 2, "model.max_depth": 1,
                          "strategy.subtraction": False})
    r = run(s)
    split = prepare_data(s)
    edges = bin_edges(split.X_train, 255)
    n_bins, d, k = max(len(e) for e in edges) + 1, len(edges), 3
    instruction = len("level") + sum(e.nbytes for e in edges) + 8  # kind, bins, [root]
    assert r.summary["messages_sent"] == 4
    assert r.summary["bytes_sent"] == 2 * instruction + 2 * (8 + 4 * d * n_bins * k)


def test_voting_with_every_feature_is_the_exact_tree():
    """With 2 top_k >= d every feature's histogram travels: voting_tree = hist_tree."""
    exact = run(_tree_scenario(**{"data.partition": "label_skew"}))
    voted = run(_tree_scenario("voting_tree", **{"data.partition": "label_skew",
                                                  "strategy.top_k": 7}))
    _same_tree(voted.model, exact.model)


@pytest.mark.parametrize("changes", [
    {"data.dataset": "digits", "strategy.top_k": 2, "cluster.workers": 5},
    {"data.dataset": "digits", "strategy.top_k": 1, "cluster.workers": 3,
     "model.criterion": "entropy", "data.partition": "label_skew"},
    {"data.dataset": "breast_cancer", "strategy.top_k": 1, "cluster.workers": 4,
     "model.class_weight": "balanced", "model.min_samples_leaf": 3},
])
def test_a_voting_tree_splits_only_on_the_features_voted_for(changes):
    """Recomputed in plain numpy from the fitted tree's own nodes: at every split, each
    worker votes for the top_k features of its local histograms (best local split with
    the tree's criterion and class weights, leaves of one row; ties: the lower feature;
    none that lowers nothing: a worker without rows, or one class, there does not vote),
    the 2 top_k most voted are chosen (ties: the lower), and the split made is the best
    one of the whole node's histograms among those chosen (with min_samples_leaf)."""
    s = _tree_scenario("voting_tree", **changes)
    r = run(s)
    split = prepare_data(s)
    tree, k = r.model, s.strategy.options["top_k"]
    classes = np.unique(split.y_train)
    y = np.searchsorted(classes, split.y_train)
    codes = apply_bins(split.X_train, bin_edges(split.X_train, tree.max_bins))
    n, d = codes.shape
    n_bins, n_classes = int(codes.max()) + 1, classes.size
    counts = np.bincount(y, minlength=n_classes).astype(float)
    weight = (counts.sum() / (n_classes * counts) if tree.class_weight == "balanced"
              else np.ones(n_classes))
    node = np.zeros(n, dtype=int)
    checked = 0
    for j in range(tree.feature_.size):          # parents come before their children
        f, b = tree.feature_[j], tree.bin_[j]
        if f < 0:
            continue
        at = node == j
        hists = []
        for part in split.parts:
            rows = part[at[part]]
            h = np.zeros((d, n_bins, n_classes))
            np.add.at(h, (np.arange(d)[None, :], codes[rows], y[rows][:, None]), 1)
            hists.append(h)
        tally = np.zeros(d, dtype=int)
        for h in hists:  # only features whose best local split lowers the impurity
            best = split_scores(h, weight, tree.criterion, 1, 1.0).max(axis=1)
            top = np.argsort(-best, kind="stable")[:k]
            tally[top[best[top] > 0]] += 1
        chosen = np.argsort(-tally, kind="stable")[:2 * k]
        assert f in chosen, (j, f, sorted(chosen))
        gain = split_scores(sum(hists), weight, tree.criterion, tree.min_samples_leaf, 1.0)
        assert gain[f, b] == pytest.approx(gain[chosen].max(), rel=1e-9, abs=1e-12)
        node[at & (codes[:, f] <= b)] = tree.children_left_[j]
        node[at & (codes[:, f] > b)] = tree.children_right_[j]
        checked += 1
    assert checked >= 5 and checked == int((tree.feature_ >= 0).sum())


def test_voting_sends_fewer_bytes_and_is_close():
    """On digits (64 features) top_k = 4 sends a fraction of the histogram bytes and
    keeps most of the exact tree's accuracy."""
    changes = {"data.dataset": "digits", "strategy.subtraction": False}
    exact = run(_tree_scenario(**changes))
    voted = run(_tree_scenario("voting_tree", **{"data.dataset": "digits", "strategy.top_k": 4}))
    assert voted.summary["bytes_sent"] < 0.25 * exact.summary["bytes_sent"]
    assert voted.summary["final_accuracy"] > exact.summary["final_accuracy"] - 0.05


@pytest.mark.parametrize("kind", ["hist_tree", "voting_tree"])
def test_history_follows_the_levels_and_is_reproducible(kind):
    """One history row per level (the tree so far); the training impurity only falls;
    same seed, same run."""
    a, b = run(_tree_scenario(kind)), run(_tree_scenario(kind))
    assert a.history == b.history
    losses = [h["loss"] for h in a.history]
    assert losses == sorted(losses, reverse=True) and losses[-1] == 0.0
    assert [h["update"] for h in a.history] == list(range(1, len(a.history) + 1))


def test_stop_rounds_caps_the_levels():
    r = run(_tree_scenario(**{"stop.rounds": 2}))
    assert r.model.depth_ == 2 and r.summary["stop_reason"] == "2 updates done (stop.rounds)"


def test_tree_strategies_name_their_learner():
    with pytest.raises(ScenarioError, match=r"strategy.kind='hist_tree' trains model.kind in "
                                            r"'tree'; got model.kind='forest'"):
        _tree_scenario(**{"model.kind": "forest"})
    with pytest.raises(ScenarioError, match=r"strategy.top_k must be an integer >= 1; got 0"):
        _tree_scenario("voting_tree", **{"strategy.top_k": 0})


@pytest.mark.parametrize("model", ["tree", "forest"])
def test_local_trees_fused_by_vote(model):
    """local_fusion grows a tree (or forest) per shard and fuses them: a distributed
    forest, whose soft vote is at least as good as a single local tree here."""
    s = Scenario().replace(**{"strategy.kind": "local_fusion", "model.kind": model,
                              "cluster.workers": 4, "data.dataset": "wine",
                              "strategy.rule": "soft"})
    r = run(s)
    split = prepare_data(s)
    members = r.model.members_
    assert len(members) == 4
    best_member = max(m.score(split.X_test, split.y_test) for m in members)
    assert r.summary["final_accuracy"] >= best_member - 0.05


def test_class_weight_from_toml_keys():
    """TOML table keys are strings: {"1": 5.0} weighs class index 1, like {1: 5.0}."""
    X = np.random.default_rng(0).normal(size=(50, 2))
    y = (X[:, 0] > 0.8).astype(int)
    a = DecisionTree(max_depth=2, class_weight={1: 5.0}).fit(X, y)
    b = DecisionTree(max_depth=2, class_weight={"1": 5.0}).fit(X, y)
    np.testing.assert_array_equal(a.value_, b.value_)
    with pytest.raises(ValueError, match=r"class_weight' parameter of DecisionTree must be None"):
        DecisionTree(class_weight={"one": 5.0}).fit(X, y)


def test_bundled_hist_tree_scenario_runs_from_toml():
    r = run("hist_tree")
    assert r.summary["stop_reason"].startswith("tree complete") and r.model.depth_ <= 10
