"""The warehouse star schema (SPEC.md section 3), as data: the single source of truth for section 3.

Every module that builds, stores or loads a warehouse table reads this: the transforms conform their
output to `STAR_SCHEMAS` (shared/transforms.py), the transform job writes those columns to the
processed zone, and the warehouse DDL and load (shared/jdbc/warehouse.py, shared/jobs/load.py) derive
their columns, keys, foreign keys and NOT NULL constraints from the exports below.

Spark types are the ones the processed zone stores: Spark has no TIME type, so the `*_time` columns
are strings 'HH:mm:ss.SSS' that the load casts to PostgreSQL `time`. The serial surrogate keys of the
facts (`sales_record_id` ...) are not in the Spark schemas: the warehouse assigns them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql.types import (
    BooleanType,
    DataType,
    DateType,
    DecimalType,
    IntegerType,
    StringType,
    StructField,
    StructType,
)

from shared.contract.source import MONEY, SOURCE_TABLES

# The processed zone's representation of a PostgreSQL `time(3)`: Spark has no TIME type.
TIME_FORMAT = "HH:mm:ss.SSS"
# The warehouse column `unit_price numeric(10,2)`; validation rejects prices that would not fit exactly.
UNIT_PRICE = DecimalType(10, 2)

_INT = IntegerType()
_STR = StringType()
_DATE = DateType()
_BOOL = BooleanType()


@dataclass(frozen=True)
class StarColumn:
    """One warehouse column: its Spark type, SPEC nullability and the dimension it points at."""

    name: str
    data_type: DataType
    nullable: bool = False
    references: str | None = None  # dimension table this fact column is a foreign key to


@dataclass(frozen=True)
class StarTable:
    """One warehouse table of SPEC.md section 3.

    A dimension has a `key` (its primary key). A fact has a `source` table (one fact row per version
    of a source row) and a `record_id`, the serial primary key the warehouse assigns.
    """

    name: str
    columns: tuple[StarColumn, ...]
    key: str | None = None
    source: str | None = None
    record_id: str | None = None

    @property
    def is_fact(self) -> bool:
        return self.source is not None

    @property
    def spark_schema(self) -> StructType:
        # Nullable everywhere, as Parquet stores and Spark reads back every column; the contract's
        # nullability is `nullable` (see NULLABLE_COLUMNS), enforced by validation and the warehouse DDL.
        return StructType([StructField(c.name, c.data_type, True) for c in self.columns])


def _c(
    name: str, data_type: DataType = _STR, nullable: bool = False, references: str | None = None
) -> StarColumn:
    return StarColumn(name, data_type, nullable, references)


def _id(name: str, references: str | None = None, nullable: bool = False) -> StarColumn:
    return StarColumn(name, _INT, nullable, references)


def _version_columns() -> tuple[StarColumn, ...]:
    """The source timestamps of a fact, each split into a date (-> dim_date) and a time."""
    return (
        _c("created_date", _DATE, references="dim_date"),
        _c("created_time"),
        _c("last_updated_date", _DATE, references="dim_date"),
        _c("last_updated_time"),
    )


STAR_TABLES: dict[str, StarTable] = {
    t.name: t
    for t in [
        StarTable(
            "dim_date",
            (
                _c("date_id", _DATE),
                _c("year", _INT),
                _c("month", _INT),
                _c("day", _INT),
                _c("day_of_week", _INT),
                _c("day_name"),
                _c("month_name"),
                _c("quarter", _INT),
            ),
            key="date_id",
        ),
        StarTable(
            "dim_staff",
            (
                _id("staff_id"),
                _c("first_name"),
                _c("last_name"),
                _c("department_name"),
                _c("location", nullable=True),  # department.location is nullable in the source
                _c("email_address"),
            ),
            key="staff_id",
        ),
        StarTable(
            "dim_location",
            (
                _id("location_id"),
                _c("address_line_1"),
                _c("address_line_2", nullable=True),
                _c("district", nullable=True),
                _c("city"),
                _c("postal_code"),
                _c("country"),
                _c("phone"),
            ),
            key="location_id",
        ),
        StarTable(
            "dim_currency",
            (_id("currency_id"), _c("currency_code"), _c("currency_name")),
            key="currency_id",
        ),
        StarTable(
            "dim_design",
            (_id("design_id"), _c("design_name"), _c("file_location"), _c("file_name")),
            key="design_id",
        ),
        StarTable(
            "dim_counterparty",
            (
                _id("counterparty_id"),
                _c("counterparty_legal_name"),
                _c("counterparty_legal_address_line_1"),
                _c("counterparty_legal_address_line_2", nullable=True),
                _c("counterparty_legal_district", nullable=True),
                _c("counterparty_legal_city"),
                _c("counterparty_legal_postal_code"),
                _c("counterparty_legal_country"),
                _c("counterparty_legal_phone_number"),
            ),
            key="counterparty_id",
        ),
        StarTable(
            "dim_payment_type",
            (_id("payment_type_id"), _c("payment_type_name")),
            key="payment_type_id",
        ),
        StarTable(
            "dim_transaction",
            (
                _id("transaction_id"),
                _c("transaction_type"),
                _id("sales_order_id", nullable=True),
                _id("purchase_order_id", nullable=True),
            ),
            key="transaction_id",
        ),
        StarTable(
            "fact_sales_order",
            (
                _id("sales_order_id"),
                *_version_columns(),
                _id("sales_staff_id", "dim_staff"),
                _id("counterparty_id", "dim_counterparty"),
                _c("units_sold", _INT),
                _c("unit_price", UNIT_PRICE),
                _id("currency_id", "dim_currency"),
                _id("design_id", "dim_design"),
                _c("agreed_payment_date", _DATE, references="dim_date"),
                _c("agreed_delivery_date", _DATE, references="dim_date"),
                _id("agreed_delivery_location_id", "dim_location"),
            ),
            source="sales_order",
            record_id="sales_record_id",
        ),
        StarTable(
            "fact_purchase_order",
            (
                _id("purchase_order_id"),
                *_version_columns(),
                _id("staff_id", "dim_staff"),
                _id("counterparty_id", "dim_counterparty"),
                _c("item_code"),
                _c("item_quantity", _INT),
                _c("item_unit_price", MONEY),
                _id("currency_id", "dim_currency"),
                _c("agreed_delivery_date", _DATE, references="dim_date"),
                _c("agreed_payment_date", _DATE, references="dim_date"),
                _id("agreed_delivery_location_id", "dim_location"),
            ),
            source="purchase_order",
            record_id="purchase_record_id",
        ),
        StarTable(
            "fact_payment",
            (
                _id("payment_id"),
                *_version_columns(),
                _id("transaction_id", "dim_transaction"),
                _id("counterparty_id", "dim_counterparty"),
                _c("payment_amount", MONEY),
                _id("currency_id", "dim_currency"),
                _id("payment_type_id", "dim_payment_type"),
                _c("paid", _BOOL),
                _c("payment_date", _DATE, references="dim_date"),
            ),
            source="payment",
            record_id="payment_record_id",
        ),
    ]
}

# Dimensions first (dim_date first of all), then facts: the order the SPEC lists them, FK-safe.
DIMENSION_TABLES: tuple[str, ...] = tuple(n for n, t in STAR_TABLES.items() if not t.is_fact)
FACT_TABLES: tuple[str, ...] = tuple(n for n, t in STAR_TABLES.items() if t.is_fact)

# Columns in SPEC order, Spark types as the processed zone stores them (no serial record ids).
STAR_SCHEMAS: dict[str, StructType] = {n: t.spark_schema for n, t in STAR_TABLES.items()}

# Dimension -> its primary key column.
DIMENSION_KEYS: dict[str, str] = {n: t.key for n, t in STAR_TABLES.items() if t.key is not None}

# Fact -> (source table, source id column): each fact row is one version of one source row.
FACT_SOURCES: dict[str, tuple[str, str]] = {
    n: (t.source, SOURCE_TABLES[t.source].primary_key) for n, t in STAR_TABLES.items() if t.source is not None
}

# Fact -> the warehouse columns identifying a version, i.e. (source id, last_updated) split as stored.
# The warehouse puts a unique index on them, so inserting a version twice is a no-op.
FACT_VERSION_KEYS: dict[str, tuple[str, str, str]] = {
    n: (source_id, "last_updated_date", "last_updated_time") for n, (_, source_id) in FACT_SOURCES.items()
}

# Fact -> its serial primary key, assigned by the warehouse.
FACT_RECORD_IDS: dict[str, str] = {n: t.record_id for n, t in STAR_TABLES.items() if t.record_id is not None}

# Fact -> {column: dimension it references}; every fact date references dim_date.
FACT_FOREIGN_KEYS: dict[str, dict[str, str]] = {
    n: {c.name: c.references for c in t.columns if c.references is not None}
    for n, t in STAR_TABLES.items()
    if t.is_fact
}

# Table -> its nullable columns (SPEC "N"); every other column is NOT NULL in the warehouse.
NULLABLE_COLUMNS: dict[str, frozenset[str]] = {
    n: frozenset(c.name for c in t.columns if c.nullable) for n, t in STAR_TABLES.items()
}

# Columns holding a time of day as 'HH:mm:ss.SSS' strings (PostgreSQL `time(3)` in the warehouse).
TIME_COLUMNS: frozenset[str] = frozenset({"created_time", "last_updated_time"})


def _check_consistency() -> None:
    """Fail at import if the declarations above contradict each other (cheap, runs once)."""
    assert len(STAR_TABLES) == 11, "SPEC.md section 3 has eleven warehouse tables"
    for name, table in STAR_TABLES.items():
        names = [c.name for c in table.columns]
        assert len(names) == len(set(names)), f"{name}: duplicate column"
        assert table.is_fact != (table.key is not None), f"{name}: a table is either a fact or a dimension"
        if table.key is not None:
            assert table.key in names and table.key not in NULLABLE_COLUMNS[name], f"{name}: bad key"
        if table.is_fact:
            assert table.record_id is not None and table.record_id not in names, f"{name}: bad record id"
            assert FACT_SOURCES[name][1] in names, f"{name}: source id missing"
            assert set(FACT_VERSION_KEYS[name]) <= set(names), f"{name}: version key missing"
        for column in table.columns:
            if column.references is None:
                continue
            dimension = STAR_TABLES[column.references]
            assert not dimension.is_fact, f"{name}.{column.name} must reference a dimension"
            key_type = STAR_SCHEMAS[dimension.name][dimension.key].dataType  # type: ignore[index]
            assert column.data_type == key_type, f"{name}.{column.name} type differs from its dimension key"
        for column in table.columns:
            if column.name in TIME_COLUMNS:
                assert column.data_type == _STR, f"{name}.{column.name}: time columns are strings"


_check_consistency()
