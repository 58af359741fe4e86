"""Decision trees (CART on binned features) and random forests, in numpy, with an
operation count.

A tree is grown level by level from class histograms (``simdml.models._hist``): for
every node of the frontier, the counts of each class in each bin of each feature; the
best split of a node is read off its histogram. ``TreeBuilder`` owns that growth and is
shared by ``DecisionTree.fit`` and the distributed strategies (which sum the workers'
histograms first), so that both build the same tree from the same histograms.
"""
from __future__ import annotations

import numpy as np

from simdml._checks import is_integer

from simdml.models._validation import NotFittedError, _check_class_weight, _check_fitted_X, \
    _check_int, _check_non_negative, _check_X_y, _show, class_weights
from simdml.models._hist import CRITERIA, Split, apply_bins, best_split, bin_edges, \
    binning_flops, histogram_flops, histograms, impurity, split_flops

__all__ = ["DecisionTree", "RandomForest", "TreeBuilder"]


class TreeBuilder:
    """Grows one tree from histograms, a level at a time.

    ``grow(frontier, hists)`` takes the class histograms of the frontier nodes (summed
    over whoever holds the rows), splits those it can, records the children, and
    returns the splits; the next frontier is ``self.frontier``. Node ids are assigned
    in breadth-first order (left child before right), so the tree does not depend on
    who computed the histograms.
    """

    def __init__(self, tree: "DecisionTree", n_features: int, n_bins: int, n_classes: int,
                 edges: list[np.ndarray]):
        self.tree, self.edges = tree, edges
        self.n_features, self.n_bins, self.n_classes = n_features, n_bins, n_classes
        self.rng = np.random.default_rng(tree.seed)
        self.feature: list[int] = [-1]
        self.bin: list[int] = [-1]
        self.left: list[int] = [-1]
        self.right: list[int] = [-1]
        self.depth: list[int] = [0]
        self.counts: list[np.ndarray | None] = [None]  # class counts (unweighted), per node
        self.frontier = [0]
        self.class_weight: np.ndarray | None = None
        self.total_weight = 0.0
        self.flops = 0.0

    def set_root(self, root_counts: np.ndarray) -> None:
        """Class weights and the total weight, from the root's class counts."""
        w = class_weights(self.tree.class_weight, root_counts)
        self.class_weight = w
        self.total_weight = float(root_counts @ w)
        self.counts[0] = root_counts

    def _can_split(self, node: int) -> bool:
        t = self.tree
        counts = self.counts[node]
        return ((t.max_depth is None or self.depth[node] < t.max_depth)
                and counts.sum() >= 2 * t.min_samples_leaf
                and np.count_nonzero(counts * self.class_weight) > 1)

    def grow(self, frontier: list[int], hists: np.ndarray,
             allowed: list[np.ndarray] | None = None) -> list[tuple[int, Split]]:
        """Split the ``frontier`` nodes whose histograms (aligned, shape (len(frontier),
        d, n_bins, k)) allow it; returns ``[(node, split), ...]`` for the splits made.
        ``allowed`` (a boolean mask over the features per node) restricts the
        candidates, e.g. to the histograms a voting tree asked for."""
        if self.class_weight is None:
            self.set_root(hists[0, 0].sum(axis=0))
        t = self.tree
        made = []
        for j, (node, hist) in enumerate(zip(frontier, hists)):
            mask = self._candidates()
            if allowed is not None:
                mask = allowed[j] if mask is None else mask & allowed[j]
            split = best_split(hist, self.class_weight, t.criterion, t.min_samples_leaf,
                               self.total_weight, mask)
            self.flops += split_flops(self.n_features, self.n_bins, self.n_classes)
            if split.feature < 0 or not split.decrease > max(t.min_impurity_decrease, 1e-12):
                continue
            left_counts = hist[split.feature, :split.bin + 1].sum(axis=0)
            self.feature[node], self.bin[node] = split.feature, split.bin
            for counts in (left_counts, self.counts[node] - left_counts):
                self.feature.append(-1)
                self.bin.append(-1)
                self.left.append(-1)
                self.right.append(-1)
                self.depth.append(self.depth[node] + 1)
                self.counts.append(counts)
            self.left[node], self.right[node] = len(self.feature) - 2, len(self.feature) - 1
            made.append((node, split))
        self.frontier = [c for node, _ in made for c in (self.left[node], self.right[node])
                         if self._can_split(c)]
        return made

    def _candidates(self) -> np.ndarray | None:
        """The features a node may split on: all, or (``max_features``) a random subset
        drawn per node from the tree's own stream."""
        m = self.tree._n_features_per_split(self.n_features)
        if m >= self.n_features:
            return None
        allowed = np.zeros(self.n_features, dtype=bool)
        allowed[self.rng.choice(self.n_features, size=m, replace=False)] = True
        return allowed

    def to_tree(self) -> "DecisionTree":
        """Store the grown arrays on the tree (its fitted attributes)."""
        t = self.tree
        t.feature_ = np.array(self.feature, dtype=np.int64)
        t.bin_ = np.array(self.bin, dtype=np.int64)
        t.children_left_ = np.array(self.left, dtype=np.int64)
        t.children_right_ = np.array(self.right, dtype=np.int64)
        t.threshold_ = np.array([self.edges[f][b] if f >= 0 else np.nan
                                 for f, b in zip(self.feature, self.bin)])
        t.counts_ = np.array(self.counts, dtype=np.int64)
        t.value_ = t.counts_ * self.class_weight
        t.class_weight_ = self.class_weight
        t.depth_ = int(max(self.depth))
        t.n_leaves_ = int(np.sum(t.feature_ < 0))
        t.bin_edges_ = self.edges
        return t


class DecisionTree:
    """CART classification tree on binned features.

    Each feature is cut into at most ``max_bins`` quantile bins (``_hist.bin_edges``);
    the tree is grown level by level, each node split where the weighted impurity
    decrease is largest (ties: lowest feature, then lowest bin). A node stays a leaf
    when it is pure, at ``max_depth``, too small for two leaves of
    ``min_samples_leaf``, or when no split decreases the impurity by more than
    ``min_impurity_decrease``.

    Parameters
    ----------
    criterion : {"gini", "entropy"}, default="gini"
    max_depth : int or None, default=None
        >= 1; None grows until the leaves are pure or too small.
    min_samples_leaf : int, default=1
    min_impurity_decrease : float, default=0.0
        ``N_t / N * (i(t) - N_L / N_t i(L) - N_R / N_t i(R))``, weighted counts (as in
        scikit-learn).
    max_bins : int, default=255
        2 to 255 bins per feature.
    class_weight : None, "balanced" or dict, default=None
        Weights per class index (``{0: 1.0, 1: 5.0}``; in TOML ``{0 = 1.0, 1 = 5.0}``);
        "balanced" is ``n / (k n_c)``.
    max_features : None, "sqrt" or int, default=None
        Features drawn at random for each node (random forests); None: all.
    seed : int, default=0
        The tree's own random stream (``max_features``).

    Attributes
    ----------
    classes_, n_features_in_, bin_edges_ (per feature), feature_, bin_, threshold_
    (split ``x[feature] <= threshold``), children_left_, children_right_, counts_
    (class counts per node), value_ (weighted counts), depth_, n_leaves_, flops_ (the
    fit's operation count: binning, histograms, split search).

    References
    ----------
    .. [1] L. Breiman et al., *Classification and Regression Trees*, 1984.
    .. [2] T. Chen and C. Guestrin, "XGBoost", KDD 2016, Sec. 3.3 (histograms).
    """

    is_classifier = True
    score_name = "accuracy"

    def __init__(self, *, criterion: str = "gini", max_depth: int | None = None,
                 min_samples_leaf: int = 1, min_impurity_decrease: float = 0.0,
                 max_bins: int = 255, class_weight=None, max_features=None, seed: int = 0):
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.min_impurity_decrease = min_impurity_decrease
        self.max_bins = max_bins
        self.class_weight = class_weight
        self.max_features = max_features
        self.seed = seed

    def validate_params(self) -> None:
        """Check the hyper-parameters, as ``fit`` does; raises ValueError naming the
        parameter, the rule and the value."""
        name = type(self).__name__
        if self.criterion not in CRITERIA:
            raise ValueError(f"The 'criterion' parameter of {name} must be one of "
                             f"{', '.join(map(repr, CRITERIA))}. Got {_show(self.criterion)} instead.")
        if self.max_depth is not None:
            _check_int(self, "max_depth", self.max_depth, low=1)
        _check_int(self, "min_samples_leaf", self.min_samples_leaf, low=1)
        _check_non_negative(self, "min_impurity_decrease", self.min_impurity_decrease)
        _check_int(self, "max_bins", self.max_bins, low=2)
        if self.max_bins > 255:
            raise ValueError(f"The 'max_bins' parameter of {name} must be <= 255 (bins are "
                             f"uint8). Got {self.max_bins} instead.")
        _check_class_weight(self, self.class_weight)
        mf = self.max_features
        if not (mf is None or mf == "sqrt" or (is_integer(mf) and mf >= 1)):
            raise ValueError(f"The 'max_features' parameter of {name} must be None, 'sqrt' or "
                             f"an int >= 1. Got {_show(mf)} instead.")
        _check_int(self, "seed", self.seed, low=0)

    def _n_features_per_split(self, n_features: int) -> int:
        if self.max_features is None:
            return n_features
        if self.max_features == "sqrt":
            return max(1, int(np.sqrt(n_features)))
        return min(int(self.max_features), n_features)

    # ------------------------------------------------------------------- fitting

    def fit(self, X, y, *, classes=None, edges: list[np.ndarray] | None = None):
        """Bin ``X`` and grow the tree.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), integer labels
        classes : array-like, optional
            Every label of the problem, when ``y`` may miss some (a worker's shard).
        edges : list of ndarray, optional
            Bin thresholds per feature to use instead of computing them from ``X``
            (a distributed tree bins every shard with the same edges).

        Returns
        -------
        self
        """
        self.validate_params()
        X, y = _check_X_y(X, y)
        classes = np.unique(y if classes is None else np.asarray(classes))
        if not np.isin(y, classes).all():
            raise ValueError(f"y holds labels not in classes: {np.setdiff1d(y, classes).tolist()}")
        y_index = np.searchsorted(classes, y)
        self.classes_, self.n_features_in_ = classes, X.shape[1]
        edges = bin_edges(X, self.max_bins) if edges is None else edges
        codes = apply_bins(X, edges)
        builder = self.builder(edges, classes.size)
        node = np.zeros(y.size, dtype=np.int64)
        flops = binning_flops(X.size, self.max_bins)
        while builder.frontier:
            frontier = np.array(builder.frontier)
            hists = histograms(codes, y_index, node, frontier, builder.n_bins, classes.size)
            flops += histogram_flops(int(np.isin(node, frontier).sum()), X.shape[1])
            made = builder.grow(list(frontier), hists)
            node = route(codes, node, made, builder)
        self.flops_ = flops + builder.flops
        return builder.to_tree()

    def builder(self, edges: list[np.ndarray], n_classes: int) -> TreeBuilder:
        """A ``TreeBuilder`` for this tree's settings over bins with ``edges``."""
        n_bins = max(len(e) for e in edges) + 1
        return TreeBuilder(self, len(edges), n_bins, n_classes, edges)

    # ---------------------------------------------------------------- prediction

    def _check_fitted_X(self, X) -> np.ndarray:
        return _check_fitted_X(self, X, "feature_")

    def apply(self, X) -> np.ndarray:
        """The leaf each row lands in, shape (n_samples,)."""
        X = self._check_fitted_X(X)
        node = np.zeros(X.shape[0], dtype=np.int64)
        for _ in range(self.depth_):
            f = self.feature_[node]
            inner = f >= 0
            go_left = X[np.arange(X.shape[0]), np.maximum(f, 0)] <= self.threshold_[node]
            node = np.where(inner, np.where(go_left, self.children_left_[node],
                                            self.children_right_[node]), node)
        return node

    def predict_proba(self, X) -> np.ndarray:
        """Weighted class shares of the leaf, shape (n_samples, n_classes)."""
        leaf = self.apply(X)  # checks that the tree is fitted
        value = self.value_[leaf]
        total = value.sum(axis=1, keepdims=True)
        return value / np.where(total > 0, total, 1.0)

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X, y) -> float:
        """Accuracy."""
        X, y = _check_X_y(X, y)
        return float(np.mean(self.predict(X) == y))

    def training_loss(self, X, y) -> float:
        """The weighted impurity of the leaves over the rows ``(X, y)``:
        ``sum_leaf W_leaf / W * i(leaf)`` (on the training set, what growing lowers)."""
        X, y = _check_X_y(X, y)
        leaf = self.apply(X)
        y_index = np.searchsorted(self.classes_, y)
        counts = np.zeros((self.feature_.size, self.classes_.size))
        np.add.at(counts, (leaf, y_index), self.class_weight_[y_index])
        weight = counts.sum(axis=1)
        return float(weight @ impurity(counts, self.criterion) / weight.sum())

    def predict_flops(self, n_rows: int) -> float:
        return float(2 * n_rows * self.depth_)

    @property
    def nbytes(self) -> int:
        """Per node: feature, threshold, two children (8 bytes each) and the class
        values."""
        return int(self.feature_.size * (32 + 8 * self.classes_.size))


def route(codes: np.ndarray, node: np.ndarray, made: list[tuple[int, Split]],
          builder: TreeBuilder) -> np.ndarray:
    """Move each row from a node split in ``made`` to the child its code sends it to."""
    node = node.copy()
    for parent, split in made:
        rows = np.flatnonzero(node == parent)
        go_left = codes[rows, split.feature] <= split.bin
        node[rows] = np.where(go_left, builder.left[parent], builder.right[parent])
    return node


class RandomForest:
    """Bagged decision trees with features drawn per node (Breiman, 2001).

    Each of ``n_estimators`` trees is fitted on a bootstrap sample (drawn from the
    forest's ``seed``) with ``max_features`` features per node; ``predict_proba`` is
    the mean of the trees'.

    Parameters
    ----------
    n_estimators : int, default=10
    max_features : "sqrt", int or None, default="sqrt"
    bootstrap : bool, default=True
    seed : int, default=0
    criterion, max_depth, min_samples_leaf, max_bins, class_weight
        As for ``DecisionTree``.

    References
    ----------
    .. [1] L. Breiman, "Random Forests", *Machine Learning* 45, 2001.
    """

    is_classifier = True
    score_name = "accuracy"

    def __init__(self, *, n_estimators: int = 10, max_features="sqrt", bootstrap: bool = True,
                 criterion: str = "gini", max_depth: int | None = None,
                 min_samples_leaf: int = 1, max_bins: int = 255, class_weight=None,
                 seed: int = 0):
        self.n_estimators = n_estimators
        self.max_features = max_features
        self.bootstrap = bootstrap
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.max_bins = max_bins
        self.class_weight = class_weight
        self.seed = seed

    def _tree(self, seed: int) -> DecisionTree:
        return DecisionTree(criterion=self.criterion, max_depth=self.max_depth,
                            min_samples_leaf=self.min_samples_leaf, max_bins=self.max_bins,
                            class_weight=self.class_weight, max_features=self.max_features,
                            seed=seed)

    def validate_params(self) -> None:
        """Check the hyper-parameters, as ``fit`` does; raises ValueError naming the
        parameter, the rule and the value."""
        _check_int(self, "n_estimators", self.n_estimators, low=1)
        if not isinstance(self.bootstrap, bool):
            raise ValueError(f"The 'bootstrap' parameter of RandomForest must be true or false. "
                             f"Got {_show(self.bootstrap)} instead.")
        self._tree(0).validate_params()
        _check_int(self, "seed", self.seed, low=0)

    def fit(self, X, y, *, classes=None):
        """Fit the trees; returns self (``estimators_``, ``classes_``, ``flops_``)."""
        self.validate_params()
        X, y = _check_X_y(X, y)
        classes = np.unique(y if classes is None else np.asarray(classes))
        rng = np.random.default_rng(self.seed)
        edges = bin_edges(X, self.max_bins)  # one binning for every tree
        self.estimators_ = []
        for seed in rng.integers(0, 2**31, size=self.n_estimators):
            rows = rng.integers(0, y.size, size=y.size) if self.bootstrap else np.arange(y.size)
            self.estimators_.append(self._tree(int(seed)).fit(X[rows], y[rows], classes=classes,
                                                              edges=edges))
        self.classes_, self.n_features_in_ = classes, X.shape[1]
        self.flops_ = float(sum(t.flops_ for t in self.estimators_))
        return self

    def predict_proba(self, X) -> np.ndarray:
        if not hasattr(self, "estimators_"):
            raise NotFittedError("RandomForest is not fitted yet; call fit(X, y) first.")
        return np.mean([t.predict_proba(X) for t in self.estimators_], axis=0)

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)  # checks that the forest is fitted
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X, y) -> float:
        """Accuracy."""
        X, y = _check_X_y(X, y)
        return float(np.mean(self.predict(X) == y))

    def training_loss(self, X, y) -> float:
        """The 0-1 loss (error rate) on ``(X, y)``."""
        return 1.0 - self.score(X, y)

    def predict_flops(self, n_rows: int) -> float:
        return float(sum(t.predict_flops(n_rows) for t in self.estimators_))

    @property
    def nbytes(self) -> int:
        return int(sum(t.nbytes for t in self.estimators_))
