"""Contract validation at the boundary: every source row is either valid or rejected with its reasons.

The transform job (shared/jobs/transform.py) calls `check_rows` on each table it reads from the
ingestion zone, writes the rejected rows to the quarantine zone and builds the star from the valid
ones only. A row that breaks the contract (SPEC.md section 1 as declared in shared/contract/source.py) never
aborts the run, never vanishes and is never silently coerced: it is set aside with every reason it
fails, e.g. "units_sold: not positive (-5); currency_id: NULL in NOT NULL column".

Everything here is lazy (no Spark action): `valid` and `rejected` are two filters over one plan,
so callers that use both should persist the input first.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from shared.contract.source import CURRENCY_NAMES, SOURCE_TABLES, SourceTable
from shared.contract.star import UNIT_PRICE

CORRUPT_COLUMN = "_corrupt_record"  # Spark's JSON reader, PERMISSIVE mode, columnNameOfCorruptRecord
REASON_COLUMN = "_reason"
REASON_SEPARATOR = "; "

# Bounds calibrated on the real snapshot (data/totesys-2024-11-15): units_sold 1,001..99,973,
# item_quantity 1..999, unit_price 2.00..4.00, item_unit_price 3.32..999.07 (at most 2 decimals).
# They are far above anything real (x100 and x1000) and only catch garbage such as a mistyped
# 10-digit quantity; a rejected row is quarantined and reported, not lost.
MAX_QUANTITY = 10_000_000  # units_sold and item_quantity, inclusive
# unit_price lands in numeric(10,2): it must be below 10^8 and have at most 2 decimal places, as
# PostgreSQL (and Spark's cast) would otherwise round or overflow it silently.
UNIT_PRICE_LIMIT = Decimal(10) ** (UNIT_PRICE.precision - UNIT_PRICE.scale)  # exclusive
MAX_ITEM_UNIT_PRICE = Decimal(1_000_000)  # inclusive; the warehouse column is unbounded numeric
TRANSACTION_TYPES = ("SALE", "PURCHASE")
# ^...$ would let 'YYYY-MM-DD\n' through ($ matches before a final line break in Java regexes) and
# the cast to date trims it; \z only matches at the very end.
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}\z"


class ContractError(ValueError):
    """The input cannot be validated at all (a contract column or a known-keys column is missing)."""


@dataclass(frozen=True)
class Checked:
    """The two sides of a validated table: every input row is in exactly one of them.

    Attributes:
        valid: The input rows that pass, with the input's columns minus `_corrupt_record`.
        rejected: The failing rows, with the input's columns plus `_reason` (reasons joined by '; ').
        annotated: Every input row with `_reason` ('' when it passes): `valid` and `rejected` are
            filters over it, so persisting it lets both (and their counts) share one evaluation.
    """

    valid: DataFrame
    rejected: DataFrame
    annotated: DataFrame


# A rule is a string Column: the reason when the row fails, NULL when it passes (or cannot tell,
# e.g. a NULL value, which only the NOT NULL rule judges).
Rule = Column


def _shown(table: SourceTable, column: str) -> Column:
    """The value as it appears in a reason: strings quoted, money without trailing zeros."""
    col, kind = F.col(column), table.columns_by_name[column].kind
    if kind in ("str", "date"):
        return F.concat(F.lit("'"), col, F.lit("'"))
    text = col.cast("string")
    if kind == "money":
        # decimal(38,18) prints 18 decimals: '2.345000000000000000' -> '2.345', '5.000...' -> '5'.
        # Java prints zero as '0E-18' and below 10^-6 in scientific notation; that is left as it is.
        plain = F.regexp_replace(F.regexp_replace(text, "0+$", ""), r"\.$", "")
        readable = F.when(text.contains(".") & ~text.contains("E"), plain).otherwise(text)
        return F.when(col == 0, F.lit("0")).otherwise(readable)
    return text


def _reason(table: SourceTable, column: str, problem: str) -> Column:
    """'<column>: <problem> (<value>)'."""
    return F.concat(F.lit(f"{column}: {problem} ("), _shown(table, column), F.lit(")"))


def _quantity_rules(table: SourceTable, column: str) -> list[Rule]:
    value = F.col(column)
    return [
        F.when(value <= 0, _reason(table, column, "not positive")),
        F.when(value > MAX_QUANTITY, _reason(table, column, f"above {MAX_QUANTITY:,}")),
    ]


def _unit_price_rules(table: SourceTable) -> list[Rule]:
    value = F.col("unit_price")
    return [
        F.when(value <= 0, _reason(table, "unit_price", "not positive")),
        F.when(
            value >= F.lit(UNIT_PRICE_LIMIT), _reason(table, "unit_price", f"not below {UNIT_PRICE_LIMIT:,}")
        ),
        F.when(
            F.round(value, UNIT_PRICE.scale) != value,
            _reason(table, "unit_price", f"more than {UNIT_PRICE.scale} decimal places"),
        ),
    ]


def _item_unit_price_rules(table: SourceTable) -> list[Rule]:
    value = F.col("item_unit_price")
    return [
        F.when(value <= 0, _reason(table, "item_unit_price", "not positive")),
        F.when(
            value > F.lit(MAX_ITEM_UNIT_PRICE),
            _reason(table, "item_unit_price", f"above {MAX_ITEM_UNIT_PRICE:,}"),
        ),
    ]


def _currency_code_rules(table: SourceTable) -> list[Rule]:
    known = F.col("currency_code").isin(*sorted(CURRENCY_NAMES))
    return [F.when(~known, _reason(table, "currency_code", "unknown currency code"))]


def _transaction_type_rules(table: SourceTable) -> list[Rule]:
    kind, sale, purchase = F.col("transaction_type"), F.col("sales_order_id"), F.col("purchase_order_id")
    return [
        F.when(~kind.isin(*TRANSACTION_TYPES), _reason(table, "transaction_type", "not SALE or PURCHASE")),
        F.when(
            (kind == "SALE") & (sale.isNull() | purchase.isNotNull()),
            F.lit("transaction_type: SALE needs sales_order_id set and purchase_order_id NULL"),
        ),
        F.when(
            (kind == "PURCHASE") & (purchase.isNull() | sale.isNotNull()),
            F.lit("transaction_type: PURCHASE needs purchase_order_id set and sales_order_id NULL"),
        ),
    ]


# The rules named in SourceTable.checks (shared/contract/source.py), each given the table's contract.
TABLE_CHECKS: dict[str, Callable[[SourceTable], list[Rule]]] = {
    "units_sold_positive": lambda table: _quantity_rules(table, "units_sold"),
    "item_quantity_positive": lambda table: _quantity_rules(table, "item_quantity"),
    "unit_price_positive": _unit_price_rules,
    "item_unit_price_positive": _item_unit_price_rules,
    "currency_code_known": _currency_code_rules,
    "transaction_type_valid": _transaction_type_rules,
}


def _known_flag(column: str) -> str:
    return f"__known_{column}"


# Known keys of a referenced table: a DataFrame with its primary-key column (any number of keys: a
# broadcast join up to BROADCAST_KEYS_BYTES, else a shuffle join), or the keys themselves (a small
# batch's references found in the referenced table, see shared/contract/references.py: an IN list,
# no join and no Spark job).
KnownKeys = DataFrame | frozenset[int]


# Up to this size (Spark's estimate of the key column, about 12 bytes a key) a known-keys set is
# broadcast, so the batch is never shuffled: 1.6 million transactions at 100x the real volumes. The
# 15.8 million of 1000x do not fit the driver's heap as a hash table ("Not enough memory to build and
# broadcast", measured with 2g): they are joined by a shuffle, which spills instead.
BROADCAST_KEYS_BYTES = 64 << 20


def estimated_bytes(df: DataFrame) -> int:
    """Spark's estimate of the size of `df` (its optimized plan's statistics): no Spark job."""
    return int(df._jdf.queryExecution().optimizedPlan().stats().sizeInBytes())


def in_list(column: str, values: Collection[int]) -> Column:
    """`column IN (values...)` for integer keys, as one SQL expression (one py4j call, not one per value)."""
    if not values:
        return F.lit(False)
    return F.expr(f"`{column}` IN ({', '.join(str(int(v)) for v in sorted(values))})")


def key_column(where: str, reference: str, keys: DataFrame) -> str:
    """The primary key of `reference`, which its known-keys DataFrame must have as a column."""
    pk = SOURCE_TABLES[reference].primary_key
    if pk not in keys.columns:
        raise ContractError(f"{where}: known keys of {reference} need a column {pk!r}, got {keys.columns}")
    return pk


def check_rows(
    table: SourceTable,
    df: DataFrame,
    known_keys: Mapping[str, KnownKeys] | None = None,
    broadcast_bytes: int = BROADCAST_KEYS_BYTES,
) -> Checked:
    """Split `df` into the rows that honour the contract of `table` and the rows that do not.

    Rules, all checked for every row (reasons in contract column order, then the table checks):
    a non-null `_corrupt_record` (the only reason given then, as the other columns are parse
    artefacts); NULL in a NOT NULL column; a business date that is not 'YYYY-MM-DD' or not a real
    calendar day; a foreign key missing from `known_keys[referenced table]` (when given); and the
    table checks named in `table.checks` (see TABLE_CHECKS).

    Args:
        table: The source table's contract.
        df: Its rows, with the contract's columns (Spark schema `table.spark_schema`) plus any
            lineage columns (kept on both sides) and optionally `_corrupt_record`.
        known_keys: Referenced table name -> DataFrame with one column named like that table's
            primary key, holding every key that exists; or a frozenset of keys, holding at least
            every existing key that `df` refers to (shared/contract/references.py). A foreign key whose
            table is absent is not checked.

    Returns:
        Checked(valid, rejected), both lazy.

    Raises:
        ContractError: A contract column, or the key column of a known-keys DataFrame, is missing;
            or `table.checks` names an unknown check.
    """
    missing = [c for c in table.column_names if c not in df.columns]
    if missing:
        raise ContractError(f"{table.name}: missing contract column(s) {missing}; the input has {df.columns}")
    unknown_checks = [c for c in table.checks if c not in TABLE_CHECKS]
    if unknown_checks:
        raise ContractError(f"{table.name}: unknown check(s) {unknown_checks}; known: {sorted(TABLE_CHECKS)}")
    input_columns = df.columns
    known_keys = known_keys or {}

    flagged = df
    rules: list[Rule] = []
    for column in table.columns:
        value = F.col(column.name)
        if not column.nullable:
            rules.append(F.when(value.isNull(), F.lit(f"{column.name}: NULL in NOT NULL column")))
        if column.kind == "date":
            # try_cast: NULL for '2023-02-29' whether or not ANSI mode is on (Glue 5.0 has it off,
            # where a plain cast behaves the same); with ANSI on, a cast would fail the whole job.
            calendar_day = F.expr(f"try_cast(`{column.name}` AS DATE)")
            parsed = value.rlike(DATE_PATTERN) & calendar_day.isNotNull()
            rules.append(F.when(~parsed, _reason(table, column.name, "not a YYYY-MM-DD date")))
        if column.references is not None and isinstance(known_keys.get(column.references), frozenset):
            values = known_keys[column.references]
            assert isinstance(values, frozenset)
            present = in_list(column.name, values)
            rules.append(
                F.when(
                    value.isNotNull() & ~present,
                    F.concat(F.lit(f"{column.name}: unknown {column.references} "), value.cast("string")),
                )
            )
        elif column.references is not None and column.references in known_keys:
            keys = known_keys[column.references]
            assert isinstance(keys, DataFrame)
            pk = key_column(f"{table.name}.{column.name}", column.references, keys)
            flag = _known_flag(column.name)
            # A left join on the distinct known keys keeps every row exactly once and flags it, so all
            # of a row's reasons land in one place (a semi/anti split would need one branch per
            # combination of foreign keys). A key set is one int column, at most the referenced
            # table's row count (1.6 million transactions at 100x the real volumes; a small batch
            # passes only the keys it refers to, see shared/contract/references.py): deduplicated in one partition
            # (no shuffle) and broadcast, so the batch itself is never shuffled. A bigger set
            # (`broadcast_bytes`) is deduplicated and joined by shuffles: the heap stays bounded.
            flags = keys.select(F.col(pk).alias(flag))
            if estimated_bytes(flags) <= broadcast_bytes:
                known = F.broadcast(flags.coalesce(1).distinct())
            else:
                known = flags.distinct()
            flagged = flagged.join(known, value == F.col(flag), "left")
            rules.append(
                F.when(
                    value.isNotNull() & F.col(flag).isNull(),
                    F.concat(F.lit(f"{column.name}: unknown {column.references} "), value.cast("string")),
                )
            )
    for check in table.checks:
        rules.extend(TABLE_CHECKS[check](table))

    reason = F.concat_ws(REASON_SEPARATOR, *rules)  # skips NULLs: '' when every rule passes
    if CORRUPT_COLUMN in input_columns:
        reason = F.when(
            F.col(CORRUPT_COLUMN).isNotNull(), F.lit(f"{CORRUPT_COLUMN}: unparseable JSON record")
        ).otherwise(reason)
    flagged = flagged.withColumn(REASON_COLUMN, reason)
    valid = flagged.where(F.col(REASON_COLUMN) == "").select(
        [c for c in input_columns if c != CORRUPT_COLUMN]
    )
    rejected = flagged.where(F.col(REASON_COLUMN) != "").select(*input_columns, REASON_COLUMN)
    return Checked(valid=valid, rejected=rejected, annotated=flagged)
