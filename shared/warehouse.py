"""The PostgreSQL warehouse: its DDL (SPEC.md section 3) and the idempotent apply step, over JDBC.

Everything here talks to PostgreSQL through the JVM's JDBC driver (via the SparkSession), so the
load job needs nothing on Glue beyond the PostgreSQL JDBC driver. `apply_load` runs in ONE
transaction: dimensions are upserted by key (rows whose values did not change are not touched, so
there is no churn), fact versions are inserted once (a unique index on the version key makes a
repeat a no-op), and a failure anywhere rolls everything back.
Called by the load job (shared/jobs/load.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.types import BooleanType, DataType, DateType, DecimalType, IntegerType, StringType

from shared.config import PgUrl
from shared.sources import java_reason, jdbc_connection
from shared.star import (
    DIMENSION_KEYS,
    DIMENSION_TABLES,
    FACT_FOREIGN_KEYS,
    FACT_RECORD_IDS,
    FACT_TABLES,
    FACT_VERSION_KEYS,
    NULLABLE_COLUMNS,
    STAR_SCHEMAS,
    TIME_COLUMNS,
)

STAGING_SCHEMA = "etl_staging"
# From this many staged rows on, a fact's foreign keys are dropped for its insert and added back
# (one set-based validation per key) in the same transaction: checked one row at a time, the
# 1.6 million payments of scale 100 take 77 s instead of 9 s (`python -m bench.fk_cost`). The
# ALTERs hold the fact and its dimensions locked until the commit, which only a bulk load (the
# first one, or a catch-up after a long outage) pays; a 20-minute increment keeps them.
BULK_FACT_ROWS = 100_000
# FK-safe order: dimensions (dim_date first) before the facts that reference them.
LOAD_ORDER: tuple[str, ...] = (*DIMENSION_TABLES, *FACT_TABLES)


class WarehouseError(RuntimeError):
    """The warehouse rejected the load; nothing was applied. The message says which table."""


def pg_type(column: str, data_type: DataType) -> str:
    if column in TIME_COLUMNS:
        return "time(3) without time zone"
    if isinstance(data_type, IntegerType):
        return "integer"
    if isinstance(data_type, DateType):
        return "date"
    if isinstance(data_type, BooleanType):
        return "boolean"
    if isinstance(data_type, DecimalType):
        return f"numeric({data_type.precision},{data_type.scale})" if data_type.precision <= 12 else "numeric"
    if isinstance(data_type, StringType):
        return "varchar"
    raise TypeError(f"no PostgreSQL type for {column}: {data_type}")


def _q(identifier: str) -> str:
    return f'"{identifier}"'


def table_ddl(table: str) -> list[str]:
    """CREATE TABLE (and indexes) for one warehouse table, exactly as SPEC.md section 3."""
    schema = STAR_SCHEMAS[table]
    nullable = NULLABLE_COLUMNS.get(table, frozenset())
    columns = []
    if table in FACT_RECORD_IDS:
        columns.append(f"{_q(FACT_RECORD_IDS[table])} serial PRIMARY KEY")
    for field in schema.fields:
        null = "" if field.name in nullable else " NOT NULL"
        columns.append(f"{_q(field.name)} {pg_type(field.name, field.dataType)}{null}")
    if table in DIMENSION_KEYS:
        columns.append(f"PRIMARY KEY ({_q(DIMENSION_KEYS[table])})")
    for name, definition in foreign_keys(table):
        columns.append(f"CONSTRAINT {_q(name)} {definition}")
    statements = [f"CREATE TABLE IF NOT EXISTS {_q(table)} (\n  " + ",\n  ".join(columns) + "\n)"]
    if table in FACT_VERSION_KEYS:
        # A fact version is (source id, last_updated): inserting it twice must be a no-op.
        key = ", ".join(_q(c) for c in FACT_VERSION_KEYS[table])
        statements.append(
            f"CREATE UNIQUE INDEX IF NOT EXISTS {_q(f'{table}_version_key')} ON {_q(table)} ({key})"
        )
    return statements


def foreign_keys(table: str) -> list[tuple[str, str]]:
    """(constraint name, definition) of each foreign key of a warehouse table (SPEC.md section 3)."""
    return [
        (
            f"{table}_{column}_fkey",
            f"FOREIGN KEY ({_q(column)}) REFERENCES {_q(dimension)} ({_q(DIMENSION_KEYS[dimension])})",
        )
        for column, dimension in FACT_FOREIGN_KEYS.get(table, {}).items()
    ]


def warehouse_ddl() -> list[str]:
    statements = [f"CREATE SCHEMA IF NOT EXISTS {_q(STAGING_SCHEMA)}"]
    for table in LOAD_ORDER:
        statements.extend(table_ddl(table))
    return statements


class JdbcSession:
    """One JDBC connection (through the Spark driver's JVM) with explicit transactions."""

    def __init__(self, spark: SparkSession, url: PgUrl) -> None:
        self._conn = jdbc_connection(spark, url)
        self._conn.setAutoCommit(False)

    def execute(self, sql: str) -> int:
        statement = self._conn.createStatement()
        try:
            return int(statement.executeUpdate(sql))
        finally:
            statement.close()

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        statement = self._conn.createStatement()
        try:
            result = statement.executeQuery(sql)
            width = result.getMetaData().getColumnCount()
            rows = []
            while result.next():
                rows.append(tuple(result.getString(i + 1) for i in range(width)))
            return rows
        finally:
            statement.close()

    def commit(self) -> None:
        self._conn.commit()

    def rollback(self) -> None:
        self._conn.rollback()

    def close(self) -> None:
        self._conn.close()


@contextmanager
def transaction(spark: SparkSession, url: PgUrl) -> Iterator[JdbcSession]:
    """Commit if the block succeeds, roll back (and re-raise, without a Java stack) if it fails."""
    session = JdbcSession(spark, url)
    try:
        yield session
        session.commit()
    except Exception as exc:
        session.rollback()
        raise WarehouseError(f"warehouse load rolled back: {java_reason(exc)}") from None
    finally:
        session.close()


def ensure_schema(spark: SparkSession, url: PgUrl) -> None:
    with transaction(spark, url) as session:
        for statement in warehouse_ddl():
            session.execute(statement)


def staging_table(table: str) -> str:
    return f"{STAGING_SCHEMA}.{table}"


def _select_list(table: str) -> Sequence[str]:
    out = []
    for field in STAR_SCHEMAS[table].fields:
        cast = f"::{pg_type(field.name, field.dataType)}"
        out.append(f"{_q(field.name)}{cast}")
    return out


def upsert_dimension_sql(table: str) -> str:
    columns = [f.name for f in STAR_SCHEMAS[table].fields]
    key = DIMENSION_KEYS[table]
    others = [c for c in columns if c != key]
    assignments = ", ".join(f"{_q(c)} = EXCLUDED.{_q(c)}" for c in others)
    current = ", ".join(f"{_q(table)}.{_q(c)}" for c in others)
    incoming = ", ".join(f"EXCLUDED.{_q(c)}" for c in others)
    return (
        f"INSERT INTO {_q(table)} ({', '.join(_q(c) for c in columns)}) "
        f"SELECT {', '.join(_select_list(table))} FROM {staging_table(table)} "
        f"ON CONFLICT ({_q(key)}) DO UPDATE SET {assignments} "
        f"WHERE ({current}) IS DISTINCT FROM ({incoming})"
    )


def insert_facts_sql(table: str) -> str:
    columns = [f.name for f in STAR_SCHEMAS[table].fields]
    key = ", ".join(_q(c) for c in FACT_VERSION_KEYS[table])
    return (
        f"INSERT INTO {_q(table)} ({', '.join(_q(c) for c in columns)}) "
        f"SELECT {', '.join(_select_list(table))} FROM {staging_table(table)} "
        f"ORDER BY {key} ON CONFLICT ({key}) DO NOTHING"
    )


def apply_load(
    spark: SparkSession, url: PgUrl, staged: Sequence[str], bulk_rows: int = BULK_FACT_ROWS
) -> dict[str, int]:
    """Apply the staged tables in one transaction; returns rows inserted or changed per table.

    A fact with at least `bulk_rows` staged rows is inserted with its foreign keys dropped and then
    added back, validated, before the commit: a row that breaks one fails the whole load as before.
    """
    changed: dict[str, int] = {}
    with transaction(spark, url) as session:
        for table in LOAD_ORDER:
            if table not in staged:
                continue
            if table not in FACT_VERSION_KEYS:
                changed[table] = session.execute(upsert_dimension_sql(table))
                continue
            rows = int(session.query(f"SELECT count(*) FROM {staging_table(table)}")[0][0])
            deferred = foreign_keys(table) if rows >= bulk_rows else []
            for name, _ in deferred:
                session.execute(f"ALTER TABLE {_q(table)} DROP CONSTRAINT {_q(name)}")
            changed[table] = session.execute(insert_facts_sql(table))
            for name, definition in deferred:
                session.execute(f"ALTER TABLE {_q(table)} ADD CONSTRAINT {_q(name)} {definition}")
        for table in staged:
            session.execute(f"DROP TABLE IF EXISTS {staging_table(table)}")
    return changed
