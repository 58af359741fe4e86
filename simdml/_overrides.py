"""Values typed on the command line: ``--set KEY=VALUE`` and ``--grid KEY=V1,V2,...``.

A value is a TOML value (``2e6``, ``true``, ``[1, 1, 1, 4]``, ``"a string"``,
``{a = "server", b = 3}``); a bare word that is not one (``async``, ``lognormal``) is
a string, as a person means it. A grid's values are separated by the commas outside
brackets, braces and quotes, so a list is one value::

    --grid 'cluster.slowdown=[1,1,1,4],[1,1,1,1]'    # two values, each a list of four

>>> parse_value("--set", "cluster.speed", "2e6")
2000000.0
>>> split_values("--grid", "cluster.slowdown", "[1,4],[1,1]")
['[1,4]', '[1,1]']
"""
from __future__ import annotations

import re
import tomllib

from .scenario import ScenarioError

__all__ = ["parse_value", "split_values", "parse_sets", "parse_grid"]

_OPENS, _CLOSES = "[{", "]}"
_QUOTES = "\"'"
_TOML_POSITION = re.compile(r"\s*\(at line \d+, column \d+\)|\s*\(at end of document\)")


def parse_value(option: str, key: str, text: str):
    """``text`` as a TOML value, or as a string when it is a bare word.

    Raises
    ------
    ScenarioError
        An empty value, or text that tries to be TOML (a bracket, a brace or a quote in
        it) and is not: the message names the option, the key and the value.
    """
    if not text.strip():
        raise ScenarioError(f"{option} {key}: the value is empty; give a TOML value "
                            f"(2e6, true, [1, 2], \"text\") or a bare word")
    try:
        parsed = tomllib.loads(f"x = {text}")
    except tomllib.TOMLDecodeError as exc:
        if any(c in text for c in _OPENS + _CLOSES + _QUOTES) or "\n" in text:
            reason = _TOML_POSITION.sub("", str(exc))
            hint = (f"; values are separated by the commas outside brackets: --grid "
                    f"'{key}=[1,1,1,4],[1,1,1,1]'" if option == "--grid" else "")
            raise ScenarioError(f"{option} {key}: {text!r} is not a TOML value ({reason}); "
                                f"a list is written [1, 2, 3], a string \"text\"{hint}") from None
        return text.strip()  # a bare word: a string
    if set(parsed) != {"x"}:  # "1\ny = 2" would set a second key: not one value
        raise ScenarioError(f"{option} {key}: {text!r} is not one TOML value")
    return parsed["x"]


def split_values(option: str, key: str, text: str) -> list[str]:
    """``text`` cut at the commas outside brackets, braces and quotes.

    Raises
    ------
    ScenarioError
        A bracket closed that was never opened, or one left open, or a quote left open.
    """
    parts, depth, quote, start, i = [], [], None, 0, 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1  # an escaped character inside "...": never the closing quote
            elif c == quote:
                quote = None
        elif c in _QUOTES:
            quote = c
        elif c in _OPENS:
            depth.append(c)
        elif c in _CLOSES:
            if not depth or _OPENS.index(depth[-1]) != _CLOSES.index(c):
                raise ScenarioError(f"{option} {key}: {c!r} at character {i + 1} of "
                                    f"{text!r} closes nothing that is open")
            depth.pop()
        elif c == "," and not depth:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if quote or depth:
        raise ScenarioError(f"{option} {key}: {text!r} leaves "
                            f"{repr(quote) if quote else repr(depth[-1])} open")
    return parts + [text[start:]]


def _key_value(option: str, item: str, form: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip() or not value:
        raise ScenarioError(f"{option} must be {form}; got {item!r}")
    return key.strip(), value


def parse_sets(items: list[str] | None) -> dict:
    """``--set KEY=VALUE`` options as ``{dotted key: value}``; a key set twice is an
    error (which of the two was meant?)."""
    sets = {}
    for item in items or ():
        key, text = _key_value("--set", item, "KEY=VALUE (e.g. cluster.speed=2e6)")
        if key in sets:
            raise ScenarioError(f"--set {key} is given twice; give it once")
        sets[key] = parse_value("--set", key, text)
    return sets


def parse_grid(items: list[str]) -> dict:
    """``--grid KEY=V1,V2,...`` options as ``{dotted key: [values]}``.

    Raises
    ------
    ScenarioError
        An option without ``=``, a key given in two ``--grid`` options, an empty or
        malformed value (named with its key).
    """
    grid = {}
    for item in items:
        key, text = _key_value("--grid", item, "KEY=V1,V2,... (e.g. cluster.workers=2,4,8)")
        if key in grid:
            raise ScenarioError(f"--grid {key} is given twice; give all its values in one "
                                f"--grid {key}=V1,V2,...")
        grid[key] = [parse_value("--grid", key, v) for v in split_values("--grid", key, text)]
    return grid
