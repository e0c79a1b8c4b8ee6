"""Faults, for real: unreachable databases, two runs at once, re-runs, and a row committed late by a
long transaction. Each scenario runs against the embedded PostgreSQL and a real lake, and where a
run fails, the next one must catch up with the warehouse SPEC.md asks for, computed from ToteSys
with plain SQL (tests/expected_star.py), which is what a clean reference run gives. The SIGKILL
scenarios are in tests/test_faults.py; docs/reliability.md maps each row of the fault matrix to
the test that proves it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import expected_star
import psycopg
import pytest
from faults_support import (
    REPO,
    Databases,
    cli_args,
    lake_listing,
    lake_text,
    password_of,
    warehouse_content,
)

from shared.config import parse_pg_url
from shared.jdbc.sources import SourceUnreachable
from shared.lake.layout import LakeLayout
from shared.lake.storage import read_json, run_lock, storage_for
from shared.local import cli
from shared.local.workflow import JOBS, JobFailed, LocalReader, run_workflow

pytestmark = pytest.mark.integration

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
    spark, dbs, expected, capsys, monkeypatch, restore_spark_conf
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
    read = LocalReader.__call__

    def flaky_reader(reader, ctx, table):
        calls.append(table.name)
        if len(calls) == 4:
            raise SourceUnreachable(
                f"TOTESYS_URL ({settings.totesys.masked}) is unreachable: connection reset"
            )
        return read(reader, ctx, table)

    monkeypatch.setattr(LocalReader, "__call__", flaky_reader)
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
    assert expected_star.warehouse_star(warehouse) == expected
    history = lake_text(lake / "_state")
    assert password not in history and "unreachable" in history  # the FAILED runs, masked


def _table_exists(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass('public.fact_sales_order')").fetchone()
    return bool(row and row[0])


# --------------------------------------------------------------------------- two runs at once

HOLD_LOCK = """
import sys, time
from shared.lake.storage import run_lock
with run_lock(sys.argv[1], "totes run (extract, transform, load)"):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_a_second_run_refuses_while_one_holds_the_lake(dbs, tmp_path, capsys, restore_spark_conf) -> None:
    settings = dbs.new_target("locked")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, LakeLayout.of(settings).lock, "60"],
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
    with run_lock(LakeLayout.of(settings).lock, "the next run"):  # a holder that dies frees the lock (flock)
        pass


# --------------------------------------------------------------------------- re-runs change nothing


def test_rerunning_any_job_that_succeeded_changes_nothing(spark, dbs, clean_run, expected) -> None:
    # The lake and warehouse of a clean run (a copy of the reference's: it must stay as it is).
    settings = dbs.new_target("rerun", state=clean_run.after("load"))
    lake, warehouse = Path(settings.lake_root), settings.require_warehouse().conninfo
    before = (warehouse_content(warehouse), lake_listing(lake))
    assert before[0] == clean_run.content and expected_star.warehouse_star(warehouse) == expected
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
def late_dbs(pg, dbs, tmp_path_factory) -> Databases:
    """A ToteSys of its own (a clone of the faults one): this scenario writes to it."""
    return Databases(pg, tmp_path_factory.mktemp("late"), "late", template=dbs.source_db)


def test_a_row_committed_late_behind_the_bookmark_is_caught_by_the_lookback(
    spark, late_dbs, clean_run
) -> None:
    # A deployment that has run once with a 5-minute window: the reference's lake, catalog and
    # warehouse (made with that window), over a clone of the ToteSys they were made from.
    assert clean_run.settings.lookback_minutes == 5
    settings = late_dbs.new_target("late", state=clean_run.after("load"), catalog=spark, lookback_minutes=5)
    lake, warehouse = Path(settings.lake_root), settings.require_warehouse().conninfo

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
