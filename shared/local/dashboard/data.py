"""What the dashboard shows, as one JSON-able document: the business from the warehouse, the
pipeline's health from the lake's run records.

Money questions use the latest version of each order or payment (facts keep one row per version,
SPEC §3), as the Athena saved queries do. Values are never added up across currencies: every money
series is per currency; counts and units are currency-free.

Health reads the run records `<LAKE_ROOT>/_state/runs/*.json` directly (what `totes status` reads;
a RUNNING record while nobody holds the lake's lock is a run that died), the rows quarantined by
transform runs that committed, as those records count them, and the freshness of each source table
against the contract's 30 minutes exactly as `totes status --json` gives it
(shared/local/status.py, shared/jobs/freshness.py).
Called by shared/local/dashboard/server.py (`/api/data`) and tests/test_dashboard.py.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from shared.config import Settings, is_s3
from shared.local.schedule import lake_is_locked

RECENT_RUNS = 24
TOP = 10
FACTS = ("fact_sales_order", "fact_purchase_order", "fact_payment")


def _latest(fact: str, key: str) -> str:
    return f"""
        (SELECT DISTINCT ON (f.{key}) f.* FROM {fact} f
         ORDER BY f.{key}, f.last_updated_date DESC, f.last_updated_time DESC)"""


SALES = _latest("fact_sales_order", "sales_order_id")
PURCHASES = _latest("fact_purchase_order", "purchase_order_id")
PAYMENTS = _latest("fact_payment", "payment_id")

QUERIES: dict[str, str] = {
    "sales_by_month": f"""
        SELECT to_char(s.created_date, 'YYYY-MM') AS month, c.currency_code AS currency,
               sum(s.units_sold * s.unit_price) AS value, count(*) AS orders
        FROM {SALES} s JOIN dim_currency c USING (currency_id)
        GROUP BY 1, 2 ORDER BY 1, 2""",
    "top_designs": f"""
        SELECT d.design_name || ' #' || d.design_id AS label, sum(s.units_sold) AS units, count(*) AS orders
        FROM {SALES} s JOIN dim_design d USING (design_id)
        GROUP BY d.design_id, d.design_name ORDER BY units DESC, d.design_id LIMIT {TOP}""",
    "sales_by_counterparty": f"""
        SELECT cp.counterparty_legal_name AS label, sum(s.units_sold) AS units, count(*) AS orders
        FROM {SALES} s JOIN dim_counterparty cp USING (counterparty_id)
        GROUP BY cp.counterparty_id, cp.counterparty_legal_name
        ORDER BY units DESC, cp.counterparty_id LIMIT {TOP}""",
    "sales_by_country": f"""
        SELECT cp.counterparty_legal_country AS label, sum(s.units_sold) AS units, count(*) AS orders
        FROM {SALES} s JOIN dim_counterparty cp USING (counterparty_id)
        GROUP BY 1 ORDER BY units DESC, label LIMIT {TOP}""",
    "payments": f"""
        SELECT c.currency_code AS currency,
               coalesce(sum(p.payment_amount) FILTER (WHERE p.paid), 0) AS paid,
               coalesce(sum(p.payment_amount) FILTER (WHERE NOT p.paid), 0) AS outstanding,
               count(*) FILTER (WHERE NOT p.paid) AS outstanding_payments
        FROM {PAYMENTS} p JOIN dim_currency c USING (currency_id)
        GROUP BY 1 ORDER BY 1""",
    "purchase_spend": f"""
        SELECT to_char(p.created_date, 'YYYY-MM') AS month, c.currency_code AS currency,
               sum(p.item_quantity * p.item_unit_price) AS spend, count(*) AS orders
        FROM {PURCHASES} p JOIN dim_currency c USING (currency_id)
        GROUP BY 1, 2 ORDER BY 1, 2""",
    "totals": f"""
        SELECT (SELECT count(*) FROM {SALES} x) AS sales_orders,
               (SELECT coalesce(sum(units_sold), 0) FROM {SALES} x) AS units_sold,
               (SELECT count(*) FROM {PURCHASES} x) AS purchase_orders,
               (SELECT count(*) FROM {PAYMENTS} x WHERE NOT x.paid) AS outstanding_payments""",
}


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value


def _rows(conn: psycopg.Connection[Any], sql: str) -> list[dict[str, Any]]:
    cursor = conn.execute(sql)  # fixed SQL of this module only
    names = [d.name for d in cursor.description or []]
    return [{n: _json_value(v) for n, v in zip(names, row, strict=True)} for row in cursor.fetchall()]


def business(warehouse_url: str) -> dict[str, Any]:
    """Every chart's rows and the totals, from the warehouse."""
    with psycopg.connect(warehouse_url, connect_timeout=10) as conn:
        out: dict[str, Any] = {name: _rows(conn, sql) for name, sql in QUERIES.items()}
    out["totals"] = out["totals"][0]
    return out


def _freshness(conn: psycopg.Connection[Any], runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per warehouse table: its rows, the last load that changed it, and for a fact its newest change."""
    from shared.contract.star import STAR_TABLES  # the star's tables, in SPEC order

    last_loaded: dict[str, str] = {}
    for run in runs:  # oldest first: later runs overwrite
        if run.get("job") == "load" and run.get("status") == "SUCCEEDED":
            for table, stats in (run.get("tables") or {}).items():
                if (stats or {}).get("loaded"):
                    last_loaded[table] = str(run.get("started_at"))
    out = []
    for table in STAR_TABLES:
        exists = conn.execute("SELECT to_regclass(%s)", [f'public."{table}"']).fetchone()
        row: dict[str, Any] = {"table": table, "rows": None, "last_loaded": last_loaded.get(table)}
        if exists and exists[0] is not None:
            counted = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()  # noqa: S608 - the star's names
            row["rows"] = int(counted[0]) if counted else 0
            if table in FACTS:
                newest = conn.execute(
                    f'SELECT max(last_updated_date + last_updated_time) FROM "{table}"'  # noqa: S608
                ).fetchone()
                row["newest_change"] = _json_value(newest[0]) if newest and newest[0] else None
        out.append(row)
    return out


def _source_freshness(settings: Settings) -> dict[str, Any]:
    """Per source table: minutes behind against the contract, as `totes status --json` has them."""
    from shared.local.status import read_source_freshness

    try:
        return read_source_freshness(settings).to_json()
    except Exception as exc:  # e.g. no ToteSys URL, a lake document of a newer format: shown, not fatal
        return {"error": str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}


def run_records(settings: Settings) -> list[dict[str, Any]]:
    """Every run record of the lake, oldest first; RUNNING ones nobody runs any more are DIED."""
    folder = Path(settings.state) / "runs"
    if is_s3(settings.state) or not folder.is_dir():
        return []
    records = []
    for path in sorted(folder.glob("*.json")):
        try:
            records.append(json.loads(path.read_text(encoding="utf-8")))
        except ValueError:
            continue  # a record being written: the next refresh reads it
    if not lake_is_locked(settings):
        for record in records:
            if record.get("status") == "RUNNING":
                record["status"] = "DIED"
    return records


def health(settings: Settings, warehouse_url: str) -> dict[str, Any]:
    runs = run_records(settings)
    from shared.contract.source import SOURCE_TABLES

    quarantined: Counter[str] = Counter()  # every source table a committed transform read, 0 included
    for run in runs:
        if run.get("job") == "transform" and run.get("status") == "SUCCEEDED":
            for table, stats in (run.get("tables") or {}).items():
                if table in SOURCE_TABLES:
                    quarantined[table] += int((stats or {}).get("quarantined") or 0)
    last_ok = next(
        (r for r in reversed(runs) if r.get("job") == "load" and r.get("status") == "SUCCEEDED"), None
    )
    with psycopg.connect(warehouse_url, connect_timeout=10) as conn:
        freshness = _freshness(conn, runs)
    recent = [
        {k: run.get(k) for k in ("run_id", "job", "status", "started_at", "seconds", "message")}
        for run in runs[-RECENT_RUNS:]
    ]
    return {
        "recent_runs": recent[::-1],  # newest first
        "last_successful_load": last_ok.get("started_at") if last_ok else None,
        "freshness": freshness,
        "source_freshness": _source_freshness(settings),
        "quarantined": [{"table": t, "rows": n} for t, n in sorted(quarantined.items())],
    }


def collect(settings: Settings) -> dict[str, Any]:
    """The whole dashboard document."""
    url = settings.require_warehouse().conninfo
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "lake_root": settings.lake_root,
        "warehouse": settings.require_warehouse().masked,
        "business": business(url),
        "health": health(settings, url),
    }
