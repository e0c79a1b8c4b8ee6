"""The transform job: new ingestion runs -> the three stars as Parquet, registered in the catalog.

Reads only extract runs published (by manifest) after its bookmark, validates every row against the
contract (rejects go to the quarantine zone with their reason), and writes:
- facts: one row per source version, appended under `<processed>/<fact>/created_year=/created_month=`,
  each version exactly once: versions already in the table are anti-joined away, so re-processing
  after a crash never duplicates a fact. Versions a run that died before its commit appended are
  found in the table (not through the committed state, which never heard of them) and *adopted*:
  published as this run's change, so the load still takes them and dim_date still covers them;
- dimensions: complete snapshots rebuilt from the latest state of their source tables, each written
  to a new `version-<run_id>` folder and switched to atomically (catalog location + `_current.json`);
- `_latest/<source table>`: the latest version of every dimension source row, so a dimension built
  from a join (staff + department) is always complete even when only one side changed.
Housekeeping: a month partition a run appends to is compacted into one file once it holds more than
COMPACT_ABOVE_FILES files (shared/lake/compaction.py), and versions no state points at are pruned beyond
the KEEP_VERSIONS newest. The published pointer `<processed>/_current.json` tells the load job what is complete.
Called by glue_jobs/transform.py (Glue) and `totes run` (locally) through `run()`.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, IntegerType, StringType, StructField, StructType

from shared import transforms as T
from shared.config import join
from shared.contract.quality import CORRUPT_COLUMN, REASON_COLUMN, check_rows, referenced_keys
from shared.contract.registry import (
    DIMENSIONS,
    FACT_OF_SOURCE,
    FACTS,
    LATEST_TABLES,
    STAR_BUILDS,
    VALIDATION_ORDER,
)
from shared.contract.source import SOURCE_TABLES
from shared.contract.star import FACT_FOREIGN_KEYS, FACT_SOURCES, FACT_VERSION_KEYS, STAR_SCHEMAS
from shared.jobs.extract import JSON_TIMESTAMP_FORMAT, ingestion_path, manifest_path
from shared.lake.compaction import COMPACT_ABOVE_FILES, compact_partition, recover
from shared.lake.storage import Storage, read_json, storage_for, write_json
from shared.runtime.context import JobContext
from shared.runtime.faults import checkpoint

BOOKMARK = "transform_state"
# Up to this many new rows of a table (by the extract's manifests), its foreign keys are checked
# against only the keys it refers to (quality.referenced_keys): a 20-minute batch then costs the
# same whatever the history. Above it (a first load, a catch-up), against the whole key sets, so
# a big batch's JSON is not parsed twice.
SMALL_BATCH_ROWS = 100_000
PARTITION_COLUMNS = ("created_year", "created_month")


def current_path(processed: str) -> str:
    return join(processed, "_current.json")


def version_path(processed: str, table: str, run_id: str) -> str:
    return join(processed, table, f"version-{run_id}")


def changes_path(processed: str, table: str, run_id: str) -> str:
    return join(processed, table, f"changes-{run_id}")


def fact_path(processed: str, fact: str) -> str:
    return join(processed, fact)


def version_key(fact: str) -> list[str]:
    return list(FACT_VERSION_KEYS[fact])


def with_partitions(fact: DataFrame) -> DataFrame:
    return fact.withColumn("created_year", F.year("created_date")).withColumn(
        "created_month", F.month("created_date")
    )


def read_ingestion(spark: SparkSession, ingestion: str, table: str, run_ids: list[str]) -> DataFrame:
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
        .json([ingestion_path(ingestion, table, r) for r in run_ids])
    )


def read_latest(spark: SparkSession, table: str, location: str) -> DataFrame:
    """A `_latest` snapshot of a source table, read with the contract's schema (shared/contract/source.py):
    a column the contract gained after the snapshot was written reads as NULL, not as an error."""
    return spark.read.schema(SOURCE_TABLES[table].spark_schema).parquet(location)


def _latest_or_none(spark: SparkSession, table: str, location: str | None) -> DataFrame | None:
    return read_latest(spark, table, location) if location else None


def processed_schema(table: str) -> StructType:
    """What a processed table holds, as the star (shared/contract/star.py) declares it now: a dimension's
    columns; a fact's, its lineage column and its partition columns."""
    if table not in FACT_SOURCES:
        return STAR_SCHEMAS[table]
    return StructType(
        [
            *STAR_SCHEMAS[table].fields,
            StructField("transform_run_id", StringType()),
            *(StructField(c, IntegerType()) for c in PARTITION_COLUMNS),
        ]
    )


def read_processed(spark: SparkSession, table: str, location: str) -> DataFrame:
    """A processed table (or a dimension version or its changes) read with the star's schema, so
    files written before a column was added read it as NULL (Spark would otherwise take the
    schema of whichever file it samples, and a fact's older files do not have the column)."""
    return spark.read.schema(processed_schema(table)).parquet(location)


def star_columns(table: str) -> list[str]:
    return list(STAR_SCHEMAS[table].names)


def reshaped_tables(spark: SparkSession, state: dict[str, Any]) -> set[str]:
    """The published tables whose columns are not the star's any more (a star change since).

    Entries record their columns; one written before they did is read from its Parquet footer for
    a dimension (rebuilt if it differs) and counted as reshaped for a fact (its catalog entry is
    then checked once)."""
    out = set()
    for table, entry in state["tables"].items():
        columns = entry.get("columns")
        if columns is None and entry["kind"] == "dimension":
            columns = [c for c in spark.read.parquet(entry["location"]).columns]
        if columns != star_columns(table):
            out.add(table)
    return out


def run(ctx: JobContext) -> dict[str, Any] | None:
    """Process every published extract run not yet processed; publish and commit."""
    spark, settings = ctx.spark, ctx.settings
    ingestion_store = storage_for(settings.ingestion)
    state: dict[str, Any] = ctx.bookmark(BOOKMARK) or {"extract_watermark": "", "latest": {}, "tables": {}}
    committed_run = last_committed_run(state)
    # A run that died switching a compacted partition left a journal: finish it before reading facts.
    recover(storage_for(settings.processed), [fact_path(settings.processed, fact) for fact in FACTS])
    manifests = [
        read_json(ingestion_store, manifest_path(settings.ingestion, name.removesuffix(".json")))
        for name in ingestion_store.list_names(join(settings.ingestion, "_manifests"))
        if name.endswith(".json") and name.removesuffix(".json") > state["extract_watermark"]
    ]
    # A star change (shared/contract/star.py) reaches the lake with no new data too: dimensions rebuilt with
    # their new columns, the catalog's tables given them.
    reshaped = reshaped_tables(spark, state)
    if not manifests and not reshaped:
        ctx.commit()
        return None

    processed = settings.processed
    catalog_ready = warm_up_catalog(spark, settings.catalog_database)
    cached: list[DataFrame] = []

    def keep(df: DataFrame) -> DataFrame:
        cached.append(df.persist())
        return cached[-1]

    # Validate in dependency order; each table's keys are known once its own rows are validated.
    latest: dict[str, DataFrame] = {}
    changed_sources: set[str] = set()
    valid: dict[str, DataFrame] = {}
    known: dict[str, DataFrame] = {}
    with ctx.phase("json read + validate"):
        for table in VALIDATION_ORDER:
            source = SOURCE_TABLES[table]
            pk = source.primary_key
            runs = sorted(m["run_id"] for m in manifests if m["tables"].get(table))
            rows = read_ingestion(spark, settings.ingestion, table, runs)
            n_read = n_rejected = 0
            valid[table] = rows.drop(CORRUPT_COLUMN)
            small = sum(int(m["tables"].get(table) or 0) for m in manifests) <= SMALL_BATCH_ROWS
            if runs:
                checked = check_rows(source, rows, referenced_keys(source, rows, known) if small else known)
                # Persisting the annotated rows lets the counts, the valid side and the rejects share
                # one parse and one validation: a single Spark action here per table.
                annotated = keep(checked.annotated)
                counts = annotated.agg(
                    F.count(F.lit(1)).alias("read"),
                    F.sum((F.col(REASON_COLUMN) != "").cast("int")).alias("rejected"),
                ).first()
                assert counts is not None
                n_read, n_rejected = counts["read"], counts["rejected"] or 0
                valid[table] = checked.valid
                if n_rejected:
                    (
                        checked.rejected.withColumn("_transform_run_id", F.lit(ctx.run_id))
                        .coalesce(1)
                        .write.mode("errorifexists")
                        .json(join(settings.quarantine, table, f"transform_run={ctx.run_id}"))
                    )
            ctx.report.table(table).read = n_read
            ctx.report.table(table).quarantined = n_rejected
            if table in LATEST_TABLES:
                previous = _latest_or_none(spark, table, state["latest"].get(table))
                if n_read > n_rejected:
                    changes = valid[table].select(source.column_names)
                    if previous is None:
                        merged = T.latest_versions(changes, pk)
                    elif small:  # only the keys this batch touches are aggregated
                        merged = T.updated_latest(previous.select(source.column_names), changes, pk)
                    else:
                        merged = T.latest_versions(
                            previous.select(source.column_names).unionByName(changes), pk
                        )
                    latest[table] = merged  # computed once, by its write below
                    changed_sources.add(table)
                    # The merged state's keys, without computing the merge: the previous ones and the batch's.
                    ids = valid[table].select(pk)
                    known[table] = ids if previous is None else previous.select(pk).unionByName(ids)
                elif previous is not None:
                    latest[table] = previous
                    known[table] = previous.select(pk)
            else:  # fact sources: known ids = ids already in the processed fact table + this batch's
                ids = valid[table].select(pk)
                existing = _existing_fact(spark, state, FACT_OF_SOURCE[table])
                known[table] = ids if existing is None else existing.select(pk).unionByName(ids).distinct()

    tables: dict[str, Any] = dict(state["tables"])
    new_latest = dict(state["latest"])
    with ctx.phase("latest snapshots write"):
        for table in sorted(changed_sources):
            location = version_path(join(processed, "_latest"), table, ctx.run_id)
            latest[table].write.mode("errorifexists").parquet(location)
            # The dimensions read it back, not recompute it.
            latest[table] = read_latest(spark, table, location)
            new_latest[table] = location

    checkpoint("transform:mid")
    with ctx.phase("dimensions build + write"):
        for dim in DIMENSIONS:
            builder, inputs = STAR_BUILDS[dim].build, STAR_BUILDS[dim].inputs
            if not (changed_sources.intersection(inputs) or dim in reshaped) or not all(
                i in latest for i in inputs
            ):
                continue
            location = version_path(processed, dim, ctx.run_id)
            builder(*(latest[i] for i in inputs)).coalesce(1).write.mode("errorifexists").parquet(location)
            ctx.report.table(dim).written = spark.read.parquet(location).count()  # from the Parquet footers
            entry = {
                "location": location,
                "changed_run": ctx.run_id,
                "kind": "dimension",
                "columns": star_columns(dim),
            }
            previous = state["tables"].get(dim)
            if previous is not None and len(inputs) == 1 and dim not in reshaped:
                # The rows of this version that differ from the previous one, so the load stages
                # only those (a big dimension, like dim_transaction, is not re-sent every run).
                (source,) = inputs
                pk = SOURCE_TABLES[source].primary_key
                touched = valid[source].select(pk).distinct()
                changes = builder(latest[source].join(touched, pk, "left_semi")).coalesce(1)
                changes_location = changes_path(processed, dim, ctx.run_id)
                changes.write.mode("errorifexists").parquet(changes_location)
                entry |= {"changes": changes_location, "changes_since": previous["changed_run"]}
            tables[dim] = entry

    date_bounds: list[tuple[Any, Any]] = []
    new_partitions: dict[str, list[tuple[int, int]]] = {}
    with ctx.phase("facts dedupe + append"):
        for fact in FACTS:
            builder = STAR_BUILDS[fact].build
            batch = with_partitions(builder(valid[FACT_SOURCES[fact][0]]).dropDuplicates(version_key(fact)))
            on_disk = existing_partitions(spark, processed, fact, batch)
            fresh = keep(uncommitted_versions(batch, on_disk, fact, committed_run, ctx.run_id))
            # One action for the counts, the date range dim_date must cover and the months touched.
            dates = [c for c, dim in FACT_FOREIGN_KEYS[fact].items() if dim == "dim_date"]
            summary = fresh.agg(
                F.count(F.lit(1)).alias("n"),
                F.sum(F.col(ON_DISK_RUN).isNull().cast("int")).alias("new"),
                F.least(*(F.min(c) for c in dates)).alias("lo"),
                F.greatest(*(F.max(c) for c in dates)).alias("hi"),
                F.collect_set(F.struct(*PARTITION_COLUMNS)).alias("partitions"),
            ).first()
            assert summary is not None
            ctx.report.table(fact).written = summary["new"] or 0
            if summary["new"]:
                (
                    fresh.where(F.col(ON_DISK_RUN).isNull())
                    .drop(ON_DISK_RUN)
                    .repartition(*PARTITION_COLUMNS)
                    .write.mode("append")
                    .partitionBy(*PARTITION_COLUMNS)
                    .parquet(fact_path(processed, fact))
                )
            if summary["n"]:  # new versions, or versions adopted from a run that died uncommitted
                tables[fact] = {
                    "location": fact_path(processed, fact),
                    "changed_run": ctx.run_id,
                    "kind": "fact",
                    "columns": star_columns(fact),
                }
                date_bounds.append((summary["lo"], summary["hi"]))
                new_partitions[fact] = sorted(
                    (p["created_year"], p["created_month"]) for p in summary["partitions"]
                )

    with ctx.phase("compaction"):
        for fact, partitions in new_partitions.items():
            compact(ctx, fact, partitions)

    if "dim_date" in reshaped and tables.get("dim_date"):
        date_bounds.append((_date(tables["dim_date"]["min"]), _date(tables["dim_date"]["max"])))
    if date_bounds:
        with ctx.phase("dim_date"):
            lo, hi = min(b[0] for b in date_bounds), max(b[1] for b in date_bounds)
            _update_dim_date(ctx, tables, lo, hi, rebuild="dim_date" in reshaped)
    for table in reshaped & tables.keys():  # a fact with no new version keeps its entry, not its columns
        tables[table] = {**tables[table], "columns": star_columns(table)}

    published = {
        "run_id": ctx.run_id,
        "extract_runs": sorted(m["run_id"] for m in manifests),
        "tables": tables,
    }
    with ctx.phase("catalog + publish"):
        catalog_ready.result()  # raises what the warm-up met, e.g. an unreachable metastore
        register_catalog(spark, settings.catalog_database, tables, new_partitions, ctx.run_id, reshaped)
        write_json(storage_for(processed), current_path(processed), published)
    new_state = {
        "run_id": ctx.run_id,
        "extract_watermark": max((m["run_id"] for m in manifests), default=state["extract_watermark"]),
        "latest": new_latest,
        "tables": tables,
    }
    with ctx.phase("retention"):
        # Before the commit, so both the committed state and the new one keep what they point at.
        prune_versions(storage_for(processed), processed, [state, new_state])
    checkpoint("transform:before_commit")
    ctx.set_bookmark(BOOKMARK, new_state)
    ctx.commit()
    for df in cached:
        df.unpersist()
    return published


# Versions of a dimension (and of a `_latest` snapshot) kept beyond those a state points at: a
# reader that resolved an older location just before a switch (an Athena query, a load) finishes.
KEEP_VERSIONS = 3


def prune_versions(
    storage: Storage, processed: str, states: list[dict[str, Any]], keep: int = KEEP_VERSIONS
) -> int:
    """Delete the dimension versions, `changes-` folders and `_latest` snapshots nobody needs.

    Kept: everything any of `states` points at, and the `keep` newest of each kind in each folder
    (run ids sort in time order). The load never needs an older version: it loads the current one,
    or its changes when it has loaded the one before. Returns the number of folders deleted.
    """
    referenced: set[str] = set()
    for state in states:
        referenced.update(state["latest"].values())
        for entry in state["tables"].values():
            referenced.update(entry[k] for k in ("location", "changes") if entry.get(k))
    folders = [join(processed, dim) for dim in (*DIMENSIONS, "dim_date")]
    folders += [join(processed, "_latest", table) for table in sorted(LATEST_TABLES)]
    deleted = 0
    for folder in folders:
        names = storage.list_names(folder)
        for prefix in ("version-", "changes-"):
            versions = sorted(n for n in names if n.startswith(prefix))
            for name in versions[: max(len(versions) - keep, 0)]:
                if join(folder, name) not in referenced:
                    storage.delete(join(folder, name))
                    deleted += 1
    return deleted


def compact(ctx: JobContext, fact: str, partitions: list[tuple[int, int]]) -> None:
    """Rewrite each of `partitions` (months this run appended to) that now holds more than
    COMPACT_ABOVE_FILES data files into one file (shared/lake/compaction.py)."""
    location = fact_path(ctx.settings.processed, fact)
    storage = storage_for(location)
    for year, month in partitions:
        partition = partition_path(location, year, month)
        ctx.report.table(fact).compacted_files += compact_partition(
            ctx.spark, storage, fact, location, partition, ctx.run_id, above=COMPACT_ABOVE_FILES
        )


def _existing_fact(spark: SparkSession, state: dict[str, Any], fact: str) -> DataFrame | None:
    entry = state["tables"].get(fact)
    return read_processed(spark, fact, entry["location"]) if entry else None


def partition_path(location: str, year: int, month: int) -> str:
    return join(location, f"created_year={int(year)}", f"created_month={int(month)}")


def existing_partitions(spark: SparkSession, processed: str, fact: str, batch: DataFrame) -> DataFrame | None:
    """The fact table's rows in the months `batch` falls into, as they are in the lake (None: none).

    Read from the lake, not through the committed state: rows a run appended before dying
    uncommitted are there too. Only those months' folders are listed and read, so de-duplicating
    a small batch costs the same whatever the size of the history. The declared schema is used, so
    nothing depends on inferring it from whatever files a dead run left.
    """
    location = fact_path(processed, fact)
    storage = storage_for(location)
    months = batch.select(*PARTITION_COLUMNS).distinct().collect()
    paths = [partition_path(location, row[0], row[1]) for row in months if row[0] is not None]
    paths = [p for p in paths if storage.exists(p)]
    if not paths:
        return None
    return spark.read.schema(fact_columns_ddl(fact)).option("basePath", location).parquet(*paths)


def last_committed_run(state: dict[str, Any]) -> str:
    """The run id of the transform run that committed `state` ("" before the first commit).

    Run ids sort in time order, so fact rows whose `transform_run_id` is greater were appended by a
    run that died before its commit. A state written before the run id was kept falls back on the
    newest run that changed a table (the same for facts, which is what it is used for).
    """
    if state.get("run_id"):
        return str(state["run_id"])
    return max((entry["changed_run"] for entry in state["tables"].values()), default="")


# On the versions of a batch: the `transform_run_id` of the same version already in the table, if any.
ON_DISK_RUN = "_on_disk_run"


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
            "transform_run_id", F.lit(run_id)
        )
    keys = version_key(fact)
    on_disk = existing.select(*keys, F.col("transform_run_id").alias(ON_DISK_RUN))
    return (
        batch.join(on_disk, keys, "left")
        .where(F.col(ON_DISK_RUN).isNull() | (F.col(ON_DISK_RUN) > F.lit(committed_run)))
        .withColumn("transform_run_id", F.coalesce(F.col(ON_DISK_RUN), F.lit(run_id)))
    )


def _update_dim_date(
    ctx: JobContext, tables: dict[str, Any], lo: Any, hi: Any, rebuild: bool = False
) -> None:
    """Extend dim_date to a contiguous calendar covering every date any fact refers to (`rebuild`:
    write it again even if it covers them, because its star columns changed)."""
    spark = ctx.spark
    entry = tables.get("dim_date")
    if entry:
        lo, hi = min(lo, _date(entry["min"])), max(hi, _date(entry["max"]))
        if (str(lo), str(hi)) == (entry["min"], entry["max"]) and not rebuild:
            return
    span = spark.createDataFrame([(lo,), (hi,)], StructType([StructField("date", DateType())]))
    location = version_path(ctx.settings.processed, "dim_date", ctx.run_id)
    calendar = T.dim_date(span).coalesce(1).persist()
    calendar.write.mode("errorifexists").parquet(location)
    tables["dim_date"] = {
        "location": location,
        "changed_run": ctx.run_id,
        "kind": "dimension",
        "min": str(lo),
        "max": str(hi),
        "columns": star_columns("dim_date"),
    }
    ctx.report.table("dim_date").written = calendar.count()
    calendar.unpersist()


def _date(text: str) -> Any:
    from datetime import date

    return date.fromisoformat(text)


def warm_up_catalog(spark: SparkSession, database: str) -> Future[None]:
    """Open the catalog client in the background while the job reads and validates.

    The first metastore call of a process pays the client's start-up (with the local Derby
    metastore, the bench's "catalog + publish" phase of an incremental run went from about 9 s to
    about 3 s when this moved off the critical path; the Glue Data Catalog client's is shorter). `register_catalog` waits for it; its error, if any, is raised there.
    """

    def touch() -> None:
        spark.sql(f"CREATE DATABASE IF NOT EXISTS `{database}`")
        spark.sql(f"SHOW TABLES IN `{database}`").collect()

    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="catalog-warm-up")
    try:
        return executor.submit(touch)
    finally:
        executor.shutdown(wait=False)  # the thread ends with its one task


def register_catalog(
    spark: SparkSession,
    database: str,
    tables: dict[str, Any],
    new_partitions: dict[str, list[tuple[int, int]]],
    run_id: str | None = None,
    reshaped: set[str] | frozenset[str] = frozenset(),
) -> None:
    """Point the catalog's tables at what this run published (Glue Data Catalog on Glue).

    Dimensions switch location to their new version; facts get this run's new partitions. The
    catalog is an index of the lake, so a table that is missing, or whose location disagrees with
    the lake, is (re-)created and its partitions recovered from the lake itself. Tables are created
    with the star's columns, and a column the star gained is added to an existing table
    (`ALTER TABLE ... ADD COLUMNS`, the same Spark SQL on the Derby metastore and the Glue Data
    Catalog); older files read it as NULL. With `run_id`, tables this run did not change and whose
    columns did not change (`reshaped`) are only checked to exist (one metastore call for all).
    """
    spark.sql(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    registered = {row["tableName"] for row in spark.sql(f"SHOW TABLES IN `{database}`").collect()}
    for name, entry in sorted(tables.items()):
        if (
            run_id is not None
            and name in registered
            and entry["changed_run"] != run_id
            and name not in reshaped
        ):
            continue  # unchanged by this run and already in the catalog: nothing to do
        qualified = f"`{database}`.`{name}`"
        location = entry["location"]
        described = _describe_table(spark, database, name)
        current, columns = described if described is not None else (None, [])
        if entry["kind"] == "fact":
            if current is not None and current.rstrip("/") != _uri(location):
                spark.sql(f"DROP TABLE {qualified}")  # external: the data stays
                current = None
            if current is None:
                spark.sql(
                    f"CREATE TABLE {qualified} ({fact_columns_ddl(name)}) USING PARQUET "
                    f"PARTITIONED BY ({', '.join(PARTITION_COLUMNS)}) LOCATION '{location}'"
                )
                spark.sql(f"ALTER TABLE {qualified} RECOVER PARTITIONS")
                continue
            _add_missing_columns(spark, qualified, name, columns)
            if new_partitions.get(name):
                specs = " ".join(
                    f"PARTITION (created_year = {int(y)}, created_month = {int(m)})"
                    for y, m in new_partitions[name]
                )
                spark.sql(f"ALTER TABLE {qualified} ADD IF NOT EXISTS {specs}")
                spark.sql(f"REFRESH TABLE {qualified}")  # files appended to known partitions
        elif current is None:
            spark.sql(f"CREATE TABLE {qualified} ({_columns_ddl(name)}) USING PARQUET LOCATION '{location}'")
        else:
            _add_missing_columns(spark, qualified, name, columns)
            if current.rstrip("/") != _uri(location):
                spark.sql(f"ALTER TABLE {qualified} SET LOCATION '{location}'")


def _columns_ddl(table: str) -> str:
    return ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in STAR_SCHEMAS[table].fields)


def _add_missing_columns(spark: SparkSession, qualified: str, table: str, registered: list[str]) -> None:
    """Add to a catalog table the star columns it lacks (a star change since it was registered)."""
    have = {c.lower() for c in registered}
    missing = [f for f in STAR_SCHEMAS[table].fields if f.name.lower() not in have]
    if missing:
        columns = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in missing)
        spark.sql(f"ALTER TABLE {qualified} ADD COLUMNS ({columns})")


def fact_columns_ddl(fact: str) -> str:
    """The processed fact table's columns: the star's, the lineage column, the partition columns."""
    fields = [*STAR_SCHEMAS[fact].fields, StructField("transform_run_id", StringType())]
    columns = [f"`{f.name}` {f.dataType.simpleString()}" for f in fields]
    return ", ".join([*columns, *(f"`{c}` int" for c in PARTITION_COLUMNS)])


def _uri(location: str) -> str:
    return location if "://" in location else f"file:{location}"


def _describe_table(spark: SparkSession, database: str, table: str) -> tuple[str | None, list[str]] | None:
    """(location, column names) of a catalog table, from one DESCRIBE; None if there is no table."""
    if not spark.catalog.tableExists(f"{database}.{table}"):
        return None
    rows = spark.sql(f"DESCRIBE TABLE EXTENDED `{database}`.`{table}`").collect()
    columns: list[str] = []
    location = None
    in_columns = True
    for row in rows:
        name = row["col_name"]
        if in_columns and (not name or name.startswith("#")):
            in_columns = False
        elif in_columns:
            columns.append(name)
        if name == "Location":
            location = str(row["data_type"])
    return location, columns
