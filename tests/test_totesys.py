"""ToteSys source tooling against a real PostgreSQL: schema, snapshot seed, synthetic seed, simulator."""

from __future__ import annotations

import math
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pyarrow.parquet as pq
import pytest

from shared.contract.source import SOURCE_TABLES
from shared.local import totesys
from shared.local.totesys import TotesysError

# SPEC.md section 1, "What the real data looks like".
SNAPSHOT_SIZES = {
    "address": 30,
    "counterparty": 20,
    "currency": 3,
    "department": 8,
    "design": 473,
    "staff": 20,
    "sales_order": 11_187,
    "purchase_order": 4_649,
    "payment_type": 4,
    "payment": 15_836,
    "transaction": 15_836,
}

PG_DATA_TYPES = {
    "int": "integer",
    "str": "character varying",
    "date": "character varying",
    "money": "numeric",
    "ts": "timestamp without time zone",
    "bool": "boolean",
}


def rows(url: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def one(url: str, query: str, params: Any = None) -> Any:
    return rows(url, query, params)[0][0]


# ----------------------------------------------------------------------------- schema


def test_schema_matches_the_contract(fresh_db: str) -> None:
    totesys.create_schema(fresh_db)
    totesys.create_schema(fresh_db)  # idempotent

    columns = rows(
        fresh_db,
        "SELECT table_name, column_name, data_type, is_nullable, character_maximum_length, column_default "
        "FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
    )
    by_table: dict[str, list[tuple[Any, ...]]] = {}
    for table, *rest in columns:
        by_table.setdefault(table, []).append(tuple(rest))
    assert set(by_table) == set(SOURCE_TABLES) | {"_prisma_migrations"}
    for name, table in SOURCE_TABLES.items():
        actual = by_table[name]
        assert [c[0] for c in actual] == table.column_names, name  # physical order
        for (column, data_type, nullable, _, default), spec in zip(actual, table.columns, strict=True):
            assert data_type == PG_DATA_TYPES[spec.kind], (name, column)
            assert nullable == ("YES" if spec.nullable else "NO"), (name, column)
            if column == table.primary_key:
                assert default.startswith("nextval("), (name, column)
            elif spec.kind == "ts":
                assert default == "date_trunc('milliseconds'::text, LOCALTIMESTAMP)", (name, column)
    assert by_table["currency"][1][:4] == ("currency_code", "character varying", "NO", 3)

    primary_keys = rows(
        fresh_db,
        "SELECT tc.table_name, kcu.column_name FROM information_schema.table_constraints tc "
        "JOIN information_schema.key_column_usage kcu USING (constraint_schema, constraint_name) "
        "WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = 'public'",
    )
    assert {t: c for t, c in primary_keys if t in SOURCE_TABLES} == {
        name: t.primary_key for name, t in SOURCE_TABLES.items()
    }

    foreign_keys = rows(
        fresh_db,
        "SELECT conrelid::regclass::text, a.attname, confrelid::regclass::text FROM pg_constraint c "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] WHERE c.contype = 'f'",
    )
    expected = {(t.name, col, ref) for t in SOURCE_TABLES.values() for col, ref in t.foreign_keys.items()}
    assert {(t.strip('"'), c, r.strip('"')) for t, c, r in foreign_keys} == expected
    assert len(expected) == 17

    assert rows(fresh_db, "SELECT migration_name, applied_steps_count FROM _prisma_migrations") == [
        ("20221103142049_init", 1)
    ]


def test_timestamps_default_to_milliseconds(fresh_db: str) -> None:
    totesys.create_schema(fresh_db)
    with psycopg.connect(fresh_db) as conn:
        conn.execute("INSERT INTO currency (currency_code) VALUES ('GBP')")
        created, updated, truncated = conn.execute(
            "SELECT created_at, last_updated, date_trunc('milliseconds', created_at) FROM currency"
        ).fetchall()[0]
    assert created == updated == truncated
    assert abs((one(fresh_db, "SELECT localtimestamp") - created).total_seconds()) < 60


def test_table_counts_needs_the_schema(fresh_db: str) -> None:
    with pytest.raises(TotesysError, match="missing: run create_schema"):
        totesys.table_counts(fresh_db)
    totesys.create_schema(fresh_db)
    assert totesys.table_counts(fresh_db) == dict.fromkeys(SOURCE_TABLES, 0)


# ----------------------------------------------------------------------------- snapshot seed


def _parquet_rows(snapshot: Path, name: str) -> list[tuple[Any, ...]]:
    """The snapshot as the source would hold it, converted independently of shared.local.totesys."""
    table = SOURCE_TABLES[name]
    frame = pq.read_table(snapshot / f"{name}.parquet").to_pandas()
    out = []
    for record in frame[table.column_names].itertuples(index=False):
        values: list[Any] = []
        for column, value in zip(table.columns, record, strict=True):
            if value is None or (isinstance(value, float) and math.isnan(value)):
                values.append(None)
            elif column.kind == "int":
                values.append(int(value))
            elif column.kind == "money":
                values.append(Decimal(str(round(value, 2))).quantize(Decimal("0.01")))
            elif column.kind == "ts":
                values.append(value.to_pydatetime())
            elif column.kind == "bool":
                values.append(bool(value))
            else:
                values.append(value)
        out.append(tuple(values))
    return sorted(out, key=lambda r: r[0])


def test_seed_from_parquet_round_trips_the_snapshot_exactly(fresh_db: str, snapshot_dir: Path) -> None:
    counts = totesys.seed_from_parquet(fresh_db, snapshot_dir)
    assert counts == SNAPSHOT_SIZES
    assert totesys.table_counts(fresh_db) == SNAPSHOT_SIZES

    for name, table in SOURCE_TABLES.items():
        stored = rows(fresh_db, f'SELECT * FROM "{name}" ORDER BY {table.primary_key}')
        assert stored == _parquet_rows(snapshot_dir, name), name

    # The awkward values, spelled out.
    assert one(fresh_db, "SELECT email_address FROM staff WHERE last_name = 'O''Keefe'") == (
        "irving.o'keefe@terrifictotes.com"
    )
    assert one(fresh_db, "SELECT count(*) FROM counterparty WHERE delivery_contact = 'Christy O''Hara'") == 1
    assert (
        one(fresh_db, "SELECT country FROM address WHERE address_id = 10")
        == "Democratic People's Republic of Korea"
    )
    assert one(fresh_db, "SELECT count(*) FROM address WHERE address_line_2 IS NULL") == 20
    assert one(fresh_db, "SELECT count(*) FROM sales_order WHERE created_at = '2023-02-16 09:26:10'") == 1
    assert (
        one(fresh_db, "SELECT count(*) FROM sales_order WHERE created_at = date_trunc('second', created_at)")
        == 23
    )
    assert one(fresh_db, "SELECT unit_price::text FROM sales_order WHERE sales_order_id = 2") == "3.94"
    assert one(fresh_db, "SELECT count(*) FROM transaction WHERE sales_order_id IS NULL") == 4_649
    # Sequences continue after the loaded ids.
    assert one(fresh_db, "SELECT nextval(pg_get_serial_sequence('sales_order', 'sales_order_id'))") == 11_188
    assert one(fresh_db, "SELECT nextval(pg_get_serial_sequence('payment', 'payment_id'))") == 15_837

    with pytest.raises(TotesysError, match="needs an empty ToteSys schema"):
        totesys.seed_from_parquet(fresh_db, snapshot_dir)
    assert totesys.table_counts(fresh_db) == SNAPSHOT_SIZES


def test_seed_from_parquet_names_a_missing_table(fresh_db: str, snapshot_dir: Path, tmp_path: Path) -> None:
    for file in snapshot_dir.glob("*.parquet"):
        if file.stem != "design":
            shutil.copy(file, tmp_path / file.name)
    with pytest.raises(TotesysError, match="no Parquet file for: design"):
        totesys.seed_from_parquet(fresh_db, tmp_path)


# ----------------------------------------------------------------------------- synthetic seed


def _violations(url: str) -> dict[str, int]:
    """Counts of rows breaking each invariant of the real ToteSys (all must be 0)."""
    checks = {
        "order_without_one_transaction": """
    SELECT count(*) FROM (
      SELECT s.sales_order_id FROM sales_order s LEFT JOIN "transaction" t USING (sales_order_id)
      GROUP BY 1 HAVING count(t.transaction_id) <> 1
      UNION ALL
      SELECT p.purchase_order_id FROM purchase_order p LEFT JOIN "transaction" t USING (purchase_order_id)
      GROUP BY 1 HAVING count(t.transaction_id) <> 1) x""",
        "transaction_without_one_payment": """
    SELECT count(*) FROM (
      SELECT t.transaction_id FROM "transaction" t LEFT JOIN payment p USING (transaction_id)
      GROUP BY 1 HAVING count(p.payment_id) <> 1) x""",
        "payment_not_matching_order": """
    SELECT count(*) FROM payment p JOIN "transaction" t USING (transaction_id)
    LEFT JOIN sales_order s USING (sales_order_id) LEFT JOIN purchase_order o USING (purchase_order_id)
    WHERE p.payment_amount <> coalesce(s.units_sold * s.unit_price, o.item_quantity * o.item_unit_price)
       OR p.counterparty_id <> coalesce(s.counterparty_id, o.counterparty_id)
       OR p.currency_id <> coalesce(s.currency_id, o.currency_id)
       OR p.payment_date <> coalesce(s.agreed_payment_date, o.agreed_payment_date)
       OR p.payment_type_id <> CASE WHEN t.transaction_type = 'SALE' THEN 1 ELSE 3 END""",
        "transaction_type_inconsistent": """
    SELECT count(*) FROM "transaction"
    WHERE NOT ((transaction_type = 'SALE' AND sales_order_id IS NOT NULL AND purchase_order_id IS NULL)
            OR (transaction_type = 'PURCHASE' AND purchase_order_id IS NOT NULL
                AND sales_order_id IS NULL))""",
        "order_outside_working_hours": """
    SELECT count(*) FROM (
      SELECT created_at FROM sales_order UNION ALL SELECT created_at FROM purchase_order) o
    WHERE extract(isodow FROM created_at) > 5 OR extract(hour FROM created_at) NOT BETWEEN 8 AND 18
       OR created_at < '2022-11-03' OR created_at >= '2024-11-16'""",
        "timestamp_finer_than_ms": """
    SELECT count(*) FROM payment WHERE created_at <> date_trunc('milliseconds', created_at)
                                 OR last_updated <> date_trunc('milliseconds', last_updated)""",
        "paid_not_by_a_batch": """
    SELECT count(*) FROM payment WHERE paid <> (last_updated <> created_at)
       OR (paid AND (last_updated <> payment_date::date + time '07:55:11.885'
                     OR extract(isodow FROM payment_date::date) > 5))""",
        "due_on_a_past_weekday_but_unpaid": """
    SELECT count(*) FROM payment WHERE NOT paid AND extract(isodow FROM payment_date::date) <= 5
       AND payment_date::date > created_at::date AND payment_date <= '2024-11-15'""",
        "ids_not_in_creation_order": """
    SELECT count(*) FROM (SELECT created_at < lag(created_at) OVER (ORDER BY sales_order_id) AS back
                          FROM sales_order) x WHERE back""",
        "design_sold_before_it_existed": """
    SELECT count(*) FROM sales_order s JOIN design d USING (design_id) WHERE d.created_at > s.created_at""",
        "money_not_two_decimals": """
    SELECT count(*) FROM sales_order WHERE scale(unit_price) <> 2 OR unit_price NOT BETWEEN 2 AND 4""",
        "invalid_foreign_keys": "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated",
    }
    with psycopg.connect(url) as conn:
        return {name: conn.execute(query).fetchall()[0][0] for name, query in checks.items()}


def test_synthetic_seed_has_the_real_invariants(fresh_db: str) -> None:
    counts = totesys.seed_synthetic(fresh_db, scale=0.05, seed=7)
    assert counts == totesys.synthetic_sizes(0.05) == totesys.table_counts(fresh_db)
    assert counts["sales_order"] == 559 and counts["purchase_order"] == 232 and counts["payment"] == 791
    assert counts["design"] == 24
    assert _violations(fresh_db) == dict.fromkeys(_violations(fresh_db), 0)
    assert one(fresh_db, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'") == 17

    # Many payments share one paid-batch timestamp, one per due date.
    batches = rows(
        fresh_db,
        "SELECT payment_date, count(DISTINCT last_updated), count(*) FROM payment WHERE paid GROUP BY 1",
    )
    assert batches and all(stamps == 1 for _, stamps, _ in batches)
    assert max(n for _, _, n in batches) >= 3
    assert rows(fresh_db, "SELECT currency_code FROM currency ORDER BY 1") == [("EUR",), ("GBP",), ("USD",)]
    assert [r[0] for r in rows(fresh_db, "SELECT payment_type_name FROM payment_type ORDER BY 1")] == sorted(
        ["SALES_RECEIPT", "SALES_REFUND", "PURCHASE_PAYMENT", "PURCHASE_REFUND"]
    )
    # Awkward values are there.
    assert one(fresh_db, "SELECT count(*) FROM staff WHERE email_address LIKE '%''%'") >= 1
    assert one(fresh_db, "SELECT count(*) FROM counterparty WHERE delivery_contact LIKE '%''%'") >= 1
    assert (
        one(fresh_db, "SELECT count(*) FROM address WHERE country = 'Democratic People''s Republic of Korea'")
        >= 1
    )
    assert one(fresh_db, "SELECT count(*) FROM address WHERE address_line_2 IS NULL") >= 1
    assert one(fresh_db, "SELECT count(*) FROM address WHERE district IS NULL") >= 1
    assert (
        one(fresh_db, "SELECT count(*) FROM sales_order WHERE created_at = date_trunc('second', created_at)")
        >= 1
    )
    # Serial ids continue after the generated ones.
    assert one(fresh_db, "SELECT nextval(pg_get_serial_sequence('payment', 'payment_id'))") == 792


def test_synthetic_seed_at_scale_1_has_the_snapshot_shape(fresh_db: str) -> None:
    assert totesys.seed_synthetic(fresh_db, scale=1.0) == SNAPSHOT_SIZES
    units, price, quantity, paid_share, per_day = rows(
        fresh_db,
        """SELECT (SELECT avg(units_sold) FROM sales_order), (SELECT avg(unit_price) FROM sales_order),
                  (SELECT avg(item_quantity) FROM purchase_order), (SELECT avg(paid::int) FROM payment),
                  (SELECT count(*)::numeric / count(DISTINCT created_at::date) FROM sales_order)""",
    )[0]
    # The snapshot: 50,382 / 2.99 / 502 / 0.61 paid / 21 sales orders a working day.
    assert 48_000 < units < 52_500 and 2.9 < price < 3.1 and 480 < quantity < 520
    assert 0.55 < paid_share < 0.67
    assert 19 < per_day < 23


def _fingerprint(url: str) -> list[tuple[Any, ...]]:
    return rows(
        url,
        """SELECT (SELECT md5(string_agg(s::text, ',' ORDER BY sales_order_id)) FROM sales_order s),
                  (SELECT md5(string_agg(p::text, ',' ORDER BY payment_id)) FROM payment p),
                  (SELECT md5(string_agg(a::text, ',' ORDER BY address_id)) FROM address a)""",
    )


def test_synthetic_seed_is_deterministic_per_seed(pg, fresh_db: str) -> None:
    totesys.seed_synthetic(fresh_db, scale=0.01, seed=5)
    others = []
    for seed in (5, 6):
        name = f"{urlsplit(fresh_db).path.lstrip('/')}_{seed}"
        pg.create_database(name)
        try:
            totesys.seed_synthetic(pg.url(name), scale=0.01, seed=seed)
            others.append(_fingerprint(pg.url(name)))
        finally:
            pg.drop_database(name)
    assert _fingerprint(fresh_db) == others[0]
    assert _fingerprint(fresh_db)[0][0] != others[1][0][0]
    assert all(a != b for a, b in zip(others[0][0], others[1][0], strict=True))


def test_synthetic_seed_rejects_bad_input(fresh_db: str) -> None:
    with pytest.raises(ValueError, match="scale must be"):
        totesys.seed_synthetic(fresh_db, scale=0)
    totesys.seed_synthetic(fresh_db, scale=0.001)
    with pytest.raises(TotesysError, match="needs an empty ToteSys schema"):
        totesys.seed_synthetic(fresh_db, scale=0.001)


# ----------------------------------------------------------------------------- simulate


def _state(url: str) -> dict[str, dict[Any, tuple[Any, ...]]]:
    """Every row of every table, by primary key."""
    with psycopg.connect(url) as conn:
        return {
            name: {r[0]: r for r in conn.execute(f'SELECT * FROM "{name}"').fetchall()}
            for name in SOURCE_TABLES
        }


def test_simulate_does_exactly_what_it_reports(fresh_db: str) -> None:
    totesys.seed_synthetic(fresh_db, scale=0.02, seed=1)
    before = _state(fresh_db)
    today = one(fresh_db, "SELECT to_char(localtimestamp, 'YYYY-MM-DD')")
    due = {pk for pk, r in before["payment"].items() if not r[8] and r[9] <= today}
    assert due

    report = totesys.simulate(fresh_db, sales_orders=21, purchase_orders=9, paid_batch=True, edits=8, seed=3)
    assert report == {
        "sales_order": 21,
        "purchase_order": 9,
        "transaction": 30,
        "payment": 30,
        "paid": len(due),
        "edited": 8,
    }
    after = _state(fresh_db)
    for name in SOURCE_TABLES:
        assert set(before[name]) <= set(after[name]), f"{name}: rows disappeared"
    added = {name: set(after[name]) - set(before[name]) for name in SOURCE_TABLES}
    assert {name: len(keys) for name, keys in added.items() if keys} == {
        "sales_order": 21,
        "purchase_order": 9,
        "transaction": 30,
        "payment": 30,
    }

    # One timestamp for everything the tick wrote, at millisecond precision.
    stamps = {after["payment"][pk][2] for pk in due} | {
        after["sales_order"][pk][2] for pk in added["sales_order"]
    }
    assert len(stamps) == 1
    (tick,) = stamps
    assert tick.microsecond % 1000 == 0
    assert abs((one(fresh_db, "SELECT localtimestamp") - tick).total_seconds()) < 60

    # The paid batch: exactly the payments due by today, all sharing that one last_updated.
    newly_paid = {
        pk
        for pk, r in after["payment"].items()
        if r[8] and pk in before["payment"] and not before["payment"][pk][8]
    }
    assert newly_paid == due
    # New orders are consistent and unpaid.
    assert _violations(fresh_db)["order_without_one_transaction"] == 0
    assert _violations(fresh_db)["transaction_without_one_payment"] == 0
    assert _violations(fresh_db)["payment_not_matching_order"] == 0
    assert not any(after["payment"][pk][8] for pk in added["payment"])

    # Edits: changed rows carry the tick and differ from before in more than last_updated.
    edited = [
        (name, pk)
        for name in ("sales_order", "address", "design", "staff", "department", "counterparty")
        for pk, r in after[name].items()
        if pk in before[name] and r != before[name][pk]
    ]
    assert 1 <= len(edited) <= 8
    for name, pk in edited:
        old, new = before[name][pk], after[name][pk]
        stamp = SOURCE_TABLES[name].column_names.index("last_updated")
        assert new[stamp] == tick
        assert [v for i, v in enumerate(new) if i != stamp] != [v for i, v in enumerate(old) if i != stamp]
    unchanged = [
        name
        for name in ("currency", "payment_type", "transaction")
        if any(after[name][pk] != r for pk, r in before[name].items())
    ]
    assert unchanged == []


def test_simulate_without_batch_or_edits_only_adds(fresh_db: str) -> None:
    totesys.seed_synthetic(fresh_db, scale=0.01, seed=2)
    before = _state(fresh_db)
    report = totesys.simulate(fresh_db, sales_orders=2, purchase_orders=1)
    assert report == {
        "sales_order": 2,
        "purchase_order": 1,
        "transaction": 3,
        "payment": 3,
        "paid": 0,
        "edited": 0,
    }
    after = _state(fresh_db)
    for name in SOURCE_TABLES:
        assert {pk: after[name][pk] for pk in before[name]} == before[name], name


def test_simulate_is_one_transaction(fresh_db: str) -> None:
    totesys.seed_synthetic(fresh_db, scale=0.01, seed=4)
    # Make the purchase-order insert fail after the paid batch and the sales orders have run.
    with psycopg.connect(fresh_db) as conn:
        conn.execute(
            "ALTER TABLE purchase_order ADD CONSTRAINT no_more CHECK (purchase_order_id < 0) NOT VALID"
        )
    before = _state(fresh_db)
    with pytest.raises(psycopg.errors.CheckViolation):
        totesys.simulate(fresh_db, sales_orders=3, purchase_orders=1, paid_batch=True, edits=2)
    assert _state(fresh_db) == before


def test_simulate_needs_a_seeded_database(fresh_db: str) -> None:
    with pytest.raises(TotesysError, match="missing"):
        totesys.simulate(fresh_db)
    totesys.create_schema(fresh_db)
    with pytest.raises(TotesysError, match="seed ToteSys"):
        totesys.simulate(fresh_db)
    with pytest.raises(ValueError, match="sales_orders must be a non-negative integer"):
        totesys.simulate(fresh_db, sales_orders=-1)
