"""simdml._checks: one rule, one message (key, rule, value), whichever layer asks."""
import math

import numpy as np
import pytest

from simdml import _checks
from simdml.scenario import Scenario, ScenarioError
from simdml.strategies.sync import SyncOptions


@pytest.mark.parametrize("value, message", [
    (-1, "latency must be >= 0 (s); got -1.0"),
    (math.nan, "latency must be a finite number (s); got nan"),
    (math.inf, "latency must be a finite number (s); got inf"),
    (True, "latency must be a number (s); got True"),
    ("1", "latency must be a number (s); got '1'"),
])
def test_number_names_key_rule_and_value(value, message):
    """number() says which part of the rule failed, with the unit and the value."""
    with pytest.raises(ValueError, match=f"^{message.replace('(', '[(]').replace(')', '[)]')}$"):
        _checks.number("latency", value, low=0, unit="s")


def test_number_returns_a_float_and_may_allow_infinity():
    """A passing number comes back as a float; finite=False lets inf through."""
    assert _checks.number("x", np.int64(3), low=0) == 3.0
    assert _checks.number("x", math.inf, low=0, strict_low=True, finite=False) == math.inf
    with pytest.raises(ValueError, match=r"^x must be <= 1; got 1.5$"):
        _checks.number("x", 1.5, high=1)


def test_nan_fails_the_bound_where_infinity_is_allowed():
    """With finite=False (inf allowed), NaN is refused by the bound, not as 'not finite'."""
    with pytest.raises(ValueError, match=r"^bandwidth must be > 0 \(bytes/s\); got nan$"):
        _checks.number("bandwidth", math.nan, low=0, strict_low=True, finite=False,
                       unit="bytes/s")
    with pytest.raises(ValueError, match=r"^x must be a finite number; got nan$"):
        _checks.number("x", math.nan, finite=False)


@pytest.mark.parametrize("value", [0, -1.0, math.inf, math.nan, "a", False])
def test_finite_number_states_the_whole_rule(value):
    """finite_number() gives one message for every failure: the whole rule."""
    with pytest.raises(ValueError, match=r"^rho must be a finite number > 0; got "):
        _checks.finite_number("rho", value, low=0, strict_low=True)


@pytest.mark.parametrize("value", [0, 2.0, True, "3", None])
def test_integer_refuses_bools_floats_and_small_values(value):
    """integer(): a bool is not an integer, nor is 2.0."""
    with pytest.raises(ValueError, match=rf"^k must be an integer >= 1; got {value!r}$"):
        _checks.integer("k", value, low=1)


def test_integer_bounds_and_numpy_integers():
    """A numpy integer passes as an int; the upper bound is named, with its meaning if given."""
    assert type(_checks.integer("k", np.int64(4), low=1)) is int
    with pytest.raises(ValueError, match=r"^k must be at most 9; got 10$"):
        _checks.integer("k", 10, low=1, high=9)
    with pytest.raises(ValueError, match=r"^k must be an integer with 1 <= k <= len\(y\)=9; got 0$"):
        _checks.integer("k", 0, low=1, high=9, high_name="len(y)")


def test_choice_and_flag():
    """choice() lists the allowed values and a near miss; flag() takes only a bool."""
    with pytest.raises(ValueError, match=r"^kind must be one of 'sync', 'async'; got 'asink' "
                                         r"\(did you mean 'async'\?\)$"):
        _checks.choice("kind", "asink", ("sync", "async"))
    assert _checks.did_you_mean("zzz", ("sync",)) == ""
    with pytest.raises(ValueError, match=r"^on must be true or false; got 1$"):
        _checks.flag("on", 1)


def test_options_say_the_local_key_and_the_scenario_the_dotted_one():
    """The options class names its key; the scenario layer adds the section, once."""
    with pytest.raises(ValueError, match=r"^wait_for must be an integer >= 1; got 0$"):
        SyncOptions(wait_for=0)
    with pytest.raises(ScenarioError, match=r"^strategy.wait_for must be an integer >= 1; got 0$"):
        Scenario().replace(**{"strategy.wait_for": 0})
    with pytest.raises(ScenarioError, match=r"^scheduling.prefetch must be an integer >= 1; got 0$"):
        Scenario().replace(**{"scheduling.prefetch": 0})
