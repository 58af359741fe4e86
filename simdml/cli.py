"""The ``simdml`` command: run, validate and list scenarios, and a demo.

Exit codes: 0 success, 2 bad input (a one-line error naming the key), 1 internal error.
Set ``SIMDML_DEBUG=1`` to see the traceback of an internal error.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["main", "format_summary"]

DEMO_SCENARIO = "iris_sync"
DEMO_FIGURE = Path("figures") / "demo.png"
DEMO_TIMELINE_ROUNDS = 8


def _number(value, fmt: str) -> str:
    """A number as ``fmt``, or n/a when there is none (no model was ever evaluated)."""
    return "n/a" if value is None or value != value else fmt.format(value)


def format_summary(result) -> str:
    """A short, aligned text table of a run's summary and per-node time budget."""
    s = result.summary
    rows = [
        ("scenario", f"{result.scenario.name} (seed {result.scenario.seed})"),
        ("strategy", f"{result.scenario.strategy.kind}, {result.scenario.cluster.workers} workers"),
        ("simulated time", f"{s['sim_time']:.4g} s"),
        ("updates", f"{s['updates']} ({s['updates_per_s']:.4g} per simulated s)"),
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
    if s.get("target_accuracy") is not None:
        ttt = s["time_to_target"]
        rows.append((f"time to {s['score_name']} {s['target_accuracy']:g}",
                     "not reached" if ttt is None else f"{ttt:.4g} s"))
    rows.append(("stopped because", s["stop_reason"]))
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    lines += ["", f"{'node':<10} {'compute s':>10} {'send s':>8} {'recv s':>8} {'wait s':>8} "
                  f"{'down s':>8} {'util %':>7}"]
    for name, t in result.nodes.items():
        lines.append(f"{name:<10} {t['compute']:>10.4g} {t['send']:>8.3g} {t['recv']:>8.3g} "
                     f"{t['wait']:>8.3g} {t['down']:>8.3g} {100 * t['utilization']:>7.1f}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="simdml", description=(
        "Simulate distributed machine-learning training: real numpy math, simulated time."))
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    r = sub.add_parser("run", help="run a scenario (a TOML file or a bundled name)")
    r.add_argument("scenario", metavar="FILE_OR_NAME")
    r.add_argument("--seed", type=int, help="override the scenario's seed")
    r.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    r.add_argument("--trace", metavar="PATH", help="write the trace: .json (Perfetto) or .csv")
    r.add_argument("--plot", metavar="PATH", help="write a figure (.png, .svg, .pdf)")
    r.add_argument("--out", metavar="PATH", help="write the result as JSON")
    v = sub.add_parser("validate", help="check a scenario file without running it")
    v.add_argument("scenario", metavar="FILE_OR_NAME")
    sub.add_parser("list", help="list the bundled scenarios")
    d = sub.add_parser("demo", help=f"run the bundled '{DEMO_SCENARIO}' scenario, print a "
                                    f"summary and write {DEMO_FIGURE}")
    d.add_argument("--plot", metavar="PATH", default=str(DEMO_FIGURE))
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .scenario import ScenarioError
    try:
        return _COMMANDS[args.command](args)
    except ScenarioError as exc:
        print(f"simdml: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("simdml: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `simdml run ... | head`: the reader left; nothing to say
        sys.stderr.close()
        return 0
    except Exception as exc:  # a bug: say so in one line unless asked for the traceback
        if os.environ.get("SIMDML_DEBUG"):
            raise
        print(f"simdml: internal error: {type(exc).__name__}: {exc} "
              f"(set SIMDML_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


def _run(args) -> int:
    from .experiment import run
    from .scenario import load_scenario
    scenario = load_scenario(args.scenario)
    if args.seed is not None:
        scenario = scenario.replace(seed=args.seed)
    for option in ("trace", "plot"):
        path = getattr(args, option)
        if path:
            _check_output_path(f"--{option}", path)
    result = run(scenario)
    if args.trace:
        result.trace.save(args.trace)
    if args.plot:
        _plot(result, args.plot)
    if args.out:
        result.save(args.out)
    if args.json:
        print(result.to_json())
    else:
        print(format_summary(result))
        for option, what in (("trace", "trace"), ("plot", "figure"), ("out", "result")):
            if getattr(args, option):
                print(f"wrote {what} to {getattr(args, option)}")
    return 0


def _check_output_path(option: str, path: str) -> None:
    from .scenario import ScenarioError
    suffixes = {"--trace": (".json", ".csv"), "--plot": (".png", ".svg", ".pdf")}[option]
    if Path(path).suffix not in suffixes:
        raise ScenarioError(f"{option} path must end in {' or '.join(suffixes)}; got {path!r}")


def _plot(result, path) -> None:
    from . import plots
    plots.save(plots.run_overview(result), path)


def _validate(args) -> int:
    from .experiment import prepare_data
    from .scenario import load_scenario
    s = load_scenario(args.scenario)
    prepare_data(s)  # the data too: e.g. more workers than training samples
    print(f"{args.scenario}: ok ({s.strategy.kind} on {s.cluster.workers} workers, "
          f"{s.data.dataset}, {s.model.kind})")
    return 0


def _list(args) -> int:
    from .scenario import bundled_scenarios, load_scenario
    names = bundled_scenarios()
    width = max(map(len, names))
    for name in names:
        print(f"{name:<{width}}  {load_scenario(name).description}")
    return 0


def _demo(args) -> int:
    from .experiment import run
    _check_output_path("--plot", args.plot)
    from . import plots
    result = run(DEMO_SCENARIO)
    print(format_summary(result))
    rounds = min(DEMO_TIMELINE_ROUNDS, len(result.history) - 1)
    until = result.history[rounds]["time"]  # a close-up: whole rounds stay readable
    plots.save(plots.run_overview(result, timeline_until=until), args.plot)
    print(f"\nwrote figure to {args.plot}: loss and accuracy vs simulated time, and what "
          f"each node did during the first {rounds} rounds")
    return 0


_COMMANDS = {"run": _run, "validate": _validate, "list": _list, "demo": _demo}
