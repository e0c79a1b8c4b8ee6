"""`totes` as a user runs it: a real subprocess, real databases, a real lake, its real output."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from shared.config import Settings
from shared.lake.layout import LakeLayout

TOTES = [sys.executable, "-m", "shared.local.cli"]


def totes(
    *args: str, env: dict[str, str] | None = None, timeout: int = 600
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"TOTESYS_URL", "WAREHOUSE_URL", "LAKE_ROOT"}}
    return subprocess.run(
        [*TOTES, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**clean, **(env or {})},
        cwd=Path(__file__).resolve().parents[1],
    )


def test_a_malformed_url_fails_at_once_naming_the_setting(tmp_path) -> None:
    result = totes("run", "--lake-root", str(tmp_path), env={"TOTESYS_URL": "mysql://etl:hunter2@db/totesys"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "totes: configuration error: TOTESYS_URL must start with postgresql:// (got scheme 'mysql'): "
        "expected postgresql://user:password@host:port/database"
    ]
    assert "hunter2" not in result.stdout + result.stderr


def test_status_refuses_a_lake_document_of_an_unknown_format_version_naming_the_file(tmp_path) -> None:
    lake = tmp_path / "lake"
    record = LakeLayout.of(Settings(lake_root=str(lake))).run_record("20261122T000000000000Z", "extract")
    Path(record).parent.mkdir(parents=True)
    Path(record).write_text('{"format_version": 99, "job": "extract"}', encoding="utf-8")
    closed = "postgresql://etl:hunter2@127.0.0.1:9/{}"  # never reached: the lake is read first
    result = totes(
        "status",
        "--lake-root",
        str(lake),
        env={"TOTESYS_URL": closed.format("totesys"), "WAREHOUSE_URL": closed.format("warehouse")},
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"totes: DocumentError: {record}: run record document of format version 99; this code reads "
        "version 1 (written by a newer release? upgrade the jobs before reading this lake)"
    ]


@pytest.mark.integration
def test_an_unreachable_database_fails_with_one_line_and_no_java_trace(tmp_path, fresh_db) -> None:
    result = totes(
        "run",
        "--lake-root",
        str(tmp_path / "lake"),
        "--totesys-url",
        "postgresql://etl:hunter2@127.0.0.1:9/totesys",
        "--warehouse-url",
        fresh_db,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("totes:")]
    assert len(errors) == 1
    assert errors[0].startswith(
        "totes: TOTESYS_URL (postgresql://etl:***@127.0.0.1:9/totesys) is unreachable: "
    )
    assert "Connection" in errors[0]
    assert "hunter2" not in result.stdout + result.stderr
    assert "\tat org." not in result.stderr and "Py4JJavaError" not in result.stderr
    assert not (tmp_path / "lake" / "ingestion").exists()  # nothing written


@pytest.mark.integration
def test_seed_run_status_and_query_end_to_end(tmp_path, pg) -> None:
    suffix = uuid.uuid4().hex[:8]
    source, warehouse = f"cli_src_{suffix}", f"cli_wh_{suffix}"
    pg.create_database(source)
    pg.create_database(warehouse)
    env = {
        "TOTESYS_URL": pg.url(source),
        "WAREHOUSE_URL": pg.url(warehouse),
        "LAKE_ROOT": str(tmp_path / "lake"),
        "CATALOG_DATABASE": f"cli_{suffix}",
    }
    seeded = totes("seed", "--url", pg.url(source), "--scale", "0.02", env=env)
    assert seeded.returncode == 0, seeded.stderr
    with psycopg.connect(pg.url(source)) as conn:
        orders = conn.execute("SELECT count(*) FROM sales_order").fetchone()[0]
    assert f"  {'sales_order':<16}{orders:>10,}" in seeded.stdout.splitlines()
    again = totes("seed", "--url", pg.url(source), env=env)
    assert again.returncode == 1 and "refusing" in again.stderr

    ran = totes("run", env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "extract [SUCCEEDED]" in ran.stdout and "load [SUCCEEDED]" in ran.stdout
    load_lines = ran.stdout.split("load [SUCCEEDED]")[1]
    fact_line = next(line for line in load_lines.splitlines() if line.strip().startswith("fact_sales_order"))
    assert fact_line.split()[-1] == str(orders)  # loaded
    assert pg.url(warehouse).split("@")[0].split(":")[-1] not in ran.stdout  # password never printed
    # a progress line per job, then the summary: source tables and star tables apart
    progress = [line.split(" ... ")[0].strip() for line in ran.stdout.splitlines() if " ... done in " in line]
    assert progress == ["extract", "transform", "load"]
    transform_block = ran.stdout.split("transform [SUCCEEDED]")[1].split("load [SUCCEEDED]")[0]
    source_part, star_part = transform_block.split("star tables")
    assert "source tables" in source_part and "sales_order " in source_part and "dim_" not in source_part
    assert "fact_sales_order" in star_part and "\n  sales_order " not in star_part
    # stderr: nothing that is not about the pipeline (platformdirs, Hadoop's native library, log levels)
    assert "Warning" not in ran.stderr and "NativeCodeLoader" not in ran.stderr, ran.stderr
    assert "Setting default log level" not in ran.stderr, ran.stderr

    status = totes("status", env=env)
    assert status.returncode == 0, status.stderr
    assert "extract_sales_order" in status.stdout and "SUCCEEDED" in status.stdout
    assert f"{'fact_sales_order':<22}{orders:>10}" in status.stdout

    query = totes("query", "SELECT count(*) AS n FROM fact_sales_order", env=env)  # DuckDB over the lake
    assert query.returncode == 0, query.stderr
    assert f"|{orders}|" in query.stdout.replace(" ", "").splitlines()
    assert "rows in" in query.stdout and "DuckDB" in query.stdout
    spark_sql = totes("query", "--engine", "spark", "SELECT count(*) AS n FROM fact_sales_order", env=env)
    assert spark_sql.returncode == 0, spark_sql.stderr
    assert f"|{orders}|" in spark_sql.stdout.replace(" ", "").splitlines()

    one_job = totes("run", "--job", "transform", env=env)
    assert (
        one_job.returncode == 0
        and "transform [SUCCEEDED]" in one_job.stdout
        and "nothing new" in one_job.stdout
    )
