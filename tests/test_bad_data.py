"""Bad data, for real: rows that break the contract go through extract -> transform -> load and end
up in the quarantine zone with their reason and run ids, counted in the run summary and in
`totes status`, while the rest of the data flows on. Awkward but valid values flow unchanged.

ToteSys' own constraints (NOT NULL, foreign keys) would refuse most bad rows, so this module's
ToteSys database has a few of them dropped first: the extract then reads exactly the rows a
misbehaving source would hold. One workflow run serves every case (each case is its own test on
that run's output); the schema-drift test at the end drops a source column and runs again.
docs/reliability.md maps each row of the bad-input matrix to its test here.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from shared.config import Settings, parse_pg_url
from shared.contract.source import SOURCE_TABLES
from shared.local import cli, status, totesys
from shared.local.workflow import run_workflow

pytestmark = pytest.mark.integration

SCALE = 0.01
AWKWARD = 'O\'Brien "Tote" back\\slash \\n not-a-newline 😀 Ünïcödé 日本語 — ½ \t tab'
LONG = "x" * 99_990 + "😀 end"  # ~100 kB in one value


def order(conn: psycopg.Connection[Any], table: str = "sales_order", **values: Any) -> int:
    """Insert a copy of order 1 of `table` with `values` changed; returns its id."""
    columns = {
        "sales_order": [
            "design_id", "staff_id", "counterparty_id", "units_sold", "unit_price", "currency_id",
            "agreed_delivery_date", "agreed_payment_date", "agreed_delivery_location_id",
        ],
        "purchase_order": [
            "staff_id", "counterparty_id", "item_code", "item_quantity", "item_unit_price", "currency_id",
            "agreed_delivery_date", "agreed_payment_date", "agreed_delivery_location_id",
        ],
    }[table]  # fmt: skip
    columns += [c for c in ("created_at", "last_updated") if c in values]
    types = SOURCE_TABLES[table].columns_by_name
    select = [
        sql.SQL("{}::{}").format(sql.Placeholder(c), sql.SQL(types[c].pg_type))
        if c in values
        else sql.Identifier(c)
        for c in columns
    ]
    query = sql.SQL("INSERT INTO {t} ({cols}) SELECT {sel} FROM {t} WHERE {pk} = 1 RETURNING {pk}").format(
        t=sql.Identifier(table),
        cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
        sel=sql.SQL(", ").join(select),
        pk=sql.Identifier(f"{table}_id"),
    )
    row = conn.execute(query, values).fetchone()
    assert row is not None
    return int(row[0])


class BadSource:
    """A small ToteSys with one row per bad (and awkward) case, and one run over it."""

    def __init__(self, spark, pg, tmp: Path) -> None:
        suffix = uuid.uuid4().hex[:6]
        source_db, warehouse_db = f"totesys_bad_{suffix}", f"warehouse_bad_{suffix}"
        pg.create_database(source_db)
        pg.create_database(warehouse_db)
        self.admin_url, self.warehouse_url = pg.url(source_db), pg.url(warehouse_db)
        self.sizes = totesys.seed_synthetic(self.admin_url, scale=SCALE)
        self.ids: dict[str, int] = {}
        with psycopg.connect(self.admin_url) as conn:
            # What the contract forbids but a misbehaving source could hold.
            conn.execute("ALTER TABLE sales_order ALTER COLUMN units_sold DROP NOT NULL")
            conn.execute("ALTER TABLE sales_order DROP CONSTRAINT sales_order_design_id_fkey")
            conn.execute("ALTER TABLE design ADD COLUMN colour varchar DEFAULT 'red'")  # schema drift
            ids = self.ids
            ids["null_in_not_null"] = order(conn, units_sold=None)
            ids["date_not_yyyy_mm_dd"] = order(conn, agreed_delivery_date="15/11/2024")
            ids["date_not_a_calendar_day"] = order(conn, agreed_payment_date="2023-02-29")
            ids["unknown_foreign_key"] = order(conn, design_id=99_999)
            ids["negative_quantity"] = order(conn, units_sold=-5)
            ids["absurd_quantity"] = order(conn, "purchase_order", item_quantity=2_000_000_000)
            ids["negative_price"] = order(conn, unit_price=-1)
            ids["absurd_price"] = order(conn, "purchase_order", item_unit_price=5_000_000)
            ids["over_precise_price"] = order(conn, unit_price="2.345")
            row = conn.execute(
                "INSERT INTO currency (currency_code) VALUES ('XYZ') RETURNING currency_id"
            ).fetchone()
            assert row is not None
            ids["unknown_currency_code"] = row[0]
            ids["order_in_unknown_currency"] = order(conn, currency_id=row[0])
            # Awkward but valid: must flow unchanged.
            row = conn.execute(
                "INSERT INTO design (design_name, file_location, file_name) VALUES (%s, %s, %s) "
                "RETURNING design_id",
                [AWKWARD, "C:\\totes\\designs\\ 'quoted' ", LONG],
            ).fetchone()
            assert row is not None
            ids["awkward_and_long_text"] = row[0]
            ids["timestamp_without_fraction"] = order(
                conn, created_at=datetime(2024, 11, 16, 10, 0), last_updated=datetime(2024, 11, 16, 10, 0, 1)
            )
        self.lake = tmp / "lake"
        self.settings = Settings(
            lake_root=str(self.lake),
            totesys=parse_pg_url("TOTESYS_URL", pg.url(source_db, user="totesys_reader")),
            warehouse=parse_pg_url("WAREHOUSE_URL", self.warehouse_url),
            catalog_database=f"totes_bad_{suffix}",
        )
        self.reports = {r.job: r for r in run_workflow(spark, self.settings)}

    def quarantined(self, table: str) -> dict[int, dict[str, Any]]:
        """The quarantine zone's rows of `table`, by primary key."""
        out = {}
        for path in (self.lake / "quarantine" / table).glob("transform_run=*/part-*.json"):
            for line in path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                out[row[f"{table}_id"]] = row
        return out

    def warehouse(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.warehouse_url) as conn:
            return conn.execute(query, params).fetchall()


@pytest.fixture(scope="module")
def bad(spark, pg, tmp_path_factory) -> BadSource:
    return BadSource(spark, pg, tmp_path_factory.mktemp("bad_data"))


# case -> (source table, expected reason, fact table the row must stay out of)
REJECTED = {
    "null_in_not_null": ("sales_order", "units_sold: NULL in NOT NULL column", "fact_sales_order"),
    "date_not_yyyy_mm_dd": (
        "sales_order",
        "agreed_delivery_date: not a YYYY-MM-DD date ('15/11/2024')",
        "fact_sales_order",
    ),
    "date_not_a_calendar_day": (
        "sales_order",
        "agreed_payment_date: not a YYYY-MM-DD date ('2023-02-29')",
        "fact_sales_order",
    ),
    "unknown_foreign_key": ("sales_order", "design_id: unknown design 99999", "fact_sales_order"),
    "negative_quantity": ("sales_order", "units_sold: not positive (-5)", "fact_sales_order"),
    "absurd_quantity": (
        "purchase_order",
        "item_quantity: above 10,000,000 (2000000000)",
        "fact_purchase_order",
    ),
    "negative_price": ("sales_order", "unit_price: not positive (-1)", "fact_sales_order"),
    "absurd_price": (
        "purchase_order",
        "item_unit_price: above 1,000,000 (5000000)",
        "fact_purchase_order",
    ),
    "over_precise_price": (
        "sales_order",
        "unit_price: more than 2 decimal places (2.345)",
        "fact_sales_order",
    ),
    "unknown_currency_code": ("currency", "currency_code: unknown currency code ('XYZ')", "dim_currency"),
    "order_in_unknown_currency": ("sales_order", "currency_id: unknown currency", "fact_sales_order"),
}


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_a_row_breaking_the_contract_is_quarantined_with_its_reason(bad, case) -> None:
    table, reason, target = REJECTED[case]
    row_id = bad.ids[case]
    rejected = bad.quarantined(table)
    assert row_id in rejected, f"{case}: {table} {row_id} not quarantined"
    row = rejected[row_id]
    assert row["_reason"].startswith(reason), row["_reason"]
    assert row["_transform_run_id"] == bad.reports["transform"].run_id
    assert row["_extract_run_id"] == bad.reports["extract"].run_id
    key = "currency_id" if target == "dim_currency" else f"{table}_id"
    assert bad.warehouse(f'SELECT count(*) FROM "{target}" WHERE "{key}" = %s', [row_id]) == [(0,)]


def test_quarantined_values_are_kept_as_the_source_had_them(bad) -> None:
    rejected = bad.quarantined("sales_order")
    assert rejected[bad.ids["date_not_yyyy_mm_dd"]]["agreed_delivery_date"] == "15/11/2024"
    assert rejected[bad.ids["null_in_not_null"]].get("units_sold") is None  # JSON null, or no key
    assert rejected[bad.ids["over_precise_price"]]["unit_price"] == pytest.approx(2.345)


def test_the_rest_flows_and_every_rejected_row_is_counted(bad) -> None:
    expected = {"sales_order": 8, "purchase_order": 2, "currency": 1}
    transform = bad.reports["transform"]
    assert {t: s.quarantined for t, s in transform.tables.items() if s.quarantined} == expected
    assert [r.status for r in bad.reports.values()] == ["SUCCEEDED"] * 3
    sales = bad.warehouse("SELECT count(*) FROM fact_sales_order")[0][0]
    assert sales == bad.sizes["sales_order"] + 1  # every seeded order + the one without fractions
    purchases = bad.warehouse("SELECT count(*) FROM fact_purchase_order")[0][0]
    assert purchases == bad.sizes["purchase_order"]
    assert bad.warehouse("SELECT currency_code FROM dim_currency ORDER BY 1") == [
        ("EUR",),
        ("GBP",),
        ("USD",),
    ]
    # `totes status`: the same counts, by reason.
    info = status.collect(bad.settings)
    assert info["quarantined_rows"] == expected
    reasons = info["quarantine"]["tables"]["sales_order"]["reasons"]
    assert reasons["units_sold: NULL in NOT NULL column"] == 1
    assert reasons["design_id: unknown design"] == 1
    rendered = status.render(bad.settings)
    assert "sales_order" in rendered and "units_sold: not positive 1" in rendered


def test_awkward_and_very_long_text_flows_unchanged(bad) -> None:
    design_id = bad.ids["awkward_and_long_text"]
    assert bad.warehouse(
        "SELECT design_name, file_location, file_name FROM dim_design WHERE design_id = %s", [design_id]
    ) == [(AWKWARD, "C:\\totes\\designs\\ 'quoted' ", LONG)]


def test_a_timestamp_without_fractional_seconds_flows(bad) -> None:
    assert bad.warehouse(
        "SELECT created_date::text, created_time::text, last_updated_time::text FROM fact_sales_order "
        "WHERE sales_order_id = %s",
        [bad.ids["timestamp_without_fraction"]],
    ) == [("2024-11-16", "10:00:00", "10:00:01")]


def test_a_new_source_column_is_reported_and_the_run_goes_on(bad) -> None:
    extract = bad.reports["extract"]
    note = "totesys.design: column colour is not in the contract"
    assert note in extract.message and extract.status == "SUCCEEDED"
    manifest = json.loads(
        (bad.lake / "ingestion" / "_manifests" / f"{extract.run_id}.json").read_text(encoding="utf-8")
    )
    assert any(note in n for n in manifest["notes"])
    ingested = (bad.lake / "ingestion" / "design").rglob("part-*.json")
    assert all("colour" not in path.read_text(encoding="utf-8") for path in ingested)
    assert any(note in (r or {}).get("message", "") for r in status.collect(bad.settings)["recent_runs"])


def test_a_removed_source_column_stops_the_run_naming_table_and_column(bad, capsys, spark) -> None:
    saved = spark.conf.get("spark.sql.shuffle.partitions")
    before = bad.warehouse("SELECT count(*) FROM fact_sales_order")
    with psycopg.connect(bad.admin_url) as conn:
        conn.execute("ALTER TABLE design DROP COLUMN file_name")
    settings = bad.settings
    args = [
        "run",
        "--totesys-url",
        settings.require_totesys().conninfo,
        "--warehouse-url",
        settings.require_warehouse().conninfo,
        "--lake-root",
        settings.lake_root,
        "--catalog-database",
        settings.catalog_database,
    ]
    try:
        assert cli.main(args) == cli.EXIT_FAILED
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", saved)
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "extract failed: totesys.design: column(s) file_name missing from the source" in err
    assert bad.warehouse("SELECT count(*) FROM fact_sales_order") == before
