"""Text tables of a run: its summary and its per-node time budget (and peak memory).

A large cluster's node table is cut as its figures are (``MAX_NODES_SHOWN`` nodes: the
server and the first workers), says what it leaves out, and keeps the totals over every
worker. Pure standard library at import: the command line's start stays fast.
"""
from __future__ import annotations

from ._checks import format_bytes

__all__ = ["format_summary", "node_table", "shown_nodes", "MAX_NODES_SHOWN"]

MAX_NODES_SHOWN = 16  # nodes in a node table and a run's timeline: a screen, a slide


def shown_nodes(names: list[str], max_nodes: int = MAX_NODES_SHOWN) -> tuple[list[str], str]:
    """The first ``max_nodes`` of ``names``, and what is left out as words
    ("15 of 2,000 workers shown"; "" when nothing is).

    >>> shown_nodes(["server", "worker0", "worker1", "worker2"], 3)
    (['server', 'worker0', 'worker1'], '2 of 3 workers shown')
    """
    kept = list(names[:max_nodes])
    if len(kept) == len(names):
        return kept, ""
    n_workers = sum(1 for n in names if n != "server")
    shown = sum(1 for n in kept if n != "server")
    return kept, f"{shown:,} of {n_workers:,} workers shown"


def _number(value, fmt: str) -> str:
    """A number as ``fmt`` (in scientific notation when very large or small), or n/a
    when there is none (no model was ever evaluated)."""
    from .metrics import format_number  # numpy: not for every command's start
    return format_number(value, fmt)


def format_summary(result) -> str:
    """A short, aligned text table of a run's summary and per-node time budget."""
    s = result.summary
    rows = [
        ("scenario", f"{result.scenario.name} (seed {result.scenario.seed})"),
        ("strategy", f"{result.scenario.strategy.kind}, {result.scenario.cluster.workers} workers"),
        ("simulated time", f"{s['sim_time']:.4g} s"),
        ("updates", f"{s['updates']} ({s['updates_per_s']:.4g} per simulated s)"
         if s["sim_time"] > 0 else f"{s['updates']} (no simulated time passed)"),
        ("final loss", _number(s["final_loss"], "{:.4f}")),
        (f"final {s['score_name']}", _number(100 * s["final_score"], "{:.1f} % (test set)")
         if s["score_name"] == "accuracy" else _number(s["final_score"], "{:.4f} (test set)")),
    ]
    if s.get("balanced_accuracy") is not None:
        rows += [("balanced accuracy", _number(100 * s["balanced_accuracy"], "{:.1f} %")),
                 ("macro F1", _number(s["macro_f1"], "{:.3f}"))]
    rows += [
        ("bytes sent", f"{s['bytes_sent']:,} in {s['messages_sent']:,} messages"
                       + (f", {s['messages_lost']} lost" if s["messages_lost"] else "")),
    ]
    if s.get("exposed_comm_per_iteration") is not None:  # ddp: what the backward hid
        rows.append(("communication", f"{s['comm_per_iteration']:.4g} s per iteration in "
                     f"{s['n_buckets']} buckets, {s['exposed_comm_per_iteration']:.4g} s "
                     f"of it exposed"))
    events = [(k, s[k]) for k in ("retries", "incomplete_rounds", "blocks_requeued",
                                  "block_retries", "blocks_moved", "duplicate_results",
                                  "checkpoints", "server_restarts", "updates_lost", "rows_moved")
              if s.get(k)]
    if events:
        rows.append(("events", ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in events)))
    if s.get("target_accuracy") is not None:
        ttt = s["time_to_target"]
        rows.append((f"time to {s['score_name']} {s['target_accuracy']:g}",
                     "not reached" if ttt is None else f"{ttt:.4g} s"))
    rows.append(("stopped because", s["stop_reason"]))
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    return "\n".join(lines + [""] + node_table(result.nodes, memory=result.memory or None))


def node_table(nodes: dict, max_nodes: int = MAX_NODES_SHOWN, *,
               memory: dict | None = None) -> list[str]:
    """Lines of per-node seconds and utilization, and with ``memory`` (``Result.memory``)
    each node's peak memory; past ``max_nodes`` nodes, a line says how many workers are
    left out and a last row sums every worker (utilization: their mean; peak memory:
    their largest)."""
    checkpoints = any(t.get("checkpoint") for t in nodes.values())
    kinds = ["compute", "send", "recv", "wait", "down"] + (["checkpoint"] if checkpoints else [])
    kept, omitted = shown_nodes(list(nodes), max_nodes)
    rows = [(name, nodes[name]) for name in kept]
    notes = []
    if omitted:
        workers = [t for n, t in nodes.items() if n != "server"]
        total = {k: sum(t.get(k, 0.0) for t in workers) for k in kinds}
        total["utilization"] = sum(t["utilization"] for t in workers) / len(workers)
        rows.append((f"all {len(workers):,} workers", total))
        largest = ", peak mem their largest" if memory else ""
        notes = [f"({omitted}; the last row sums all of them, utilization their mean{largest})"]
    if memory:
        peaks = {name: memory[name]["peak"] for name in kept if name in memory}
        if omitted:
            peaks[rows[-1][0]] = max(m["peak"] for n, m in memory.items() if n != "server")
    width = max(10, *(len(name) for name, _ in rows))
    lines = [f"{'node':<{width}} {'compute s':>10} {'send s':>8} {'recv s':>8} {'wait s':>8} "
             f"{'down s':>8}" + (f" {'ckpt s':>8}" if checkpoints else "") + f" {'util %':>7}"
             + (f" {'peak mem':>10}" if memory else "")]
    for name, t in rows:
        lines.append(f"{name:<{width}} {t['compute']:>10.4g} {t['send']:>8.3g} {t['recv']:>8.3g} "
                     f"{t['wait']:>8.3g} {t['down']:>8.3g}"
                     + (f" {t['checkpoint']:>8.3g}" if checkpoints else "")
                     + f" {100 * t['utilization']:>7.1f}"
                     + (f" {format_bytes(peaks[name]):>10}" if memory else ""))
    return lines + notes
