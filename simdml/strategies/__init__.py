"""How a cluster trains: each strategy is a few generator processes.

``STRATEGIES`` maps a scenario's ``strategy.kind`` to its module-level pieces: the
options dataclass and ``start(job) -> Process`` (the process whose end ends training).
"""
from __future__ import annotations

from dataclasses import dataclass

from . import sync
from ._job import Job, Monitor, Shard

__all__ = ["STRATEGIES", "StrategySpec", "Job", "Monitor", "Shard"]


@dataclass(frozen=True)
class StrategySpec:
    options: type   # frozen kw_only dataclass of the strategy's own settings
    start: object   # start(job) -> Process
    summary: str


STRATEGIES: dict[str, StrategySpec] = {
    "sync": StrategySpec(sync.SyncOptions, sync.start,
                         "synchronous parameter server (exact full-batch gradient descent)"),
}
