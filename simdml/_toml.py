"""A small TOML writer for scenarios (reading is the standard library's ``tomllib``).

Covers what a scenario holds: strings, booleans, integers, floats (``inf``, ``nan``),
lists, and tables, with tables inside lists written inline.
"""
from __future__ import annotations

import json
import math
import re

__all__ = ["dumps", "dumps_value"]

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def dumps(d: dict) -> str:
    """TOML text for a dict of scalars, lists and one level of sub-tables."""
    lines = [f"{_key(k)} = {_value(v)}" for k, v in d.items() if not isinstance(v, dict)]
    for k, v in d.items():
        if isinstance(v, dict):
            lines += ["", f"[{_key(k)}]"]
            lines += [f"{_key(sk)} = {_value(sv)}" for sk, sv in v.items()]
    return "\n".join(lines) + "\n"


def dumps_value(v) -> str:
    """One value as TOML text (``[1, 4]``, ``"text"``, ``1e6``)."""
    return _value(v)


def shown_value(v) -> str:
    """A value as typed on the command line: a string bare, anything else as TOML
    (``[1, 4]``), or as Python prints it when it is no TOML value (a grid from Python)."""
    if isinstance(v, str):
        return v
    try:
        return _value(v)
    except TypeError:
        return str(v)


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else json.dumps(k)


def _float(v: float) -> str:
    """The shortest text that reads back as ``v``: ``repr``, or for a large round number
    the scientific form a person types (``1e6``, not ``1000000.0``)."""
    text = repr(v)
    if abs(v) < 1e5 or "e" in text:
        return text
    for digits in range(17):  # the fewest digits that give v back
        mantissa, _, exponent = f"{v:.{digits}e}".partition("e")
        if float(f"{mantissa}e{exponent}") == v:
            short = f"{mantissa}e{int(exponent)}"
            return short if len(short) < len(text) else text
    return text


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return _float(v)
    if isinstance(v, str):
        return json.dumps(v)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} {v!r} as TOML")
