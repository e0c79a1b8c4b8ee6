"""The transform job: new ingestion runs -> the three stars as Parquet, registered in the catalog.

Reads only extract runs published (by manifest) after its bookmark, validates every row against the
contract (rejects go to the quarantine zone with their reason), and writes:
- facts: one row per source version, appended under `<processed>/<fact>/created_year=/created_month=`,
  each version exactly once: versions already in the table are anti-joined away, so re-processing
  after a crash never duplicates a fact;
- dimensions: complete snapshots rebuilt from the latest state of their source tables, each written
  to a new `version-<run_id>` folder and switched to atomically (catalog location + `_current.json`);
- `_latest/<source table>`: the latest version of every dimension source row, so a dimension built
  from a join (staff + department) is always complete even when only one side changed.
The published pointer `<processed>/_current.json` tells the load job what is complete.
Called by glue_jobs/transform.py (Glue) and `totes run` (locally) through `run()`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, StringType, StructField, StructType

from shared import transforms as T
from shared.config import join
from shared.faults import checkpoint
from shared.jobs.extract import JSON_TIMESTAMP_FORMAT, ingestion_path, manifest_path
from shared.lake import read_json, storage_for, write_json
from shared.quality import CORRUPT_COLUMN, REASON_COLUMN, check_rows
from shared.runtime import JobContext
from shared.schema import SOURCE_TABLES
from shared.star import FACT_FOREIGN_KEYS, FACT_SOURCES, FACT_VERSION_KEYS, STAR_SCHEMAS

BOOKMARK = "transform_state"
PARTITION_COLUMNS = ("created_year", "created_month")

# Source tables whose latest state is kept: the inputs of the dimensions.
LATEST_TABLES = frozenset(
    {"address", "department", "design", "currency", "payment_type", "staff", "counterparty", "transaction"}
)
FACT_OF_SOURCE = {source: fact for fact, (source, _) in FACT_SOURCES.items()}
# Validation order: every table after the tables its foreign keys point at.
VALIDATION_ORDER = (
    "address", "department", "design", "currency", "payment_type", "staff", "counterparty",
    "sales_order", "purchase_order", "transaction", "payment",
)  # fmt: skip

DIMENSIONS: dict[str, tuple[Callable[..., DataFrame], tuple[str, ...]]] = {
    "dim_location": (T.dim_location, ("address",)),
    "dim_staff": (T.dim_staff, ("staff", "department")),
    "dim_currency": (T.dim_currency, ("currency",)),
    "dim_design": (T.dim_design, ("design",)),
    "dim_counterparty": (T.dim_counterparty, ("counterparty", "address")),
    "dim_payment_type": (T.dim_payment_type, ("payment_type",)),
    "dim_transaction": (T.dim_transaction, ("transaction",)),
}
FACTS: dict[str, Callable[[DataFrame], DataFrame]] = {
    "fact_sales_order": T.fact_sales_order,
    "fact_purchase_order": T.fact_purchase_order,
    "fact_payment": T.fact_payment,
}


def current_path(processed: str) -> str:
    return join(processed, "_current.json")


def version_path(processed: str, table: str, run_id: str) -> str:
    return join(processed, table, f"version-{run_id}")


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


def _parquet_or_none(spark: SparkSession, location: str | None) -> DataFrame | None:
    return spark.read.parquet(location) if location else None


def run(ctx: JobContext) -> dict[str, Any] | None:
    """Process every published extract run not yet processed; publish and commit."""
    spark, settings = ctx.spark, ctx.settings
    ingestion_store = storage_for(settings.ingestion)
    state: dict[str, Any] = ctx.bookmark(BOOKMARK) or {"extract_watermark": "", "latest": {}, "tables": {}}
    manifests = [
        read_json(ingestion_store, manifest_path(settings.ingestion, name.removesuffix(".json")))
        for name in ingestion_store.list_names(join(settings.ingestion, "_manifests"))
        if name.endswith(".json") and name.removesuffix(".json") > state["extract_watermark"]
    ]
    if not manifests:
        ctx.commit()
        return None

    processed = settings.processed
    cached: list[DataFrame] = []

    def keep(df: DataFrame) -> DataFrame:
        cached.append(df.persist())
        return cached[-1]

    # Validate in dependency order; each table's keys are known once its own rows are validated.
    latest: dict[str, DataFrame] = {}
    changed_sources: set[str] = set()
    valid: dict[str, DataFrame] = {}
    known: dict[str, DataFrame] = {}
    for table in VALIDATION_ORDER:
        source = SOURCE_TABLES[table]
        pk = source.primary_key
        runs = sorted(m["run_id"] for m in manifests if m["tables"].get(table))
        rows = read_ingestion(spark, settings.ingestion, table, runs)
        n_read = n_rejected = 0
        valid[table] = rows.drop(CORRUPT_COLUMN)
        if runs:
            checked = check_rows(source, rows, known)
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
            previous = _parquet_or_none(spark, state["latest"].get(table))
            if n_read > n_rejected:
                merged = valid[table].select(source.column_names)
                if previous is not None:
                    merged = previous.select(source.column_names).unionByName(merged)
                latest[table] = keep(T.latest_versions(merged, pk))
                changed_sources.add(table)
            elif previous is not None:
                latest[table] = previous
            if table in latest:
                known[table] = latest[table].select(pk)
        else:  # fact sources: known ids = ids already in the processed fact table + this batch's
            ids = valid[table].select(pk)
            existing = _existing_fact(spark, state, FACT_OF_SOURCE[table])
            known[table] = ids if existing is None else existing.select(pk).unionByName(ids).distinct()

    tables: dict[str, Any] = dict(state["tables"])
    new_latest = dict(state["latest"])
    for table in sorted(changed_sources):
        location = version_path(join(processed, "_latest"), table, ctx.run_id)
        latest[table].write.mode("errorifexists").parquet(location)
        new_latest[table] = location

    checkpoint("transform:mid")
    for dim, (builder, inputs) in DIMENSIONS.items():
        if not changed_sources.intersection(inputs) or not all(i in latest for i in inputs):
            continue
        location = version_path(processed, dim, ctx.run_id)
        built = keep(builder(*(latest[i] for i in inputs)).coalesce(1))
        built.write.mode("errorifexists").parquet(location)  # fills the cache: the count is cheap
        ctx.report.table(dim).written = built.count()
        tables[dim] = {"location": location, "changed_run": ctx.run_id, "kind": "dimension"}

    date_bounds: list[tuple[Any, Any]] = []
    new_partitions: dict[str, list[tuple[int, int]]] = {}
    for fact, builder in FACTS.items():
        built = builder(valid[FACT_SOURCES[fact][0]]).dropDuplicates(version_key(fact))
        new_versions = with_partitions(built)
        existing = _existing_fact(spark, state, fact)
        if existing is not None:
            partitions = new_versions.select(*PARTITION_COLUMNS).distinct()
            seen = existing.join(F.broadcast(partitions), list(PARTITION_COLUMNS), "left_semi")
            new_versions = new_versions.join(seen.select(version_key(fact)), version_key(fact), "left_anti")
        new_versions = keep(new_versions.withColumn("transform_run_id", F.lit(ctx.run_id)))
        # One action for the count and the date range dim_date must cover.
        dates = [c for c, dim in FACT_FOREIGN_KEYS[fact].items() if dim == "dim_date"]
        summary = new_versions.agg(
            F.count(F.lit(1)).alias("n"),
            F.least(*(F.min(c) for c in dates)).alias("lo"),
            F.greatest(*(F.max(c) for c in dates)).alias("hi"),
            F.collect_set(F.struct(*PARTITION_COLUMNS)).alias("partitions"),
        ).first()
        assert summary is not None
        ctx.report.table(fact).written = summary["n"]
        if summary["n"]:
            (
                new_versions.repartition(*PARTITION_COLUMNS)
                .write.mode("append")
                .partitionBy(*PARTITION_COLUMNS)
                .parquet(fact_path(processed, fact))
            )
            tables[fact] = {"location": fact_path(processed, fact), "changed_run": ctx.run_id, "kind": "fact"}
            date_bounds.append((summary["lo"], summary["hi"]))
            new_partitions[fact] = sorted(
                (p["created_year"], p["created_month"]) for p in summary["partitions"]
            )

    if date_bounds:
        _update_dim_date(ctx, tables, min(b[0] for b in date_bounds), max(b[1] for b in date_bounds))

    published = {
        "run_id": ctx.run_id,
        "extract_runs": sorted(m["run_id"] for m in manifests),
        "tables": tables,
    }
    register_catalog(spark, settings.catalog_database, tables, new_partitions)
    write_json(storage_for(processed), current_path(processed), published)
    checkpoint("transform:before_commit")
    ctx.set_bookmark(
        BOOKMARK,
        {
            "extract_watermark": max(m["run_id"] for m in manifests),
            "latest": new_latest,
            "tables": tables,
        },
    )
    ctx.commit()
    for df in cached:
        df.unpersist()
    return published


def _existing_fact(spark: SparkSession, state: dict[str, Any], fact: str) -> DataFrame | None:
    entry = state["tables"].get(fact)
    return spark.read.parquet(entry["location"]) if entry else None


def _update_dim_date(ctx: JobContext, tables: dict[str, Any], lo: Any, hi: Any) -> None:
    """Extend dim_date to a contiguous calendar covering every date any fact refers to."""
    spark = ctx.spark
    entry = tables.get("dim_date")
    if entry:
        lo, hi = min(lo, _date(entry["min"])), max(hi, _date(entry["max"]))
        if (str(lo), str(hi)) == (entry["min"], entry["max"]):
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
    }
    ctx.report.table("dim_date").written = calendar.count()
    calendar.unpersist()


def _date(text: str) -> Any:
    from datetime import date

    return date.fromisoformat(text)


def register_catalog(
    spark: SparkSession,
    database: str,
    tables: dict[str, Any],
    new_partitions: dict[str, list[tuple[int, int]]],
) -> None:
    """Point the catalog's tables at what this run published (Glue Data Catalog on Glue).

    Dimensions switch location to their new version; facts get this run's new partitions. The
    catalog is an index of the lake, so a table that is missing, or whose location disagrees with
    the lake, is (re-)created and its partitions recovered from the lake itself.
    """
    spark.sql(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    for name, entry in sorted(tables.items()):
        qualified = f"`{database}`.`{name}`"
        location = entry["location"]
        current = _catalog_location(spark, database, name)
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
            elif new_partitions.get(name):
                specs = " ".join(
                    f"PARTITION (created_year = {int(y)}, created_month = {int(m)})"
                    for y, m in new_partitions[name]
                )
                spark.sql(f"ALTER TABLE {qualified} ADD IF NOT EXISTS {specs}")
                spark.sql(f"REFRESH TABLE {qualified}")  # files appended to known partitions
        elif current is None:
            spark.sql(f"CREATE TABLE {qualified} USING PARQUET LOCATION '{location}'")
        elif current.rstrip("/") != _uri(location):
            spark.sql(f"ALTER TABLE {qualified} SET LOCATION '{location}'")


def fact_columns_ddl(fact: str) -> str:
    """The processed fact table's columns: the star's, the lineage column, the partition columns."""
    fields = [*STAR_SCHEMAS[fact].fields, StructField("transform_run_id", StringType())]
    columns = [f"`{f.name}` {f.dataType.simpleString()}" for f in fields]
    return ", ".join([*columns, *(f"`{c}` int" for c in PARTITION_COLUMNS)])


def _uri(location: str) -> str:
    return location if "://" in location else f"file:{location}"


def _catalog_location(spark: SparkSession, database: str, table: str) -> str | None:
    if not spark.catalog.tableExists(f"{database}.{table}"):
        return None
    rows = spark.sql(f"DESCRIBE TABLE EXTENDED `{database}`.`{table}`").collect()
    for row in rows:
        if row["col_name"] == "Location":
            return str(row["data_type"])
    return None
