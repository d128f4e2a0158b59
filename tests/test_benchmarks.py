"""The benchmark scripts' own logic: the demo benchmark's per-rule table and the shared summary."""

import importlib.util
import sys

import pandas as pd
import pytest

from tests.helpers import REPO


def load(name: str, monkeypatch):
    """benchmarks/<name>.py as a module (the folder is not a package; benchmarks/musicnn.py must not shadow
    the musicnn package, so the folder never goes on sys.path)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def load_common(monkeypatch):
    """benchmarks/common.py, with the torch-free helpers it imports (benchmarks/scratch.py)."""
    load("scratch", monkeypatch)
    return load("common", monkeypatch)


@pytest.fixture
def demo(monkeypatch):
    load_common(monkeypatch)
    return load("demo", monkeypatch)


def write_benchmark(path, seconds: float, cpu: float, rss: float) -> None:
    """A file as Snakemake's `benchmark:` writes it (one job, one repeat)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time"
    path.write_text(f"{columns}\n{seconds}\t0:00:{seconds:02.0f}\t{rss}\t1\t1\t1\t0\t0\t50\t{cpu}\n")


def write_record(path, seconds: float, cpu: float, rss: float) -> None:
    """A job's own resource record (mvcl.logs.record_usage)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"s\th:m:s\tmax_rss\tcpu_time\tuser_s\tsystem_s\n{seconds}\t0:00:05\t{rss}\t{cpu}\t{cpu}\t0\n")


def test_rule_times_sum_every_job_of_a_rule_whatever_its_wildcards(demo, tmp_path):
    write_benchmark(tmp_path / "video_features" / "shard_0.tsv", 10, 9, 500)
    write_benchmark(tmp_path / "video_features" / "shard_1.tsv", 30, 25, 700)
    write_record(tmp_path / "train" / "base.tsv", 5, 4, 300)
    table = demo.rule_times(tmp_path)
    assert table["rule"].tolist() == ["video_features", "train"]  # longest first
    video = table.iloc[0]
    assert (video["jobs"], video["wall_s"], video["longest_job_s"], video["cpu_s"]) == (2, 40, 30, 34)
    assert video["max_rss_mb"] == 700 and set(table["scope"]) == {"rule"}


def test_rule_times_of_a_run_without_benchmark_files_is_an_empty_table(demo, tmp_path):
    table = demo.rule_times(tmp_path / "missing")
    assert table.empty and "wall_s" in table


def test_summaries_are_the_median_round_not_the_best(monkeypatch):
    common = load_common(monkeypatch)
    table = common.summarise({"model": [(3.0, 1.0), (1.0, 1.0), (2.0, 1.0)]}, 4)
    row = table.iloc[0]
    assert (row["seconds"], row["seconds_min"], row["seconds_max"], row["rounds"]) == (2.0, 1.0, 3.0, 3)
    assert row["segments_per_s"] == 2.0
    assert isinstance(table, pd.DataFrame)


def test_fidelity_flags_a_median_rank_outside_the_float32_interval_and_a_changed_ordering(monkeypatch):
    fidelity = load("demo_fidelity", monkeypatch)

    def table1(ranks: dict[str, float]) -> pd.DataFrame:
        rows = [
            {
                "configuration": name,
                **{f"median_rank_{d}": rank for d in ("a2v", "v2a")},
                **{f"median_rank_{d}_ci_low": rank - 5 for d in ("a2v", "v2a")},
                **{f"median_rank_{d}_ci_high": rank + 5 for d in ("a2v", "v2a")},
                "n_test_videos": 19,
            }
            for name, rank in ranks.items()
        ]
        return pd.DataFrame(rows + [{"configuration": "chance", "median_rank_a2v": 55.0}])

    fp32 = table1({"base": 10.0, "deep4": 50.0, "tau03": 52.0})
    same = fidelity.compare(fp32, table1({"base": 12.0, "deep4": 49.0, "tau03": 53.0}))
    assert same["inside_fp32_interval"].all() and (same["place_fp32"] == same["place_reduced"]).all()
    assert len(same) == 6 and "chance" not in set(same["configuration"])
    moved = fidelity.compare(fp32, table1({"base": 16.0, "deep4": 53.0, "tau03": 52.0}))
    outside = moved[~moved["inside_fp32_interval"]]
    assert set(outside["configuration"]) == {"base"}
    swapped = moved[moved["configuration"] == "deep4"]
    assert (swapped["place_fp32"] == 2).all() and (swapped["place_reduced"] == 3).all()
