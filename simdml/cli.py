"""The ``simdml`` command: run, validate, show, list, compare and sweep scenarios, draw
result files, list and run the lessons, and a demo.

Every command that reads a scenario takes ``--set KEY=VALUE`` (repeatable; a TOML
value, or a bare word as a string) to change it first; ``simdml show`` prints the
result as TOML. Long work shows its progress on stderr when stderr is a terminal
(never in a file or a pipe); ``--quiet`` turns it off.

Exit codes: 0 success, 2 bad input (a one-line error naming the key), 1 internal error.
Set ``SIMDML_DEBUG=1`` to see the traceback of an internal error.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from .tables import format_summary  # numpy-free until a table is made

__all__ = ["main", "format_summary"]

DEMO_SCENARIO = "iris_sync"
DEMO_FIGURE = Path("figures") / "demo.png"
DEMO_TIMELINE_ROUNDS = 8


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="simdml", description=(
        "Simulate distributed machine-learning training: real numpy math, simulated time."))
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    raw = argparse.RawDescriptionHelpFormatter
    r = sub.add_parser("run", help="run a scenario (a TOML file or a bundled name)",
                       epilog="example: %(prog)s iris_sync --plot run.png --out result.json\n"
                              "         %(prog)s iris_sync --set cluster.speed=2e6 "
                              "--set strategy.kind=async",
                       formatter_class=raw)
    r.add_argument("scenario", metavar="FILE_OR_NAME")
    _add_set(r)
    r.add_argument("--seed", type=int, help="override the scenario's seed")
    _add_quiet(r, "the simulated time reached")
    r.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    r.add_argument("--trace", metavar="PATH", help="write the trace: .json (Perfetto) or .csv")
    r.add_argument("--plot", metavar="PATH", help="write a figure (.png, .svg, .pdf)")
    r.add_argument("--out", metavar="PATH", help="write the result as JSON")
    v = sub.add_parser("validate", help="check a scenario file without running it",
                       epilog="example: %(prog)s my_scenario.toml", formatter_class=raw)
    v.add_argument("scenario", metavar="FILE_OR_NAME")
    _add_set(v)
    sh = sub.add_parser("show", help="print a scenario as TOML (to copy and edit)",
                        epilog="example: %(prog)s iris_sync --set cluster.workers=8 > my.toml",
                        formatter_class=raw)
    sh.add_argument("scenario", metavar="FILE_OR_NAME")
    _add_set(sh)
    sub.add_parser("list", help="list the bundled scenarios", epilog="example: %(prog)s",
                   formatter_class=raw)
    d = sub.add_parser("demo", help=f"run the bundled '{DEMO_SCENARIO}' scenario, print a "
                                    f"summary and write {DEMO_FIGURE}",
                       epilog="example: %(prog)s --plot demo.svg", formatter_class=raw)
    d.add_argument("--plot", metavar="PATH", default=str(DEMO_FIGURE))
    example = "example: %(prog)s"
    c = sub.add_parser("compare", help="run several scenarios and line them up",
                       epilog=f"{example} iris_sync my_async.toml --plot cmp.png",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("scenarios", nargs="+", metavar="FILE_OR_NAME")
    _add_set(c, " (to every scenario)")
    c.add_argument("--seed", type=int, help="one seed for all of them")
    _add_quiet(c, "the simulated time reached by each run")
    c.add_argument("--plot", metavar="PATH", help="loss and accuracy vs simulated time")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    w = sub.add_parser("sweep", help="run a scenario over a grid of settings and seeds",
                       epilog=f"{example} iris_sync --grid cluster.workers=2,4,8 "
                              f"--grid strategy.kind=sync,async --seeds 0,1,2 --jobs 2 "
                              f"--out runs.jsonl --plot sweep.png",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    w.add_argument("scenario", metavar="FILE_OR_NAME")
    _add_set(w, " (to the base scenario, before the grid)")
    w.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2",
                   help="a dotted key and its values, separated by the commas outside "
                        "brackets and quotes: cluster.workers=2,4,8 or "
                        "'cluster.slowdown=[1,1,1,4],[1,1,1,1]' (repeat for more keys)")
    w.add_argument("--seeds", default="0", help="replicate indices, e.g. 0,1,2 (default 0)")
    w.add_argument("--jobs", type=int, default=1, help="processes (default 1: in this one)")
    w.add_argument("--out", metavar="FILE.jsonl", help="stream every run's record here")
    w.add_argument("--resume", action="store_true",
                   help="run only the runs missing from --out (failed ones are kept); a record "
                        "of another scenario, seed or simdml version is refused, not rerun")
    w.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out (an existing one is refused otherwise)")
    _add_quiet(w, "runs done / total, elapsed, an estimate of the time left")
    w.add_argument("--metric", default="final_accuracy",
                   help="what the table aggregates: final_accuracy, balanced_accuracy, "
                        "time_to_target, sim_time, updates_per_s, bytes_sent, utilization, "
                        "final_loss, final_score, macro_f1, updates, messages_sent")
    w.add_argument("--plot", metavar="PATH", help="mean ± sd of --metric vs the first key")
    pl = sub.add_parser("plot", help="draw a figure from a result file (simdml run --out)",
                        epilog=f"{example} result.json --kind loss --out loss.png",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    pl.add_argument("result", metavar="RESULT.json")
    pl.add_argument("--kind", choices=("loss", "utilization"), default="loss")
    pl.add_argument("--out", metavar="PATH", required=True, help="the figure (.png, .svg, .pdf)")
    sub.add_parser("lessons", help="list the lessons with their questions",
                   epilog=f"{example}", formatter_class=argparse.RawDescriptionHelpFormatter)
    ls = sub.add_parser("lesson", help="run one lesson (its table and its figure)",
                        epilog=f"{example} 3 --quick",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ls.add_argument("number", type=int)
    ls.add_argument("--quick", action="store_true",
                    help="smaller, for a first look (its figure goes to figures/quick/)")
    return p


def _add_set(parser, where: str = "") -> None:
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", dest="sets",
                        help=f"change a dotted key{where}, e.g. cluster.speed=2e6 or "
                             f"'cluster.slowdown=[1,1,1,4]'; a TOML value, a bare word is "
                             f"a string (repeatable)")


def _add_quiet(parser, what: str) -> None:
    parser.add_argument("-q", "--quiet", "--no-progress", action="store_true", dest="quiet",
                        help=f"no progress line on stderr ({what}; shown only when stderr "
                             f"is a terminal)")


def _progress(args) -> bool | None:
    """None: a progress line when stderr is a terminal; False with --quiet."""
    return False if args.quiet else None


def _load(args, source):
    """The scenario ``source`` with the ``--set`` changes, all at once (a new worker
    count and a per-worker list of that length are checked together)."""
    from ._overrides import parse_sets
    from .scenario import ScenarioError, load_scenario
    scenario = load_scenario(source)
    sets = parse_sets(getattr(args, "sets", None))
    if not sets:
        return scenario
    try:
        return scenario.replace(**sets)
    except ScenarioError as exc:
        given = " ".join(f"--set {item}" for item in args.sets)
        raise ScenarioError(f"{exc} (with {given})") from None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .scenario import ScenarioError
    try:
        _check_outputs(args)  # before any run: a bad path must not cost the run
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
    scenario = _load(args, args.scenario)
    if args.seed is not None:
        scenario = scenario.replace(seed=args.seed)
    for option in ("trace", "plot"):
        path = getattr(args, option)
        if path:
            _check_output_path(f"--{option}", path)
    result = run(scenario, progress=_progress(args))
    if args.out:                  # the result first: a figure that fails loses nothing
        result.save(args.out)
    if args.trace:
        result.trace.save(args.trace)
    if args.plot:
        _plot(result, args.plot)
    if args.json:
        print(result.to_json())
    else:
        print(format_summary(result))
        for option, what in (("trace", "trace"), ("plot", "figure"), ("out", "result")):
            if getattr(args, option):
                print(f"wrote {what} to {getattr(args, option)}")
    return 0


def _check_outputs(args) -> None:
    """Every output path, before anything runs: never an input of the command, never
    the same file as another output, never inside the installed package (a bundled
    scenario written over breaks the next run), and writable (see ``_check_writable``)."""
    from .scenario import ScenarioError
    inputs = [getattr(args, k) for k in ("scenario", "result") if getattr(args, k, None)]
    inputs += list(getattr(args, "scenarios", None) or [])
    inputs = {Path(p).resolve() for p in inputs if Path(p).exists()}
    package = Path(__file__).resolve().parent
    seen = {}
    for option in ("out", "trace", "plot"):
        path = getattr(args, option, None)
        if not path:
            continue
        target = Path(path).resolve()
        if target in inputs:
            raise ScenarioError(f"--{option} {path!r} is an input of this command: it would be "
                                f"written over; choose another path")
        if target in seen:
            raise ScenarioError(f"--{option} and --{seen[target]} are the same file {path!r}: "
                                f"one would be written over the other; choose two paths")
        if package in target.parents:
            raise ScenarioError(f"--{option} {path!r} is inside the installed simdml package "
                                f"({package}); choose a path outside it")
        _check_writable(f"--{option}", target, path)
        seen[target] = option


def _check_writable(option: str, target: Path, path: str) -> None:
    """An output can be written at ``target``: not a folder nor a FIFO or device, no
    folder in the way of its temporary file (outputs are written there, then renamed),
    and its nearest existing folder writable (missing folders are created)."""
    from .scenario import ScenarioError
    if target.is_dir():
        raise ScenarioError(f"{option} {path!r} is a folder; give the path of a file")
    if target.exists() and not target.is_file():
        raise ScenarioError(f"{option} {path!r} is not a regular file (a FIFO or a device); "
                            f"give the path of a file")
    tmp = target.with_name(target.name + ".tmp")
    if tmp.is_dir():
        raise ScenarioError(f"{option} {path!r}: a folder {tmp.name!r} is in the way (the file "
                            f"is written there first); remove it or choose another path")
    folder = target.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise ScenarioError(f"{option} {path!r}: {folder.name!r} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ScenarioError(f"{option} {path!r}: the folder {str(folder)!r} is not writable")


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
    s = _load(args, args.scenario)
    prepare_data(s)  # the data too: e.g. more workers than training samples
    print(f"{args.scenario}: ok ({s.strategy.kind} on {s.cluster.workers} workers, "
          f"{s.data.dataset}, {s.model.kind})")
    return 0


def _show(args) -> int:
    print(_load(args, args.scenario).to_toml(), end="")
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


def _compare(args) -> int:
    from .sweep import compare
    if args.plot:
        _check_output_path("--plot", args.plot)
    labels = [Path(name).stem if name.endswith(".toml") else name for name in args.scenarios]
    if len(set(labels)) < len(labels):
        labels = [f"{i}:{label}" for i, label in enumerate(labels)]
    scenarios = {label: _load(args, name) for label, name in zip(labels, args.scenarios)}
    comparison = compare(scenarios, seed=args.seed, progress=_progress(args))
    if args.json:
        import json
        from .result import jsonable
        print(json.dumps(jsonable(comparison.to_dict()), indent=1))
    else:
        print(comparison.format())
    if args.plot:
        from . import plots
        plots.save(comparison.plot(), args.plot)
        if not args.json:
            print(f"wrote figure to {args.plot}")
    return 0


def _sweep(args) -> int:
    from .scenario import ScenarioError
    from .sweep import sweep
    if args.plot:
        _check_output_path("--plot", args.plot)
    if args.resume and not args.out:
        raise ScenarioError("--resume needs --out (the file of the runs to resume)")
    if args.resume and args.overwrite:
        raise ScenarioError("--resume and --overwrite exclude each other: --resume keeps the "
                            "runs of --out, --overwrite empties it")
    if args.out and Path(args.out).suffix != ".jsonl":
        raise ScenarioError(f"--out must end in .jsonl (one JSON record per line); got {args.out!r}")
    try:
        seeds = [int(k) for k in args.seeds.split(",")]
    except ValueError:
        raise ScenarioError(f"--seeds must be integers separated by commas; got {args.seeds!r}") from None
    if args.jobs < 1:
        raise ScenarioError(f"--jobs must be >= 1; got {args.jobs}")
    from .sweep import check_metric
    check_metric(args.metric)  # before hours of runs, not after
    from ._overrides import parse_grid
    grid = parse_grid(args.grid)
    base = _load(args, args.scenario)
    options = dict(seeds=seeds, out=args.out, resume=args.resume, overwrite=args.overwrite,
                   progress=_progress(args))
    with warnings.catch_warnings():  # a skipped line is one line of stderr, like an error
        warnings.showwarning = _warning_line
        if args.jobs > 1:
            from .sweep import worker_pool
            pool = worker_pool(args.jobs)  # its workers exit if this process is killed
            try:
                result = sweep(base, grid, executor=pool, **options)
            finally:  # on Ctrl-C: stop at once, cancel the queued runs (the finished are saved)
                pool.shutdown(wait=False, cancel_futures=True)
        else:
            result = sweep(base, grid, **options)
    print(result.format(args.metric))
    if result.skipped:
        print(f"resumed: {result.skipped} run(s) already in {args.out}")
    if args.out:
        print(f"wrote {len(result.records)} record(s) to {args.out}")
    if args.plot:
        from . import plots
        plots.save(result.plot(metric=args.metric), args.plot)
        print(f"wrote figure to {args.plot}")
    return 1 if result.failures else 0


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"simdml: warning: {message}", file=sys.stderr)


def _plot_file(args) -> int:
    from types import SimpleNamespace
    from . import plots
    from .result import load_result
    _check_output_path("--plot", args.out)
    data = load_result(args.result)  # checked: a malformed file is a one-line error
    if args.kind == "loss":
        run = SimpleNamespace(history=data["history"], summary={
            "score_name": data.get("score_name"), "timing_only": data.get("timing_only")})
        fig = plots.history({str(data.get("scenario", "run")): run})
    else:
        fig = plots.utilization(SimpleNamespace(nodes=data["nodes"],
                                                trace=SimpleNamespace(end=data["sim_time"])))
    plots.save(fig, args.out)
    print(f"wrote figure to {args.out}")
    return 0


def _lessons_dir() -> Path:
    from .scenario import ScenarioError
    here = Path(__file__).resolve().parents[1] / "lessons"
    if not here.is_dir():
        raise ScenarioError("the lessons live in the repository's lessons/ folder; run simdml "
                            "from a clone (pip install -e .)")
    return here


def _lesson_files() -> dict[int, Path]:
    return {int(p.name[:2]): p for p in sorted(_lessons_dir().glob("[0-9][0-9]_*.py"))}


def _lessons(args) -> int:
    import ast
    for number, path in _lesson_files().items():
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        title = doc.splitlines()[0] if doc else path.stem
        print(f"{number:>2}  {title}")
    print("\nrun one with: simdml lesson N [--quick]")
    return 0


def _lesson(args) -> int:
    import importlib.util
    from .scenario import ScenarioError
    files = _lesson_files()
    if args.number not in files:
        raise ScenarioError(f"no lesson {args.number}; lessons: {', '.join(map(str, files))}")
    path = files[args.number]
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if args.quick:  # a first look must not overwrite the full figure the README shows
        out = path.parents[1] / "figures" / "quick"
        module.main(quick=True, out_dir=out)
    else:
        module.main()
    return 0


_COMMANDS = {"run": _run, "validate": _validate, "show": _show, "list": _list, "demo": _demo,
             "compare": _compare, "sweep": _sweep, "plot": _plot_file, "lessons": _lessons,
             "lesson": _lesson}
