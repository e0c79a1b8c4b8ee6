"""`totes status`: bookmarks, the last runs, row counts and quarantined rows, read from the lake.

Reads only the small state documents under `<LAKE_ROOT>/_state`, the quarantine zone and row
counts from both databases; it never starts Spark, so it answers in a second.
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
from pathlib import Path
from typing import Any

from shared.config import Settings, is_s3, join
from shared.contract.source import SOURCE_TABLES
from shared.lake.storage import read_json, storage_for

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


def _committed_runs(settings: Settings, job: str) -> set[str]:
    """Run ids of `job` whose run history says SUCCEEDED (they committed)."""
    runs = Path(settings.state) / "runs"
    out = set()
    for path in runs.glob(f"*-{job}.json") if runs.is_dir() else []:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("status") == "SUCCEEDED":
            out.add(doc["run_id"])
    return out


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
    if is_s3(settings.quarantine):
        return {"tables": tables, "not_committed": not_committed}
    root = Path(settings.quarantine)
    committed = _committed_runs(settings, "transform")
    for table_dir in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        reasons: Counter[str] = Counter()
        runs: Counter[str] = Counter()
        for run_dir in sorted(table_dir.glob("transform_run=*")):
            run_id = run_dir.name.split("=", 1)[1]
            lines = [line for f in sorted(run_dir.glob("part-*.json")) for line in _lines(f)]
            if run_id not in committed:
                not_committed[table_dir.name] = not_committed.get(table_dir.name, 0) + len(lines)
                continue
            runs[run_id] += len(lines)
            for line in lines:
                for reason in str(json.loads(line).get("_reason", "")).split("; "):
                    reasons[reason_kind(reason)] += 1
        if runs:
            tables[table_dir.name] = {
                "rows": sum(runs.values()),
                "reasons": dict(reasons.most_common()),
                "runs": dict(sorted(runs.items())),
            }
    return {"tables": tables, "not_committed": not_committed}


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def quarantined(settings: Settings) -> dict[str, int]:
    """Rows set aside per source table by committed transform runs (all of them)."""
    return {t: entry["rows"] for t, entry in quarantine_summary(settings)["tables"].items()}


def _lake_is_locked(settings: Settings) -> bool:
    """Whether a run holds this lake's lock right now (local lakes; on S3 Glue runs one at a time)."""
    path = Path(settings.state) / "run.lock"
    if is_s3(settings.state) or not path.exists():
        return False
    with path.open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return False


def collect(settings: Settings) -> dict[str, Any]:
    from shared.contract.star import STAR_SCHEMAS

    store = storage_for(settings.state)
    bookmarks = {}
    for name in store.list_names(join(settings.state, "bookmarks")):
        doc = read_json(store, join(settings.state, "bookmarks", name)) or {}
        bookmarks[name.removesuffix(".json")] = doc
    runs_dir = join(settings.state, "runs")
    runs = [read_json(store, join(runs_dir, n)) for n in store.list_names(runs_dir)[-RECENT_RUNS:]]
    if not is_s3(settings.state) and not _lake_is_locked(settings):  # on S3 a Glue run may be live
        for run in runs:
            if run and run.get("status") == "RUNNING":
                run["status"] = "DIED"
                run["message"] = (
                    run.get("message") or "stopped without a word (killed?); the next run redoes it"
                )
    quarantine = quarantine_summary(settings)
    return {
        "lake_root": settings.lake_root,
        "bookmarks": bookmarks,
        "recent_runs": runs,
        "totesys_rows": _count_rows(settings.require_totesys().conninfo, sorted(SOURCE_TABLES)),
        "warehouse_rows": _count_rows(settings.require_warehouse().conninfo, sorted(STAR_SCHEMAS)),
        "quarantined_rows": {t: entry["rows"] for t, entry in quarantine["tables"].items()},
        "quarantine": quarantine,
    }


def render(settings: Settings) -> str:
    info = collect(settings)
    lines = [f"lake: {info['lake_root']}", "", "bookmarks (committed):"]
    if not info["bookmarks"]:
        lines.append("  none yet: no job has committed")
    for job, doc in sorted(info["bookmarks"].items()):
        lines.append(f"  {job:<10} run {doc.get('run_id')} committed {doc.get('committed_at')}")
        for ctx, value in sorted(doc.get("contexts", {}).items()):
            if isinstance(value, dict) and "last_updated" in value:
                window = sum(len(keys) for keys in (value.get("window") or {}).values())
                lines.append(
                    f"    {ctx:<28} last_updated {value['last_updated']} ({len(value.get('keys', []))} keys"
                    + (f", {window} versions in the look-back window)" if window else ")")
                )
            elif isinstance(value, dict) and "extract_watermark" in value:
                lines.append(f"    {ctx:<28} extract runs up to {value['extract_watermark']}")
            else:
                lines.append(f"    {ctx:<28} {value}")
    lines += ["", "recent runs:"]
    for run in info["recent_runs"]:
        if run:
            lines.append(
                f"  {run['run_id']} {run['job']:<10} {run['status']:<10} {run['seconds']:>7.1f} s  {run.get('message', '')}"
            )
    lines += ["", f"{'rows':<22}{'ToteSys':>10}   {'table':<22}{'warehouse':>10}"]
    source, target = list(info["totesys_rows"].items()), list(info["warehouse_rows"].items())
    for i in range(max(len(source), len(target))):
        left = f"{source[i][0]:<22}{source[i][1]!s:>10}" if i < len(source) else " " * 32
        right = f"{target[i][0]:<22}{target[i][1]!s:>10}" if i < len(target) else ""
        lines.append(f"{left}   {right}")
    lines += ["", "quarantined rows (set aside with a reason, see <LAKE_ROOT>/quarantine):"]
    q = info["quarantine"]["tables"]
    if not q:
        lines.append("  none")
    for table, entry in q.items():
        reasons = list(entry["reasons"].items())
        shown = ", ".join(f"{kind} {n}" for kind, n in reasons[:TOP_REASONS])
        more = f", {len(reasons) - TOP_REASONS} more reasons" if len(reasons) > TOP_REASONS else ""
        lines.append(f"  {table:<16}{entry['rows']:>6}  {shown}{more}")
    stale = info["quarantine"]["not_committed"]
    if stale:
        lines.append(
            "  not counted, from transform runs that did not commit (re-done by a later run): "
            + ", ".join(f"{t} {n}" for t, n in stale.items())
        )
    return "\n".join(lines)
