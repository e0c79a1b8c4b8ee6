"""The PostgreSQL warehouse: its versioned schema (SPEC.md section 3) and the idempotent apply step.

Everything here talks to PostgreSQL through the JVM's JDBC driver (via the SparkSession), so the
load job needs nothing on Glue beyond the PostgreSQL JDBC driver. `apply_load` runs in ONE
transaction: first the pending schema migrations (shared/migrations/, under an advisory lock, so
two loads never migrate at once), then dimensions upserted by key (rows whose values did not change
are not touched, so there is no churn) and fact versions inserted once (a unique index on the
version key makes a repeat a no-op). A failure anywhere, a migration's included, rolls everything
back: the warehouse is as it was.

The schema is the migrations' job; `table_ddl` / `warehouse_ddl` derive the DDL the star
(shared/contract/star.py) implies, which tests compare with what the migrations build and the load checks
(`check_star_columns`) so that a star column without its migration is a clear error.
Called by the load job (shared/jobs/load.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import BooleanType, DataType, DateType, DecimalType, IntegerType, StringType

from shared import migrations as _migrations
from shared.config import PgUrl
from shared.contract.ordering import dependency_order
from shared.contract.star import (
    DIMENSION_KEYS,
    FACT_FOREIGN_KEYS,
    FACT_RECORD_IDS,
    FACT_VERSION_KEYS,
    NULLABLE_COLUMNS,
    STAR_SCHEMAS,
    STAR_TABLES,
    TIME_COLUMNS,
)
from shared.jdbc.sources import java_reason, jdbc_connection

STAGING_SCHEMA = "etl_staging"
# The migrations' bookkeeping lives in its own schema, so `public` holds exactly SPEC.md's tables.
META_SCHEMA = "etl_meta"
MIGRATIONS_TABLE = f"{META_SCHEMA}.schema_migrations"
# pg_advisory_xact_lock key taken by every load before it looks at the migrations: two loads
# never migrate at once (the second waits for the first's commit, then finds nothing pending).
MIGRATION_LOCK = 7_464_849_901  # "totes" as digits; any constant no other client of the database uses
# From this many staged rows on, a fact's foreign keys are dropped for its insert and added back
# (one set-based validation per key) in the same transaction: checked one row at a time, the
# 1.6 million payments of scale 100 take 77 s instead of 9 s (`python -m bench.fk_cost`). The
# ALTERs hold the fact and its dimensions locked until the commit, which only a bulk load (the
# first one, or a catch-up after a long outage) pays; a 20-minute increment keeps them.
BULK_FACT_ROWS = 100_000
# FK-safe order, derived from the star's foreign keys: every table after the tables it references
# (so dimensions before facts), ties by name.
LOAD_ORDER: tuple[str, ...] = dependency_order(
    {table: set(FACT_FOREIGN_KEYS.get(table, {}).values()) for table in STAR_TABLES},
    "the star's foreign keys",
)


class WarehouseError(RuntimeError):
    """The warehouse rejected the load; nothing was applied. The message says which table."""


class MigrationError(WarehouseError):
    """The warehouse's schema cannot be brought to the code's migrations; nothing was applied.

    The message names the migration (or the star column) and why."""


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

    def run_script(self, sql: str) -> None:
        """Run a script of one or more statements (the driver sends them in order)."""
        statement = self._conn.createStatement()
        try:
            statement.execute(sql)
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
    except WarehouseError:
        session.rollback()
        raise
    except Exception as exc:
        session.rollback()
        raise WarehouseError(f"warehouse load rolled back: {java_reason(exc)}") from None
    finally:
        session.close()


def staging_ddl(table: str) -> list[str]:
    """An empty UNLOGGED staging table for `table`, with the columns Spark's JDBC write fills.

    UNLOGGED: staged rows are written once, read once by the load's transaction and dropped, so
    they need no write-ahead log (a crash loses them, and the load stages again). Types as Spark's
    JDBC writer binds them (strings as text: the time of day is cast by the apply, `_select_list`).
    """
    columns = [
        f"{_q(f.name)} {'text' if isinstance(f.dataType, StringType) else pg_type(f.name, f.dataType)}"
        for f in STAR_SCHEMAS[table].fields
    ]
    return [
        f"DROP TABLE IF EXISTS {staging_table(table)}",
        f"CREATE UNLOGGED TABLE {staging_table(table)} ({', '.join(columns)})",
    ]


def prepare_staging(spark: SparkSession, url: PgUrl, tables: Sequence[str]) -> None:
    """The staging schema and an empty UNLOGGED table for each of `tables` (`staging_ddl`), before the
    load's JDBC writes (migration 0001 also creates the schema: on a new warehouse staging comes first)."""
    with transaction(spark, url) as session:
        session.execute(f"CREATE SCHEMA IF NOT EXISTS {_q(STAGING_SCHEMA)}")
        for table in tables:
            for statement in staging_ddl(table):
                session.execute(statement)


def write_staging(rows: DataFrame, url: PgUrl, table: str) -> None:
    """Spark's JDBC write of `rows` into the staging table of `table` that `prepare_staging` made.

    Truncated, not dropped (`truncate`: JDBC `overwrite` would otherwise recreate it, logged), in
    multi-row INSERTs of 10,000-row batches (`reWriteBatchedInserts`), one connection per task.
    """
    (
        rows.write.format("jdbc")
        .mode("overwrite")
        .option("truncate", "true")
        .option("url", url.jdbc_url + ("&" if "?" in url.jdbc_url else "?") + "reWriteBatchedInserts=true")
        .option("dbtable", staging_table(table))
        .option("batchsize", "10000")
        .options(**url.jdbc_properties)
        .save()
    )


def migrate_schema(spark: SparkSession, url: PgUrl) -> list[str]:
    """Apply the pending migrations in a transaction of their own; returns those applied."""
    with transaction(spark, url) as session:
        return migrate(session)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _adopt_legacy(session: JdbcSession, first: _migrations.Migration) -> bool:
    """Record `first` (0001) as applied on a warehouse the pre-migration code created; True if done.

    That code ran 0001's statements (as CREATE ... IF NOT EXISTS, in one transaction) on every
    load, so a warehouse holding any of 0001's tables holds all of them: it is adopted, not
    migrated again. One holding only some of them was made by something else, and is refused.
    """
    tables = re.findall(r'CREATE TABLE "(\w+)"', first.sql)
    present = {
        row[0]
        for row in session.query(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename IN ("
            + ", ".join(_literal(t) for t in tables)
            + ")"
        )
    }
    if not present:
        return False
    missing = [t for t in tables if t not in present]
    if missing:
        raise MigrationError(
            f"the warehouse has no {MIGRATIONS_TABLE} but some of migration {first.label}'s tables "
            f"({', '.join(sorted(present))}) and not the others ({', '.join(missing)}): it was not made "
            "by this pipeline, so it is neither migrated nor adopted"
        )
    session.execute(
        f"INSERT INTO {MIGRATIONS_TABLE} (version, name, checksum, applied_at) VALUES "
        f"({first.version}, {_literal(first.name + ' (adopted)')}, {_literal(first.checksum)}, now())"
    )
    return True


def migrate(session: JdbcSession) -> list[str]:
    """Bring the warehouse to `shared.migrations.MIGRATIONS`, in the caller's transaction.

    Takes the migration lock (held until the caller commits or rolls back), creates the bookkeeping
    table, adopts a warehouse the pre-migration code made, checks the applied migrations against the
    code (same checksums, none unknown to it), applies the pending ones in order, and checks that
    every column of the star exists. Returns the labels of the migrations applied (or adopted).
    Raises MigrationError naming the migration; the caller's rollback then undoes everything.
    """
    known = _migrations.MIGRATIONS
    session.query(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
    had_table = session.query(f"SELECT to_regclass({_literal(MIGRATIONS_TABLE)}) IS NOT NULL")[0][0] in (
        "t",
        "true",
    )
    session.execute(f"CREATE SCHEMA IF NOT EXISTS {_q(META_SCHEMA)}")
    session.execute(
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} ("
        "version integer PRIMARY KEY, name varchar NOT NULL, checksum varchar NOT NULL, "
        "applied_at timestamp with time zone NOT NULL DEFAULT now())"
    )
    done: list[str] = []
    if not had_table and known and _adopt_legacy(session, known[0]):
        done.append(f"{known[0].label} (adopted)")
    applied = {
        int(version): checksum
        for version, checksum in session.query(f"SELECT version, checksum FROM {MIGRATIONS_TABLE}")
    }
    by_version = {m.version: m for m in known}
    unknown = sorted(v for v in applied if v not in by_version)
    if unknown:
        raise MigrationError(
            f"the warehouse has migration(s) {', '.join(f'{v:04d}' for v in unknown)} that this code does "
            f"not know (it knows up to {len(known):04d}): it was migrated by a newer version; deploy that one"
        )
    for version, checksum in sorted(applied.items()):
        migration = by_version[version]
        if checksum != migration.checksum:
            raise MigrationError(
                f"migration {migration.label} was applied to this warehouse with checksum {checksum[:12]}, "
                f"but the code's has {migration.checksum[:12]}: an applied migration must never be "
                "edited; put the change in a new migration"
            )
    for migration in known:
        if migration.version in applied:
            continue
        try:
            session.run_script(migration.sql)
        except Exception as exc:
            raise MigrationError(
                f"migration {migration.label} failed, nothing was applied: {java_reason(exc)}"
            ) from None
        session.execute(
            f"INSERT INTO {MIGRATIONS_TABLE} (version, name, checksum) VALUES "
            f"({migration.version}, {_literal(migration.name)}, {_literal(migration.checksum)})"
        )
        done.append(migration.label)
    check_star_columns(session)
    return done


def missing_star_columns(present: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(table, column) of every star column (shared/contract/star.py) absent from `present` (table -> columns)."""
    return [
        (table, field.name)
        for table in LOAD_ORDER
        for field in STAR_SCHEMAS[table].fields
        if field.name not in present.get(table, set())
    ]


def check_star_columns(session: JdbcSession) -> None:
    """Fail, naming them, if columns of the star are not in the warehouse after the migrations.

    The load names every star column, so without this a star change whose migration was forgotten
    fails later as a bare "column does not exist"; here the message says what to add.
    """
    present: dict[str, set[str]] = {}
    for table, column in session.query(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
    ):
        present.setdefault(table, set()).add(column)
    missing = missing_star_columns(present)
    if missing:
        hints = "; ".join(add_column_sql(t, c) for t, c in missing)
        raise MigrationError(
            f"the star (shared/contract/star.py) has column(s) the migrated warehouse lacks: "
            f"{', '.join(f'{t}.{c}' for t, c in missing)}. Add a migration to shared/migrations/ "
            f"(docs/schema-changes.md), e.g. {hints}"
        )


def add_column_sql(table: str, column: str) -> str:
    """The ALTER TABLE adding a star column to the warehouse (nullable: existing rows have no value)."""
    field = STAR_SCHEMAS[table][column]
    return f"ALTER TABLE {_q(table)} ADD COLUMN {_q(column)} {pg_type(column, field.dataType)}"


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
    """Migrate, then apply the staged tables, in one transaction; returns rows changed per table.

    A fact with at least `bulk_rows` staged rows is inserted with its foreign keys dropped and then
    added back, validated, before the commit: a row that breaks one fails the whole load as before.
    """
    changed: dict[str, int] = {}
    with transaction(spark, url) as session:
        migrate(session)
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
