"""Scenarios: everything a run depends on, as nested frozen dataclasses, in TOML.

A scenario is data. It is validated when built (each section by ``simdml.sections``,
the rules between sections by ``simdml._rules``), and every error names the dotted key,
the rule and the value received::

    ScenarioError: cluster.speed[2] must be > 0 (flop/s); got -1.0

>>> s = Scenario()
>>> s.replace(**{"cluster.workers": 8}).cluster.workers
8
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from . import _checks, _rules, display
from ._checks import shown
from ._toml import dumps as _dumps_toml
from .data import parse_source
from .sections import (_SECTIONS, ClusterConfig, CrashConfig, DataConfig, FaultsConfig,
                       ImbalanceConfig, LinkConfig, ModelConfig, NetworkConfig,
                       AggregationConfig, ClientsConfig, CompressionConfig, PrivacyConfig, OptimizerConfig, PartitionConfig, SchedulingConfig, ScenarioError,
                       StopConfig,
                       StrategyConfig, _did_you_mean, _flag, _integer, _known_keys,
                       build_model)

__all__ = ["ScenarioError", "Scenario", "ClusterConfig", "NetworkConfig", "CrashConfig",
           "FaultsConfig", "PartitionConfig", "LinkConfig", "DataConfig", "ModelConfig",
           "StrategyConfig", "OptimizerConfig", "SchedulingConfig", "ImbalanceConfig",
           "StopConfig",
           "build_model", "load_scenario", "parse_scenario", "bundled_scenarios"]


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """A complete, validated description of one run."""

    name: str = "scenario"
    description: str = ""
    seed: int = 0               # the one root of every random stream of the run
    eval_every: int = 1         # evaluate the global model every this many updates
    trace_spans: bool = True    # keep every span (timelines); false: per-node totals only,
                                # so memory stays flat in runs with millions of messages
    math: bool = True           # false: timing only -- payloads are shapes (simdml.phantom),
                                # the clock, bytes and memory as with math, no loss or score
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    faults: FaultsConfig = field(default_factory=FaultsConfig)
    data: DataConfig = field(default_factory=DataConfig)
    imbalance: ImbalanceConfig = field(default_factory=ImbalanceConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduling: SchedulingConfig = field(default_factory=SchedulingConfig)
    compression: CompressionConfig = field(default_factory=CompressionConfig)
    clients: ClientsConfig = field(default_factory=ClientsConfig)
    aggregation: AggregationConfig = field(default_factory=AggregationConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    stop: StopConfig = field(default_factory=StopConfig)

    __repr__ = display.scenario_text     # the keys that are not defaults; to_toml() has all
    _repr_html_ = display.scenario_html

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ScenarioError(f"name must be a non-empty string; got {self.name!r}")
        if not isinstance(self.description, str):
            raise ScenarioError(f"description must be a string; got {self.description!r}")
        # spawned seeds are 63-bit; a numpy integer is stored as the int it stands for
        object.__setattr__(self, "seed", _integer("seed", self.seed, low=0, high=2**63 - 1))
        object.__setattr__(self, "eval_every", _integer("eval_every", self.eval_every, low=1))
        _flag("trace_spans", self.trace_spans)
        _flag("math", self.math)
        for section, cls in _SECTIONS.items():
            if not isinstance(getattr(self, section), cls):
                raise ScenarioError(f"[{section}] must be a table; got {getattr(self, section)!r}")
        for rule in _rules.RULES:  # the rules that span sections, in a fixed order
            try:
                rule(self)
            except ValueError as exc:
                raise ScenarioError(str(exc)) from None

    # -- dict / TOML ----------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict) -> Scenario:
        """Build from nested dicts (as TOML parses); unknown keys are errors."""
        if not isinstance(d, dict):
            raise ScenarioError(f"a scenario must be a table; got {d!r}")
        _known_keys("", d, cls)
        kwargs = {k: v for k, v in d.items() if k not in _SECTIONS}
        for section, sub in _SECTIONS.items():
            if section not in d:
                continue
            table = d[section]
            if not isinstance(table, dict):
                raise ScenarioError(f"[{section}] must be a table; got {table!r}")
            if sub in (ModelConfig, StrategyConfig):
                fixed = StrategyConfig.COMMON if sub is StrategyConfig else ("kind",)
                kwargs[section] = sub(**{k: v for k, v in table.items() if k in fixed},
                                      options={k: v for k, v in table.items() if k not in fixed})
            else:
                _known_keys(section, table, sub)
                kwargs[section] = sub(**table)
        try:
            return cls(**kwargs)
        except TypeError as exc:  # a wrong type that slipped past the checks
            raise ScenarioError(f"invalid scenario: {exc}") from None

    def to_dict(self) -> dict:
        """Nested plain dicts; ``None`` values are left out (TOML has no null)."""
        out = {"name": self.name, "description": self.description, "seed": self.seed,
               "eval_every": self.eval_every, "trace_spans": self.trace_spans, "math": self.math}
        for section in _SECTIONS:
            cfg = getattr(self, section)
            if hasattr(cfg, "to_dict"):
                out[section] = cfg.to_dict()
            else:
                out[section] = {f.name: _to_plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)
                                if getattr(cfg, f.name) is not None}
        return out

    def to_toml(self) -> str:
        """The scenario as TOML text, every key written out (defaults included), that
        ``parse_scenario`` reads back to an equal Scenario; what ``simdml show`` prints.

        >>> print(Scenario().to_toml().splitlines()[0])
        name = "scenario"
        """
        return _dumps_toml(self.to_dict())

    def save(self, path: str | Path) -> Path:
        """Write ``to_toml()`` to ``path`` (a file ``load_scenario`` and ``simdml run``
        read back to an equal Scenario); returns the path."""
        path = Path(path)
        path.write_text(self.to_toml())
        return path

    def replace(self, **changes) -> Scenario:
        """A copy with dotted keys changed: ``s.replace(**{"cluster.workers": 16})``."""
        d = self.to_dict()
        for dotted, value in changes.items():
            *sections, key = dotted.split(".")
            table = d
            for s in sections:
                if s not in table or not isinstance(table[s], dict):
                    raise ScenarioError(f"unknown section {s!r} in key {dotted!r}; sections: "
                                        f"{', '.join(_SECTIONS)}")
                table = table[s]
            table[key] = value
        return Scenario.from_dict(d)


def _to_plain(value):
    if isinstance(value, tuple):
        if value and all(v == value[0] for v in value) and not dataclasses.is_dataclass(value[0]):
            return value[0]  # a per-worker list of equal values reads back as one number
        return [_to_plain(v) for v in value]
    if dataclasses.is_dataclass(value):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)
                if getattr(value, f.name) is not None}
    return value


SCENARIO_MAX_BYTES = 2**20  # 1 MiB: the largest bundled scenario is under 2 KiB


def read_bounded(path: str | Path, what: str, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``, or a ScenarioError: the
    checks of :func:`simdml._checks.read_bounded` (a FIFO, a device, a file over the cap,
    an unreadable file), in the scenario's error."""
    try:
        return _checks.read_bounded(path, what, max_bytes)
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None


def load_scenario(source: str | Path) -> Scenario:
    """Read a scenario from a TOML file, or a bundled one by name (see ``simdml list``)."""
    if not isinstance(source, (str, Path)):
        raise ScenarioError(f"a scenario is a TOML path or a bundled name; got {shown(source)}")
    path = Path(source)
    if path.suffix != ".toml" and not path.exists():
        bundled = bundled_scenarios()
        if str(source) not in bundled:
            raise ScenarioError(f"no scenario file or bundled scenario named {str(source)!r}; "
                                f"bundled: {', '.join(bundled)}{_did_you_mean(source, bundled)}")
        return parse_scenario(bundled[str(source)].read_text(encoding="utf-8"), str(source))
    raw = read_bounded(path, "scenario file", SCENARIO_MAX_BYTES)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not UTF-8 text (byte {exc.start}); TOML files are UTF-8") from None
    return parse_scenario(text, str(path), base=path.parent)


def parse_scenario(text: str, where: str = "<string>", *, base: str | Path | None = None) -> Scenario:
    """A scenario from TOML text; a relative data file (``data.dataset = "csv:x.csv"``)
    is found in the folder ``base`` (the scenario file's), or the working directory."""
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{where}: invalid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per level of nesting
        raise ScenarioError(f"{where}: invalid TOML: nested too deep to read") from None
    data = d.get("data")
    source = parse_source(data.get("dataset")) if isinstance(data, dict) else None
    if source is not None and base is not None and source[1]:
        kind, path = source  # an absolute path stays as it is (os.path.join drops base)
        data["dataset"] = f"{kind}:{os.path.join(base, path)}"
    return Scenario.from_dict(d)


def bundled_scenarios() -> dict[str, object]:
    """Name -> resource of each scenario shipped with simdml."""
    root = resources.files("simdml.scenarios")
    return {p.name.removesuffix(".toml"): p for p in sorted(root.iterdir(), key=lambda p: p.name)
            if p.name.endswith(".toml")}
