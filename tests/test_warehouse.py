"""The warehouse's apply step against a real PostgreSQL: the bulk path (foreign keys dropped for a
big insert, then added back and validated in the same transaction) keeps the contract's keys and
still refuses a row that breaks one, leaving the warehouse as it was.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import psycopg
import pytest

from shared.config import parse_pg_url
from shared.contract.star import STAR_SCHEMAS
from shared.jdbc.warehouse import (
    LOAD_ORDER,
    WarehouseError,
    apply_load,
    foreign_keys,
    migrate_schema,
    prepare_staging,
    write_staging,
)

pytestmark = pytest.mark.integration

DAY = date(2024, 11, 15)
DIMENSIONS = [
    "INSERT INTO dim_date VALUES ('2024-11-15', 2024, 11, 15, 5, 'Friday', 'November', 4)",
    "INSERT INTO dim_transaction VALUES (1, 'SALE', 1, NULL)",
    "INSERT INTO dim_counterparty VALUES (1, 'Fahey and Sons', '1 Road', NULL, NULL, 'Leeds', 'LS1', 'UK', '0113')",
    "INSERT INTO dim_currency VALUES (1, 'GBP', 'Pound Sterling')",
    "INSERT INTO dim_payment_type VALUES (1, 'SALES_RECEIPT')",
]


def payment(payment_id: int, transaction_id: int = 1) -> tuple:
    return (
        payment_id, DAY, "07:55:11.885", DAY, "07:55:11.885", transaction_id, 1, Decimal("10.50"), 1, 1, True, DAY,
    )  # fmt: skip


def stage_payments(spark, url, rows: list[tuple]) -> None:
    """As the load stages a fact (shared/jobs/load.py)."""
    prepare_staging(spark, url, ["fact_payment"])
    write_staging(spark.createDataFrame(rows, STAR_SCHEMAS["fact_payment"]), url, "fact_payment")


def constraints(conninfo: str) -> set[str]:
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'public.fact_payment'::regclass AND contype = 'f'"
        ).fetchall()
    return {r[0] for r in rows}


@pytest.fixture
def warehouse(spark, fresh_db):
    url = parse_pg_url("WAREHOUSE_URL", fresh_db)
    migrate_schema(spark, url)
    with psycopg.connect(fresh_db) as conn:
        for statement in DIMENSIONS:
            conn.execute(statement)
    return url


def test_a_bulk_insert_keeps_every_foreign_key(spark, warehouse) -> None:
    stage_payments(spark, warehouse, [payment(1), payment(2), payment(3)])
    assert apply_load(spark, warehouse, ["fact_payment"], bulk_rows=2) == {"fact_payment": 3}
    assert constraints(warehouse.conninfo) == {name for name, _ in foreign_keys("fact_payment")} != set()
    # Applying the same rows again is a no-op, on the bulk path too.
    stage_payments(spark, warehouse, [payment(1), payment(2), payment(3)])
    assert apply_load(spark, warehouse, ["fact_payment"], bulk_rows=2) == {"fact_payment": 0}


@pytest.mark.parametrize("bulk_rows", [1, 1_000], ids=["bulk", "row by row"])
def test_a_row_breaking_a_foreign_key_rolls_the_whole_load_back(spark, warehouse, bulk_rows) -> None:
    stage_payments(spark, warehouse, [payment(1), payment(2, transaction_id=99)])
    with pytest.raises(WarehouseError, match="fact_payment_transaction_id_fkey"):
        apply_load(spark, warehouse, ["fact_payment"], bulk_rows=bulk_rows)
    with psycopg.connect(warehouse.conninfo) as conn:
        assert conn.execute("SELECT count(*) FROM fact_payment").fetchone() == (0,)
    assert constraints(warehouse.conninfo) == {name for name, _ in foreign_keys("fact_payment")}


def test_staging_tables_are_unlogged_and_take_what_spark_writes(spark, warehouse) -> None:
    """Staged rows are written once and read once: no write-ahead log. Staging again truncates."""
    prepare_staging(spark, warehouse, list(LOAD_ORDER))
    with psycopg.connect(warehouse.conninfo) as conn:
        kinds = dict(
            conn.execute(
                "SELECT relname, relpersistence FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'etl_staging' AND c.relkind = 'r'"
            ).fetchall()
        )
    assert kinds == dict.fromkeys(LOAD_ORDER, "u")
    stage_payments(spark, warehouse, [payment(1), payment(2)])
    write_staging(
        spark.createDataFrame([payment(3)], STAR_SCHEMAS["fact_payment"]), warehouse, "fact_payment"
    )
    assert apply_load(spark, warehouse, ["fact_payment"]) == {"fact_payment": 1}  # payment 3 only
