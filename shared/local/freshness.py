"""`totes status`'s per-table part: bookmark, ToteSys' newest change, the warehouse's, freshness.

Called by shared/local/status.py. Per source table: the extract's committed bookmark (its
`last_updated`, from the JobBookmarks of the extract; on Glue the extract's JDBC bookmarks are
Glue's own, `aws glue get-job-bookmark`), ToteSys' `max(last_updated)`, the newest change the
warehouse holds and the freshness in minutes against the contract's 30, all by the one definition
in shared/jobs/freshness.py (the load publishes the same number on AWS). Two SQL statements per
database over psycopg, never Spark. A database that does not answer is one line in its column,
and the freshness it would need is unknown (None), not a guess.

`--json` (`Freshness.to_json`), stable keys:

    {"limit_minutes": 30.0, "now": "YYYY-MM-DD HH:MM:SS.fff" (UTC),
     "held_through_extract_run": run id | null, "overall_minutes": float | null,
     "stale": [table, ...], "errors": {"totesys": str | null, "warehouse": str | null},
     "tables": {table: {"bookmark": str | null, "source_newest": str | null,
                        "warehouse_newest": str | null, "held_by": str, "oldest_waiting": str | null,
                        "freshness_minutes": float | null, "stale": bool | null, "feeds": [star table]}}}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.config import Settings
from shared.contract.source import SOURCE_TABLES
from shared.jobs import freshness as F
from shared.lake.layout import LakeLayout
from shared.lake.storage import storage_for

CONNECT_TIMEOUT_S = 5


def feeds() -> dict[str, list[str]]:
    """Source table -> the star tables built from it (shared/contract/registry.py)."""
    from shared.contract.registry import STAR_BUILDS

    return {t: [b.table for b in STAR_BUILDS.values() if t in b.inputs] for t in SOURCE_TABLES}


@dataclass
class Freshness:
    now: datetime
    held_run: str | None
    bookmarks: Mapping[str, str]  # source table -> the committed extract bookmark's last_updated
    tables: list[F.TableFreshness] = field(default_factory=list)  # empty: a database did not answer
    errors: dict[str, str | None] = field(default_factory=lambda: {"totesys": None, "warehouse": None})
    source_newest: dict[str, datetime | None] = field(default_factory=dict)  # when only ToteSys answers

    def to_json(self) -> dict[str, Any]:
        measured = {t.table: t.to_json() for t in self.tables}
        fed = feeds()
        out: dict[str, Any] = {}
        for table in SOURCE_TABLES:
            newest = self.source_newest.get(table)
            entry = measured.get(table) or {
                "source_newest": None if newest is None else F.iso(newest),
                "warehouse_newest": None,
                "held_by": "unknown",
                "oldest_waiting": None,
                "freshness_minutes": None,
                "stale": None,
            }
            entry.pop("table", None)
            out[table] = {"bookmark": self.bookmarks.get(table), **entry, "feeds": fed[table]}
        return {
            "limit_minutes": F.FRESHNESS_LIMIT_MINUTES,
            "now": self.now.isoformat(sep=" ", timespec="milliseconds"),
            "held_through_extract_run": self.held_run,
            "overall_minutes": round(F.overall_minutes(self.tables), 1) if self.tables else None,
            "stale": [t.table for t in self.tables if t.stale],
            "errors": dict(self.errors),
            "tables": out,
        }


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"unreachable: {text[0] if text else type(exc).__name__}"


def _query(conn: Any) -> F.Query:
    def run(sql: str) -> Sequence[Sequence[Any]]:
        rows: Sequence[Sequence[Any]] = conn.execute(sql).fetchall()
        return rows

    return run


def read_freshness(
    settings: Settings,
    bookmarks: Mapping[str, str],
    loaded_transform_run: str,
    now: datetime | None = None,
) -> Freshness:
    """Per source table, as `totes status` shows it; `loaded_transform_run`: the load's bookmark."""
    import psycopg

    layout = LakeLayout.of(settings)
    held_run = F.held_through(layout, storage_for(layout.state), loaded_transform_run)
    info = Freshness(now or datetime.now(UTC).replace(tzinfo=None), held_run, bookmarks)
    held: dict[str, datetime | None] | None = None
    try:
        with psycopg.connect(
            settings.require_warehouse().conninfo, connect_timeout=CONNECT_TIMEOUT_S
        ) as conn:
            held = F.fact_newest(_query(conn))
    except psycopg.Error as exc:
        info.errors["warehouse"] = _one_line(exc)
    try:
        with psycopg.connect(settings.require_totesys().conninfo, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            if held is None:  # the warehouse's side is unknown: ToteSys' newest changes only
                rows = conn.execute(F.source_sql(None, {})).fetchall()
                info.source_newest = {str(r[0]): r[1] for r in rows}
            else:
                info.tables = F.source_freshness(_query(conn), held, held_run, info.now)
    except psycopg.Error as exc:
        info.errors["totesys"] = _one_line(exc)
    return info


def render_lines(info: Freshness) -> list[str]:
    """The per-table section of `totes status` (the same values as `to_json`)."""
    doc = info.to_json()
    errors = [f"  {db}: {message}" for db, message in doc["errors"].items() if message]
    overall = doc["overall_minutes"]
    lines = [
        f"freshness per source table (contract: {doc['limit_minutes']:g} minutes; now {doc['now']} UTC;"
        f" the warehouse holds extract run {doc['held_through_extract_run'] or 'none yet'}):",
        *errors,
        f"  {'table':<15}{'bookmark (committed)':<28}{'ToteSys newest':<25}{'warehouse newest':<25}"
        f"{'minutes':>8}",
    ]
    for table, entry in doc["tables"].items():
        minutes = entry["freshness_minutes"]
        shown = "unknown" if minutes is None else f"{minutes:.1f}"
        mark = "  STALE" if entry["stale"] else ""
        lines.append(
            f"  {table:<15}{entry['bookmark'] or '-':<28}{entry['source_newest'] or '-':<25}"
            f"{entry['warehouse_newest'] or '-':<25}{shown:>8}{mark}   ({entry['held_by']};"
            f" feeds {', '.join(entry['feeds'])})"
        )
    summary = "unknown" if overall is None else f"{overall:.1f} minutes"
    stale = ", ".join(doc["stale"]) or "none"
    lines.append(f"  overall {summary}; stale (over {doc['limit_minutes']:g} minutes): {stale}")
    return lines
