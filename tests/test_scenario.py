"""Scenarios: defaults, TOML round trips, dotted replace, and errors that name the key."""
import math

import pytest

from simdml import Scenario, ScenarioError, bundled_scenarios, load_scenario
from simdml.scenario import parse_scenario


def test_defaults_are_valid_and_per_worker_values_expand():
    """A default scenario is valid; one number for speed means that number for every worker."""
    s = Scenario()
    assert s.cluster.speed == (1e9,) * s.cluster.workers
    assert s.cluster.slowdown == (1.0,) * s.cluster.workers


def test_toml_round_trip(tmp_path):
    """Saving a scenario to TOML and loading it back gives an equal scenario."""
    s = parse_scenario("""
        name = "rt"
        seed = 7
        [cluster]
        workers = 3
        speed = [1e6, 2e6, 3e6]
        compute_time = "pareto"
        jitter = 0.5
        [network]
        bandwidth = inf
        links = [{a = "server", b = 2, latency = 0.01, bandwidth = 1e6}, {a = 0, b = 1, latency = 0.5}]
        [faults]
        crash = [{node = 1, at = 0.5, recover_after = 0.25}, {node = "server", at = 9.0}]
        [model]
        kind = "logistic"
        l2 = 0.01
        [strategy]
        lr = 0.1
        round_timeout = 2.5
        [stop]
        rounds = 7
        target_accuracy = 0.9
    """)
    back = load_scenario(s.save(tmp_path / "rt.toml"))
    assert back == s
    assert back.network.bandwidth == math.inf
    assert back.faults.crash[1].node == "server" and back.faults.crash[1].recover_after is None


def test_replace_changes_only_the_dotted_key():
    """replace(**{"a.b": v}) returns a changed copy and leaves the original alone."""
    s = Scenario()
    t = s.replace(**{"cluster.workers": 8, "strategy.lr": 0.25, "seed": 3})
    assert (t.cluster.workers, t.strategy.lr, t.seed) == (8, 0.25, 3)
    assert t.cluster.speed == (1e9,) * 8
    assert s.cluster.workers == 4
    assert t.network == s.network


@pytest.mark.parametrize("toml, message", [
    ("[cluster]\nworkers = 0", r"cluster.workers must be an integer >= 1; got 0"),
    ("[cluster]\nworkers = 2.5", r"cluster.workers must be an integer >= 1; got 2.5"),
    ("[cluster]\nworkers = 3\nspeed = [1e6, 1e6, -1.0]", r"cluster.speed\[2\] must be > 0 \(flop/s\); got -1.0"),
    ("[cluster]\nworkers = 3\nspeed = [1e6, 1e6]", r"cluster.speed must be one number or a list of cluster.workers=3 numbers; got a list of 2"),
    ("[cluster]\nspeed = nan", r"cluster.speed must be > 0 \(flop/s\); got nan"),  # inf is allowed
    ("[cluster]\nspeed = 'fast'", r"cluster.speed must be a number \(flop/s\); got 'fast'"),
    ("[cluster]\ncompute_time = 'lognorml'", r"cluster.compute_time must be one of .*'lognormal'.*got 'lognorml' \(did you mean 'lognormal'\?\)"),
    ("[cluster]\nwrokers = 3", r"unknown key 'cluster.wrokers'; allowed in \[cluster\]: workers, .* \(did you mean 'workers'\?\)"),
    ("[cluster]\njitter = -0.1", r"cluster.jitter must be >= 0; got -0.1"),
    ("[network]\nlatency = -1", r"network.latency must be >= 0 \(s\); got -1.0"),
    ("[network]\nbandwidth = 0", r"network.bandwidth must be > 0 \(bytes/s\); got 0.0"),
    ("[network]\nloss = 1.0", r"network.loss must be < 1 \(a probability\); got 1.0"),
    ("[faults]\ncrash = [{node = 9, at = 1.0}]", r"faults.crash\[0\].node must be 'server' or a worker index below cluster.workers=4; got 9"),
    ("[faults]\ncrash = [{node = 'w1', at = 1.0}]", r"faults.crash\[0\].node must be 'server' or a worker index >= 0; got 'w1'"),
    ("[faults]\ncrash = [{node = 1}]", r"faults.crash\[0\] needs 'node' and 'at'"),
    ("[faults]\ncrash = [{node = 1, at = 1.0, when = 2}]", r"unknown key 'faults.crash\[0\].when'"),
    ("[network]\nlinks = [{a = 'server', b = 4}]", r"network.links\[0\].b must be 'server' or a worker index below cluster.workers=4; got 4"),
    ("[network]\nlinks = [{a = 'server'}]", r"network.links\[0\] needs 'a' and 'b'"),
    ("[network]\nlinks = [{a = 0, b = 1, bandwidth = -1}]", r"network.links\[0\].bandwidth must be > 0 \(bytes/s\); got -1.0"),
    ("[faults]\nmtbf = 0", r"faults.mtbf must be > 0 \(s\); got 0.0"),
    ("[data]\ndataset = 'irs'", r"data.dataset must be one of .*got 'irs' \(did you mean 'iris'\?\)"),
    ("[data]\ntest_size = 1.5", r"data.test_size must be < 1; got 1.5"),
    ("[data]\npartition = 'random'", r"data.partition must be one of 'iid', 'proportional', 'speed', 'label_skew', 'dirichlet', 'size_skew', 'by_label'; got 'random'"),
    ("[model]\nkind = 'cnn'", r"model.kind must be one of 'logistic'.*; got 'cnn'"),
    ("[model]\nl22 = 0.1", r"unknown key model.l22 for model.kind='logistic'; allowed: kind, lr, n_iter, l2, class_weight \(did you mean 'l2'\?\)"),
    ("[model]\nl2 = -1.0", r"model.l2: The 'l2' parameter of LogisticRegression must be >= 0"),
    ("[strategy]\nkind = 'asink'", r"strategy.kind must be one of 'sync'.*; got 'asink'"),
    ("[strategy]\nlr = -1", r"strategy.lr must be > 0; got -1.0"),
    ("[strategy]\nround_timout = 1.0", r"unknown key strategy.round_timout for strategy.kind='sync'; allowed: kind, lr, batch_size, wait_for, round_timeout"),
    ("[strategy]\nround_timeout = -2.0", r"strategy.round_timeout must be > 0 \(s\); got -2.0"),
    ("[stop]\nrounds = 0", r"stop.rounds must be an integer >= 1; got 0"),
    ("[stop]\ntarget_accuracy = 1.5", r"stop.target_accuracy must be <= 1; got 1.5"),
    ("seed = -1", r"seed must be an integer >= 0; got -1"),
    ("colour = 'red'", r"unknown key 'colour'; allowed in the top level: name, description, seed"),
    ("cluster = 3", r"\[cluster\] must be a table; got 3"),
    ("[cluster\nworkers = 3", r"<string>: invalid TOML"),
])
def test_bad_scenarios_name_the_key(toml, message):
    """Every invalid scenario raises a ScenarioError naming the key, the rule and the value."""
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(toml)


def test_bad_files(tmp_path):
    """Missing files, non-UTF-8 bytes and unknown bundled names get clear ScenarioErrors."""
    with pytest.raises(ScenarioError, match="cannot read scenario file"):
        load_scenario(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"name = '\xff\xfe'\n")
    with pytest.raises(ScenarioError, match="not UTF-8 text"):
        load_scenario(bad)
    with pytest.raises(ScenarioError, match="no scenario file or bundled scenario named 'iris_snyc'.*did you mean 'iris_sync'"):
        load_scenario("iris_snyc")


def test_replace_rejects_unknown_sections_and_keys():
    """replace() validates like the loader: unknown sections and keys are errors."""
    with pytest.raises(ScenarioError, match="unknown section 'clster'"):
        Scenario().replace(**{"clster.workers": 2})
    with pytest.raises(ScenarioError, match="unknown key 'cluster.nodes'"):
        Scenario().replace(**{"cluster.nodes": 2})


def test_bundled_scenarios_load():
    """Every bundled scenario loads, and its name matches its file name."""
    names = bundled_scenarios()
    assert "iris_sync" in names
    for name in names:
        assert load_scenario(name).name == name


@pytest.mark.parametrize("toml, message", [
    ("[data]\ndataset = 'synthetic'\nn_classes = 5\nn_features = 2",
     r"data.n_classes must be <= 2\*\*data.n_features=4 \(each class sits at its own corner of a cube\); got 5"),
    ("[data]\ndataset = 'synthetic'\nn_classes = 10\nn_samples = 5",
     r"data.n_classes must be <= data.n_samples=5; got 10"),
    ("[cluster]\nspeed = inf\n[data]\npartition = 'proportional'",
     r"data.partition='proportional' needs finite cluster.speed"),
])
def test_data_that_cannot_be_made_is_a_scenario_error(toml, message):
    """Data the generator or partitioner would refuse is refused up front, naming the key."""
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(toml)


def test_unset_options_round_trip_through_toml():
    """An option set to None is left out of the TOML (which has no null) and reads back."""
    s = Scenario().replace(**{"strategy.wait_for": None})
    assert parse_scenario(s.to_toml()) == Scenario()


def test_the_readme_scenario_is_valid_and_runs():
    """The TOML reference in the README parses, and runs to its end (docs stay true)."""
    from pathlib import Path

    from simdml import run
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    s = parse_scenario(block).replace(**{"stop.rounds": 20})
    r = run(s)
    assert r.summary["stop_reason"] == "20 updates done (stop.rounds)"


def test_speed_is_an_alias_resolved_once():
    """data.partition = 'speed' is read as 'proportional': nothing downstream sees the alias."""
    s = Scenario().replace(**{"data.partition": "speed"})
    assert s.data.partition == "proportional"
    with pytest.raises(ScenarioError, match=r"data.partition='proportional' needs finite cluster.speed"):
        Scenario().replace(**{"data.partition": "speed", "cluster.speed": math.inf})


def test_cross_section_rules_report_the_first_broken_one():
    """RULES run in a fixed order: a scenario breaking two rules reports the earlier one."""
    from simdml._rules import RULES
    names = [r.__name__ for r in RULES]
    assert names.index("scheduling_needs_plain_sync") < names.index("strategy_rules")
    with pytest.raises(ScenarioError, match=r"scheduling.policy='round_robin' .* with wait_for"):
        Scenario().replace(**{"scheduling.policy": "round_robin", "strategy.wait_for": 9})
    with pytest.raises(ScenarioError, match=r"strategy.wait_for must be at most cluster.workers=4"):
        Scenario().replace(**{"strategy.wait_for": 9})


def test_a_strategy_declares_its_own_rules():
    """sync's k-of-n rule and local_fusion's averaging rule are registered with them."""
    from simdml.strategies import STRATEGIES
    from simdml.strategies import local_fusion, sync
    assert sync.wait_for_at_most_workers in STRATEGIES["sync"].rules
    assert STRATEGIES["sync"].checkpoints and not STRATEGIES["async"].checkpoints
    assert local_fusion.average_needs_parameter_vectors in STRATEGIES["local_fusion"].model_rules
    with pytest.raises(ScenarioError, match=r"strategy.rule='average' averages parameter vectors"):
        Scenario().replace(**{"strategy.kind": "local_fusion", "strategy.rule": "average",
                              "model.kind": "tree"})
