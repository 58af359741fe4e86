"""A parameter server's checkpoints on stable storage, and where it restarts from.

A checkpoint holds the model, its version and the optimizer's state (momentum, Adam's
moments): a restarted server resumes the optimizer where the checkpoint left it."""
from __future__ import annotations

import numpy as np

from .monitor import Monitor
from .stats import Stats

__all__ = ["Checkpoints", "MAX_FUTILE_RESTARTS"]

MAX_FUTILE_RESTARTS = 20  # restarts in a row without a new update before giving up


class Checkpoints:
    """Every ``every`` updates the server writes its model and its optimizer's state to
    stable storage, taking
    ``seconds`` of its time; after a crash it restarts from the last checkpoint (or from
    the initial model, if none was written) and the updates since then are lost.

    ``every = 0`` never checkpoints: a restarted server begins again from the start.
    A server that keeps failing before it gets past its checkpoint would restart for
    ever: after ``MAX_FUTILE_RESTARTS`` restarts without a new update it gives up.
    """

    def __init__(self, *, every: int, seconds: float, initial: np.ndarray | None,
                 monitor: Monitor, stats: Stats):
        self.every = every           # updates between checkpoints; 0: never
        self.seconds = seconds       # s to write one
        self.initial = initial       # the model training began with
        self.last: dict | None = None  # the last one written: params, version, time
        self._monitor, self._stats = monitor, stats
        self._best_version, self._futile = 0, 0
        self.lost_model: dict | None = None  # the most advanced model a restart lost

    def restore(self, node) -> tuple:
        """The model a server (re)starts from, its version and its optimizer's state: the
        initial model at first (state None: a fresh one); after a crash, the last
        checkpoint -- counting ``server_restarts`` and the ``updates_lost``.
        ``(None, version, None)`` means: give up (the stop reason says why)."""
        if node.epoch == 0:
            return self.initial, 0, None
        self._stats.count("server_restarts")
        params, version, state = ((self.last["params"], self.last["version"], self.last["state"])
                                  if self.last else (self.initial, 0, None))
        self._stats.count("updates_lost", self._monitor.updates - version)
        self._remember_lost(version)
        best = max(self._monitor.updates, self._best_version)
        self._futile = self._futile + 1 if best <= self._best_version else 0
        self._best_version = best
        if self._futile >= MAX_FUTILE_RESTARTS:
            self._monitor.stop_reason = (
                f"the server fails faster than it makes progress: {self._futile} restarts "
                f"without getting past update {best}; checkpoint more often "
                f"(faults.checkpoint_every) or let it fail less (faults.server_mtbf)")
            return None, version, None
        return params, version, state

    def _remember_lost(self, version: int) -> None:
        """Keep the most advanced model a restart (to ``version``) threw away: its update
        and, if it was evaluated, its score -- what the run's record reports as lost."""
        monitor = self._monitor
        if monitor.updates <= max(version, self.lost_model["update"] if self.lost_model else 0):
            return
        last = monitor.history[-1] if monitor.history else None
        is_evaluated = last is not None and last["update"] == monitor.updates
        self.lost_model = {"update": monitor.updates,
                           "score": last["score"] if is_evaluated else None}

    def lost_note(self, updates: int, score_name: str) -> str | None:
        """A sentence for the stop reason when the run ends with a model behind the one a
        restart lost (``updates`` is the final model's); None otherwise."""
        lost = self.lost_model
        if lost is None or lost["update"] <= updates:
            return None
        n = self._stats.counters.get("server_restarts", 0)
        score = ("" if lost["score"] is None or lost["score"] != lost["score"]  # NaN: none
                 else f" ({score_name} {lost['score']:.4g})")
        origin = (f"its checkpoint of update {self.last['version']}" if self.last
                  else "the initial model (no checkpoint written)")
        return (f"the server restarted {n} time{'s' * (n != 1)} and lost its model of "
                f"update {lost['update']}{score}: the final model is that of update "
                f"{updates}, restarted from {origin}")

    def after_update(self, node, params, version: int, state=None):
        """Process step after each update: a checkpoint every ``every`` updates (the
        optimizer's ``state`` with the model: steps never change a state in place, so
        keeping it is keeping a copy)."""
        if self.every and version % self.every == 0:
            yield node.checkpoint(self.seconds)
            self.last = {"params": params, "version": version, "state": state,
                         "time": node.sim.now}
            self._stats.count("checkpoints")
