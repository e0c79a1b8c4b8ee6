"""What the fault tests share (tests/test_faults.py, tests/test_faults_recovery.py): a small
synthetic ToteSys, lakes and warehouses reading it, a clean reference run, and a way to run
`totes run` in its own process (its own JVM) with a crash point armed.

Their fixtures (`dbs`, `clean_run`, `reference`, `restore_spark_conf`) are in tests/conftest.py, so
each file gets its own module-scoped instances, and `make test`'s workers (pytest-xdist, --dist
loadfile) run the two files side by side.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
from pyspark.sql import functions as F

from shared.config import Settings, parse_pg_url
from shared.contract.star import FACT_TABLES, FACT_VERSION_KEYS, STAR_SCHEMAS
from shared.local import totesys
from shared.local.workflow import run_workflow

REPO = Path(__file__).resolve().parents[1]
SCALE = 0.02  # ~200 sales orders: every table, every path, a few seconds of Spark work per job


def warehouse_content(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every warehouse table's rows, without the serial surrogate keys, in a stable order."""
    out = {}
    with psycopg.connect(url) as conn:
        for table, schema in STAR_SCHEMAS.items():
            columns = ", ".join(f'"{f.name}"' for f in schema.fields)
            out[table] = conn.execute(f'SELECT {columns} FROM "{table}" ORDER BY {columns}').fetchall()
    return out


def count(url: str, table: str) -> int:
    """Rows in a warehouse table; 0 when the load has not even created it yet."""
    with psycopg.connect(url) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", [f'public."{table}"']).fetchone()
        if not exists or exists[0] is None:
            return 0
        row = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()
    return int(row[0]) if row else 0


def lake_listing(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "_state" not in p.parts
    )


def duplicate_fact_versions(spark, settings: Settings) -> dict[str, int]:
    """Fact versions present more than once in the processed zone, per fact table."""
    out = {}
    for fact in FACT_TABLES:
        location = Path(settings.processed) / fact
        if location.is_dir():
            versions = spark.read.parquet(str(location)).groupBy(*FACT_VERSION_KEYS[fact]).count()
            out[fact] = versions.where(F.col("count") > 1).count()
    return out


def lake_text(root: Path) -> str:
    """Every small text file of the lake (state, manifests, quarantine, ingestion JSON), joined."""
    parts = []
    for path in root.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".lock", "") and path.stat().st_size < 5_000_000:
            parts.append(path.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(parts)


class Databases:
    """One ToteSys database (synthetic, small) and a factory of lakes + warehouses reading it."""

    def __init__(self, pg, tmp: Path, label: str) -> None:
        self.pg, self.tmp = pg, tmp
        self.source_db = f"totesys_{label}_{uuid.uuid4().hex[:6]}"
        pg.create_database(self.source_db)
        self.admin_url = pg.url(self.source_db)
        self.reader_url = pg.url(self.source_db, user="totesys_reader")
        totesys.seed_synthetic(self.admin_url, scale=SCALE)

    def new_target(self, name: str, **overrides: Any) -> Settings:
        suffix = uuid.uuid4().hex[:6]
        warehouse_db = f"warehouse_{name}_{suffix}"
        self.pg.create_database(warehouse_db)
        return Settings(
            lake_root=str(self.tmp / f"lake_{name}_{suffix}"),
            totesys=parse_pg_url("TOTESYS_URL", self.reader_url),
            warehouse=parse_pg_url("WAREHOUSE_URL", self.pg.url(warehouse_db)),
            catalog_database=f"totes_{name}_{suffix}",
            **overrides,
        )


def password_of(settings: Settings) -> str:
    assert settings.warehouse is not None and settings.warehouse.password
    return settings.warehouse.password


def cli_args(settings: Settings) -> list[str]:
    assert settings.totesys is not None and settings.warehouse is not None
    return [
        "--totesys-url",
        settings.totesys.conninfo,
        "--warehouse-url",
        settings.warehouse.conninfo,
        "--lake-root",
        settings.lake_root,
        "--catalog-database",
        settings.catalog_database,
    ]


def totes_process(
    settings: Settings, kill_at: str | None = None, job: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`totes run [--job JOB]` in its own process (its own JVM and metastore), as Glue or a
    scheduler starts a job run."""
    env = {k: v for k, v in os.environ.items() if k not in ("TOTESYS_URL", "WAREHOUSE_URL", "LAKE_ROOT")}
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    env["TOTES_HOME"] = str(Path(settings.lake_root).parent / ".totes-home")
    if kill_at:
        env["TOTES_KILL_AT"] = kill_at
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "shared.local.cli",
            "run",
            *(["--job", job] if job else []),
            *cli_args(settings),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


class Reference:
    """A clean run over the faults ToteSys: its lake, and the warehouse it gives (the yardstick)."""

    def __init__(self, spark, dbs: Databases) -> None:
        self.settings = dbs.new_target("reference")
        reports = run_workflow(spark, self.settings)
        assert [r.status for r in reports] == ["SUCCEEDED"] * 3
        self.content = warehouse_content(self.settings.require_warehouse().conninfo)
        assert len(self.content["fact_sales_order"]) == totesys.synthetic_sizes(SCALE)["sales_order"]
