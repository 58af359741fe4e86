"""Progress on stderr: for a terminal only, at most a few updates a second, off with
--quiet; a sweep says runs done / total, elapsed and left; a long run its simulated time."""
import io
import re
import sys
import time

import pytest

import simdml._progress as progress
from simdml import Scenario, sweep
from simdml._progress import ProgressLine, is_wanted, watching
from simdml.cli import main


class FakeTTY(io.StringIO):
    """A stderr that says it is a terminal and keeps what was written."""

    def isatty(self):
        return True


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_progress_line_is_throttled_and_a_forced_update_is_not():
    """Updates closer than the interval are dropped; a forced one (the last) is written;
    a shorter line blanks the rest of the longer one before it."""
    stream, clock = io.StringIO(), Clock()
    line = ProgressLine(stream, interval=0.25, clock=clock)
    assert line.update("[1/4] long text") is True
    clock.now = 0.1
    assert line.update("[2/4] dropped") is False
    clock.now = 0.3
    assert line.update("[3/4] short") is True
    clock.now = 0.31
    assert line.update("[4/4] end", force=True) is True
    line.close()
    assert stream.getvalue() == ("\r[1/4] long text" + "\r[3/4] short    " + "\r[4/4] end  "
                                 + "\n")


def test_a_blanked_line_leaves_nothing_and_an_unused_one_writes_nothing():
    stream = io.StringIO()
    line = ProgressLine(stream, interval=0, clock=Clock())
    line.close()
    assert stream.getvalue() == ""
    line.update("abc")
    line.close(keep=False)
    assert stream.getvalue() == "\rabc" + "\r   \r"


def test_progress_is_wanted_on_a_terminal_only_unless_told():
    assert is_wanted(None, FakeTTY()) is True
    assert is_wanted(None, io.StringIO()) is False
    assert is_wanted(False, FakeTTY()) is False and is_wanted(True, io.StringIO()) is True


def test_watching_writes_what_it_reads_until_the_body_ends():
    """The thread writes read() every interval after the delay, and blanks the line at
    the end; disabled, it writes nothing."""
    stream, calls = io.StringIO(), []

    def read():
        calls.append(1)
        return f"t = {len(calls)}"
    with watching(read, enabled=True, delay=0.0, interval=0.01, stream=stream):
        time.sleep(0.2)
    text = stream.getvalue()
    assert text.startswith("\rt = 1") and "\rt = 2" in text
    assert text.endswith("\r" + " " * len(f"t = {len(calls)}") + "\r")
    quiet = io.StringIO()
    with watching(read, enabled=False, delay=0.0, interval=0.01, stream=quiet):
        time.sleep(0.05)
    assert quiet.getvalue() == ""


BASE = Scenario(name="progress").replace(**{"stop.rounds": 3})
SWEEP = ["sweep", "iris_sync", "--set", "cluster.speed=1e6", "--grid", "cluster.workers=2,3,4", "--grid", "stop.rounds=3"]


def test_a_sweep_on_a_terminal_shows_runs_done_elapsed_and_left(monkeypatch, capsys):
    """Every update is '[done/total] runs done, E s elapsed, ~L s left'; with updates
    throttled to one per 100 s only the first and the (forced) last are written."""
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stderr", tty)
    monkeypatch.setattr(progress, "PROGRESS_INTERVAL_S", 100.0)
    assert main(SWEEP) == 0
    lines = tty.getvalue().split("\r")[1:]
    assert [line[:6] for line in lines] == ["[1/3] ", "[3/3] "]
    assert re.fullmatch(r"\[1/3\] runs done, \d+ s elapsed, ~\d+ s left *", lines[0])
    assert re.fullmatch(r"\[3/3\] runs done, \d+ s elapsed, ~0 s left *\n", lines[1])


def test_a_sweep_without_throttle_shows_every_run(monkeypatch):
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stderr", tty)
    monkeypatch.setattr(progress, "PROGRESS_INTERVAL_S", 0.0)
    sweep(BASE, {"cluster.workers": [2, 3, 4]})
    assert re.findall(r"\[(\d)/3\]", tty.getvalue()) == ["1", "2", "3"]


@pytest.mark.parametrize("argv", [SWEEP, ["run", "iris_sync"],
                                  ["compare", "iris_sync", "iris_sync"]])
def test_nothing_is_written_when_stderr_is_not_a_terminal_or_with_quiet(argv, monkeypatch,
                                                                        capsys):
    """A file or a pipe gets no progress line; --quiet turns it off on a terminal."""
    monkeypatch.setattr(progress, "PROGRESS_INTERVAL_S", 0.0)
    monkeypatch.setattr(progress, "RUN_DELAY_S", 0.0)
    assert main(argv) == 0
    assert capsys.readouterr().err == ""  # capsys's stderr is no terminal
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stderr", tty)
    assert main(argv + ["--quiet"]) == 0
    assert tty.getvalue() == ""


def test_a_long_run_on_a_terminal_shows_the_simulated_time_reached(monkeypatch, capsys):
    """`simdml run` on a terminal: 'run NAME: t = T s simulated, U of R updates, E s
    elapsed', rewritten in place and blanked before the summary is printed."""
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stderr", tty)
    monkeypatch.setattr(progress, "RUN_DELAY_S", 0.0)
    monkeypatch.setattr(progress, "PROGRESS_INTERVAL_S", 0.005)
    assert main(["run", "synthetic_16", "--set", "stop.rounds=400"]) == 0
    lines = [line for line in tty.getvalue().split("\r") if line.strip()]
    assert lines, "no progress line was written"
    for line in lines:
        assert re.fullmatch(r"run synthetic_16: t = [0-9.e+-]+ s simulated, \d+ of 400 "
                            r"updates, \d+ s elapsed *", line), line
    assert tty.getvalue().endswith(" \r")  # blanked: the summary starts a clean line
    assert "stopped because" in capsys.readouterr().out


def test_the_python_run_prints_nothing_unasked(monkeypatch):
    """run() is quiet by default, even on a terminal (a library prints nothing unasked)."""
    from simdml import run
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stderr", tty)
    monkeypatch.setattr(progress, "RUN_DELAY_S", 0.0)
    run(BASE)
    assert tty.getvalue() == ""
