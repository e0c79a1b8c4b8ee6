"""The load job: what the transform published since the last load -> the PostgreSQL warehouse.

Stage over JDBC (Spark writes `etl_staging.<table>`), then apply everything in one transaction
(shared/jdbc/warehouse.py): the pending schema migrations, dimensions upserted by key, fact versions
inserted once. The bookmark is the
last transform run loaded; facts are selected by their `transform_run_id`, dimensions by the run
that last changed them. A failure before the commit leaves the warehouse as it was; a failure after
it is harmless because applying the same rows again changes nothing. After the commit, on Glue,
the load publishes the freshness of every source table (`publish_freshness`).
Called by glue_jobs/load.py (Glue) and `totes run` (locally) through `run()`.
"""

from __future__ import annotations

import sys

from pyspark.sql import functions as F

from shared.contract.star import FACT_VERSION_KEYS, STAR_SCHEMAS
from shared.jdbc.warehouse import LOAD_ORDER, JdbcSession, apply_load, prepare_staging, write_staging
from shared.jobs.freshness import TableFreshness, freshness_metrics, held_through, measure
from shared.jobs.transform.tables import LINEAGE_COLUMN, counting, read_processed
from shared.lake.documents import LoadBookmark, Published, read_document
from shared.lake.layout import LakeLayout
from shared.lake.storage import storage_for
from shared.runtime.context import JobContext
from shared.runtime.faults import checkpoint

BOOKMARK = "load_watermark"  # the bookmark context holding the LoadBookmark: a stable name


def run(ctx: JobContext) -> dict[str, int] | None:
    """Load every transform run published after the bookmark; commit. Returns rows changed per table."""
    spark, settings = ctx.spark, ctx.settings
    warehouse = settings.require_warehouse()
    layout = LakeLayout.of(settings)
    published = read_document(storage_for(layout.processed), layout.published, Published)
    watermark = LoadBookmark.from_json(ctx.bookmark(BOOKMARK)).transform_run_id
    if published is None or published.run_id <= watermark:
        with ctx.phase("warehouse migrations"):
            apply_load(spark, warehouse, [])  # nothing to load: the pending migrations only
        ctx.commit()
        publish_freshness(ctx, watermark)
        return None
    # A dimension version that records its changes since a version already loaded is staged by
    # those changes only; otherwise (first load, missed runs) in full.
    to_stage = {
        table: entry.changes_after(watermark) or entry.location
        for table in LOAD_ORDER
        if (entry := published.tables.get(table)) is not None and entry.changed_run > watermark
    }
    with ctx.phase("staging schema"):
        prepare_staging(spark, warehouse, list(to_stage))

    with ctx.phase("stage (jdbc write)"):
        for table, location in to_stage.items():
            # With the star's schema: a fact's files from before a column was added read it as NULL.
            rows = read_processed(spark, table, location)
            if table in FACT_VERSION_KEYS:
                rows = rows.where(
                    (F.col(LINEAGE_COLUMN) > F.lit(watermark))
                    & (F.col(LINEAGE_COLUMN) <= F.lit(published.run_id))
                )
            rows, staged_rows = counting(rows.select([f.name for f in STAR_SCHEMAS[table].fields]))
            write_staging(rows, warehouse, table)
            ctx.report.table(table).read = staged_rows()

    checkpoint("load:before_apply")
    with ctx.phase("apply (one transaction)"):
        changed = apply_load(spark, warehouse, list(to_stage))
    checkpoint("load:after_apply")
    for table, count in changed.items():
        ctx.report.table(table).loaded = count
    ctx.set_bookmark(BOOKMARK, LoadBookmark(published.run_id).to_json())
    ctx.commit()
    publish_freshness(ctx, published.run_id)
    return changed


def publish_freshness(ctx: JobContext, loaded_run: str) -> list[TableFreshness] | None:
    """After the commit, on a runtime that publishes metrics (Glue): the freshness of every source
    table (shared/jobs/freshness.py) now that the warehouse holds transform run `loaded_run`.

    Published even when nothing was new, so a quiet source keeps the alarm fed with zeros. A
    failure to measure or publish is one line on stderr and does not fail the load, which has
    committed: the missing datapoint is what the alarm treats as breaching (terraform/monitoring.tf).
    """
    if not ctx.publishes_metrics:
        return None
    settings = ctx.settings
    try:
        layout = LakeLayout.of(settings)
        held = held_through(layout, storage_for(layout.state), loaded_run)
        source = JdbcSession(ctx.spark, settings.require_totesys())
        try:
            warehouse = JdbcSession(ctx.spark, settings.require_warehouse())
            try:
                tables = measure(source.query, warehouse.query, held)
            finally:
                warehouse.close()
        finally:
            source.close()
        ctx.publish_metrics(freshness_metrics(tables))
    except Exception as exc:
        from shared.runtime.registry import failure_reason  # the registry imports this module

        print(
            f"totes load: freshness not published: {failure_reason(exc, settings)}",
            file=sys.stderr,
            flush=True,
        )
        return None
    return tables
