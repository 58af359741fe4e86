"""What happened, when: spans per node, instants, counters, and their exports.

A *span* is a period a node spent on one kind of activity:

========  ==================================================================
compute   running a job (``node.compute``)
send      its NIC putting a message on the wire
recv      its NIC taking a message off the wire
wait      a process blocked on ``node.recv()`` with nothing in the mailbox
down      crashed, until recovery (or the end of the run)
========  ==================================================================

Work a crash cut short keeps its kind with ``_lost`` appended (``compute_lost``); work
its process abandoned (a round closed without it) becomes ``compute_dropped``.
Exports: a JSON-able dict, CSV of spans, and the Chrome trace format that Perfetto
(https://ui.perfetto.dev) and chrome://tracing open: a process per node, with a track
each for its CPU, its send NIC, its receive NIC and its mailbox waits (``TRACKS``).
"""
from __future__ import annotations

import csv
import io
import json
import math
from operator import attrgetter
from pathlib import Path

from ._span import Span

__all__ = ["Span", "Trace", "KINDS", "TRACKS"]

KINDS = ("compute", "send", "recv", "wait", "down", "checkpoint")

_start_end = attrgetter("start", "end")

#: The tracks of a node in the Chrome trace, one per resource that works on its own.
TRACKS = ("cpu", "send NIC", "recv NIC", "mailbox wait")
_TRACK_OF = {"compute": "cpu", "checkpoint": "cpu", "down": "cpu", "send": "send NIC",
             "recv": "recv NIC", "wait": "mailbox wait"}


def _ns(t: float) -> int:
    """Simulated seconds as whole nanoseconds (rounding is monotonic: order is kept)."""
    return round(t * 1e9)


class Trace:
    """The record of one run. ``end`` is the simulated time the run stopped at.

    ``spans`` is built on first use (sorted by start), so a run that is only summarized
    never pays for turning millions of raw records into spans.
    """

    def __init__(self, nodes: list[str], spans: list[Span] | None = None, instants=None,
                 counters=None, end: float = 0.0, busy=None, *, raw=None):
        self.nodes = nodes
        self.instants: list[tuple[float, str, str]] = instants or []  # (time, node, kind)
        self.counters: dict[str, list[tuple[float, float]]] = counters or {}
        self.end = end
        self.busy: dict[str, dict[str, float]] | None = busy  # s per node and kind; None: spans
        self._spans = spans if spans is not None else (None if raw is not None else [])
        self._raw = raw  # (the cluster's spans, tail spans) until needed

    @property
    def spans(self) -> list[Span]:
        """Every span that began by ``end``, clipped to it, sorted by (start, end).

        They are the cluster's own records (a clipped one is a copy): read them, do not
        change them.
        """
        if self._spans is None:
            records, tail = self._raw
            end = self.end
            spans = [r if r.end <= end else Span(r.node, r.kind, r.start, end, r.nbytes)
                     for r in records if r.start <= end]
            spans += tail
            spans.sort(key=_start_end)
            self._spans, self._raw = spans, None
        return self._spans

    def __repr__(self) -> str:
        return f"<Trace of {len(self.nodes)} nodes until t={self.end:g} s>"

    @classmethod
    def from_cluster(cls, cluster, end: float, counters=None) -> Trace:
        """Collect a cluster's record up to ``end``: spans running past it are clipped,
        nodes still down get a ``down`` span, processes still blocked on ``recv`` a
        ``wait`` span. The per-node totals come from the nodes' running counts, so they
        exist even when the cluster kept no spans (``record_spans=False``)."""
        overrun = cluster.overrun(end)
        busy = {}
        for node in cluster.nodes:
            busy[node.name] = t = dict(node.totals)
            for kind, extra in overrun.get(node.name, {}).items():
                t[kind.partition("_")[0]] -= extra
        tail = [Span(node.name, "down", node.last_crash_time, end)
                for node in cluster.nodes if not node.is_up]
        tail += [Span(name, "wait", since, end) for name, since in cluster.open_waits()
                 if since < end]
        for span in tail:
            busy[span.node][span.kind] += span.duration
        raw = (cluster.spans, tail) if cluster.record_spans else ([], [])
        return cls(nodes=[n.name for n in cluster.nodes], instants=list(cluster.instants),
                   counters=dict(counters or {}), end=end, busy=busy, raw=raw)

    def totals(self) -> dict[str, dict[str, float]]:
        """Per node, seconds spent in each kind of span, and ``idle`` (= end - compute -
        checkpoint - down).

        Communication overlaps computation, so the kinds do not add up to ``end``.
        """
        if self.busy is not None:
            out = {n: dict(t) for n, t in self.busy.items()}
        else:
            out = {n: {k: 0.0 for k in KINDS} for n in self.nodes}
            for s in self.spans:
                out[s.node][s.kind.partition("_")[0]] += s.duration
        for n, t in out.items():
            t["idle"] = max(0.0, self.end - t["compute"] - t.get("checkpoint", 0.0) - t["down"])
            t["utilization"] = t["compute"] / self.end if self.end > 0 else 0.0
        return out

    # -- exports ----------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "end": self.end,
            "nodes": self.nodes,
            "spans": [[s.node, s.kind, s.start, s.end, s.nbytes] for s in self.spans],
            "instants": [list(i) for i in self.instants],
            "counters": {k: [list(p) for p in v] for k, v in self.counters.items()},
        }

    def spans_csv(self) -> str:
        """The spans as CSV text with a header row."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["node", "kind", "start_s", "end_s", "duration_s", "nbytes"])
        for s in self.spans:
            writer.writerow([s.node, s.kind, repr(s.start), repr(s.end), repr(s.duration), s.nbytes])
        return buf.getvalue()

    def chrome(self) -> dict:
        """The Chrome trace-event format (times in µs): a process per node, a thread
        (track) per resource of it.

        A node's send NIC, receive NIC and CPU work at the same time, and a process can
        wait on the mailbox while the NICs move bytes; on one track their slices would
        overlap without nesting, which Perfetto cannot draw. So each node has the tracks
        of :data:`TRACKS` (``cpu`` holds compute, checkpoint and down; the node's instants
        go there too), named ``"<node> <track>"``; pid 0 holds the run's counters.

        Times are whole nanoseconds written in µs (Perfetto's resolution): a slice's
        ``ts`` and ``dur`` are each rounded to the nanosecond by the reader, and a
        ``dur`` of ``end - start`` in seconds, rounded on its own, could reach a
        nanosecond into the next slice; the end's own nanosecond never does.
        """
        events = [{"ph": "M", "name": "process_name", "pid": 0, "args": {"name": "simdml cluster"}}]
        used = {(s.node, _TRACK_OF[s.kind.partition("_")[0]]) for s in self.spans}
        tid = {}
        for i, n in enumerate(self.nodes):
            pid = i + 1
            events.append({"ph": "M", "name": "process_name", "pid": pid, "args": {"name": n}})
            events.append({"ph": "M", "name": "process_sort_index", "pid": pid,
                           "args": {"sort_index": pid}})
            for j, track in enumerate(TRACKS):
                if j and (n, track) not in used:
                    continue  # no empty tracks; the cpu track carries the instants
                tid[n, track] = t = len(TRACKS) * i + j
                events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": t,
                               "args": {"name": f"{n} {track}"}})
                events.append({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": t,
                               "args": {"sort_index": j}})
        pid_of = {n: i + 1 for i, n in enumerate(self.nodes)}
        for s in self.spans:
            kind = s.kind.partition("_")[0]
            start, end = _ns(s.start), _ns(s.end)
            events.append({"ph": "X", "name": s.kind, "cat": kind, "pid": pid_of[s.node],
                           "tid": tid[s.node, _TRACK_OF[kind]], "ts": start / 1e3,
                           "dur": (end - start) / 1e3, "args": {"nbytes": s.nbytes}})
        for t, n, kind in self.instants:
            events.append({"ph": "i", "name": kind, "pid": pid_of[n], "tid": tid[n, "cpu"],
                           "ts": _ns(t) / 1e3, "s": "t"})
        for name, points in self.counters.items():
            for t, v in points:
                if not math.isfinite(v):
                    continue  # a diverged loss: JSON has no inf/nan, and Perfetto cannot plot them
                events.append({"ph": "C", "name": name, "pid": 0, "ts": _ns(t) / 1e3,
                               "args": {name: v}})
        return {"traceEvents": events, "displayTimeUnit": "ms"}

    def save(self, path: str | Path) -> Path:
        """Write the trace: ``.csv`` spans, ``.json`` Chrome trace (opens in Perfetto)."""
        path = Path(path)
        if path.suffix == ".csv":
            text = self.spans_csv()
        elif path.suffix == ".json":
            text = json.dumps(self.chrome())
        else:
            raise ValueError(f"trace path must end in .json (Chrome trace) or .csv (spans); "
                             f"got {str(path)!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        return path
