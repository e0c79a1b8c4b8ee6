"""The warehouse SPEC.md section 3 asks for, computed from a ToteSys database with plain SQL.

This is the yardstick the pipeline tests compare the warehouse with. It is written from SPEC.md
alone and shares no code with the pipeline (no shared/transforms.py, no shared/contract): each
table's columns, types and derivation are spelled out here again, so a mistake in the pipeline's
contract or builders cannot hide behind the same mistake in the expectation.

- `SPEC_COLUMNS`: every warehouse table's columns, in SPEC order, with the PostgreSQL type
  (`format_type`) and nullability SPEC gives them.
- `source_star(url)`: the star a first run over the ToteSys at `url` must give, one list of rows
  per table, surrogate keys left out, sorted by every column.
- `Expectation`: the same over a history of runs: facts keep every version a run saw, dimensions
  the latest values, dim_date a calendar over every fact date (SPEC: one row per version).
- `warehouse_star(url)`: a warehouse's rows, read the same way, to compare with either.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import psycopg

INT, TEXT, DATE, TIME, BOOL = "integer", "character varying", "date", "time(3) without time zone", "boolean"

# table -> [(column, format_type, nullable)], surrogate keys (serial, integer) first for the facts.
SPEC_COLUMNS: dict[str, list[tuple[str, str, bool]]] = {
    "dim_date": [
        ("date_id", DATE, False),
        ("year", INT, False),
        ("month", INT, False),
        ("day", INT, False),
        ("day_of_week", INT, False),
        ("day_name", TEXT, False),
        ("month_name", TEXT, False),
        ("quarter", INT, False),
    ],
    "dim_staff": [
        ("staff_id", INT, False),
        ("first_name", TEXT, False),
        ("last_name", TEXT, False),
        ("department_name", TEXT, False),
        ("location", TEXT, True),
        ("email_address", TEXT, False),
    ],
    "dim_location": [
        ("location_id", INT, False),
        ("address_line_1", TEXT, False),
        ("address_line_2", TEXT, True),
        ("district", TEXT, True),
        ("city", TEXT, False),
        ("postal_code", TEXT, False),
        ("country", TEXT, False),
        ("phone", TEXT, False),
    ],
    "dim_currency": [
        ("currency_id", INT, False),
        ("currency_code", TEXT, False),
        ("currency_name", TEXT, False),
    ],
    "dim_design": [
        ("design_id", INT, False),
        ("design_name", TEXT, False),
        ("file_location", TEXT, False),
        ("file_name", TEXT, False),
    ],
    "dim_counterparty": [
        ("counterparty_id", INT, False),
        ("counterparty_legal_name", TEXT, False),
        ("counterparty_legal_address_line_1", TEXT, False),
        ("counterparty_legal_address_line_2", TEXT, True),
        ("counterparty_legal_district", TEXT, True),
        ("counterparty_legal_city", TEXT, False),
        ("counterparty_legal_postal_code", TEXT, False),
        ("counterparty_legal_country", TEXT, False),
        ("counterparty_legal_phone_number", TEXT, False),
    ],
    "dim_payment_type": [("payment_type_id", INT, False), ("payment_type_name", TEXT, False)],
    "dim_transaction": [
        ("transaction_id", INT, False),
        ("transaction_type", TEXT, False),
        ("sales_order_id", INT, True),
        ("purchase_order_id", INT, True),
    ],
    "fact_sales_order": [
        ("sales_record_id", INT, False),
        ("sales_order_id", INT, False),
        ("created_date", DATE, False),
        ("created_time", TIME, False),
        ("last_updated_date", DATE, False),
        ("last_updated_time", TIME, False),
        ("sales_staff_id", INT, False),
        ("counterparty_id", INT, False),
        ("units_sold", INT, False),
        ("unit_price", "numeric(10,2)", False),
        ("currency_id", INT, False),
        ("design_id", INT, False),
        ("agreed_payment_date", DATE, False),
        ("agreed_delivery_date", DATE, False),
        ("agreed_delivery_location_id", INT, False),
    ],
    "fact_purchase_order": [
        ("purchase_record_id", INT, False),
        ("purchase_order_id", INT, False),
        ("created_date", DATE, False),
        ("created_time", TIME, False),
        ("last_updated_date", DATE, False),
        ("last_updated_time", TIME, False),
        ("staff_id", INT, False),
        ("counterparty_id", INT, False),
        ("item_code", TEXT, False),
        ("item_quantity", INT, False),
        ("item_unit_price", "numeric", False),
        ("currency_id", INT, False),
        ("agreed_delivery_date", DATE, False),
        ("agreed_payment_date", DATE, False),
        ("agreed_delivery_location_id", INT, False),
    ],
    "fact_payment": [
        ("payment_record_id", INT, False),
        ("payment_id", INT, False),
        ("created_date", DATE, False),
        ("created_time", TIME, False),
        ("last_updated_date", DATE, False),
        ("last_updated_time", TIME, False),
        ("transaction_id", INT, False),
        ("counterparty_id", INT, False),
        ("payment_amount", "numeric", False),
        ("currency_id", INT, False),
        ("payment_type_id", INT, False),
        ("paid", BOOL, False),
        ("payment_date", DATE, False),
    ],
}
RECORD_IDS = {"fact_sales_order": "sales_record_id", "fact_purchase_order": "purchase_record_id",
              "fact_payment": "payment_record_id"}  # fmt: skip
FACTS = tuple(RECORD_IDS)
# What a fact version is identified by (SPEC: source id, last_updated).
VERSION_KEYS = {
    "fact_sales_order": ("sales_order_id", "last_updated_date", "last_updated_time"),
    "fact_purchase_order": ("purchase_order_id", "last_updated_date", "last_updated_time"),
    "fact_payment": ("payment_id", "last_updated_date", "last_updated_time"),
}
# Every fact date column (SPEC: each points at dim_date).
FACT_DATES = {
    "fact_sales_order": ("created_date", "last_updated_date", "agreed_payment_date", "agreed_delivery_date"),
    "fact_purchase_order": (
        "created_date",
        "last_updated_date",
        "agreed_delivery_date",
        "agreed_payment_date",
    ),
    "fact_payment": ("created_date", "last_updated_date", "payment_date"),
}
ISO_4217_NAMES = {"GBP": "Pound Sterling", "USD": "US Dollar", "EUR": "Euro"}
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
               "October", "November", "December")  # fmt: skip


def star_columns(table: str) -> list[str]:
    """A table's columns without the facts' serial surrogate key (what the source determines)."""
    return [name for name, _, _ in SPEC_COLUMNS[table] if name != RECORD_IDS.get(table)]


# Each table from the ToteSys tables, SPEC section 3 by hand: timestamps split into date and time,
# varchar dates cast to date, staff_id renamed sales_staff_id in fact_sales_order only.
_VERSION = "created_at::date, created_at::time(3), last_updated::date, last_updated::time(3)"
SOURCE_SQL = {
    "dim_staff": "SELECT s.staff_id, s.first_name, s.last_name, d.department_name, d.location, s.email_address "
    "FROM staff s JOIN department d ON d.department_id = s.department_id",
    "dim_location": "SELECT address_id, address_line_1, address_line_2, district, city, postal_code, country, "
    "phone FROM address",
    "dim_currency": "SELECT c.currency_id, c.currency_code, n.name FROM currency c "
    "JOIN (VALUES " + ", ".join(f"('{code}', '{name}')" for code, name in ISO_4217_NAMES.items()) + ") "
    "AS n(code, name) ON n.code = c.currency_code",
    "dim_design": "SELECT design_id, design_name, file_location, file_name FROM design",
    "dim_counterparty": "SELECT c.counterparty_id, c.counterparty_legal_name, a.address_line_1, a.address_line_2, "
    "a.district, a.city, a.postal_code, a.country, a.phone "
    "FROM counterparty c JOIN address a ON a.address_id = c.legal_address_id",
    "dim_payment_type": "SELECT payment_type_id, payment_type_name FROM payment_type",
    "dim_transaction": 'SELECT transaction_id, transaction_type, sales_order_id, purchase_order_id FROM "transaction"',
    "fact_sales_order": f"SELECT sales_order_id, {_VERSION}, staff_id, counterparty_id, units_sold, unit_price, "
    "currency_id, design_id, agreed_payment_date::date, agreed_delivery_date::date, agreed_delivery_location_id "
    "FROM sales_order",
    "fact_purchase_order": f"SELECT purchase_order_id, {_VERSION}, staff_id, counterparty_id, item_code, "
    "item_quantity, item_unit_price, currency_id, agreed_delivery_date::date, agreed_payment_date::date, "
    "agreed_delivery_location_id FROM purchase_order",
    "fact_payment": f"SELECT payment_id, {_VERSION}, transaction_id, counterparty_id, payment_amount, currency_id, "
    "payment_type_id, paid, payment_date::date FROM payment",
}

Rows = list[tuple[Any, ...]]


def _sorted(rows: Rows) -> Rows:
    # None sorts first, as PostgreSQL's ORDER BY ... NULLS FIRST; the key keeps mixed rows comparable.
    return sorted(rows, key=lambda row: tuple((v is not None, v) for v in row))


def calendar(dates: set[date]) -> Rows:
    """dim_date: every day from the earliest to the latest of `dates` (SPEC: ISO day of week)."""
    if not dates:
        return []
    lo, hi = min(dates), max(dates)
    days = (lo + timedelta(n) for n in range((hi - lo).days + 1))
    return [
        (d, d.year, d.month, d.day, d.isoweekday(), DAY_NAMES[d.weekday()], MONTH_NAMES[d.month - 1],
         (d.month - 1) // 3 + 1)
        for d in days
    ]  # fmt: skip


def fact_dates(star: dict[str, Rows]) -> set[date]:
    out: set[date] = set()
    for fact, columns in FACT_DATES.items():
        positions = [star_columns(fact).index(c) for c in columns]
        out.update(row[i] for row in star[fact] for i in positions)
    return out


def source_star(url: str) -> dict[str, Rows]:
    """The star a first run over the ToteSys database at `url` must load (surrogate keys left out)."""
    with psycopg.connect(url) as conn:
        star = {table: _sorted(conn.execute(query).fetchall()) for table, query in SOURCE_SQL.items()}
    star["dim_date"] = calendar(fact_dates(star))
    return {table: star[table] for table in SPEC_COLUMNS}


class Expectation:
    """The warehouse after a series of runs over one ToteSys: `seen(url)` after each run."""

    def __init__(self, url: str) -> None:
        self.star = source_star(url)

    def seen(self, url: str) -> Expectation:
        """A run over the source as it is now: new fact versions added, dimensions replaced."""
        now = source_star(url)
        for table in SPEC_COLUMNS:
            if table in FACTS:
                self.star[table] = _sorted(list(set(self.star[table]) | set(now[table])))
            elif table != "dim_date":
                self.star[table] = now[table]
        self.star["dim_date"] = calendar(fact_dates(self.star) | {r[0] for r in self.star["dim_date"]})
        return self


def warehouse_star(url: str) -> dict[str, Rows]:
    """Every warehouse table's rows in SPEC column order, surrogate keys left out, sorted."""
    out = {}
    with psycopg.connect(url) as conn:
        for table in SPEC_COLUMNS:
            listed = ", ".join(f'"{c}"' for c in star_columns(table))
            out[table] = _sorted(conn.execute(f'SELECT {listed} FROM "{table}"').fetchall())
    return out


def warehouse_types(url: str) -> dict[str, list[tuple[str, str, bool]]]:
    """Every public table's columns as (name, format_type, nullable), in column order."""
    query = """SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull
               FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
               ORDER BY c.relname, a.attnum"""
    out: dict[str, list[tuple[str, str, bool]]] = {}
    with psycopg.connect(url) as conn:
        for table, column, kind, nullable in conn.execute(query).fetchall():
            out.setdefault(table, []).append((column, kind, nullable))
    return out
