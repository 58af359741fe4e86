"""Every exercise's checker fails on the stub (saying it is not done) and passes on the
reference solution; and it catches a plausible wrong answer, in words."""
import types

import numpy as np
import pytest

from simdml.check import EXERCISES, check, load, main


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_checker_fails_on_the_stub_and_passes_on_the_solution(name):
    stub = check(name, load(name))
    assert stub and stub[0].startswith("not done yet: Exercise ")
    assert check(name, load(name, solution=True)) == []


def _module(**functions):
    return types.SimpleNamespace(**functions)


def _one_step(q, sigma, delta):
    """Exercise 11.1's slip: one step's epsilon, not composed over the steps."""
    solution = load("ex11", solution=True)
    return solution.epsilon(q, sigma, 1, delta)


@pytest.mark.parametrize("name, wrong, says", [
    ("ex01", _module(predict_round_time=lambda n, c, a, b, p, g, s: 2 * a + p / b + c + g / b + s),
     "queue at the server"),
    ("ex04", _module(sorted_by_label=lambda y, n, rng: np.array_split(np.arange(len(y)), n)),
     "should never decrease"),
    ("ex05", _module(compress=lambda g, k: (np.arange(k), np.asarray(g)[:k]),
                     decompress=lambda i, v, n: np.r_[v, np.zeros(n - len(v))]),
     "top-3 by magnitude"),
    ("ex06", _module(aggregate=lambda grads, w: sum(w[i] * g for i, g in grads.items())),
     "re-normalize"),
    ("ex07", _module(iteration_time=lambda F, B, buckets, A, S: max(
        F + sum(B[min(b):]) + a for b, a in zip(buckets, A)) + S), "one after another"),
    ("ex08", _module(memory_per_worker=lambda stage, psi, n, k: {   # stage 1 shards grads
        "params": 8 * psi / (n if stage >= 3 else 1), "grads": 8 * psi / (n if stage >= 1 else 1),
        "optimizer": 8 * k * psi / (n if stage >= 1 else 1)}), "whole at stages 0 and 1"),
    ("ex08", _module(memory_per_worker=lambda stage, psi, n, k: {   # Adam's state as one array
        "params": 8 * psi / (n if stage >= 3 else 1), "grads": 8 * psi / (n if stage >= 2 else 1),
        "optimizer": 8 * psi / (n if stage >= 1 else 1)}), "state_arrays vectors"),
    ("ex08", _module(memory_per_worker=lambda stage, psi, n, k: [8 * psi] * 3), "return a dict"),
    ("ex09", _module(iteration_time=lambda p, m, tf, tb, step: m * (tf + tb) + step),  # no fill
     "the pipeline also fills and drains"),
    ("ex09", _module(iteration_time=lambda p, m, tf, tb, step: (m + p) * (tf + tb) + step),
     "count m + p - 1 slots"),
    ("ex10", _module(fullest_worker_bytes=lambda layers, D, T, P, k: (2 + k) * 8 * sum(   # all / T P
        (i + 1) * o for i, o in layers) / (T * P)), "b_b, is whole on every tensor rank"),
    ("ex10", _module(fullest_worker_bytes=lambda layers, D, T, P, k: (2 + k) * 8 * sum(   # / D too
        (i + 1) * o for i, o in layers) / (D * P)), "the first ones one layer longer"),
    ("ex11", _module(epsilon=lambda q, sigma, steps, delta: _one_step(q, sigma, delta)),
     "composes by addition"),
    ("ex12", _module(weight=lambda s: 1 / (1 + s), buffered_change=None), "1 / (1 + s)"),
    ("ex12", _module(weight=lambda s: (1 + s) ** -0.5, buffered_change=lambda d, n, s: sum(
        ni * (1 + si) ** -0.5 * di for di, ni, si in zip(d, n, s)) / sum(
        ni * (1 + si) ** -0.5 for ni, si in zip(n, s))), "divide by the rows only"),
    ("ex12", _module(weight=lambda s: (1 + s) ** -0.5, buffered_change=lambda d, n, s: sum(
        (1 + si) ** -0.5 * di for di, si in zip(d, s)) / len(d)), "not 1 / K"),
])
def test_checkers_explain_a_wrong_answer(name, wrong, says):
    problems = check(name, wrong)
    assert problems and any(says in p for p in problems)


def test_check_command(capsys):
    assert main(["ex04", "--solution"]) == 0
    assert "passed" in capsys.readouterr().out
    assert main(["ex04"]) == 1
    assert "not done yet" in capsys.readouterr().out


@pytest.mark.parametrize("name, wrong, says", [
    ("ex04", _module(sorted_by_label=lambda y, n, rng: np.array_split(
        np.argsort(np.asarray(y), kind="quicksort"), n)), "sort stably"),
    ("ex06", _module(aggregate=lambda grads, w: sum(
        (w[i] / sum(w[j] for j in grads)) * g for i, g in grads.items())), "worker order"),
])
def test_checkers_hold_the_fine_print(name, wrong, says):
    """Ties by index (ex04) and summing in worker order (ex06) are checked on inputs
    where getting them wrong changes the numbers."""
    problems = check(name, wrong)
    assert any(says in p for p in problems), problems


def test_check_a_file_with_a_syntax_error(tmp_path, capsys):
    bad = tmp_path / "mine.py"
    bad.write_text("def aggregate(grads, weights)\n    return 0\n")
    assert main(["ex06", "--file", str(bad)]) == 1
    assert "Python cannot read your file" in capsys.readouterr().out


def test_ex02_catches_a_proportional_answer_without_the_threshold_rule():
    """With 12 blocks the slow worker gets none even from a plain proportional split; with
    200 blocks and a worker at 9 % of the fastest, only the MIN_SHARE rule leaves it out."""
    from collections import deque
    from simdml.scheduling import Policy

    class Proportional(Policy):
        name = "threshold"

        def assign(self, blocks, workers, state):
            speeds = np.array([state.speeds[w] for w in workers], dtype=float)
            rows = state.sizes[blocks]
            target = np.cumsum(speeds) / speeds.sum() * rows.sum()
            queues = {w: deque() for w in workers}
            for b, mid in zip(blocks, np.cumsum(rows) - rows / 2):
                queues[workers[min(int(np.searchsorted(target, mid)), len(workers) - 1)]].append(b)
            return queues

    problems = check("ex02", _module(Threshold=Proportional, MIN_SHARE=0.1))
    assert problems == ["worker 2 runs at 9% of the fastest speed: a proportional share would "
                        "be about 6 of 200 blocks, but below MIN_SHARE = 10% it must get none; "
                        "you gave it 6"]


@pytest.mark.parametrize("slip, says", [
    ("server", "the server's own step at the end (server_compute) is missing"),
    ("latencies", "count the latency twice"),
    ("queue", "the server's card receives one gradient at a time"),
    ("grad_wire", "a gradient takes grad_bytes / bandwidth on the wire"),
])
def test_ex01_names_the_term_a_wrong_formula_misses(slip, says):
    """A formula with one common slip is told which term it misses, not a generic hint."""
    from simdml.check import _round_time
    answer = _module(predict_round_time=lambda *args: _round_time(*args, slip=slip))
    problems = check("ex01", answer)
    assert problems and all(f"Your formula matches one with a slip: {says}" in p for p in problems)


def test_an_answer_that_raises_is_reported_with_its_line(tmp_path, capsys):
    """An exception in the student's code names the line of their file it came from."""
    mine = tmp_path / "mine.py"
    mine.write_text("def aggregate(grads, weights):\n"
                    "    total = 0\n"
                    "    return total / len([])\n")
    assert main(["ex06", "--file", str(mine)]) == 1
    out = capsys.readouterr().out
    assert ("your code raised ZeroDivisionError: division by zero (line 3 of mine.py: "
            "return total / len([]))") in out


def test_export_hands_out_the_exercises_without_the_solutions(tmp_path, capsys):
    """`python -m simdml.check --export DIR` copies the stubs and the README, byte for
    byte, and no solution; it refuses a folder that already holds them."""
    from simdml.check import _folder
    out = tmp_path / "handout"
    assert main(["--export", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["README.md"] + [f"{stem}.py" for stem in EXERCISES.values()])
    for name in names:
        assert (out / name).read_bytes() == (_folder() / name).read_bytes()
    assert f"copied {len(EXERCISES) + 1} files" in capsys.readouterr().out
    assert main(["--export", str(out)]) == 2
    assert "already holds README.md" in capsys.readouterr().err
    assert check("ex06", load("ex06", path=out / "ex06_straggler_aggregation.py"))[0].startswith(
        "not done yet")


@pytest.mark.parametrize("slip, says", [
    ("parallel", "buckets are all-reduced one after another, on one stream"),
    ("early", "a bucket is ready only when backward has passed its lowest layer"),
    ("no_overlap", "with overlap a bucket's all-reduce starts as soon as the bucket is ready"),
    ("last_only", "only the last bucket's all-reduce is exposed when"),
    ("step", "the optimizer's step at the end (step) is missing"),
])
def test_ex07_names_what_a_wrong_ddp_formula_gets_wrong(slip, says):
    """A ddp iteration formula with one common slip fails on the cases where the slip
    changes the time, each time told which slip it is."""
    from simdml.check import _bucket_time
    answer = _module(iteration_time=lambda *args: _bucket_time(*args, slip=slip))
    problems = check("ex07", answer)
    assert problems and all(f"Your formula matches one with a slip: {says}" in p for p in problems)


def test_ex07_cases_cover_both_regimes_and_multi_layer_buckets():
    """The checker's cases cover both regimes and between them, and hold buckets of
    several layers (where starting a bucket too early shows)."""
    from simdml.check import _DDP_CASES
    assert any(size > 1 for *_, size in _DDP_CASES)
    assert {case.split(",")[0] for case, *_ in _DDP_CASES} == {
        "compute-bound", "communication-bound", "between the regimes"}


@pytest.mark.parametrize("slip, says", [
    ("fill", "m (t_f + t_b) is only each stage's work: the pipeline also fills and drains"),
    ("m_plus_p", "count m + p - 1 slots of t_f + t_b, not m + p"),
    ("forward_fill", "the backwards drain as the forwards fill"),
    ("sequential", "the stages work at once, on different micro-batches"),
    ("no_step", "the step at the end (step) is missing"),
    ("p_steps", "the stages step at the same time, each its own block"),
    ("m_steps", "a stage steps once an iteration, after its last backward"),
])
def test_ex09_names_what_a_wrong_pipeline_formula_gets_wrong(slip, says):
    """A pipeline iteration formula with one common slip fails on the cases where the
    slip changes the time, each time told which slip it is."""
    from simdml._check_parallel import _pipeline_time
    answer = _module(iteration_time=lambda *args: _pipeline_time(*args, slip=slip))
    problems = check("ex09", answer)
    assert problems and all(f"Your formula matches one with a slip: {says}" in p for p in problems)


def test_ex09_is_timed_by_the_simulator_s_clock():
    """The checker's cases cover both schedules, m below and above p, and one-stage
    simulated runs; the recurrence that times them is the simulated pipelines' clock
    (2 to 4 unequal stages, both schedules)."""
    from simdml._check_parallel import _PIPELINE_CASES, _PIPELINE_CLOCK, _pipeline_clock
    assert {case[2] for case in _PIPELINE_CASES} == {"gpipe", "1f1b"}
    assert any(m < p for p, m, *_ in _PIPELINE_CASES) and any(m > p for p, m, *_ in _PIPELINE_CASES)
    assert {s for *_, s in _PIPELINE_CLOCK} == {"gpipe", "1f1b"}
    assert _pipeline_clock() == ()


def test_a_passed_ex05_shows_its_compressor_in_a_simulation(capsys):
    from simdml import check
    assert check.main(["ex05", "--solution"]) == 0
    out = capsys.readouterr().out
    assert "passed" in out and "in a simulation" in out
    lines = {line.split(":")[0].strip(): line for line in out.splitlines() if "bytes sent" in line}
    assert set(lines) == {"no compression", "simdml's topk + EF", "yours + EF"}
    loss = lambda name: float(lines[name].rsplit(" ", 1)[1])   # noqa: E731
    assert loss("yours + EF") == loss("simdml's topk + EF") < loss("no compression")


def test_ex12_runs_the_answer_s_weight_inside_the_simulation(capsys):
    """A weight right at s = 0, 1, 3, 8, 99 but wrong elsewhere (1 at s = 2) passes the
    cases and is caught by the FedBuff simulation, where staleness 2 occurs; a passed
    answer's report shows its run beside no weighting."""
    from simdml import check as checker
    solution = load("ex12", solution=True)
    odd = _module(weight=lambda s: 1.0 if s == 2 else solution.weight(s),
                  buffered_change=solution.buffered_change)
    assert any("another model" in p for p in check("ex12", odd))
    assert checker.main(["ex12", "--solution"]) == 0
    out = capsys.readouterr().out
    assert "no weighting:" in out and "yours:" in out and "stale updates" in out
