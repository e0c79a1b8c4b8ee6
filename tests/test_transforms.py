"""The star builders of shared/transforms.py on tiny inline DataFrames.

Inputs use the source contract's Spark schemas plus a lineage column the builders must drop;
expected outputs use `STAR_SCHEMAS`, so every comparison also checks column names, order and types.
Rows are written one per line (`# fmt: skip`) so that a table reads like a table.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, IntegerType, StringType, StructField, StructType

from shared import transforms as T
from shared.contract.source import SOURCE_TABLES
from shared.contract.star import STAR_SCHEMAS

T0 = "2022-11-03 14:20:49.962"


def ts(text: str) -> datetime:
    """A source timestamp. Aware (UTC) so PySpark does not shift it by this machine's time zone."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def source(spark: SparkSession, table: str, rows: list[tuple]) -> DataFrame:
    """Rows of a source table, plus the lineage column every extracted row carries."""
    df = spark.createDataFrame(rows, SOURCE_TABLES[table].spark_schema)
    return df.withColumn("_extract_run_id", F.lit("20241115T080000Z"))


def star(spark: SparkSession, table: str, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(rows, STAR_SCHEMAS[table])


def ordered(df: DataFrame, *columns: str) -> DataFrame:
    """`df` sorted, for builders that shuffle (joins, aggregations): Spark defines no row order there.

    Instead of chispa's ignore_row_order, which range-sorts both sides (several Spark jobs each), one
    partition sorted locally: the same check, and no shuffle on a two-core CI machine.
    """
    return df.coalesce(1).sortWithinPartitions(*columns)


def assert_star(actual: DataFrame, expected: DataFrame) -> None:
    """Compare a built table with the expected one: names, order, types and rows.

    ignore_nullable: Spark's nullable flags are plan metadata (a join or an explode changes them, and
    Parquet reads every column back as nullable); the contract's nullability is NULLABLE_COLUMNS.
    """
    assert_df_equality(actual, expected, ignore_nullable=True)


# --- latest_versions -------------------------------------------------------------------------------

CURRENCY_WITH_RUN = StructType(
    [*SOURCE_TABLES["currency"].spark_schema.fields, StructField("_extract_run_id", StringType())]
)
CURRENCY_VERSIONS = [
    # key 1: the later last_updated wins, whatever came first
    (1, "GBQ", ts(T0), ts("2022-11-03 14:20:49.962"), "run-2"),
    (1, "GBP", ts(T0), ts("2024-11-15 07:55:11.885"), "run-1"),
    # key 2: same last_updated; the later extract run (the later read) wins
    (2, "USX", ts(T0), ts("2024-01-01 00:00:00"), "run-1"),
    (2, "USD", ts(T0), ts("2024-01-01 00:00:00"), "run-2"),
    # key 3: same last_updated, same run: the tie is still broken the same way every time
    (3, "EUA", ts(T0), ts("2024-01-01 00:00:00"), "run-1"),
    (3, "EUR", ts(T0), ts("2024-01-01 00:00:00"), "run-1"),
    # key 4: a single version is kept as it is
    (4, "CHF", ts(T0), ts(T0), "run-1"),
]
LATEST_CURRENCIES = [
    (1, "GBP", ts(T0), ts("2024-11-15 07:55:11.885"), "run-1"),
    (2, "USD", ts(T0), ts("2024-01-01 00:00:00"), "run-2"),
    (3, "EUR", ts(T0), ts("2024-01-01 00:00:00"), "run-1"),
    (4, "CHF", ts(T0), ts(T0), "run-1"),
]


@pytest.mark.parametrize("order", ["as listed", "reversed"])
def test_latest_versions_keeps_the_greatest_last_updated_with_a_deterministic_tie_break(spark, order):
    rows = CURRENCY_VERSIONS if order == "as listed" else CURRENCY_VERSIONS[::-1]
    versions = spark.createDataFrame(rows, CURRENCY_WITH_RUN)

    actual = T.latest_versions(versions, "currency_id")

    assert_df_equality(
        ordered(actual, "currency_id"), spark.createDataFrame(LATEST_CURRENCIES, CURRENCY_WITH_RUN)
    )


def test_latest_versions_without_lineage_breaks_ties_on_the_other_columns(spark):
    schema = SOURCE_TABLES["currency"].spark_schema
    versions = spark.createDataFrame(
        [
            (3, "EUR", ts(T0), ts(T0)),
            (3, "EUA", ts(T0), ts(T0)),
            (3, "EUQ", ts("2021-01-01 00:00:00"), ts(T0)),
        ],
        schema,
    )
    expected = spark.createDataFrame([(3, "EUR", ts(T0), ts(T0))], schema)
    assert_df_equality(T.latest_versions(versions, "currency_id"), expected)


def test_updated_latest_equals_latest_versions_of_the_state_and_the_changes(spark):
    previous = T.latest_versions(
        spark.createDataFrame(CURRENCY_VERSIONS[::2], CURRENCY_WITH_RUN), "currency_id"
    )
    changes = spark.createDataFrame(
        [
            *CURRENCY_VERSIONS[1::2],  # key 1 newer, key 2 tied on last_updated (later run wins), key 3 tie
            (5, "JPY", ts(T0), ts(T0), "run-2"),  # a new key
            (4, "CHE", ts(T0), ts("2021-01-01 00:00:00"), "run-2"),  # older than the state: loses
        ],
        CURRENCY_WITH_RUN,
    )

    actual = T.updated_latest(previous, changes, "currency_id")

    expected = T.latest_versions(previous.unionByName(changes), "currency_id")
    assert_df_equality(ordered(actual, "currency_id"), ordered(expected, "currency_id"))
    assert_df_equality(
        ordered(actual, "currency_id"),
        spark.createDataFrame([*LATEST_CURRENCIES, (5, "JPY", ts(T0), ts(T0), "run-2")], CURRENCY_WITH_RUN),
    )


def test_latest_versions_needs_last_updated(spark):
    df = spark.createDataFrame([(1, "GBP")], "currency_id int, currency_code string")
    with pytest.raises(T.StarSchemaError, match=r"missing column\(s\) \['last_updated'\]"):
        T.latest_versions(df, "currency_id")


# --- dim_date ----------------------------------------------------------------------------------------

DATES = StructType([StructField("date", DateType())])


def dates(spark: SparkSession, *days: date | None) -> DataFrame:
    return spark.createDataFrame([(d,) for d in days], DATES)


def test_dim_date_fills_every_day_between_the_extremes(spark):
    # Unordered, duplicated and NULL inputs; the gap around the leap day must be filled.
    some = dates(spark, date(2024, 3, 3), None, date(2024, 2, 26), date(2024, 2, 29), date(2024, 2, 29))
    expected = [
        (date(2024, 2, 26), 2024, 2, 26, 1, "Monday", "February", 1),
        (date(2024, 2, 27), 2024, 2, 27, 2, "Tuesday", "February", 1),
        (date(2024, 2, 28), 2024, 2, 28, 3, "Wednesday", "February", 1),
        (date(2024, 2, 29), 2024, 2, 29, 4, "Thursday", "February", 1),
        (date(2024, 3, 1), 2024, 3, 1, 5, "Friday", "March", 1),
        (date(2024, 3, 2), 2024, 3, 2, 6, "Saturday", "March", 1),
        (date(2024, 3, 3), 2024, 3, 3, 7, "Sunday", "March", 1),
    ]
    assert_star(T.dim_date(some), star(spark, "dim_date", expected))


def test_dim_date_quarter_and_year_boundaries(spark):
    expected = [
        (date(2023, 12, 31), 2023, 12, 31, 7, "Sunday", "December", 4),
        (date(2024, 1, 1), 2024, 1, 1, 1, "Monday", "January", 1),
        (date(2024, 3, 31), 2024, 3, 31, 7, "Sunday", "March", 1),
        (date(2024, 4, 1), 2024, 4, 1, 1, "Monday", "April", 2),
        (date(2024, 6, 30), 2024, 6, 30, 7, "Sunday", "June", 2),
        (date(2024, 7, 1), 2024, 7, 1, 1, "Monday", "July", 3),
        (date(2024, 9, 30), 2024, 9, 30, 1, "Monday", "September", 3),
        (date(2024, 10, 1), 2024, 10, 1, 2, "Tuesday", "October", 4),
    ]
    calendar = T.dim_date(dates(spark, date(2023, 12, 31), date(2024, 10, 1)))
    actual = calendar.where(F.col("date_id").isin([row[0] for row in expected]))
    assert_star(actual, star(spark, "dim_date", expected))


DAY_NAMES = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
               "October", "November", "December"]  # fmt: skip


def test_dim_date_is_a_contiguous_calendar_over_the_snapshot_span(spark):
    first, last = date(2022, 11, 3), date(2024, 11, 20)  # the real data's date span
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    # Python's calendar as an independent oracle: 749 days, none missing, none twice.
    expected = [(d, d.year, d.month, d.day, d.isoweekday(), DAY_NAMES[d.weekday()], MONTH_NAMES[d.month - 1],
                 (d.month - 1) // 3 + 1) for d in days]  # fmt: skip
    actual = T.dim_date(dates(spark, last, first))
    assert_star(actual, star(spark, "dim_date", expected))


def test_dim_date_of_no_dates_is_empty(spark):
    assert_star(T.dim_date(dates(spark, None)), star(spark, "dim_date", []))


def test_dim_date_rejects_dates_that_are_not_dates(spark):
    strings = spark.createDataFrame([("2024-01-01",)], "date string")
    with pytest.raises(T.StarSchemaError, match="`date` must be DateType"):
        T.dim_date(strings)


# --- dimensions --------------------------------------------------------------------------------------

ADDRESSES = [
    (1, "6826 Herzog Via", None, "Avon", "New Patienceburgh", "28441", "Turkey", "1803 637401",
     ts(T0), ts(T0)),
    (2, "179 Alexie Cliffs", None, None, "Aliso Viejo", "99305-7380", "Democratic People's Republic of Korea",
     "9621 880720", ts(T0), ts(T0)),
    (3, "Flat 2", "1 O'Connell St", "Dublin 1", "Dublin", "D01 T0X4", "Ireland", "+353 1 234",
     ts(T0), ts(T0)),
]  # fmt: skip


def test_dim_location_renames_address_id_and_keeps_null_lines(spark):
    expected = [
        (1, "6826 Herzog Via", None, "Avon", "New Patienceburgh", "28441", "Turkey", "1803 637401"),
        (2, "179 Alexie Cliffs", None, None, "Aliso Viejo", "99305-7380",
         "Democratic People's Republic of Korea", "9621 880720"),
        (3, "Flat 2", "1 O'Connell St", "Dublin 1", "Dublin", "D01 T0X4", "Ireland", "+353 1 234"),
    ]  # fmt: skip
    actual = T.dim_location(source(spark, "address", ADDRESSES))
    assert_star(actual, star(spark, "dim_location", expected))


def test_dim_staff_joins_each_staff_member_to_their_department(spark):
    staff = [
        (1, "Irving", "O'Keefe", 2, "irving.o'keefe@terrifictotes.com", ts(T0), ts(T0)),
        (2, "Jeanette", "Erdman", 1, "jeanette.erdman@terrifictotes.com", ts(T0), ts(T0)),
        (3, "Ana", "Lopez", 1, "ana.lopez@terrifictotes.com", ts(T0), ts(T0)),
    ]
    department = [
        (1, "Sales", "Manchester", "Richard Roma", ts(T0), ts(T0)),
        (2, "Purchasing", None, None, ts(T0), ts(T0)),  # NULL location flows through
        (3, "Dispatch", "Leds", "Mark Hanna", ts(T0), ts(T0)),  # no staff: not in the output
    ]
    expected = [
        (1, "Irving", "O'Keefe", "Purchasing", None, "irving.o'keefe@terrifictotes.com"),
        (2, "Jeanette", "Erdman", "Sales", "Manchester", "jeanette.erdman@terrifictotes.com"),
        (3, "Ana", "Lopez", "Sales", "Manchester", "ana.lopez@terrifictotes.com"),
    ]
    actual = T.dim_staff(source(spark, "staff", staff), source(spark, "department", department))
    assert_star(ordered(actual, "staff_id"), star(spark, "dim_staff", expected))


def test_dim_counterparty_takes_the_legal_address(spark):
    counterparty = [
        (1, "Fahey and Sons", 2, "Micheal Toy", "Mrs. Lucy Runolfsdottir", ts(T0), ts(T0)),
        (2, "O'Hara, Kuhic and Hermann", 3, None, None, ts(T0), ts(T0)),
    ]
    expected = [
        (1, "Fahey and Sons", "179 Alexie Cliffs", None, None, "Aliso Viejo", "99305-7380",
         "Democratic People's Republic of Korea", "9621 880720"),
        (2, "O'Hara, Kuhic and Hermann", "Flat 2", "1 O'Connell St", "Dublin 1", "Dublin", "D01 T0X4",
         "Ireland", "+353 1 234"),
    ]  # fmt: skip
    actual = T.dim_counterparty(
        source(spark, "counterparty", counterparty), source(spark, "address", ADDRESSES)
    )
    assert_star(ordered(actual, "counterparty_id"), star(spark, "dim_counterparty", expected))


def test_dim_currency_names_each_code_in_english(spark):
    currency = [(1, "GBP", ts(T0), ts(T0)), (2, "USD", ts(T0), ts(T0)), (3, "EUR", ts(T0), ts(T0))]
    expected = [(1, "GBP", "Pound Sterling"), (2, "USD", "US Dollar"), (3, "EUR", "Euro")]
    assert_star(T.dim_currency(source(spark, "currency", currency)), star(spark, "dim_currency", expected))


def test_dim_design(spark):
    design = [
        (8, ts(T0), "Wooden", "/usr", "wooden-20220717-npgz.json", ts(T0)),
        (51, ts(T0), "Bronze", "/private", "bronze-20221024-4dds.json", ts("2023-01-12 18:50:09")),
    ]
    expected = [
        (8, "Wooden", "/usr", "wooden-20220717-npgz.json"),
        (51, "Bronze", "/private", "bronze-20221024-4dds.json"),
    ]
    assert_star(T.dim_design(source(spark, "design", design)), star(spark, "dim_design", expected))


def test_dim_payment_type(spark):
    payment_type = [(1, "SALES_RECEIPT", ts(T0), ts(T0)), (4, "PURCHASE_REFUND", ts(T0), ts(T0))]
    expected = [(1, "SALES_RECEIPT"), (4, "PURCHASE_REFUND")]
    actual = T.dim_payment_type(source(spark, "payment_type", payment_type))
    assert_star(actual, star(spark, "dim_payment_type", expected))


def test_dim_transaction_keeps_the_null_order_ids(spark):
    transaction = [(1, "PURCHASE", None, 2, ts(T0), ts(T0)), (3, "SALE", 1, None, ts(T0), ts(T0))]
    expected = [(1, "PURCHASE", None, 2), (3, "SALE", 1, None)]
    actual = T.dim_transaction(source(spark, "transaction", transaction))
    assert_star(actual, star(spark, "dim_transaction", expected))


def test_a_builder_names_the_missing_source_column(spark):
    design = source(spark, "design", [(8, ts(T0), "Wooden", "/usr", "wooden.json", ts(T0))]).drop("file_name")
    with pytest.raises(T.StarSchemaError, match=r"source table design: missing column\(s\) \['file_name'\]"):
        T.dim_design(design)


def test_conform_refuses_to_cast_anything_but_money(spark):
    df = spark.createDataFrame([(1, "SALE", None, None)], STAR_SCHEMAS["dim_transaction"])
    wrong = df.withColumn("sales_order_id", F.col("sales_order_id").cast("string"))
    with pytest.raises(T.StarSchemaError, match="dim_transaction.sales_order_id is string, expected int"):
        T.conform(wrong, "dim_transaction")


# --- facts -------------------------------------------------------------------------------------------


def test_fact_sales_order_one_row_per_version_with_split_timestamps(spark):
    sales_order = [
        (2, ts("2022-11-03 14:20:52.186"), ts("2022-11-03 14:20:52.186"), 3, 19, 8, 42972, Decimal("3.94"), 2,
         "2022-11-07", "2022-11-08", 8),
        # a second version of the same order; a timestamp with no fractional second; a leap day
        (2, ts("2022-11-03 14:20:52.186"), ts("2024-02-29 00:00:00"), 3, 19, 8, 42972, Decimal("4.00"), 2,
         "2024-02-29", "2024-03-31", 8),
    ]  # fmt: skip
    expected = [
        (2, date(2022, 11, 3), "14:20:52.186", date(2022, 11, 3), "14:20:52.186", 19, 8, 42972,
         Decimal("3.94"), 2, 3, date(2022, 11, 8), date(2022, 11, 7), 8),
        (2, date(2022, 11, 3), "14:20:52.186", date(2024, 2, 29), "00:00:00.000", 19, 8, 42972,
         Decimal("4.00"), 2, 3, date(2024, 3, 31), date(2024, 2, 29), 8),
    ]  # fmt: skip
    actual = T.fact_sales_order(source(spark, "sales_order", sales_order))
    assert_star(actual, star(spark, "fact_sales_order", expected))


def test_fact_purchase_order_keeps_the_exact_price(spark):
    purchase_order = [
        (1, ts("2022-11-03 14:20:52.187"), ts("2023-12-31 23:59:59.999"), 12, 11, "ZDOI5EA", 371,
         Decimal("361.390000000000000001"), 2, "2022-11-09", "2022-11-07", 6),
    ]  # fmt: skip
    expected = [
        (1, date(2022, 11, 3), "14:20:52.187", date(2023, 12, 31), "23:59:59.999", 12, 11, "ZDOI5EA", 371,
         Decimal("361.390000000000000001"), 2, date(2022, 11, 9), date(2022, 11, 7), 6),
    ]  # fmt: skip
    actual = T.fact_purchase_order(source(spark, "purchase_order", purchase_order))
    assert_star(actual, star(spark, "fact_purchase_order", expected))


def test_fact_payment_drops_the_account_numbers(spark):
    # The daily 07:55:11.885 batch sets paid = true: a second version of the same payment.
    payment = [
        (2, ts("2022-11-03 14:20:52.187"), ts("2022-11-03 14:20:52.187"), 2, 15, Decimal("552548.62"), 2, 3,
         False, "2022-11-04", 67305075, 31622269),
        (2, ts("2022-11-03 14:20:52.187"), ts("2022-11-04 07:55:11.885"), 2, 15, Decimal("552548.62"), 2, 3,
         True, "2022-11-04", 67305075, 31622269),
    ]  # fmt: skip
    expected = [
        (2, date(2022, 11, 3), "14:20:52.187", date(2022, 11, 3), "14:20:52.187", 2, 15, Decimal("552548.62"),
         2, 3, False, date(2022, 11, 4)),
        (2, date(2022, 11, 3), "14:20:52.187", date(2022, 11, 4), "07:55:11.885", 2, 15, Decimal("552548.62"),
         2, 3, True, date(2022, 11, 4)),
    ]  # fmt: skip
    actual = T.fact_payment(source(spark, "payment", payment))
    assert_star(actual, star(spark, "fact_payment", expected))


# --------------------------------------------------------------------------- fact versions to publish

VERSION = StructType(
    [
        StructField("payment_id", IntegerType(), False),
        StructField("last_updated_date", DateType(), False),
        StructField("last_updated_time", StringType(), False),
        StructField("created_year", IntegerType(), False),
        StructField("created_month", IntegerType(), False),
    ]
)
ON_DISK = StructType([*VERSION.fields, StructField("transform_run_id", StringType(), True)])
D = date(2024, 11, 15)


def test_uncommitted_versions_drops_committed_adopts_a_dead_runs_and_stamps_new_ones(spark):
    from shared.jobs.transform.facts import ON_DISK_RUN, uncommitted_versions

    batch = spark.createDataFrame(
        [
            (1, D, "07:55:11.885", 2024, 11),  # written by the committed run r2
            (2, D, "07:55:11.885", 2024, 11),  # appended by r3, which died before its commit
            (3, D, "07:55:11.885", 2024, 11),  # new
            (1, D, "09:00:00.000", 2024, 11),  # a new version of payment 1
        ],
        VERSION,
    )  # fmt: skip
    existing = spark.createDataFrame(
        [
            (1, D, "07:55:11.885", 2024, 11, "r2"),
            (2, D, "07:55:11.885", 2024, 11, "r3"),
            (9, D, "07:55:11.885", 2024, 10, "r1"),  # not in the batch: not its business
        ],
        ON_DISK,
    )  # fmt: skip
    expected = spark.createDataFrame(
        [
            (1, D, "09:00:00.000", 2024, 11, None, "r4"),
            (2, D, "07:55:11.885", 2024, 11, "r3", "r3"),
            (3, D, "07:55:11.885", 2024, 11, None, "r4"),
        ],
        StructType([*VERSION.fields, StructField(ON_DISK_RUN, StringType()), StructField("transform_run_id", StringType())]),
    )  # fmt: skip
    fresh = uncommitted_versions(batch, existing, "fact_payment", committed_run="r2", run_id="r4")
    assert_df_equality(fresh, expected, ignore_row_order=True, ignore_nullable=True)


def test_uncommitted_versions_of_a_new_table_are_all_new(spark):
    from shared.jobs.transform.facts import ON_DISK_RUN, uncommitted_versions

    batch = spark.createDataFrame([(3, D, "07:55:11.885", 2024, 11)], VERSION)
    fresh = uncommitted_versions(batch, None, "fact_payment", committed_run="", run_id="r1")
    assert fresh.select(ON_DISK_RUN, "transform_run_id").collect() == [(None, "r1")]
