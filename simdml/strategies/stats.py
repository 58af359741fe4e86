"""What a strategy counts as it trains: named event counters and staleness."""
from __future__ import annotations

__all__ = ["Stats"]


class Stats:
    """Counters a strategy keeps (``retries``, ``dropped_gradients``, ...; they go into the
    run's summary by name) and the staleness histogram of applied gradients.

    Observation only: counting costs no simulated time.
    """

    def __init__(self):
        self.counters: dict[str, int] = {}
        self.staleness: list[int] = []  # staleness[s]: gradients applied s versions late

    def count(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to the counter ``name`` (created at 0)."""
        self.counters[name] = self.counters.get(name, 0) + amount

    def record_staleness(self, s: int) -> None:
        """One gradient was applied ``s`` versions after the one it was computed on."""
        if s >= len(self.staleness):
            self.staleness.extend([0] * (s + 1 - len(self.staleness)))
        self.staleness[s] += 1
