"""The transform's dimension steps: the dimensions rebuilt from `_latest`, and dim_date extended.

A dimension is a complete snapshot, rebuilt when one of its inputs changed (or its star columns
did) and written to a new `version-<run_id>` folder, which the publication switches to atomically
(catalog location + `_current.json`). A dimension built from one source also writes the rows that
differ from its previous version (`changes-<run_id>`), so the load stages only those. dim_date is a
contiguous calendar covering every date any fact refers to. Called by `shared.jobs.transform.run`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql.types import DateType, StructField, StructType

from shared.contract.registry import CALENDAR, DIMENSIONS, STAR_BUILDS
from shared.jobs.transform.tables import counting, star_columns
from shared.lake.documents import TableEntry, TransformState
from shared.lake.layout import LakeLayout
from shared.runtime.context import JobContext


@dataclass(frozen=True)
class DimensionsBuilt:
    """The new published entries of the dimensions this run rebuilt (the others are unchanged)."""

    tables: Mapping[str, TableEntry]


def build_dimensions(
    ctx: JobContext,
    layout: LakeLayout,
    state: TransformState,
    valid: Mapping[str, DataFrame],
    latest: Mapping[str, DataFrame],
    changed: frozenset[str],
    reshaped: frozenset[str],
) -> DimensionsBuilt:
    """Rebuild every dimension one of whose inputs `changed` or whose columns were `reshaped`.

    `latest` holds the latest state of each dimension source; a dimension some input of which has
    none yet (no rows ever) is not built. `valid` holds this run's valid rows, whose keys select the
    changes of a one-source dimension.
    """
    run_id = ctx.run_id
    tables: dict[str, TableEntry] = {}
    with ctx.phase("dimensions build + write"):
        for dim in DIMENSIONS:
            build = STAR_BUILDS[dim]
            inputs = build.inputs
            if not (changed.intersection(inputs) or dim in reshaped) or not all(i in latest for i in inputs):
                continue
            location = layout.version(dim, run_id)
            rows, written = counting(build.build(*(latest[i] for i in inputs)).coalesce(1))
            rows.write.mode("errorifexists").parquet(location)
            ctx.report.table(dim).written = written()
            entry = TableEntry(location, run_id, "dimension", columns=star_columns(dim))
            previous = state.tables.get(dim)
            if previous is not None and len(inputs) == 1 and dim not in reshaped:
                # The rows of this version that differ from the previous one, so the load stages
                # only those (a big dimension, like dim_transaction, is not re-sent every run).
                (source,), (pk,) = inputs, build.input_keys
                touched = valid[source].select(pk).distinct()
                changes = build.build(latest[source].join(touched, pk, "left_semi")).coalesce(1)
                changes_location = layout.changes(dim, run_id)
                changes.write.mode("errorifexists").parquet(changes_location)
                entry = dataclasses.replace(
                    entry, changes=changes_location, changes_since=previous.changed_run
                )
            tables[dim] = entry
    return DimensionsBuilt(tables)


def update_dim_date(
    ctx: JobContext,
    layout: LakeLayout,
    published: TableEntry | None,
    bounds: tuple[tuple[date, date], ...],
    rebuild: bool = False,
) -> TableEntry | None:
    """dim_date extended to a contiguous calendar covering `bounds` and the `published` one.

    Returns its new entry, or None when the published calendar covers them already (`rebuild`: write
    it again even then, because its star columns changed) or there is nothing to cover.
    """
    if rebuild and published is not None:
        bounds = (*bounds, (_date(published.min), _date(published.max)))
    if not bounds:
        return None
    with ctx.phase("dim_date"):
        lo, hi = min(b[0] for b in bounds), max(b[1] for b in bounds)
        if published is not None:
            lo, hi = min(lo, _date(published.min)), max(hi, _date(published.max))
            if (str(lo), str(hi)) == (published.min, published.max) and not rebuild:
                return None
        span = ctx.spark.createDataFrame([(lo,), (hi,)], StructType([StructField("date", DateType())]))
        location = layout.version(CALENDAR, ctx.run_id)
        calendar, written = counting(STAR_BUILDS[CALENDAR].build(span).coalesce(1))
        calendar.write.mode("errorifexists").parquet(location)
        ctx.report.table(CALENDAR).written = written()
    columns = star_columns(CALENDAR)
    return TableEntry(location, ctx.run_id, "dimension", columns=columns, min=str(lo), max=str(hi))


def _date(text: str | None) -> date:
    if text is None:
        raise ValueError(f"the published {CALENDAR} entry records no min/max date")
    return date.fromisoformat(text)
