"""The benchmark script keeps working (smoke test: no timings are asserted here)."""
import importlib.util
import json
from pathlib import Path

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


def test_kernel_benchmarks_run_and_write_results(tmp_path):
    """`benchmarks/run.py --quick --only kernel` writes a results file with ratios."""
    spec = importlib.util.spec_from_file_location("bench_run", RUN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "results.json"
    assert module.main(["--quick", "--only", "kernel", "--repeat", "1", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["name"] for r in rows][-1] == "message round trips"
    assert all(r["vs_limit"] > 0 and r["events_per_s"] > 0 for r in rows)
    assert all(r["minimal_s"] > 0 and r["vs_minimal"] > 0 for r in rows[:3])  # the timeouts
