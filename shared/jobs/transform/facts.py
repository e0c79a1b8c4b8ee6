"""The transform's fact steps: each new version appended exactly once, then the months compacted.

A fact holds one row per version of a source row, appended under
`<processed>/<fact>/created_year=/created_month=` and stamped with the transform run that appended it
(`transform_run_id`). Versions already in the table are anti-joined away, so re-processing after a
crash never duplicates a fact. Versions that a run which died before its commit appended are found
in the table itself (not through the committed state, which never heard of them) and *adopted*:
published as this run's change, so the load still takes them and dim_date still covers them.
A month partition a run appended to is compacted into one file once it holds more than `above`
files (shared/lake/compaction.py). Called by `shared.jobs.transform.run`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from shared.contract.registry import CALENDAR, FACTS, STAR_BUILDS
from shared.contract.star import FACT_FOREIGN_KEYS, FACT_VERSION_KEYS
from shared.jobs.transform.tables import (
    LINEAGE_COLUMN,
    fact_columns_ddl,
    read_processed,
    star_columns,
)
from shared.lake.compaction import compact_partition
from shared.lake.documents import TableEntry, TransformState
from shared.lake.layout import PARTITION_COLUMNS, LakeLayout
from shared.lake.storage import storage_for
from shared.runtime.context import JobContext

# On the versions of a batch: the `transform_run_id` of the same version already in the table, if any.
ON_DISK_RUN = "_on_disk_run"

Month = tuple[int, int]  # (created_year, created_month): a fact's partition


def version_key(fact: str) -> list[str]:
    return list(FACT_VERSION_KEYS[fact])


def with_partitions(fact: DataFrame) -> DataFrame:
    return fact.withColumn("created_year", F.year("created_date")).withColumn(
        "created_month", F.month("created_date")
    )


def committed_fact(spark: SparkSession, state: TransformState, fact: str) -> DataFrame | None:
    """The fact table as the committed state publishes it (None: never published)."""
    entry = state.tables.get(fact)
    return read_processed(spark, fact, entry.location) if entry else None


def existing_partitions(
    spark: SparkSession, layout: LakeLayout, fact: str, months: Sequence[Month]
) -> DataFrame | None:
    """The fact table's rows in `months` (those a batch falls into), as they are in the lake (None: none).

    Read from the lake, not through the committed state: rows a run appended before dying
    uncommitted are there too. Only those months' folders are listed and read, so de-duplicating
    a small batch costs the same whatever the size of the history. The declared schema is used, so
    nothing depends on inferring it from whatever files a dead run left.
    """
    location = layout.table(fact)
    storage = storage_for(location)
    paths = [layout.partition(location, year, month) for year, month in months]
    paths = [p for p in paths if storage.exists(p)]
    if not paths:
        return None
    return spark.read.schema(fact_columns_ddl(fact)).option("basePath", location).parquet(*paths)


def uncommitted_versions(
    batch: DataFrame, existing: DataFrame | None, fact: str, committed_run: str, run_id: str
) -> DataFrame:
    """The versions of `batch` that no committed transform run has published, stamped with their run.

    `batch` holds one row per version; `existing` the fact table's rows in the months it touches.
    A version is dropped when a committed run already wrote it; kept with `ON_DISK_RUN` null and
    `transform_run_id` = `run_id` when the table does not hold it (to be appended); kept with the
    dead run's id in both columns when a run that never committed appended it (adopted: published
    again, not written again).
    """
    if existing is None:
        return batch.withColumn(ON_DISK_RUN, F.lit(None).cast("string")).withColumn(
            LINEAGE_COLUMN, F.lit(run_id)
        )
    keys = version_key(fact)
    on_disk = existing.select(*keys, F.col(LINEAGE_COLUMN).alias(ON_DISK_RUN))
    return (
        batch.join(on_disk, keys, "left")
        .where(F.col(ON_DISK_RUN).isNull() | (F.col(ON_DISK_RUN) > F.lit(committed_run)))
        .withColumn(LINEAGE_COLUMN, F.coalesce(F.col(ON_DISK_RUN), F.lit(run_id)))
    )


@dataclass(frozen=True)
class FactsAppended:
    """The facts this run changed (new versions, or versions adopted from a run that died).

    `tables`: their new published entries; `date_bounds`: per changed fact, the first and last date
    its new versions refer to (dim_date must cover them); `months`: the partitions they fall into.
    """

    tables: Mapping[str, TableEntry]
    date_bounds: tuple[tuple[date, date], ...]
    months: Mapping[str, tuple[Month, ...]]


def append_facts(
    ctx: JobContext,
    layout: LakeLayout,
    valid: Mapping[str, DataFrame],
    with_rows: Collection[str],
    source_months: Mapping[str, Sequence[Month]],
    committed_run: str,
    one_run: Collection[str],
) -> FactsAppended:
    """Build each fact from its source's valid rows and append the versions no committed run wrote.

    `with_rows`: the source tables with valid rows this run (a fact whose source has none is not
    touched); `source_months`: per source, the months its batch falls into (validate.py finds them
    in its one pass); `one_run`: the sources whose rows all come from one extract run, which holds
    each version once (it reads a table once, shared/jdbc/sources.py `read_increment`): no
    de-duplication. `committed_run` is the transform run that committed the bookmark: versions
    in the table with a greater `transform_run_id` were appended by a run that died before its
    commit.
    Per fact, one Spark job writes the batch (and one broadcasts the keys of the months it falls
    into): the counts, the date range dim_date must cover and the months touched are observed
    metrics of the write.
    """
    tables: dict[str, TableEntry] = {}
    bounds: list[tuple[date, date]] = []
    months: dict[str, tuple[Month, ...]] = {}
    with ctx.phase("facts dedupe + append"):
        for fact in FACTS:
            build = STAR_BUILDS[fact]
            source = build.inputs[0]
            if source not in with_rows:
                continue
            batch = with_partitions(build.build(valid[source]))
            if source not in one_run:  # from several extract runs (a catch-up) a version may repeat
                batch = batch.dropDuplicates(version_key(fact))
            on_disk = existing_partitions(ctx.spark, layout, fact, source_months.get(source, ()))
            fresh = uncommitted_versions(batch, on_disk, fact, committed_run, ctx.run_id)
            summary = Observation()
            dates = [c for c, dim in FACT_FOREIGN_KEYS[fact].items() if dim == CALENDAR]
            (
                fresh.observe(
                    summary,  # over every version, the adopted ones too: before the filter
                    F.count(F.lit(1)).alias("n"),
                    F.sum(F.col(ON_DISK_RUN).isNull().cast("int")).alias("new"),
                    F.least(*(F.min(c) for c in dates)).cast("string").alias("lo"),
                    F.greatest(*(F.max(c) for c in dates)).cast("string").alias("hi"),
                    # A string: observed metrics come back as Python values only for scalars.
                    F.concat_ws(
                        ",", F.collect_set(F.concat_ws("-", *(F.col(c) for c in PARTITION_COLUMNS)))
                    ).alias("months"),
                )
                .where(F.col(ON_DISK_RUN).isNull())  # appended: the versions not in the table yet
                .drop(ON_DISK_RUN)
                .repartition(*PARTITION_COLUMNS)  # one file per month, whatever shuffles ran before
                .write.mode("append")
                .partitionBy(*PARTITION_COLUMNS)
                .parquet(layout.table(fact))
            )
            observed = summary.get
            ctx.report.table(fact).written = int(observed["new"] or 0)
            if observed["n"]:  # new versions, or versions adopted from a run that died uncommitted
                tables[fact] = TableEntry(layout.table(fact), ctx.run_id, "fact", columns=star_columns(fact))
                bounds.append((date.fromisoformat(observed["lo"]), date.fromisoformat(observed["hi"])))
                months[fact] = tuple(
                    sorted(
                        (int(year), int(month))
                        for year, month in (m.split("-") for m in observed["months"].split(",") if m)
                    )
                )
    return FactsAppended(tables, tuple(bounds), months)


@dataclass(frozen=True)
class Compacted:
    """Per fact, the data files that compactions replaced this run (0: none above the threshold)."""

    files: Mapping[str, int]


def compact(
    ctx: JobContext, layout: LakeLayout, months: Mapping[str, tuple[Month, ...]], above: int
) -> Compacted:
    """Rewrite each month of `months` (the partitions this run appended to) that now holds more than
    `above` data files into one file (shared/lake/compaction.py)."""
    files: dict[str, int] = {}
    with ctx.phase("compaction"):
        for fact, partitions in months.items():
            location = layout.table(fact)
            storage = storage_for(location)
            files[fact] = 0
            for year, month in partitions:
                partition = layout.partition(location, year, month)
                replaced = compact_partition(
                    ctx.spark, storage, fact, location, partition, ctx.run_id, above=above
                )
                files[fact] += replaced
                ctx.report.table(fact).compacted_files += replaced
    return Compacted(files)
