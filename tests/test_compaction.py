"""Fact partition compaction (shared/lake/compaction.py) on real Parquet folders written by Spark.

Each test builds a small fact_payment table the way the transform does (appends partitioned by
month), compacts, and compares the whole table before and after with chispa. Crashes are staged
with a storage whose operations fail from a given point, then `recover` is run as the next
transform run would.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from shared.config import join
from shared.lake.compaction import (
    CompactionError,
    compact_partition,
    data_files,
    file_schema,
    recover,
)
from shared.lake.layout import COMPACTION_FOLDER, PARTITION_COLUMNS, LakeLayout
from shared.lake.storage import LocalStorage

FACT = "fact_payment"


def payments(spark: SparkSession, first_id: int, n: int, month: int, run: str) -> DataFrame:
    """`n` fact_payment versions created in 2024-`month`, stamped with transform run `run`."""
    rows = [
        (
            i, date(2024, month, 1 + i % 28), "10:00:00.000", date(2024, month, 1 + i % 28), "10:00:00.000",
            i, 1, Decimal(f"{i}.50"), 1, 1, i % 2 == 0, date(2024, month, 28), run,
        )
        for i in range(first_id, first_id + n)
    ]  # fmt: skip
    return spark.createDataFrame(rows, file_schema(FACT)).withColumns(
        {"created_year": F.lit(2024), "created_month": F.lit(month)}
    )


def fact_table(spark: SparkSession, location: str) -> DataFrame:
    """The whole table as a reader sees it now, sorted (file order is not part of the contract),
    held in the driver so it stays what it was when the files change."""
    df = spark.read.parquet(location).coalesce(1).sortWithinPartitions("payment_id", "transform_run_id")
    return spark.createDataFrame(df.collect(), df.schema)


@pytest.fixture
def table(spark, tmp_path) -> str:
    """fact_payment with 5 appended files in 2024-11 and 2 in 2024-10, as 5 transform runs leave it."""
    location = str(tmp_path / FACT)
    for run in range(5):
        batch = payments(spark, run * 10, 10, 11, f"run-{run}")
        if run < 2:
            batch = batch.unionByName(payments(spark, 100 + run * 10, 3, 10, f"run-{run}"))
        batch.repartition(*PARTITION_COLUMNS).write.mode("append").partitionBy(*PARTITION_COLUMNS).parquet(
            location
        )
    return location


def test_a_partition_of_many_files_becomes_one_file_with_the_same_rows(spark, table) -> None:
    storage, november, october = (
        LocalStorage(),
        LakeLayout.partition(table, 2024, 11),
        LakeLayout.partition(table, 2024, 10),
    )
    before = fact_table(spark, table)
    assert len(data_files(storage, november)) == 5

    assert compact_partition(spark, storage, FACT, table, october, "run-9", above=2) == 0  # not above: kept
    replaced = compact_partition(spark, storage, FACT, table, november, "run-9")

    assert replaced == 5
    (only,) = data_files(storage, november)
    assert Path(only).name.startswith("compacted-run-9-part-")
    assert len(data_files(storage, october)) == 2  # other months untouched
    assert_df_equality(fact_table(spark, table), before)  # same rows, same run ids, nothing twice
    assert not Path(table, COMPACTION_FOLDER).exists() or not any(Path(table, COMPACTION_FOLDER).iterdir())
    assert compact_partition(spark, storage, FACT, table, november, "run-10") == 0  # one file: nothing to do


class CrashingStorage(LocalStorage):
    """Local storage that dies (raises) on the first call of operation `at`."""

    def __init__(self, at: str) -> None:
        self.at = at

    def _crash(self, operation: str) -> None:
        if operation == self.at:
            raise KeyboardInterrupt(f"killed at {operation}")  # not an Exception: nothing catches it

    def move(self, source: str, target: str) -> None:
        self._crash("move")
        super().move(source, target)

    def delete(self, location: str) -> None:
        self._crash("delete")
        super().delete(location)

    def write_text(self, location: str, text: str) -> None:
        self._crash("write_text")
        super().write_text(location, text)


@pytest.mark.parametrize("at", ["write_text", "move", "delete"])
def test_a_run_that_dies_mid_compaction_is_finished_or_undone_by_the_next(spark, table, at) -> None:
    november = LakeLayout.partition(table, 2024, 11)
    before = fact_table(spark, table)

    with pytest.raises(KeyboardInterrupt):
        compact_partition(spark, CrashingStorage(at), FACT, table, november, "run-9")
    finished = recover(LocalStorage(), [table])

    # Died before the journal: the staged file is dropped and the 5 files stay. Died after it: the
    # switch is finished, whether the new file was moved in already or not.
    assert finished == ([] if at == "write_text" else [november])
    assert len(data_files(LocalStorage(), november)) == (5 if at == "write_text" else 1)
    assert_df_equality(fact_table(spark, table), before)
    assert LocalStorage().list_names(join(table, COMPACTION_FOLDER)) == []


def test_a_compaction_that_would_change_the_row_count_switches_nothing(spark, table, monkeypatch) -> None:
    november = LakeLayout.partition(table, 2024, 11)
    before = fact_table(spark, table)
    real_parquet = type(spark.read).parquet

    def one_row_short(reader, *paths):  # what a truncated write would look like when counted
        df = real_parquet(reader, *paths)
        return df.limit(int(df.count()) - 1) if f"/{COMPACTION_FOLDER}/" in paths[0] else df

    monkeypatch.setattr(type(spark.read), "parquet", one_row_short)
    with pytest.raises(CompactionError, match=r"fact_payment created_year=2024/created_month=11: .* 49 rows"):
        compact_partition(spark, LocalStorage(), FACT, table, november, "run-9")
    monkeypatch.undo()

    assert len(data_files(LocalStorage(), november)) == 5
    assert_df_equality(fact_table(spark, table), before)
    assert LocalStorage().list_names(join(table, COMPACTION_FOLDER)) == []
