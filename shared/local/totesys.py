"""Tooling for the ToteSys source database: schema, seeding, and a simulator of its live changes.

Called by the `totes seed` / `totes simulate` CLI commands and by the tests, never by the Spark jobs
(they only read ToteSys, over JDBC, with read-only credentials).

- `create_schema`: the 11 tables of SPEC.md section 1 (plus the `_prisma_migrations` table the
  pipeline must ignore), built from the allow-list in `shared.contract.source.SOURCE_TABLES`.
- `seed_from_parquet`: loads a real snapshot (`shared/data/totesys-2024-11-15`), restoring the source
  types that Parquet lost, with COPY.
- `seed_synthetic`: generates a ToteSys of any size inside PostgreSQL (INSERT ... SELECT over
  generate_series, deterministic per seed), calibrated on the snapshot; scale 1 = the snapshot's size.
- `simulate`: one tick of the live system: new orders with their transaction and payment, the
  daily paid batch, occasional edits; all in one transaction.
- `table_counts`: rows per source table.

SQL identifiers only ever come from `SOURCE_TABLES` (quoted with psycopg.sql); values are bound
parameters or generated server-side.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from shared.contract.source import SOURCE_TABLES, SourceTable


class TotesysError(RuntimeError):
    """The ToteSys database or a snapshot is not in the state an operation needs. Says which table."""


# --------------------------------------------------------------------------- schema

_TS_DEFAULT = "date_trunc('milliseconds', localtimestamp)"
_VARCHAR_LENGTHS = {("currency", "currency_code"): 3}


def _creation_order() -> list[str]:
    """Tables ordered so that every table comes after the tables its foreign keys reference."""
    ordered: list[str] = []
    pending = list(SOURCE_TABLES)
    while pending:
        ready = [t for t in pending if set(SOURCE_TABLES[t].foreign_keys.values()) <= set(ordered) | {t}]
        if not ready:
            raise TotesysError(f"foreign keys form a cycle among {pending}")
        ordered.extend(ready)
        pending = [t for t in pending if t not in ready]
    return ordered


CREATION_ORDER: tuple[str, ...] = tuple(_creation_order())


def _column_ddl(table: SourceTable, name: str) -> sql.Composable:
    column = table.columns_by_name[name]
    if name == table.primary_key:
        return sql.SQL("{} serial PRIMARY KEY").format(sql.Identifier(name))
    pg_type = column.pg_type
    if (table.name, name) in _VARCHAR_LENGTHS:
        pg_type = f"varchar({_VARCHAR_LENGTHS[(table.name, name)]})"
    ddl = f"{pg_type}{'' if column.nullable else ' NOT NULL'}"
    if column.kind == "ts":
        ddl += f" DEFAULT {_TS_DEFAULT}"
    return sql.SQL("{} " + ddl).format(sql.Identifier(name))


def _fk_name(table: str, column: str) -> str:
    return f"{table}_{column}_fkey"


def _fk_ddl(table: SourceTable, column: str) -> sql.Composable:
    target = SOURCE_TABLES[table.foreign_keys[column]]
    return sql.SQL("CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({})").format(
        sql.Identifier(_fk_name(table.name, column)),
        sql.Identifier(column),
        sql.Identifier(target.name),
        sql.Identifier(target.primary_key),
    )


def table_ddl(table: SourceTable) -> sql.Composed:
    """CREATE TABLE IF NOT EXISTS for one source table, columns in the contract's physical order."""
    parts = [_column_ddl(table, c) for c in table.column_names]
    parts += [_fk_ddl(table, c) for c in table.foreign_keys]
    return sql.SQL("CREATE TABLE IF NOT EXISTS {} (\n  {}\n)").format(
        sql.Identifier(table.name), sql.SQL(",\n  ").join(parts)
    )


_PRISMA_DDL = """
CREATE TABLE IF NOT EXISTS _prisma_migrations (
  id varchar(36) PRIMARY KEY,
  checksum varchar(64) NOT NULL,
  finished_at timestamp with time zone,
  migration_name varchar(255) NOT NULL,
  logs text,
  rolled_back_at timestamp with time zone,
  started_at timestamp with time zone NOT NULL DEFAULT now(),
  applied_steps_count integer NOT NULL DEFAULT 0
)"""
_PRISMA_ROW = (
    "3f1c2a9e-6b0d-4e57-9a51-2d8c7f4b1e60",
    "8c1d5f0b6e3a9c2d7f4e1b0a5c8d3e6f9a2b7c4d1e8f5a0b3c6d9e2f7a4b1c8d",
    "20221103142049_init",
)


def create_schema(url: str) -> None:
    """Create the 11 ToteSys tables (and `_prisma_migrations` with its one row) if they are missing."""
    with _connect(url) as conn:
        for name in CREATION_ORDER:
            conn.execute(table_ddl(SOURCE_TABLES[name]))
        conn.execute(_PRISMA_DDL)
        conn.execute(
            "INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, started_at,"
            " applied_steps_count)"
            " SELECT %s, %s, timestamptz '2022-11-03 14:20:49.512+00', %s,"
            " timestamptz '2022-11-03 14:20:49.4+00', 1"
            " WHERE NOT EXISTS (SELECT 1 FROM _prisma_migrations)",
            _PRISMA_ROW,
        )


def table_counts(url: str) -> dict[str, int]:
    """Rows in each of the 11 source tables, in contract order."""
    with _connect(url) as conn:
        _require_tables(conn)
        return {name: _count(conn, name) for name in SOURCE_TABLES}


# --------------------------------------------------------------------------- connections and checks


@contextmanager
def _connect(url: str) -> Iterator[psycopg.Connection[Any]]:
    """One connection, one transaction: committed on success, rolled back on any error."""
    try:
        conn = psycopg.connect(url, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise TotesysError(f"cannot connect to the ToteSys database: {str(exc).strip()}") from exc
    with conn:
        yield conn


def _require_tables(conn: psycopg.Connection[Any]) -> None:
    present = {
        row[0]
        for row in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
    }
    missing = [name for name in SOURCE_TABLES if name not in present]
    if missing:
        raise TotesysError(
            f"ToteSys table(s) {', '.join(missing)} missing: run create_schema (totes seed) first"
        )


def _count(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
    return int(row[0]) if row else 0


def _require_empty(conn: psycopg.Connection[Any]) -> None:
    full = {name: n for name in SOURCE_TABLES if (n := _count(conn, name))}
    if full:
        raise TotesysError(f"seeding needs an empty ToteSys schema, but these tables have rows: {full}")


def _reset_sequences(conn: psycopg.Connection[Any]) -> None:
    """After loading explicit ids, the next serial id of every table is max(id) + 1."""
    for table in SOURCE_TABLES.values():
        conn.execute(
            sql.SQL(
                "SELECT setval(pg_get_serial_sequence(%s, %s), COALESCE(max({pk}), 0) + 1, false) FROM {t}"
            ).format(pk=sql.Identifier(table.primary_key), t=sql.Identifier(table.name)),
            (table.name, table.primary_key),
        )


# --------------------------------------------------------------------------- seed from a snapshot


def seed_from_parquet(url: str, directory: Path) -> dict[str, int]:
    """Load a snapshot (one `<table>.parquet` per source table) into an empty ToteSys schema.

    Restores the source types Parquet lost: doubles back to integers (NaN/null to NULL) and to
    numeric with 2 decimal places; timestamps are kept to the microsecond. Loads with COPY in
    foreign-key order, then moves every id sequence past max(id). Returns rows loaded per table.
    """
    import pyarrow.parquet as pq  # local tooling only: keep module import cheap for the CLI

    directory = Path(directory)
    missing = [name for name in SOURCE_TABLES if not (directory / f"{name}.parquet").is_file()]
    if missing:
        raise TotesysError(f"snapshot {directory} has no Parquet file for: {', '.join(missing)}")
    create_schema(url)
    counts: dict[str, int] = {}
    with _connect(url) as conn:
        _require_empty(conn)
        for name in CREATION_ORDER:
            table = SOURCE_TABLES[name]
            arrow = pq.read_table(directory / f"{name}.parquet")
            extra = sorted(set(arrow.column_names) - set(table.column_names))
            absent = [c for c in table.column_names if c not in arrow.column_names]
            if extra or absent:
                raise TotesysError(
                    f"snapshot table {name}: columns differ from the contract (missing: {absent or 'none'}, "
                    f"unexpected: {extra or 'none'})"
                )
            columns = [_python_values(table, c.name, arrow.column(c.name)) for c in table.columns]
            rows = sorted(zip(*columns, strict=True), key=lambda r: r[0])
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(name), sql.SQL(", ").join(map(sql.Identifier, table.column_names))
            )
            with conn.cursor() as cur, cur.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
            counts[name] = len(rows)
        _reset_sequences(conn)
    return {name: counts[name] for name in SOURCE_TABLES}


def _python_values(table: SourceTable, name: str, column: Any) -> list[Any]:
    """One Parquet column as Python values of the source type; raises naming table and column."""
    import pyarrow as pa

    kind = table.columns_by_name[name].kind
    if kind == "ts":
        if pa.types.is_timestamp(column.type):
            column = column.cast(pa.timestamp("us"))  # ns -> us is exact for these millisecond values
        timestamps: list[Any] = column.to_pylist()  # pyarrow is untyped: Any
        return timestamps
    converters: dict[str, Callable[[Any], Any]] = {
        "int": _to_int,
        "money": _to_money,
        "bool": bool,
        "str": str,
        "date": str,
    }
    converter = converters[kind]
    values: list[Any] = []
    for value in column.to_pylist():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            values.append(None)
            continue
        try:
            values.append(converter(value))
        except (ValueError, TypeError) as exc:
            raise TotesysError(f"snapshot table {table.name}, column {name}: {exc}") from None
    return values


def _to_int(value: Any) -> int:
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{value!r} is not a whole number")
    return int(value)


def _to_money(value: Any) -> Decimal:
    money = Decimal(f"{value:.2f}")
    if abs(float(money) - float(value)) > 1e-6:
        raise ValueError(f"{value!r} has more than 2 decimal places")
    return money


# --------------------------------------------------------------------------- synthetic data

# Calibrated on the 2022-11-03 .. 2024-11-15 snapshot (SPEC.md section 1).
SYNTHETIC_START = date(2022, 11, 3)
SYNTHETIC_END = date(2024, 11, 15)
SALES_ORDERS_AT_SCALE_1 = 11_187
PURCHASE_ORDERS_AT_SCALE_1 = 4_649
DESIGNS_AT_SCALE_1 = 473
PAID_BATCH_TIME = "07:55:11.885"  # each weekday: payments due that day are marked paid
_INITIAL_LOAD = {"reference": "2022-11-03 14:20:49.962", "people": "2022-11-03 14:20:51.563"}
_FIRST_ORDER = "2022-11-03 14:20:52.186"  # orders start when the system went live

_DEPARTMENTS = [
    ("Sales", "Manchester", "Richard Roma"),
    ("Purchasing", "Manchester", "Naomi Lapaglia"),
    ("Production", "Leeds", "Chester Ming"),
    ("Dispatch", "Leds", "Mark Hanna"),  # sic: the real data has this typo
    ("Finance", "Manchester", "Jordan Belfort"),
    ("Facilities", "Manchester", "Shelley Levene"),
    ("Communications", "Leeds", "Ann Blake"),
    ("HR", "Leeds", "James Link"),
]
_CURRENCIES = ["GBP", "USD", "EUR"]
PAYMENT_TYPES = ["SALES_RECEIPT", "SALES_REFUND", "PURCHASE_PAYMENT", "PURCHASE_REFUND"]

_WORDS: dict[str, list[str]] = {
    "first": [
        "Jeremie", "Deron", "Jeanette", "Ana", "Magdalena", "Korey", "Raphael", "Oswaldo", "Brody",
        "Jazmyn", "Meda", "Imani", "Stan", "Rigoberto", "Tom", "Jett", "Irving", "Tomasa", "Pierre",
        "Flavio", "Micheal", "Lucy", "Melba", "Jean", "Myra", "Taylor", "Homer", "Ivan", "Florence",
        "Eva", "Wilma", "Christy", "Emily", "Veronica", "Sheryl", "Simon", "Dewey", "Glen", "Laurie",
        "Renée", "Siobhán", "Zoë",
    ],
    "last": [
        "Franey", "Beier", "Erdman", "Glover", "Zieme", "Kreiger", "Rippin", "Bergstrom", "Ratke",
        "Kuhn", "Cremin", "Walker", "Lehner", "VonRueden", "Gutkowski", "Parisian", "O'Keefe", "Moore",
        "Sauer", "Kulas", "Toy", "Runolfsdottir", "Sanford", "Hane", "Kovacek", "Haag", "Mitchell",
        "Balistreri", "Casper", "Upton", "Witting", "O'Hara", "Orn", "Fay", "Langworth", "Schoen",
        "D'Amore", "Halvorson", "Kuhic", "Emmerich", "Hermiston", "O'Conner",
    ],
    "title": ["Mr.", "Mrs.", "Ms.", "Dr.", "Miss"],
    "suffix": ["PhD", "DVM", "II", "III", "Jr.", "MD"],
    "company": ["and Sons", "Inc", "LLC", "Group", "- Lakin", "- Grant", "and Daughters"],
    "street": [
        "Herzog", "Alexie", "Sincere", "Rogahn", "Upton", "Kailey", "Ernestine", "Durgan", "Edward",
        "Kaylah", "Bernier", "Ernesto", "Arch", "Bryce", "Haskell", "Orin", "Koch", "Sibyl", "Cole",
        "Klein", "Georgette", "Goodwin", "Providenci", "Daren", "Ullrich", "Pacocha", "Breitenberg",
    ],
    "street_type": [
        "Via", "Cliffs", "Fort", "Skyway", "Track", "Island", "Ways", "Common", "Garden", "Flat",
        "Mission", "Expressway", "Dale", "Trafficway", "Extension", "Drives", "Cliff", "Corner",
        "Landing", "Ridge", "Streets", "Spring", "Freeway", "Inlet", "Branch", "View", "Turnpike",
        "Circles", "Glens", "Radial", "Bridge", "Pines", "Wall",
    ],
    "district": [
        "Avon", "Bedfordshire", "Buckinghamshire", "Berkshire", "Borders", "Cambridgeshire",
        "Cheshire", "Cumbria",
    ],
    "city": [
        "New Patienceburgh", "Aliso Viejo", "Lake Charles", "Olsonside", "Fort Shadburgh", "Kendraburgh",
        "North Deshaun", "Suffolk", "New Tyra", "Beaulahcester", "Corpus Christi", "Pricetown",
        "Shanahanview", "Maggiofurt", "East Bobbie", "South Wyatt", "Hackensack", "Lake Arne",
        "West Briellecester", "Pueblo", "Fresno", "Sayreville", "Derekport", "New Torrance",
        "East Arvel", "Napa", "Oakland Park", "Utica", "Bartellview", "Lake Myrlfurt", "Coeur d'Alene",
    ],
    "country": [
        "Turkey", "San Marino", "Samoa", "Republic of Korea", "Bosnia and Herzegovina", "Zimbabwe",
        "Faroe Islands", "United Kingdom", "Australia", "Democratic People's Republic of Korea",
        "Japan", "Tajikistan", "Bouvet Island (Bouvetoya)", "Iraq", "Heard Island and McDonald Islands",
        "Iceland", "Indonesia", "Kiribati", "Sierra Leone", "Bolivia", "Svalbard & Jan Mayen Islands",
        "Papua New Guinea", "Antigua and Barbuda", "Sudan", "American Samoa", "Guam", "Austria",
        "Congo", "Falkland Islands (Malvinas)", "Cote d'Ivoire", "Saint Barthélemy",
    ],
    "design": [
        "Steel", "Soft", "Granite", "Concrete", "Frozen", "Bronze", "Plastic", "Cotton", "Metal",
        "Fresh", "Wooden", "Rubber",
    ],
    "file_location": [
        "/usr/libexec", "/net", "/usr", "/etc", "/usr/local/src", "/usr/share", "/usr/ports",
        "/etc/periodic", "/opt/lib", "/selinux", "/home/user/dir", "/usr/libdata", "/lost+found",
        "/etc/ppp", "/bin", "/etc/namedb", "/private", "/etc/mail", "/Users", "/System", "/var/tmp",  # noqa: S108 - data
        "/opt/sbin", "/sys", "/boot/defaults", "/var/log", "/lib", "/usr/X11R6", "/root", "/Library",
        "/opt", "/usr/lib", "/var", "/Applications", "/home", "/srv", "/mnt", "/tmp",  # noqa: S108 - data, not a temp file
    ],
    "location": ["Manchester", "Leeds", "Leds", "Liverpool", "Sheffield", "Salford"],
}  # fmt: skip

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _pick(words: str) -> str:
    """SQL for one random element of the bound text[] parameter `words`."""
    return f"(%({words})s::text[])[1 + floor(random() * cardinality(%({words})s::text[]))::int]"


def _rand_int(low: int | str, high: int | str) -> str:
    """SQL for a uniform random integer in [low, high]."""
    return f"({low} + floor(random() * ({high} - ({low}) + 1))::int)"


def _rand_code(length: int, alphabet: str = _ALNUM) -> str:
    return " || ".join([f"substr('{alphabet}', {_rand_int(1, len(alphabet))}, 1)"] * length)


_PHONE = f"lpad({_rand_int(0, 9999)}::text, 4, '0') || ' ' || lpad({_rand_int(0, 999999)}::text, 6, '0')"
_CONTACT = (
    f"CASE WHEN random() < 0.1 THEN {_pick('title')} || ' ' ELSE '' END || {_pick('first')} || ' ' || "
    f"{_pick('last')} || CASE WHEN random() < 0.08 THEN ' ' || {_pick('suffix')} ELSE '' END"
)
# A random moment of a working day (08:00 to 19:00); ToteSys writes orders about 10 s past the minute.
_WORKING_TIME = (
    f"interval '8 hours' + {_rand_int(0, 659)} * interval '1 minute'"
    " + (9.6 + random() * 0.7) * interval '1 second'"
)
# Roughly one timestamp in 500 has no fractional second (as in the real data).
_NO_FRACTION_EVERY = 487


def _seed_fraction(seed: int) -> float:
    """setseed() wants a number in [-1, 1]; spread integer seeds over it."""
    return ((seed * 2_654_435_761) % 2**31) / 2**31


def synthetic_sizes(scale: float) -> dict[str, int]:
    """Rows per table at `scale` (1.0 = the real snapshot). Reference tables stay small."""
    if not (isinstance(scale, int | float) and 0 < scale <= 10_000):
        raise ValueError(f"scale must be a number in (0, 10000], got {scale!r}")
    people = max(1.0, math.sqrt(scale))
    sales = max(1, round(SALES_ORDERS_AT_SCALE_1 * scale))
    purchases = max(1, round(PURCHASE_ORDERS_AT_SCALE_1 * scale))
    return {
        "address": round(30 * people),
        "counterparty": round(20 * people),
        "currency": len(_CURRENCIES),
        "department": len(_DEPARTMENTS),
        "design": max(len(_WORDS["design"]), round(DESIGNS_AT_SCALE_1 * scale)),
        "staff": round(20 * people),
        "sales_order": sales,
        "purchase_order": purchases,
        "payment_type": len(PAYMENT_TYPES),
        "payment": sales + purchases,
        "transaction": sales + purchases,
    }


def seed_synthetic(url: str, scale: float = 1.0, seed: int = 42) -> dict[str, int]:
    """Fill an empty ToteSys with realistic data generated inside PostgreSQL; returns rows per table.

    At scale 1 the sizes are the snapshot's (11,187 sales and 4,649 purchase orders, 15,836
    transactions and payments, 473 designs, ...); orders are created on weekdays 08:00-19:00 between
    2022-11-03 and 2024-11-15, each with one transaction and one payment of quantity x price. The
    daily batch has paid every payment due on a weekday after the day it was created, all of one day
    sharing the last_updated `<payment_date> 07:55:11.885`. The same (scale, seed) gives the same data.
    """
    sizes = synthetic_sizes(scale)
    create_schema(url)
    params: dict[str, Any] = {
        **_WORDS,
        **{f"n_{name}": n for name, n in sizes.items()},
        "start": SYNTHETIC_START,
        "end": SYNTHETIC_END,
        "first_order": datetime.fromisoformat(_FIRST_ORDER),
        "reference_ts": datetime.fromisoformat(_INITIAL_LOAD["reference"]),
        "people_ts": datetime.fromisoformat(_INITIAL_LOAD["people"]),
        "dept_names": [d[0] for d in _DEPARTMENTS],
        "dept_locations": [d[1] for d in _DEPARTMENTS],
        "dept_managers": [d[2] for d in _DEPARTMENTS],
        "currencies": _CURRENCIES,
        "payment_types": PAYMENT_TYPES,
        "sales_receipt": PAYMENT_TYPES.index("SALES_RECEIPT") + 1,
        "purchase_payment": PAYMENT_TYPES.index("PURCHASE_PAYMENT") + 1,
        "paid_time": PAID_BATCH_TIME,
        "apostrophe_country": "Democratic People's Republic of Korea",
        "apostrophe_first": "Irving",
        "apostrophe_last": "O'Keefe",
        "apostrophe_contact": "Christy O'Hara",
    }
    with _connect(url) as conn:
        _require_empty(conn)
        # Truncating the (empty) tables in this transaction lets a server with wal_level=minimal,
        # like the embedded one, write them without WAL: about half the I/O of a large seed.
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, SOURCE_TABLES))))
        conn.execute("SELECT setseed(%s)", (_seed_fraction(seed),))
        conn.execute("SET LOCAL work_mem = '256MB'")
        with _foreign_keys_deferred_to_end(conn):
            for statement in _SYNTHETIC_SQL:
                conn.execute(statement, params)
        _reset_sequences(conn)
        return {name: _count(conn, name) for name in SOURCE_TABLES}


@contextmanager
def _foreign_keys_deferred_to_end(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """Drop the foreign keys while bulk-generating, then add them back (validated in one pass each).

    Row-by-row FK triggers would dominate the time of a multi-million-row seed. All of this runs in
    the caller's transaction, so a failure leaves the schema as it was.
    """
    fks = [(t, c) for t in SOURCE_TABLES.values() for c in t.foreign_keys]
    for table, column in fks:
        conn.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(
                sql.Identifier(table.name), sql.Identifier(_fk_name(table.name, column))
            )
        )
    yield
    for table, column in fks:
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD {}").format(sql.Identifier(table.name), _fk_ddl(table, column))
        )


_WEEKDAYS = """(SELECT array_agg(d::date ORDER BY d) FROM generate_series(%(start)s::date, %(end)s::date,
    interval '1 day') AS d WHERE extract(isodow FROM d) < 6)"""


def _order_timestamp(raw: str) -> str:
    """Millisecond timestamp (or, one in ~500, whole second), never before the system went live."""
    return (
        f"greatest(%(first_order)s::timestamp, CASE WHEN i %% {_NO_FRACTION_EVERY} = 0 "
        f"THEN date_trunc('second', {raw}) ELSE date_trunc('milliseconds', {raw}) END)"
    )


# Agreed dates: delivery within a week of the order (one in 200 up to ~21 months out), payment
# within 6 days; as dates of `ts + random interval` they reproduce the snapshot's day-offset shape.
_DELIVERY_DATE = """to_char(CASE WHEN random() < 0.005 THEN ts + random() * interval '650 days'
                             ELSE ts + random() * interval '7 days' END, 'YYYY-MM-DD')"""
_PAYMENT_DATE = "to_char(ts + random() * interval '6 days', 'YYYY-MM-DD')"


def _insert(table: str, skip_primary_key: bool = False) -> str:
    """`INSERT INTO table (columns...)` with the contract's columns in physical order."""
    spec = SOURCE_TABLES[table]
    names = [c for c in spec.column_names if not (skip_primary_key and c == spec.primary_key)]
    lines, line = [], ""
    for name in names:
        if line and len(line) + len(name) > 90:
            lines.append(line)
            line = ""
        line += f"{name}, "
    columns = "\n    ".join([*lines, line]).rstrip(", ")
    return f'INSERT INTO "{table}" (\n    {columns})'


# Each statement selects the contract's columns in order. OFFSET 0 keeps a subquery from being
# flattened, so a value drawn once (a name, a timestamp) is the same wherever it is used.
_SYNTHETIC_SQL: list[str] = [
    f"""{_insert("currency")}
SELECT i, (%(currencies)s::text[])[i], %(reference_ts)s, %(reference_ts)s
FROM generate_series(1, %(n_currency)s) AS i""",
    f"""{_insert("payment_type")}
SELECT i, (%(payment_types)s::text[])[i], %(reference_ts)s, %(reference_ts)s
FROM generate_series(1, %(n_payment_type)s) AS i""",
    f"""{_insert("department")}
SELECT i, (%(dept_names)s::text[])[i], (%(dept_locations)s::text[])[i], (%(dept_managers)s::text[])[i],
       %(reference_ts)s, %(reference_ts)s
FROM generate_series(1, %(n_department)s) AS i""",
    f"""{_insert("address")}
SELECT i,
       {_rand_int(1, 99999)} || ' ' || {_pick("street")} || ' ' || {_pick("street_type")},
       CASE WHEN random() < 0.3 THEN {_pick("street")} || ' ' || {_pick("street_type")} END,
       CASE WHEN random() < 0.55 THEN {_pick("district")} END,
       {_pick("city")},
       lpad({_rand_int(0, 99999)}::text, 5, '0')
         || CASE WHEN random() < 0.6 THEN '-' || lpad({_rand_int(0, 9999)}::text, 4, '0') ELSE '' END,
       CASE WHEN i = 10 THEN %(apostrophe_country)s ELSE {_pick("country")} END,
       {_PHONE}, %(reference_ts)s, %(reference_ts)s
FROM generate_series(1, %(n_address)s) AS i""",
    f"""{_insert("counterparty")}
SELECT i,
       CASE WHEN random() < 0.4 THEN {_pick("last")} || ', ' || {_pick("last")} || ' and ' || {_pick("last")}
            ELSE {_pick("last")} || ' ' || {_pick("company")} END,
       {_rand_int(1, "%(n_address)s")},
       {_CONTACT},
       CASE WHEN i = 7 THEN %(apostrophe_contact)s ELSE {_CONTACT} END,
       %(people_ts)s, %(people_ts)s
FROM generate_series(1, %(n_counterparty)s) AS i""",
    f"""{_insert("staff")}
SELECT i, first_name, last_name, department_id,
       lower(first_name) || '.' || lower(last_name) || '@terrifictotes.com', %(people_ts)s, %(people_ts)s
FROM (SELECT i,
             CASE WHEN i = 17 THEN %(apostrophe_first)s ELSE {_pick("first")} END AS first_name,
             CASE WHEN i = 17 THEN %(apostrophe_last)s ELSE {_pick("last")} END AS last_name,
             {_rand_int(1, "%(n_department)s")} AS department_id
      FROM generate_series(1, %(n_staff)s) AS i OFFSET 0) AS s""",
    # Designs: the first ten exist at go-live, the rest appear evenly over the period, each on a
    # working day strictly before the first day an order can use it (see the sales orders below).
    f"""{_insert("design")}
SELECT i, ts, name, {_pick("file_location")},
       lower(name) || '-' || to_char(date '2020-06-01' + {_rand_int(0, 900)}, 'YYYYMMDD')
         || '-' || lower({_rand_code(4)}) || '.json',
       ts
FROM (SELECT i, {_pick("design")} AS name,
             CASE WHEN i <= n0 THEN %(reference_ts)s::timestamp
                  ELSE date_trunc('milliseconds',
                         days[ceil((i - n0)::numeric * cardinality(days) / (%(n_design)s - n0))::int]
                         + {_WORKING_TIME}) END AS ts
      FROM generate_series(1, %(n_design)s) AS i,
           (SELECT {_WEEKDAYS} AS days, least(10, %(n_design)s) AS n0) AS c
      OFFSET 0) AS d""",
    # Sales orders: a random working day k and time; ids follow creation time, like a real serial.
    # An order on day k uses only the designs that exist by then.
    f"""{_insert("sales_order")}
SELECT row_number() OVER (ORDER BY ts, i), ts, ts, design_id, staff_id, counterparty_id, units_sold,
       unit_price, currency_id, delivery, payment, location
FROM (SELECT i, ts,
             1 + floor(random() * (n0 + floor(k::numeric * (%(n_design)s - n0) / cardinality(days))))::int
               AS design_id,
             {_rand_int(1, "%(n_staff)s")} AS staff_id,
             {_rand_int(1, "%(n_counterparty)s")} AS counterparty_id,
             {_rand_int(1001, 99999)} AS units_sold,
             round({_rand_int(200, 400)} / 100.0, 2) AS unit_price,
             {_rand_int(1, "%(n_currency)s")} AS currency_id,
             {_DELIVERY_DATE} AS delivery,
             {_PAYMENT_DATE} AS payment,
             {_rand_int(1, "%(n_address)s")} AS location
      FROM (SELECT i, k, days, n0, {_order_timestamp("days[k + 1] + " + _WORKING_TIME)} AS ts
            FROM (SELECT i, floor(random() * cardinality(days))::int AS k, days, n0
                  FROM generate_series(1, %(n_sales_order)s) AS i,
                       (SELECT {_WEEKDAYS} AS days, least(10, %(n_design)s) AS n0) AS c
                  OFFSET 0) AS a
            OFFSET 0) AS b
      OFFSET 0) AS o""",
    f"""{_insert("purchase_order")}
SELECT row_number() OVER (ORDER BY ts, i), ts, ts, staff_id, counterparty_id, item_code, item_quantity,
       item_unit_price, currency_id, delivery, payment, location
FROM (SELECT i, ts,
             {_rand_int(1, "%(n_staff)s")} AS staff_id,
             {_rand_int(1, "%(n_counterparty)s")} AS counterparty_id,
             {_rand_code(7)} AS item_code,
             {_rand_int(1, 999)} AS item_quantity,
             round({_rand_int(100, 100000)} / 100.0, 2) AS item_unit_price,
             {_rand_int(1, "%(n_currency)s")} AS currency_id,
             {_DELIVERY_DATE} AS delivery,
             {_PAYMENT_DATE} AS payment,
             {_rand_int(1, "%(n_address)s")} AS location
      FROM (SELECT i, {_order_timestamp("days[k + 1] + " + _WORKING_TIME)} AS ts
            FROM (SELECT i, floor(random() * cardinality(days))::int AS k, days
                  FROM generate_series(1, %(n_purchase_order)s) AS i, (SELECT {_WEEKDAYS} AS days) AS c
                  OFFSET 0) AS a
            OFFSET 0) AS b
      OFFSET 0) AS o""",
    # One transaction per order, numbered in creation order across both kinds, as the live system does.
    f"""{_insert("transaction")}
SELECT row_number() OVER (ORDER BY created_at, kind, id),
       CASE kind WHEN 0 THEN 'SALE' ELSE 'PURCHASE' END,
       CASE kind WHEN 0 THEN id END, CASE kind WHEN 1 THEN id END, created_at, created_at
FROM (SELECT 0 AS kind, sales_order_id AS id, created_at FROM sales_order
      UNION ALL SELECT 1, purchase_order_id, created_at FROM purchase_order) AS o""",
    # Fresh statistics, or the planner joins 1.6M rows by nested loops over the empty-table estimates.
    'ANALYZE sales_order, purchase_order, "transaction"',
    # One payment per transaction, same id. The daily batch pays what falls due on a weekday after
    # the day the order was placed (the batch runs at 07:55, before any order of the day).
    f"""{_insert("payment")}
SELECT transaction_id, created_at,
       CASE WHEN paid THEN payment_date::date + %(paid_time)s::time ELSE created_at END,
       transaction_id, counterparty_id, amount, currency_id, payment_type_id, paid, payment_date,
       {_rand_int(10000000, 99999999)}, {_rand_int(10000000, 99999999)}
FROM (SELECT o.*,
             extract(isodow FROM o.payment_date::date) < 6
               AND o.payment_date::date > o.created_at::date
               AND o.payment_date::date <= %(end)s::date AS paid
      FROM (SELECT t.transaction_id, t.created_at, s.counterparty_id, s.units_sold * s.unit_price AS amount,
                   s.currency_id, %(sales_receipt)s AS payment_type_id, s.agreed_payment_date AS payment_date
            FROM "transaction" AS t JOIN sales_order AS s ON s.sales_order_id = t.sales_order_id
            UNION ALL
            SELECT t.transaction_id, t.created_at, p.counterparty_id, p.item_quantity * p.item_unit_price,
                   p.currency_id, %(purchase_payment)s, p.agreed_payment_date
            FROM "transaction" AS t JOIN purchase_order AS p ON p.purchase_order_id = t.purchase_order_id
           ) AS o
      OFFSET 0) AS p""",
]


# --------------------------------------------------------------------------- the live system


def simulate(
    url: str,
    *,
    sales_orders: int = 21,
    purchase_orders: int = 9,
    paid_batch: bool = False,
    edits: int = 0,
    seed: int | None = None,
) -> dict[str, int]:
    """Apply one tick of the changes the live ToteSys makes, in one transaction; return what it did.

    Every row written gets the same timestamp, date_trunc('milliseconds', localtimestamp):
    - `paid_batch`: the daily batch sets paid = true and last_updated on every unpaid payment with
      payment_date <= today (it runs first, as at 07:55, so the orders placed below stay unpaid);
    - new sales and purchase orders, each with its transaction and its payment of quantity x price;
    - `edits` updates of existing rows: a sales order's quantity and delivery date (its unpaid payment
      is re-priced to match), an address's phone, a design's name, a staff email, a department's
      location or a counterparty's contact.
    `seed` makes the generated values reproducible. Returns e.g. {"sales_order": 21,
    "purchase_order": 9, "transaction": 30, "payment": 30, "paid": 57, "edited": 3}.
    """
    for name, value in (
        ("sales_orders", sales_orders),
        ("purchase_orders", purchase_orders),
        ("edits", edits),
    ):
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    rng = random.Random(seed)  # noqa: S311 - picks which kind of edit, not a secret
    with _connect(url) as conn:
        _require_tables(conn)
        if seed is not None:
            conn.execute("SELECT setseed(%s)", (_seed_fraction(seed),))
        row = conn.execute("SELECT date_trunc('milliseconds', localtimestamp)").fetchone()
        assert row is not None
        params: dict[str, Any] = {**_WORDS, "now": row[0], **_payment_type_ids(conn)}
        paid = conn.execute(_PAID_BATCH_SQL, params).rowcount if paid_batch else 0
        made = {"sales_order": 0, "purchase_order": 0}
        for kind, n in (("sales_order", sales_orders), ("purchase_order", purchase_orders)):
            if n:
                _require_reference_rows(conn, kind)
                made[kind] = len(conn.execute(_NEW_ORDERS_SQL[kind], {**params, "n": n}).fetchall())
        edited = sum(_edit(conn, rng.choice(list(_EDITS)), params) for _ in range(edits))
    orders = made["sales_order"] + made["purchase_order"]
    return {**made, "transaction": orders, "payment": orders, "paid": paid, "edited": edited}


def _payment_type_ids(conn: psycopg.Connection[Any]) -> dict[str, int]:
    ids = dict(conn.execute("SELECT payment_type_name, payment_type_id FROM payment_type").fetchall())
    missing = [name for name in ("SALES_RECEIPT", "PURCHASE_PAYMENT") if name not in ids]
    if missing:
        raise TotesysError(f"payment_type has no {', '.join(missing)}: seed ToteSys before simulating")
    return {"sales_receipt": ids["SALES_RECEIPT"], "purchase_payment": ids["PURCHASE_PAYMENT"]}


def _require_reference_rows(conn: psycopg.Connection[Any], kind: str) -> None:
    table = SOURCE_TABLES[kind]
    empty = [ref for ref in dict.fromkeys(table.foreign_keys.values()) if _count(conn, ref) == 0]
    if empty:
        raise TotesysError(
            f"cannot create a {kind}: table(s) {', '.join(empty)} are empty; seed ToteSys first"
        )


_PAID_BATCH_SQL = """
UPDATE payment SET paid = true, last_updated = %(now)s
WHERE NOT paid AND payment_date <= to_char(%(now)s::date, 'YYYY-MM-DD')"""


def _random_id(table: str, per_row: str | None = None) -> str:
    """SQL for the id of a random existing row (uniform over the id range, then the next id present).

    `per_row` names a column of the outer query: referencing it makes PostgreSQL draw a new id for
    every row instead of evaluating the subquery once for the whole statement.
    """
    pk = SOURCE_TABLES[table].primary_key
    correlate = f" WHERE {per_row} IS NOT NULL" if per_row else ""
    return f"""(SELECT {pk} FROM {table}
   WHERE {pk} >= (SELECT min({pk}) + floor(random() * (max({pk}) - min({pk}) + 1))::int
                  FROM {table}{correlate})
   ORDER BY {pk} LIMIT 1)"""


def _new_orders_sql(kind: str) -> str:
    """New orders (one statement) with their transactions and payments, amount = quantity x price."""
    ts = "%(now)s::timestamp"
    if kind == "sales_order":
        values = f"""{_random_id("design", "i")}, {_random_id("staff", "i")},
       {_random_id("counterparty", "i")}, {_rand_int(1001, 99999)}, round({_rand_int(200, 400)} / 100.0, 2)"""
        amount, tx_type, payment_type = "units_sold * unit_price", "SALE", "%(sales_receipt)s"
    else:
        values = f"""{_random_id("staff", "i")}, {_random_id("counterparty", "i")},
       {_rand_code(7)}, {_rand_int(1, 999)}, round({_rand_int(100, 100000)} / 100.0, 2)"""
        amount, tx_type, payment_type = "item_quantity * item_unit_price", "PURCHASE", "%(purchase_payment)s"
    pk = SOURCE_TABLES[kind].primary_key
    return f"""
WITH new_order AS (
{_insert(kind, skip_primary_key=True)}
SELECT {ts}, {ts}, {values}, {_random_id("currency", "i")},
       {_DELIVERY_DATE.replace("ts +", f"{ts} +")}, {_PAYMENT_DATE.replace("ts +", f"{ts} +")},
       {_random_id("address", "i")}
FROM generate_series(1, %(n)s) AS i
RETURNING {pk}, counterparty_id, {amount} AS amount, currency_id, agreed_payment_date
), new_transaction AS (
INSERT INTO "transaction" (transaction_type, {pk}, created_at, last_updated)
SELECT '{tx_type}', {pk}, {ts}, {ts} FROM new_order ORDER BY {pk}
RETURNING transaction_id, {pk}
)
{_insert("payment", skip_primary_key=True)}
SELECT {ts}, {ts}, t.transaction_id, o.counterparty_id, o.amount, o.currency_id, {payment_type}, false,
       o.agreed_payment_date, {_rand_int(10000000, 99999999)}, {_rand_int(10000000, 99999999)}
FROM new_transaction AS t JOIN new_order AS o USING ({pk})
ORDER BY t.transaction_id
RETURNING payment_id"""


_NEW_ORDERS_SQL = {kind: _new_orders_sql(kind) for kind in ("sales_order", "purchase_order")}

# Each edit changes at least one value of one random row and sets its last_updated; RETURNING tells
# whether there was a row to edit. The first variant that edits a row counts.
_EDITS: dict[str, list[str]] = {
    "sales_order": [
        # An order amended before it is paid: new quantity and delivery date, payment re-priced.
        f"""
WITH target AS (
    SELECT s.sales_order_id, p.payment_id FROM payment AS p
    JOIN "transaction" AS t USING (transaction_id)
    JOIN sales_order AS s USING (sales_order_id)
    WHERE NOT p.paid AND p.payment_id >= (SELECT floor(random() * (max(payment_id) + 1))::int FROM payment)
    ORDER BY p.payment_id LIMIT 1
), amended AS (
    UPDATE sales_order AS s
    SET units_sold = CASE WHEN s.units_sold < 99999 THEN s.units_sold + {_rand_int(1, 500)}
                          ELSE s.units_sold - 1 END,
        agreed_delivery_date = to_char(s.agreed_delivery_date::date + {_rand_int(1, 7)}, 'YYYY-MM-DD'),
        last_updated = %(now)s
    FROM target WHERE s.sales_order_id = target.sales_order_id
    RETURNING s.sales_order_id, s.units_sold * s.unit_price AS amount
)
UPDATE payment AS p SET payment_amount = amended.amount, last_updated = %(now)s
FROM amended, target WHERE p.payment_id = target.payment_id
RETURNING p.payment_id""",
        # No unpaid sales order to amend: move a delivery date instead.
        f"""
UPDATE sales_order
SET agreed_delivery_date = to_char(agreed_delivery_date::date + {_rand_int(1, 7)}, 'YYYY-MM-DD'),
    last_updated = %(now)s
WHERE sales_order_id = {_random_id("sales_order")}
RETURNING sales_order_id""",
    ],
    "address": [
        f"""
UPDATE address SET phone = {_PHONE}, last_updated = %(now)s
WHERE address_id = {_random_id("address")} RETURNING address_id""",
    ],
    "design": [
        f"""
UPDATE design SET last_updated = %(now)s, design_name = coalesce(
    (SELECT w FROM unnest(%(design)s::text[]) AS w WHERE w <> design.design_name ORDER BY random() LIMIT 1),
    design_name || ' II')
WHERE design_id = {_random_id("design")} RETURNING design_id""",
    ],
    "staff": [
        f"""
UPDATE staff SET last_updated = %(now)s,  -- a new mailbox number, always different from the last one
    email_address = lower(first_name) || '.' || lower(last_name)
        || (coalesce(substring(email_address FROM '([0-9]+)@'), '0')::int + {_rand_int(1, 9)})
        || '@terrifictotes.com'
WHERE staff_id = {_random_id("staff")} RETURNING staff_id""",
    ],
    "department": [
        f"""
UPDATE department SET last_updated = %(now)s, location = (
    SELECT w FROM unnest(%(location)s::text[]) AS w
    WHERE w IS DISTINCT FROM department.location ORDER BY random() LIMIT 1)
WHERE department_id = {_random_id("department")} RETURNING department_id""",
    ],
    "counterparty": [
        f"""
UPDATE counterparty SET
    commercial_contact = CASE WHEN NOT toss THEN commercial_contact
        WHEN new_contact IS DISTINCT FROM commercial_contact THEN new_contact ELSE new_contact || ' II' END,
    delivery_contact = CASE WHEN toss THEN delivery_contact
        WHEN new_contact IS DISTINCT FROM delivery_contact THEN new_contact ELSE new_contact || ' II' END,
    last_updated = %(now)s
FROM (SELECT random() < 0.5 AS toss, {_CONTACT} AS new_contact) AS c
WHERE counterparty_id = {_random_id("counterparty")} RETURNING counterparty_id""",
    ],
}


def _edit(conn: psycopg.Connection[Any], kind: str, params: dict[str, Any]) -> int:
    """Run the first variant of an edit that finds a row; 1 if a row was edited, else 0."""
    for statement in _EDITS[kind]:
        if conn.execute(statement, params).fetchall():
            return 1
    return 0
