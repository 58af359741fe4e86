"""Your own data: a CSV or ``.npz`` file as a :class:`Dataset`, checked as the bundled
datasets are, so that the same split, partitioners and standardization apply.

A source is ``"csv:PATH"`` or ``"npz:PATH"``:

- **CSV**: a header row naming every column, then one row per sample (the stdlib
  ``csv`` dialect: commas, ``"quoted, cells"``). ``label`` names the column of the
  labels; every other column is a feature and must hold finite numbers.
- **npz** (``numpy.savez``): the features are the 2-D array ``X``; ``label`` names the
  1-D array of labels beside it (``y`` in ``np.savez(path, X=X, y=y)``); an optional
  1-D string array ``feature_names`` names the columns (else ``x0, x1, ...``).

Labels are classes: integers (``0, 1, 7``) or strings (``setosa``), mapped to class
indices in sorted order -- numerically for integers, by code point for strings -- so
``class_names[y[i]]`` is the label row ``i`` had. A file holds at most
``DATA_FILE_MAX_BYTES`` and is read once per process while it is unchanged (cached,
read-only, by path, size and modification time).
"""
from __future__ import annotations

import csv
import functools
import io
import math
import os
import re
import zipfile
from array import array

import numpy as np

from .. import _checks
from .dataset import Dataset

__all__ = ["FILE_KINDS", "DATA_FILE_MAX_BYTES", "MIN_ROWS", "parse_source", "check_dataset", "load_file",
           "describe_file"]

FILE_KINDS = ("csv", "npz")
DATA_FILE_MAX_BYTES = 64 * 2**20  # 64 MiB: a CSV of ~5 million numbers, parsed in seconds
NPZ_MAX_UNPACKED = 4 * DATA_FILE_MAX_BYTES  # an npz unpacks to at most this (zip bombs)
MIN_ROWS = 4  # two classes with a training and a test row each
_INTEGER = re.compile(r"[+-]?[0-9]+")


def parse_source(dataset) -> tuple[str, str] | None:
    """``(kind, path)`` of a data-file source (``"csv:data/x.csv"``), None for other names.

    >>> parse_source("npz:/tmp/x.npz"), parse_source("iris")
    (('npz', '/tmp/x.npz'), None)
    """
    if not isinstance(dataset, str):
        return None
    kind, colon, path = dataset.partition(":")
    return (kind, path) if colon and kind in FILE_KINDS else None


def check_dataset(dataset, label, names, *, prefix: str = "") -> str:
    """`dataset` as a run reads it: one of the dataset `names` (and then no `label`), or a
    data file's source with its path made absolute (from the working directory), the
    file read and checked (:func:`load_file`, cached). ValueError naming the key if not."""
    source = parse_source(dataset)
    if source is None:
        if not isinstance(dataset, str) or dataset not in names:
            raise ValueError(f"{prefix}dataset must be one of {', '.join(map(repr, names))}, "
                             f"or a data file 'csv:PATH' or 'npz:PATH'; got "
                             f"{_checks.shown(dataset)}{_checks.did_you_mean(dataset, names)}")
        if label is not None:
            raise ValueError(f"{prefix}label names the labels of a data file ({prefix}dataset "
                             f"= 'csv:PATH' or 'npz:PATH'); {prefix}dataset={dataset!r} has "
                             f"its own: remove {prefix}label")
        return dataset
    kind, path = source
    if path:
        dataset = f"{kind}:{os.path.abspath(path)}"
    load_file(dataset, label, prefix=prefix)
    return dataset


def load_file(source: str, label: str | None, *, prefix: str = "") -> Dataset:
    """The dataset a data file holds, read-only (copy the arrays to change them).

    Parameters
    ----------
    source : str
        ``"csv:PATH"`` or ``"npz:PATH"``; a relative PATH is relative to the working
        directory.
    label : str
        The CSV column, or the npz array, of the labels.
    prefix : str
        Put before the keys ``dataset`` and ``label`` in messages (``"data."``).

    Returns
    -------
    Dataset
        Named `source`; ``X`` float64 of shape (n_samples, n_features), ``y`` int64.

    Raises
    ------
    ValueError
        Naming the key, the file, and where in it: a missing label column or array, a
        cell that is not a finite number (its line and column), an empty file, a single
        class, fewer than ``MIN_ROWS`` rows, a file over the cap or not a regular file.
    """
    parsed = parse_source(source)
    if parsed is None:
        raise ValueError(f"{prefix}dataset must be 'csv:PATH' or 'npz:PATH' for a data "
                         f"file; got {_checks.shown(source)}")
    kind, path = parsed
    where = f"{prefix}dataset={source!r}"
    if not path:
        raise ValueError(f"{where} names no file; write {kind}:PATH")
    if label is not None and (not isinstance(label, str) or not label):
        raise ValueError(f"{prefix}label must be a non-empty string (a column or an array "
                         f"name); got {_checks.shown(label)}")
    try:
        info = os.stat(path)
    except OSError as exc:
        raise ValueError(f"{where}: cannot read data file {path!r}: {exc.strerror}") from None
    return _load(kind, path, label, prefix, info.st_size, info.st_mtime_ns, info.st_ino)


def describe_file(source: str, label: str | None, *, prefix: str = "") -> dict:
    """A data file's size, as :func:`simdml.data.describe` gives a bundled one's:
    ``n_samples``, ``n_features`` and ``class_counts``."""
    ds = load_file(source, label, prefix=prefix)
    counts = np.bincount(ds.y, minlength=ds.n_classes)
    return {"n_samples": ds.n_samples, "n_features": ds.n_features,
            "class_counts": counts.tolist()}


def content_digest(source: str) -> str:
    """A hash of a data file's bytes (``"csv:PATH"``), or ``"unreadable"``: what a sweep's
    fingerprint adds for a scenario that reads one, so that resuming after the file
    changed runs again instead of mixing old and new records."""
    kind, path = parse_source(source)
    try:
        info = os.stat(path)
    except OSError:
        return "unreadable"
    return _digest(path, info.st_size, info.st_mtime_ns, info.st_ino)


@functools.lru_cache(maxsize=4)  # keyed by the file's size and mtime, as _load
def _digest(path, size, mtime_ns, inode) -> str:
    import hashlib
    try:
        raw = _checks.read_bounded(path, "data file", DATA_FILE_MAX_BYTES)
    except (OSError, ValueError):
        return "unreadable"
    return hashlib.sha256(raw).hexdigest()[:32]


@functools.lru_cache(maxsize=4)  # keyed by the file's size and mtime: a changed file is reread
def _load(kind, path, label, prefix, size, mtime_ns, inode) -> Dataset:
    where = f"{prefix}dataset={kind + ':' + path!r}"
    try:
        raw = _checks.read_bounded(path, "data file", DATA_FILE_MAX_BYTES)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    read = _read_csv if kind == "csv" else _read_npz
    X, labels, feature_names = read(raw, label, where, f"{prefix}label")
    if X.shape[1] == 0:
        raise ValueError(f"{where} has no feature besides its labels {label!r}")
    if labels.size < MIN_ROWS:
        raise ValueError(f"{where} holds {labels.size} rows; at least {MIN_ROWS} are needed "
                         f"(two classes, each with a training and a test row)")
    classes, y = np.unique(labels, return_inverse=True)
    if classes.size < 2:
        raise ValueError(f"{prefix}label={label!r}: {where} holds a single class "
                         f"({str(classes[0])!r}); a classifier needs 2 or more")
    X.flags.writeable = False
    y = y.astype(np.int64).reshape(-1)
    y.flags.writeable = False
    return Dataset(name=f"{kind}:{path}", X=X, y=y, feature_names=tuple(feature_names),
                   class_names=tuple(str(c) for c in classes))


def _no_label(key, label, where, names, what):
    missing = f"{key} must name the labels of {where}, one of its {what}"
    if label is None:
        return ValueError(f"{missing}: {', '.join(map(repr, names))}")
    return ValueError(f"{key}={label!r} is not one of the {what} of {where}: "
                      f"{', '.join(map(repr, names))}{_checks.did_you_mean(label, names)}")


def _read_csv(raw: bytes, label, where, key):
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark, as spreadsheets write, is no name
    except UnicodeDecodeError as exc:
        raise ValueError(f"{where}: not UTF-8 text (byte {exc.start}); save the CSV as "
                         f"UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)  # a stray quote: an error
    try:
        header = [name.strip() for name in next(reader, [])]
        if not header:
            raise ValueError(f"{where} is empty: a CSV needs a header row naming its "
                             f"columns, then a row per sample")
        for j, name in enumerate(header):
            if not name:
                raise ValueError(f"{where}: column {j + 1} of the header has no name")
            if header.index(name) != j:
                raise ValueError(f"{where}: the header names column {name!r} twice")
        if label not in header:
            raise _no_label(key, label, where, header, "columns")
        return _csv_rows(reader, header, header.index(label), where)
    except csv.Error as exc:
        raise ValueError(f"{where}, line {reader.line_num}: not CSV ({exc})") from None


def _csv_rows(reader, header, at, where):
    features, labels = array("d"), []
    n_columns = len(header)
    for row in reader:
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # a blank line
        line = f"{where}, line {reader.line_num}"
        if len(row) != n_columns:
            raise ValueError(f"{line} has {len(row)} cells; the header names {n_columns} columns")
        cells = row[:at] + row[at + 1:]
        try:
            values = list(map(float, cells))
        except ValueError:
            values = None
        if values is None or not all(map(math.isfinite, values)):
            _bad_cell(line, cells, [h for j, h in enumerate(header) if j != at])
        features.extend(values)
        value = row[at].strip()
        if not value:
            raise ValueError(f"{line}: the label (column {header[at]!r}) is empty")
        labels.append(value)
    is_int = all(_INTEGER.fullmatch(v) for v in labels)
    labels = np.array([int(v) for v in labels] if is_int else labels,
                      dtype=np.int64 if is_int else str)
    X = np.frombuffer(features, dtype=np.float64).reshape(len(labels), n_columns - 1)
    return X, labels, header[:at] + header[at + 1:]


def _bad_cell(line, cells, names):
    for cell, name in zip(cells, names):
        try:
            x = float(cell)
        except ValueError:
            got = "an empty cell" if not cell.strip() else f"{_checks.shown(cell)}, not a number"
            break
        if not math.isfinite(x):
            got = repr(x)
            break
    raise ValueError(f"{line}, column {name!r}: {got}; features must be finite numbers "
                     f"(drop or impute the missing values first)")


def _read_npz(raw: bytes, label, where, key):
    try:
        npz = np.load(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{where}: not an .npz archive ({exc})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(f"{where}: one array (.npy), not an .npz archive of X and labels")
    with npz:
        names = npz.files
        if "X" not in names:
            raise ValueError(f"{where} has no array 'X' (the features); arrays: "
                             f"{', '.join(map(repr, names))}")
        if label not in names or label in ("X", "feature_names"):
            raise _no_label(key, label, where, [n for n in names if n not in ("X", "feature_names")],
                            "arrays")
        unpacked = sum(i.file_size for i in npz.zip.infolist())
        if unpacked > NPZ_MAX_UNPACKED:
            raise ValueError(f"{where} unpacks to {unpacked:,} bytes, more than the "
                             f"{NPZ_MAX_UNPACKED / 2**20:g} MiB a data file may hold")
        try:
            X, labels = npz["X"], npz[label]
            names_given = npz["feature_names"] if "feature_names" in names else None
        except ValueError as exc:  # an object array: it would need pickle
            raise ValueError(f"{where}: {exc}; save numbers and strings only") from None
    return _npz_arrays(X, labels, names_given, label, where)


def _npz_arrays(X, labels, names_given, label, where):
    if X.ndim != 2 or X.dtype.kind not in "biuf":
        raise ValueError(f"{where}: array 'X' must be 2-D numbers (n_samples, n_features); "
                         f"got {X.dtype} of shape {X.shape}")
    names = [f"x{j}" for j in range(X.shape[1])]
    if names_given is not None:
        if names_given.shape != (X.shape[1],) or names_given.dtype.kind != "U":
            raise ValueError(f"{where}: array 'feature_names' must hold {X.shape[1]} strings, "
                             f"one per column of X; got {names_given.dtype} of shape "
                             f"{names_given.shape}")
        names = [str(n) for n in names_given]
    X = X.astype(np.float64)
    bad = ~np.isfinite(X)
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        raise ValueError(f"{where}: X[{row}, {col}] (column {names[col]!r}) is {float(X[row, col])!r}; "
                         f"features must be finite numbers (drop or impute them first)")
    if labels.shape != (X.shape[0],):
        raise ValueError(f"{where}: array {label!r} must be 1-D with one label per row of X "
                         f"({X.shape[0]}); got shape {labels.shape}")
    if labels.dtype.kind == "f":
        whole = np.isfinite(labels) & (labels == np.round(labels))
        if not whole.all():
            i = int(np.argmin(whole))
            raise ValueError(f"{where}: {label}[{i}] is {float(labels[i])!r}; labels are classes, "
                             f"integers or strings")
        labels = labels.astype(np.int64)
    elif labels.dtype.kind not in "biuU":
        raise ValueError(f"{where}: array {label!r} must hold integers or strings (classes); "
                         f"got {labels.dtype}")
    return X, labels, names
