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
