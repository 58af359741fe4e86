"""Every run is bounded: in real time from its first step (data preparation included),
and in what it attempts when it cannot make progress (issue 16, items 11-13)."""
import time

import pytest

import simdml.experiment
from simdml import Scenario, ScenarioError, run


def _s(**changes):
    return Scenario(name="bounded").replace(**{"stop.rounds": 5, **changes})


def test_the_wall_clock_guard_covers_data_preparation(monkeypatch):
    """Guards item 13: stop.wall_time bounds the whole run, not only the simulation; a
    slow data preparation (here a stand-in that spins for 3 s) is cut at the limit."""
    prepare = simdml.experiment.split_data

    def slow_split(s, streams):
        began = time.monotonic()
        while time.monotonic() - began < 3.0:  # pure Python: the alarm can interrupt it
            pass
        return prepare(s, streams)
    monkeypatch.setattr(simdml.experiment, "split_data", slow_split)
    began = time.monotonic()
    with pytest.raises(ScenarioError, match=r"stop.wall_time=0.2 s of real time passed while "
                                            r"preparing the run"):
        run(_s(**{"stop.wall_time": 0.2}))
    assert time.monotonic() - began < 1.5
