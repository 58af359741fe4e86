"""Learners: pure-numpy models with a scikit-learn face and a strategy face.

``MODELS`` maps a scenario's model name to its class; strategies and the scenario
loader look learners up there, so a new learner is registered by adding one entry.
``KernelSVM`` (SMO) is not a gradient learner and is not in ``MODELS`` yet: the
strategies that train it (cascade, local fusion) come with it.
Each class says what its ``score`` means: ``is_classifier`` and ``score_name``
("accuracy" for classifiers, "r2" for regressors).
"""

from simdml.models._base import NotFittedError
from simdml.models.kernel_svm import ConvergenceWarning, KernelSVM
from simdml.models.linear import LinearRegression
from simdml.models.logistic import LogisticRegression
from simdml.models.svm import LinearSVM

MODELS = {"logistic": LogisticRegression, "linear": LinearRegression, "svm": LinearSVM}

__all__ = ["MODELS", "ConvergenceWarning", "KernelSVM", "LinearRegression", "LinearSVM",
           "LogisticRegression", "NotFittedError"]
