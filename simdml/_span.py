"""The span: one period of one activity on one node, the unit of a cluster's record.

It lives in the cluster layer, which makes spans, and :mod:`simdml.trace` hands the same
objects to users; this module imports nothing, so both can use it.
"""
from __future__ import annotations

__all__ = ["Span"]


class Span:
    """One period of one activity on one node.

    Parameters
    ----------
    node : str
        The node's name.
    kind : str
        ``compute``, ``send``, ``recv``, ``wait``, ``down`` or ``checkpoint``; work a
        crash cut short has ``_lost`` appended, work its process abandoned ``_dropped``.
    start, end : float
        When it began and ended (s, simulated).
    nbytes : int
        Bytes on the wire (``send`` and ``recv``), else 0.

    Notes
    -----
    One class for the cluster's records and the trace's spans, so nothing is copied
    between them. It is mutable because the cluster cuts a span short when a crash
    stops the work or its process abandons it; a span whose end has passed never
    changes again. Spans compare equal field by field and unpack as
    ``node, kind, start, end, nbytes = span``.

    Examples
    --------
    >>> span = Span("w0", "send", 1.0, 1.25, 256)
    >>> span.duration
    0.25
    >>> node, kind, start, end, nbytes = span
    """

    # perf: slots, no __dict__: one allocation per span (a list took two), and less
    # memory for the millions a large run records
    __slots__ = ("node", "kind", "start", "end", "nbytes")

    def __init__(self, node: str, kind: str, start: float, end: float, nbytes: int = 0):
        self.node = node
        self.kind = kind
        self.start = start
        self.end = end
        self.nbytes = nbytes

    @property
    def duration(self) -> float:
        """``end - start`` (s)."""
        return self.end - self.start

    def _fields(self) -> tuple:
        return (self.node, self.kind, self.start, self.end, self.nbytes)

    def __iter__(self):
        return iter(self._fields())

    def __eq__(self, other) -> bool:
        if type(other) is not Span:
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # mutable: not a dict key

    def __repr__(self) -> str:
        return (f"Span(node={self.node!r}, kind={self.kind!r}, start={self.start!r}, "
                f"end={self.end!r}, nbytes={self.nbytes!r})")
