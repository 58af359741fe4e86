"""No refactoring changes a number: every golden run's full record hashes as recorded.

The runs (``tests/golden/cases.py``) cover every strategy, scheduling policy,
partitioner, learner, fault kind, resampling mode and compute-time distribution; the
digest covers the history, summary, per-node totals, every span and instant, the final
parameters and the final model's predictions, with floats compared bit for bit.
"""
import json
import math

import pytest

import simdml
from tests.golden import cases

GOLDEN = json.loads(cases.GOLDEN.read_text())


def test_every_case_is_recorded():
    """golden.json holds exactly the cases that cases.py defines (regenerate both together)."""
    assert sorted(GOLDEN) == sorted(cases.CASES)


@pytest.mark.parametrize("label", sorted(cases.CASES))
def test_run_is_bit_for_bit_the_recorded_one(label):
    """The run's digest, and its headline numbers, equal the recorded ones."""
    r = simdml.run(cases.scenario(label))
    want = GOLDEN[label]
    assert cases.headline(r) == {k: want[k] for k in cases.headline(r)}
    assert cases.digest(r) == want["digest"], (
        f"{label}: same headline, different record (a span, a history row, a parameter)")


def test_digest_sees_one_bit():
    """The digest changes when a single float of the history changes by one ulp."""
    r = simdml.run(cases.scenario("sync/logistic"))
    before = cases.digest(r)
    r.history[3]["loss"] = math.nextafter(r.history[3]["loss"], math.inf)
    assert cases.digest(r) != before
