"""Your own data (``data.dataset = "csv:PATH"`` or ``"npz:PATH"``): the same run as the
bundled loader gives, paths found from the scenario's folder, and every error named."""
import csv
import os
import re
import textwrap

import numpy as np
import pytest

import simdml
from simdml import Scenario, ScenarioError, load_scenario
from simdml.data import files, load, load_file
from simdml.scenario import DataConfig
from tests.golden import cases

ROUNDS = {"stop.rounds": 8}


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def iris_csv(path, *, label_as="name"):
    """Iris as a CSV, row for row, its floats written exactly (repr), the label last."""
    ds = load("iris")
    labels = [ds.class_names[c] if label_as == "name" else int(c) for c in ds.y]
    return write_csv(path, [*ds.feature_names, "species"],
                     [[repr(float(v)) for v in x] + [lab] for x, lab in zip(ds.X, labels)])


def iris_run(**changes):
    return simdml.run(load_scenario("iris_sync").replace(**{**ROUNDS, **changes}))


def same_record(a, b):
    """Everything the golden digest sees, but for the names of the data."""
    ra, rb = cases.record(a), cases.record(b)
    assert ra["history"] == rb["history"]
    assert ra["spans"] == rb["spans"] and ra["summary"] == rb["summary"]
    np.testing.assert_array_equal(ra["params"], rb["params"])
    np.testing.assert_array_equal(ra["predict"], rb["predict"])
    return True


# ------------------------------------------------------------- the same run as the bundled data
@pytest.mark.parametrize("changes", [{}, {"data.partition": "label_skew"},
                                     {"data.partition": "by_label", "data.rebalance": True},
                                     {"data.standardize": False, "strategy.lr": 0.01}],
                         ids=["iid", "label_skew", "by_label+rebalance", "raw"])
@pytest.mark.parametrize("label_as", ["name", "int"])
def test_a_csv_of_iris_runs_exactly_as_the_bundled_iris(tmp_path, changes, label_as):
    """Iris written to CSV in its row order (string or integer labels) gives the bundled
    iris's run bit for bit: the same split, partition, standardization and history."""
    path = iris_csv(tmp_path / "iris.csv", label_as=label_as)
    mine = iris_run(**{"data.dataset": f"csv:{path}", "data.label": "species", **changes})
    assert same_record(mine, iris_run(**changes))


def test_an_npz_of_iris_runs_exactly_as_the_bundled_iris(tmp_path):
    """np.savez(X=..., y=...) with data.label = "y" gives the bundled iris's run; its
    feature_names array names the columns."""
    ds = load("iris")
    path = tmp_path / "iris.npz"
    np.savez(path, X=ds.X, y=ds.y, feature_names=np.array(ds.feature_names))
    mine = iris_run(**{"data.dataset": f"npz:{path}", "data.label": "y"})
    assert same_record(mine, iris_run())
    got = load_file(f"npz:{path}", "y")
    assert got.feature_names == ds.feature_names and got.class_names == ("0", "1", "2")
    np.savez(path, X=ds.X.astype(np.float32), target=ds.y.astype(np.float64))
    assert load_file(f"npz:{path}", "target").feature_names == ("x0", "x1", "x2", "x3")


def test_labels_map_to_classes_in_sorted_order(tmp_path):
    """String labels are classes in code-point order; integer labels in numeric order
    (10 after 9, not after 1, as strings would put it)."""
    rows = [[0.0, "b"], [1.0, "a"], [2.0, "c"], [3.0, "a"]]
    ds = load_file(f"csv:{write_csv(tmp_path / 's.csv', ['x', 'k'], rows)}", "k")
    assert ds.class_names == ("a", "b", "c") and ds.y.tolist() == [1, 0, 2, 0]
    rows = [[0.0, 10], [1.0, 9], [2.0, 2], [3.0, 9]]
    ds = load_file(f"csv:{write_csv(tmp_path / 'i.csv', ['x', 'k'], rows)}", "k")
    assert ds.class_names == ("2", "9", "10") and ds.y.tolist() == [2, 1, 0, 1]
    assert ds.X.tolist() == [[0.0], [1.0], [2.0], [3.0]] and not ds.X.flags.writeable


def test_the_label_column_may_be_anywhere_and_the_rest_are_features(tmp_path):
    """The label column is left out of the features, wherever it is; quoted cells,
    padded numbers and blank lines are read as CSV means them."""
    path = tmp_path / "mid.csv"
    path.write_text('a,"the label",b\n1, A ,2.5\n\n3,B,4\n5,"A",6\n7,B, 8e0\n')
    ds = load_file(f"csv:{path}", "the label")
    assert ds.feature_names == ("a", "b") and ds.class_names == ("A", "B")
    assert ds.X.tolist() == [[1, 2.5], [3, 4], [5, 6], [7, 8]] and ds.y.tolist() == [0, 1, 0, 1]


def test_a_changed_file_is_read_again(tmp_path):
    """The cache knows a file by its size and modification time: a rewrite is reread."""
    path = write_csv(tmp_path / "d.csv", ["x", "y"], [[i, i % 2] for i in range(4)])
    assert load_file(f"csv:{path}", "y").n_samples == 4
    write_csv(path, ["x", "y"], [[i, i % 2] for i in range(6)])
    assert load_file(f"csv:{path}", "y").n_samples == 6


# ------------------------------------------------------------------------------ paths
def test_a_scenario_file_finds_its_data_in_its_own_folder(tmp_path, monkeypatch):
    """A relative data path in a scenario file is from the file's folder, whatever the
    working directory; it is stored absolute, so a saved copy works from anywhere."""
    folder = tmp_path / "course" / "week1"
    (folder / "data").mkdir(parents=True)
    iris_csv(folder / "data" / "iris.csv")
    toml = folder / "mine.toml"
    toml.write_text(textwrap.dedent("""
        [data]
        dataset = "csv:data/iris.csv"
        label = "species"
        [stop]
        rounds = 2
    """))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    s = load_scenario(toml)
    assert s.data.dataset == f"csv:{folder / 'data' / 'iris.csv'}"
    assert simdml.run(s).summary["updates"] == 2
    copy = s.save(elsewhere / "copy.toml")
    assert load_scenario(copy).data.dataset == s.data.dataset


def test_an_absolute_path_is_taken_as_given(tmp_path, monkeypatch):
    """An absolute path in a scenario file ignores the file's folder."""
    path = iris_csv(tmp_path / "iris.csv")
    (tmp_path / "sub").mkdir()
    toml = tmp_path / "sub" / "s.toml"
    toml.write_text(f'[data]\ndataset = "csv:{path}"\nlabel = "species"\n')
    assert load_scenario(toml).data.dataset == f"csv:{path}"


def test_a_programmatic_scenario_reads_from_the_working_directory(tmp_path, monkeypatch):
    """Scenario(...) in Python resolves a relative data path from the working directory,
    once: a later chdir does not lose the file."""
    iris_csv(tmp_path / "iris.csv")
    monkeypatch.chdir(tmp_path)
    s = Scenario(data=DataConfig(dataset="csv:iris.csv", label="species"))
    assert s.data.dataset == f"csv:{tmp_path / 'iris.csv'}"
    monkeypatch.chdir(os.path.dirname(tmp_path))
    assert s.replace(**{"stop.rounds": 1}).data.dataset == s.data.dataset
    with pytest.raises(ScenarioError, match=r"cannot read data file '.*nosuch.csv': "
                                            r"No such file"):
        Scenario(data=DataConfig(dataset="csv:nosuch.csv", label="y"))


# ------------------------------------------------------------------------------ errors
def scenario_error(tmp_path, text, label="y", name="d.csv"):
    path = tmp_path / name
    path.write_text(text) if isinstance(text, str) else path.write_bytes(text)
    with pytest.raises(ScenarioError) as info:
        Scenario(data=DataConfig(dataset=f"csv:{path}", label=label))
    return str(info.value)


GOOD = "a,b,y\n1,2,x\n3,4,z\n5,6,x\n7,8,z\n"


@pytest.mark.parametrize("text, label, message", [
    ("width,height,species\n", "specie", r"data.label='specie' is not one of the columns of "
     r"data.dataset='csv:.*d.csv': 'width', 'height', 'species' \(did you mean 'species'\?\)"),
    (GOOD, None, r"data.label must name the labels of data.dataset='csv:.*d.csv', one of its "
                 r"columns: 'a', 'b', 'y'"),
    ("a,b,y\n1,2,x\n3,oops,z\n", "y", r"d.csv', line 3, column 'b': 'oops', not a number; "
                                      r"features must be finite numbers"),
    ("a,b,y\n1,2,x\n3,,z\n", "y", r"line 3, column 'b': an empty cell; features must be finite"),
    ("a,b,y\n1,2,x\nnan,4,z\n", "y", r"line 3, column 'a': nan; features must be finite"),
    ("a,b,y\n1,2,x\n3,inf,z\n", "y", r"line 3, column 'b': inf; features must be finite"),
    ("a,b,y\n1,2,x\n3,4\n", "y", r"line 3 has 2 cells; the header names 3 columns"),
    ("a,b,y\n1,2,x\n3,4, \n", "y", r"line 3: the label \(column 'y'\) is empty"),
    ("", "y", r"data.dataset='csv:.*d.csv' is empty: a CSV needs a header row"),
    ("a,b,y\n", "y", r"holds 0 rows; at least 4 are needed"),
    ("a,b,y\n1,2,x\n3,4,z\n5,6,x\n", "y", r"holds 3 rows; at least 4 are needed"),
    ("a,b,y\n1,2,x\n3,4,x\n5,6,x\n7,8,x\n", "y",
     r"data.label='y': data.dataset='csv:.*' holds a single class \('x'\); a classifier "
     r"needs 2 or more"),
    ("y\nx\nz\nx\nz\n", "y", r"has no feature besides its labels 'y'"),
    ("a,a,y\n1,2,x\n", "y", r"the header names column 'a' twice"),
    ("a,,y\n1,2,x\n", "y", r"column 2 of the header has no name"),
    (b"a,b,y\n1,2,\xff\n", "y", r"not UTF-8 text \(byte 10\); save the CSV as UTF-8"),
    ('a,b,y\n1,"2,x\n', "y", r"line \d+: not CSV"),
], ids=["label-typo", "no-label", "text", "empty-cell", "nan", "inf", "short-row",
        "empty-label", "empty-file", "header-only", "too-few-rows", "one-class", "no-features",
        "duplicate-column", "unnamed-column", "not-utf8", "broken-quote"])
def test_each_bad_csv_is_a_scenario_error_naming_where(tmp_path, text, label, message):
    """Each fault of a CSV is one ScenarioError naming the key, the file, and the line
    and column where it is."""
    got = scenario_error(tmp_path, text, label)
    assert re.search(message, got), got


def test_a_byte_order_mark_is_not_part_of_the_first_name(tmp_path):
    """A UTF-8 CSV saved by a spreadsheet starts with a BOM; the first column is still 'a'."""
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert load_file(f"csv:{path}", "y").feature_names == ("a", "b")


def test_a_file_over_the_cap_is_refused_with_its_size(tmp_path):
    """A data file over DATA_FILE_MAX_BYTES is refused before it is read, naming the cap
    and the size; a folder or a FIFO is no data file."""
    big = tmp_path / "big.csv"
    with big.open("wb") as f:
        f.truncate(files.DATA_FILE_MAX_BYTES + 1)  # sparse: no disk, no memory
    with pytest.raises(ScenarioError, match=r"big.csv' is larger than 64 MiB \(the limit for "
                                            r"a data file\): it holds 67,108,865 bytes"):
        Scenario(data=DataConfig(dataset=f"csv:{big}", label="y"))
    with pytest.raises(ScenarioError, match=r"is not a regular file"):
        Scenario(data=DataConfig(dataset=f"csv:{tmp_path}", label="y"))
    (tmp_path / "folder.toml").mkdir()  # the same reader refuses a folder as a scenario
    with pytest.raises(ScenarioError, match=r"folder.toml' is not a regular file"):
        load_scenario(tmp_path / "folder.toml")
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    with pytest.raises(ScenarioError, match=r"fifo.csv' is not a regular file"):
        Scenario(data=DataConfig(dataset=f"csv:{fifo}", label="y"))


def test_a_label_with_a_bundled_dataset_and_a_file_without_a_path_are_errors():
    """data.label is for data files only; "csv:" names no file; an unknown name lists
    the datasets and the file forms."""
    with pytest.raises(ScenarioError, match=r"data.label names the labels of a data file .*"
                                            r"data.dataset='iris' has its own: remove data.label"):
        Scenario(data=DataConfig(dataset="iris", label="species"))
    with pytest.raises(ScenarioError, match=r"data.dataset='csv:' names no file; write csv:PATH"):
        Scenario(data=DataConfig(dataset="csv:", label="y"))
    with pytest.raises(ScenarioError, match=r"data.dataset must be one of 'iris', .*, or a data "
                                            r"file 'csv:PATH' or 'npz:PATH'; got 'tsv:x'"):
        Scenario(data=DataConfig(dataset="tsv:x"))
    with pytest.raises(ScenarioError, match=r"data.label must be a non-empty string"):
        Scenario(data=DataConfig(dataset="csv:x.csv", label=3))


def npz_error(tmp_path, label="y", **arrays):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    with pytest.raises(ScenarioError) as info:
        Scenario(data=DataConfig(dataset=f"npz:{path}", label=label))
    return str(info.value)


X4 = np.arange(8.0).reshape(4, 2)
Y4 = np.array([0, 1, 0, 1])


@pytest.mark.parametrize("arrays, label, message", [
    ({"features": X4, "y": Y4}, "y", r"has no array 'X' \(the features\); arrays: 'features', 'y'"),
    ({"X": X4, "labels": Y4}, "y", r"data.label='y' is not one of the arrays of .*: 'labels'"),
    ({"X": X4, "y": Y4 + 0.5}, "y", r"y\[0\] is 0.5; labels are classes, integers or strings"),
    ({"X": X4[0], "y": Y4}, "y", r"array 'X' must be 2-D numbers \(n_samples, n_features\)"),
    ({"X": X4, "y": Y4[:3]}, "y", r"array 'y' must be 1-D with one label per row of X \(4\)"),
    ({"X": np.where(X4 == 5, np.nan, X4), "y": Y4}, "y",
     r"X\[2, 1\] \(column 'x1'\) is nan; features must be finite"),
    ({"X": X4, "y": Y4, "feature_names": np.array(["a"])}, "y",
     r"array 'feature_names' must hold 2 strings"),
], ids=["no-X", "no-label", "fractional-label", "1-D X", "short-y", "nan", "names"])
def test_each_bad_npz_is_a_scenario_error_naming_the_array(tmp_path, arrays, label, message):
    """Each fault of an npz file is one ScenarioError naming the key and the array."""
    got = npz_error(tmp_path, label, **arrays)
    assert re.search(message, got), got


def test_an_npz_that_is_not_one_or_unpacks_too_far_is_refused(tmp_path, monkeypatch):
    """A text file, a lone .npy, an object array (pickle) and an archive that unpacks past
    the cap are each a ScenarioError."""
    path = tmp_path / "d.npz"
    path.write_text("a,b\n")
    with pytest.raises(ScenarioError, match=r"d.npz': not an .npz archive"):
        Scenario(data=DataConfig(dataset=f"npz:{path}", label="y"))
    np.save(tmp_path / "one.npy", X4)
    with pytest.raises(ScenarioError, match=r"one array \(.npy\), not an .npz archive"):
        Scenario(data=DataConfig(dataset=f"npz:{tmp_path / 'one.npy'}", label="y"))
    np.savez(path, X=X4, y=np.array(["a", 1, "b", 2], dtype=object))
    with pytest.raises(ScenarioError, match=r"Object arrays cannot be loaded.*; save numbers "
                                            r"and strings only"):
        Scenario(data=DataConfig(dataset=f"npz:{path}", label="y"))
    np.savez_compressed(path, X=np.zeros((1000, 2)), y=np.arange(1000) % 2)
    monkeypatch.setattr(files, "NPZ_MAX_UNPACKED", 10_000)
    with pytest.raises(ScenarioError, match=r"unpacks to [\d,]+ bytes, more than the "):
        Scenario(data=DataConfig(dataset=f"npz:{path}", label="y"))


def test_a_bad_data_file_on_the_command_line_is_one_line_and_exit_2(tmp_path):
    """`simdml run` on a scenario whose CSV has a text cell prints one line naming it
    and exits 2: no traceback."""
    from tests.test_cli import simdml as cli
    (tmp_path / "d.csv").write_text("a,b,y\n1,2,x\n3,oops,z\n")
    (tmp_path / "s.toml").write_text('[data]\ndataset = "csv:d.csv"\nlabel = "y"\n')
    p = cli("run", tmp_path / "s.toml")
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert "line 3, column 'b': 'oops', not a number" in p.stderr
