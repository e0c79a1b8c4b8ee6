"""Processed and `_latest` Parquet written before a column existed is read with the contract's schema
(shared/jobs/transform/tables.py `read_processed`, `read_latest`): the new column reads as NULL in the old
files and is kept in the new ones, whichever file Spark would have sampled for the schema.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from decimal import Decimal

import pytest
from pyspark.sql.types import StructType

from shared.contract import star
from shared.contract.source import MONEY, SOURCE_TABLES
from shared.jobs.transform.tables import processed_schema, read_latest, read_processed

pytestmark = pytest.mark.integration

DAY = date(2024, 11, 15)


def sales_row(sales_order_id: int) -> tuple:
    return (
        sales_order_id, DAY, "09:00:00.000", DAY, "09:00:00.000", 1, 1, 10, Decimal("2.50"), 1, 1, DAY, DAY, 1,
    )  # fmt: skip


@pytest.fixture
def with_gross_value(monkeypatch):
    """fact_sales_order as a star change leaves it: one more nullable column (tests/test_schema_change.py)."""
    column = star._c("gross_value", MONEY, nullable=True)
    table = dataclasses.replace(
        star.STAR_TABLES["fact_sales_order"], columns=(*star.STAR_TABLES["fact_sales_order"].columns, column)
    )
    old = processed_schema("fact_sales_order")
    monkeypatch.setitem(star.STAR_TABLES, "fact_sales_order", table)
    monkeypatch.setitem(star.STAR_SCHEMAS, "fact_sales_order", table.spark_schema)
    return old


def test_a_fact_written_before_a_column_existed_reads_it_as_null(spark, tmp_path, with_gross_value) -> None:
    location = str(tmp_path / "fact_sales_order")
    # The old file sorts first (Spark samples it for the schema when none is given), the new one after.
    old_rows = [(*sales_row(1), "run-1", 2022, 11)]
    spark.createDataFrame(old_rows, with_gross_value).write.partitionBy(
        "created_year", "created_month"
    ).parquet(location)
    new_schema = processed_schema("fact_sales_order")
    new_rows = [(*sales_row(2), Decimal("25.00"), "run-2", 2024, 11)]
    spark.createDataFrame(new_rows, new_schema).write.mode("append").partitionBy(
        "created_year", "created_month"
    ).parquet(location)
    assert "gross_value" not in spark.read.parquet(location).columns  # what a schema-less read gives

    rows = read_processed(spark, "fact_sales_order", location).orderBy("sales_order_id").collect()
    assert [(r["sales_order_id"], r["gross_value"], r["created_year"]) for r in rows] == [
        (1, None, 2022),
        (2, Decimal("25.00"), 2024),
    ]
    assert read_processed(spark, "fact_sales_order", location).schema == new_schema


def test_a_latest_snapshot_written_before_a_contract_column_reads_it_as_null(spark, tmp_path) -> None:
    contract = SOURCE_TABLES["department"].spark_schema
    older = StructType([f for f in contract.fields if f.name != "manager"])  # the snapshot lacks it
    stamp = datetime(2022, 11, 3, 14, 20, 49, 962000)
    location = str(tmp_path / "_latest" / "department" / "version-run-1")
    spark.createDataFrame([(1, "Sales", "Manchester", stamp, stamp)], older).write.parquet(location)

    (row,) = read_latest(spark, "department", location).collect()
    assert row["manager"] is None and row["department_name"] == "Sales"
    assert read_latest(spark, "department", location).schema == contract
