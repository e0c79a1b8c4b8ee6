"""`totes reset`, `totes rewind` and `totes backfill`: re-extract a table or a time window.

The extract's progress per table is its bookmark context `extract_<table>` in the extract job's
`JobBookmarks` (`<state>/bookmarks/extract.json`, shared/lake/layout.py): the highest `last_updated`
taken and the versions taken at and just below it (shared/jdbc/sources.py). These commands change
that document and nothing else; the next run (`totes run`, or the next tick of `totes schedule`)
does the re-extraction, like any other run:

- reset: the table's context removed, so the next run reads the whole table (as a first run does);
- rewind: the context set back to a time T with no versions taken, so the next run reads
  `last_updated >= T` (minus the look-back window) and the bookmark carries on from there;
- backfill: a window [since, until) added to the context, so the next run also reads the rows in it
  again, while the high-water mark stays where it is (shared.jdbc.sources.read_increment).

Why the next run and not now: a re-extraction alone changes nothing a user can see; only the
transform and the load bring it to the warehouse, and `totes run` does all three under the lake's
lock with the checks and the run record every run has. A command that only changes state is
instant, needs neither Spark nor the databases, and takes effect the same way under a schedule.

Re-extracted rows change nothing that has not changed in the source: the transform appends only fact
versions the table does not hold (shared/jobs/transform/facts.py) and the load upserts a dimension
row only when its values differ (shared/jdbc/warehouse.py). Every command holds the lake's run lock
while it reads and rewrites the document (a run cannot start in between, and one that holds the
lock makes the command fail with `LakeLocked`), and writes it atomically through
`shared.lake.documents.write_document` (temp file, fsync, rename). A lake on S3 is refused: there the
extract's bookmarks are Glue's own (docs/deploying.md, "Re-extracting a table or a window").
Called by shared/local/cli.py.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.config import ConfigError, Settings, is_s3
from shared.contract.source import EXTRACT_ORDER, SOURCE_TABLES
from shared.jdbc.sources import BACKFILL_KEY, TS_FORMAT
from shared.jobs.extract import transformation_ctx
from shared.lake.documents import JobBookmarks, read_document, write_document
from shared.lake.layout import LakeLayout
from shared.lake.storage import run_lock, storage_for

EXTRACT_JOB = "extract"
Context = Mapping[str, Any]


@dataclass(frozen=True)
class BookmarkChange:
    """One table's extract bookmark before and after a command (None: no bookmark), and what it means."""

    table: str
    before: Context | None
    after: Context | None
    meaning: str

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def render(self) -> str:
        arrow = f"{describe(self.before)} -> {describe(self.after)}" if self.changed else "unchanged"
        return f"  {self.table:<16}{arrow}: {self.meaning}"


def describe(context: Context | None) -> str:
    """A bookmark context in a few words: `last_updated T (n keys)`, plus any backfill pending."""
    if context is None:
        return "none"
    keys = len(context.get("keys") or [])
    text = f"last_updated {context.get('last_updated')} ({keys} key{'s' if keys != 1 else ''} taken)"
    for window in context.get(BACKFILL_KEY) or []:
        text += f", backfill [{window['since']}, {window.get('until') or 'now'})"
    return text


def parse_timestamp(text: str, flag: str) -> datetime:
    """An ISO 8601 date or time (`2024-11-14`, `2024-11-14 09:30`, `...T09:30:00.5+01:00`) as naive UTC.

    ToteSys' `last_updated` is UTC wall-clock time without a zone, so a time without one is UTC.
    """
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"{flag} {text!r} is not a date or time (e.g. 2024-11-14, '2024-11-14 09:30:00', "
            "2024-11-14T09:30:00Z; a time without a zone is UTC)"
        ) from None
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def check_tables(tables: Iterable[str]) -> list[str]:
    """`tables` in extract order, each a ToteSys table of the contract, or a ConfigError naming the valid ones."""
    chosen = list(dict.fromkeys(tables))
    for table in chosen:
        if table not in SOURCE_TABLES:
            close = difflib.get_close_matches(table, list(SOURCE_TABLES), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"unknown table {table!r}{hint}; the ToteSys tables are: {', '.join(sorted(SOURCE_TABLES))}"
            )
    return [t for t in EXTRACT_ORDER if t in chosen]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _stamp(value: datetime) -> str:
    return value.strftime(TS_FORMAT)


def _high(context: Context) -> datetime:
    return datetime.strptime(str(context["last_updated"]), TS_FORMAT)


def _edit(
    settings: Settings, holder: str, edit: Callable[[dict[str, Any]], list[BookmarkChange]]
) -> list[BookmarkChange]:
    """Apply `edit` to the extract's committed contexts under the lake's run lock; write them if changed.

    Raises LakeLocked (nothing changed) while a run holds the lock, ConfigError for a lake on S3 and
    whatever `edit` raises (ConfigError for a refused change; nothing is written then either).
    """
    layout = LakeLayout.of(settings)
    if is_s3(layout.state):
        raise ConfigError(
            f"the lake {settings.lake_root} is on S3, where the extract reads through Glue's own job "
            "bookmarks: see docs/deploying.md, 'Re-extracting a table or a window', for the Glue commands"
        )
    storage = storage_for(layout.state)
    location = layout.bookmark(EXTRACT_JOB)
    with run_lock(layout.lock, holder):
        committed = read_document(storage, location, JobBookmarks) or JobBookmarks(EXTRACT_JOB)
        contexts = dict(committed.contexts)
        changes = edit(contexts)
        if any(change.changed for change in changes):
            write_document(storage, location, dataclasses.replace(committed, contexts=contexts))
    return changes


def reset(settings: Settings, tables: Sequence[str]) -> list[BookmarkChange]:
    """Remove the extract bookmark of each of `tables`: the next run re-extracts them whole."""
    chosen = check_tables(tables)

    def edit(contexts: dict[str, Any]) -> list[BookmarkChange]:
        changes = []
        for table in chosen:
            before = contexts.pop(transformation_ctx(table), None)
            changes.append(BookmarkChange(table, before, None, "the next run re-extracts the whole table"))
        return changes

    return _edit(settings, f"totes reset --table {' '.join(chosen)}", edit)


def rewind(
    settings: Settings, tables: Sequence[str], to: datetime, now: datetime | None = None
) -> list[BookmarkChange]:
    """Set the extract bookmark of each of `tables` back to `to` (naive UTC), with no versions taken.

    Refused (ConfigError, nothing changed) for a time in the future, a time later than a table's
    bookmark (a rewind never skips rows) or a table with no bookmark (its next run reads it whole).
    A backfill still pending in the bookmark is kept.
    """
    chosen = check_tables(tables)
    current = now or _now()
    if to > current:
        raise ConfigError(f"--to {_stamp(to)} is in the future (it is {_stamp(current)} UTC)")

    def edit(contexts: dict[str, Any]) -> list[BookmarkChange]:
        changes = []
        for table in chosen:
            before = contexts.get(transformation_ctx(table))
            if before is None:
                raise ConfigError(
                    f"{table} has no extract bookmark, so there is nothing to rewind: its next run "
                    "extracts the whole table anyway"
                )
            if to > _high(before):
                raise ConfigError(
                    f"--to {_stamp(to)} is later than the bookmark of {table} ({before['last_updated']}): "
                    "a rewind only moves a bookmark back (moving it on would skip rows); nothing changed"
                )
            after: dict[str, Any] = {"last_updated": _stamp(to), "keys": []}
            if before.get(BACKFILL_KEY):
                after[BACKFILL_KEY] = before[BACKFILL_KEY]
            contexts[transformation_ctx(table)] = after
            changes.append(
                BookmarkChange(
                    table,
                    before,
                    after,
                    f"the next run re-extracts its rows with last_updated >= {_stamp(to)} "
                    f"(and {settings.lookback_minutes} min before it, the look-back window)",
                )
            )
        return changes

    return _edit(settings, f"totes rewind --table {' '.join(chosen)} --to {_stamp(to)}", edit)


def backfill(
    settings: Settings,
    since: datetime,
    until: datetime | None,
    tables: Sequence[str] = (),
    now: datetime | None = None,
) -> list[BookmarkChange]:
    """Ask the next run to re-extract the rows with `since <= last_updated < until` (None: no end)
    of `tables` (none given: every table), keeping each bookmark's high-water mark.

    A table with no bookmark is left alone (its next run reads it whole), and so is one whose
    bookmark is before `since` (its next run reads the window anyway). Refused (ConfigError) for
    an empty window or a `since` in the future.
    """
    chosen = check_tables(tables) if tables else list(EXTRACT_ORDER)
    current = now or _now()
    if until is not None and until <= since:
        raise ConfigError(f"--until {_stamp(until)} must be later than --since {_stamp(since)}")
    if since > current:
        raise ConfigError(f"--since {_stamp(since)} is in the future (it is {_stamp(current)} UTC)")
    window = {"since": _stamp(since), "until": _stamp(until) if until is not None else None}
    shown = f"[{_stamp(since)}, {_stamp(until) if until is not None else 'now'})"

    def edit(contexts: dict[str, Any]) -> list[BookmarkChange]:
        changes = []
        for table in chosen:
            before = contexts.get(transformation_ctx(table))
            if before is None:
                changes.append(
                    BookmarkChange(table, None, None, "no bookmark: the next run extracts the whole table")
                )
                continue
            if since > _high(before):
                changes.append(
                    BookmarkChange(
                        table, before, before, "the window is after the bookmark: the next run reads it"
                    )
                )
                continue
            pending = list(before.get(BACKFILL_KEY) or [])
            after = dict(before)
            after[BACKFILL_KEY] = pending if window in pending else [*pending, window]
            contexts[transformation_ctx(table)] = after
            changes.append(
                BookmarkChange(
                    table,
                    before,
                    after,
                    f"the next run re-extracts its rows with last_updated in {shown}, then carries on "
                    f"from {before['last_updated']}",
                )
            )
        return changes

    until_flag = f" --until {_stamp(until)}" if until is not None else ""
    return _edit(settings, f"totes backfill --since {_stamp(since)}{until_flag}", edit)
