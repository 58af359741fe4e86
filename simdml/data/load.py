"""The bundled datasets: four small UCI classics (see ``simdml/datasets/README.md`` for
their sources and licence), parsed once per process and cached read-only."""
from __future__ import annotations

import functools
import gzip
import io
import json
from importlib import resources

import numpy as np

from .dataset import Dataset

# breast_cancer_rare is a view of breast_cancer.csv that keeps only the first 20
# malignant tumours (datasets.json: "keep"): a real dataset where one class is rare.
DATASETS: tuple[str, ...] = ("iris", "wine", "breast_cancer", "digits", "breast_cancer_rare")


@functools.lru_cache(maxsize=None)
def _metadata() -> dict:
    text = resources.files("simdml.datasets").joinpath("datasets.json").read_text("utf-8")
    return json.loads(text)


@functools.lru_cache(maxsize=None)
def _read_csv(filename: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    # Parsed once per process; the arrays are frozen so that no caller can corrupt
    # the cache, and load() hands out views, whose WRITEABLE flag cannot be turned back on.
    raw = resources.files("simdml.datasets").joinpath(filename).read_bytes()
    if filename.endswith(".gz"):
        raw = gzip.decompress(raw)
    header, _, body = raw.decode("utf-8").partition("\n")
    columns = tuple(header.strip().split(","))
    assert columns[-1] == "target", f"{filename}: last column is {columns[-1]!r}, not 'target'"
    table = np.loadtxt(io.StringIO(body), delimiter=",", dtype=np.float64, ndmin=2)
    X = np.ascontiguousarray(table[:, :-1])
    y = table[:, -1].astype(np.int64)
    X.flags.writeable = False
    y.flags.writeable = False
    return X, y, columns[:-1]


def describe(name: str) -> dict:
    """A bundled dataset's size without reading it: ``n_samples``, ``n_features`` and
    ``class_counts`` (a list, one count per class), from ``datasets.json``.

    >>> describe("iris")["class_counts"]
    [50, 50, 50]
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    meta = _metadata()[name]
    return {key: meta[key] for key in ("n_samples", "n_features", "class_counts")}


def load(name: str) -> Dataset:
    """Load one of the bundled datasets (parsed once per process, then cached).

    Parameters
    ----------
    name : {"iris", "wine", "breast_cancer", "digits", "breast_cancer_rare"}
        ``breast_cancer_rare`` is breast_cancer with only its first 20 malignant rows
        (of 212) kept: 20 malignant, 357 benign.
        Anything else raises ValueError; ``"synthetic"`` is made by :func:`make_classification`.

    Returns
    -------
    Dataset
        With read-only ``X`` (float64) and ``y`` (int64); copy them to modify.

    Examples
    --------
    >>> load("iris")
    Dataset(name='iris', n_samples=150, n_features=4, n_classes=3)
    """
    if name == "synthetic":
        raise ValueError("dataset 'synthetic' is generated, not loaded; "
                         "call make_classification(..., rng=rng)")
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}, "
                         "synthetic (made with make_classification)")
    meta = _metadata()[name]
    X, y, feature_names = _read_csv(meta["file"])
    if "keep" in meta:  # a derived view: only the first rows of one class
        rare, first = meta["keep"]["class"], meta["keep"]["first"]
        rows = np.sort(np.concatenate([np.flatnonzero(y == rare)[:first], np.flatnonzero(y != rare)]))
        X, y = X[rows], y[rows]
        X.flags.writeable = y.flags.writeable = False
    class_names = tuple(meta["classes"])
    return Dataset(name=name, X=X.view(), y=y.view(),
                   feature_names=feature_names, class_names=class_names)
