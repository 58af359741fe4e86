"""Lessons as notebooks: a ``# %%`` script in, a Jupyter notebook (``.ipynb``) out.

The script stays the one source. VS Code, PyCharm and Jupyter with jupytext open it as a
notebook as it is; for Colab, this module writes the ``.ipynb`` (outputs empty, the same
bytes for the same script, so the built notebooks can be committed and checked)::

    python -m simdml.notebook lessons/           # lessons/NN_*.py -> lessons/notebooks/NN_*.ipynb
    python -m simdml.notebook lessons/ --check   # exit 1 if a built notebook is out of date

The format is the "percent" format of jupytext, in the strict subset the lessons use:

- a line ``# %%`` starts a code cell, a line ``# %% [markdown]`` a markdown cell;
- a markdown cell's lines are comments, ``# text`` (or a bare ``#`` for a blank line);
- the blank lines between cells belong to no cell; text before the first marker is a
  code cell. ``script_from_notebook`` writes the cells back with two blank lines between
  them, so a script in that form comes back byte for byte.

Standard library only (``json``): building a notebook needs no Jupyter.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["cells_from_script", "notebook_from_script", "script_from_notebook", "dumps",
           "build", "stale", "main"]

CODE = "# %%"
MARKDOWN = "# %% [markdown]"
NOTEBOOKS = "notebooks"        # the built notebooks' folder, inside the scripts' folder
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
HEADER = ("*Built from `lessons/{name}` by `python -m simdml.notebook lessons/`: edit the "
          "script, not this file.* On Colab, install simdml first, in a cell of its own: "
          "`%pip install \"git+<the repository's URL>\"` (or upload a clone and "
          "`%pip install -e <its folder>`).")


def cells_from_script(text: str, where: str = "<script>") -> list[tuple[str, str]]:
    """The cells of a ``# %%`` script, as ``(kind, source)`` with kind "code" or "markdown".

    Raises
    ------
    ValueError
        A marker other than ``# %%`` / ``# %% [markdown]``, or a line of a markdown cell
        that is not a comment (with its line number).
    """
    cells: list[tuple[str, list[str]]] = [("code", [])]
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith(CODE):
            if line not in (CODE, MARKDOWN):
                raise ValueError(f"{where}, line {number}: a cell starts with {CODE!r} or "
                                 f"{MARKDOWN!r} alone on its line; got {line!r}")
            cells.append(("markdown" if line == MARKDOWN else "code", []))
        elif cells[-1][0] == "markdown" and line.strip():
            if not (line == "#" or line.startswith("# ")):
                raise ValueError(f"{where}, line {number}: a markdown cell holds comment "
                                 f"lines ('# text'); got {line!r}")
            cells[-1][1].append(line[2:])
        else:
            cells[-1][1].append(line)
    out = [(kind, "\n".join(_trimmed(lines))) for kind, lines in cells]
    return out[1:] if out[0] == ("code", "") else out  # nothing before the first marker


def _trimmed(lines: list[str]) -> list[str]:
    """``lines`` without the blank lines at either end (they separate cells)."""
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def notebook_from_script(text: str, where: str = "<script>", header: str | None = None) -> dict:
    """A notebook (nbformat 4.5, as a dict) of the script's cells, outputs empty; with
    ``header``, a markdown cell of it comes first."""
    cells = cells_from_script(text, where)
    if header is not None:
        cells.insert(0, ("markdown", header))
    return {"cells": [_cell(i, kind, source) for i, (kind, source) in enumerate(cells)],
            "metadata": {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def _cell(index: int, kind: str, source: str) -> dict:
    cell = {"cell_type": kind, "id": f"cell-{index}", "metadata": {},
            "source": source.splitlines(keepends=True)}  # Jupyter's form: a list of lines
    if kind == "code":
        cell |= {"execution_count": None, "outputs": []}
    return cell


def script_from_notebook(notebook: dict) -> str:
    """The ``# %%`` script of a notebook's cells (outputs dropped), two blank lines apart."""
    parts = []
    for cell in notebook["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            lines = [f"# {line}" if line else "#" for line in source.splitlines()]
            parts.append("\n".join([MARKDOWN] + lines))
        else:
            parts.append(f"{CODE}\n{source}" if source else CODE)
    return "\n\n\n".join(parts) + "\n"


def dumps(notebook: dict) -> str:
    """The notebook's JSON as Jupyter writes it (keys sorted, one-space indents), so that
    one notebook always gives the same bytes."""
    return json.dumps(notebook, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def _scripts(folder: Path) -> list[Path]:
    return sorted(folder.glob("[0-9][0-9]_*.py"))


def _built(script: Path) -> tuple[Path, str]:
    notebook = notebook_from_script(script.read_text(encoding="utf-8"), str(script),
                                    header=HEADER.format(name=script.name))
    return script.parent / NOTEBOOKS / f"{script.stem}.ipynb", dumps(notebook)


def build(folder: str | Path) -> list[Path]:
    """Write ``folder/notebooks/NN_x.ipynb`` for every ``folder/NN_x.py``; the paths."""
    paths = []
    for script in _scripts(Path(folder)):
        path, text = _built(script)
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def stale(folder: str | Path) -> list[Path]:
    """The notebooks of ``folder`` that are missing or differ from what ``build`` writes."""
    out = []
    for script in _scripts(Path(folder)):
        path, text = _built(script)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            out.append(path)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simdml.notebook",
                                     description="Build the .ipynb of every NN_*.py lesson.")
    parser.add_argument("folder", type=Path, help="the lessons' folder, e.g. lessons/")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a notebook is out of date")
    args = parser.parse_args(argv)
    if not _scripts(args.folder):
        print(f"no NN_*.py lessons in {args.folder}", file=sys.stderr)
        return 2
    if args.check:
        paths = stale(args.folder)
        for path in paths:
            print(f"out of date: {path} (python -m simdml.notebook {args.folder})")
        return 1 if paths else 0
    for path in build(args.folder):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
