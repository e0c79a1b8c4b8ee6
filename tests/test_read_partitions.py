"""The extract's read plan: parallel key ranges for a big first read, a query-only probe for no change.

Pure planning functions are tested on tables of inputs and outputs; the reads themselves by round
trip through a real PostgreSQL: a partitioned read returns exactly the rows of a plain one, and the
probe says "unchanged" exactly when the bookmark has taken every version.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from chispa import assert_df_equality

from shared.config import parse_pg_url
from shared.contract.source import SOURCE_TABLES
from shared.jdbc.sources import (
    NotAllowListed,
    contract_columns,
    key_range,
    partitioned_read_options,
    read_increment,
    read_table,
    source_columns_if_unchanged,
    unchanged_probe_sql,
)
from shared.local import totesys


@pytest.mark.parametrize(
    ("low", "high", "per_partition", "expected"),
    [
        (None, None, 100, {}),  # empty table: one plain query
        (1, 100, 100, {}),  # fits in one range
        (1, 101, 100, {"lowerBound": "1", "upperBound": "102", "numPartitions": "2"}),
        (1, 1_000, 100, {"lowerBound": "1", "upperBound": "1001", "numPartitions": "10"}),
        (1, 1_000_000, 100, {"lowerBound": "1", "upperBound": "1000001", "numPartitions": "16"}),  # capped
        (500, 749, 100, {"lowerBound": "500", "upperBound": "750", "numPartitions": "3"}),
    ],
)
def test_partitioned_read_options(
    low: int | None, high: int | None, per_partition: int, expected: dict[str, str]
) -> None:
    options = partitioned_read_options("payment_id", low, high, rows_per_partition=per_partition)
    assert options == ({"partitionColumn": "payment_id", **expected} if expected else {})


def test_probe_sql_renders_parsed_values_only() -> None:
    bookmark = {"last_updated": "2024-11-15 07:55:11.885000", "keys": [3, 1]}
    text = unchanged_probe_sql(SOURCE_TABLES["payment"], bookmark)
    assert text == (
        "SELECT * FROM public.\"payment\" WHERE last_updated >= TIMESTAMP '2024-11-15 07:55:11.885000' "
        "AND (\"payment_id\", last_updated) NOT IN (SELECT * FROM unnest('{1,3}'::integer[], "
        '\'{"2024-11-15 07:55:11.885000","2024-11-15 07:55:11.885000"}\'::timestamp[])) LIMIT 1'
    )
    # With a look-back window: the read starts earlier, and skips the window's versions already taken.
    windowed = {**bookmark, "window": {"2024-11-15 07:50:00.000000": [7], "2024-11-15 07:00:00.000000": [8]}}
    text = unchanged_probe_sql(SOURCE_TABLES["payment"], windowed, timedelta(minutes=10))
    assert text == (
        "SELECT * FROM public.\"payment\" WHERE last_updated >= TIMESTAMP '2024-11-15 07:45:11.885000' "
        "AND (\"payment_id\", last_updated) NOT IN (SELECT * FROM unnest('{7,1,3}'::integer[], "
        '\'{"2024-11-15 07:50:00.000000","2024-11-15 07:55:11.885000","2024-11-15 07:55:11.885000"}\''
        "::timestamp[])) LIMIT 1"
    )
    with pytest.raises(ValueError, match="invalid literal"):
        unchanged_probe_sql(SOURCE_TABLES["payment"], {**bookmark, "keys": ["1); DROP TABLE x; --"]})
    with pytest.raises(ValueError):
        unchanged_probe_sql(SOURCE_TABLES["payment"], {"last_updated": "now'; --"})


def test_probe_refuses_tables_outside_the_contract() -> None:
    class Fake:
        name = "_prisma_migrations"
        primary_key = "id"

    with pytest.raises(NotAllowListed):
        unchanged_probe_sql(Fake(), {"last_updated": "2024-11-15 07:55:11.885000"})  # type: ignore[arg-type]


@pytest.mark.integration
def test_partitioned_read_returns_exactly_the_plain_read(spark, fresh_db: str) -> None:
    totesys.seed_synthetic(fresh_db, scale=0.2)
    url = parse_pg_url("TOTESYS_URL", fresh_db)
    table = SOURCE_TABLES["payment"]
    low, high = key_range(spark, url, table)
    assert (low, high) == (1, 3167)
    options = partitioned_read_options(table.primary_key, low, high, rows_per_partition=1_000)
    split = read_table(spark, url, "payment", **options)
    assert split.rdd.getNumPartitions() == 4
    plain = contract_columns(table, read_table(spark, url, "payment"))
    assert_df_equality(contract_columns(table, split), plain, ignore_row_order=True, ignore_nullable=True)


@pytest.mark.integration
def test_probe_sees_exactly_the_versions_the_bookmark_has_not_taken(spark, fresh_db: str) -> None:
    totesys.seed_synthetic(fresh_db, scale=0.05)
    url = parse_pg_url("TOTESYS_URL", fresh_db)
    table = SOURCE_TABLES["sales_order"]
    first = read_increment(spark, url, table, None)
    assert first.bookmark is not None
    first.release()
    columns = source_columns_if_unchanged(spark, url, table, first.bookmark)
    assert columns is not None and set(table.column_names) == set(columns)
    # Nothing new: the next read is empty and keeps the bookmark, without a Spark read.
    again = read_increment(spark, url, table, first.bookmark)
    assert again.rows is None and again.count == 0 and again.bookmark is None
    # A key at the bookmark instant that was not taken is a change, as is anything later.
    partial = {**first.bookmark, "keys": first.bookmark["keys"][:-1]}
    assert source_columns_if_unchanged(spark, url, table, partial) is None
    totesys.simulate(fresh_db, sales_orders=1, purchase_orders=0, seed=1)
    assert source_columns_if_unchanged(spark, url, table, first.bookmark) is None
    later = read_increment(spark, url, table, first.bookmark)
    assert later.rows.count() == 1
    # With a look-back window, the versions the bookmark remembers in the window are not a change.
    window = timedelta(days=3650)  # the whole history is inside the window
    full = read_increment(spark, url, table, None, lookback=window)
    assert full.bookmark is not None and full.bookmark.get("window")
    assert source_columns_if_unchanged(spark, url, table, full.bookmark, window) is not None
    forgetful = {**full.bookmark, "window": dict(list(full.bookmark["window"].items())[1:])}
    assert source_columns_if_unchanged(spark, url, table, forgetful, window) is None
    assert read_increment(spark, url, table, forgetful, lookback=window).rows.count() == 1
    assert later.bookmark is not None and later.bookmark["last_updated"] > first.bookmark["last_updated"]
    assert isinstance(datetime.strptime(later.bookmark["last_updated"], "%Y-%m-%d %H:%M:%S.%f"), datetime)


@pytest.mark.integration
def test_the_bookmark_is_the_same_whether_the_keys_come_to_the_driver_or_spark_sums_them(
    spark, fresh_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.jdbc import sources

    totesys.seed_synthetic(fresh_db, scale=0.05)
    url = parse_pg_url("TOTESYS_URL", fresh_db)
    table = SOURCE_TABLES["sales_order"]
    first = read_increment(spark, url, table, None)
    totesys.simulate(fresh_db, sales_orders=3, purchase_orders=0, edits=2, seed=2)
    window = timedelta(days=3650)  # every version inside the window

    def reads() -> list[tuple[int | None, dict | None]]:
        found = []
        for bookmark, lookback in [(None, timedelta(0)), (first.bookmark, timedelta(0)), (None, window)]:
            increment = read_increment(spark, url, table, bookmark, lookback=lookback)
            found.append((increment.count, increment.bookmark))
            increment.release()
        return found

    on_the_driver = reads()
    assert 3 <= on_the_driver[1][0] < on_the_driver[0][0]  # the 3 new orders (and any edits), then all
    monkeypatch.setattr(sources, "KEYS_TO_DRIVER", 0)
    assert reads() == on_the_driver


@pytest.mark.parametrize(
    ("table", "parallel", "split"),
    [
        ("payment", True, {"hashexpression": "payment_id", "hashpartitions": "8"}),
        ("sales_order", True, {"hashexpression": "sales_order_id", "hashpartitions": "8"}),
        ("payment", False, {}),  # a later run: a few rows behind the bookmark, one query
        ("currency", True, {}),  # reference tables stay small
    ],
)
def test_glue_first_read_of_a_big_table_is_split_on_its_primary_key(
    table: str, parallel: bool, split: dict[str, str]
) -> None:
    from shared.runtime import glue

    url = parse_pg_url("TOTESYS_URL", "postgresql://reader:secret@db.example:5432/totesys?sslmode=require")
    options = glue.bookmarked_read_options(url, SOURCE_TABLES[table], parallel=parallel)
    assert options == {
        "url": "jdbc:postgresql://db.example:5432/totesys?sslmode=require",
        "user": "reader",
        "password": "secret",
        "dbtable": f"public.{table}",
        "jobBookmarkKeys": ["last_updated"],
        "jobBookmarkKeysSortOrder": "asc",
        **split,
    }
