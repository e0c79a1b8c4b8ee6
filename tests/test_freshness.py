"""`totes status` per source table, over a real pipeline run: the extract's committed bookmark,
ToteSys' newest change, the warehouse's, and freshness against the contract's 30 minutes
(shared/jobs/freshness.py defines it, shared/local/freshness.py shows it).

The run is the session's reference (`clean_run`, tests/faults_support.py): this module works on a
copy of its lake and warehouse, over a clone of its ToteSys that the tests write to.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from faults_support import Databases, cli_args

from shared.config import Settings, parse_pg_url
from shared.contract.source import SOURCE_TABLES
from shared.jobs import freshness as F
from shared.jobs import load
from shared.lake.documents import write_document
from shared.lake.layout import LakeLayout
from shared.lake.storage import LocalStorage
from shared.local import cli, status
from shared.runtime.context import JobReport, LocalJobContext

FACTS = {
    "sales_order": "fact_sales_order",
    "purchase_order": "fact_purchase_order",
    "payment": "fact_payment",
}


@pytest.fixture(scope="module")
def own(pg, dbs, tmp_path_factory) -> Databases:
    return Databases(pg, tmp_path_factory.mktemp("freshness"), "fresh", template=dbs.source_db)


@pytest.fixture(scope="module")
def loaded(own, clean_run) -> Settings:
    """A copy of the reference's lake and warehouse after its load, reading the clone `own`."""
    return own.new_target("fresh", state=clean_run.after("load"))


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def source_max(url: str) -> dict[str, datetime]:
    with psycopg.connect(url) as conn:
        return {
            t: conn.execute(f'SELECT max(last_updated) FROM "{t}"').fetchone()[0]  # type: ignore[index]
            for t in SOURCE_TABLES
        }


def fact_max(url: str) -> dict[str, datetime]:
    with psycopg.connect(url) as conn:
        return {
            source: conn.execute(
                f'SELECT max(last_updated_date + last_updated_time) FROM "{fact}"'
            ).fetchone()[0]  # type: ignore[index]
            for source, fact in FACTS.items()
        }


def parsed(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def test_after_a_clean_run_every_table_is_held_and_fresh(loaded, own) -> None:
    layout = LakeLayout.of(loaded)
    extract = json.loads(Path(layout.bookmark("extract")).read_text(encoding="utf-8"))
    committed = {t: extract["contexts"][f"extract_{t}"]["last_updated"] for t in SOURCE_TABLES}
    newest = source_max(own.admin_url)
    in_facts = fact_max(loaded.require_warehouse().conninfo)

    started = time.monotonic()
    doc = status.collect(loaded)["freshness"]
    assert time.monotonic() - started < 5  # no Spark: a few SQL statements and small documents

    assert doc["errors"] == {"totesys": None, "warehouse": None}
    assert doc["held_through_extract_run"] == extract["run_id"]  # the extract the load holds
    assert list(doc["tables"]) == list(SOURCE_TABLES)
    for table, entry in doc["tables"].items():
        assert parsed(entry["bookmark"]) == datetime.fromisoformat(committed[table]), table
        # the extract took everything there was: its bookmark is ToteSys' newest change
        assert parsed(entry["source_newest"]) == newest[table] == parsed(entry["bookmark"]), table
        if table in FACTS:
            assert entry["held_by"] == f"{FACTS[table]}.last_updated_date + last_updated_time"
            assert parsed(entry["warehouse_newest"]) == in_facts[table] == newest[table], table
        else:
            assert entry["held_by"] == f"extract run {extract['run_id']}"
            assert parsed(entry["warehouse_newest"]) == newest[table], table
        assert (entry["oldest_waiting"], entry["freshness_minutes"], entry["stale"]) == (None, 0.0, False)
    assert doc["tables"]["address"]["feeds"] == ["dim_location", "dim_counterparty"]
    assert (doc["overall_minutes"], doc["stale"]) == (0.0, [])


def test_a_change_after_the_run_waits_and_goes_stale_after_30_minutes(loaded, own) -> None:
    before = source_max(own.admin_url)
    changed_at = utc_now().replace(microsecond=0)
    with psycopg.connect(own.admin_url) as conn:  # written after the run's extract started
        conn.execute(
            "UPDATE sales_order SET last_updated = %s WHERE sales_order_id = "
            "(SELECT min(sales_order_id) FROM sales_order)",
            [changed_at],
        )
        conn.execute("UPDATE currency SET last_updated = %s WHERE currency_id = 1", [changed_at])
    layout_bookmarks = status.read_status(loaded).contexts
    marks = {
        t: m.last_updated for t in SOURCE_TABLES if (m := layout_bookmarks["extract"].get(f"extract_{t}"))
    }
    loaded_run = layout_bookmarks["load"]["load_watermark"].transform_run_id

    from shared.local.freshness import read_freshness

    soon = read_freshness(loaded, marks, loaded_run, now=changed_at + timedelta(minutes=10))
    late = read_freshness(loaded, marks, loaded_run, now=changed_at + timedelta(minutes=45))
    for info, minutes in ((soon, 10.0), (late, 45.0)):
        by_table = {t.table: t for t in info.tables}
        for table in ("sales_order", "currency"):  # behind: ToteSys has a change the warehouse lacks
            entry = by_table[table]
            assert entry.source_newest == changed_at and entry.warehouse_newest == before[table], table
            assert (entry.oldest_waiting, entry.minutes) == (changed_at, minutes), table
            assert entry.stale is (minutes > 30), table
        assert all(t.minutes == 0.0 for t in info.tables if t.table not in ("sales_order", "currency"))
        assert F.overall_minutes(info.tables) == minutes
    assert late.to_json()["stale"] == ["currency", "sales_order"]  # in the contract's order
    assert soon.to_json()["stale"] == []


def test_status_text_shows_what_its_json_says(loaded, capsys) -> None:
    assert cli.main(["status", "--json", *cli_args(loaded)]) == 0
    doc = json.loads(capsys.readouterr().out)["freshness"]
    assert cli.main(["status", *cli_args(loaded)]) == 0
    text = capsys.readouterr().out.splitlines()
    # the section's rows only: the row-count table also starts lines with table names
    rows = {t: line for line in text for t in SOURCE_TABLES if line.startswith(f"  {t:<15}")}
    assert list(rows) == list(SOURCE_TABLES)
    for table, entry in doc["tables"].items():
        cells = rows[table].split()
        shown = " ".join(cells[:7])  # table, then three timestamps of two words each
        assert shown == " ".join(
            [table, entry["bookmark"], entry["source_newest"], entry["warehouse_newest"]]
        ), table
        assert abs(float(cells[7]) - entry["freshness_minutes"]) <= 0.2, table  # a moment later
        assert ("STALE" in cells) is entry["stale"], table
        assert f"({entry['held_by']}; feeds {', '.join(entry['feeds'])})" in rows[table]


def test_unreachable_databases_are_one_line_each_and_freshness_unknown(tmp_path) -> None:
    closed = "postgresql://etl:hunter2@127.0.0.1:9/{}"
    settings = Settings(
        lake_root=str(tmp_path / "lake"),
        totesys=parse_pg_url("TOTESYS_URL", closed.format("totesys")),
        warehouse=parse_pg_url("WAREHOUSE_URL", closed.format("warehouse")),
    )
    doc = status.collect(settings)["freshness"]
    assert set(doc["errors"]) == {"totesys", "warehouse"}
    for message in doc["errors"].values():
        assert message.startswith("unreachable: ") and "\n" not in message and "hunter2" not in message
    assert all(e["freshness_minutes"] is None and e["stale"] is None for e in doc["tables"].values())
    assert doc["overall_minutes"] is None
    shown = status.render(settings)
    assert f"  totesys: {doc['errors']['totesys']}" in shown.splitlines()
    assert "overall unknown" in shown


class PublishingContext(LocalJobContext):
    """The local context, publishing like GlueJobContext (into `metrics`, not CloudWatch)."""

    publishes_metrics = True


def test_the_load_measures_over_jdbc_what_status_shows_and_publishes_it(spark, loaded) -> None:
    """What the load publishes on Glue (shared/jobs/load.py `publish_freshness`, over its JDBC
    sessions) is what `totes status` shows (over psycopg), table by table."""
    contexts = status.read_status(loaded).contexts
    loaded_run = contexts["load"]["load_watermark"].transform_run_id
    ctx = PublishingContext("load", spark, loaded)
    measured = load.publish_freshness(ctx, loaded_run)
    assert measured is not None
    shown = status.collect(loaded)["freshness"]["tables"]
    for table in measured:
        entry = shown[table.table]
        assert F.iso(table.source_newest) == entry["source_newest"], table.table
        assert F.iso(table.warehouse_newest) == entry["warehouse_newest"], table.table
        assert F.iso(table.oldest_waiting) == entry["oldest_waiting"], table.table
    by_table = {dict(m.dimensions).get("Table"): m for m in ctx.metrics}
    assert set(by_table) == {None, *SOURCE_TABLES}  # overall, and one per table
    assert {m.name for m in ctx.metrics} == {F.METRIC_NAME}
    assert by_table[None].value == round(F.overall_minutes(measured), 3)
    assert all(by_table[t.table].value == round(t.minutes, 3) for t in measured)


def test_locally_the_load_measures_nothing(spark, loaded) -> None:
    ctx = LocalJobContext("load", spark, loaded)
    assert load.publish_freshness(ctx, "20261122T000000000000Z") is None and ctx.metrics == []


def test_a_load_that_cannot_measure_says_so_in_one_line_and_does_not_fail(spark, loaded, capsys) -> None:
    unreachable = replace(
        loaded, totesys=parse_pg_url("TOTESYS_URL", "postgresql://etl:hunter2@127.0.0.1:9/x")
    )
    ctx = PublishingContext("load", spark, unreachable)
    assert load.publish_freshness(ctx, "20261122T000000000000Z") is None and ctx.metrics == []
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("totes load: freshness not published: ") and "hunter2" not in line


def test_the_warehouse_holds_the_newest_succeeded_extract_before_the_loaded_transform(tmp_path) -> None:
    layout = LakeLayout.of(Settings(lake_root=str(tmp_path / "lake")))
    store = LocalStorage()
    runs = [
        ("20261202T040000000000Z", "extract", "SUCCEEDED"),
        ("20261202T040100000000Z", "transform", "SUCCEEDED"),
        ("20261202T042000000000Z", "extract", "SUCCEEDED"),  # nothing new: no manifest, still read all
        ("20261202T044000000000Z", "extract", "FAILED"),
        ("20261202T044100000000Z", "transform", "SUCCEEDED"),
        ("20261202T050000000000Z", "extract", "SUCCEEDED"),  # after the transform the load holds
    ]
    for run_id, job, state in runs:
        write_document(store, layout.run_record(run_id, job), JobReport(job, run_id, status=state))
    assert F.held_through(layout, store, "20261202T044100000000Z") == "20261202T042000000000Z"
    assert F.held_through(layout, store, "20261202T040100000000Z") == "20261202T040000000000Z"
    assert F.held_through(layout, store, "") is None  # no load yet: nothing is held
    assert F.run_start("20261202T042000123456Z") == datetime(2026, 12, 2, 4, 20, 0, 123456)


def test_a_fact_version_the_warehouse_holds_is_not_waiting_even_after_the_extract_started(own) -> None:
    """A change the extract read while it ran is in the fact: held, though newer than the cut."""
    changed_at = utc_now().replace(microsecond=0) + timedelta(seconds=1)
    with psycopg.connect(own.admin_url) as conn:
        conn.execute(
            "UPDATE purchase_order SET last_updated = %s WHERE purchase_order_id = "
            "(SELECT min(purchase_order_id) FROM purchase_order)",
            [changed_at],
        )
    cut_run = (changed_at - timedelta(minutes=5)).strftime("%Y%m%dT%H%M%S%fZ")
    with psycopg.connect(own.reader_url) as conn:

        def query(sql: str) -> list[tuple]:
            return conn.execute(sql).fetchall()

        later = changed_at + timedelta(minutes=40)
        waiting = {t.table: t for t in F.source_freshness(query, {"purchase_order": None}, cut_run, later)}
        held = {t.table: t for t in F.source_freshness(query, {"purchase_order": changed_at}, cut_run, later)}
    assert (waiting["purchase_order"].oldest_waiting, waiting["purchase_order"].minutes) == (changed_at, 40.0)
    assert waiting["purchase_order"].stale
    assert (held["purchase_order"].oldest_waiting, held["purchase_order"].minutes) == (None, 0.0)
    assert held["purchase_order"].warehouse_newest == changed_at
