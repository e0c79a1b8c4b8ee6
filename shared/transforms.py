"""Pure builders of the warehouse star (SPEC.md section 3): source DataFrames in, one star table out.

Each builder is named after the table it builds and returns exactly the columns and Spark types of
`shared.contract.star.STAR_SCHEMAS[table]`, in order; lineage columns of the inputs (`_extract_run_id` ...)
are dropped. Inputs have the source Spark schemas of `shared.contract.source.SOURCE_TABLES` and have already
passed validation (shared/contract/quality.py), so foreign keys resolve and business dates parse. No I/O, no
configuration, no actions: shared/contract/registry.py names each star table's builder and inputs,
and the transform job (shared/jobs/transform/) wires them to the lake.

Built-in Spark functions only (no Python UDFs), ANSI mode off, session time zone UTC.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, DecimalType

from shared.contract.source import CURRENCY_NAMES, SOURCE_TABLES
from shared.contract.star import STAR_SCHEMAS, TIME_FORMAT

# English names, indexed explicitly rather than with date_format('EEEE'), so that no JVM locale
# can ever change them.
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


class StarSchemaError(ValueError):
    """A builder got an input without a column it needs, or would produce the wrong star schema."""


def _require_columns(df: DataFrame, what: str, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise StarSchemaError(f"{what}: missing column(s) {missing}; the input has {df.columns}")


def _require_source(df: DataFrame, table: str) -> None:
    _require_columns(df, f"source table {table}", SOURCE_TABLES[table].column_names)


def conform(df: DataFrame, table: str) -> DataFrame:
    """Select exactly the columns of `STAR_SCHEMAS[table]`, in order, with their Spark types.

    The only cast allowed is decimal to decimal (money narrowed to `numeric(10,2)` for
    `unit_price`): validation has already rejected any value that would not fit exactly, and any
    other mismatch is a bug in a builder, so it fails here instead of being silently cast.

    Args:
        df: The builder's output; extra columns are dropped.
        table: A key of `STAR_SCHEMAS`.

    Returns:
        `df` with the star table's columns and types.

    Raises:
        StarSchemaError: A column is missing or has a type that cannot be conformed.
    """
    schema = STAR_SCHEMAS[table]
    _require_columns(df, table, schema.names)
    actual = {f.name: f.dataType for f in df.schema.fields}
    columns = []
    for field in schema.fields:
        have = actual[field.name]
        if have != field.dataType and not (
            isinstance(have, DecimalType) and isinstance(field.dataType, DecimalType)
        ):
            raise StarSchemaError(
                f"{table}.{field.name} is {have.simpleString()}, expected {field.dataType.simpleString()}"
            )
        columns.append(F.col(field.name).cast(field.dataType).alias(field.name))
    return df.select(columns)


def latest_versions(df: DataFrame, key: str) -> DataFrame:
    """Keep one row per `key`: the version with the greatest `last_updated`.

    Ties on `last_updated` are broken deterministically, whatever the input order: the row from
    the greatest `_extract_run_id` (the later read) if that lineage column is present, then the
    greatest value of each remaining column in schema order. Rows tied on every column are
    identical, so which one is kept does not matter. One aggregation (max of a struct), no sort.

    Args:
        df: Versions of source rows, with `key` and `last_updated` columns and any other columns.
        key: The primary key column.

    Returns:
        `df`'s columns, in the same order, one row per distinct `key`.
    """
    _require_columns(df, "latest_versions input", [key, "last_updated"])
    lineage = ["_extract_run_id"] if "_extract_run_id" in df.columns else []
    order = ["last_updated", *lineage, *(c for c in df.columns if c not in {key, "last_updated", *lineage})]
    latest = df.groupBy(key).agg(F.max(F.struct(*order)).alias("_latest"))
    return latest.select(
        [F.col(key) if c == key else F.col("_latest").getField(c).alias(c) for c in df.columns]
    )


def updated_latest(previous: DataFrame, changes: DataFrame, key: str) -> DataFrame:
    """The latest state `previous` (one row per `key`) brought up to date with the versions in `changes`.

    The same rows as `latest_versions(previous.unionByName(changes), key)`, with the same tie-break,
    but only the keys `changes` touches are aggregated: the rest of `previous` passes through a
    broadcast anti-join, with no shuffle or aggregation of the whole state. For a small `changes`
    (its keys are broadcast), e.g. 20 minutes of transactions against 1.6 million.

    Args:
        previous: The current latest state, one row per key, with `changes`' columns.
        changes: New versions (any number per key).
        key: The primary key column.

    Returns:
        `previous`'s columns, one row per key of either input.
    """
    _require_columns(changes, "updated_latest changes", previous.columns)
    touched = F.broadcast(changes.select(key).distinct())
    untouched = previous.join(touched, key, "left_anti")
    contested = previous.join(touched, key, "left_semi").unionByName(changes.select(previous.columns))
    return untouched.unionByName(latest_versions(contested, key))


def dim_date(dates: DataFrame) -> DataFrame:
    """Build dim_date: every calendar day from the earliest to the latest of `dates`.

    Args:
        dates: One DateType column `date`; duplicates and NULLs are allowed (NULLs are ignored).

    Returns:
        dim_date rows, one per day, contiguous; empty if `dates` has no non-null date.
        `day_of_week` is ISO (Monday=1 ... Sunday=7), names are English.

    Raises:
        StarSchemaError: `dates` has no DateType column `date`.
    """
    _require_columns(dates, "dim_date input", ["date"])
    if not isinstance(dates.schema["date"].dataType, DateType):
        raise StarSchemaError(f"dim_date input: `date` must be DateType, got {dates.schema['date'].dataType}")
    bounds = dates.agg(F.min("date").alias("lo"), F.max("date").alias("hi"))
    # sequence(NULL, NULL) is NULL and explodes to no rows, so an empty input gives an empty table.
    days = bounds.select(F.explode(F.sequence("lo", "hi")).alias("date_id"))
    day_of_week = F.weekday("date_id") + 1  # weekday(): Monday=0 ... Sunday=6
    return conform(
        days.select(
            "date_id",
            F.year("date_id").alias("year"),
            F.month("date_id").alias("month"),
            F.dayofmonth("date_id").alias("day"),
            day_of_week.alias("day_of_week"),
            F.element_at(F.array(*map(F.lit, DAY_NAMES)), day_of_week).alias("day_name"),
            F.element_at(F.array(*map(F.lit, MONTH_NAMES)), F.month("date_id")).alias("month_name"),
            F.quarter("date_id").alias("quarter"),
        ),
        "dim_date",
    )


def dim_staff(staff: DataFrame, department: DataFrame) -> DataFrame:
    """Build dim_staff: each staff member with their department's name and location.

    Args:
        staff: Latest staff rows.
        department: Latest department rows.

    Returns:
        dim_staff rows; a staff member whose department is absent is dropped (inner join: validation
        upstream guarantees the department exists).
    """
    _require_source(staff, "staff")
    _require_source(department, "department")
    departments = department.select("department_id", "department_name", "location")
    return conform(staff.join(departments, "department_id", "inner"), "dim_staff")


def dim_location(address: DataFrame) -> DataFrame:
    """Build dim_location from every address, `address_id` renamed `location_id`.

    Args:
        address: Latest address rows.

    Returns:
        dim_location rows, one per address.
    """
    _require_source(address, "address")
    return conform(address.withColumnRenamed("address_id", "location_id"), "dim_location")


def dim_currency(currency: DataFrame) -> DataFrame:
    """Build dim_currency, naming each currency code in English (`shared.contract.source.CURRENCY_NAMES`).

    Args:
        currency: Latest currency rows (codes validated upstream against CURRENCY_NAMES).

    Returns:
        dim_currency rows, one per currency.
    """
    _require_source(currency, "currency")
    names = F.create_map(*(F.lit(x) for item in sorted(CURRENCY_NAMES.items()) for x in item))
    return conform(currency.withColumn("currency_name", names[F.col("currency_code")]), "dim_currency")


def dim_design(design: DataFrame) -> DataFrame:
    """Build dim_design from design.

    Args:
        design: Latest design rows.

    Returns:
        dim_design rows, one per design.
    """
    _require_source(design, "design")
    return conform(design, "dim_design")


def dim_counterparty(counterparty: DataFrame, address: DataFrame) -> DataFrame:
    """Build dim_counterparty: each counterparty with its legal address.

    Args:
        counterparty: Latest counterparty rows.
        address: Latest address rows.

    Returns:
        dim_counterparty rows (inner join on `legal_address_id`, guaranteed upstream).
    """
    _require_source(counterparty, "counterparty")
    _require_source(address, "address")
    legal = address.select(
        F.col("address_id").alias("legal_address_id"),
        *(
            F.col(c).alias(f"counterparty_legal_{c}")
            for c in ("address_line_1", "address_line_2", "district", "city", "postal_code", "country")
        ),
        F.col("phone").alias("counterparty_legal_phone_number"),
    )
    return conform(counterparty.join(legal, "legal_address_id", "inner"), "dim_counterparty")


def dim_payment_type(payment_type: DataFrame) -> DataFrame:
    """Build dim_payment_type from payment_type.

    Args:
        payment_type: Latest payment_type rows.

    Returns:
        dim_payment_type rows, one per payment type.
    """
    _require_source(payment_type, "payment_type")
    return conform(payment_type, "dim_payment_type")


def dim_transaction(transaction: DataFrame) -> DataFrame:
    """Build dim_transaction from transaction.

    Args:
        transaction: Latest transaction rows.

    Returns:
        dim_transaction rows, one per transaction.
    """
    _require_source(transaction, "transaction")
    return conform(transaction, "dim_transaction")


def _version_columns() -> list[Column]:
    """created_at / last_updated split into a date and an 'HH:mm:ss.SSS' time (ms kept, UTC)."""
    return [
        F.to_date("created_at").alias("created_date"),
        F.date_format("created_at", TIME_FORMAT).alias("created_time"),
        F.to_date("last_updated").alias("last_updated_date"),
        F.date_format("last_updated", TIME_FORMAT).alias("last_updated_time"),
    ]


def _business_date(column: str) -> Column:
    # A cast, not to_date(col, 'yyyy-MM-dd'): with the default parser policy the latter throws on
    # some malformed strings instead of returning NULL. Validation has already checked the format.
    return F.col(column).cast(DateType()).alias(column)


def fact_sales_order(sales_order: DataFrame) -> DataFrame:
    """Build fact_sales_order: one row per sales_order version.

    Args:
        sales_order: Validated sales_order versions.

    Returns:
        fact_sales_order rows; `staff_id` renamed `sales_staff_id`, `unit_price` as numeric(10,2).
    """
    _require_source(sales_order, "sales_order")
    return conform(
        sales_order.select(
            "sales_order_id",
            *_version_columns(),
            F.col("staff_id").alias("sales_staff_id"),
            "counterparty_id",
            "units_sold",
            "unit_price",
            "currency_id",
            "design_id",
            _business_date("agreed_payment_date"),
            _business_date("agreed_delivery_date"),
            "agreed_delivery_location_id",
        ),
        "fact_sales_order",
    )


def fact_purchase_order(purchase_order: DataFrame) -> DataFrame:
    """Build fact_purchase_order: one row per purchase_order version.

    Args:
        purchase_order: Validated purchase_order versions.

    Returns:
        fact_purchase_order rows; `item_unit_price` keeps the source's exact numeric.
    """
    _require_source(purchase_order, "purchase_order")
    return conform(
        purchase_order.select(
            "purchase_order_id",
            *_version_columns(),
            "staff_id",
            "counterparty_id",
            "item_code",
            "item_quantity",
            "item_unit_price",
            "currency_id",
            _business_date("agreed_delivery_date"),
            _business_date("agreed_payment_date"),
            "agreed_delivery_location_id",
        ),
        "fact_purchase_order",
    )


def fact_payment(payment: DataFrame) -> DataFrame:
    """Build fact_payment: one row per payment version, account numbers dropped.

    Args:
        payment: Validated payment versions.

    Returns:
        fact_payment rows.
    """
    _require_source(payment, "payment")
    return conform(
        payment.select(
            "payment_id",
            *_version_columns(),
            "transaction_id",
            "counterparty_id",
            "payment_amount",
            "currency_id",
            "payment_type_id",
            "paid",
            _business_date("payment_date"),
        ),
        "fact_payment",
    )
