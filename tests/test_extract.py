"""The extract job with a reader that needs no database: what it writes where the layout says, and
the manifest that publishes the run, a typed `Manifest` read back through `read_document`."""

from __future__ import annotations

from datetime import UTC, datetime

from pyspark.sql import SparkSession

from shared.config import Settings
from shared.contract.source import SOURCE_TABLES, SourceTable
from shared.jdbc.sources import Increment
from shared.jobs import extract
from shared.lake.documents import Manifest, read_document
from shared.lake.layout import LakeLayout
from shared.lake.storage import LocalStorage
from shared.runtime.context import JobContext, LocalJobContext

NOTE = "totesys.currency: column extra is not in the contract (SPEC.md section 1) and is not extracted"


def currency_only(spark: SparkSession):  # an extract.Reader: two currencies, every other table empty
    def read(ctx: JobContext, table: SourceTable) -> Increment:
        if table.name != "currency":
            return Increment(spark.createDataFrame([], table.spark_schema), None, count=0)
        at = datetime(2024, 11, 15, 8, 0, tzinfo=UTC)
        rows = spark.createDataFrame([(1, "GBP", at, at), (2, "EUR", at, at)], table.spark_schema)
        return Increment(rows, {"last_updated": "2024-11-15 08:00:00.000000", "keys": [1, 2]}, (NOTE,))

    return read


def test_an_extract_publishes_its_rows_with_a_manifest_and_commits_its_bookmarks(spark, tmp_path) -> None:
    settings = Settings(lake_root=str(tmp_path / "lake"))
    layout = LakeLayout.of(settings)
    ctx = LocalJobContext("extract", spark, settings)

    manifest = extract.run(ctx, currency_only(spark))

    assert manifest == Manifest(ctx.run_id, {"currency": 2}, (NOTE,))  # tables without rows left out
    assert read_document(LocalStorage(), layout.manifest(ctx.run_id), Manifest) == manifest
    written = spark.read.schema(SOURCE_TABLES["currency"].spark_schema).json(
        layout.ingestion_run("currency", ctx.run_id)
    )
    assert sorted(r.currency_code for r in written.collect()) == ["EUR", "GBP"]
    assert LocalJobContext("extract", spark, settings).bookmark("extract_currency") == {
        "last_updated": "2024-11-15 08:00:00.000000",
        "keys": [1, 2],
    }
    assert (ctx.report.status, ctx.report.message) == ("SUCCEEDED", NOTE)


def test_an_extract_with_nothing_new_writes_no_manifest(spark, tmp_path) -> None:
    settings = Settings(lake_root=str(tmp_path / "lake"))
    ctx = LocalJobContext("extract", spark, settings)

    def nothing(ctx: JobContext, table: SourceTable) -> Increment:
        return Increment(spark.createDataFrame([], table.spark_schema), None, count=0)

    assert extract.run(ctx, nothing) is None
    assert LocalStorage().list_names(LakeLayout.of(settings).ingestion) == []
    assert ctx.report.status == "SUCCEEDED"
