"""Learners: pure-numpy models with a scikit-learn face and a strategy face.

``MODELS`` maps a scenario's model name to its class; strategies and the scenario
loader look learners up there, so a new learner is registered by adding one entry.
"""

from simdml.models._base import NotFittedError
from simdml.models.logistic import LogisticRegression

MODELS = {"logistic": LogisticRegression}

__all__ = ["MODELS", "LogisticRegression", "NotFittedError"]
