"""The sections of a scenario (``[cluster]``, ``[network]``, ... ``[stop]``): one frozen
dataclass each, validated when built; every error is a ``ScenarioError`` naming the
dotted key, the rule and the value received::

    ScenarioError: cluster.speed[2] must be > 0 (flop/s); got -1.0

The checks themselves are ``simdml._checks``'; this module adds the dotted key path.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import re
from dataclasses import dataclass, field

from . import _checks
from . import data as _data
from .cluster import COMPUTE_TIMES
from .imbalance import RESAMPLERS
from .models import MODELS
from .strategies import STRATEGIES
from .strategies.tasks import SchedulingOptions

__all__ = ["ScenarioError", "ClusterConfig", "NetworkConfig", "CrashConfig", "FaultsConfig",
           "PartitionConfig", "LinkConfig", "DataConfig", "ModelConfig", "StrategyConfig",
           "SchedulingConfig", "ImbalanceConfig", "StopConfig", "build_model"]

_INF = math.inf


SYNTHETIC = ("synthetic", "synthetic_regression")


class ScenarioError(ValueError):
    """A scenario that cannot run; the message names the key, the rule and the value."""


# -- checks: simdml._checks, each ValueError re-raised as a ScenarioError ----------------
def _check(check, key, value, **rule):
    try:
        return check(key, value, **rule)
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None


MAX_INT = 2**31 - 1  # no count in a scenario is larger: beyond it, numpy cannot index
NODE_NBYTES = 16_000  # a node as a run holds it, roughly: ~3 kB built (measured), and its
                     # mailbox, streams and trace totals grow during the run
MAX_CLASS_SEP = 1e100  # far past any separation that matters; its square stays finite


def _number(key, value, **rule):
    return _check(_checks.number, key, value, **rule)


def _integer(key, value, *, low, high=MAX_INT):
    return _check(_checks.integer, key, value, low=low, high=high)


def _choice(key, value, allowed):
    return _check(_checks.choice, key, value, allowed=allowed)


def _flag(key, value):
    return _check(_checks.flag, key, value)


_did_you_mean = _checks.did_you_mean
_shown = _checks.shown


def _list(key, value) -> list:
    """A TOML array (a list of tables or of numbers)."""
    if not isinstance(value, (list, tuple)):
        raise ScenarioError(f"{key} must be a list; got {_shown(value)}")
    return list(value)


def _per_item(key, value, n, n_key, **rule):
    """A number, or a list of ``n`` numbers (``n_key`` names n); returns a tuple of floats."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ScenarioError(f"{key} must be one number or a list of {n_key}={n} numbers; "
                                f"got a list of {len(value)}")
        return tuple(_number(f"{key}[{i}]", v, **rule) for i, v in enumerate(value))
    return (_number(key, value, **rule),) * n


def _table(key, value, cls, required):
    """An entry of a list of tables (``faults.crash``, ``network.links``) as ``cls``."""
    if isinstance(value, dict):
        _known_keys(key, value, cls)
        missing = [r for r in required if r not in value]
        if missing:
            raise ScenarioError(f"{key} needs {' and '.join(map(repr, required))}; got {_shown(value)}")
        value = cls(**value)
    if not isinstance(value, cls):
        raise ScenarioError(f"{key} must be a table with {', '.join(required)}; got {_shown(value)}")
    return value


def _node_ref(key, node):
    if node != "server" and (isinstance(node, bool) or not isinstance(node, int) or node < 0):
        raise ScenarioError(f"{key} must be 'server' or a worker index >= 0; got {_shown(node)}")


def _section(name: str):
    """Decorate a section's dataclass so that building it from Python is building it from
    TOML: an unknown keyword is the ScenarioError naming ``name.key`` (not a TypeError),
    and every value is stored in plain Python types (``_checks.plain``: a numpy scalar
    is the number it stands for), so that ``to_dict`` and ``to_toml`` stay plain."""
    def decorate(cls):
        init = cls.__init__

        @functools.wraps(init)
        def __init__(self, *args, **kwargs):
            if args:
                raise ScenarioError(f"[{name}] takes keyword arguments (one per key); "
                                    f"got {len(args)} positional")
            _known_keys(name, kwargs, cls)
            try:
                kwargs = {key: _plain(value) for key, value in kwargs.items()}
            except RecursionError:
                raise ScenarioError(f"[{name}] holds a value nested too deep to read") from None
            init(self, **kwargs)
        cls.__init__ = __init__
        return cls
    return decorate


def _plain(value):
    """``_checks.plain`` through lists, tuples and tables."""
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return _checks.plain(value)


def _store(obj, name, value):
    object.__setattr__(obj, name, value)  # normalizing a frozen dataclass in __post_init__


# -- the sections -------------------------------------------------------------------
@_section("cluster")
@dataclass(frozen=True, kw_only=True)
class ClusterConfig:
    workers: int = 4                       # number of worker nodes (the server is extra)
    speed: float | tuple = 1e9             # flop/s of each worker; a number or one per worker
    server_speed: float = 1e10             # flop/s; a server is typically a bigger machine
    compute_time: str = "deterministic"    # distribution of a job's duration around flops/speed
    jitter: float = 0.0                    # dispersion of compute_time (see README), >= 0
    slowdown: float | tuple = 1.0          # duration multiplier per worker; > 1 is a straggler

    def __post_init__(self):
        _integer("cluster.workers", self.workers, low=1)
        # before the per-worker tuples below: 2**31 - 1 workers would be a 16 GB tuple
        _check(_checks.fits_in_memory, f"cluster.workers={self.workers}",
               f"{self.workers + 1:.2g} nodes of {NODE_NBYTES // 1000} kB",
               nbytes=(self.workers + 1) * NODE_NBYTES)
        _store(self, "speed", _per_item("cluster.speed", self.speed, self.workers, "cluster.workers",
                                        low=0, strict_low=True, finite=False, unit="flop/s"))
        _number("cluster.server_speed", self.server_speed, low=0, strict_low=True,
                finite=False, unit="flop/s")
        _choice("cluster.compute_time", self.compute_time, tuple(COMPUTE_TIMES))
        _number("cluster.jitter", self.jitter, low=0)
        _store(self, "slowdown", _per_item("cluster.slowdown", self.slowdown, self.workers, "cluster.workers",
                                           low=0, strict_low=True))


@_section("network.links")
@dataclass(frozen=True, kw_only=True)
class LinkConfig:
    a: int | str                # a worker index, or "server"
    b: int | str                # the other end; the link works both ways
    latency: float | None = None    # s; None: network.latency
    bandwidth: float | None = None  # bytes/s; None: network.bandwidth


@_section("network")
@dataclass(frozen=True, kw_only=True)
class NetworkConfig:
    latency: float = 1e-4       # s per message (alpha); 100 µs is a datacenter LAN
    bandwidth: float = 1.25e9   # bytes/s (1/beta); 1.25e9 is 10 Gbit/s; inf allowed
    loss: float = 0.0           # probability that a message is lost, in [0, 1)
    links: tuple = ()           # LinkConfig entries: a slow or fast cable between two nodes

    def __post_init__(self):
        _number("network.latency", self.latency, low=0, unit="s")
        _number("network.bandwidth", self.bandwidth, low=0, strict_low=True, finite=False,
                unit="bytes/s")
        _number("network.loss", self.loss, low=0)
        if self.loss >= 1:
            raise ScenarioError(f"network.loss must be < 1 (a probability); got {self.loss!r}")
        links = []
        for i, link in enumerate(_list("network.links", self.links)):
            key = f"network.links[{i}]"
            link = _table(key, link, LinkConfig, required=("a", "b"))
            for end in ("a", "b"):
                _node_ref(f"{key}.{end}", getattr(link, end))
            if link.latency is not None:
                _number(f"{key}.latency", link.latency, low=0, unit="s")
            if link.bandwidth is not None:
                _number(f"{key}.bandwidth", link.bandwidth, low=0, strict_low=True,
                        finite=False, unit="bytes/s")
            links.append(link)
        _store(self, "links", tuple(links))


@_section("faults.crash")
@dataclass(frozen=True, kw_only=True)
class CrashConfig:
    node: int | str | tuple     # a worker index, "server", or a list of them (a rack: at once)
    at: float                   # s of simulated time
    recover_after: float | None = None  # s; None: the node never comes back


@_section("faults.partition")
@dataclass(frozen=True, kw_only=True)
class PartitionConfig:
    nodes: tuple                # worker indices and/or "server": one side of the cut
    at: float                   # s of simulated time
    heal_after: float | None = None  # s; None: the partition never heals


@_section("faults")
@dataclass(frozen=True, kw_only=True)
class FaultsConfig:
    crash: tuple = ()           # CrashConfig entries
    partition: tuple = ()       # PartitionConfig entries: network cuts (messages across lost)
    mtbf: float = _INF          # s, mean time between failures of each worker; inf: none
    mttr: float = 0.0           # s, mean time to repair
    server_mtbf: float = _INF   # s, mean time between failures of the server; inf: none
    checkpoint_every: int = 0   # the server checkpoints every this many updates; 0: never
    checkpoint_time: float = 0.0  # s to write one checkpoint (the delta of Young and Daly)

    def __post_init__(self):
        crashes = []
        for i, c in enumerate(_list("faults.crash", self.crash)):
            key = f"faults.crash[{i}]"
            c = _table(key, c, CrashConfig, required=("node", "at"))
            if isinstance(c.node, (list, tuple)):
                if not c.node:
                    raise ScenarioError(f"{key}.node must be a node or a non-empty list of "
                                        f"nodes; got []")
                for j, n in enumerate(c.node):
                    _node_ref(f"{key}.node[{j}]", n)
                c = dataclasses.replace(c, node=tuple(c.node))
            else:
                _node_ref(f"{key}.node", c.node)
            _number(f"{key}.at", c.at, low=0, unit="s")
            if c.recover_after is not None:
                _number(f"{key}.recover_after", c.recover_after, low=0, unit="s")
            crashes.append(c)
        _store(self, "crash", tuple(crashes))
        cuts = []
        for i, c in enumerate(_list("faults.partition", self.partition)):
            key = f"faults.partition[{i}]"
            c = _table(key, c, PartitionConfig, required=("nodes", "at"))
            nodes = _list(f"{key}.nodes", c.nodes)
            if not nodes:
                raise ScenarioError(f"{key}.nodes must list at least one node; got []")
            for j, n in enumerate(nodes):
                _node_ref(f"{key}.nodes[{j}]", n)
            _number(f"{key}.at", c.at, low=0, unit="s")
            if c.heal_after is not None:
                _number(f"{key}.heal_after", c.heal_after, low=0, unit="s")
            cuts.append(dataclasses.replace(c, nodes=tuple(nodes)))
        _store(self, "partition", tuple(cuts))
        _number("faults.mtbf", self.mtbf, low=0, strict_low=True, finite=False, unit="s")
        _number("faults.mttr", self.mttr, low=0, unit="s")
        _number("faults.server_mtbf", self.server_mtbf, low=0, strict_low=True, finite=False,
                unit="s")
        _integer("faults.checkpoint_every", self.checkpoint_every, low=0)
        _number("faults.checkpoint_time", self.checkpoint_time, low=0, unit="s")


# each partitioner's name, followed by its aliases ("proportional", "speed")
_PARTITION_NAMES = tuple(n for p in _data.PARTITIONERS for n in (p, *(
    alias for alias, target in _data.PARTITION_ALIASES.items() if target == p)))


@_section("data")
@dataclass(frozen=True, kw_only=True)
class DataConfig:
    dataset: str = "iris"       # bundled, "synthetic", "synthetic_regression", or a file:
                                # "csv:PATH", "npz:PATH" (from the scenario's folder)
    label: str | None = None    # a data file's label column (npz: array; features: X)
    test_size: float = 0.25     # fraction held out (stratified by class) for the score
    partition: str = "iid"      # how training rows are spread over workers
    alpha: float = 0.5          # label_skew: Dirichlet concentration (small: non-iid)
    exponent: float = 1.0       # size_skew: shard sizes ~ rank ** -exponent (0: equal)
    classes_per_part: int = 2   # by_label: classes each shard holds
    rebalance: bool = False     # move rows between workers (as messages, before training)
                                # until every shard holds each class's fair share
    standardize: bool = True    # z-score features with training statistics
    # synthetic data only (data.make_classification, data.make_regression):
    n_samples: int = 300
    n_features: int = 4
    n_classes: int = 2
    weights: tuple | None = None  # class proportions; None: balanced
    class_sep: float = 1.0
    label_noise: float = 0.0      # classification: fraction of labels drawn at random
    noise: float = 0.1            # regression: standard deviation of the target noise

    def __post_init__(self):
        try:  # a data file is read now (cached): a bad file is a bad scenario, found at once
            _store(self, "dataset", _data.check_dataset(self.dataset, self.label,
                                                        _data.DATASETS + SYNTHETIC, prefix="data."))
        except ValueError as exc:
            raise ScenarioError(str(exc)) from None
        _number("data.test_size", self.test_size, low=0, strict_low=True)
        if self.test_size >= 1:
            raise ScenarioError(f"data.test_size must be < 1; got {self.test_size!r}")
        _choice("data.partition", self.partition, _PARTITION_NAMES)
        # an alias is resolved here, once: nothing downstream ever sees it
        _store(self, "partition", _data.PARTITION_ALIASES.get(self.partition, self.partition))
        _number("data.alpha", self.alpha, low=0, strict_low=True)
        _number("data.exponent", self.exponent, low=0)
        _integer("data.classes_per_part", self.classes_per_part, low=1)
        _flag("data.rebalance", self.rebalance)
        _flag("data.standardize", self.standardize)
        _integer("data.n_samples", self.n_samples, low=4)
        _integer("data.n_features", self.n_features, low=1)
        _integer("data.n_classes", self.n_classes, low=2)
        if self.weights is not None:
            _store(self, "weights", _per_item("data.weights", self.weights, self.n_classes, "data.n_classes",
                                              low=0, strict_low=True))
            if not math.isfinite(sum(self.weights)):  # they are normalized by their sum
                raise ScenarioError(f"data.weights must have a finite sum; got "
                                    f"{_shown(list(self.weights))}")
        # the blobs' spread is squared by the standardization: 1e160 makes its scale inf
        _number("data.class_sep", self.class_sep, low=0, high=MAX_CLASS_SEP)
        _number("data.label_noise", self.label_noise, low=0)
        if self.label_noise >= 1:
            raise ScenarioError(f"data.label_noise must be < 1 (a fraction); got {self.label_noise!r}")
        _number("data.noise", self.noise, low=0)
        if self.dataset == "synthetic":
            if self.n_classes > self.n_samples:
                raise ScenarioError(f"data.n_classes must be <= data.n_samples={self.n_samples}; "
                                    f"got {self.n_classes}")
            if self.n_classes > 2 ** self.n_features:
                raise ScenarioError(
                    f"data.n_classes must be <= 2**data.n_features={2 ** self.n_features} (each "
                    f"class sits at its own corner of a cube); got {self.n_classes}")

    @property
    def is_regression(self) -> bool:
        return self.dataset == "synthetic_regression"


@_section("model")
@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    kind: str = "logistic"      # a registered learner (simdml.models.MODELS)
    options: dict = field(default_factory=dict)  # the learner's own parameters

    def __post_init__(self):
        _choice("model.kind", self.kind, tuple(MODELS))
        build_model(self)

    def to_dict(self):
        return {"kind": self.kind, **{k: v for k, v in self.options.items() if v is not None}}


def build_model(config: ModelConfig):
    """The learner a model section describes, its parameters checked."""
    cls = MODELS[config.kind]
    allowed = [p for p in _init_params(cls)]
    for key in config.options:
        if key not in allowed:
            raise ScenarioError(f"unknown key model.{_checks.cut(str(key))} for "
                                f"model.kind={config.kind!r}; "
                                f"allowed: kind, {', '.join(allowed)}{_did_you_mean(key, allowed)}")
    model = cls(**config.options)
    try:
        model.validate_params()
    except ValueError as exc:
        name = re.search(r"'(\w+)' parameter", str(exc))
        raise ScenarioError(f"model.{name.group(1) if name else config.kind}: {exc}") from None
    return model


def _init_params(cls):
    import inspect
    return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]


@_section("strategy")
@dataclass(frozen=True, kw_only=True)
class StrategyConfig:
    kind: str = "sync"          # a registered strategy (simdml.strategies.STRATEGIES)
    lr: float = 0.5             # step size of the global model's updates
    batch_size: int | None = None  # rows per gradient, drawn per worker; None: whole shard
    options: dict = field(default_factory=dict)  # the strategy's own settings

    COMMON = ("kind", "lr", "batch_size")  # keys every strategy has

    def __post_init__(self):
        _choice("strategy.kind", self.kind, tuple(STRATEGIES))
        _number("strategy.lr", self.lr, low=0, strict_low=True)
        if self.batch_size is not None:
            _integer("strategy.batch_size", self.batch_size, low=1)
        self.build_options()

    def build_options(self):
        """The strategy's options dataclass, checked."""
        cls = STRATEGIES[self.kind].options
        allowed = [f.name for f in dataclasses.fields(cls)]
        for key in self.options:
            if key not in allowed:
                raise ScenarioError(
                    f"unknown key strategy.{_checks.cut(str(key))} for "
                    f"strategy.kind={self.kind!r}; allowed: "
                    f"{', '.join(self.COMMON + tuple(allowed))}{_did_you_mean(key, allowed)}")
        return _build_options(cls, "strategy", self.options)

    def to_dict(self):
        common = {"kind": self.kind, "lr": self.lr}
        if self.batch_size is not None:
            common["batch_size"] = self.batch_size
        return {**common, **{k: v for k, v in self.options.items() if v is not None}}


def _build_options(cls, section: str, options: dict):
    """``cls(**options)``; the error of its own checks, prefixed with the section."""
    try:
        return cls(**options)
    except (ValueError, TypeError) as exc:  # the options' checks name the (local) key
        raise ScenarioError(f"{section}.{exc}") from None


@_section("stop")
@dataclass(frozen=True, kw_only=True)
class StopConfig:
    rounds: int = 100           # global model updates (rounds for synchronous strategies)
    time: float = _INF          # s of simulated time
    target_accuracy: float | None = None  # stop once test accuracy reaches it
    wall_time: float = 900.0    # s of real time: a guard against a runaway run (the only
                                # place wall-clock time may end a run; it says so)

    def __post_init__(self):
        _integer("stop.rounds", self.rounds, low=1)
        _number("stop.wall_time", self.wall_time, low=0, strict_low=True, finite=False, unit="s")
        _number("stop.time", self.time, low=0, strict_low=True, finite=False, unit="s")
        if self.target_accuracy is not None:
            _number("stop.target_accuracy", self.target_accuracy, low=0, high=1)


@_section("imbalance")
@dataclass(frozen=True, kw_only=True)
class ImbalanceConfig:
    method: str | None = None   # None | oversample | undersample | smote (simdml.imbalance)
    where: str = "global"       # "global": the whole training set; "local": each shard
    k_neighbors: int = 5        # smote: neighbours to interpolate with

    def __post_init__(self):
        if self.method is not None:
            _choice("imbalance.method", self.method, tuple(RESAMPLERS))
        _choice("imbalance.where", self.where, ("global", "local"))
        _integer("imbalance.k_neighbors", self.k_neighbors, low=1)


@_section("scheduling")
@dataclass(frozen=True, kw_only=True)
class SchedulingConfig:
    policy: str | None = None   # None: workers own their shards; a name: task-based rounds
    blocks: int | None = None   # data blocks per round (>= workers); None: 4 per worker
    prefetch: int = 2           # blocks a worker holds at once (one computing, one queued)
    detect_after: float = 0.0   # s from a worker's crash to the scheduler's knowing it
    block_timeout: float = _INF  # s: re-send a block whose result is this late (lost messages)

    def __post_init__(self):
        self.build()  # the options class checks every setting, once

    def build(self) -> SchedulingOptions:
        """The options of task-based rounds, checked; without a policy, the default
        policy stands in, so that the other settings are checked all the same."""
        options = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if self.policy is None:
            options.pop("policy")
        return _build_options(SchedulingOptions, "scheduling", options)


_SECTIONS = {"cluster": ClusterConfig, "network": NetworkConfig, "faults": FaultsConfig,
             "data": DataConfig, "imbalance": ImbalanceConfig, "model": ModelConfig,
             "strategy": StrategyConfig, "scheduling": SchedulingConfig, "stop": StopConfig}


def _known_keys(section: str, table: dict, cls) -> None:
    allowed = [f.name for f in dataclasses.fields(cls)]
    for key in table:
        if key not in allowed:
            where = f"[{section}]" if section else "the top level"
            dotted = f"{section}.{key}" if section else key
            raise ScenarioError(f"unknown key {_checks.cut(repr(dotted))}; allowed in {where}: "
                                f"{', '.join(allowed)}{_did_you_mean(key, allowed)}")
