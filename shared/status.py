"""`totes status`: bookmarks, the last runs, row counts and quarantined rows, read from the lake.

Reads only the small state documents under `<LAKE_ROOT>/_state`, the quarantine zone and row
counts from both databases; it never starts Spark, so it answers in a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.config import Settings, is_s3, join
from shared.lake import read_json, storage_for
from shared.schema import SOURCE_TABLES

RECENT_RUNS = 12


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


def quarantined(settings: Settings) -> dict[str, int]:
    """Rows set aside per source table (all runs), counted from the quarantine zone's JSON lines."""
    if is_s3(settings.quarantine):
        return {}
    root = Path(settings.quarantine)
    out: dict[str, int] = {}
    for table_dir in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        out[table_dir.name] = sum(
            sum(1 for _ in f.open(encoding="utf-8")) for f in table_dir.glob("*/part-*.json")
        )
    return out


def collect(settings: Settings) -> dict[str, Any]:
    from shared.star import STAR_SCHEMAS

    store = storage_for(settings.state)
    bookmarks = {}
    for name in store.list_names(join(settings.state, "bookmarks")):
        doc = read_json(store, join(settings.state, "bookmarks", name)) or {}
        bookmarks[name.removesuffix(".json")] = doc
    runs_dir = join(settings.state, "runs")
    runs = [read_json(store, join(runs_dir, n)) for n in store.list_names(runs_dir)[-RECENT_RUNS:]]
    return {
        "lake_root": settings.lake_root,
        "bookmarks": bookmarks,
        "recent_runs": runs,
        "totesys_rows": _count_rows(settings.require_totesys().conninfo, sorted(SOURCE_TABLES)),
        "warehouse_rows": _count_rows(settings.require_warehouse().conninfo, sorted(STAR_SCHEMAS)),
        "quarantined_rows": quarantined(settings),
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
                lines.append(
                    f"    {ctx:<28} last_updated {value['last_updated']} ({len(value.get('keys', []))} keys)"
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
    q = info["quarantined_rows"]
    lines.append("  none" if not any(q.values()) else "  " + ", ".join(f"{t} {n}" for t, n in q.items() if n))
    return "\n".join(lines)
