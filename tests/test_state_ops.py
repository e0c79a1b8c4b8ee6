"""`totes reset`, `totes rewind` and `totes backfill` (shared/local/state_ops.py), as a user runs them.

The first tests need no database: a lake whose extract bookmarks are written by hand, the commands
run through `cli.main`, their refusals (a run holding the lake's lock, from another process; bad
arguments) and a crash while the document is written. The last three are real: a copy of the clean
reference run's lake and warehouse (tests/faults_support.py), the command, one workflow run, and the
warehouse compared with the independent expectation (tests/expected_star.py), with no fact version
twice and every dimension row the source did not change left as it was (same surrogate key, same
PostgreSQL row version, `xmin`). Three workflow runs, plus the shared reference run.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import expected_star
import psycopg
import pytest
from faults_support import REPO, Databases, cli_args, duplicate_fact_versions

from shared.config import Settings
from shared.contract.source import EXTRACT_ORDER, SOURCE_TABLES
from shared.contract.star import DIMENSION_KEYS, FACT_TABLES
from shared.jdbc.sources import TS_FORMAT
from shared.lake.documents import JobBookmarks, read_document, write_document
from shared.lake.layout import LakeLayout
from shared.lake.storage import LocalStorage
from shared.local import cli, state_ops
from shared.local.schedule import lake_is_locked
from shared.local.workflow import run_workflow

RUN_ID = "20261201T101500000000Z"
MARKS = {
    "sales_order": {"last_updated": "2024-11-15 10:00:00.000000", "keys": [7, 9]},
    "staff": {"last_updated": "2022-11-03 14:20:51.563000", "keys": [1, 2, 3]},
}


# --------------------------------------------------------------------------- without a database


@pytest.fixture
def lake(tmp_path) -> Settings:
    """A lake whose extract has committed bookmarks for sales_order and staff (no data)."""
    settings = Settings(lake_root=str(tmp_path / "lake"))
    contexts = {f"extract_{t}": mark for t, mark in MARKS.items()}
    committed = JobBookmarks("extract", RUN_ID, "2026-12-01T10:16:00.000+00:00", contexts)
    write_document(LocalStorage(), LakeLayout.of(settings).bookmark("extract"), committed)
    return settings


def bookmarks(settings: Settings) -> JobBookmarks:
    document = read_document(LocalStorage(), LakeLayout.of(settings).bookmark("extract"), JobBookmarks)
    assert document is not None
    return document


def document_text(settings: Settings) -> str:
    return Path(LakeLayout.of(settings).bookmark("extract")).read_text(encoding="utf-8")


def totes(settings: Settings, *args: str) -> int:
    return cli.main([*args, "--lake-root", settings.lake_root])


def test_each_command_prints_old_and_new_bookmark_and_changes_only_its_tables(lake, capsys) -> None:
    assert totes(lake, "reset", "--table", "staff") == 0
    out = capsys.readouterr().out
    assert "staff           last_updated 2022-11-03 14:20:51.563000 (3 keys taken) -> none" in out
    assert "re-extracts the whole table" in out
    after = bookmarks(lake)
    assert after.contexts == {"extract_sales_order": MARKS["sales_order"]}
    assert (after.run_id, after.committed_at) == (RUN_ID, "2026-12-01T10:16:00.000+00:00")

    assert totes(lake, "rewind", "--table", "sales_order", "--to", "2024-11-01T09:00:00+01:00") == 0
    out = capsys.readouterr().out
    # A time with a zone is taken to UTC, the zone ToteSys' last_updated is kept in.
    assert (
        "last_updated 2024-11-15 10:00:00.000000 (2 keys taken) -> "
        "last_updated 2024-11-01 08:00:00.000000 (0 keys taken)"
    ) in out
    assert bookmarks(lake).contexts["extract_sales_order"] == {
        "last_updated": "2024-11-01 08:00:00.000000",
        "keys": [],
    }

    assert totes(lake, "backfill", "--since", "2024-01-01", "--until", "2024-02-01") == 0
    out = capsys.readouterr().out
    window = {"since": "2024-01-01 00:00:00.000000", "until": "2024-02-01 00:00:00.000000"}
    assert "backfill [2024-01-01 00:00:00.000000, 2024-02-01 00:00:00.000000)" in out
    assert "staff           unchanged: no bookmark: the next run extracts the whole table" in out
    rewound = bookmarks(lake).contexts["extract_sales_order"]
    assert rewound == {"last_updated": "2024-11-01 08:00:00.000000", "keys": [], "backfill": [window]}
    # The same window again adds nothing; a window after the bookmark is read by the next run anyway.
    assert totes(lake, "backfill", "--since", "2024-01-01", "--until", "2024-02-01") == 0
    assert totes(lake, "backfill", "--since", "2024-11-10", "--table", "sales_order") == 0
    assert "the window is after the bookmark" in capsys.readouterr().out
    assert bookmarks(lake).contexts["extract_sales_order"] == rewound
    # No temporary file of the atomic writes is left beside the document.
    assert sorted(p.name for p in Path(LakeLayout.of(lake).bookmarks).iterdir()) == ["extract.json"]


def test_a_crash_while_writing_leaves_the_document_as_it_was(lake, monkeypatch, capsys) -> None:
    before = document_text(lake)

    def crash(source: str, target: str) -> None:
        raise OSError("disk unplugged")

    monkeypatch.setattr("shared.lake.storage.os.replace", crash)
    assert totes(lake, "reset", "--table", "sales_order") == cli.EXIT_FAILED
    assert "disk unplugged" in capsys.readouterr().err
    assert document_text(lake) == before
    assert sorted(p.name for p in Path(LakeLayout.of(lake).bookmarks).iterdir()) == ["extract.json"]


def test_the_command_holds_the_lake_lock_while_it_changes_the_bookmarks(lake, monkeypatch) -> None:
    seen: list[bool] = []
    write = state_ops.write_document

    def write_and_probe(*args: Any) -> None:
        seen.append(lake_is_locked(lake))  # what `totes schedule` and `totes run` would meet
        write(*args)

    monkeypatch.setattr(state_ops, "write_document", write_and_probe)
    assert totes(lake, "reset", "--table", "sales_order") == 0
    assert seen == [True]
    assert not lake_is_locked(lake)


HOLD_LOCK = """
import sys, time
from shared.lake.storage import run_lock
with run_lock(sys.argv[1], "totes run (extract, transform, load)"):
    print("held", flush=True)
    time.sleep(120)
"""


def test_refused_while_another_process_holds_the_lake_lock(lake, capsys) -> None:
    before = document_text(lake)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, LakeLayout.of(lake).lock],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        for command in (
            ["reset", "--table", "sales_order"],
            ["rewind", "--table", "sales_order", "--to", "2024-11-01"],
            ["backfill", "--since", "2024-01-01"],
        ):
            assert totes(lake, *command) == cli.EXIT_FAILED
            err = capsys.readouterr().err
            assert f"totes {command[0]}: refused, nothing changed" in err
            assert "another run is already using this lake (totes run (extract, transform, load), pid" in err
            assert document_text(lake) == before
    finally:
        holder.kill()
        holder.wait()
    assert totes(lake, "reset", "--table", "sales_order") == 0  # the lock went with its holder


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (
            ["reset", "--table", "sales_orders"],
            "unknown table 'sales_orders' (did you mean 'sales_order'?); the ToteSys tables are: "
            + ", ".join(sorted(SOURCE_TABLES)),
        ),
        (
            ["backfill", "--since", "2024-01-01", "--table", "nope"],
            "unknown table 'nope'; the ToteSys tables",
        ),
        (["rewind", "--table", "staff", "--to", "last tuesday"], "--to 'last tuesday' is not a date or time"),
        (["rewind", "--table", "sales_order", "--to", "2099-01-01"], "is in the future"),
        (
            ["rewind", "--table", "sales_order", "--to", "2024-11-15T10:00:01"],
            "--to 2024-11-15 10:00:01.000000 is later than the bookmark of sales_order "
            "(2024-11-15 10:00:00.000000): a rewind only moves a bookmark back",
        ),
        (["rewind", "--table", "payment", "--to", "2024-01-01"], "payment has no extract bookmark"),
        (["backfill", "--since", "2024-02-01", "--until", "2024-01-01"], "must be later than --since"),
        (["backfill", "--since", "2099-01-01"], "--since 2099-01-01 00:00:00.000000 is in the future"),
    ],
)
def test_bad_arguments_are_refused_naming_what_is_wrong_and_change_nothing(
    lake, capsys, command, message
) -> None:
    before = document_text(lake)
    assert totes(lake, *command) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("totes: configuration error: ") and message in err, err
    assert document_text(lake) == before


def test_a_lake_on_s3_is_refused_with_the_way_to_do_it_on_glue(capsys) -> None:
    assert cli.main(["reset", "--table", "staff", "--lake-root", "s3://totes-processed/"]) == cli.EXIT_USAGE
    assert "Glue's own job bookmarks: see docs/deploying.md" in capsys.readouterr().err


# --------------------------------------------------------------------------- real runs


def dimension_rows(url: str) -> dict[str, dict[Any, tuple[Any, ...]]]:
    """Every dimension row by its key, with its PostgreSQL row version (`xmin`: changes when the row is
    rewritten, even with the same values)."""
    out: dict[str, dict[Any, tuple[Any, ...]]] = {}
    with psycopg.connect(url) as conn:
        for table, key in DIMENSION_KEYS.items():
            rows = conn.execute(f'SELECT "{key}", xmin::text, t.* FROM "{table}" t').fetchall()
            out[table] = {row[0]: row[1:] for row in rows}
    return out


def fact_rows(url: str) -> dict[str, set[tuple[Any, ...]]]:
    """Every fact row, its serial record id included."""
    with psycopg.connect(url) as conn:
        return {fact: set(conn.execute(f'SELECT * FROM "{fact}"').fetchall()) for fact in FACT_TABLES}


def extract_marks(settings: Settings) -> dict[str, Any]:
    return dict(bookmarks(settings).contexts)


def source_count(url: str, table: str, since: datetime | None = None) -> int:
    with psycopg.connect(url) as conn:
        where, params = ("WHERE last_updated >= %s", [since]) if since else ("", [])
        row = conn.execute(f'SELECT count(*) FROM "{table}" {where}', params).fetchone()
    assert row is not None
    return int(row[0])


def extract_reads(reports: list[Any]) -> dict[str, int]:
    (extract,) = [r for r in reports if r.job == "extract"]
    return {table: stats.read for table, stats in extract.tables.items()}


def status_text(settings: Settings, capsys) -> str:
    capsys.readouterr()
    assert cli.main(["status", *cli_args(settings)]) == 0
    return str(capsys.readouterr().out)


def assert_clean(spark, settings: Settings, expected: dict[str, Any]) -> None:
    warehouse = settings.require_warehouse().conninfo
    assert expected_star.warehouse_star(warehouse) == expected
    assert set(duplicate_fact_versions(spark, settings).values()) == {0}


def test_reset_re_extracts_whole_tables_and_the_warehouse_is_unchanged(
    spark, dbs, clean_run, capsys, restore_spark_conf
) -> None:
    settings = dbs.new_target("reset", clean_run.after("load"), catalog=spark)
    warehouse = settings.require_warehouse().conninfo
    dims, facts, marks = dimension_rows(warehouse), fact_rows(warehouse), extract_marks(settings)
    tables = ["sales_order", "staff", "address"]

    assert totes(settings, "reset", *(a for t in tables for a in ("--table", t))) == 0
    out = capsys.readouterr().out
    for table in tables:
        assert f"{table:<16}{state_ops.describe(marks[f'extract_{table}'])} -> none" in out
    shown = status_text(settings, capsys)
    for table in tables:
        assert f"extract_{table:<20} none: the next run extracts the whole table" in shown

    reports = run_workflow(spark, settings)
    reads = extract_reads(reports)
    for table in tables:  # read whole again; the others had nothing new
        assert reads[table] == source_count(dbs.admin_url, table) > 0
    assert {t: n for t, n in reads.items() if t not in tables} == dict.fromkeys(
        set(EXTRACT_ORDER) - set(tables), 0
    )
    assert_clean(spark, settings, clean_run.expected)
    assert (
        dimension_rows(warehouse) == dims
    )  # dim_staff, dim_location, dim_counterparty rebuilt: no row rewritten
    assert fact_rows(warehouse) == facts
    assert extract_marks(settings) == marks  # back where the bookmarks were


def test_rewind_re_extracts_from_a_time_and_the_warehouse_is_unchanged(
    spark, dbs, clean_run, capsys, restore_spark_conf
) -> None:
    settings = dbs.new_target("rewind", clean_run.after("load"), catalog=spark)
    warehouse = settings.require_warehouse().conninfo
    dims, facts, marks = dimension_rows(warehouse), fact_rows(warehouse), extract_marks(settings)
    to = datetime(2024, 6, 1)

    assert (
        totes(settings, "rewind", "--table", "sales_order", "--table", "payment", "--to", "2024-06-01") == 0
    )
    out = capsys.readouterr().out
    assert f"-> last_updated {to.strftime(TS_FORMAT)} (0 keys taken)" in out
    assert f"extract_payment{'':<13} last_updated {to.strftime(TS_FORMAT)} (0 keys)" in status_text(
        settings, capsys
    )

    reads = extract_reads(run_workflow(spark, settings))
    since = to - timedelta(minutes=settings.lookback_minutes)
    for table in ("sales_order", "payment"):
        assert reads[table] == source_count(dbs.admin_url, table, since) > 0
        assert reads[table] < source_count(dbs.admin_url, table)
    assert_clean(spark, settings, clean_run.expected)
    assert dimension_rows(warehouse) == dims
    assert fact_rows(warehouse) == facts
    assert extract_marks(settings) == marks


def test_backfill_re_extracts_a_window_catching_a_change_behind_the_bookmarks(
    spark, pg, dbs, clean_run, capsys, restore_spark_conf
) -> None:
    # A ToteSys of its own (a clone of the reference's), with a change committed late, behind the
    # bookmark, with a timestamp the look-back window does not reach: a sales order's units (a new
    # fact version, newer than the one extracted). The window also holds every row of the
    # dimension sources (all written at the launch) and the first orders, all extracted before.
    source = Databases(pg, dbs.tmp, "backfill", template=dbs.source_db)
    settings = source.new_target("backfill", clean_run.after("load"), catalog=spark)
    warehouse = settings.require_warehouse().conninfo
    dims, facts, marks = dimension_rows(warehouse), fact_rows(warehouse), extract_marks(settings)
    expectation = expected_star.Expectation(dbs.admin_url)
    with psycopg.connect(source.admin_url) as conn:
        conn.execute(
            "UPDATE sales_order SET units_sold = units_sold + 1, last_updated = created_at + interval '1 minute' "
            "WHERE sales_order_id = (SELECT min(sales_order_id) FROM sales_order)"
        )
    since, until = datetime(2022, 11, 1), datetime(2022, 11, 10)

    assert totes(settings, "backfill", "--since", "2022-11-01", "--until", "2022-11-10") == 0
    out = capsys.readouterr().out
    assert out.count("backfill [2022-11-01 00:00:00.000000, 2022-11-10 00:00:00.000000)") == len(
        EXTRACT_ORDER
    )
    assert "backfill pending [2022-11-01 00:00:00.000000, 2022-11-10 00:00:00.000000)" in status_text(
        settings, capsys
    )

    reads = extract_reads(run_workflow(spark, settings))
    for table in EXTRACT_ORDER:  # the window again, whatever was taken before; nothing new after it
        with psycopg.connect(source.admin_url) as conn:
            row = conn.execute(
                f'SELECT count(*) FROM "{table}" WHERE last_updated >= %s AND last_updated < %s',
                [since, until],
            ).fetchone()
        assert row is not None and reads[table] == row[0], table
    assert reads["staff"] == source_count(source.admin_url, "staff")  # all staff date from the launch

    assert_clean(spark, settings, expectation.seen(source.admin_url).star)
    assert dimension_rows(warehouse) == dims  # all re-read, none rewritten
    new_facts = {fact: fact_rows(warehouse)[fact] - facts[fact] for fact in FACT_TABLES}
    assert {fact: len(rows) for fact, rows in new_facts.items()} == {
        **dict.fromkeys(FACT_TABLES, 0),
        "fact_sales_order": 1,
    }
    assert all(facts[fact] <= fact_rows(warehouse)[fact] for fact in FACT_TABLES)
    assert extract_marks(settings) == marks  # progress kept, the window done
