"""What the fault tests share (tests/test_faults.py, tests/test_faults_recovery.py,
tests/test_schema_change.py): a small synthetic ToteSys, lakes and warehouses reading it, a clean
reference run kept after each of its jobs, and a way to run `totes run` in its own process (its own
JVM) with a crash point armed.

Built once per test process (session fixtures `dbs`, `clean_run`, `expected` in tests/conftest.py)
and never written to: a test that needs the state the jobs before its fault leave starts from a copy
of the reference's lake after them (`copy_lake`: a plain file copy, the lake's absolute paths
rewritten) and a clone of its warehouse (`CREATE DATABASE ... TEMPLATE`), instead of running those
jobs again; a test that writes to ToteSys gets a clone of it. The yardstick every scenario ends on
is tests/expected_star.py: the warehouse SPEC.md asks for, computed from ToteSys with plain SQL.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import expected_star
import psycopg
from psycopg import sql
from pyspark.sql import functions as F

from shared.config import Settings, parse_pg_url
from shared.contract.star import FACT_TABLES, FACT_VERSION_KEYS, STAR_SCHEMAS
from shared.jobs.transform.catalog import register_catalog
from shared.lake.documents import Published, read_document
from shared.lake.layout import LakeLayout
from shared.lake.storage import storage_for
from shared.local import totesys
from shared.local.workflow import JOBS, run_workflow

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


def clone_database(pg, template: str, name: str) -> None:
    """CREATE DATABASE `name` TEMPLATE `template`: a file-level copy of a built database.

    PostgreSQL refuses while anything is connected to the template; the tests leave nothing
    connected, but a JDBC connection closed by the JVM may take a moment to go.
    """
    with psycopg.connect(pg.url("postgres"), autocommit=True) as conn:
        for attempt in range(50):
            try:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(name), sql.Identifier(template)
                    )
                )
                return
            except psycopg.errors.ObjectInUse:
                if attempt == 49:
                    raise
                time.sleep(0.1)


@dataclass(frozen=True)
class BuiltState:
    """What the reference left after one of its jobs: its lake, and its warehouse once loaded."""

    lake: Path
    warehouse_db: str | None  # None: no load has run, the warehouse is an empty database


def copy_lake(source: Path, target: Path) -> None:
    """Copy a local lake to `target`, as if the runs that made it had run there.

    The lake's state documents (bookmarks, `_current.json`) hold absolute locations: those are
    rewritten. Data files (Parquet, the ingestion JSON) never name a location and are copied as
    they are; Hadoop's `.crc` files guard only those.
    """
    shutil.copytree(source, target, symlinks=True)
    old, new = str(source), str(target)
    for path in target.rglob("*.json"):
        if path.name.startswith("part-"):
            continue
        text = path.read_text(encoding="utf-8")
        if old in text:
            assert not path.with_name(f".{path.name}.crc").exists(), f"{path} is checksummed"
            path.write_text(text.replace(old, new), encoding="utf-8")


class Databases:
    """One ToteSys database (synthetic, small) and a factory of lakes + warehouses reading it.

    `template`: clone that ToteSys database instead of seeding a new one (the same rows).
    """

    def __init__(self, pg, tmp: Path, label: str, template: str | None = None) -> None:
        self.pg, self.tmp = pg, tmp
        self.source_db = f"totesys_{label}_{uuid.uuid4().hex[:6]}"
        if template:
            clone_database(pg, template, self.source_db)
        else:
            pg.create_database(self.source_db)
        self.admin_url = pg.url(self.source_db)
        self.reader_url = pg.url(self.source_db, user="totesys_reader")
        if not template:
            totesys.seed_synthetic(self.admin_url, scale=SCALE)

    def new_target(
        self, name: str, state: BuiltState | None = None, catalog=None, **overrides: Any
    ) -> Settings:
        """A new lake and warehouse; with `state`, a copy of that built lake and warehouse.

        `catalog` (a SparkSession): also register the copy's published tables in its catalog
        database, as the transform that published them did.
        """
        suffix = uuid.uuid4().hex[:6]
        warehouse_db = f"warehouse_{name}_{suffix}"
        if state is not None and state.warehouse_db is not None:
            clone_database(self.pg, state.warehouse_db, warehouse_db)
        else:
            self.pg.create_database(warehouse_db)
        settings = Settings(
            lake_root=str(self.tmp / f"lake_{name}_{suffix}"),
            totesys=parse_pg_url("TOTESYS_URL", self.reader_url),
            warehouse=parse_pg_url("WAREHOUSE_URL", self.pg.url(warehouse_db)),
            catalog_database=f"totes_{name}_{suffix}",
            **overrides,
        )
        if state is not None:
            copy_lake(state.lake, Path(settings.lake_root))
        if state is not None and catalog is not None:
            layout = LakeLayout.of(settings)
            published = read_document(storage_for(layout.processed), layout.published, Published)
            if published is not None:
                register_catalog(catalog, settings.catalog_database, published.tables, {})
        return settings


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
    """A clean run over the faults ToteSys, job by job, its lake kept after each job (`after`).

    Its warehouse must be the independent expectation (`expected`: tests/expected_star.py). Tests
    never write to its lake or warehouse: they get copies (`Databases.new_target(state=...)`).
    """

    def __init__(self, spark, dbs: Databases, expected: dict[str, list[tuple[Any, ...]]]) -> None:
        self.settings = dbs.new_target("reference")
        lake = Path(self.settings.lake_root)
        self.states: dict[str, BuiltState] = {}
        for job in JOBS:
            (report,) = run_workflow(spark, self.settings, [job])
            assert report.status == "SUCCEEDED", report.message
            if job != JOBS[-1]:
                kept = dbs.tmp / f"reference_after_{job}"
                copy_lake(lake, kept)
                self.states[job] = BuiltState(kept, None)
        self.states[JOBS[-1]] = BuiltState(lake, self.settings.require_warehouse().database)
        self.content = warehouse_content(self.settings.require_warehouse().conninfo)
        assert len(self.content["fact_sales_order"]) == totesys.synthetic_sizes(SCALE)["sales_order"]
        self.expected = expected
        assert expected_star.warehouse_star(self.settings.require_warehouse().conninfo) == expected

    def after(self, job: str | None) -> BuiltState | None:
        """The state the jobs up to `job` leave (None: before the first job, nothing built)."""
        return None if job is None else self.states[job]
