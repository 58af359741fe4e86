"""The monitor: evaluates the global model as training goes, and says when to stop."""
from __future__ import annotations

import math

import numpy as np

from ..engine import Simulator

__all__ = ["Monitor"]

EVAL_CHUNK = 65536  # rows per piece when the monitor evaluates a large training set
# A loss this many times its best so far is diverging: far beyond the noise of a
# mini-batch or an early bump (a factor of a few), and reached long before an overflow.
DIVERGENCE_GROWTH = 1e3
# ... and never below GROWTH x this floor (a loss of 1): a 0-1 loss (trees, SVMs, a fused
# ensemble) cannot diverge, nor can a loss that was tiny grow to merely small.
DIVERGENCE_FLOOR = 1e-3


class Monitor:
    """Evaluates the global model as training goes, and says when to stop.

    The global model is either a parameter vector of the learner (gradient strategies)
    or a fitted model with ``training_loss(X, y)`` and ``score(X, y)`` (a cascade's top
    SVM, a fused ensemble). Evaluation uses the whole training set (loss) and the test
    set (``score``: accuracy for classifiers, R² for regressors); it is observation,
    so it costs no simulated time.

    A run diverges when an evaluated loss is not finite, or exceeds
    ``DIVERGENCE_GROWTH`` times the larger of its best so far and ``DIVERGENCE_FLOOR``;
    its stop reason then ends with ``divergence_hint`` (what to change: the run sets it).

    With ``with_math=False`` (a timing-only run, whose models are phantoms) a record has the
    time, the update and the epoch; its loss and score are NaN: there is nothing to
    evaluate, and nothing diverges.
    """

    def __init__(self, sim: Simulator, model, X_train, y_train, X_test, y_test, *,
                 eval_every: int = 1, max_updates: int = 100,
                 target_accuracy: float | None = None, with_math: bool = True):
        self.sim = sim
        self.model = model
        self.X_train, self.y_train = X_train, y_train
        self.X_test, self.y_test = X_test, y_test
        self.eval_every = eval_every
        self.max_updates = max_updates
        self.target_accuracy = target_accuracy
        self.with_math = with_math  # False: timing only (phantom models): no loss, no score
        self.history: list[dict] = []
        self.rows = 0             # rows whose gradients were computed (wasted work included)
        self.params = None        # the latest global model: a parameter vector or a fitted model
        self.updates = 0
        self.stop_reason: str | None = None
        self.time_to_target: float | None = None
        self.train_weight = None  # row weights of the training loss (class weights), if any
        self.best_loss = math.inf  # the lowest loss evaluated so far
        self.divergence_hint = "try a smaller strategy.lr"  # what a diverged run should change

    def _loss_and_score(self, params) -> tuple[float, float]:
        if isinstance(params, np.ndarray):
            return self._training_loss(params), self.model.score(self.X_test, self.y_test, params)
        return params.training_loss(self.X_train, self.y_train), params.score(self.X_test, self.y_test)

    def _training_loss(self, params) -> float:
        """The learner's loss on the whole training set; past EVAL_CHUNK rows in chunks
        (their losses weighted by their share), so that evaluating a million rows needs
        no million-row temporaries."""
        X, y, w = self.X_train, self.y_train, self.train_weight
        n = y.size
        if n <= EVAL_CHUNK:
            return self.model.loss_grad(params, X, y, w)[0]
        total = w.sum() if w is not None else n
        loss = 0.0
        for a in range(0, n, EVAL_CHUNK):
            b = min(n, a + EVAL_CHUNK)
            ww = None if w is None else w[a:b]
            share = (b - a) / total if w is None else ww.sum() / total
            part, _ = self.model.loss_grad(params, X[a:b], y[a:b], ww)
            loss += share * part  # the shares sum to 1, so the L2 term counts once
        return loss

    def evaluate(self, params, updates: int, **extra) -> dict:
        """Record ``time``, ``update``, ``epoch`` (gradient work done, in passes over the
        training set), ``loss`` and the test ``score`` for ``params`` now; the score also
        under its own name (``accuracy`` or ``r2``), and a strategy's ``extra`` columns."""
        if not self.with_math:           # a phantom has no values to evaluate
            loss = score = math.nan
        else:
            with np.errstate(all="ignore"):  # a diverged model is reported below, not warned about
                loss, score = self._loss_and_score(params)
        score = float(score)
        row = {"time": self.sim.now, "update": updates, "epoch": self.rows / len(self.y_train),
               "loss": float(loss), "score": score, self.model.score_name: score, **extra}
        self.history.append(row)
        if (self.target_accuracy is not None and self.time_to_target is None
                and score >= self.target_accuracy):
            self.time_to_target = self.sim.now
        return row

    def update(self, params, updates: int, **extra) -> bool:
        """The global model is now ``params`` after ``updates`` updates; True means stop.
        ``extra`` (numbers) go into the history row, when one is recorded."""
        self.params, self.updates = params, updates
        is_last = updates >= self.max_updates
        if updates % self.eval_every == 0 or is_last:
            row = self.evaluate(params, updates, **extra)
            if self.with_math and self._diverged(row["loss"], updates):
                return True
            if self.time_to_target is not None:
                self.stop_reason = (f"target {self.model.score_name} {self.target_accuracy} reached at "
                                    f"update {updates}")
                return True
        if is_last:
            self.stop_reason = f"{self.max_updates} updates done (stop.rounds)"
            return True
        return False

    def _diverged(self, loss: float, updates: int) -> bool:
        """Is ``loss`` (just evaluated) diverging? If so the stop reason says how."""
        limit = DIVERGENCE_GROWTH * max(self.best_loss, DIVERGENCE_FLOOR)
        if math.isfinite(loss) and loss <= limit:
            self.best_loss = min(self.best_loss, loss)
            return False
        growth = (f", over {DIVERGENCE_GROWTH:g} × its best so far ({self.best_loss:.4g})"
                  if math.isfinite(loss) else "")
        self.diverge(f"loss became {loss:.4g} at update {updates}{growth}")
        return True

    def diverge(self, what: str) -> None:
        """Stop as diverged: the stop reason says ``what``, when, and the hint."""
        self.stop_reason = (f"diverged: {what}, simulated time {self.sim.now:.4g} s; "
                            f"{self.divergence_hint}")

    def finish(self) -> None:
        """Make sure the last state is evaluated (e.g. when a time limit stopped the run)."""
        if self.params is not None and (not self.history or self.history[-1]["update"] != self.updates
                                        or self.history[-1]["time"] != self.sim.now):
            self.evaluate(self.params, self.updates)
