"""The sections of a scenario (``[cluster]``, ``[network]``, ... ``[stop]``): one frozen
dataclass each, validated when built; every error is a ``ScenarioError`` naming the
dotted key, the rule and the value received::

    ScenarioError: cluster.speed[2] must be > 0 (flop/s); got -1.0

This module holds the sections of the data and of training and is where every section
is found (``_SECTIONS``, in the order a scenario writes them); the sections of the machine
(``[cluster]``, ``[network]``, ``[faults]``) are in ``simdml.cluster_sections``, and
what every section is made of (``ScenarioError``, the checks with their dotted keys, the
``_section`` decorator) in ``simdml._section``. Every name stays importable from here.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field

from . import _checks
from . import data as _data
from ._section import (MAX_INT, ScenarioError, _build_options, _choice, _did_you_mean,  # noqa: F401
                       _flag, _integer, _known_keys, _number, _per_item, _section, _shown,
                       _store)
from .cluster_sections import (ClusterConfig, CrashConfig, FaultsConfig, LinkConfig,
                               NetworkConfig, PartitionConfig)
from .aggregation import RULES as AGGREGATION_RULES
from .clients import AVAILABILITY, SAMPLING
from .compression import COMPRESSORS
from .imbalance import RESAMPLERS
from .models import MODELS
from .optim import Optimizer, Schedule
from .strategies import STRATEGIES
from .strategies.tasks import SchedulingOptions

__all__ = ["ScenarioError", "ClusterConfig", "NetworkConfig", "CrashConfig", "FaultsConfig",
           "PartitionConfig", "LinkConfig", "DataConfig", "ModelConfig", "StrategyConfig",
           "OptimizerConfig", "SchedulingConfig", "ImbalanceConfig", "CompressionConfig", "ClientsConfig", "AggregationConfig", "PrivacyConfig", "StopConfig",
           "build_model"]

_INF = math.inf
SYNTHETIC = ("synthetic", "synthetic_regression")
MAX_CLASS_SEP = 1e100  # far past any separation that matters; its square stays finite


# -- the sections of the data and of training --------------------------------------

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
            # n_classes <= 2**n_features, without the power (2**(2**31 - 1) takes 7 s)
            if (self.n_classes - 1).bit_length() > self.n_features:
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
            # a key of other learners (model.dtype on logistic) says whose it is
            owners = [kind for kind, other in MODELS.items() if key in _init_params(other)]
            whose = (f" (got {_shown(config.options[key])}); it is a setting of model.kind = "
                     f"{' or '.join(map(repr, owners))}" if owners else "")
            raise ScenarioError(f"unknown key model.{_checks.cut(str(key))} for "
                                f"model.kind={config.kind!r}{whose}; "
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


# the keys of [optimizer] that only some kinds, or only some schedules, have (None: the
# default in the comment); kind, weight_decay, schedule and warmup are every optimizer's
OPTIMIZER_KEYS = {"sgd": (), "momentum": ("momentum",), "nesterov": ("momentum",),
                  "adam": ("beta1", "beta2", "eps"), "adamw": ("beta1", "beta2", "eps")}
SCHEDULE_KEYS = {"constant": (), "step": ("step_size", "gamma"), "cosine": ("horizon", "min_lr")}
ADAMW_WEIGHT_DECAY = 0.01  # PyTorch's default for AdamW (0 for the others)


@_section("optimizer")
@dataclass(frozen=True, kw_only=True)
class OptimizerConfig:
    """How the gradient strategies step the model (``simdml.optim``), at the learning
    rate ``strategy.lr``. A key of another kind or schedule is an error, not ignored."""

    kind: str = "sgd"           # sgd | momentum | nesterov | adam | adamw
    weight_decay: float | None = None  # L2 added to the gradient (adamw: decoupled);
                                # None: 0, and 0.01 for adamw (PyTorch's defaults)
    momentum: float | None = None  # momentum, nesterov: in [0, 1); None: 0.9
    beta1: float | None = None  # adam, adamw: first moment's decay; None: 0.9
    beta2: float | None = None  # adam, adamw: second moment's decay; None: 0.999
    eps: float | None = None    # adam, adamw: > 0; None: 1e-8
    schedule: str = "constant"  # constant | step | cosine (after the warm-up)
    warmup: int = 0             # steps of linear warm-up up to strategy.lr; 0: none
    step_size: int | None = None  # step: steps between decays; None: 30
    gamma: float | None = None  # step: factor of each decay, in (0, 1]; None: 0.1
    horizon: int | None = None  # cosine: the step it reaches min_lr; None: stop.rounds
                                # (local_sgd: stop.rounds x local_steps, its local steps)
    min_lr: float | None = None  # cosine: the rate it decays to; None: 0

    COMMON = ("kind", "weight_decay", "schedule", "warmup")  # keys every optimizer has
    ELSEWHERE = {"lr": "the learning rate is strategy.lr, where the schedule starts from",
                 "learning_rate": "the learning rate is strategy.lr"}

    def __post_init__(self):
        _choice("optimizer.kind", self.kind, tuple(OPTIMIZER_KEYS))
        _choice("optimizer.schedule", self.schedule, tuple(SCHEDULE_KEYS))
        self._no_foreign_keys("kind", OPTIMIZER_KEYS)
        self._no_foreign_keys("schedule", SCHEDULE_KEYS)
        _integer("optimizer.warmup", self.warmup, low=0)
        for key in ("step_size", "horizon"):
            if getattr(self, key) is not None:
                _integer(f"optimizer.{key}", getattr(self, key), low=1)
        self.build(lr=1.0, horizon=self.warmup + 1)  # the optimizer checks every value

    def _no_foreign_keys(self, by: str, keys: dict) -> None:
        """A key that belongs to another kind (or schedule) than this one's is an error."""
        for key in sorted({k for ks in keys.values() for k in ks} - set(keys[getattr(self, by)])):
            if getattr(self, key) is not None:
                owners = " or ".join(repr(name) for name, ks in keys.items() if key in ks)
                allowed = (self.COMMON + OPTIMIZER_KEYS[self.kind]
                           + SCHEDULE_KEYS[self.schedule])
                raise ScenarioError(
                    f"optimizer.{key} is a setting of optimizer.{by} = {owners}; got "
                    f"optimizer.{by}={getattr(self, by)!r}, whose keys are: {', '.join(allowed)}")

    def build(self, *, lr: float, horizon: int) -> Optimizer:
        """The optimizer this section describes, at learning rate ``lr`` (``strategy.lr``);
        a cosine without its own ``horizon`` ends at ``horizon`` (the run's steps)."""
        settings = {k: getattr(self, k) for k in ("momentum", "beta1", "beta2", "eps")
                    if getattr(self, k) is not None}
        schedule = {k: getattr(self, k) for k in ("step_size", "gamma", "min_lr")
                    if getattr(self, k) is not None}
        if self.schedule == "cosine":
            schedule["horizon"] = horizon if self.horizon is None else self.horizon
        try:
            return Optimizer(kind=self.kind, lr=lr, weight_decay=self.decay, **settings,
                             schedule=Schedule(kind=self.schedule, warmup=self.warmup,
                                               **schedule))
        except ValueError as exc:  # its checks name the key within the section
            raise ScenarioError(f"optimizer.{exc}") from None

    @property
    def decay(self) -> float:
        """The weight decay: ``weight_decay``, or the kind's default."""
        if self.weight_decay is not None:
            return self.weight_decay
        return ADAMW_WEIGHT_DECAY if self.kind == "adamw" else 0.0

    @property
    def is_plain(self) -> bool:
        """Plain gradient descent: sgd at the constant rate, no warm-up, no weight decay."""
        return (self.kind == "sgd" and self.schedule == "constant" and self.warmup == 0
                and self.decay == 0)


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


@_section("compression")
@dataclass(frozen=True, kw_only=True)
class CompressionConfig:
    kind: str = "none"           # none | topk | randk | qsgd | sign (simdml.compression)
    ratio: float = 0.01          # topk, randk: the fraction of entries sent
    levels: int = 16             # qsgd: quantization levels s
    error_feedback: bool = False  # keep what was not sent, add it to the next gradient

    def __post_init__(self):
        _choice("compression.kind", self.kind, COMPRESSORS)
        _number("compression.ratio", self.ratio, low=0, strict_low=True, high=1)
        _integer("compression.levels", self.levels, low=1, high=65535)
        _flag("compression.error_feedback", self.error_feedback)


@_section("privacy")
@dataclass(frozen=True, kw_only=True)
class PrivacyConfig:
    """Differential privacy (``simdml.privacy``): DP-SGD in sync, DP-FedAvg in fedavg."""
    noise_multiplier: float = 0.0  # sigma: noise N(0, (sigma clip)^2) on the clipped sum
    clip: float = math.inf         # per-example (fedavg: per-client change) L2 norm bound
    sample_rate: float = 1.0       # sync: each example in a step with this probability
    delta: float = 1e-5            # the delta of the epsilon the history reports

    def __post_init__(self):
        _number("privacy.noise_multiplier", self.noise_multiplier, low=0)
        _number("privacy.clip", self.clip, low=0, strict_low=True, finite=False)
        _number("privacy.sample_rate", self.sample_rate, low=0, strict_low=True, high=1)
        _number("privacy.delta", self.delta, low=0, strict_low=True, high=1)
        if self.delta >= 1:
            raise ScenarioError(f"privacy.delta must be < 1; got {self.delta!r}")
        if self.noise_multiplier and self.clip == math.inf:
            raise ScenarioError(f"privacy.noise_multiplier={self.noise_multiplier} scales the "
                                f"noise to privacy.clip, which is inf: set privacy.clip")

    @property
    def is_active(self) -> bool:
        """Whether a run clips, samples or adds noise (the defaults do none of it)."""
        return self != PrivacyConfig()


@_section("aggregation")
@dataclass(frozen=True, kw_only=True)
class AggregationConfig:
    """How a server combines what its workers send (``simdml.aggregation``)."""
    rule: str = "mean"          # mean | median | trimmed_mean | krum | multi_krum
    f: int = 1                  # the attackers a robust rule is to tolerate
    selected: int = 0           # multi_krum: the vectors averaged; 0: n - f

    def __post_init__(self):
        _choice("aggregation.rule", self.rule, AGGREGATION_RULES)
        _integer("aggregation.f", self.f, low=0)
        _integer("aggregation.selected", self.selected, low=0)


@_section("clients")
@dataclass(frozen=True, kw_only=True)
class ClientsConfig:
    """Federated learning's clients (``strategy.kind = "fedavg"``; ``simdml.clients``)."""
    population: int = 0          # clients; 0: each worker of the cluster is one
    per_round: int = 0           # K, the reports a round aggregates; 0: every client
    sampling: str = "uniform"    # uniform | by_size (probability in proportion to rows)
    over_select: float = 0.0     # sample ceil(K (1 + over_select)), keep the first K
    deadline: float = math.inf   # s from a round's start; reports after it are dropped
    retry: float = 1.0           # s the server waits when no client is available
    dropout: float = 0.0         # probability a participant leaves during its round
    unmask_dropout: float = 0.0  # secure aggregation: ... leaves before revealing its shares
    speed: float = 1e9           # population: a client's median speed (flop/s)
    speed_sigma: float = 0.0     # population: lognormal spread of the speeds
    bandwidth: float | None = None  # population: median bandwidth (bytes/s); None: network's
    bandwidth_sigma: float = 0.0  # population: lognormal spread of the bandwidths
    availability: str = "always"  # always | on_off (exponential periods) | diurnal (daily)
    on_time: float = 3600.0      # on_off: mean seconds on; diurnal: seconds on a day
    off_time: float = 3600.0     # on_off: mean seconds off; diurnal: the rest of the day

    def __post_init__(self):
        _integer("clients.population", self.population, low=0)
        _integer("clients.per_round", self.per_round, low=0)
        _choice("clients.sampling", self.sampling, SAMPLING)
        _number("clients.over_select", self.over_select, low=0)
        _number("clients.deadline", self.deadline, low=0, strict_low=True, finite=False)
        _number("clients.retry", self.retry, low=0, strict_low=True)
        _number("clients.dropout", self.dropout, low=0, high=1)
        if self.dropout >= 1:
            raise ScenarioError(f"clients.dropout must be < 1 (a probability that leaves "
                                f"someone to report); got {self.dropout!r}")
        _number("clients.unmask_dropout", self.unmask_dropout, low=0, high=1)
        _number("clients.speed", self.speed, low=0, strict_low=True)
        _number("clients.speed_sigma", self.speed_sigma, low=0, high=5)
        if self.bandwidth is not None:
            _number("clients.bandwidth", self.bandwidth, low=0, strict_low=True)
        _number("clients.bandwidth_sigma", self.bandwidth_sigma, low=0, high=5)
        _choice("clients.availability", self.availability, AVAILABILITY)
        _number("clients.on_time", self.on_time, low=0, strict_low=True)
        _number("clients.off_time", self.off_time, low=0, strict_low=True)
        if self.population and self.per_round > self.population:
            raise ScenarioError(f"clients.per_round={self.per_round} is more than "
                                f"clients.population={self.population}")

    @property
    def is_default(self) -> bool:
        return self == ClientsConfig()


_SECTIONS = {"cluster": ClusterConfig, "network": NetworkConfig, "faults": FaultsConfig,
             "data": DataConfig, "imbalance": ImbalanceConfig, "model": ModelConfig,
             "strategy": StrategyConfig, "optimizer": OptimizerConfig,
             "scheduling": SchedulingConfig, "compression": CompressionConfig,
             "clients": ClientsConfig, "aggregation": AggregationConfig,
             "privacy": PrivacyConfig, "stop": StopConfig}
