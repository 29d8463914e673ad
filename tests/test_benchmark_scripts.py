"""The benchmark scripts keep working (run small here; their numbers live in the docs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, clean_env

pytestmark = pytest.mark.slow  # each runs a benchmark script: the full run only


def run_benchmark(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *args],
        env=clean_env(), capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip


def test_lineage_benchmark_runs_and_writes_its_section(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n\nkept\n")
    args = ("--edges", "4000", "--repeat", "1", "--write", str(report))
    done = run_benchmark("lineage_bench.py", *args)
    assert done.returncode == 0, done.stderr
    text = report.read_text()
    assert text.startswith("# Benchmarks\n\nkept\n")
    assert "<!-- lineage-bench:begin -->" in text and "<!-- lineage-bench:end -->" in text
    assert "| upstream, frontier walk with hop distances | **" in text
    assert "edges (pipelines of 3-40 stages" in text
    # a second run replaces the section instead of appending another
    assert run_benchmark("lineage_bench.py", *args).returncode == 0
    assert report.read_text().count("<!-- lineage-bench:begin -->") == 1


def test_speed_benchmark_runs_forebear_and_writes_its_section(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n\nkept\n")
    done = run_benchmark("speed_bench.py", "--scale", "0.001", "--tools", "forebear",
                         "--workdir", str(tmp_path / "work"), "--write", str(report))  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = report.read_text()
    assert text.startswith("# Benchmarks\n\nkept\n")
    assert "<!-- speed-bench:begin -->" in text and "<!-- speed-bench:end -->" in text
    for step in ("| first log |", "| unchanged re-log |", "| second version |"):
        assert step in text
    # forebear stores the unchanged re-log for free and only the changed files after
    assert "small, unchanged re-log" in text and "(+0 B)" in text
    assert "`forebear --help`: **" in text and "`forebear ls` of the last store: **" in text
    assert "### Failures" not in text


def test_scale_benchmark_runs_every_step_and_writes_its_section(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n\nkept\n")
    forebear = Path(sys.executable).parent / "forebear"
    done = run_benchmark("scale_bench.py", "--counts", "150,1200", "--forebear", str(forebear),
                         "--workdir", str(tmp_path / "work"), "--write", str(report))  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = report.read_text()
    assert "<!-- scale-bench:begin -->" in text and "| step | 150 files | 1,200 files |" in text
    for step in ("first log", "unchanged re-log", "get into an empty folder", "get again"):
        assert f"| {step} | " in text
    assert "failed" not in text and "not run" not in text


def test_ui_benchmark_runs_every_page_and_writes_its_section(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n\nkept\n")
    done = run_benchmark("ui_bench.py", "--files", "500", "--versions", "100",
                         "--write", str(report))  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = report.read_text()
    assert text.startswith("# Benchmarks\n\nkept\n")
    for page in ("| home page (every artifact's latest version) |", "| runs page |"):
        assert page in text


def test_lifecycle_benchmark_prunes_collects_and_writes_its_section(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n\nkept\n")
    done = run_benchmark("lifecycle_bench.py", "--artifacts", "3", "--versions", "12",
                         "--files", "4", "--workdir", str(tmp_path / "work"),
                         "--write", str(report))  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = report.read_text()
    assert "<!-- lifecycle-bench:begin -->" in text and "<!-- lifecycle-bench:end -->" in text
    # 3 artifacts keep their last 10 of 12 versions: 6 are pruned, then purged by gc
    assert "deleted 6 versions" in text and "purged 6 versions" in text
    assert "| 0 problems in the versions kept |" in text


def test_reading_benchmark_reads_drafts_and_writes_its_section(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n")
    done = run_benchmark("reading_bench.py", "--size-mib", "16", "--files", "300",
                         "--repeat", "1", "--write", str(report))  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = report.read_text()
    assert "<!-- reading-bench:begin -->" in text and "<!-- reading-bench:end -->" in text
    assert "| read 16 MiB, `forebear://` (verified) |" in text
    assert "| draft changing 1 file of 300, to the committed version |" in text


def test_server_benchmark_compares_both_paths_and_writes_its_section(
    tmp_path: Path, postgres_server: str, s3_server: dict[str, str]
) -> None:
    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n\nkept\n")
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "server_bench.py"), "--files", "60",
         "--big-mib", "9", "--rss-mib", "9", "--write", str(report)],
        env=clean_env(FOREBEAR_TEST_PG_URL=postgres_server, **s3_server),
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = report.read_text()
    assert "<!-- server-bench:begin -->" in text and "| log 60 small files (4 KiB) |" in text
    assert "through `forebear server`" in text and "MB** at most" in text
    assert "| get the 9 MiB file into an empty folder |" in text
    assert "| read the 9 MiB file to its end (`open`) |" in text


def test_packs_benchmark_counts_requests_and_writes_its_section(
    tmp_path: Path, s3_server: dict[str, str]
) -> None:
    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n\nkept\n")
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "packs_bench.py"), "--files", "40",
         "--tools", "forebear,forebear-packs,boto3", "--write", str(report)],
        env=clean_env(**s3_server), capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = report.read_text()
    assert "<!-- packs-bench:begin -->" in text and "40 files of 8 KiB" in text
    rows = {line.split(" | ")[0]: line.split(" | ") for line in text.splitlines() if "|" in line}
    packed, boto = rows["| forebear, format 3 (packs)"], rows["| raw boto3, 32 threads"]
    assert int(boto[2]) == 40 and int(boto[4]) == 40  # one request a file, each way
    assert int(packed[2]) < 40 and int(packed[4]) < 10  # a pack: a few requests in all


def test_runs_benchmark_lists_every_way_and_writes_its_section(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n\nkept\n")
    done = run_benchmark("runs_bench.py", "--runs", "300", "--write", str(report))
    assert done.returncode == 0, done.stderr
    text = report.read_text()
    assert text.startswith("# Benchmarks\n\nkept\n")
    assert "<!-- runs-bench:begin -->" in text and "| listing | 300 runs |" in text
    for step in ("`forebear runs --json`", "web UI, last runs page (6)", "export loop"):
        assert step in text
    assert "failed" not in text


def test_logging_benchmark_runs_and_writes_its_section(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n\nkept\n")
    args = ("--logs", "200", "--mlflow-logs", "20", "--steps", "300", "--write", str(report))
    done = run_benchmark("logging_bench.py", *args)
    assert done.returncode == 0, done.stderr
    text = report.read_text()
    assert text.startswith("# Benchmarks\n\nkept\n")
    assert "<!-- logging-bench:begin -->" in text and "<!-- logging-bench:end -->" in text
    for loop in ("| forebear `run.log` | 200 |", "| MLflow `log_metrics` | 20 |"):
        assert loop in text
    assert "`forebear import mlflow` of one MLflow run of 300 steps" in text
