"""`totes status`: bookmarks, the last runs, row counts, quarantined rows and freshness per table.

Reads only the small state documents under `<LAKE_ROOT>/_state`, each through its type (the committed
`JobBookmarks`, their contexts as the type the job that wrote them keeps, the `JobReport` run records;
one of an unknown format version is a DocumentError naming the file), the quarantine zone, row
counts from both databases and per source table its freshness (shared/local/freshness.py); it
never starts Spark, so it answers in a second.
Quarantined rows are counted from transform runs that committed: a run that died or failed after
writing its quarantine files is re-done by the next run, which sets the same rows aside again, so
counting both would report them twice (they are listed apart, as "not committed"). A run recorded
as RUNNING while nobody holds the lake's lock died without a word (e.g. SIGKILL) and is shown as
DIED.
"""

from __future__ import annotations

import fcntl
import json
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.config import Settings, is_s3
from shared.contract.source import SOURCE_TABLES
from shared.jobs.extract import transformation_ctx
from shared.lake.documents import DocumentError, JobBookmarks, LoadBookmark, TransformState, read_document
from shared.lake.layout import LakeLayout
from shared.lake.storage import Storage, storage_for
from shared.local.freshness import Freshness, read_freshness, render_lines
from shared.runtime.context import JobReport

RECENT_RUNS = 12
TOP_REASONS = 5


def _count_rows(url: str, tables: list[str]) -> dict[str, int | str]:
    import psycopg
    from psycopg import sql

    counts: dict[str, int | str] = {}
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            for table in tables:
                exists = conn.execute("SELECT to_regclass(%s)", [f'public."{table}"']).fetchone()
                if not exists or exists[0] is None:
                    counts[table] = "missing"
                    continue
                row = conn.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
                ).fetchone()
                counts[table] = int(row[0]) if row else 0
    except psycopg.Error as exc:
        return {"error": str(exc).strip().splitlines()[0]}
    return counts


def run_records(
    layout: LakeLayout, store: Storage, job: str | None = None, last: int | None = None
) -> list[JobReport]:
    """The run records under `layout.runs`, oldest first: of `job` only, if given; the `last` only, if given.

    Only the records returned are read (their names say their run and job).
    """
    keys = [key for name in store.list_names(layout.runs) if (key := layout.run_record_of(name))]
    keys = [key for key in keys if job in (None, key[1])]
    chosen = keys[-last:] if last else keys
    records = (read_document(store, layout.run_record(*key), JobReport) for key in chosen)
    return [record for record in records if record is not None]


def _committed_runs(layout: LakeLayout, store: Storage, job: str) -> set[str]:
    """Run ids of `job` whose run record says SUCCEEDED (they committed)."""
    return {record.run_id for record in run_records(layout, store, job) if record.status == "SUCCEEDED"}


_VALUE = re.compile(r"( \(.*\)| -?\d+)$")


def reason_kind(reason: str) -> str:
    """'units_sold: not positive (-5)' -> 'units_sold: not positive' (the value left out)."""
    return _VALUE.sub("", reason.strip())


def quarantine_summary(settings: Settings) -> dict[str, Any]:
    """Per source table: rows set aside by committed transform runs, by reason, and by run.

    {"tables": {table: {"rows": n, "reasons": {kind: n}, "runs": {run_id: n}}},
     "not_committed": {table: n}}: rows written by transform runs that never committed (re-done).
    """
    tables: dict[str, Any] = {}
    not_committed: dict[str, int] = {}
    layout = LakeLayout.of(settings)
    if is_s3(layout.quarantine):
        return {"tables": tables, "not_committed": not_committed}
    store = storage_for(layout.quarantine)
    committed = _committed_runs(layout, storage_for(layout.state), "transform")
    for table in store.list_names(layout.quarantine):
        reasons: Counter[str] = Counter()
        runs: Counter[str] = Counter()
        for run_id in sorted(
            r for n in store.list_names(layout.quarantine_table(table)) if (r := layout.quarantine_run_id(n))
        ):
            folder = Path(layout.quarantine_run(table, run_id))
            lines = [line for f in sorted(folder.glob("part-*.json")) for line in _lines(f)]
            if run_id not in committed:
                not_committed[table] = not_committed.get(table, 0) + len(lines)
                continue
            runs[run_id] += len(lines)
            for line in lines:
                for reason in str(json.loads(line).get("_reason", "")).split("; "):
                    reasons[reason_kind(reason)] += 1
        if runs:
            tables[table] = {
                "rows": sum(runs.values()),
                "reasons": dict(reasons.most_common()),
                "runs": dict(sorted(runs.items())),
            }
    return {"tables": tables, "not_committed": not_committed}


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _lake_is_locked(layout: LakeLayout) -> bool:
    """Whether a run holds this lake's lock right now (local lakes; on S3 Glue runs one at a time)."""
    path = Path(layout.lock)
    if is_s3(layout.lock) or not path.exists():
        return False
    with path.open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return False


@dataclass(frozen=True)
class ExtractMark:
    """A local extract's bookmark of one table (written by shared.jdbc.sources.new_bookmark)."""

    last_updated: str
    keys: int  # primary keys taken at exactly `last_updated`
    window_versions: int  # versions taken in the look-back window, below it
    backfill: tuple[str, ...] = ()  # windows `totes backfill` asked the next run to re-extract

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> ExtractMark:
        if "last_updated" not in document:
            raise DocumentError(
                f"extract bookmark has no 'last_updated' (it has: {', '.join(sorted(document))})"
            )
        window = document.get("window") or {}
        return cls(
            str(document["last_updated"]),
            len(document.get("keys", [])),
            sum(len(keys) for keys in window.values()),
            tuple(f"[{w['since']}, {w.get('until') or 'now'})" for w in document.get("backfill") or []),
        )


# How the committed contexts of each job are read: the job that wrote a bookmark says its type.
# (An extract on Glue has none: Glue keeps its JDBC bookmarks itself.)
CONTEXT_READERS: dict[str, Callable[[Mapping[str, Any]], object]] = {
    "extract": ExtractMark.from_json,
    "transform": TransformState.from_json,
    "load": LoadBookmark.from_json,
}


def bookmark_contexts(job: str, location: str, bookmarks: JobBookmarks) -> dict[str, object]:
    """Each committed context of `job` as its type (a job this code does not know: as stored).

    Raises DocumentError naming the bookmark file and the context that cannot be read.
    """
    from_json = CONTEXT_READERS.get(job)
    if from_json is None:
        return dict(bookmarks.contexts)
    read: dict[str, object] = {}
    for name, value in bookmarks.contexts.items():
        try:
            if not isinstance(value, Mapping):
                raise DocumentError(f"expected a JSON object, found {type(value).__name__}")
            read[name] = from_json(value)
        except (DocumentError, TypeError, ValueError, AttributeError) as exc:
            raise DocumentError(f"{location}: context {name!r}: {exc}") from None
    return read


@dataclass
class Status:
    """What `totes status` shows, read from the lake's documents and both databases."""

    lake_root: str
    bookmarks: dict[str, JobBookmarks]
    contexts: dict[str, dict[str, object]]  # per job: its committed contexts, each as its type
    recent_runs: list[JobReport]
    totesys_rows: dict[str, int | str]
    warehouse_rows: dict[str, int | str]
    quarantine: dict[str, Any] = field(default_factory=dict)
    freshness: Freshness | None = None  # per source table: shared/local/freshness.py

    def to_json(self) -> dict[str, Any]:
        return {
            "lake_root": self.lake_root,
            "bookmarks": {job: doc.to_json() for job, doc in self.bookmarks.items()},
            "recent_runs": [run.to_json() for run in self.recent_runs],
            "totesys_rows": self.totesys_rows,
            "warehouse_rows": self.warehouse_rows,
            "quarantined_rows": {t: entry["rows"] for t, entry in self.quarantine["tables"].items()},
            "quarantine": self.quarantine,
            "freshness": self.freshness.to_json() if self.freshness else None,
        }


def _committed(
    layout: LakeLayout, store: Storage
) -> tuple[dict[str, JobBookmarks], dict[str, dict[str, object]]]:
    """Each job's committed bookmarks, and their contexts as the job that wrote them keeps them."""
    bookmarks: dict[str, JobBookmarks] = {}
    contexts: dict[str, dict[str, object]] = {}
    for name in store.list_names(layout.bookmarks):
        job = layout.bookmark_job(name)
        document = read_document(store, layout.bookmark(job), JobBookmarks) if job else None
        if job and document:
            bookmarks[job] = document
            contexts[job] = bookmark_contexts(job, layout.bookmark(job), document)
    return bookmarks, contexts


def _freshness(settings: Settings, contexts: Mapping[str, Mapping[str, object]]) -> Freshness:
    marks = contexts.get("extract", {})
    loaded = contexts.get("load", {}).get("load_watermark")
    return read_freshness(
        settings,
        {
            t: m.last_updated
            for t in SOURCE_TABLES
            if isinstance(m := marks.get(transformation_ctx(t)), ExtractMark)
        },
        loaded.transform_run_id if isinstance(loaded, LoadBookmark) else "",
    )


def read_source_freshness(settings: Settings) -> Freshness:
    """Freshness per source table, as `totes status` shows it (the dashboard's health reads it too)."""
    layout = LakeLayout.of(settings)
    return _freshness(settings, _committed(layout, storage_for(settings.state))[1])


def read_status(settings: Settings) -> Status:
    """The lake's committed bookmarks, its last runs, both databases' row counts and the quarantine.

    Every document is read through its type: one this code cannot read (e.g. of a newer format
    version) is a DocumentError naming the file.
    """
    from shared.contract.star import STAR_SCHEMAS

    layout = LakeLayout.of(settings)
    store = storage_for(settings.state)
    bookmarks, contexts = _committed(layout, store)
    runs = run_records(layout, store, last=RECENT_RUNS)
    if not is_s3(settings.state) and not _lake_is_locked(layout):  # on S3 a Glue run may be live
        for run in runs:
            if run.status == "RUNNING":
                run.status = "DIED"
                run.message = run.message or "stopped without a word (killed?); the next run redoes it"
    return Status(
        lake_root=settings.lake_root,
        bookmarks=bookmarks,
        contexts=contexts,
        recent_runs=runs,
        totesys_rows=_count_rows(settings.require_totesys().conninfo, sorted(SOURCE_TABLES)),
        warehouse_rows=_count_rows(settings.require_warehouse().conninfo, sorted(STAR_SCHEMAS)),
        quarantine=quarantine_summary(settings),
        freshness=_freshness(settings, contexts),
    )


def collect(settings: Settings) -> dict[str, Any]:
    """`read_status` as JSON (`totes status --json`)."""
    return read_status(settings).to_json()


def _context_line(name: str, value: object) -> str:
    if isinstance(value, ExtractMark):
        window = (
            f", {value.window_versions} versions in the look-back window" if value.window_versions else ""
        )
        backfill = f"; backfill pending {', '.join(value.backfill)}" if value.backfill else ""
        return f"    {name:<28} last_updated {value.last_updated} ({value.keys} keys{window}){backfill}"
    if isinstance(value, TransformState):
        return f"    {name:<28} extract runs up to {value.extract_watermark}"
    if isinstance(value, LoadBookmark):
        return f"    {name:<28} transform runs up to {value.transform_run_id}"
    return f"    {name:<28} {value}"


def render(settings: Settings) -> str:
    info = read_status(settings)
    lines = [f"lake: {info.lake_root}", "", "bookmarks (committed):"]
    if not info.bookmarks:
        lines.append("  none yet: no job has committed")
    for job, doc in sorted(info.bookmarks.items()):
        lines.append(f"  {job:<10} run {doc.run_id} committed {doc.committed_at}")
        lines += [_context_line(name, value) for name, value in sorted(info.contexts[job].items())]
        if job == "extract" and info.contexts[job]:  # a table reset (or new) has none: read whole next
            missing = sorted(
                f"extract_{t}" for t in SOURCE_TABLES if f"extract_{t}" not in info.contexts[job]
            )
            lines += [f"    {name:<28} none: the next run extracts the whole table" for name in missing]
    lines += ["", "recent runs:"]
    for run in info.recent_runs:
        lines.append(f"  {run.run_id} {run.job:<10} {run.status:<10} {run.seconds:>7.1f} s  {run.message}")
    lines += ["", f"{'rows':<22}{'ToteSys':>10}   {'table':<22}{'warehouse':>10}"]
    source, target = list(info.totesys_rows.items()), list(info.warehouse_rows.items())
    for i in range(max(len(source), len(target))):
        left = f"{source[i][0]:<22}{source[i][1]!s:>10}" if i < len(source) else " " * 32
        right = f"{target[i][0]:<22}{target[i][1]!s:>10}" if i < len(target) else ""
        lines.append(f"{left}   {right}")
    lines += ["", "quarantined rows (set aside with a reason, see <LAKE_ROOT>/quarantine):"]
    q = info.quarantine["tables"]
    if not q:
        lines.append("  none")
    for table, entry in q.items():
        reasons = list(entry["reasons"].items())
        shown = ", ".join(f"{kind} {n}" for kind, n in reasons[:TOP_REASONS])
        more = f", {len(reasons) - TOP_REASONS} more reasons" if len(reasons) > TOP_REASONS else ""
        lines.append(f"  {table:<16}{entry['rows']:>6}  {shown}{more}")
    stale = info.quarantine["not_committed"]
    if stale:
        lines.append(
            "  not counted, from transform runs that did not commit (re-done by a later run): "
            + ", ".join(f"{t} {n}" for t, n in stale.items())
        )
    if info.freshness is not None:
        lines += ["", *render_lines(info.freshness)]
    return "\n".join(lines)
