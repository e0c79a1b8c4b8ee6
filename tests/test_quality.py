"""Contract validation (shared/contract/quality.py): each rule with a row that breaks it and one that passes.

Rows are built from one valid row per table (`VALID`), changed only where a case says, so each
case shows exactly what it breaks. The lineage column `_extract_run_id` rides along on both sides.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from functools import reduce
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from shared.contract import references
from shared.contract.quality import REASON_COLUMN, TABLE_CHECKS, ContractError, check_rows
from shared.contract.references import batch_references, referenced_key_values, resolve_batches
from shared.contract.source import SOURCE_TABLES, SourceTable
from shared.runtime.sizing import small_shuffles


def ts(text: str) -> datetime:
    """A source timestamp. Aware (UTC) so PySpark does not shift it by this machine's time zone."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


CREATED, UPDATED = ts("2024-11-14 10:21:09.386"), ts("2024-11-15 07:55:11")  # the second: no fraction
VERSION: dict[str, Any] = {"created_at": CREATED, "last_updated": UPDATED}
VALID: dict[str, dict[str, Any]] = {
    "address": {
        "address_id": 1, "address_line_1": "6826 Herzog Via", "address_line_2": "Flat 1", "district": "Avon",
        "city": "New Patienceburgh", "postal_code": "28441",
        "country": "Democratic People's Republic of Korea", "phone": "1803 637401", **VERSION,
    },
    "department": {
        "department_id": 1, "department_name": "Sales", "location": "Manchester", "manager": "Richard Roma",
        **VERSION,
    },
    "currency": {"currency_id": 1, "currency_code": "GBP", **VERSION},
    "sales_order": {
        "sales_order_id": 1, **VERSION, "design_id": 1, "staff_id": 1, "counterparty_id": 1,
        "units_sold": 42972, "unit_price": Decimal("3.94"), "currency_id": 1,
        "agreed_delivery_date": "2024-02-29", "agreed_payment_date": "2024-03-01",
        "agreed_delivery_location_id": 1,
    },
    "purchase_order": {
        "purchase_order_id": 1, **VERSION, "staff_id": 1, "counterparty_id": 1, "item_code": "ZDOI5EA",
        "item_quantity": 371, "item_unit_price": Decimal("361.39"), "currency_id": 1,
        "agreed_delivery_date": "2024-11-20", "agreed_payment_date": "2024-11-18",
        "agreed_delivery_location_id": 1,
    },
    "payment": {
        "payment_id": 1, **VERSION, "transaction_id": 1, "counterparty_id": 1,
        "payment_amount": Decimal("552548.62"), "currency_id": 1, "payment_type_id": 1, "paid": False,
        "payment_date": "2024-11-15", "company_ac_number": 67305075, "counterparty_ac_number": 31622269,
    },
    "transaction": {
        "transaction_id": 1, "transaction_type": "SALE", "sales_order_id": 1, "purchase_order_id": None,
        **VERSION,
    },
}  # fmt: skip
RUN_ID = "20241115T080000Z"


def row(table: str, **changes: Any) -> tuple:
    """The valid row of `table` with `changes` applied, in contract column order, plus its run id."""
    unknown = set(changes) - set(SOURCE_TABLES[table].column_names)
    assert not unknown, f"not columns of {table}: {unknown}"
    values = {**VALID[table], **changes}
    return (*(values[c] for c in SOURCE_TABLES[table].column_names), RUN_ID)


def schema(table: str, *extra: str) -> StructType:
    """The contract's schema plus the run id and `extra` string columns (`_reason` is never NULL)."""
    fields = [*SOURCE_TABLES[table].spark_schema.fields, StructField("_extract_run_id", StringType())]
    return StructType(fields + [StructField(name, StringType(), name != REASON_COLUMN) for name in extra])


def frame(spark: SparkSession, table: str, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(rows, schema(table))


def rejected(spark: SparkSession, table: str, rows_and_reasons: list[tuple[tuple, str]]) -> DataFrame:
    return spark.createDataFrame(
        [(*r, reason) for r, reason in rows_and_reasons], schema(table, REASON_COLUMN)
    )


def ordered(df: DataFrame, *columns: str) -> DataFrame:
    """`df` sorted: a known-keys join may reorder rows (check_rows defines no order).

    Instead of chispa's ignore_row_order, which range-sorts both sides (several Spark jobs each), one
    partition sorted locally: the same check, and no shuffle on a two-core CI machine.
    """
    return df.coalesce(1).sortWithinPartitions(*columns)


def keys(spark: SparkSession, table: str, ids: list[int]) -> DataFrame:
    return spark.createDataFrame([(i,) for i in ids], f"{SOURCE_TABLES[table].primary_key} int")


# --- each rule with a row that breaks it and one that passes ----------------------------------------

# table -> [(changes to its valid row, the expected reason, or None for a row that must pass)]
CASES: dict[str, list[tuple[dict[str, Any], str | None]]] = {
    "address": [
        ({}, None),
        ({"address_line_2": None, "district": None}, None),  # nullable columns
        ({"city": None}, "city: NULL in NOT NULL column"),
    ],
    "department": [
        ({"location": None, "manager": None}, None),
        ({"department_name": None}, "department_name: NULL in NOT NULL column"),
    ],
    "currency": [
        ({}, None),
        ({"currency_code": "USD"}, None),
        ({"currency_code": "EUR"}, None),
        ({"currency_id": None}, "currency_id: NULL in NOT NULL column"),
        ({"currency_code": "XYZ"}, "currency_code: unknown currency code ('XYZ')"),
        ({"currency_code": "gbp"}, "currency_code: unknown currency code ('gbp')"),
    ],
    "sales_order": [
        ({"agreed_delivery_date": "2024-02-29"}, None),  # leap day
        ({"units_sold": 1, "unit_price": Decimal("0.01")}, None),  # lower bounds
        ({"units_sold": 10_000_000, "unit_price": Decimal("99999999.99")}, None),  # upper bounds
        ({"unit_price": Decimal("3.9")}, None),
        ({"created_at": None}, "created_at: NULL in NOT NULL column"),
        ({"agreed_delivery_date": "2024-13-45"},
         "agreed_delivery_date: not a YYYY-MM-DD date ('2024-13-45')"),
        ({"agreed_payment_date": "2023-02-29"}, "agreed_payment_date: not a YYYY-MM-DD date ('2023-02-29')"),
        ({"agreed_payment_date": "2024-2-01"}, "agreed_payment_date: not a YYYY-MM-DD date ('2024-2-01')"),
        ({"units_sold": -5}, "units_sold: not positive (-5)"),
        ({"units_sold": 0}, "units_sold: not positive (0)"),
        ({"units_sold": 10_000_001}, "units_sold: above 10,000,000 (10000001)"),
        ({"unit_price": Decimal("0")}, "unit_price: not positive (0)"),
        ({"unit_price": Decimal("-3.94")}, "unit_price: not positive (-3.94)"),
        ({"unit_price": Decimal("100000000")}, "unit_price: not below 100,000,000 (100000000)"),
        ({"unit_price": Decimal("3.945")}, "unit_price: more than 2 decimal places (3.945)"),
        ({"unit_price": Decimal("3.940000000000000001")},
         "unit_price: more than 2 decimal places (3.940000000000000001)"),
    ],
    "purchase_order": [
        ({"item_quantity": 10_000_000, "item_unit_price": Decimal("1000000")}, None),  # upper bounds
        ({"item_quantity": 1, "item_unit_price": Decimal("0.123456789012345678")}, None),  # plain numeric
        ({"agreed_delivery_date": "20241120"}, "agreed_delivery_date: not a YYYY-MM-DD date ('20241120')"),
        ({"item_quantity": 0}, "item_quantity: not positive (0)"),
        ({"item_quantity": 2_000_000_000}, "item_quantity: above 10,000,000 (2000000000)"),
        ({"item_unit_price": Decimal("0")}, "item_unit_price: not positive (0)"),
        ({"item_unit_price": Decimal("1000000.01")}, "item_unit_price: above 1,000,000 (1000000.01)"),
    ],
    "payment": [
        ({"paid": True, "payment_amount": Decimal("0")}, None),  # no rule on payment amounts
        ({"last_updated": None}, "last_updated: NULL in NOT NULL column"),
        ({"paid": None}, "paid: NULL in NOT NULL column"),
        ({"payment_date": None}, "payment_date: NULL in NOT NULL column"),
        ({"payment_date": "2024-11-15T00:00"}, "payment_date: not a YYYY-MM-DD date ('2024-11-15T00:00')"),
        # a cast to date would trim these: they must not pass as '2024-11-15'
        ({"payment_date": "2024-11-15\n"}, "payment_date: not a YYYY-MM-DD date ('2024-11-15\n')"),
        ({"payment_date": " 2024-11-15"}, "payment_date: not a YYYY-MM-DD date (' 2024-11-15')"),
    ],
    "transaction": [
        ({}, None),
        ({"transaction_type": "PURCHASE", "sales_order_id": None, "purchase_order_id": 7}, None),
        ({"transaction_type": None}, "transaction_type: NULL in NOT NULL column"),
        ({"transaction_type": "REFUND"}, "transaction_type: not SALE or PURCHASE ('REFUND')"),
        ({"sales_order_id": None, "purchase_order_id": 7},
         "transaction_type: SALE needs sales_order_id set and purchase_order_id NULL"),
        ({"purchase_order_id": 7},
         "transaction_type: SALE needs sales_order_id set and purchase_order_id NULL"),
        ({"transaction_type": "PURCHASE"},
         "transaction_type: PURCHASE needs purchase_order_id set and sales_order_id NULL"),
    ],
}  # fmt: skip


@pytest.mark.parametrize("table", CASES)
def test_each_rule_rejects_a_row_that_breaks_it_and_passes_one_that_does_not(spark, table):
    cases = [(row(table, **changes), reason) for changes, reason in CASES[table]]
    checked = check_rows(SOURCE_TABLES[table], frame(spark, table, [r for r, _ in cases]))

    # Input order kept on both sides: check_rows only filters (no known keys, so no join).
    assert_df_equality(checked.valid, frame(spark, table, [r for r, reason in cases if reason is None]))
    expected = rejected(spark, table, [(r, reason) for r, reason in cases if reason is not None])
    assert_df_equality(checked.rejected, expected)


# --- several reasons, foreign keys, batches ----------------------------------------------------------


def test_every_reason_of_a_row_is_given_in_contract_order(spark):
    bad = row(
        "sales_order",
        design_id=999,
        currency_id=None,
        agreed_delivery_date="2024-13-45",
        units_sold=-5,
        unit_price=Decimal("3.945"),
    )
    checked = check_rows(
        SOURCE_TABLES["sales_order"],
        frame(spark, "sales_order", [bad]),
        {"design": keys(spark, "design", [1])},
    )
    reason = (
        "design_id: unknown design 999; currency_id: NULL in NOT NULL column; "
        "agreed_delivery_date: not a YYYY-MM-DD date ('2024-13-45'); units_sold: not positive (-5); "
        "unit_price: more than 2 decimal places (3.945)"
    )
    assert_df_equality(checked.rejected, rejected(spark, "sales_order", [(bad, reason)]))
    assert checked.valid.isEmpty()


@pytest.mark.parametrize("broadcast", [True, False], ids=["broadcast join", "shuffle join"])
def test_foreign_keys_are_checked_against_the_known_keys(spark, broadcast):
    """Known keys are broadcast up to a size (the batch is not shuffled), beyond it joined by a
    shuffle (15.8 million transactions at 1000x do not fit the heap as a hash table): same verdicts."""
    rows = [
        row("sales_order", sales_order_id=1, design_id=1),
        row("sales_order", sales_order_id=2, design_id=999),
        row("sales_order", sales_order_id=3, design_id=2, staff_id=12345),  # staff keys not given: unchecked
        row("sales_order", sales_order_id=4, design_id=2, agreed_delivery_location_id=30),
    ]
    known = {
        "design": keys(spark, "design", [1, 2, 2]),  # a duplicated key must not duplicate rows
        "address": keys(spark, "address", [1]),
    }
    checked = check_rows(
        SOURCE_TABLES["sales_order"],
        frame(spark, "sales_order", rows),
        known,
        (1 << 63) - 1 if broadcast else -1,
    )  # a local DataFrame's size is unknown to Spark: the largest estimate
    plan = checked.annotated._jdf.queryExecution().executedPlan().toString()
    assert ("BroadcastHashJoin" in plan) == broadcast and ("SortMergeJoin" in plan) != broadcast

    expected_rejected = rejected(
        spark,
        "sales_order",
        [
            (rows[1], "design_id: unknown design 999"),
            (rows[3], "agreed_delivery_location_id: unknown address 30"),
        ],
    )
    assert_df_equality(
        ordered(checked.valid, "sales_order_id"), frame(spark, "sales_order", [rows[0], rows[2]])
    )
    assert_df_equality(ordered(checked.rejected, "sales_order_id"), expected_rejected)


def test_a_null_optional_foreign_key_is_not_unknown(spark):
    rows = [
        row("transaction", transaction_id=1, sales_order_id=5),  # a SALE: purchase_order_id NULL
        row("transaction", transaction_id=2, transaction_type="PURCHASE", sales_order_id=None, purchase_order_id=9),
        row("transaction", transaction_id=3, sales_order_id=6),
    ]  # fmt: skip
    known = {
        "sales_order": keys(spark, "sales_order", [5]),
        "purchase_order": keys(spark, "purchase_order", [9]),
    }
    checked = check_rows(SOURCE_TABLES["transaction"], frame(spark, "transaction", rows), known)
    assert_df_equality(ordered(checked.valid, "transaction_id"), frame(spark, "transaction", rows[:2]))
    expected = rejected(spark, "transaction", [(rows[2], "sales_order_id: unknown sales_order 6")])
    assert_df_equality(ordered(checked.rejected, "transaction_id"), expected)


def test_known_keys_must_be_named_like_the_primary_key(spark):
    wrong = spark.createDataFrame([(1,)], "id int")
    with pytest.raises(ContractError, match="known keys of design need a column 'design_id'"):
        check_rows(
            SOURCE_TABLES["sales_order"], frame(spark, "sales_order", [row("sales_order")]), {"design": wrong}
        )


def test_known_keys_cut_down_to_the_batch_references_give_the_same_verdicts(spark):
    # Two foreign keys to the same table (address), one to a big set (design), one unchecked (staff).
    rows = [
        row("sales_order", sales_order_id=1, design_id=1, agreed_delivery_location_id=2),
        row("sales_order", sales_order_id=2, design_id=999),
        row("sales_order", sales_order_id=3, design_id=None, agreed_delivery_location_id=30),
    ]
    sales = frame(spark, "sales_order", rows)
    known = {
        "design": keys(spark, "design", list(range(1, 500))),
        "address": keys(spark, "address", [1, 2, 3]),
        "currency": keys(spark, "currency", [1, 2]),
    }
    restricted = referenced_key_values(SOURCE_TABLES["sales_order"], sales, known)

    assert sorted(restricted) == ["address", "currency", "design"]
    # Only the referenced keys that exist: design 999 and address 30 do not.
    assert restricted["design"] == frozenset({1})
    assert restricted["address"] == frozenset({1, 2})  # both address columns
    assert restricted["currency"] == frozenset({1})
    full, cut = (
        check_rows(SOURCE_TABLES["sales_order"], sales, known),
        check_rows(SOURCE_TABLES["sales_order"], sales, restricted),
    )
    assert_df_equality(ordered(cut.valid, "sales_order_id"), ordered(full.valid, "sales_order_id"))
    assert_df_equality(ordered(cut.rejected, "sales_order_id"), ordered(full.rejected, "sales_order_id"))
    assert sorted(r[REASON_COLUMN] for r in cut.rejected.collect()) == [
        "design_id: NULL in NOT NULL column; agreed_delivery_location_id: unknown address 30",
        "design_id: unknown design 999",
    ]


def test_a_reference_to_more_keys_than_an_in_list_holds_keeps_its_known_keys_dataframe(spark, monkeypatch):
    # The batch refers to 2 designs and 1 currency; with at most 1 key per IN list, design keeps the join.
    monkeypatch.setattr(references, "MAX_KEYS_IN_LIST", 1)
    rows = [
        row("sales_order", sales_order_id=1, design_id=1),
        row("sales_order", sales_order_id=2, design_id=999),
    ]
    sales = frame(spark, "sales_order", rows)
    known = {"design": keys(spark, "design", [1, 2]), "currency": keys(spark, "currency", [1, 2])}
    restricted = referenced_key_values(SOURCE_TABLES["sales_order"], sales, known)

    assert restricted["design"] is known["design"]
    assert restricted["currency"] == frozenset({1})
    cut = check_rows(SOURCE_TABLES["sales_order"], sales, restricted)
    assert [r[REASON_COLUMN] for r in cut.rejected.collect()] == ["design_id: unknown design 999"]
    assert [r["sales_order_id"] for r in cut.valid.collect()] == [1]


def _tallies() -> list:
    return [
        F.count(F.lit(1)).alias("read"),
        F.sum((F.col(REASON_COLUMN) != "").cast("int")).alias("rejected"),
    ]


def test_batch_references_tally_the_batch_in_the_job_that_collects_its_references(spark, monkeypatch):
    """When every key the batch refers to exists, the tallies of the batch checked without its
    foreign keys are those of the full check; when one is unknown, or was not looked up (more keys
    than an IN list holds), `all_found` says the tallies cannot be used."""
    table = SOURCE_TABLES["sales_order"]
    known = {"design": keys(spark, "design", [1, 2, 3]), "currency": keys(spark, "currency", [1, 2])}
    # Row 2 breaks a rule that is not a foreign key (NULL in a NOT NULL column).
    good = frame(spark, "sales_order", [row("sales_order", sales_order_id=1, design_id=1),
                                        row("sales_order", sales_order_id=2, design_id=2, units_sold=None)])  # fmt: skip
    found = batch_references(table, check_rows(table, good).annotated, known, _tallies())
    assert found.all_found and found.keys["design"] == frozenset({1, 2})
    full = check_rows(table, good, known).annotated.agg(*_tallies()).first().asDict()
    assert found.also == full == {"read": 2, "rejected": 1}

    unknown = frame(spark, "sales_order", [row("sales_order", sales_order_id=1, design_id=999)])
    missing = batch_references(table, check_rows(table, unknown).annotated, known, _tallies())
    assert not missing.all_found and missing.keys["design"] == frozenset()
    assert missing.also == {"read": 1, "rejected": 0}  # the full check rejects it: not to be used

    monkeypatch.setattr(references, "MAX_KEYS_IN_LIST", 1)
    kept = batch_references(table, check_rows(table, good).annotated, known, _tallies())
    assert not kept.all_found and kept.keys["design"] is known["design"]

    # No known table referred to: the tallies alone, in one job.
    alone = batch_references(SOURCE_TABLES["currency"], check_rows(SOURCE_TABLES["currency"],
                             frame(spark, "currency", [row("currency")])).annotated, {}, _tallies())  # fmt: skip
    assert alone.all_found and alone.also == {"read": 1, "rejected": 0}


def _jobs_of(spark: SparkSession, group: str, action):
    """What `action()` returns, and the ids of the Spark jobs it ran, as a small batch runs
    (shared/runtime/sizing.py: AQE off, so each query is one job)."""
    context = spark.sparkContext
    context.setJobGroup(group, group)
    try:
        with small_shuffles(spark):
            out = action()
        return out, list(context.statusTracker().getJobIdsForGroup(group))
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)


def _tallies_of(table: str) -> list:
    return [
        *_tallies(),
        *([F.collect_set(F.year("created_at")).alias("years")] if table == "payment" else []),
    ]


def test_resolve_batches_settles_a_change_in_two_jobs_with_the_full_checks_verdicts(spark):
    """A change over four tables, each referring to keys committed before or brought by another
    batch: two Spark jobs settle all of them with the tallies the rows make, and where references
    cross batches, the check without known keys gives the verdicts of the full check (known keys:
    committed + the valid rows of the batches, by hand). A batch referring to a row rejected in its own batch, or to an unknown key, is
    not settled (and neither is a batch referring to an unsettled one)."""
    committed_ids = {t: [1] for t in ("design", "staff", "counterparty", "address", "currency",
                                      "sales_order", "transaction", "payment_type")}  # fmt: skip
    committed = {t: keys(spark, t, ids) for t, ids in committed_ids.items()}  # purchase_order: nothing
    batches = {
        "currency": [row("currency", currency_id=3, currency_code="EUR")],
        "sales_order": [row("sales_order", sales_order_id=6, currency_id=3)],
        "transaction": [
            row("transaction", transaction_id=10, sales_order_id=1),  # committed
            row("transaction", transaction_id=11, sales_order_id=6),  # this change's
            row("transaction", transaction_id=12, transaction_type="REFUND"),  # rejected: not a FK
        ],
        "payment": [row("payment", payment_id=20, transaction_id=11, currency_id=3)],
    }
    # The valid ids of every batch by hand, for the full check.
    valid_ids = {"currency": [3], "sales_order": [6], "transaction": [10, 11], "payment": [20]}
    full_known = {t: keys(spark, t, committed_ids.get(t, []) + valid_ids.get(t, []))
                  for t in {*committed_ids, *valid_ids}}  # fmt: skip

    def resolve(tables: dict[str, list[tuple]]):
        frames = {t: frame(spark, t, r) for t, r in tables.items()}
        alone = {t: check_rows(SOURCE_TABLES[t], df).annotated.cache() for t, df in frames.items()}
        return frames, _jobs_of(
            spark, "resolve_batches", lambda: resolve_batches(alone, committed, _tallies_of)
        )

    frames, (resolved, jobs) = resolve(batches)
    assert len(jobs) == 2, jobs
    assert sorted(resolved) == ["currency", "payment", "sales_order", "transaction"]
    # The tallies, as the rows above make them (the payment's year: of its created_at).
    assert resolved == {
        "currency": {"read": 1, "rejected": 0},
        "sales_order": {"read": 1, "rejected": 0},
        "transaction": {"read": 3, "rejected": 1},
        "payment": {"read": 1, "rejected": 0, "years": [CREATED.year]},
    }
    for table in ("transaction", "payment"):  # the tables whose references cross batches
        source, df = SOURCE_TABLES[table], frames[table]
        full, alone = check_rows(source, df, full_known), check_rows(source, df)
        columns = [*df.columns, REASON_COLUMN]
        pk = source.primary_key
        assert_df_equality(
            ordered(alone.annotated.select(columns), pk), ordered(full.annotated.select(columns), pk)
        )

    # A payment for the rejected transaction 12 is not settled; one for an unknown transaction
    # neither; a sales order for an unknown design, and then the transactions of it, neither.
    _, (resolved, _) = resolve({**batches, "payment": [row("payment", payment_id=21, transaction_id=12)]})
    assert sorted(resolved) == ["currency", "sales_order", "transaction"]
    _, (resolved, _) = resolve({**batches, "payment": [row("payment", payment_id=22, transaction_id=999)]})
    assert "payment" not in resolved
    _, (resolved, _) = resolve(
        {**batches, "sales_order": [row("sales_order", sales_order_id=6, design_id=999)]}
    )
    assert sorted(resolved) == ["currency"]


def test_every_row_lands_on_exactly_one_side(spark):
    rows = [
        row("payment", payment_id=1),
        row("payment", payment_id=2, payment_date="2024-11-31"),
        row("payment", payment_id=3, paid=True),
        row("payment", payment_id=4, currency_id=None, transaction_id=77),
        row("payment", payment_id=5, counterparty_id=99),
        row("payment", payment_id=5, counterparty_id=99),  # an exact duplicate stays a duplicate
    ]
    known = {
        "transaction": keys(spark, "transaction", [1]),
        "counterparty": keys(spark, "counterparty", [1, 99]),
    }
    payments = frame(spark, "payment", rows)
    checked = check_rows(SOURCE_TABLES["payment"], payments, known)

    valid, rejected_rows = checked.valid.collect(), checked.rejected.collect()

    assert len(valid) + len(rejected_rows) == len(rows)
    back = [tuple(r) for r in valid] + [tuple(r)[:-1] for r in rejected_rows]
    assert Counter(back) == Counter(tuple(r) for r in payments.collect())  # same rows, same multiplicity
    assert sorted(r[REASON_COLUMN] for r in rejected_rows) == [
        "payment_date: not a YYYY-MM-DD date ('2024-11-31')",
        "transaction_id: unknown transaction 77; currency_id: NULL in NOT NULL column",
    ]


# --- corrupt records, contract errors, laziness ------------------------------------------------------


def test_a_corrupt_record_is_rejected_for_that_reason_alone(spark):
    good = (*row("currency"), None)
    corrupt = (None, None, None, None, RUN_ID, '{"currency_id": 2, "currency_code": "US')
    df = spark.createDataFrame([good, corrupt], schema("currency", "_corrupt_record"))
    checked = check_rows(SOURCE_TABLES["currency"], df)

    assert_df_equality(checked.valid, frame(spark, "currency", [row("currency")]))  # no _corrupt_record
    expected = spark.createDataFrame(
        [(*corrupt, "_corrupt_record: unparseable JSON record")],
        schema("currency", "_corrupt_record", REASON_COLUMN),
    )
    assert_df_equality(checked.rejected, expected)


def test_json_that_does_not_fit_the_schema_is_rejected_not_coerced(spark, tmp_path):
    # The ingestion zone read as the transform job reads it. A string where an int belongs would
    # otherwise become a NULL, and NULL is allowed for sales_order_id of a PURCHASE.
    stamps = {"created_at": "2024-11-14T10:21:09.386", "last_updated": "2024-11-14T10:21:09.386"}
    purchase = {"transaction_id": 1, "transaction_type": "PURCHASE", "sales_order_id": None, **stamps}
    lines = [
        json.dumps({**purchase, "purchase_order_id": 2}),
        json.dumps({**purchase, "transaction_id": 2, "sales_order_id": "abc", "purchase_order_id": 3}),
        '{"transaction_id": 3, "transaction_type": "SALE", ',  # cut short
    ]
    (tmp_path / "part-0.json").write_text("\n".join(lines) + "\n")
    df = (
        spark.read.schema(schema("transaction", "_corrupt_record"))
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", "_corrupt_record")
        .json(str(tmp_path))
        .withColumn("_extract_run_id", F.lit(RUN_ID))
    )
    checked = check_rows(SOURCE_TABLES["transaction"], df)

    assert [r["transaction_id"] for r in checked.valid.collect()] == [1]
    reasons = {r["_corrupt_record"]: r[REASON_COLUMN] for r in checked.rejected.collect()}
    assert reasons == {
        lines[1]: "_corrupt_record: unparseable JSON record",
        lines[2]: "_corrupt_record: unparseable JSON record",
    }


def test_a_missing_contract_column_is_a_contract_error(spark):
    df = frame(spark, "currency", [row("currency")]).drop("currency_code")
    with pytest.raises(ContractError, match=r"currency: missing contract column\(s\) \['currency_code'\]"):
        check_rows(SOURCE_TABLES["currency"], df)


def test_an_unknown_check_name_is_a_contract_error(spark):
    table = SourceTable("currency", SOURCE_TABLES["currency"].columns, checks=("currency_code_kown",))
    with pytest.raises(ContractError, match="unknown check"):
        check_rows(table, frame(spark, "currency", [row("currency")]))


def test_every_check_named_in_the_contract_is_implemented():
    named = {check for table in SOURCE_TABLES.values() for check in table.checks}
    assert named <= set(TABLE_CHECKS)


def test_check_rows_runs_no_spark_job(spark):
    sales = frame(spark, "sales_order", [row("sales_order")])
    known = {"design": keys(spark, "design", [1])}
    _, jobs = _jobs_of(
        spark, "check_rows must stay lazy", lambda: check_rows(SOURCE_TABLES["sales_order"], sales, known)
    )
    assert jobs == []


# --- calibration on the real snapshot ------------------------------------------------------------------


def _snapshot(spark: SparkSession, snapshot_dir: Path, tmp_path: Path, table: str) -> DataFrame:
    """A snapshot table with its source types (the Parquet there is lossy: doubles, ns timestamps)."""
    data = pq.read_table(snapshot_dir / f"{table}.parquet")
    for i, field in enumerate(data.schema):
        if pa.types.is_timestamp(field.type):  # Spark cannot read nanosecond timestamps
            data = data.set_column(i, field.name, data.column(i).cast(pa.timestamp("ms", tz="UTC")))
    pq.write_table(data, tmp_path / f"{table}.parquet")
    raw = spark.read.parquet(str(tmp_path / f"{table}.parquet"))
    return raw.select(
        [F.col(f.name).cast(f.dataType).alias(f.name) for f in SOURCE_TABLES[table].spark_schema]
    )


def test_the_whole_real_snapshot_passes(spark, snapshot_dir, tmp_path):
    # The calibration check: 48,000 real rows, awkward values and all, and not one may be quarantined
    # by the NOT NULL, date or table checks. Foreign keys are left to the tiny tests above: joining
    # eleven real tables costs seconds here and proves nothing more.
    rejects = [
        check_rows(source, _snapshot(spark, snapshot_dir, tmp_path, name)).rejected.select(
            F.lit(name).alias("table"), REASON_COLUMN
        )
        for name, source in SOURCE_TABLES.items()
    ]
    assert reduce(DataFrame.unionByName, rejects).limit(5).collect() == []  # one job for all eleven
