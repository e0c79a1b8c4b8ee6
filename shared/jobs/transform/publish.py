"""The transform's last steps: publish what the run made complete, then commit its bookmark.

Publication registers the tables in the catalog, then writes the published pointer
`<processed>/_current.json` (`Published`), which tells the load job what is complete. The commit
prunes the versions neither the committed state nor the new one needs (shared/jobs/transform/
retention.py), then commits the new `TransformState` as the job's bookmark: a run that dies
before it leaves the committed state as it was, and the next run does the work again (facts
exactly once, see shared/jobs/transform/facts.py). Called by `shared.jobs.transform.run`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import Future

from shared.jobs.transform.catalog import register_catalog
from shared.jobs.transform.retention import prune_versions
from shared.lake.documents import Published, TableEntry, TransformState, write_document
from shared.lake.layout import LakeLayout
from shared.lake.storage import storage_for
from shared.runtime.context import JobContext
from shared.runtime.faults import checkpoint

BOOKMARK = "transform_state"  # the bookmark context holding the TransformState: a stable name


def publish(
    ctx: JobContext,
    layout: LakeLayout,
    tables: Mapping[str, TableEntry],
    new_partitions: Mapping[str, Sequence[tuple[int, int]]],
    reshaped: Collection[str],
    extract_runs: Sequence[str],
    catalog_ready: Future[None],
) -> Published:
    """Register `tables` in the catalog and write the published pointer; returns it."""
    published = Published(ctx.run_id, tuple(extract_runs), dict(tables))
    with ctx.phase("catalog + publish"):
        catalog_ready.result()  # raises what the warm-up met, e.g. an unreachable metastore
        register_catalog(
            ctx.spark, ctx.settings.catalog_database, tables, new_partitions, ctx.run_id, reshaped
        )
        write_document(storage_for(layout.processed), layout.published, published)
    return published


def commit(ctx: JobContext, layout: LakeLayout, committed: TransformState, new: TransformState) -> None:
    """Prune what neither state needs, then commit `new` as the bookmark."""
    with ctx.phase("retention"):
        # Before the commit, so both the committed state and the new one keep what they point at.
        prune_versions(storage_for(layout.processed), layout, [committed, new])
    checkpoint("transform:before_commit")
    ctx.set_bookmark(BOOKMARK, new.to_json())
    ctx.commit()
