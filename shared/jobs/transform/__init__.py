"""The transform job: new ingestion runs -> the three stars as Parquet, registered in the catalog.

Reads only extract runs published (by manifest) after its bookmark, validates every row against the
contract (rejects go to the quarantine zone with their reason), and writes:
- `_latest/<source table>`: the latest version of every dimension source row (validate.py);
- dimensions: complete snapshots rebuilt from `_latest`, each in a new `version-<run_id>` folder
  switched to atomically, and dim_date covering every date a fact refers to (dimensions.py);
- facts: one row per source version, appended exactly once, even after a crash; versions a run
  that died before its commit appended are adopted (facts.py), and months holding more than
  COMPACT_ABOVE_FILES files compacted into one;
then registers the tables in the catalog (catalog.py), writes the published pointer
`<processed>/_current.json` that tells the load what is complete, prunes old versions
(retention.py) and commits its bookmark, a `TransformState` (publish.py). Every path comes from
`shared.lake.layout.LakeLayout`, every table's builder and inputs from shared/contract/registry.py.
Called by glue_jobs/transform.py (Glue) and `totes run` (locally) through `run()`.
"""

from __future__ import annotations

import dataclasses

from shared.contract.registry import CALENDAR, FACTS
from shared.jobs.transform.catalog import warm_up_catalog
from shared.jobs.transform.dimensions import build_dimensions, update_dim_date
from shared.jobs.transform.facts import append_facts, compact
from shared.jobs.transform.publish import BOOKMARK, commit, publish
from shared.jobs.transform.tables import Persisted, star_columns
from shared.jobs.transform.validate import pending_work, update_latest, validate
from shared.lake.compaction import COMPACT_ABOVE_FILES, recover
from shared.lake.documents import Published, TransformState
from shared.lake.layout import LakeLayout
from shared.lake.storage import storage_for
from shared.runtime.context import JobContext
from shared.runtime.faults import checkpoint
from shared.runtime.sizing import sized_for

__all__ = ["BOOKMARK", "COMPACT_ABOVE_FILES", "run"]


def run(ctx: JobContext) -> Published | None:
    """Process every published extract run not yet processed; publish and commit.

    Returns what it published (None: nothing to do, the bookmark committed as it was).
    """
    layout = LakeLayout.of(ctx.settings)
    state = TransformState.from_json(ctx.bookmark(BOOKMARK))
    # A run that died switching a compacted partition left a journal: finish it before reading facts.
    recover(storage_for(layout.processed), [layout.table(fact) for fact in FACTS])
    pending = pending_work(ctx, layout, state)
    if not pending:
        ctx.commit()
        return None
    # A 20-minute batch runs with Spark's shuffles sized to it (shared/runtime/sizing.py).
    with sized_for(ctx.spark, pending.total_rows):
        catalog_ready = warm_up_catalog(ctx.spark, ctx.settings.catalog_database)
        persisted = Persisted()

        validated = validate(ctx, layout, state, pending, persisted)
        latest = update_latest(ctx, layout, state, validated)
        checkpoint("transform:mid")
        dimensions = build_dimensions(
            ctx, layout, state, validated.valid, latest.latest, latest.changed, pending.reshaped
        )
        one_run = {table for table in validated.with_rows if pending.one_run(table)}
        facts = append_facts(
            ctx, layout, validated.valid, validated.with_rows, validated.months, state.committed_run, one_run
        )
        compact(ctx, layout, facts.months, above=COMPACT_ABOVE_FILES)
        tables = {**state.tables, **dimensions.tables, **facts.tables}
        calendar = update_dim_date(
            ctx, layout, state.tables.get(CALENDAR), facts.date_bounds, rebuild=CALENDAR in pending.reshaped
        )
        if calendar is not None:
            tables[CALENDAR] = calendar
        # A reshaped table with no new rows (a fact) keeps its entry, but it now has the star's columns.
        for table in pending.reshaped & tables.keys():
            tables[table] = dataclasses.replace(tables[table], columns=star_columns(table))

        published = publish(
            ctx, layout, tables, facts.months, pending.reshaped, pending.extract_runs, catalog_ready
        )
    watermark = max((m.run_id for m in pending.manifests), default=state.extract_watermark)
    commit(ctx, layout, state, TransformState(ctx.run_id, watermark, latest.locations, tables))
    persisted.release()
    return published
