"""Values typed on the command line (``--set``, ``--grid``): TOML values, bare words as
strings, lists as one value, and a clear error for what is neither."""
import math
import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simdml import ScenarioError
from simdml._overrides import parse_grid, parse_sets, parse_value, split_values
from simdml._toml import dumps_value


@pytest.mark.parametrize("text, value", [
    ("2e6", 2e6), ("4", 4), ("true", True), ("inf", math.inf), ("async", "async"),
    ("lognormal", "lognormal"), ('"two words"', "two words"), ("[1,1,1,4]", [1, 1, 1, 4]),
    ("[0.5, 2]", [0.5, 2]), ('{a = "server", b = 3}', {"a": "server", "b": 3}),
    ("csv:data/my file.csv", "csv:data/my file.csv"), (" 8 ", 8),
])
def test_a_value_is_toml_or_a_bare_word(text, value):
    """A TOML value is parsed as TOML (types kept: 4 is an int, 2e6 a float); what is
    not TOML and has no bracket or quote is a string."""
    parsed = parse_value("--set", "k", text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("text, message", [
    ("[1,1,4", r"--set k: '\[1,1,4' is not a TOML value \(Unclosed array\); a list is "
               r"written \[1, 2, 3\]"),
    ('"open', r"--set k: '\"open' is not a TOML value"),
    ("1\ny = 2", r"--set k: '1\\ny = 2' is not one TOML value"),
    ("  ", r"--set k: the value is empty"),
])
def test_a_value_that_tries_to_be_toml_and_is_not_is_an_error(text, message):
    with pytest.raises(ScenarioError, match=message):
        parse_value("--set", "k", text)


def test_grid_values_are_cut_at_the_commas_outside_brackets_and_quotes():
    assert split_values("--grid", "k", "[1,1,1,4],[1,1,1,1]") == ["[1,1,1,4]", "[1,1,1,1]"]
    assert split_values("--grid", "k", '"a,b",\'c,d\',{x = "],"},e') == [
        '"a,b"', "'c,d'", '{x = "],"}', "e"]
    assert split_values("--grid", "k", r'"a\",b",c') == [r'"a\",b"', "c"]
    assert split_values("--grid", "k", "2") == ["2"]


@pytest.mark.parametrize("text, message", [
    ("[1,1],1]", r"--grid k: '\]' at character 8 of '\[1,1\],1\]' closes nothing that is open"),
    ("[1,{a=1]}", r"--grid k: '\]' at character 8 of .* closes nothing that is open"),
    ("[1,1", r"--grid k: '\[1,1' leaves '\[' open"),
    ('"a,b', r"--grid k: '\"a,b' leaves '\"' open"),
])
def test_unbalanced_brackets_and_quotes_are_named(text, message):
    with pytest.raises(ScenarioError, match=message):
        split_values("--grid", "k", text)


def test_parse_grid_gives_each_key_its_parsed_values():
    grid = parse_grid(["cluster.slowdown=[1,1,1,4],[1,1,1,1]", "strategy.kind=sync,async",
                       "cluster.speed=1e6,2e6"])
    assert grid == {"cluster.slowdown": [[1, 1, 1, 4], [1, 1, 1, 1]],
                    "strategy.kind": ["sync", "async"], "cluster.speed": [1e6, 2e6]}
    assert list(grid) == ["cluster.slowdown", "strategy.kind", "cluster.speed"]  # the x key first


@pytest.mark.parametrize("items, message", [
    (["cluster.workers"], r"--grid must be KEY=V1,V2,... \(e.g. cluster.workers=2,4,8\); "
                          r"got 'cluster.workers'"),
    (["=2,4"], r"--grid must be KEY=V1,V2,..."),
    (["cluster.workers=2", "cluster.workers=4"],
     r"--grid cluster.workers is given twice; give all its values in one --grid"),
    (["cluster.workers=2,,4"], r"--grid cluster.workers: the value is empty"),
    (["cluster.slowdown=[1,1,1,4];[1,1,1,1]"],
     r"not a TOML value .*values are separated by the commas outside brackets: --grid "
     r"'cluster.slowdown=\[1,1,1,4\],\[1,1,1,1\]'"),
])
def test_a_malformed_grid_is_refused_naming_the_key(items, message):
    with pytest.raises(ScenarioError, match=message):
        parse_grid(items)


def test_parse_sets_keeps_the_order_and_refuses_a_key_set_twice():
    assert parse_sets(["cluster.speed=2e6", "strategy.kind=async"]) == {
        "cluster.speed": 2e6, "strategy.kind": "async"}
    assert parse_sets(None) == {}
    with pytest.raises(ScenarioError, match=r"--set cluster.speed is given twice; give it once"):
        parse_sets(["cluster.speed=1", "cluster.speed=2"])
    with pytest.raises(ScenarioError, match=r"--set must be KEY=VALUE \(e.g. cluster.speed=2e6\); "
                                            r"got 'cluster.speed'"):
        parse_sets(["cluster.speed"])


@pytest.mark.parametrize("value, text", [(1e6, "1e6"), (1.25e7, "1.25e7"), (-2e6, "-2e6"),
                                         (123456.0, "123456.0"), (0.5, "0.5"), (1.0, "1.0"),
                                         (1e-5, "1e-05"), ([1, 4], "[1, 4]"), ("a", '"a"')])
def test_values_are_written_as_a_person_types_them(value, text):
    """A large round float is written 1e6 (not 1000000.0), and still reads back as a float."""
    assert dumps_value(value) == text
    assert parse_value("--set", "k", text) == value


@settings(max_examples=300, derandomize=True)
@given(st.floats(allow_nan=False))
def test_every_float_reads_back_as_itself(value):
    """The shorter form of a float is only taken when it reads back bit for bit."""
    assert tomllib.loads(f"x = {dumps_value(value)}")["x"] == value
