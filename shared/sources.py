"""JDBC access to PostgreSQL from Spark: connectivity checks and the incremental ToteSys read.

`read_increment` is the local emulation of a Glue JDBC read with job bookmarks on `last_updated`:
it pushes `last_updated >= bookmark` down to PostgreSQL and skips the rows at exactly the bookmark
that an earlier run already took (their primary keys are kept in the bookmark). Re-reading the
boundary instant is what keeps rows that share the last `last_updated` (the daily payments batch
writes hundreds with one timestamp) from being lost; Glue's own `>` bookmark can lose them.
Called by the extract job through the runtime seam; shared/glue.py has the Glue-native twin.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from shared.config import PgUrl
from shared.schema import SourceTable

TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


class SourceUnreachable(RuntimeError):
    """A database named by a setting cannot be reached; the message names the setting."""


class SchemaDrift(RuntimeError):
    """A source table no longer has a column the contract needs; the message names table and column."""


def check_reachable(spark: SparkSession, url: PgUrl, timeout_seconds: int = 10) -> None:
    """Open and close one JDBC connection, or raise SourceUnreachable with a one-line reason."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    props = jvm.java.util.Properties()
    for key, value in {**url.jdbc_properties, "connectTimeout": str(timeout_seconds)}.items():
        props.setProperty(key, value)
    try:
        jvm.java.lang.Class.forName("org.postgresql.Driver")
        jvm.java.sql.DriverManager.setLoginTimeout(timeout_seconds)
        connection = jvm.java.sql.DriverManager.getConnection(url.jdbc_url, props)
        connection.close()
    except Exception as exc:  # py4j wraps the Java exception; keep only its first line
        raise SourceUnreachable(f"{url.setting} ({url.masked}) is unreachable: {java_reason(exc)}") from None


def java_reason(exc: BaseException) -> str:
    """The first meaningful line of a (py4j-wrapped) Java exception, without the stack trace."""
    java = getattr(exc, "java_exception", None)
    text = str(java.toString()) if java is not None else str(exc)
    line = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    for prefix in ("org.postgresql.util.PSQLException: ", "java.sql.SQLException: "):
        line = line.replace(prefix, "")
    return line[:300]


def read_table(spark: SparkSession, url: PgUrl, table: str, **options: str) -> DataFrame:
    """A lazily-read PostgreSQL table (identifier from the allow-list only)."""
    reader = spark.read.format("jdbc").option("url", url.jdbc_url).option("dbtable", f'public."{table}"')
    for key, value in {**url.jdbc_properties, "fetchsize": "10000", **options}.items():
        reader = reader.option(key, value)
    return reader.load()


@dataclass(frozen=True)
class Increment:
    """The rows one extract takes from one table, and the bookmark it will commit."""

    rows: DataFrame
    bookmark: dict[str, Any] | None  # None: nothing new, keep the old bookmark


def contract_columns(table: SourceTable, source: DataFrame) -> DataFrame:
    """Select exactly the contract's columns with the contract's types; name any missing column."""
    present = {c.lower() for c in source.columns}
    missing = [c for c in table.column_names if c not in present]
    if missing:
        raise SchemaDrift(
            f"totesys.{table.name}: column(s) {', '.join(missing)} missing from the source; the contract "
            f"(SPEC.md section 1) needs them. Found: {', '.join(source.columns)}"
        )
    return source.select([F.col(c.name).cast(c.spark_type).alias(c.name) for c in table.columns])


def read_increment(
    spark: SparkSession,
    url: PgUrl,
    table: SourceTable,
    bookmark: dict[str, Any] | None,
    lookback: timedelta = timedelta(0),
) -> Increment:
    """Rows of `table` changed since `bookmark` (all rows on the first run), persisted.

    Bookmark = {"last_updated": highest last_updated taken, "keys": primary keys taken at exactly
    that instant}. With a look-back window the read starts earlier; versions already taken are then
    de-duplicated downstream by (primary key, last_updated).
    """
    rows = contract_columns(table, read_table(spark, url, table.name))
    pk = table.primary_key
    if bookmark:
        since = datetime.strptime(bookmark["last_updated"], TS_FORMAT)
        rows = rows.where(F.col("last_updated") >= F.lit(since - lookback))
        if bookmark.get("keys"):
            seen = (F.col("last_updated") == F.lit(since)) & F.col(pk).isin(bookmark["keys"])
            rows = rows.where(~seen)
    rows = rows.persist()
    summary = rows.agg(F.max("last_updated").alias("high")).first()
    high = summary["high"] if summary else None
    if high is None:
        return Increment(rows, None)
    keys = sorted(r[pk] for r in rows.where(F.col("last_updated") == F.lit(high)).select(pk).collect())
    if bookmark and bookmark["last_updated"] == high.strftime(TS_FORMAT):
        keys = sorted(set(keys) | set(bookmark.get("keys", [])))
    elif bookmark and datetime.strptime(bookmark["last_updated"], TS_FORMAT) > high:
        # Only look-back rows were new: the high-water mark never moves backwards.
        return Increment(rows, {**bookmark, "keys": bookmark.get("keys", [])})
    return Increment(rows, {"last_updated": high.strftime(TS_FORMAT), "keys": keys})
