"""Learners: pure-numpy models with a scikit-learn face and a strategy face.

``MODELS`` maps a scenario's model name to its class; strategies and the scenario
loader look learners up there, so a new learner is registered by adding one entry.
Two families: gradient learners (``GRADIENT_MODELS``: a parameter vector, trained by
any gradient strategy through ``init_params`` / ``loss_grad`` / ``grad_flops``; the
multilayer perceptrons add a per-layer face, ``forward_layer`` / ``backward_layer``) and
learners that are fitted whole on a subset (``KernelSVM``: the cascade, local fusion;
``DecisionTree``: histogram trees, local fusion; ``RandomForest``: local fusion);
each strategy names the learners it can train.
Each class says what its ``score`` means: ``is_classifier`` and ``score_name``
("accuracy" for classifiers, "r2" for regressors).
"""

from simdml.models._base import GradientModel
from simdml.models._validation import NotFittedError
from simdml.models.kernel_svm import ConvergenceWarning, KernelSVM
from simdml.models.linear import LinearRegression
from simdml.models.logistic import LogisticRegression
from simdml.models.mlp import LayerCache, MLPClassifier, MLPRegressor
from simdml.models.svm import LinearSVM
from simdml.models.tree import DecisionTree, RandomForest

MODELS = {"logistic": LogisticRegression, "linear": LinearRegression, "svm": LinearSVM,
          "kernel_svm": KernelSVM, "tree": DecisionTree, "forest": RandomForest,
          "mlp": MLPClassifier, "mlp_regression": MLPRegressor}
GRADIENT_MODELS = tuple(name for name, cls in MODELS.items() if issubclass(cls, GradientModel))

__all__ = ["MODELS", "GRADIENT_MODELS", "GradientModel", "DecisionTree", "RandomForest", "ConvergenceWarning", "KernelSVM", "LinearRegression", "LinearSVM",
           "LogisticRegression", "LayerCache", "MLPClassifier", "MLPRegressor", "NotFittedError"]
