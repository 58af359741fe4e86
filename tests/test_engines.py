"""Sweeps on real distributed engines give the serial results bit for bit: dask.distributed
with worker processes, and Ray through the adapter that the README shows.

Both engines are optional: each test is skipped, with the reason, where its engine is not
installed (``pip install -e '.[test]'`` brings dask's ``distributed``; Ray never is).
"""
import os
import re
from pathlib import Path

import pytest

import simdml
from simdml import Scenario, sweep
from tests.test_data_files import iris_csv

BASE = Scenario(name="engine_base").replace(**{
    "stop.rounds": 10, "cluster.speed": 1e6, "cluster.compute_time": "exponential"})
GRID = {"cluster.workers": [2, 3], "strategy.kind": ["sync", "async"]}
SEEDS = [0, 1]
README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def serial():
    return sweep(BASE, GRID, seeds=SEEDS)


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip(
        "distributed", reason="dask.distributed is not installed (pip install 'dask[distributed]')")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, worker_dashboard_address=None)
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def test_a_dask_cluster_gives_the_serial_results(serial, dask_client, tmp_path):
    """A sweep on a dask LocalCluster of two worker processes (Client.get_executor())
    gives exactly the serial records, in grid order; a run shipped to a worker gives the
    same history, bit for bit; a data file is read by the workers from its absolute path."""
    worker_pids = set(dask_client.run(os.getpid).values())
    assert len(worker_pids) == 2 and os.getpid() not in worker_pids  # real processes
    executor = dask_client.get_executor()
    on_dask = sweep(BASE, GRID, seeds=SEEDS, executor=executor, out=tmp_path / "runs.jsonl")
    assert on_dask.records == serial.records
    assert all(r["error"] is None for r in on_dask.records)
    mine = BASE.replace(**{"data.dataset": f"csv:{iris_csv(tmp_path / 'iris.csv')}",
                           "data.label": "species", "strategy.kind": "async"})
    remote = executor.submit(simdml.run, mine).result()
    assert remote.history == simdml.run(mine).history == simdml.run(
        mine.replace(**{"data.dataset": "iris", "data.label": None})).history


def ray_adapter():
    """The Ray adapter as the README prints it: its code block, run as it stands."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    (code,) = [b for b in blocks if "class RayExecutor" in b]
    namespace = {}
    exec(compile(code.split("# -- use")[0], str(README), "exec"), namespace)
    return namespace["RayExecutor"]


def test_the_readme_shows_a_ray_adapter():
    """The README's Ray recipe defines RayExecutor, a concurrent.futures.Executor (the
    check runs without Ray: the class imports ray only when it is built)."""
    import concurrent.futures
    assert issubclass(ray_adapter(), concurrent.futures.Executor)


def test_ray_gives_the_serial_results(serial):
    """A sweep on Ray tasks, through the README's adapter, gives exactly the serial records."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install ray); the "
                                            "adapter is the README's recipe, never a dependency")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(
                 [str(README.parent), os.environ.get("PYTHONPATH", "")])}})
    try:
        with ray_adapter()() as executor:
            on_ray = sweep(BASE, GRID, seeds=SEEDS, executor=executor)
    finally:
        ray.shutdown()
    assert on_ray.records == serial.records
