"""`totes query`: SQL over the processed lake through DuckDB, answered in well under a second.

Table names are the catalog's (`fact_sales_order`, `dim_staff` ...), taken from the transform's
published pointer `<processed>/_current.json`: a dimension's location is a folder of Parquet files
(one complete version), a fact's is a folder partitioned `created_year=/created_month=`. Each
becomes a DuckDB view over `read_parquet(..., hive_partitioning=true, union_by_name=true)`, so a
query sees exactly what the transform published, like the load and Athena do, and older files
written before a column was added read with that column NULL. No Spark, no JVM, no metastore:
`--engine spark` keeps the Spark SQL path through the catalog (shared/local/cli.py).

The Athena saved queries (terraform/queries/<name>.sql, which terraform/athena.tf reads with
`file()`) run here by name: `totes query --saved NAME`. They are written for Athena (Trino); what
differs in DuckDB is translated by `athena_to_duckdb`, and `--as-of DATE` puts a fixed day in
place of `current_date` (the queries ask about "this year", "the last 12 months", so a snapshot
like the 2024-11-15 one is asked about as of its own day). The differences, and why each
translation is safe: README.md, "Query the lake".

Called by `totes query` and by tests/test_query.py, which checks every saved query against the
same question asked of the warehouse.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from shared.config import ConfigError, Settings, is_s3, join
from shared.lake.documents import Published, TableEntry, read_document
from shared.lake.storage import storage_for

QUERIES_DIR = Path(__file__).resolve().parents[2] / "terraform" / "queries"
# One fact file pattern: the partition folders only (compaction staging lives under `_compaction`,
# which this never matches).
FACT_FILES = "created_year=*/created_month=*/*.parquet"


@dataclass(frozen=True)
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    seconds: float


def published(settings: Settings) -> Published:
    """The transform's published pointer, or a ConfigError saying there is nothing published yet."""
    location = join(settings.processed, "_current.json")
    document = read_document(storage_for(location), location, Published)
    if document is None:
        raise ConfigError(f"nothing published at {location} yet: run `totes run` first")
    return document


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _source(entry: TableEntry) -> str | None:
    """The read_parquet call over a published table's files; None when it has no file yet."""
    folder = Path(entry.location)
    if entry.kind == "fact":
        if not any(folder.glob(FACT_FILES)):
            return None
        return f"read_parquet({_literal(str(folder / FACT_FILES))}, hive_partitioning = true, union_by_name = true)"
    if not any(folder.glob("*.parquet")):
        return None
    return f"read_parquet({_literal(str(folder / '*.parquet'))}, union_by_name = true)"


def connect(settings: Settings, only: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with one view per published table, in UTC like the rest of the stack.

    `only`: the SQL to be run; then only the tables it names get a view (all if it names none).
    """
    if is_s3(settings.processed):
        raise ConfigError(
            f"the DuckDB engine reads a local lake; {settings.processed} is on S3: use --engine spark "
            "(or Athena, whose saved queries are the same)"
        )
    pointer = published(settings)
    connection = duckdb.connect(":memory:")
    connection.execute("SET TimeZone = 'UTC'")
    tables = pointer.tables
    if only is not None:  # binding a view reads its files' footers: bind only what the SQL names
        named = {n: e for n, e in tables.items() if re.search(rf"\b{re.escape(n)}\b", only, re.IGNORECASE)}
        tables = named or tables
    for name, entry in sorted(tables.items()):
        source = _source(entry)
        if source is None:  # a fact with no row yet: an empty table with its published columns
            columns = ", ".join(f"NULL::VARCHAR AS {_identifier(c)}" for c in entry.columns or ("_empty",))
            source = f"(SELECT {columns} WHERE false)"
        connection.execute(f"CREATE VIEW {_identifier(name)} AS SELECT * FROM {source}")
    return connection


def run_sql(settings: Settings, sql: str, connection: duckdb.DuckDBPyConnection | None = None) -> Result:
    started = time.monotonic()
    own = connection is None
    db = connect(settings, only=sql) if connection is None else connection
    try:
        cursor = db.execute(sql)
        columns = [d[0] for d in cursor.description or []]
        rows = cursor.fetchall()
    except duckdb.Error as exc:
        raise ConfigError(f"DuckDB: {str(exc).strip().splitlines()[0]}") from None
    finally:
        if own:
            db.close()
    return Result(columns, rows, time.monotonic() - started)


# ---------------------------------------------------------------------------------------------
# The Athena saved queries
# ---------------------------------------------------------------------------------------------


def saved_queries(folder: Path = QUERIES_DIR) -> dict[str, Path]:
    """Saved query name -> its .sql file (the names athena.tf gives the named queries, without prefix)."""
    return {p.stem: p for p in sorted(folder.glob("*.sql"))}


def saved_query(name: str, folder: Path = QUERIES_DIR) -> str:
    queries = saved_queries(folder)
    if name not in queries:
        known = ", ".join(queries) or f"none (no .sql files in {folder})"
        raise ConfigError(f"no saved query {name!r}: expected one of {known}")
    return queries[name].read_text(encoding="utf-8")


def description(sql: str) -> str:
    """The first comment line of a saved query (each file starts with one saying what it answers)."""
    for line in sql.splitlines():
        if line.strip().startswith("--"):
            return line.strip().removeprefix("--").strip()
        if line.strip():
            break
    return ""


# date_add('month', -12, current_date): Trino's (unit, value, date); DuckDB's date_add is (date, interval).
_DATE_ADD = re.compile(
    r"\bdate_add\(\s*'(?P<unit>year|quarter|month|week|day|hour|minute|second)'\s*,"
    r"\s*(?P<value>[-+]?\d+)\s*,\s*(?P<expr>[^(),]+?)\s*\)",
    re.IGNORECASE,
)
_CURRENT_DATE = re.compile(r"\bcurrent_date\b", re.IGNORECASE)


def with_as_of(sql: str, as_of: date | None) -> str:
    """`sql` with `current_date` replaced by the day `as_of` (a DATE literal every engine reads)."""
    return sql if as_of is None else _CURRENT_DATE.sub(f"DATE '{as_of.isoformat()}'", sql)


def athena_to_duckdb(sql: str) -> str:
    """The Athena (Trino) SQL of a saved query in DuckDB's dialect (see the module docstring)."""

    def date_add(match: re.Match[str]) -> str:
        return f"CAST({match['expr']} + INTERVAL ({match['value']}) {match['unit'].upper()} AS DATE)"

    return _DATE_ADD.sub(date_add, sql)


def run_saved(
    settings: Settings,
    name: str,
    as_of: date | None = None,
    connection: duckdb.DuckDBPyConnection | None = None,
) -> Result:
    return run_sql(settings, athena_to_duckdb(with_as_of(saved_query(name), as_of)), connection)


# ---------------------------------------------------------------------------------------------
# Printing
# ---------------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    return "NULL" if value is None else str(value)


def render(result: Result, limit: int) -> str:
    """The rows as Spark's `show(truncate=False)` prints them, then the count and the time."""
    shown = result.rows[:limit] if limit >= 0 else result.rows
    cells = [[_cell(v) for v in row] for row in shown]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(result.columns)]
    rule = "+" + "+".join("-" * w for w in widths) + "+"

    def line(values: Sequence[str]) -> str:
        return "|" + "|".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + "|"

    out = [rule, line(result.columns), rule, *(line(r) for r in cells), rule]
    if len(result.rows) > len(shown):
        out.append(f"only showing top {len(shown)} rows")
    out.append(f"({len(result.rows)} rows in {result.seconds * 1000:.0f} ms, DuckDB)")
    return "\n".join(out)
