"""Shared pieces of the learners: the parameter layout of the linear ones, their hot-path
reductions, and the gradient-descent bases (``GradientModel`` and its classifier and
regressor faces). The checks they run are in ``_validation``."""

from __future__ import annotations

import numpy as np

from simdml.phantom import Phantom

from ._validation import (NotFittedError, _check_class_weight, _check_int, _check_non_negative,
                          _check_positive, _check_sample_weight, _check_X, _check_X_y,
                          _check_X_y_real, class_weights)


def clone(model, **changes):
    """A new, unfitted learner with ``model``'s settings (and ``changes``).

    >>> clone(KernelSVM(C=2.0), gamma=0.5).C     # doctest: +SKIP
    2.0
    """
    import inspect
    names = [p for p in inspect.signature(type(model).__init__).parameters if p != "self"]
    return type(model)(**{**{name: getattr(model, name) for name in names}, **changes})


def _split(params: np.ndarray, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Views ``(W, b)`` of shapes (n_features, n_columns) and (n_columns,) into ``params``.

    The layout every linear learner here shares: ``params.reshape(n_features + 1, -1)``
    holds the weights in its first ``n_features`` rows and the intercept in its last.
    """
    n_columns, rest = divmod(params.size, n_features + 1)
    if rest or n_columns == 0:
        raise ValueError(
            f"params has size {params.size}, which is not a positive multiple of "
            f"n_features + 1 = {n_features + 1}."
        )
    table = params.reshape(n_features + 1, n_columns)
    return table[:-1], table[-1]


# The reductions of the hot path, called as ufuncs: ``a.sum(axis=...)`` and
# ``a.max(axis=...)`` compute the same through a Python wrapper.
_sum = np.add.reduce
_max = np.maximum.reduce


def _class_major_scores(X: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The scores ``(X @ W + b).T`` as a C-ordered array of shape (n_classes, n_samples).

    perf: a linear classifier's ``loss_grad`` reduces over the classes of each row (a
    max, a sum). Over the rows of this class-major array that is a few vectorized
    passes; over the short rows of ``X @ W`` it is a strided loop per sample. The
    product itself is faster row-major (``X`` is read in its own order) and then
    transposed: a copy of only n_samples x n_classes numbers (the figures are in
    benchmarks/README.md).
    """
    return np.add((X @ W).T, b[:, None], order="C")  # the copy is the intercept's sum


def _outer_rows(X: np.ndarray, R: np.ndarray) -> np.ndarray:
    """The rows' gradients of a linear learner spelled out: row ``i`` of the (n_samples,
    (n_features + 1) * n_columns) result is ``[x_i, 1] R[:, i]'`` flattened in the layout
    of ``_split`` (``R`` class-major, (n_columns, n_samples))."""
    n_samples, n_features = X.shape
    out = np.empty((n_samples, n_features + 1, R.shape[0]))
    np.multiply(X[:, :, None], R.T[:, None, :], out=out[:, :-1])
    out[:, -1] = R.T
    return out.reshape(n_samples, -1)


def _target_index(y: np.ndarray, n_samples: int) -> np.ndarray:
    """Flat indices of the true-class entries ``(y_i, i)`` of a class-major (k, n) array."""
    target = np.multiply(y, n_samples, dtype=np.intp)  # any integer dtype of y, no overflow
    target += np.arange(n_samples)
    return target


class GradientModel:
    """Base for learners trained by full-batch gradient descent on ``loss_grad``.

    A subclass provides the strategy face -- ``init_params``, ``loss_grad``,
    ``grad_flops`` -- and says what its targets are (``_validate_data``,
    ``_encode_targets``); this class supplies ``fit``, the ``params`` property and the
    ``params=None`` convention of ``predict`` and ``score``. Subclasses extend
    ``validate_params`` for their own hyper-parameters. Requires attributes ``lr``
    (step size), ``n_iter`` (number of steps) and ``l2`` (L2 penalty strength), the
    hyper-parameters every learner here shares.

    Class attributes ``is_classifier`` and ``score_name`` tell strategies and monitors
    what ``score`` measures ("accuracy" or "r2"), without an ``isinstance`` test.
    """

    is_classifier: bool
    score_name: str

    @property
    def float_dtype(self) -> np.dtype:
        """The numpy dtype the learner computes in: of its parameters, its gradients and
        the rows it reads. float64 here; the MLPs take theirs from their ``dtype``."""
        return np.dtype(np.float64)

    def init_shape(self, n_features: int, n_outputs: int):
        """Bind the learner to a problem shape, as ``init_params`` does, and return its
        parameters as a ``Phantom``: their shape and dtype only (a timing-only run's
        model, ``math = false``). The MLPs draw nothing for it."""
        return Phantom.like(self.init_params(n_features, n_outputs))

    def validate_params(self) -> None:
        """Check the hyper-parameters, as ``fit`` does (a scenario checks them when it is
        built); raises ValueError naming the parameter, the rule and the value."""
        _check_positive(self, "lr", self.lr)
        _check_int(self, "n_iter", self.n_iter, low=1)
        _check_non_negative(self, "l2", self.l2)
        _check_class_weight(self, getattr(self, "class_weight", None))

    def fit(self, X, y, sample_weight=None, *, classes=None):
        """Run ``n_iter`` steps of full-batch gradient descent from zero parameters.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Integer class labels (at least two distinct values) for a classifier;
            real numbers for a regressor.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative row weights; the loss is their weighted mean.
        classes : array-like, optional
            Classifiers: every label of the problem, when ``y`` may miss some (a
            worker's shard): the model gets one column per class, so that models fitted
            on different shards share one parameter layout. ``y`` may then hold one class.

        Returns
        -------
        self
            Fitted, with ``params_``, ``n_features_in_``, ``n_iter_``, ``loss_curve_``
            (the loss *before* each step, length ``n_iter``) and ``flops_`` (the fit's
            operation count, ``n_iter * grad_flops(n_samples)``); a classifier also
            sets ``classes_`` and ``n_classes_``.
        """
        self.validate_params()
        X, y = self._validate_data(X, y)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X.shape[0])
        targets, n_outputs = self._encode_targets(y, classes)
        X = X.astype(self.float_dtype, copy=False)  # once, not per step (float64: no copy)
        if not self.is_classifier:
            targets = targets.astype(self.float_dtype, copy=False)
        if getattr(self, "class_weight", None) is not None:  # each row weighs its class's
            self.class_weight_ = class_weights(self.class_weight,
                                               np.bincount(targets, minlength=n_outputs))
            rows = self.class_weight_[targets]
            sample_weight = rows if sample_weight is None else sample_weight * rows
        params = self.init_params(X.shape[1], n_outputs)
        losses = []
        for _ in range(self.n_iter):
            loss, grad = self.loss_grad(params, X, targets, sample_weight)
            losses.append(loss)
            params = params - float(self.lr) * grad  # a numpy float64 lr would upcast float32
        self.params_ = params
        self.loss_curve_ = losses
        self.n_iter_ = self.n_iter
        self.flops_ = self.n_iter * self.grad_flops(X.shape[0])
        return self

    @property
    def params(self) -> np.ndarray:
        """The fitted flat parameter vector ``params_`` (the name strategies use)."""
        return self._resolve_params(None)

    @property
    def nbytes(self) -> int:
        """Bytes of the fitted model on the wire: its parameter vector."""
        return int(self._resolve_params(None).nbytes)

    def _resolve_params(self, params) -> np.ndarray:
        if params is not None:
            return np.asarray(params, dtype=self.float_dtype)
        if not hasattr(self, "params_"):
            raise NotFittedError(
                f"{type(self).__name__} is not fitted yet; call fit(X, y) or pass params."
            )
        return self.params_

    def _check_shape_known(self, attribute: str, init_args: str) -> None:
        """Raise unless ``init_params`` (or ``fit``) has set ``attribute``.

        ``grad_flops`` counts from the problem shape, which only ``init_params`` binds;
        ``init_args`` names its arguments in the message.
        """
        if not hasattr(self, attribute):
            raise ValueError(
                f"{type(self).__name__}.grad_flops needs the problem shape; "
                f"call init_params({init_args}) or fit(X, y) first."
            )

    def _check_predict_X(self, X) -> np.ndarray:
        """``X`` validated, in the learner's ``float_dtype``, with the number of columns the
        learner was bound to."""
        X = _check_X(X, self.float_dtype)
        expected = getattr(self, "n_features_in_", X.shape[1])
        if X.shape[1] != expected:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} "
                f"is expecting {expected} features."
            )
        return X

    def grad(self, params: np.ndarray, X: np.ndarray, y: np.ndarray,
             sample_weight: np.ndarray | None = None) -> np.ndarray:
        """``loss_grad``'s gradient alone, bit for bit: what a worker computes and sends
        (the loss is read only where the monitor records it). A learner whose loss costs
        work of its own skips it here (``_loss_grad(..., with_loss=False)``)."""
        inner = getattr(self, "_loss_grad", None)
        if inner is None:
            return self.loss_grad(params, X, y, sample_weight)[1]
        return inner(params, X, y, sample_weight, with_loss=False)[1]


class GradientClassifier(GradientModel):
    """Base for classifiers: ``predict`` is the argmax of ``decision_function(X, params)``.

    ``fit`` maps labels to class indices ``0 .. n_classes - 1`` (``classes_`` maps them
    back); ``loss_grad`` always receives indices.
    """

    is_classifier = True
    score_name = "accuracy"

    def _validate_data(self, X, y) -> tuple[np.ndarray, np.ndarray]:
        return _check_X_y(X, y)

    def _encode_targets(self, y: np.ndarray, classes=None) -> tuple[np.ndarray, int]:
        if classes is not None:
            classes = np.unique(np.asarray(classes))
            unknown = ~np.isin(y, classes)
            if unknown.any():
                raise ValueError(f"y holds labels not in classes: {np.unique(y[unknown]).tolist()}; "
                                 f"classes = {classes.tolist()}.")
            if classes.size < 2:
                raise ValueError(f"classes must hold at least 2 labels; got {classes.tolist()}.")
            self.classes_ = classes
            return np.searchsorted(classes, y), classes.size
        classes, y_index = np.unique(y, return_inverse=True)
        if classes.size < 2:
            raise ValueError(f"y must hold at least 2 classes; got only {classes.tolist()}.")
        # Set before init_params, which keeps a classes_ of the right size.
        self.classes_ = classes
        return y_index, classes.size

    def predict(self, X, params=None) -> np.ndarray:
        """Class labels: ``classes_[argmax]`` of the decision function.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        params : ndarray of shape (n_params,), optional
            Defaults to the fitted ``params_``. When ``classes_`` is unset or does not
            match the number of classes in ``params``, class indices are returned.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        params = self._resolve_params(params)
        scores = self.decision_function(X, params)
        index = np.argmax(scores, axis=1)
        classes = getattr(self, "classes_", None)
        if classes is None or classes.size != scores.shape[1]:
            return index
        return classes[index]

    def score(self, X, y, params=None) -> float:
        """Accuracy: the fraction of rows whose predicted label equals ``y``."""
        X, y = _check_X_y(X, y)
        return float(np.mean(self.predict(X, params) == y))


class LinearClassifier(GradientClassifier):
    """Base for linear classifiers with one column of weights per class.

    Parameter layout: one flat float64 vector of size ``(n_features + 1) * n_classes``;
    ``params.reshape(n_features + 1, n_classes)`` holds the weights ``W`` in its first
    ``n_features`` rows and the intercepts ``b`` in its last row (see ``_split``). A
    subclass provides ``loss_grad`` and ``grad_flops``; this class binds the shape
    (``init_params``) and scores rows (``decision_function``).
    """

    def init_params(self, n_features: int, n_classes: int) -> np.ndarray:
        """Bind the learner to a problem shape and return zero parameters.

        Sets ``n_features_in_`` and ``n_classes_``, and ``classes_ = arange(n_classes)``
        unless ``classes_`` already holds ``n_classes`` labels.

        Parameters
        ----------
        n_features : int
            Number of input columns, >= 1.
        n_classes : int
            Number of classes, >= 2; one column of weights per class.

        Returns
        -------
        ndarray of shape ((n_features + 1) * n_classes,), float64
            Zeros; ``reshape(n_features + 1, n_classes)``, last row is the intercept.
        """
        _check_int(self, "n_features", n_features, low=1)
        _check_int(self, "n_classes", n_classes, low=2)
        self.n_features_in_ = int(n_features)
        self.n_classes_ = int(n_classes)
        classes = getattr(self, "classes_", None)
        if classes is None or classes.size != n_classes:
            self.classes_ = np.arange(n_classes)
        return np.zeros((n_features + 1) * n_classes, dtype=np.float64)

    def _loss_grad(self, params, X, y, sample_weight=None, *, with_loss: bool = True):
        """``loss_grad`` (and ``grad``, ``with_loss=False``): the class-major scores, the
        subclass's ``_scores_grad`` of them (each row's loss and its derivative in its
        scores), then ``_mean_and_backprop``."""
        W, b = _split(params, X.shape[1])
        row_loss, G = self._scores_grad(_class_major_scores(X, W, b), y, with_loss)
        return self._mean_and_backprop(X, W, row_loss, G, sample_weight)

    def stacked_grads(self, params: np.ndarray, X: np.ndarray, y: np.ndarray,
                      m: int) -> np.ndarray:
        """The gradients of ``len(y) // m`` shards of ``m`` rows each, ``X, y`` their rows
        one shard after the other: row ``s`` of the result is ``grad`` on shard ``s``
        (unweighted), **bit for bit**. One stacked product forward and one backward
        (numpy's stacked ``matmul`` makes each shard's own BLAS call, in a C loop, not a
        Python one); the steps between act entry by entry or over the classes of a row,
        which is the same arithmetic on one array of all the rows as on each shard's."""
        n, d = X.shape
        K = n // m
        W, b = _split(params, d)
        k = W.shape[1]
        X3 = X.reshape(K, m, d)
        Z = np.add(np.matmul(X3, W).reshape(n, k).T, b[:, None], order="C")  # (k, n)
        G = self._scores_grad(Z, y, False)[1]
        G *= 1.0 / m
        G3 = np.ascontiguousarray(G.reshape(k, K, m).transpose(1, 0, 2))  # each shard's (k, m)
        out = np.empty((K, d + 1, k))
        np.matmul(X3.transpose(0, 2, 1), G3.transpose(0, 2, 1), out=out[:, :-1])
        _sum(G3, axis=2, out=out[:, -1])
        if self.l2:
            out[:, :-1] += self.l2 * W
        return out.reshape(K, -1)

    def _mean_and_backprop(self, X, W, row_loss, G, sample_weight) -> tuple[float, np.ndarray]:
        """What every linear classifier's ``loss_grad`` ends with: the (weighted) mean of
        the row losses, the chain rule through the scores ``X @ W + b`` for the derivative
        ``G`` of each row's loss in its scores (class-major, (n_classes, n_samples); scaled
        in place), and the L2 term on ``W``. ``row_loss = None`` (``grad``): the gradient
        alone, the same bits, and None for the loss."""
        n_samples, n_features = X.shape
        loss = None
        if sample_weight is None:
            if row_loss is not None:
                loss = _sum(row_loss) / n_samples
            G *= 1.0 / n_samples
        else:
            scale = sample_weight / _sum(sample_weight)
            if row_loss is not None:
                loss = row_loss @ scale
            G *= scale
        grad = np.empty_like(W, shape=(n_features + 1, W.shape[1]), order="C")
        np.matmul(X.T, G.T, out=grad[:-1])
        _sum(G, axis=1, out=grad[-1])
        if self.l2:
            if loss is not None:
                loss += 0.5 * self.l2 * np.vdot(W, W)
            grad[:-1] += self.l2 * W
        return (None if loss is None else float(loss)), grad.reshape(-1)

    def activation_nbytes(self, n_rows: int) -> int:
        """Bytes a gradient on ``n_rows`` rows keeps from its forward pass for its backward:
        ``G``, the derivative of each row's loss in its class scores, float64 of shape
        (n_classes, n_rows), which ``X' G`` needs. Its input (the rows) is the caller's;
        the temporaries of the forward pass beside ``G`` are not counted."""
        self._check_shape_known("n_classes_", "n_features, n_classes")
        return 8 * n_rows * self.n_classes_

    def decision_function(self, X, params: np.ndarray | None = None) -> np.ndarray:
        """Class scores ``X @ W + b``, of shape (n_samples, n_classes)."""
        params = self._resolve_params(params)
        X = self._check_predict_X(X)
        W, b = _split(params, X.shape[1])
        return X @ W + b

    def predict_flops(self, n_rows: int) -> float:
        """Operation count of ``decision_function`` on ``n_rows`` rows: ``2 n (d + 1) k``."""
        self._check_shape_known("n_classes_", "n_features, n_classes")
        return float(2 * n_rows * (self.n_features_in_ + 1) * self.n_classes_)

    def class_scores(self, X, params: np.ndarray | None = None) -> np.ndarray:
        """One score per class, larger is likelier (what soft voting averages): the
        decision function, of shape (n_samples, n_classes)."""
        return self.decision_function(X, params)


class GradientRegressor(GradientModel):
    """Base for regressors of one real-valued target; ``score`` is R^2.

    A subclass provides ``predict(X, params=None)`` returning shape (n_samples,).
    """

    is_classifier = False
    score_name = "r2"

    def _validate_data(self, X, y) -> tuple[np.ndarray, np.ndarray]:
        return _check_X_y_real(X, y)

    def _encode_targets(self, y: np.ndarray, classes=None) -> tuple[np.ndarray, int]:
        if classes is not None:
            raise ValueError(f"classes is for classifiers; {type(self).__name__} is a regressor.")
        return y, 1

    def score(self, X, y, params=None) -> float:
        """Coefficient of determination ``R^2 = 1 - SS_res / SS_tot``.

        ``SS_res = sum_i (y_i - yhat_i)^2`` and ``SS_tot = sum_i (y_i - mean(y))^2``.
        R^2 is 1 for a perfect prediction, 0 for predicting the mean of ``y``, and
        negative for worse. When ``y`` is constant (``SS_tot = 0``) it is 1.0 for a
        perfect prediction and 0.0 otherwise, as in scikit-learn.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Real-valued targets.
        params : ndarray of shape (n_params,), optional
            Defaults to the fitted ``params_``.

        Returns
        -------
        float

        References
        ----------
        .. [1] T. Hastie, R. Tibshirani and J. Friedman, *The Elements of Statistical
           Learning*, 2nd ed., Springer, 2009, Sec. 3.2 (residual sum of squares).
        """
        X, y = _check_X_y_real(X, y)
        residual = y - self.predict(X, params)
        ss_res = float(residual @ residual)
        centred = y - y.mean()
        ss_tot = float(centred @ centred)
        if ss_tot == 0.0:
            return 1.0 if ss_res == 0.0 else 0.0
        return 1.0 - ss_res / ss_tot
