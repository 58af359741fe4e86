"""How a run, a comparison, a sweep and a scenario show themselves: a few lines of text
(``repr``: what ran and the key numbers, exactly as in the summary) and, in a notebook,
HTML (``_repr_html_``: the summary table, the node table, a run's figure inline).

The classes take these functions as their methods (``__repr__ = display.result_text``);
they read the objects through their public attributes only, so this module imports
nothing of the experiment layer, and matplotlib only to draw a run's figure.
"""
from __future__ import annotations

import html

from ._checks import cut, format_bytes
from .metrics import format_number

__all__ = ["result_text", "result_html", "comparison_text", "comparison_html", "sweep_text",
           "sweep_html", "scenario_text", "scenario_html", "SUMMARY_KEYS"]

#: the numbers a run's text repr shows, in this order (those its summary has)
SUMMARY_KEYS = ("sim_time", "updates", "final_loss", "final_accuracy", "final_score",
                "time_to_target", "bytes_sent", "messages_sent", "messages_lost",
                "staleness_mean")
MAX_NODES = 16          # rows of a node table; result.nodes has them all
MAX_ROWS = 12           # rows of a sweep's table in its text repr
FIGURE_DPI = 72         # an HTML repr's figure: sharp enough, and small in a notebook file


def _exact(value) -> str:
    """``repr`` of a summary's value, numpy scalars as the Python numbers they hold."""
    return repr(value.item() if hasattr(value, "item") else value)


def _cell(value) -> str:
    """A table cell for people: floats to 6 significant digits, ints with separators."""
    value = value.item() if hasattr(value, "item") else value  # a numpy scalar
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return html.escape(str(value))
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return format_number(value, "{:.6g}")
    return html.escape(cut(repr(value)))


def _table(header: list[str], rows: list[list], caption: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>"
                   for row in rows)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _what_ran(s) -> str:
    return (f"{s.strategy.kind}, {s.cluster.workers} workers, {s.data.dataset}, "
            f"{s.model.kind}, seed {s.seed}" + ("" if s.math else ", timing only (math = false)"))


# ------------------------------------------------------------------------------ a run


def _key_numbers(result) -> list[str]:
    summary = result.summary
    keys = [k for k in SUMMARY_KEYS if k in summary
            and not (k == "final_score" and summary.get("final_accuracy") is not None)
            and not (k == "final_accuracy" and summary[k] is None)  # a regressor: final_score
            and not (k == "time_to_target" and summary.get("target_accuracy") is None)]
    return [f"{k}={_exact(summary[k])}" for k in keys]


def result_text(result) -> str:
    """A run in a few lines: what ran, why it stopped, its key numbers, where the rest is."""
    numbers = _key_numbers(result)
    lines = [f"Result of {result.scenario.name!r}: {_what_ran(result.scenario)}",
             f"  stop_reason={_exact(result.summary.get('stop_reason'))}"]
    lines += ["  " + "  ".join(numbers[i:i + 3]) for i in range(0, len(numbers), 3)]
    lines.append(f"  .summary ({len(result.summary)} keys), .history ({len(result.history)} "
                 f"evaluations), .nodes ({len(result.trace.nodes)}), .memory, .trace, .model")
    return "\n".join(lines)


def result_html(result) -> str:
    """The summary table, the node table and ``plots.run_overview`` as an inline PNG."""
    from . import plots  # matplotlib only when a notebook asks for the figure
    scalars = [[k, v] for k, v in result.summary.items()
               if v is None or isinstance(v, (str, int, float))]
    nodes = result.nodes
    columns = list(next(iter(nodes.values()), {}))
    shown = list(nodes)[:MAX_NODES]
    note = f" ({len(shown)} of {len(nodes)} shown)" if len(shown) < len(nodes) else ""
    memory = result.memory or {}  # the peak memory column, when the run reported one
    node_rows = [[n] + [nodes[n][c] for c in columns]
                 + ([format_bytes(memory[n]["peak"])] if memory else []) for n in shown]
    fig = plots.run_overview(result)
    image = plots.png_base64(fig, dpi=FIGURE_DPI)
    return (f"<div><p><strong>Result</strong> of <code>{html.escape(result.scenario.name)}"
            f"</code>: {html.escape(_what_ran(result.scenario))}</p>"
            + _table(["summary", "value"], scalars, "result.summary (lists left out)")
            + _table(["node"] + [f"{c} (s)" if c != "utilization" else c for c in columns]
                     + (["peak mem"] if memory else []),
                     node_rows, f"result.nodes{note}")
            + f'<img src="data:image/png;base64,{image}" alt="plots.run_overview(result)" '
              f'style="max-width:100%"></div>')


# ------------------------------------------------------------------- a comparison


def comparison_text(comparison) -> str:
    """The runs' labels, then the table of ``Comparison.format``."""
    labels = ", ".join(map(repr, comparison.results))
    return (f"Comparison of {len(comparison.results)} runs: {labels} (.results: label -> "
            f"Result)\n" + comparison.format())


def comparison_html(comparison) -> str:
    table = comparison.table()
    columns = list(next(iter(table.values()), {}))
    rows = [[label] + [row[c] for c in columns]
            + [comparison.results[label].summary.get("stop_reason")]
            for label, row in table.items()]
    return ("<div><p><strong>Comparison</strong> of "
            f"{len(table)} runs</p>" + _table(["run"] + columns + ["stop_reason"], rows) + "</div>")


# ------------------------------------------------------------------------- a sweep


def _sweep_head(sweep) -> str:
    points = 1
    for values in sweep.grid.values():
        points *= len(values)
    grid = ", ".join(f"{k}={cut(repr(list(v)))}" for k, v in sweep.grid.items())
    where = f"; in {sweep.path}" if sweep.path else ""
    return (f"SweepResult: {len(sweep.records)} runs over {points} grid points, "
            f"{len(sweep.failures)} failed{where}\n  grid: {grid}")


def sweep_text(sweep) -> str:
    """The grid, then the first rows of ``SweepResult.format`` (final accuracy)."""
    lines = sweep.format().splitlines()
    more = len(lines) - 1 - MAX_ROWS
    shown = lines[:1 + MAX_ROWS] + ([f"  ... {more} more rows (.format(), .aggregate())"]
                                    if more > 0 else [])
    return _sweep_head(sweep) + "\n" + "\n".join(shown)


def sweep_html(sweep) -> str:
    rows = sweep.aggregate()
    keys = list(sweep.grid)
    body = [[row[k] for k in keys] + [row["mean"], row["std"], row["n"]] for row in rows]
    head = html.escape(_sweep_head(sweep)).replace("\n", "<br>")
    return (f"<div><p>{head}</p>"
            + _table(keys + ["final_accuracy mean", "sd", "n"], body) + "</div>")


# ---------------------------------------------------------------------- a scenario


def _changed(scenario) -> list[tuple[str, str, object]]:
    """(section, key, value) of every value that differs from a default Scenario's."""
    default = type(scenario)().to_dict()
    out = []
    for section, table in scenario.to_dict().items():
        if not isinstance(table, dict):
            continue
        for key, value in table.items():
            # what ran (the model's and the strategy's kind) shows even when a default
            if (key == "kind" and section in ("model", "strategy")) or \
                    value != default.get(section, {}).get(key):
                out.append((section, key, value))
    return out


def scenario_text(scenario) -> str:
    """The name, the description, and per section the keys that differ from the defaults."""
    lines = [f"Scenario {scenario.name!r}: {_what_ran(scenario)}"]
    if scenario.description:
        lines.append(f"  {scenario.description}")
    sections: dict = {}
    for section, key, value in _changed(scenario):
        sections.setdefault(section, []).append(f"{key}={cut(repr(value))}")
    lines += [f"  [{section}] " + ", ".join(items) for section, items in sections.items()]
    lines.append("  (the other keys are the defaults: .to_toml() shows every key)")
    return "\n".join(lines)


def scenario_html(scenario) -> str:
    rows = [[f"{section}.{key}", value] for section, key, value in _changed(scenario)]
    return (f"<div><p><strong>Scenario</strong> <code>{html.escape(scenario.name)}</code>: "
            f"{html.escape(scenario.description)}</p>"
            + _table(["key (not a default)", "value"], rows)
            + "<details><summary>every key, as TOML</summary><pre>"
            + html.escape(scenario.to_toml()) + "</pre></details></div>")
