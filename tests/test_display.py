"""A run, a comparison, a sweep and a scenario show themselves in a few lines of text
(the key numbers exactly as in the summary) and, in a notebook, as well-formed HTML."""
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

import simdml
from simdml.display import SUMMARY_KEYS

ROOT = Path(__file__).resolve().parents[1]
QUICK = {"stop.rounds": 8}


@pytest.fixture(scope="module")
def result():
    return simdml.run(simdml.load_scenario("iris_sync").replace(**QUICK))


class _Tags(HTMLParser):
    """Every start tag with its attributes, each end tag checked against the open ones."""
    VOID = {"img", "br"}

    def __init__(self):
        super().__init__()
        self.open, self.starts, self.cells = [], [], []

    def handle_starttag(self, tag, attrs):
        self.starts.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()

    def handle_data(self, data):
        if self.open and self.open[-1] in ("td", "th"):
            self.cells.append(data)


def parsed(text: str) -> _Tags:
    parser = _Tags()
    parser.feed(text)
    parser.close()
    assert parser.open == [], f"unclosed tags {parser.open}"
    return parser


def rows(parser: _Tags) -> int:
    return sum(tag == "tr" for tag, _ in parser.starts)


def test_a_result_repr_is_a_few_lines_with_the_summary_numbers_exactly(result):
    """repr(result) is short and shows each key number as repr(summary[key])."""
    text = repr(result)
    assert len(text) < 600 and text.count("\n") < 8
    assert text.startswith("Result of 'iris_sync': sync, 4 workers, iris, logistic, seed 0")
    shown = [k for k in SUMMARY_KEYS if f"{k}=" in text]
    assert {"sim_time", "updates", "final_loss", "final_accuracy", "bytes_sent",
            "messages_sent"} <= set(shown)
    for key in shown:
        assert f"{key}={result.summary[key]!r}" in text, key
    assert repr(result.summary["stop_reason"]) in text


def test_a_result_html_has_the_summary_and_node_tables_and_its_figure(result):
    """_repr_html_ parses, has a row per scalar summary key and per node, and the figure
    as an inline PNG."""
    parser = parsed(result._repr_html_())
    scalars = [k for k, v in result.summary.items() if v is None or isinstance(v, (str, int, float))]
    assert rows(parser) == (1 + len(scalars)) + (1 + len(result.nodes))
    assert {"sim_time", "final_accuracy", "server", "worker3"} <= set(parser.cells)
    assert f"{result.summary['bytes_sent']:,}" in parser.cells  # an int, with separators
    images = [a["src"] for tag, a in parser.starts if tag == "img"]
    assert len(images) == 1 and images[0].startswith("data:image/png;base64,iVBORw0KGgo")


def test_a_node_table_is_cut_and_says_so():
    """Over 16 nodes, the HTML node table shows 16 and says how many there are."""
    r = simdml.run(simdml.load_scenario("iris_sync").replace(**{
        **QUICK, "cluster.workers": 20, "cluster.speed": 1e6, "trace_spans": False}))
    html = r._repr_html_()
    assert "result.nodes (16 of 21 shown)" in html
    assert rows(parsed(html)) == sum(1 for k, v in r.summary.items()
                                     if v is None or isinstance(v, (str, int, float))) + 1 + 17


def test_a_comparison_shows_its_table():
    """repr(comparison) is its labels and format(); the HTML has one row per run."""
    c = simdml.compare({"a": simdml.load_scenario("iris_sync").replace(**QUICK),
                        "b": simdml.load_scenario("iris_sync").replace(**{**QUICK, "seed": 1})})
    text = repr(c)
    assert text.splitlines()[0] == "Comparison of 2 runs: 'a', 'b' (.results: label -> Result)"
    assert text.endswith(c.format()) and len(text) < 1000
    parser = parsed(c._repr_html_())
    assert rows(parser) == 3 and {"a", "b", "final_accuracy"} <= set(parser.cells)


def test_a_sweep_shows_its_grid_and_rows_cut_to_twelve():
    """repr(sweep) states runs, points and grid, and at most 12 rows of format()."""
    s = simdml.sweep("iris_sync", {"cluster.speed": [1e6], "stop.rounds": list(range(2, 16))})
    text = repr(s)
    assert text.splitlines()[:2] == [
        "SweepResult: 14 runs over 14 grid points, 0 failed",
        "  grid: cluster.speed=[1000000.0], stop.rounds=[2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]"]
    assert len(text.splitlines()) == 2 + 1 + 12 + 1 and "... 2 more rows" in text
    assert rows(parsed(s._repr_html_())) == 1 + 14


def test_a_scenario_shows_what_differs_from_the_defaults():
    """repr(scenario) lists the non-default keys by section; the HTML has them and the TOML."""
    s = simdml.load_scenario("iris_sync")
    text = repr(s)
    assert text.splitlines()[0] == "Scenario 'iris_sync': sync, 4 workers, iris, logistic, seed 0"
    assert "  [network] latency=0.001, bandwidth=1250000.0" in text and len(text) < 800
    assert "[data]" not in text  # iris, iid, ...: all defaults
    parser = parsed(s._repr_html_())
    assert {"network.latency", "cluster.jitter", "0.2"} <= set(parser.cells)
    assert "[cluster]" in s._repr_html_()  # the TOML, folded under <details>


def test_importing_simdml_and_its_plots_in_a_script_imports_no_ipython():
    """The inline-figure hook only looks for a running kernel: a script stays headless."""
    code = ("import sys, simdml, simdml.plots; "
            "print('IPython' in sys.modules, 'matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": str(ROOT), "PATH": ""}, timeout=60)
    assert out.stdout.split() == ["False", "False"]


def test_a_regressor_shows_its_score_not_an_accuracy():
    """A regressor's summary has final_accuracy None: the repr shows final_score instead."""
    r = simdml.run(simdml.Scenario(name="reg").replace(**{
        "data.dataset": "synthetic_regression", "model.kind": "linear", "stop.rounds": 3}))
    text = repr(r)
    assert f"final_score={r.summary['final_score']!r}" in text and "final_accuracy" not in text
    assert rows(parsed(r._repr_html_())) > len(r.nodes)
