"""The ToteSys source contract (SPEC.md section 1), as data.

Every module that touches source tables reads this allow-list: the extract selects exactly these
columns, the transform parses the ingestion JSON with these Spark schemas, validation checks these
nullability and foreign-key rules, and the seeder creates these tables. SQL is only ever built from
the identifiers declared here, never from data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql.types import (
    BooleanType,
    DataType,
    DecimalType,
    IntegerType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from shared.contract.ordering import dependency_order, dependents

# PostgreSQL `numeric` without precision arrives over JDBC as decimal(38,18): exact, never a double.
MONEY = DecimalType(38, 18)

_PG_TYPES: dict[str, str] = {
    "int": "integer",
    "str": "varchar",
    "money": "numeric",
    "ts": "timestamp without time zone",
    "bool": "boolean",
    "date": "varchar",  # business dates are varchar 'YYYY-MM-DD' in the source
}

_SPARK_TYPES: dict[str, DataType] = {
    "int": IntegerType(),
    "str": StringType(),
    "money": MONEY,
    "ts": TimestampType(),
    "bool": BooleanType(),
    "date": StringType(),
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # one of _PG_TYPES
    nullable: bool = False
    references: str | None = None  # source table this column is a foreign key to

    @property
    def spark_type(self) -> DataType:
        return _SPARK_TYPES[self.kind]

    @property
    def pg_type(self) -> str:
        return _PG_TYPES[self.kind]


@dataclass(frozen=True)
class SourceTable:
    name: str
    columns: tuple[Column, ...]
    checks: tuple[str, ...] = field(default=())  # extra contract rules, see shared/contract/quality.py

    @property
    def primary_key(self) -> str:
        return self.columns_by_name[f"{self.name}_id"].name

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def columns_by_name(self) -> dict[str, Column]:
        return {c.name: c for c in self.columns}

    @property
    def spark_schema(self) -> StructType:
        # Nullable everywhere in Spark: nullability is checked by validation, which quarantines the
        # offending row with a reason instead of letting Spark fail the whole read.
        return StructType([StructField(c.name, c.spark_type, True) for c in self.columns])

    @property
    def foreign_keys(self) -> dict[str, str]:
        return {c.name: c.references for c in self.columns if c.references}

    @property
    def date_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.kind == "date"]

    @property
    def not_null_columns(self) -> list[str]:
        return [c.name for c in self.columns if not c.nullable]


def _c(name: str, kind: str = "str", nullable: bool = False, references: str | None = None) -> Column:
    return Column(name, kind, nullable, references)


def _ts() -> tuple[Column, Column]:
    return _c("created_at", "ts"), _c("last_updated", "ts")


SOURCE_TABLES: dict[str, SourceTable] = {
    t.name: t
    for t in [
        SourceTable(
            "address",
            (
                _c("address_id", "int"),
                _c("address_line_1"),
                _c("address_line_2", nullable=True),
                _c("district", nullable=True),
                _c("city"),
                _c("postal_code"),
                _c("country"),
                _c("phone"),
                *_ts(),
            ),
        ),
        SourceTable(
            "counterparty",
            (
                _c("counterparty_id", "int"),
                _c("counterparty_legal_name"),
                _c("legal_address_id", "int", references="address"),
                _c("commercial_contact", nullable=True),
                _c("delivery_contact", nullable=True),
                *_ts(),
            ),
        ),
        SourceTable(
            "currency",
            (_c("currency_id", "int"), _c("currency_code"), *_ts()),
            checks=("currency_code_known",),
        ),
        SourceTable(
            "department",
            (
                _c("department_id", "int"),
                _c("department_name"),
                _c("location", nullable=True),
                _c("manager", nullable=True),
                *_ts(),
            ),
        ),
        SourceTable(
            "design",
            (
                _c("design_id", "int"),
                _c("created_at", "ts"),
                _c("design_name"),
                _c("file_location"),
                _c("file_name"),
                _c("last_updated", "ts"),
            ),
        ),
        SourceTable(
            "staff",
            (
                _c("staff_id", "int"),
                _c("first_name"),
                _c("last_name"),
                _c("department_id", "int", references="department"),
                _c("email_address"),
                *_ts(),
            ),
        ),
        SourceTable(
            "sales_order",
            (
                _c("sales_order_id", "int"),
                *_ts(),
                _c("design_id", "int", references="design"),
                _c("staff_id", "int", references="staff"),
                _c("counterparty_id", "int", references="counterparty"),
                _c("units_sold", "int"),
                _c("unit_price", "money"),
                _c("currency_id", "int", references="currency"),
                _c("agreed_delivery_date", "date"),
                _c("agreed_payment_date", "date"),
                _c("agreed_delivery_location_id", "int", references="address"),
            ),
            checks=("units_sold_positive", "unit_price_positive"),
        ),
        SourceTable(
            "purchase_order",
            (
                _c("purchase_order_id", "int"),
                *_ts(),
                _c("staff_id", "int", references="staff"),
                _c("counterparty_id", "int", references="counterparty"),
                _c("item_code"),
                _c("item_quantity", "int"),
                _c("item_unit_price", "money"),
                _c("currency_id", "int", references="currency"),
                _c("agreed_delivery_date", "date"),
                _c("agreed_payment_date", "date"),
                _c("agreed_delivery_location_id", "int", references="address"),
            ),
            checks=("item_quantity_positive", "item_unit_price_positive"),
        ),
        SourceTable(
            "payment_type",
            (_c("payment_type_id", "int"), _c("payment_type_name"), *_ts()),
        ),
        SourceTable(
            "payment",
            (
                _c("payment_id", "int"),
                *_ts(),
                _c("transaction_id", "int", references="transaction"),
                _c("counterparty_id", "int", references="counterparty"),
                _c("payment_amount", "money"),
                _c("currency_id", "int", references="currency"),
                _c("payment_type_id", "int", references="payment_type"),
                _c("paid", "bool"),
                _c("payment_date", "date"),
                _c("company_ac_number", "int"),
                _c("counterparty_ac_number", "int"),
            ),
        ),
        SourceTable(
            "transaction",
            (
                _c("transaction_id", "int"),
                _c("transaction_type"),
                _c("sales_order_id", "int", nullable=True, references="sales_order"),
                _c("purchase_order_id", "int", nullable=True, references="purchase_order"),
                *_ts(),
            ),
            checks=("transaction_type_valid",),
        ),
    ]
}

# Source table -> the tables its foreign keys point at.
SOURCE_DEPENDENCIES: dict[str, frozenset[str]] = {
    name: frozenset(table.foreign_keys.values()) for name, table in SOURCE_TABLES.items()
}

# Extraction order: referencing tables before the tables they reference. A row read later can only
# be newer, so every foreign key of an extracted row points at a row that the same run (or an
# earlier one) also extracts: no fact arrives before its dimension because of read order. Derived
# from the foreign keys (ties by name), so a table added to the contract is extracted in its place.
EXTRACT_ORDER: tuple[str, ...] = dependency_order(
    dependents(SOURCE_DEPENDENCIES), "the source tables' foreign keys (reversed)"
)

# ISO 4217 English names (SPEC.md section 3, dim_currency).
CURRENCY_NAMES: dict[str, str] = {
    "GBP": "Pound Sterling",
    "USD": "US Dollar",
    "EUR": "Euro",
    "JPY": "Yen",
    "CHF": "Swiss Franc",
    "CAD": "Canadian Dollar",
    "AUD": "Australian Dollar",
}
