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
