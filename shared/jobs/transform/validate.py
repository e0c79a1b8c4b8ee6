"""The transform's first steps: what is pending, every new row validated, the `_latest` snapshots updated.

`pending_work` finds the extract runs published (by manifest) after the bookmark and the published
tables a star change reshaped. `validate` reads those runs' rows of every source table in
`VALIDATION_ORDER` (each table after the tables its foreign keys point at, so their keys are known)
and checks them against the contract (shared/contract/quality.py); rejects go to the quarantine
zone with their reason. `update_latest` merges the valid rows of the dimension sources
(`LATEST_TABLES`) into their latest state and writes it as a new `_latest` snapshot, so a dimension
built from a join (staff + department) is complete even when only one side changed.
Called by `shared.jobs.transform.run`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from shared import transforms as T
from shared.contract.quality import REASON_COLUMN, KnownKeys, check_rows
from shared.contract.references import batch_references, resolve_batches
from shared.contract.registry import FACT_OF_SOURCE, LATEST_TABLES, VALIDATION_ORDER
from shared.contract.source import SOURCE_TABLES
from shared.jobs.transform.facts import committed_fact
from shared.jobs.transform.tables import Persisted, read_ingestion, read_latest, reshaped_tables
from shared.lake.documents import DocumentError, Manifest, TransformState, read_document
from shared.lake.layout import LakeLayout
from shared.lake.storage import storage_for
from shared.runtime.context import JobContext
from shared.runtime.sizing import SMALL_BATCH_ROWS

# Up to SMALL_BATCH_ROWS new rows of a table (by the extract's manifests), its foreign keys are
# checked against only the keys it refers to (shared/contract/references.py): a 20-minute batch then costs
# the same whatever the history. Above it (a first load, a catch-up), against the whole key sets, so
# a big batch's JSON is not parsed twice.


@dataclass(frozen=True)
class Pending:
    """What a run has to do: the extract runs not processed yet, the tables a star change reshaped."""

    manifests: tuple[Manifest, ...]
    reshaped: frozenset[str]

    def __bool__(self) -> bool:
        return bool(self.manifests or self.reshaped)

    @property
    def extract_runs(self) -> tuple[str, ...]:
        return tuple(sorted(m.run_id for m in self.manifests))

    def rows(self, table: str) -> int:
        """New rows of `table`, by the manifests."""
        return sum(m.rows(table) for m in self.manifests)

    def one_run(self, table: str) -> bool:
        """Whether the new rows of `table` come from at most one extract run: each version once."""
        return sum(1 for m in self.manifests if m.rows(table)) <= 1

    @property
    def total_rows(self) -> int:
        """New rows of every table, by the manifests."""
        return sum(n for m in self.manifests for n in m.tables.values())


def pending_work(ctx: JobContext, layout: LakeLayout, state: TransformState) -> Pending:
    """The published extract runs after the bookmark's watermark, and the reshaped tables.

    A star change (shared/contract/star.py) reaches the lake with no new data too: dimensions rebuilt
    with their new columns, the catalog's tables given them.
    """
    storage = storage_for(layout.ingestion)
    manifests = []
    for name in storage.list_names(layout.manifests):
        run_id = layout.manifest_run_id(name)
        if run_id is None or run_id <= state.extract_watermark:
            continue
        manifest = read_document(storage, layout.manifest(run_id), Manifest)
        if manifest is None:  # listed a moment ago: its run would be skipped, never processed
            raise DocumentError(f"{layout.manifest(run_id)}: listed, then gone")
        manifests.append(manifest)
    return Pending(tuple(manifests), reshaped_tables(ctx.spark, state))


@dataclass(frozen=True)
class Validated:
    """The valid rows of every source table with new rows (no entry: none), and what came with them.

    `previous`: the committed `_latest` snapshot of each dimension source that has one; `changed`:
    the dimension sources with at least one new valid row; `small`: the tables whose batch is at
    most SMALL_BATCH_ROWS rows; `with_rows`: every source table with at least one new valid row;
    `months`: per fact source read, the (year, month) of `created_at` of its rows (its fact's partitions).
    """

    valid: Mapping[str, DataFrame]
    previous: Mapping[str, DataFrame]
    changed: frozenset[str]
    small: frozenset[str]
    with_rows: frozenset[str]
    months: Mapping[str, tuple[tuple[int, int], ...]]


def _tallies(table: str) -> list[Column]:
    """What validation counts of a table's batch: rows read and rejected, and a fact source's months.

    A fact source's months (year and month of created_at), which its fact's de-duplication reads,
    are those of every row read, a superset of the valid rows' (reading a month more costs a
    little, never a duplicate).
    """
    month = F.struct(F.year("created_at").alias("year"), F.month("created_at").alias("month"))
    return [
        F.count(F.lit(1)).alias("read"),
        F.sum((F.col(REASON_COLUMN) != "").cast("int")).alias("rejected"),
        *([F.collect_set(month).alias("months")] if table in FACT_OF_SOURCE else []),
    ]


def validate(
    ctx: JobContext, layout: LakeLayout, state: TransformState, pending: Pending, persisted: Persisted
) -> Validated:
    """Read and validate every source table's new rows; quarantine the rejects with their reason.

    Foreign keys are checked against the keys known once the referenced table is validated: a
    dimension source's latest state and this batch's rows, a fact source's processed table and this
    batch's rows. The small batches (a 20-minute change) are settled together, in two Spark jobs
    (shared/contract/references.py `resolve_batches`); a batch it leaves, one table at a time.
    """
    spark = ctx.spark
    valid: dict[str, DataFrame] = {}
    known: dict[str, DataFrame] = {}
    changed: set[str] = set()
    with_rows: set[str] = set()
    months: dict[str, tuple[tuple[int, int], ...]] = {}
    small = frozenset(t for t in VALIDATION_ORDER if pending.rows(t) <= SMALL_BATCH_ROWS)
    with ctx.phase("json read + validate"):
        # A table with no new rows gets no DataFrame (an empty one from Python costs about 0.1 s of
        # py4j); its known keys are the committed ones.
        rows: dict[str, DataFrame] = {}
        for table in VALIDATION_ORDER:
            runs = sorted(m.run_id for m in pending.manifests if m.rows(table))
            if runs:
                rows[table] = read_ingestion(spark, layout, table, runs)
        previous = {
            t: read_latest(spark, t, loc) for t in sorted(LATEST_TABLES) if (loc := state.latest.get(t))
        }
        facts = {
            t: df for t, f in FACT_OF_SOURCE.items() if (df := committed_fact(spark, state, f)) is not None
        }
        committed = {t: df.select(SOURCE_TABLES[t].primary_key) for t, df in {**previous, **facts}.items()}
        # The small batches checked by every rule but their foreign keys, persisted: the jobs that
        # settle them (references.resolve_batches) read each JSON file once, and for every batch
        # they settle that check is the full one.
        alone = {t: check_rows(SOURCE_TABLES[t], df) for t, df in rows.items() if t in small}
        resolved = resolve_batches(
            {t: persisted.keep(c.annotated) for t, c in alone.items()}, committed, _tallies
        )
        for table in VALIDATION_ORDER:
            source = SOURCE_TABLES[table]
            pk = source.primary_key
            n_read = n_rejected = 0
            if table in rows:
                counts: Mapping[str, Any] | None = resolved.get(table)
                if counts is not None:
                    checked = alone[table]
                else:
                    keys: Mapping[str, KnownKeys] = known
                    if table in small:
                        # One job collects the keys the batch refers to (and the tallies of the batch
                        # checked by every rule but its foreign keys), one finds which keys exist;
                        # when all of them do, those tallies are the run's.
                        references = batch_references(source, alone[table].annotated, known, _tallies(table))
                        keys = references.keys
                        counts = references.also if references.all_found else None
                    checked = check_rows(source, rows[table], keys)
                    # Persisting the annotated rows lets the valid side, the rejects and (when a key
                    # was unknown) the counts share one parse and one validation.
                    annotated = persisted.keep(checked.annotated)
                    if counts is None:
                        tallied = annotated.agg(*_tallies(table)).first()
                        assert tallied is not None  # an aggregate without grouping has one row
                        counts = tallied.asDict()
                n_read, n_rejected = counts["read"], counts["rejected"] or 0
                if table in FACT_OF_SOURCE:
                    months[table] = tuple(
                        sorted((m["year"], m["month"]) for m in counts["months"] if m["year"] is not None)
                    )
                valid[table] = checked.valid
                if n_rejected:
                    (
                        checked.rejected.withColumn("_transform_run_id", F.lit(ctx.run_id))
                        .coalesce(1)
                        .write.mode("errorifexists")
                        .json(layout.quarantine_run(table, ctx.run_id))
                    )
            if n_read > n_rejected:
                with_rows.add(table)
            ctx.report.table(table).read = n_read
            ctx.report.table(table).quarantined = n_rejected
            ids = valid[table].select(pk) if table in valid else None
            before = committed.get(table)
            if table in LATEST_TABLES:
                if ids is not None and n_read > n_rejected:
                    changed.add(table)
                    # The merged state's keys, without computing the merge: the previous ones and the batch's.
                    known[table] = ids if before is None else before.unionByName(ids)
                elif before is not None:
                    known[table] = before
            elif before is not None:  # fact sources: the ids in the processed fact table + this batch's
                known[table] = (before if ids is None else before.unionByName(ids)).distinct()
            elif ids is not None:
                known[table] = ids
    return Validated(valid, previous, frozenset(changed), small, frozenset(with_rows), months)


@dataclass(frozen=True)
class LatestUpdate:
    """The latest state of every dimension source that has one (read back from the lake, never
    recomputed), and where each one's snapshot is now (`locations`, for the new bookmark)."""

    latest: Mapping[str, DataFrame]
    locations: Mapping[str, str]
    changed: frozenset[str]


def update_latest(
    ctx: JobContext, layout: LakeLayout, state: TransformState, validated: Validated
) -> LatestUpdate:
    """Merge each changed dimension source's valid rows into its latest state; write it as a new snapshot."""
    latest = {t: df for t, df in validated.previous.items() if t not in validated.changed}
    locations = dict(state.latest)
    with ctx.phase("latest snapshots write"):
        for table in sorted(validated.changed):
            source = SOURCE_TABLES[table]
            pk = source.primary_key
            changes = validated.valid[table].select(source.column_names)
            previous = validated.previous.get(table)
            if previous is None:
                merged = T.latest_versions(changes, pk)
            elif table in validated.small:  # only the keys this batch touches are aggregated
                merged = T.updated_latest(previous.select(source.column_names), changes, pk)
            else:
                merged = T.latest_versions(previous.select(source.column_names).unionByName(changes), pk)
            location = layout.latest_version(table, ctx.run_id)
            merged.write.mode("errorifexists").parquet(location)
            # The dimensions read it back, not recompute it.
            latest[table] = read_latest(ctx.spark, table, location)
            locations[table] = location
    return LatestUpdate(latest, locations, validated.changed)
