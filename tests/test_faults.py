"""Faults, for real: SIGKILL at each crash point, unreachable databases, two runs at once, re-runs,
and a row committed late by a long transaction.

Every scenario runs against the embedded PostgreSQL and a real lake, and ends by comparing the
warehouse with a clean reference run over the same ToteSys data (surrogate keys left out). A killed
run is a separate `python -m shared.cli run` process with TOTES_KILL_AT set: it dies by SIGKILL at
the named point (shared/faults.py), then the next run is started normally and must catch up with no
lost row and no duplicate fact version. docs/reliability.md maps each row of the fault matrix to
the test here that proves it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pyspark.sql import functions as F

from shared import cli, status, totesys
from shared.config import Settings, parse_pg_url
from shared.faults import POINTS
from shared.jobs.transform import current_path
from shared.lake import read_json, run_lock, storage_for
from shared.pipeline import JOBS, JobFailed, local_reader, run_workflow
from shared.sources import SourceUnreachable
from shared.star import FACT_TABLES, FACT_VERSION_KEYS, STAR_SCHEMAS

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
SCALE = 0.02  # ~200 sales orders: every table, every path, a few seconds of Spark work per job


# --------------------------------------------------------------------------- helpers


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
        [sys.executable, "-m", "shared.cli", "run", *(["--job", job] if job else []), *cli_args(settings)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def dbs(pg, tmp_path_factory) -> Databases:
    return Databases(pg, tmp_path_factory.mktemp("faults"), "faults")


class Reference:
    """A clean run over the faults ToteSys: its lake, and the warehouse it gives (the yardstick)."""

    def __init__(self, spark, dbs: Databases) -> None:
        self.settings = dbs.new_target("reference")
        reports = run_workflow(spark, self.settings)
        assert [r.status for r in reports] == ["SUCCEEDED"] * 3
        self.content = warehouse_content(self.settings.require_warehouse().conninfo)
        assert len(self.content["fact_sales_order"]) == totesys.synthetic_sizes(SCALE)["sales_order"]


@pytest.fixture(scope="module")
def clean_run(spark, dbs) -> Reference:
    return Reference(spark, dbs)


@pytest.fixture(scope="module")
def reference(clean_run) -> dict[str, list[tuple[Any, ...]]]:
    return clean_run.content


@pytest.fixture
def restore_spark_conf(spark):
    """cli.main builds its session with getOrCreate: put back what it changes on the shared one."""
    saved = spark.conf.get("spark.sql.shuffle.partitions")
    yield
    spark.conf.set("spark.sql.shuffle.partitions", saved)


# --------------------------------------------------------------------------- SIGKILL at each point

# What must already be true at each point when the process dies (and so not read as complete).
HALF_WRITTEN = {
    "extract:mid": "some ingestion JSON, no manifest: the transform must not read it",
    "extract:before_commit": "a published manifest, the extract bookmark not committed",
    "transform:mid": "_latest states written, nothing published (_current.json absent)",
    "transform:before_commit": "facts, dimensions and _current.json published, bookmark not committed",
    "load:before_apply": "staging tables written, the warehouse untouched",
    "load:after_apply": "the warehouse transaction committed, the load bookmark not",
}


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_then_next_run_recovers_exactly(spark, dbs, reference, point) -> None:
    assert set(HALF_WRITTEN) == set(POINTS)
    settings = dbs.new_target(point.replace(":", "_"))
    warehouse = settings.require_warehouse().conninfo
    lake = Path(settings.lake_root)

    # The jobs before the one that dies run here (they succeed, as in the workflow); the job that
    # dies runs in its own process, as each job does on Glue.
    job = point.split(":")[0]
    if JOBS.index(job):
        run_workflow(spark, settings, JOBS[: JOBS.index(job)])
    killed = totes_process(settings, kill_at=point, job=job)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert password_of(settings) not in killed.stdout + killed.stderr

    # What the dead run left is never read as complete.
    ingestion = storage_for(settings.ingestion)
    manifests = ingestion.list_names(str(lake / "ingestion" / "_manifests"))
    published = read_json(storage_for(settings.processed), current_path(settings.processed))
    facts_loaded = count(warehouse, "fact_sales_order")
    if point == "extract:mid":
        assert (lake / "ingestion").is_dir() and manifests == []
    if point.startswith("extract"):
        assert published is None
    if point == "transform:mid":
        assert manifests and published is None
    if point in ("transform:before_commit", "load:before_apply"):
        assert published is not None
    assert facts_loaded == (len(reference["fact_sales_order"]) if point == "load:after_apply" else 0)
    died = [r for r in status.collect(settings)["recent_runs"] if r and r["status"] == "DIED"]
    assert [r["job"] for r in died] == [job]

    # The next run, started normally, catches up: the same warehouse as a clean run.
    reports = run_workflow(spark, settings)
    assert [r.status for r in reports] == ["SUCCEEDED"] * 3
    assert warehouse_content(warehouse) == reference
    assert duplicate_fact_versions(spark, settings) == dict.fromkeys(FACT_TABLES, 0)
    assert password_of(settings) not in lake_text(lake)
    if point == "extract:before_commit":  # at-least-once: the dead run's manifest was read too
        assert len(ingestion.list_names(str(lake / "ingestion" / "_manifests"))) == 2


# --------------------------------------------------------------------------- unreachable databases


def closed_port_url(settings_url: str) -> str:
    """The same URL on a port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = parse_pg_url("X", settings_url)
    return f"postgresql://{url.user}:{url.password}@127.0.0.1:{port}/{url.database}"


def test_unreachable_databases_fail_in_one_line_and_the_next_run_catches_up(
    spark, dbs, reference, capsys, monkeypatch, restore_spark_conf
) -> None:
    settings = dbs.new_target("unreachable")
    lake, warehouse = Path(settings.lake_root), settings.require_warehouse().conninfo
    password = password_of(settings)

    # 1. ToteSys unreachable at start: one line naming the setting, exit 1, nothing written.
    down = replace(settings, totesys=parse_pg_url("TOTESYS_URL", closed_port_url(settings.totesys.conninfo)))
    assert cli.main(["run", *cli_args(down)]) == cli.EXIT_FAILED
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "TOTESYS_URL" in err and "unreachable" in err
    assert "Traceback" not in err and "at org." not in err
    assert not (lake / "ingestion").exists()

    # 2. ToteSys lost in the middle of the extract: JSON of the tables before, no manifest, no commit.
    calls = []

    def flaky_reader(ctx, table):
        calls.append(table.name)
        if len(calls) == 4:
            raise SourceUnreachable(
                f"TOTESYS_URL ({settings.totesys.masked}) is unreachable: connection reset"
            )
        return local_reader(ctx, table)

    monkeypatch.setattr("shared.pipeline.local_reader", flaky_reader)
    with pytest.raises(JobFailed, match=r"extract failed: TOTESYS_URL .* unreachable"):
        run_workflow(spark, settings, ["extract"])
    monkeypatch.undo()
    assert (lake / "ingestion" / calls[0]).is_dir()
    assert storage_for(settings.ingestion).list_names(str(lake / "ingestion" / "_manifests")) == []
    assert read_json(storage_for(settings.state), f"{settings.state}/bookmarks/extract.json") is None

    # 3. The warehouse lost between transform and load: the load fails in one line, exit 1.
    run_workflow(spark, settings, ["extract", "transform"])
    wh_down = replace(
        settings, warehouse=parse_pg_url("WAREHOUSE_URL", closed_port_url(settings.warehouse.conninfo))
    )
    assert cli.main(["run", "--job", "load", *cli_args(wh_down)]) == cli.EXIT_FAILED
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "WAREHOUSE_URL" in err and "unreachable" in err
    assert password not in err
    assert not _table_exists(warehouse)  # the load never started: the warehouse is untouched

    # 4. The next normal run catches up exactly.
    reports = {r.job: r for r in run_workflow(spark, settings)}
    assert [r.status for r in reports.values()] == ["SUCCEEDED"] * 3
    assert warehouse_content(warehouse) == reference
    history = lake_text(lake / "_state")
    assert password not in history and "unreachable" in history  # the FAILED runs, masked


def _table_exists(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass('public.fact_sales_order')").fetchone()
    return bool(row and row[0])


# --------------------------------------------------------------------------- two runs at once

HOLD_LOCK = """
import sys, time
from shared.lake import run_lock
with run_lock(sys.argv[1], "totes run (extract, transform, load)"):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_a_second_run_refuses_while_one_holds_the_lake(dbs, tmp_path, capsys, restore_spark_conf) -> None:
    settings = dbs.new_target("locked")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, settings.state, "60"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert cli.main(["run", *cli_args(settings)]) == cli.EXIT_FAILED
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert "another run is already using this lake" in err and f"pid {holder.pid}" in err
        assert not (Path(settings.state) / "runs").exists()  # it did nothing at all
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    with run_lock(settings.state, "the next run"):  # a holder that dies frees the lock (flock)
        pass


# --------------------------------------------------------------------------- re-runs change nothing


def test_rerunning_any_job_that_succeeded_changes_nothing(spark, clean_run) -> None:
    settings = clean_run.settings
    lake, warehouse = Path(settings.lake_root), settings.require_warehouse().conninfo
    before = (warehouse_content(warehouse), lake_listing(lake))
    assert before[0] == clean_run.content
    for jobs in ([job] for job in JOBS):
        reports = run_workflow(spark, settings, jobs)
        assert [r.status for r in reports] == ["SUCCEEDED"]
        assert all(s.read == s.written == s.loaded == 0 for r in reports for s in r.tables.values()), jobs
    run_workflow(spark, settings)
    assert (warehouse_content(warehouse), lake_listing(lake)) == before


# --------------------------------------------------------------------------- late-committed rows

COPY_ORDER = """INSERT INTO sales_order (design_id, staff_id, counterparty_id, units_sold, unit_price,
    currency_id, agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id)
    SELECT design_id, staff_id, counterparty_id, %s, unit_price, currency_id, agreed_delivery_date,
    agreed_payment_date, agreed_delivery_location_id FROM sales_order WHERE sales_order_id = 1
    RETURNING sales_order_id, last_updated"""


@pytest.fixture(scope="module")
def late_dbs(pg, tmp_path_factory) -> Databases:
    """A ToteSys of its own: this scenario writes to it."""
    return Databases(pg, tmp_path_factory.mktemp("late"), "late")


def test_a_row_committed_late_behind_the_bookmark_is_caught_by_the_lookback(spark, late_dbs) -> None:
    settings = late_dbs.new_target("late", lookback_minutes=5)
    lake, warehouse = Path(settings.lake_root), settings.require_warehouse().conninfo
    run_workflow(spark, settings)

    # A long transaction takes its last_updated (localtimestamp = its start) now, commits later.
    with psycopg.connect(late_dbs.admin_url) as long_tx, psycopg.connect(late_dbs.admin_url) as other:
        late_id, late_ts = long_tx.execute(COPY_ORDER, [111]).fetchone()
        time.sleep(0.05)
        with other.transaction():
            quick_id, quick_ts = other.execute(COPY_ORDER, [222]).fetchone()
        assert late_ts < quick_ts
        extract = run_workflow(spark, settings, ["extract"])[0]  # reads only the quick one
        assert extract.tables["sales_order"].read == 1
        long_tx.commit()
    bookmark = read_json(storage_for(settings.state), f"{settings.state}/bookmarks/extract.json")
    assert bookmark["contexts"]["extract_sales_order"]["keys"] == [quick_id]

    # Glue's bookmark semantics alone (no window) never see it: its timestamp is behind the mark.
    blind = run_workflow(spark, replace(settings, lookback_minutes=0), ["extract"])[0]
    assert blind.tables["sales_order"].read == 0

    # With the window, the next run catches it, exactly once.
    reports = {r.job: r for r in run_workflow(spark, settings)}
    assert reports["extract"].tables["sales_order"].read == 1
    with psycopg.connect(warehouse) as conn:
        units = conn.execute(
            "SELECT sales_order_id, units_sold FROM fact_sales_order WHERE sales_order_id IN (%s, %s) ORDER BY 1",
            [late_id, quick_id],
        ).fetchall()
    assert units == [(late_id, 111), (quick_id, 222)]
    window = read_json(storage_for(settings.state), f"{settings.state}/bookmarks/extract.json")
    assert (
        late_id
        in window["contexts"]["extract_sales_order"]["window"][late_ts.strftime("%Y-%m-%d %H:%M:%S.%f")]
    )

    # And the window is not re-extracted: a run with no source change changes nothing.
    before = (warehouse_content(warehouse), lake_listing(lake))
    again = run_workflow(spark, settings)
    assert all(s.read == 0 for s in again[0].tables.values())
    assert (warehouse_content(warehouse), lake_listing(lake)) == before


# --------------------------------------------------------------------------- SIGKILL in an incremental run


@pytest.fixture(scope="module")
def incremental(spark, pg, tmp_path_factory) -> tuple[Settings, Settings]:
    """Two lakes over one ToteSys, both loaded once; then live-like changes; the first one runs
    again cleanly (the reference), the second is left for the crash."""
    dbs = Databases(pg, tmp_path_factory.mktemp("incremental"), "incr")
    reference, crashed = dbs.new_target("incr_reference"), dbs.new_target("incr_crashed")
    run_workflow(spark, reference)
    run_workflow(spark, crashed)
    totesys.simulate(dbs.admin_url, sales_orders=5, purchase_orders=3, paid_batch=True, edits=4, seed=11)
    run_workflow(spark, reference)
    return reference, crashed


def test_sigkill_before_an_incremental_transform_commits_loses_and_duplicates_nothing(
    spark, incremental
) -> None:
    """The transform appended new fact versions and published them, then died: the next transform
    finds those versions in the table but not in its committed state; they must still be loaded."""
    reference, crashed = incremental
    run_workflow(spark, crashed, ["extract"])
    killed = totes_process(crashed, kill_at="transform:before_commit", job="transform")
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    reports = run_workflow(spark, crashed)
    assert [r.status for r in reports] == ["SUCCEEDED"] * 3
    expected = warehouse_content(reference.require_warehouse().conninfo)
    assert warehouse_content(crashed.require_warehouse().conninfo) == expected
    assert duplicate_fact_versions(spark, crashed) == dict.fromkeys(FACT_TABLES, 0)
