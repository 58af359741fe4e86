"""What every scenario section is made of: ``ScenarioError``, the checks of
``simdml._checks`` with the dotted key path added (each ``ValueError`` re-raised as a
``ScenarioError``), and the ``_section`` decorator that makes building a section from
Python the same as building it from TOML. The sections themselves are in
``simdml.sections`` and ``simdml.cluster_sections``.
"""
from __future__ import annotations

import dataclasses
import functools

from . import _checks

__all__ = ["ScenarioError"]


class ScenarioError(ValueError):
    """A scenario that cannot run; the message names the key, the rule and the value."""


# -- checks: simdml._checks, each ValueError re-raised as a ScenarioError ----------------
def _check(check, key, value, **rule):
    try:
        return check(key, value, **rule)
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None


MAX_INT = 2**31 - 1  # no count in a scenario is larger: beyond it, numpy cannot index


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


def _build_options(cls, section: str, options: dict):
    """``cls(**options)``; the error of its own checks, prefixed with the section."""
    try:
        return cls(**options)
    except (ValueError, TypeError) as exc:  # the options' checks name the (local) key
        raise ScenarioError(f"{section}.{exc}") from None


def _known_keys(section: str, table: dict, cls) -> None:
    """Every key of ``table`` is a field of ``cls``; else the error lists them (and says
    where a key that lives in another section is: ``cls.ELSEWHERE``)."""
    allowed = [f.name for f in dataclasses.fields(cls)]
    for key in table:
        if key not in allowed:
            where = f"[{section}]" if section else "the top level"
            dotted = f"{section}.{key}" if section else key
            elsewhere = getattr(cls, "ELSEWHERE", {}).get(key)
            hint = f" ({elsewhere})" if elsewhere else _did_you_mean(key, allowed)
            raise ScenarioError(f"unknown key {_checks.cut(repr(dotted))}; allowed in {where}: "
                                f"{', '.join(allowed)}{hint}")
