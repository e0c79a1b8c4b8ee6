"""How the transform reads the lake: every table with the schema the contract declares now.

Ingestion JSON with the source contract's schemas (shared/contract/source.py), `_latest` snapshots
likewise, processed tables with the star's (shared/contract/star.py): a column added since a file
was written reads as NULL in it instead of depending on whichever file Spark samples. Also which
published tables no longer have the star's columns (`reshaped_tables`), and `Persisted`, the
DataFrames a run persists and releases at its end. Used by the transform's steps and the load.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType

from shared.contract.source import SOURCE_TABLES
from shared.contract.star import STAR_SCHEMAS, STAR_TABLES
from shared.jobs.extract import JSON_TIMESTAMP_FORMAT
from shared.lake.documents import TransformState
from shared.lake.layout import PARTITION_COLUMNS, LakeLayout

LINEAGE_COLUMN = "transform_run_id"  # on every fact row: the transform run that appended it


def read_ingestion(spark: SparkSession, layout: LakeLayout, table: str, run_ids: Sequence[str]) -> DataFrame:
    """The rows of `table` in the given extract runs, parsed with the contract's schema.

    Unparseable lines are kept (as `_corrupt_record`) so validation can quarantine them.
    """
    schema = StructType(
        [
            *SOURCE_TABLES[table].spark_schema.fields,
            StructField("_extract_run_id", StringType()),
            StructField("_corrupt_record", StringType()),
        ]
    )
    if not run_ids:
        return spark.createDataFrame([], schema)
    return (
        spark.read.schema(schema)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", "_corrupt_record")
        .option("timestampFormat", JSON_TIMESTAMP_FORMAT)
        .json([layout.ingestion_run(table, r) for r in run_ids])
    )


def read_latest(spark: SparkSession, table: str, location: str) -> DataFrame:
    """A `_latest` snapshot of a source table, read with the contract's schema (shared/contract/source.py):
    a column the contract gained after the snapshot was written reads as NULL, not as an error."""
    return spark.read.schema(SOURCE_TABLES[table].spark_schema).parquet(location)


def processed_schema(table: str) -> StructType:
    """What a processed table holds, as the star (shared/contract/star.py) declares it now: a dimension's
    columns; a fact's, its lineage column and its partition columns."""
    if not STAR_TABLES[table].is_fact:
        return STAR_SCHEMAS[table]
    return StructType(
        [
            *STAR_SCHEMAS[table].fields,
            StructField(LINEAGE_COLUMN, StringType()),
            *(StructField(c, IntegerType()) for c in PARTITION_COLUMNS),
        ]
    )


def read_processed(spark: SparkSession, table: str, location: str) -> DataFrame:
    """A processed table (or a dimension version or its changes) read with the star's schema, so
    files written before a column was added read it as NULL (Spark would otherwise take the
    schema of whichever file it samples, and a fact's older files do not have the column)."""
    return spark.read.schema(processed_schema(table)).parquet(location)


def star_columns(table: str) -> tuple[str, ...]:
    return tuple(STAR_SCHEMAS[table].names)


def fact_columns_ddl(fact: str) -> str:
    """The processed fact table's columns: the star's, the lineage column, the partition columns."""
    fields = [*STAR_SCHEMAS[fact].fields, StructField(LINEAGE_COLUMN, StringType())]
    columns = [f"`{f.name}` {f.dataType.simpleString()}" for f in fields]
    return ", ".join([*columns, *(f"`{c}` int" for c in PARTITION_COLUMNS)])


def reshaped_tables(spark: SparkSession, state: TransformState) -> frozenset[str]:
    """The published tables whose columns are not the star's any more (a star change since).

    Entries record their columns; one written before they did is read from its Parquet footer for
    a dimension (rebuilt if it differs) and counted as reshaped for a fact (its catalog entry is
    then checked once)."""
    out = set()
    for table, entry in state.tables.items():
        columns = entry.columns
        if columns is None and entry.kind == "dimension":
            columns = tuple(spark.read.parquet(entry.location).columns)
        if columns != star_columns(table):
            out.add(table)
    return frozenset(out)


def counting(df: DataFrame) -> tuple[DataFrame, Callable[[], int]]:
    """`df` with a row counter, and the function that reads it once `df`'s next action (its write) ran.

    What a write wrote, without a `count()` after it: the count is an observed metric of the write's
    own query (`Dataset.observe`), so it costs no Spark job and reads nothing back.
    """
    observation = Observation()
    observed = df.observe(observation, F.count(F.lit(1)).alias("rows"))
    return observed, lambda: int(observation.get["rows"])


class Persisted:
    """The DataFrames a run persists (so one Spark action serves several uses), released at its end."""

    def __init__(self) -> None:
        self._frames: list[DataFrame] = []

    def keep(self, df: DataFrame) -> DataFrame:
        self._frames.append(df.persist())
        return self._frames[-1]

    def release(self) -> None:
        for df in self._frames:
            df.unpersist()
        self._frames = []
