"""Input checks shared by every layer: one rule, one message, whoever asks.

Each check raises ``ValueError`` naming the key it was given, the rule and the value
received (``wait_for must be an integer >= 1; got 0``), and returns the value in its
plain Python type. The key is local (``wait_for``); the scenario layer adds the dotted
path (``strategy.wait_for``). Stdlib only, and it imports nothing of simdml, so that
the kernel, the data and the learners can all use it.

>>> integer("wait_for", 3, low=1)
3
>>> choice("rule", "vote", ("best", "vote"))
'vote'
"""
from __future__ import annotations

import difflib
import math
import numbers
import os
import stat

__all__ = ["is_integer", "is_real", "number", "finite_number", "integer", "choice", "flag",
           "did_you_mean", "shown", "cut", "MEMORY_FRACTION", "memory_budget", "fits_in_memory", "format_bytes", "read_bounded", "plain", "as_float", "MAX_SHOWN"]

MAX_SHOWN = 80  # characters of a value a message echoes: a 10 MB string is cut, not repeated


def is_integer(value) -> bool:
    """True for an ``int`` (numpy's integers too), False for a ``bool``: True is no count."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value) -> bool:
    """True for a real number (int, float, numpy scalars), False for a ``bool``."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def shown(value) -> str:
    """``repr(value)``, cut to about `MAX_SHOWN` characters (with how long it was).

    >>> shown("x" * 1000)
    "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx... (1,002 characters)"
    """
    try:
        return cut(repr(value))
    except (RecursionError, ValueError):  # nested too deep; an int of too many digits
        return f"<{type(value).__name__}, too large to show>"


def cut(text: str) -> str:
    """`text` if short, else its first characters and how long it was."""
    if len(text) <= MAX_SHOWN:
        return text
    return f"{text[:MAX_SHOWN - 10]}... ({len(text):,} characters)"


def as_float(value) -> float | None:
    """`value` as a float, or None when no float holds it (an int of 400 digits)."""
    try:
        return float(value)
    except OverflowError:
        return None


def plain(value):
    """A numpy scalar (or a ``Fraction``) as the Python number it stands for; other values
    as they are. A scenario stores what it was given in plain types, so that its TOML
    and its dict read the same whoever built it."""
    if type(value) in (bool, int, float, str) or value is None:  # np.float64 is a float
        return value
    if hasattr(value, "dtype") and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()  # np.int64(4) -> 4, np.float32(0.1) -> 0.10000000149011612
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return as_float(value)
    return value


def _unit(unit: str) -> str:
    return f" ({unit})" if unit else ""


def number(name: str, value, *, low: float | None = None, high: float | None = None,
           strict_low: bool = False, finite: bool = True, unit: str = "") -> float:
    """A real number in ``[low, high]`` (``(low, high]`` with `strict_low`), as a float.

    The message names the part of the rule that failed, with the unit:
    ``latency must be >= 0 (s); got -1.0``; ``speed must be a finite number (flop/s); got nan``.

    Parameters
    ----------
    name : str
        The key, as the user wrote it.
    value : object
        Anything; a ``bool`` is not a number.
    low, high : float or None
        Bounds; None: unbounded on that side.
    strict_low : bool, default False
        ``value > low`` rather than ``>=``.
    finite : bool, default True
        False lets ``inf`` through (an infinite bandwidth or time); NaN never passes.
    unit : str
        SI unit shown in the message, e.g. ``"s"``.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Naming `name`, the rule and `value`.
    """
    if not is_real(value):
        raise ValueError(f"{name} must be a number{_unit(unit)}; got {shown(value)}")
    if as_float(value) is None:
        raise ValueError(f"{name} must be a finite number{_unit(unit)}; got {shown(value)}, "
                         f"too large for a float")
    value = float(value)
    if (math.isnan(value) and (finite or low is None)) or (finite and math.isinf(value)):
        raise ValueError(f"{name} must be a finite number{_unit(unit)}; got {value!r}")
    if low is not None and not (value > low if strict_low else value >= low):  # NaN fails
        raise ValueError(f"{name} must be {'>' if strict_low else '>='} {low:g}{_unit(unit)}; "
                         f"got {value!r}")  # a float: short
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high:g}{_unit(unit)}; got {value!r}")
    return value


def finite_number(name: str, value, *, low: float, strict_low: bool = False,
                  unit: str = "") -> float:
    """A finite number ``>= low`` (``> low`` with `strict_low`), as a float.

    The same rule as :func:`number` with ``finite=True``, but every message states the
    whole rule in one phrase (``rho must be a finite number > 0; got 0.0``): for an
    option whose rule reads best whole.
    """
    x = as_float(value) if is_real(value) else None
    if x is None or not math.isfinite(x) or not (x > low if strict_low else x >= low):
        raise ValueError(f"{name} must be a finite number {'>' if strict_low else '>='} "
                         f"{low:g}{_unit(unit)}; got {shown(value if x is None else x)}")
    return float(value)


def integer(name: str, value, *, low: int, high: int | None = None, high_name: str = "") -> int:
    """An integer ``>= low`` (and ``<= high``), as an ``int``; a ``bool`` is not one.

    Parameters
    ----------
    name : str
        The key.
    value : object
    low : int
    high : int or None
        None: no upper bound.
    high_name : str
        What `high` is (``"len(y)"``): the message then states the whole range,
        ``n_parts must be an integer with 1 <= n_parts <= len(y)=10; got 0``; without
        it, ``workers must be at most 2,147,483,647; got ...`` for a value above `high`.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        Naming `name`, the rule and `value`.
    """
    if high_name:
        if not is_integer(value) or not low <= value <= high:
            raise ValueError(f"{name} must be an integer with {low} <= {name} <= "
                             f"{high_name}={high}; got {shown(value)}")
        return int(value)
    if not is_integer(value) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {shown(value)}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be at most {high:,}; got {shown(value)}")
    return int(value)


def choice(name: str, value, allowed):
    """`value` itself if it is one of `allowed`; else the list, and a near miss if any.

    >>> choice("kind", "asink", ("sync", "async"))
    Traceback (most recent call last):
    ...
    ValueError: kind must be one of 'sync', 'async'; got 'asink' (did you mean 'async'?)
    """
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; "
                         f"got {shown(value)}{did_you_mean(value, allowed)}")
    return value


def flag(name: str, value) -> bool:
    """A ``bool``; 0, 1 and strings are not flags (TOML writes ``true``)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false; got {shown(value)}")
    return value


def did_you_mean(value, allowed) -> str:
    """`` (did you mean 'x'?)`` for the closest of `allowed` to `value`, or ``""``."""
    if len(str(value)) > MAX_SHOWN:  # difflib is quadratic: a long value is near nothing
        return ""
    close = difflib.get_close_matches(str(value), list(map(str, allowed)), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


MEMORY_FRACTION = 0.5  # of physical memory, what one run may plan to use: room for the OS,
                       # the other jobs and numpy's temporaries


def memory_budget() -> float:
    """The bytes a run may plan to use: `MEMORY_FRACTION` of this machine's physical
    memory (``os.sysconf``); inf where the system does not say."""
    try:
        return MEMORY_FRACTION * os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not a POSIX system
        return math.inf


def fits_in_memory(name: str, what: str, nbytes: float, *, budget: float | None = None) -> None:
    """Raise unless an estimate of `nbytes` fits in `budget` (default: :func:`memory_budget`).

    Found at validation, not by running out of memory: ``cluster.workers=2147483647 needs
    about 34 TB (2.1e+09 nodes of 16 kB); this machine allows 12 GB``.

    Parameters
    ----------
    name : str
        The key whose value makes the size (and its value: ``"cluster.workers=..."``).
    what : str
        How the estimate was made, shown in the message.
    nbytes : float
        The estimate, bytes.
    budget : float, optional
        Bytes allowed; None: :func:`memory_budget`.
    """
    budget = memory_budget() if budget is None else budget
    if not nbytes <= budget:
        raise ValueError(f"{name} needs about {format_bytes(nbytes)} ({what}); this machine allows "
                         f"{format_bytes(budget)} ({MEMORY_FRACTION:.0%} of its memory)")


def format_bytes(n: float, digits: int = 3) -> str:
    """Bytes as a reader says them, to ``digits`` significant digits (decimal units).

    >>> format_bytes(3.2e9), format_bytes(1100), format_bytes(600), format_bytes(float("inf"))
    ('3.2 GB', '1.1 kB', '600 bytes', 'unlimited')
    >>> format_bytes(2031, 4)
    '2.031 kB'
    """
    if n == math.inf:
        return "unlimited"
    for unit, size in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.{digits}g} {unit}"
    return f"{n:.0f} bytes"


def read_bounded(path, what: str, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``, or a ValueError.

    A FIFO would block ``open`` until a writer comes, and ``/dev/zero`` never ends: only
    a regular file is read, opened without blocking and checked on the opened file (so a
    file swapped after a first look is caught too), and never more than the cap.

    Parameters
    ----------
    path : str or os.PathLike
    what : str
        What the file is, for the messages ("scenario file", "data file").
    max_bytes : int
        The cap, in bytes; the message names it in MiB, and the file's size.

    Raises
    ------
    ValueError
        Not a regular file, larger than the cap, or unreadable (the OS's reason).
    """
    name, cap = str(path), f"{max_bytes / 2**20:g} MiB"
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ValueError(f"cannot read {what} {name!r}: {exc.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):  # checked before fdopen, which refuses a folder
        os.close(fd)
        raise ValueError(f"{what} {name!r} is not a regular file (a directory, a FIFO "
                         f"or a device); give the path of a file")
    with os.fdopen(fd, "rb") as f:
        # one more than the cap: a file that grew since fstat is seen
        data = f.read(max_bytes + 1) if info.st_size <= max_bytes else b""
    if info.st_size > max_bytes or len(data) > max_bytes:
        size = max(info.st_size, len(data))
        raise ValueError(f"{what} {name!r} is larger than {cap} (the limit for a {what}): "
                         f"it holds {size:,} bytes{'' if size == info.st_size else ' or more'}")
    return data
