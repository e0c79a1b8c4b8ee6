"""The extract job: ToteSys tables over JDBC -> JSON in the ingestion zone, incrementally.

Each run writes new objects only: `<ingestion>/<table>/extract_run=<run_id>/part-*.json`, every row
carrying `_extract_run_id`. The run is published by a `Manifest` at `<ingestion>/_manifests/<run_id>.json`
(shared/lake/layout.py, shared/lake/documents.py) written after all its data and just before the
bookmark commit: the transform reads only runs with
a manifest, so output of a run that died half-way is never read as complete (and its rows are
extracted again by the next run, from the uncommitted bookmark: extraction is at-least-once, and
the transform de-duplicates versions by (primary key, last_updated)).
Source columns the contract does not know are not extracted, and said so in the run's message and
manifest (never dropped silently); a missing contract column stops the run naming table and column.
Called by glue_jobs/extract.py (Glue) and `totes run` (locally) through `run()`.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import functions as F

from shared.contract.source import EXTRACT_ORDER, SOURCE_TABLES, SourceTable
from shared.jdbc.sources import Increment
from shared.lake.documents import Manifest, write_document
from shared.lake.layout import LakeLayout
from shared.lake.storage import storage_for
from shared.runtime.context import JobContext
from shared.runtime.faults import checkpoint
from shared.runtime.sizing import small_shuffles

JSON_TIMESTAMP_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSSSS"
ROWS_PER_JSON_FILE = 1_000_000

Reader = Callable[[JobContext, SourceTable], Increment]


def transformation_ctx(table: str) -> str:
    """Stable bookmark context names: renaming one would re-extract that table from scratch."""
    return f"extract_{table}"


def _write(ctx: JobContext, layout: LakeLayout, name: str, increment: Increment) -> int:
    """Write an increment's rows as this run's JSON of table `name`; how many rows it had."""
    if increment.rows is None:
        return 0
    count = increment.count if increment.count is not None else increment.rows.count()
    if count:
        files = max(1, -(-count // ROWS_PER_JSON_FILE))
        with ctx.phase("json write"):
            (
                increment.rows.withColumn("_extract_run_id", F.lit(ctx.run_id))
                .coalesce(files)
                .write.mode("errorifexists")  # never overwrite: every run writes new objects
                .option("timestampFormat", JSON_TIMESTAMP_FORMAT)
                .option("ignoreNullFields", "false")
                .json(layout.ingestion_run(name, ctx.run_id))
            )
    return count


def run(ctx: JobContext, read: Reader) -> Manifest | None:
    """Extract every table's increment; publish a manifest if anything was new; commit bookmarks.

    `read` is the runtime's incremental reader (local bookmark emulation or Glue's own).
    Returns the manifest, or None when no table had new rows (then nothing at all is written).
    """
    layout = LakeLayout.of(ctx.settings)
    counts: dict[str, int] = {}
    notes: list[str] = []
    # Each read is persisted: the fetch from PostgreSQL happens in the reader. Its only shuffle is
    # a one-row aggregate (high-water mark and count), and the JSON write has none, so one shuffle
    # partition and no AQE stages for the whole job (set once: each setting is a py4j call).
    with small_shuffles(ctx.spark):
        for name in EXTRACT_ORDER:
            table = SOURCE_TABLES[name]
            with ctx.phase("jdbc read"):
                increment = read(ctx, table)
            notes.extend(increment.notes)
            try:
                count = _write(ctx, layout, name, increment)
            finally:
                increment.release()
            counts[name] = count
            ctx.report.table(name).read = count
            ctx.report.table(name).written = count
            if increment.bookmark is not None:
                ctx.set_bookmark(transformation_ctx(name), increment.bookmark)
            if count:
                checkpoint("extract:mid")
    manifest = None
    if any(counts.values()):
        manifest = Manifest(ctx.run_id, {t: n for t, n in counts.items() if n}, tuple(notes))
        write_document(storage_for(layout.ingestion), layout.manifest(ctx.run_id), manifest)
    checkpoint("extract:before_commit")
    ctx.commit()
    if notes:  # after commit, which records the run as SUCCEEDED with an empty message
        ctx.report.message = "; ".join(notes)
    return manifest
