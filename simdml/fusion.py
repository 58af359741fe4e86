"""Model fusion: one model from the workers' local models, by a registered rule.

Each worker fits a learner on its own shard; a rule fuses the fitted ``members``
(with weights ``w_i``, the shard shares ``n_i / n`` or equal) into one classifier:

- ``best``: the member with the highest accuracy on a validation split (the naive
  method: one shard's view of the problem, the others thrown away);
- ``vote``: majority vote, ``argmax_c sum_i w_i [member_i predicts c]``;
- ``soft``: soft vote, ``argmax_c sum_i w_i p_i(c | x)``, with ``predict_proba`` where
  a learner has one, else the softmax of its ``class_scores`` (SVMs: uncalibrated);
- ``average``: weighted parameter averaging ``sum_i w_i params_i`` (linear learners,
  fitted with every class so that their parameters line up);
- ``stack``: stacking -- a meta-learner (softmax regression) trained on the members'
  class probabilities for the rows of a validation split, which none of them fitted on:
  it learns which member to trust for which class (Wolpert 1992).

Ties go to the lower class. A member that never saw a class gives it probability 0.

This module imports only numpy and the learners, so that strategies can use it.

References
----------
L. I. Kuncheva, *Combining Pattern Classifiers*, Wiley, 2nd ed. 2014, Ch. 4 and 5
(majority and weighted voting, averaging of continuous outputs); H. B. McMahan et al.,
"Communication-Efficient Learning of Deep Networks from Decentralized Data",
AISTATS 2017 (sample-weighted parameter averaging); D. H. Wolpert, "Stacked
Generalization", Neural Networks 5(2), 1992.
"""
from __future__ import annotations

import numpy as np

from .models._base import clone
from .models.logistic import LogisticRegression

__all__ = ["FUSION_RULES", "NEEDS_VALIDATION", "Constant", "Fused", "fuse", "non_finite"]


class Constant:
    """What a shard of one class can teach: that class, always (no SVM can be fitted)."""

    is_classifier = True
    score_name = "accuracy"
    flops_ = 0.0
    nbytes = 8

    def __init__(self, label):
        self.classes_ = np.array([label])

    def predict(self, X) -> np.ndarray:
        return np.full(len(X), self.classes_[0])

    def class_scores(self, X) -> np.ndarray:
        return np.zeros((len(X), 1))

    def predict_flops(self, n_rows: int) -> float:
        return 0.0


class Fused:
    """A classifier fused from local models: ``predict`` is the argmax of ``scores``.

    Attributes
    ----------
    rule : str
    members_ : list of fitted learners
    weights_ : ndarray of shape (n_members,)
    classes_ : ndarray of shape (n_classes,)
    chosen_ : int or None
        ``best``: the index of the member chosen.
    """

    is_classifier = True
    score_name = "accuracy"

    def __init__(self, rule: str, members, weights, classes, scorer, chosen=None, meta=None):
        self.rule, self.members_, self.weights_, self.classes_ = rule, members, weights, classes
        self._scorer, self.chosen_, self.meta_ = scorer, chosen, meta
        self.fit_flops_ = float(meta.flops_) if meta is not None else 0.0  # fusing's own work

    def scores(self, X) -> np.ndarray:
        """Per-class support of shape (n_samples, n_classes): votes, probabilities or
        the averaged model's scores, by the rule."""
        return self._scorer(np.asarray(X, dtype=np.float64))

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.scores(X), axis=1)]

    def score(self, X, y) -> float:
        """Accuracy on ``(X, y)``."""
        return float(np.mean(self.predict(X) == np.asarray(y)))

    def training_loss(self, X, y) -> float:
        """The 0-1 loss (error rate) on ``(X, y)``: a vote has no smooth objective."""
        return 1.0 - self.score(X, y)

    @property
    def nbytes(self) -> int:
        meta = self.meta_.nbytes if self.meta_ is not None else 0
        return int(sum(m.nbytes for m in self.members_) + meta)


def _one_hot(labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    return (labels[:, None] == classes[None, :]).astype(np.float64)


def _proba(member, X: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """A member's class probabilities, laid out on every class (0 where unseen)."""
    if hasattr(member, "predict_proba"):
        P = member.predict_proba(X)
    else:
        Z = member.class_scores(X)
        Z = Z - Z.max(axis=1, keepdims=True)
        P = np.exp(Z)
        P /= P.sum(axis=1, keepdims=True)
    out = np.zeros((X.shape[0], classes.size))
    out[:, np.searchsorted(classes, member.classes_)] = P
    return out


def _best(members, weights, classes, X_val, y_val):
    accuracy = [np.mean(m.predict(X_val) == y_val) for m in members]
    chosen = int(np.argmax(accuracy))
    return Fused("best", members, weights, classes,
                 lambda X: _one_hot(members[chosen].predict(X), classes), chosen)


def _vote(members, weights, classes, X_val=None, y_val=None):
    return Fused("vote", members, weights, classes,
                 lambda X: sum(w * _one_hot(m.predict(X), classes) for m, w in zip(members, weights)))


def _soft(members, weights, classes, X_val=None, y_val=None):
    return Fused("soft", members, weights, classes,
                 lambda X: sum(w * _proba(m, X, classes) for m, w in zip(members, weights)))


def _average(members, weights, classes, X_val=None, y_val=None):
    if not all(hasattr(m, "params_") for m in members):
        raise ValueError("fusion rule 'average' needs linear learners (a parameter vector); "
                         f"got {sorted({type(m).__name__ for m in members})}")
    average = clone(members[0])
    average.params_ = sum(w * m.params_ for m, w in zip(members, weights))
    for name in ("classes_", "n_classes_", "n_features_in_"):
        setattr(average, name, getattr(members[0], name))
    return Fused("average", [average], np.ones(1), classes, average.class_scores)


def _stack(members, weights, classes, X_val, y_val):
    def features(X):
        return np.hstack([_proba(m, X, classes) for m in members])
    meta = LogisticRegression(n_iter=300, l2=1e-3).fit(features(X_val), y_val, classes=classes)
    return Fused("stack", members, weights, classes,
                 lambda X: meta.predict_proba(features(X)), meta=meta)


FUSION_RULES = {"best": _best, "vote": _vote, "soft": _soft, "average": _average,
                "stack": _stack}
NEEDS_VALIDATION = ("best", "stack")  # rules that learn from a validation split


def non_finite(members) -> list[int]:
    """The indices of the members whose parameter vector (``params_``, gradient learners)
    holds inf or nan: a local fit that diverged, whatever a rule would make of it."""
    return [i for i, m in enumerate(members)
            if getattr(m, "params_", None) is not None and not np.isfinite(m.params_).all()]


def fuse(rule: str, members, weights, classes, X_val=None, y_val=None) -> Fused:
    """Fuse fitted ``members`` by ``rule`` (a name in ``FUSION_RULES``).

    Parameters
    ----------
    rule : {"best", "vote", "soft", "average", "stack"}
    members : list of fitted classifiers (``predict``; ``predict_proba`` or
        ``class_scores``; ``params_`` for ``average``)
    weights : array-like of shape (n_members,), summing to 1
    classes : ndarray of shape (n_classes,)
        Every label of the problem (a member may have seen only some).
    X_val, y_val : validation rows, for the rules in ``NEEDS_VALIDATION``

    Returns
    -------
    Fused
    """
    if rule not in FUSION_RULES:
        raise ValueError(f"unknown fusion rule {rule!r}; known: {', '.join(FUSION_RULES)}")
    if rule in NEEDS_VALIDATION and (X_val is None or len(X_val) == 0):
        raise ValueError(f"fusion rule {rule!r} needs a non-empty validation split")
    return FUSION_RULES[rule](list(members), np.asarray(weights, dtype=np.float64),
                              np.asarray(classes), X_val, y_val)
