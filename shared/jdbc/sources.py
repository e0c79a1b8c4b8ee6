"""JDBC access to PostgreSQL from Spark: connectivity checks and the incremental ToteSys read.

`read_increment` is the local emulation of a Glue JDBC read with job bookmarks on `last_updated`,
and goes beyond it twice (docs/adr/0003-extract-bookmark-boundary.md, docs/reliability.md):
- it pushes `last_updated >= bookmark` down to PostgreSQL and skips the rows at exactly the bookmark
  that an earlier run already took (their primary keys are kept in the bookmark). Re-reading the
  boundary instant is what keeps rows that share the last `last_updated` (the daily payments batch
  writes hundreds with one timestamp) from being lost; Glue's own `>` bookmark can lose them;
- with a look-back window it re-reads `last_updated >= bookmark - window`, which catches a row whose
  transaction committed late with a timestamp behind the bookmark. The versions (primary key,
  last_updated) taken inside the window are remembered in the bookmark and skipped, so the window
  costs a re-read on PostgreSQL but never re-writes a row into the ingestion zone;
- a bookmark may carry backfill windows (`"backfill": [{"since": ..., "until": ...}]`, put there by
  `totes backfill`, shared/local/state_ops.py): the next read also takes every row with
  `since <= last_updated < until`, taken before or not, and the bookmark it commits has none left.
  The high-water mark is unaffected: a backfill re-reads behind it without losing its progress.
Table names in SQL come only from the contract's allow-list (shared/contract/source.py), never from data.
Called by the extract job through the runtime seam; shared/runtime/glue.py has the Glue-native twin.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StructField, StructType, TimestampType

from shared.config import PgUrl
from shared.contract.source import SOURCE_TABLES, SourceTable

TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


class SourceUnreachable(RuntimeError):
    """A database named by a setting cannot be reached; the message names the setting."""


class SchemaDrift(RuntimeError):
    """A source table no longer has a column the contract needs; the message names table and column."""


def check_reachable(spark: SparkSession, url: PgUrl, timeout_seconds: int = 10) -> None:
    """Open and close one JDBC connection, or raise SourceUnreachable with a one-line reason."""
    try:
        jdbc_connection(spark, url, timeout_seconds=timeout_seconds).close()
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


class NotAllowListed(ValueError):
    """A table name that is not in the source contract's allow-list reached the SQL layer."""


def read_table(spark: SparkSession, url: PgUrl, table: str, **options: str) -> DataFrame:
    """A lazily-read ToteSys table; `table` must be one of the contract's (shared/contract/source.py)."""
    if table not in SOURCE_TABLES:
        raise NotAllowListed(
            f"{table!r} is not a ToteSys table of the contract; SQL is only built from the allow-list "
            f"({', '.join(sorted(SOURCE_TABLES))})"
        )
    reader = spark.read.format("jdbc").option("url", url.jdbc_url).option("dbtable", f'public."{table}"')
    for key, value in {**url.jdbc_properties, "fetchsize": str(FETCH_SIZE), **options}.items():
        reader = reader.option(key, value)
    return reader.load()


# Rows fetched per round trip: the driver's default (0) would buffer a whole table in the JVM.
FETCH_SIZE = 10_000
# A full read of a big table is split into primary-key ranges read in parallel, one JDBC
# connection each: about this many rows per range (a few seconds of fetch each), at most this
# many ranges (Spark runs as many at once as it has cores; PostgreSQL serves each from the index).
ROWS_PER_READ_PARTITION = 100_000
MAX_READ_PARTITIONS = 16


def partitioned_read_options(
    column: str,
    low: int | None,
    high: int | None,
    rows_per_partition: int = ROWS_PER_READ_PARTITION,
    max_partitions: int = MAX_READ_PARTITIONS,
) -> dict[str, str]:
    """Spark JDBC options splitting a read on integer `column` spanning [low, high] into ranges.

    Empty ({}: one plain query) when the table is empty or small enough for one range. Ids are
    serial, so the span approximates the row count; gaps only make ranges smaller. Spark turns the
    bounds into `WHERE column < b1`, `column >= b1 AND column < b2`, ..., `column >= bn-1`: the
    first and last ranges are open, so no row is ever missed, whatever the bounds.
    """
    if low is None or high is None or rows_per_partition < 1:
        return {}
    partitions = min(max_partitions, -(-(high - low + 1) // rows_per_partition))
    if partitions < 2:
        return {}
    return {
        "partitionColumn": column,
        "lowerBound": str(low),
        "upperBound": str(high + 1),
        "numPartitions": str(partitions),
    }


def key_range(spark: SparkSession, url: PgUrl, table: SourceTable) -> tuple[int | None, int | None]:
    """min and max of the primary key (an index lookup in PostgreSQL, not a scan)."""
    if table.name not in SOURCE_TABLES:
        raise NotAllowListed(f"{table.name!r} is not a ToteSys table of the contract")
    pk = table.primary_key
    reader = (
        spark.read.format("jdbc")
        .option("url", url.jdbc_url)
        .option("query", f'SELECT min("{pk}") AS lo, max("{pk}") AS hi FROM public."{table.name}"')
    )
    for key, value in url.jdbc_properties.items():
        reader = reader.option(key, value)
    row = reader.load().first()
    if row is None or row["lo"] is None:
        return None, None
    return int(row["lo"]), int(row["hi"])


@dataclass(frozen=True)
class Increment:
    """The rows one extract takes from one table, and the bookmark it will commit."""

    rows: DataFrame | None  # None: the reader knows there is nothing new without a DataFrame
    bookmark: dict[str, Any] | None  # None: nothing new, keep the old bookmark
    notes: tuple[str, ...] = ()  # things worth telling a person, e.g. source columns not extracted
    count: int | None = None  # rows in `rows`, when the reader already knows it (saves a Spark job)

    def __post_init__(self) -> None:
        if self.rows is None and self.count != 0:
            raise ValueError("an Increment without rows must say it has none (count=0)")

    def release(self) -> None:
        """Unpersist the rows, once the extract has written them."""
        if self.rows is not None:
            self.rows.unpersist()


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


def extra_columns(table: SourceTable, columns: list[str]) -> list[str]:
    """Source columns the contract does not know: not extracted, but reported (never silently)."""
    known = set(table.column_names)
    return [c for c in columns if c.lower() not in known]


def extra_column_notes(table: SourceTable, columns: list[str]) -> tuple[str, ...]:
    """The run notes for source columns outside the contract: the same words on Glue and locally."""
    return tuple(
        f"totesys.{table.name}: column {c} is not in the contract (SPEC.md section 1) and is not extracted"
        for c in extra_columns(table, columns)
    )


def unchanged_probe_sql(
    table: SourceTable, bookmark: dict[str, Any], lookback: timedelta = timedelta(0)
) -> str:
    """SQL returning a row iff the read `read_increment` would make has one: a version with
    `last_updated >= T - lookback` (T the bookmark's high-water mark) that the bookmark has not taken.

    Values are rendered from the bookmark after parsing (timestamps and integers), never copied as
    text; the table and key names come from the contract's allow-list.
    """
    if table.name not in SOURCE_TABLES:
        raise NotAllowListed(f"{table.name!r} is not a ToteSys table of the contract")
    since = _parse_ts(bookmark["last_updated"]) - lookback
    taken = sorted((ts, int(k)) for ts, keys in taken_versions(bookmark).items() if ts >= since for k in keys)
    where = f"last_updated >= TIMESTAMP '{since.strftime(TS_FORMAT)}'"
    if taken:
        ids = ",".join(str(k) for _, k in taken)
        stamps = ",".join(f'"{ts.strftime(TS_FORMAT)}"' for ts, _ in taken)
        where += (
            f' AND ("{table.primary_key}", last_updated) NOT IN '
            f"(SELECT * FROM unnest('{{{ids}}}'::integer[], '{{{stamps}}}'::timestamp[]))"
        )
    return f'SELECT * FROM public."{table.name}" WHERE {where} LIMIT 1'


POSTGRES_DRIVER = "org.postgresql.Driver"


def jdbc_connection(spark: SparkSession, url: PgUrl, timeout_seconds: int | None = None) -> Any:
    """A java.sql.Connection opened by the Spark driver's JVM (the same JDBC driver Spark reads with).

    For the few statements the driver issues itself: the reachability probe, the no-change probe,
    the warehouse's one transaction. The caller closes it.

    The driver class is loaded the way Spark's JDBC source loads it (`Utils.classForName`: the
    thread's context class loader, which holds `spark.jars` locally and the driver's class path
    on Glue) and connected through directly. `java.sql.DriverManager` would not do: called through
    py4j, it only accepts drivers its caller's class loader (the JVM class path) can see, so a jar
    given with `spark.jars` gets "No suitable driver" or ClassNotFoundException.
    """
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    props = jvm.java.util.Properties()
    options = dict(url.jdbc_properties)
    options.pop("driver", None)  # a Spark option, not a pgjdbc property
    if timeout_seconds is not None:  # pgjdbc's own timeouts, in seconds
        options |= {"connectTimeout": str(timeout_seconds), "loginTimeout": str(timeout_seconds)}
    for key, value in options.items():
        props.setProperty(key, value)
    driver = jvm.org.apache.spark.util.Utils.classForName(POSTGRES_DRIVER, True, False).newInstance()
    connection = driver.connect(url.jdbc_url, props)
    if connection is None:  # Driver.connect's answer to a URL that is not its own
        raise SourceUnreachable(f"{url.setting} ({url.masked}) is not a jdbc:postgresql URL")
    return connection


class DriverConnection:
    """One JDBC connection of the driver's to `url`, opened at its first use and kept until `close()`.

    For a job's many small statements (the extract's no-change probe of each table): a new
    connection costs PostgreSQL's SCRAM key derivation (4,096 PBKDF2 rounds, which the JDBC driver
    will not go below) and, in a JVM that has just started, more than the query itself.
    """

    def __init__(self, spark: SparkSession, url: PgUrl) -> None:
        self._spark = spark
        self._url = url
        self._connection: Any = None

    def get(self) -> Any:
        if self._connection is None:
            self._connection = jdbc_connection(self._spark, self._url)
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.close()


def source_columns_if_unchanged(
    spark: SparkSession,
    url: PgUrl,
    table: SourceTable,
    bookmark: dict[str, Any],
    lookback: timedelta = timedelta(0),
    connection: DriverConnection | None = None,
) -> list[str] | None:
    """The source table's column names if nothing changed since `bookmark`, else None.

    One query over the driver's JDBC connection (`connection`, kept open by the caller, else one
    opened for it), no Spark job: with twenty-minute runs most tables have nothing new most of the
    time, and a Spark read costs a second or more each.
    """
    probe = connection or DriverConnection(spark, url)
    try:
        statement = probe.get().createStatement()
        try:
            result = statement.executeQuery(unchanged_probe_sql(table, bookmark, lookback))
            if result.next():
                return None
            meta = result.getMetaData()
            return [str(meta.getColumnName(i + 1)) for i in range(meta.getColumnCount())]
        finally:
            statement.close()
    finally:
        if connection is None:  # opened here for this one query
            probe.close()


# An increment of at most this many rows brings its (primary key, last_updated) pairs to the driver
# in one Spark job, and the high-water mark, the count and the keys at the mark are taken from them;
# a bigger one is summed up by Spark (an aggregate, then the keys at the mark: two jobs).
KEYS_TO_DRIVER = 10_000


def read_increment(
    spark: SparkSession,
    url: PgUrl,
    table: SourceTable,
    bookmark: dict[str, Any] | None,
    lookback: timedelta = timedelta(0),
    probe: DriverConnection | None = None,
) -> Increment:
    """Rows of `table` changed since `bookmark` (all rows on the first run), persisted.

    `probe`: the driver connection the no-change probe runs on (one per extract run), else its own.

    Bookmark = {"last_updated": highest last_updated taken (T), "keys": primary keys taken at
    exactly T, and with a look-back window "window": {last_updated: [primary keys]} for every
    other version taken in [T - window, T)}. The read takes `last_updated >= T - window` and drops
    every version the bookmark names, so each version is extracted once (at-least-once after a
    crash before commit), and a late-committed row with a timestamp inside the window is caught.
    """
    windows = backfill_windows(bookmark)
    if bookmark and not windows:
        columns = source_columns_if_unchanged(spark, url, table, bookmark, lookback, probe)
        if columns is not None and set(table.column_names) <= {c.lower() for c in columns}:
            # Nothing new: no Spark job, not even a DataFrame (a no-change run costs one query
            # per table; an empty DataFrame from Python costs about 0.1 s of py4j each).
            return Increment(None, None, extra_column_notes(table, columns), count=0)
    # A first (full) read of a big table goes in parallel key ranges; an incremental read of a few
    # rows stays one query (its `last_updated` filter is pushed down, ranges would only add queries).
    split = partitioned_read_options(table.primary_key, *key_range(spark, url, table)) if not bookmark else {}
    source = read_table(spark, url, table.name, **split)
    notes = extra_column_notes(table, source.columns)
    rows = contract_columns(table, source)
    pk = table.primary_key
    high_before: datetime | None = None
    taken: dict[datetime, set[int]] = {}
    if bookmark:
        high_before = _parse_ts(bookmark["last_updated"])
        increment = rows.where(F.col("last_updated") >= F.lit(high_before - lookback))
        taken = taken_versions(bookmark)
        if taken:
            increment = drop_versions(spark, increment, pk, taken)
        if windows:  # versions taken before are read again: one of each, whichever read found it
            increment = increment.unionByName(in_windows(rows, windows)).dropDuplicates([pk, "last_updated"])
        rows = increment
    rows = rows.persist()
    keys = rows.select(pk, "last_updated").limit(KEYS_TO_DRIVER + 1).collect()
    on_driver = len(keys) <= KEYS_TO_DRIVER  # all of them: the mark, the count and the recent keys from here
    if on_driver:
        high_read = max(
            (row["last_updated"] for row in keys if row["last_updated"] is not None), default=None
        )
        count = len(keys)
    else:
        summary = rows.agg(F.max("last_updated").alias("high"), F.count(F.lit(1)).alias("n")).first()
        high_read = summary["high"] if summary else None
        count = int(summary["n"]) if summary else 0
    if high_read is None:  # nothing read: the bookmark stays, without the backfill windows it read
        done = None if not windows or bookmark is None else without_backfill(bookmark)
        return Increment(rows, done, notes, count=count)
    # The high-water mark never moves backwards (only look-back rows may be new).
    high = high_read if high_before is None else max(high_before, high_read)
    since = high - lookback
    if on_driver:  # new_bookmark keeps only the versions in [since, high]
        recent = [row for row in keys if row["last_updated"] is not None]
    else:
        recent = rows.where(F.col("last_updated") >= F.lit(since)).select(pk, "last_updated").collect()
    for row in recent:
        taken.setdefault(row["last_updated"], set()).add(row[pk])
    return Increment(rows, new_bookmark(taken, high, since), notes, count=count)


def _parse_ts(text: str) -> datetime:
    return datetime.strptime(text, TS_FORMAT)


BACKFILL_KEY = "backfill"


def backfill_windows(bookmark: dict[str, Any] | None) -> list[tuple[datetime, datetime | None]]:
    """The backfill windows a bookmark asks the next read to take again: [(since, until or None)]."""
    return [
        (_parse_ts(w["since"]), _parse_ts(w["until"]) if w.get("until") else None)
        for w in ((bookmark or {}).get(BACKFILL_KEY) or [])
    ]


def without_backfill(bookmark: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in bookmark.items() if k != BACKFILL_KEY}


def in_windows(rows: DataFrame, windows: list[tuple[datetime, datetime | None]]) -> DataFrame:
    """The rows with `since <= last_updated < until` for one of `windows` (pushed down to PostgreSQL)."""
    conditions = [
        (F.col("last_updated") >= F.lit(since))
        if until is None
        else (F.col("last_updated") >= F.lit(since)) & (F.col("last_updated") < F.lit(until))
        for since, until in windows
    ]
    return rows.where(reduce(operator.or_, conditions))


def taken_versions(bookmark: dict[str, Any]) -> dict[datetime, set[int]]:
    """The versions a bookmark says were taken: {last_updated: {primary keys}}."""
    taken = {_parse_ts(ts): set(keys) for ts, keys in (bookmark.get("window") or {}).items()}
    if bookmark.get("keys"):
        taken.setdefault(_parse_ts(bookmark["last_updated"]), set()).update(bookmark["keys"])
    return taken


def new_bookmark(taken: dict[datetime, set[int]], high: datetime, since: datetime) -> dict[str, Any]:
    """The bookmark after a read: high-water mark, its keys, and the versions still in the window."""
    document: dict[str, Any] = {
        "last_updated": high.strftime(TS_FORMAT),
        "keys": sorted(taken.get(high, set())),
    }
    window = {
        ts.strftime(TS_FORMAT): sorted(keys) for ts, keys in sorted(taken.items()) if since <= ts < high
    }
    if window:
        document["window"] = window
    return document


# Up to this many distinct instants the skip is a WHERE clause pushed down to PostgreSQL (nothing
# already taken crosses the wire); beyond it, a broadcast anti-join in Spark (a huge OR would slow
# query planning more than transferring the rows costs).
PUSHDOWN_INSTANTS = 64


def drop_versions(
    spark: SparkSession, rows: DataFrame, pk: str, versions: dict[datetime, set[int]]
) -> DataFrame:
    """`rows` without the given versions (primary key, last_updated).

    The versions are the bookmark's: the keys at the high-water mark plus those taken in the
    look-back window, so at most the rows changed in the window. Timestamps go through the same
    Python-to-Spark conversion as the `last_updated` filter.
    """
    if len(versions) <= PUSHDOWN_INSTANTS:
        taken = [
            (F.col("last_updated") == F.lit(ts)) & F.col(pk).isin(sorted(keys))
            for ts, keys in sorted(versions.items())
        ]
        return rows.where(~reduce(operator.or_, taken))
    schema = StructType([StructField(pk, IntegerType(), False), StructField("last_updated", TimestampType())])
    seen = spark.createDataFrame([(k, ts) for ts, keys in versions.items() for k in keys], schema)
    return rows.join(F.broadcast(seen), [pk, "last_updated"], "left_anti")
