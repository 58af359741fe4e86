"""The lessons' notebooks: the converter turns a ``# %%`` script into the notebook written
by hand below and back; the committed .ipynb are what it builds now; and every notebook,
executed in a real kernel, shows its figure inline and raises nothing."""
import json
import os
import sys
from pathlib import Path

import pytest

from simdml.notebook import (cells_from_script, dumps, notebook_from_script,
                             script_from_notebook, stale)

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ROOT / "lessons"

SCRIPT = '''\
# %% [markdown]
# # A title
#
# Some *markdown*, two lines
# of it.


# %%
"""A docstring."""
import math


def f(x):
    return math.sqrt(x)


# %% [markdown]
# The run:


# %%
f(4)


# %%
'''

EXPECTED = {
    "cells": [
        {"cell_type": "markdown", "id": "cell-0", "metadata": {},
         "source": ["# A title\n", "\n", "Some *markdown*, two lines\n", "of it."]},
        {"cell_type": "code", "execution_count": None, "id": "cell-1", "metadata": {},
         "outputs": [],
         "source": ['"""A docstring."""\n', "import math\n", "\n", "\n", "def f(x):\n",
                    "    return math.sqrt(x)"]},
        {"cell_type": "markdown", "id": "cell-2", "metadata": {}, "source": ["The run:"]},
        {"cell_type": "code", "execution_count": None, "id": "cell-3", "metadata": {},
         "outputs": [], "source": ["f(4)"]},
        {"cell_type": "code", "execution_count": None, "id": "cell-4", "metadata": {},
         "outputs": [], "source": []},
    ],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                "name": "python3"},
                 "language_info": {"name": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}


def test_a_script_becomes_the_notebook_written_by_hand_and_comes_back():
    """Markdown cells lose their '# ', code cells keep their inner blank lines, the blank
    lines between cells belong to none; the notebook gives back the script byte for byte."""
    notebook = notebook_from_script(SCRIPT)
    assert notebook == EXPECTED
    assert script_from_notebook(notebook) == SCRIPT
    assert json.loads(dumps(notebook)) == EXPECTED
    assert dumps(notebook) == dumps(notebook_from_script(SCRIPT))


def test_text_before_the_first_marker_is_a_code_cell_and_a_header_comes_first():
    """As in jupytext; and a header (the built notebooks' note) is a first markdown cell."""
    assert cells_from_script("x = 1\n\n# %%\ny = 2\n") == [("code", "x = 1"), ("code", "y = 2")]
    cells = notebook_from_script("# %%\nx = 1\n", header="*note*")["cells"]
    assert [(c["cell_type"], c["source"]) for c in cells] == [("markdown", ["*note*"]),
                                                               ("code", ["x = 1"])]


@pytest.mark.parametrize("text, message", [
    ("# %% Setup\nx = 1\n", r"<script>, line 1: a cell starts with '# %%' or '# %% \[markdown\]' "
                            r"alone on its line; got '# %% Setup'"),
    ("# %% [markdown]\n# fine\nx = 1\n", r"line 3: a markdown cell holds comment lines "
                                         r"\('# text'\); got 'x = 1'"),
    ("# %% [markdown]\n#no space\n", r"line 2: .* got '#no space'"),
])
def test_a_malformed_script_is_refused_with_its_line(text, message):
    with pytest.raises(ValueError, match=message):
        cells_from_script(text)


def _lessons():
    return sorted(LESSONS.glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("script", _lessons(), ids=lambda p: p.stem)
def test_every_lesson_is_in_cell_format_and_round_trips(script):
    """Each lesson is canonical cell format: markdown first (its title as the docstring's),
    and script -> notebook -> script gives back every byte."""
    text = script.read_text(encoding="utf-8")
    cells = cells_from_script(text, str(script))
    kinds = [kind for kind, _ in cells]
    assert kinds[0] == "markdown" and "code" in kinds and kinds.count("markdown") >= 3
    title = cells[0][1].splitlines()[0]
    docstring = cells[1][1].splitlines()[0]
    assert title == "# " + docstring.strip('"'), (title, docstring)
    assert script_from_notebook(notebook_from_script(text)) == text


def test_the_committed_notebooks_are_what_the_converter_builds():
    """lessons/notebooks/*.ipynb are in sync with the scripts, and valid nbformat 4."""
    nbformat = pytest.importorskip("nbformat")
    assert stale(LESSONS) == [], ("a lesson changed after its notebook was built; rebuild "
                                  "with: python -m simdml.notebook lessons/")
    built = sorted((LESSONS / "notebooks").glob("*.ipynb"))
    assert [p.stem for p in built] == [p.stem for p in _lessons()], "a notebook without a lesson"
    for path in built:
        nbformat.validate(nbformat.read(path, as_version=4))


# --------------------------------------------------------------- in a real kernel


def _execute(notebook: dict, cwd: Path, monkeypatch) -> dict:
    """Run every cell in a fresh python3 kernel (ipykernel), quick, headless, in ``cwd``."""
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("SIMDML_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")  # as CI runs: figures must show inline anyway
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    nb = nbformat.reads(json.dumps(notebook), as_version=4)  # sources as one string each
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=300,
                            resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def _outputs(nb) -> list[dict]:
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]


def test_a_fresh_kernel_shows_figures_and_results_inline(tmp_path, monkeypatch):
    """Without %matplotlib inline: a cell ending in a figure shows a PNG, one ending in a
    Result shows its HTML (with the figure) and its short text."""
    nb = _execute(notebook_from_script(
        "# %%\nimport simdml\nfrom simdml import plots\n"
        "r = simdml.run(simdml.load_scenario('iris_sync').replace(**{'stop.rounds': 4}))\n"
        "# %%\nplots.run_overview(r)\n# %%\nr\n"), tmp_path, monkeypatch)
    figure, result = (cell.outputs for cell in nb.cells[1:])
    assert [o.output_type for o in figure] == ["execute_result"]
    assert set(figure[0].data) == {"text/plain", "image/png"}
    assert result[0].data["text/plain"].startswith("Result of 'iris_sync'")
    assert '<img src="data:image/png;base64,' in result[0].data["text/html"]


# Two notebooks run in every test run; the rest (their cells are the lessons' own, which
# test_lessons runs, and the in-sync test holds them equal) are slow: `pytest -m slow`.
EVERY_RUN = {"01_first_cluster", "10_deep_data_parallel"}


@pytest.mark.parametrize("script", [
    s if s.stem in EVERY_RUN else pytest.param(s, marks=pytest.mark.slow) for s in _lessons()],
    ids=lambda p: p.stem)
def test_every_notebook_runs_in_a_kernel_and_shows_its_figure(script, tmp_path, monkeypatch):
    """The built notebook, executed quick: no error, its table printed, its figure shown
    inline and written to figures/ beside the notebook."""
    notebook = json.loads((LESSONS / "notebooks" / f"{script.stem}.ipynb").read_text())
    nb = _execute(notebook, tmp_path, monkeypatch)
    outputs = _outputs(nb)
    assert not [o for o in outputs if o.output_type == "error"]
    assert any(o.output_type == "stream" and o.name == "stdout" for o in outputs)
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1, "the lesson's figure, once"
    assert (tmp_path / "figures" / f"{script.stem}.png").stat().st_size > 20_000
