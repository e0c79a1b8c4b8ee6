"""Freshness: how long the oldest source change the warehouse does not hold yet has been waiting.

SPEC.md section 3: "A change written to the source must be visible in the warehouse within 30
minutes". So freshness is measured per source table, at a moment `now`, as

    freshness(T, now) = now - (the oldest change of T in ToteSys the warehouse does not hold), or
                        0 when the warehouse holds every change of T,

in minutes; a table is **stale** when that is above `FRESHNESS_LIMIT_MINUTES` (30): some change has
been waiting longer than the contract allows. A quiet source is not stale (nothing is waiting),
and a change made a minute ago counts one minute, however old the warehouse's newest row is.

What "the warehouse holds" a change of T means:

- Every change written before the start of the newest extract run that the warehouse's load holds
  (`held_through`: the newest SUCCEEDED extract run older than the transform run the load
  committed; a run id is its start, shared/lake/storage.py). That extract read everything written
  before it started, and the transform and the load after it delivered it: a dimension (type 1,
  no `last_updated` of its own) holds it as its latest values, a fact as a version; a row the
  contract rejected is in the quarantine (`totes status` lists it), not waiting.
- For a fact's source (sales_order, purchase_order, payment), also every version the fact itself
  holds: its newest `last_updated_date + last_updated_time` (SPEC: a fact version is identified by
  (source id, last_updated)), so a change an extract read while it was running counts as held.

The same definition, with the same SQL (`source_sql`, `warehouse_sql`), is what `totes status`
shows (shared/local/freshness.py, over psycopg) and what the load publishes on AWS after its commit
(shared/jobs/load.py, over its JDBC sessions; the CloudWatch metric `FreshnessMinutes`,
shared/runtime/glue.py; terraform/monitoring.tf alarms above 30). ToteSys timestamps are UTC
without a time zone, like the run ids. Why this measure and not "now minus the newest row":
docs/adr/0011-freshness-is-the-wait-of-the-oldest-change-not-held.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.contract.registry import FACT_OF_SOURCE  # source table -> the fact holding its versions
from shared.contract.source import SOURCE_TABLES
from shared.lake.documents import DocumentError, read_document
from shared.lake.layout import LakeLayout
from shared.lake.storage import RUN_ID_FORMAT, Storage
from shared.runtime.context import JobReport, Metric

FRESHNESS_LIMIT_MINUTES = 30.0  # SPEC.md section 3
METRIC_NAME = "FreshnessMinutes"
FACT_NEWEST = "last_updated_date + last_updated_time"

Query = Callable[[str], Sequence[Sequence[Any]]]


@dataclass(frozen=True)
class TableFreshness:
    """One source table's freshness at `now` (see the module docstring for the definition)."""

    table: str
    source_newest: datetime | None  # max(last_updated) in ToteSys (None: the table is empty)
    warehouse_newest: datetime | None  # the newest change of it the warehouse holds (None: none)
    held_by: str  # where `warehouse_newest` comes from
    oldest_waiting: datetime | None  # the oldest change not held yet (None: nothing waits)
    minutes: float

    @property
    def stale(self) -> bool:
        return self.minutes > FRESHNESS_LIMIT_MINUTES

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "source_newest": iso(self.source_newest),
            "warehouse_newest": iso(self.warehouse_newest),
            "held_by": self.held_by,
            "oldest_waiting": iso(self.oldest_waiting),
            "freshness_minutes": round(self.minutes, 1),
            "stale": self.stale,
        }


def iso(value: datetime | None) -> str | None:
    """A timestamp as `totes status` and its JSON show it: 'YYYY-MM-DD HH:MM:SS.fff'."""
    return None if value is None else value.isoformat(sep=" ", timespec="milliseconds")


def run_start(run_id: str) -> datetime:
    """When the run `run_id` started (UTC, naive like ToteSys' timestamps)."""
    return datetime.strptime(run_id, RUN_ID_FORMAT)


def held_through(layout: LakeLayout, store: Storage, loaded_transform_run: str) -> str | None:
    """The newest SUCCEEDED extract run older than the transform run the warehouse holds (its id).

    None: the warehouse holds no load yet. Only the run records needed are read, newest first.
    """
    if not loaded_transform_run:
        return None
    keys = sorted(
        (key for name in store.list_names(layout.runs) if (key := layout.run_record_of(name))), reverse=True
    )
    for run_id, job in keys:
        if job != "extract" or run_id >= loaded_transform_run:
            continue
        try:
            record = read_document(store, layout.run_record(run_id, job), JobReport)
        except DocumentError:
            continue  # a record being written, or of another version: an older one decides
        if record is not None and record.status == "SUCCEEDED":
            return run_id
    return None


def _literal(value: datetime) -> str:
    return f"TIMESTAMP '{value.isoformat(sep=' ', timespec='microseconds')}'"


def warehouse_sql(facts: Iterable[str]) -> str:
    """(fact, its newest last_updated) of each of `facts` (tables that exist), one statement."""
    return " UNION ALL ".join(f"SELECT '{fact}', max({FACT_NEWEST}) FROM \"{fact}\"" for fact in facts)


def existing_sql(tables: Iterable[str]) -> str:
    names = ", ".join(f"'{t}'" for t in tables)
    return (
        "SELECT table_name FROM information_schema.tables "
        f"WHERE table_schema = 'public' AND table_name IN ({names})"
    )


def source_sql(cut: datetime | None, fact_newest: Mapping[str, datetime | None]) -> str:
    """Per source table: (table, newest change, newest change held, oldest change waiting), one statement.

    `cut`: the start of `held_through`'s extract run (None: nothing is held); `fact_newest`: per
    fact source, the newest version its fact holds.
    """
    parts = []
    for table in SOURCE_TABLES:
        waiting = "TRUE" if cut is None else f"last_updated >= {_literal(cut)}"
        newest = fact_newest.get(table)
        if newest is not None:
            waiting = f"({waiting}) AND last_updated > {_literal(newest)}"
        parts.append(
            f"SELECT '{table}', max(last_updated), "
            f"max(last_updated) FILTER (WHERE NOT ({waiting})), "
            f"min(last_updated) FILTER (WHERE {waiting}) "
            f'FROM "{table}"'
        )
    return " UNION ALL ".join(parts)


def _timestamp(value: Any) -> datetime | None:
    """A value of a query (psycopg: datetime; JDBC getString: 'YYYY-MM-DD HH:MM:SS[.fff]')."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def fact_newest(warehouse: Query) -> dict[str, datetime | None]:
    """Per fact source whose fact exists in the warehouse: the newest version the fact holds."""
    facts = sorted(str(row[0]) for row in warehouse(existing_sql(FACT_OF_SOURCE.values())))
    if not facts:
        return {}
    by_fact = {str(row[0]): _timestamp(row[1]) for row in warehouse(warehouse_sql(facts))}
    return {source: by_fact.get(fact) for source, fact in FACT_OF_SOURCE.items() if fact in by_fact}


def source_freshness(
    source: Query,
    held: Mapping[str, datetime | None],
    held_run: str | None,
    now: datetime | None = None,
) -> list[TableFreshness]:
    """Every source table's freshness, by the module's definition, in the contract's order.

    `source` runs one SQL statement on ToteSys and returns its rows; `held` is `fact_newest(...)` of
    the warehouse; `held_run` is `held_through(...)`; `now` defaults to the current UTC time.
    """
    now = now or datetime.now(UTC).replace(tzinfo=None)
    cut = run_start(held_run) if held_run else None
    out = []
    for row in source(source_sql(cut, held)):
        table = str(row[0])
        newest, before_cut, waiting = (_timestamp(v) for v in row[1:4])
        fact = FACT_OF_SOURCE.get(table)
        if fact is not None:  # what the fact itself holds
            warehouse_newest = held.get(table)
            held_by = f"{fact}.{FACT_NEWEST}" if table in held else f"{fact} (not in the warehouse yet)"
        else:  # a type-1 dimension keeps no last_updated: what the extract it holds had read
            warehouse_newest = before_cut
            held_by = f"extract run {held_run}" if held_run else "no load yet"
        minutes = 0.0 if waiting is None else max(0.0, (now - waiting).total_seconds() / 60)
        out.append(TableFreshness(table, newest, warehouse_newest, held_by, waiting, minutes))
    return out


def measure(
    source: Query, warehouse: Query, held_run: str | None, now: datetime | None = None
) -> list[TableFreshness]:
    """`source_freshness` with the warehouse's `fact_newest`: what the load publishes."""
    return source_freshness(source, fact_newest(warehouse), held_run, now)


def overall_minutes(tables: Sequence[TableFreshness]) -> float:
    """The pipeline's freshness: the worst table's (0 with no tables)."""
    return max((t.minutes for t in tables), default=0.0)


def freshness_metrics(tables: Sequence[TableFreshness]) -> list[Metric]:
    """`METRIC_NAME` overall (no dimension: what the alarm watches) and per table (dimension Table).

    CloudWatch has no minutes unit: the unit is "None" and the name says minutes.
    """
    overall = Metric(METRIC_NAME, round(overall_minutes(tables), 3))
    return [
        overall,
        *(Metric(METRIC_NAME, round(t.minutes, 3), dimensions=(("Table", t.table),)) for t in tables),
    ]
