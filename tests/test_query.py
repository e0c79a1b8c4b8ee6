"""`totes query` over the lake with DuckDB (shared/local/query.py): the published tables by name,
the Athena saved queries run locally, each equal to the same question asked of the warehouse
(PostgreSQL) after one pipeline run, and an answer in well under a second."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

from shared.config import ConfigError, Settings
from shared.contract.star import STAR_SCHEMAS
from shared.local import query

REPO = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------- dialect, unit level


def test_trino_date_add_becomes_duckdb_interval_arithmetic() -> None:
    sql = "WHERE l.created_date >= date_add('month', -12, current_date) AND x < date_add('day', 3, d.day)"
    assert query.athena_to_duckdb(sql) == (
        "WHERE l.created_date >= CAST(current_date + INTERVAL (-12) MONTH AS DATE) "
        "AND x < CAST(d.day + INTERVAL (3) DAY AS DATE)"
    )
    con = duckdb.connect()
    translated = query.athena_to_duckdb("SELECT date_add('month', -12, DATE '2024-03-31')")
    assert con.execute(translated).fetchone() == (date(2023, 3, 31),)


def test_as_of_stands_for_current_date() -> None:
    sql = "WHERE year >= year(current_date) - 1 AND d >= date_add('month', -12, CURRENT_DATE)"
    fixed = query.with_as_of(sql, date(2024, 11, 15))
    assert (
        fixed
        == "WHERE year >= year(DATE '2024-11-15') - 1 AND d >= date_add('month', -12, DATE '2024-11-15')"
    )
    assert query.with_as_of(sql, None) == sql


def test_every_saved_query_is_a_named_query_of_the_stack_with_a_description() -> None:
    names = set(query.saved_queries())
    athena_tf = (REPO / "terraform" / "athena.tf").read_text(encoding="utf-8")
    assert len(names) >= 5
    for name in names:
        assert f'file("${{path.module}}/queries/{name}.sql")' in athena_tf
        assert query.description(query.saved_query(name))
    with pytest.raises(ConfigError, match="no saved query 'nope': expected one of monthly-sales"):
        query.saved_query("nope")


def test_render_looks_like_spark_show() -> None:
    result = query.Result(["n", "name"], [(1, "a"), (22, None), (3, "c")], 0.0123)
    assert query.render(result, limit=2).splitlines() == [
        "+--+----+",
        "|n |name|",
        "+--+----+",
        "|1 |a   |",
        "|22|NULL|",
        "+--+----+",
        "only showing top 2 rows",
        "(3 rows in 12 ms, DuckDB)",
    ]


def test_views_over_a_published_pointer(tmp_path) -> None:
    """A lake made by hand: a dimension version folder, a hive-partitioned fact with files of two
    schemas (a column added later), and a fact with no file yet."""
    processed = tmp_path / "lake" / "processed"
    con = duckdb.connect()
    dim = processed / "dim_currency" / "version-r1"
    dim.mkdir(parents=True)
    con.execute(f"COPY (SELECT 1 AS currency_id, 'GBP' AS currency_code) TO '{dim}/part-0.parquet'")
    fact = processed / "fact_payment"
    old = fact / "created_year=2024" / "created_month=1"
    new = fact / "created_year=2024" / "created_month=2"
    old.mkdir(parents=True)
    new.mkdir(parents=True)
    con.execute(f"COPY (SELECT 1 AS payment_id) TO '{old}/part-0.parquet'")
    con.execute(f"COPY (SELECT 2 AS payment_id, true AS paid) TO '{new}/part-0.parquet'")
    (fact / "_compaction" / "r2").mkdir(parents=True)  # a staging folder is never read
    con.execute(f"COPY (SELECT 99 AS payment_id) TO '{fact}/_compaction/r2/part-0.parquet'")
    (processed / "fact_sales_order").mkdir()
    pointer = {
        "run_id": "r1",
        "extract_runs": [],
        "tables": {
            "dim_currency": {"location": str(dim), "changed_run": "r1", "kind": "dimension"},
            "fact_payment": {"location": str(fact), "changed_run": "r1", "kind": "fact"},
            "fact_sales_order": {
                "location": str(processed / "fact_sales_order"),
                "changed_run": "r1",
                "kind": "fact",
                "columns": ["sales_order_id", "units_sold"],
            },
        },
    }
    (processed / "_current.json").write_text(json.dumps(pointer), encoding="utf-8")
    settings = Settings(lake_root=str(tmp_path / "lake"))
    rows = query.run_sql(
        settings, "SELECT payment_id, paid, created_year, created_month FROM fact_payment ORDER BY 1"
    ).rows
    assert rows == [(1, None, 2024, 1), (2, True, 2024, 2)]
    assert query.run_sql(settings, "SELECT * FROM dim_currency").rows == [(1, "GBP")]
    empty = query.run_sql(settings, "SELECT * FROM fact_sales_order")
    assert (empty.columns, empty.rows) == (["sales_order_id", "units_sold"], [])
    with pytest.raises(ConfigError, match="DuckDB: .*fact_nope"):
        query.run_sql(settings, "SELECT * FROM fact_nope")


def test_a_lake_with_nothing_published_says_so(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"nothing published at .*_current.json yet: run `totes run` first"):
        query.run_sql(Settings(lake_root=str(tmp_path)), "SELECT 1")


# --------------------------------------------------------------------------- against the warehouse

LATEST = """
    SELECT f.*, row_number() OVER (
             PARTITION BY f.{id} ORDER BY f.last_updated_date DESC, f.last_updated_time DESC
           ) AS version_rank
    FROM {fact} f
"""

# The same questions as terraform/queries/*.sql, written for the warehouse: PostgreSQL, and facts
# without the lake's partition columns (created_year/created_month are the created_date's).
WAREHOUSE_SQL = {
    "monthly-sales-by-currency": f"""
        WITH latest AS ({LATEST.format(id="sales_order_id", fact="fact_sales_order")}
                        WHERE extract(year FROM f.created_date) >= extract(year FROM %(as_of)s::date) - 1)
        SELECT extract(year FROM l.created_date)::int, extract(month FROM l.created_date)::int,
               c.currency_code, sum(l.units_sold * l.unit_price), sum(l.units_sold), count(*)
        FROM latest l JOIN dim_currency c ON c.currency_id = l.currency_id
        WHERE l.version_rank = 1 GROUP BY 1, 2, 3""",
    "top-designs-by-units-sold": f"""
        WITH latest AS ({LATEST.format(id="sales_order_id", fact="fact_sales_order")})
        SELECT d.design_id, d.design_name, sum(l.units_sold), count(*)
        FROM latest l JOIN dim_design d ON d.design_id = l.design_id
        WHERE l.version_rank = 1 AND l.created_date >= %(as_of)s::date - interval '12 months'
        GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 20""",
    "sales-by-staff-and-department": f"""
        WITH latest AS ({LATEST.format(id="sales_order_id", fact="fact_sales_order")}
                        WHERE extract(year FROM f.created_date) = extract(year FROM %(as_of)s::date))
        SELECT s.department_name, s.staff_id, s.first_name, s.last_name, c.currency_code,
               sum(l.units_sold * l.unit_price), count(*)
        FROM latest l JOIN dim_staff s ON s.staff_id = l.sales_staff_id
        JOIN dim_currency c ON c.currency_id = l.currency_id
        WHERE l.version_rank = 1 GROUP BY 1, 2, 3, 4, 5""",
    "payments-outstanding-by-counterparty": f"""
        WITH latest AS ({LATEST.format(id="payment_id", fact="fact_payment")})
        SELECT cp.counterparty_id, cp.counterparty_legal_name, c.currency_code,
               sum(l.payment_amount), count(*), min(l.payment_date)
        FROM latest l JOIN dim_counterparty cp ON cp.counterparty_id = l.counterparty_id
        JOIN dim_currency c ON c.currency_id = l.currency_id
        WHERE l.version_rank = 1 AND NOT l.paid GROUP BY 1, 2, 3""",
    "purchase-spend-by-counterparty": f"""
        WITH latest AS ({LATEST.format(id="purchase_order_id", fact="fact_purchase_order")}
                        WHERE extract(year FROM f.created_date) >= extract(year FROM %(as_of)s::date) - 1)
        SELECT extract(year FROM l.created_date)::int, cp.counterparty_legal_name, c.currency_code,
               sum(l.item_quantity * l.item_unit_price), count(*)
        FROM latest l JOIN dim_counterparty cp ON cp.counterparty_id = l.counterparty_id
        JOIN dim_currency c ON c.currency_id = l.currency_id
        WHERE l.version_rank = 1 GROUP BY 1, 2, 3""",
}


def normalised(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows in a stable order, numbers as Decimal (DuckDB and PostgreSQL type sums differently)."""
    out = []
    for row in rows:
        out.append(
            tuple(
                Decimal(v).normalize() if isinstance(v, int | Decimal) and not isinstance(v, bool) else v
                for v in row
            )
        )
    return sorted(out, key=repr)


@pytest.fixture(scope="module")
def as_of(clean_run) -> date:
    """The day after the newest order: "this year" and "the last 12 months" then hold data."""
    with psycopg.connect(clean_run.settings.require_warehouse().conninfo) as conn:
        row = conn.execute("SELECT max(created_date) FROM fact_sales_order").fetchone()
    assert row and row[0]
    return row[0] + timedelta(days=1)


@pytest.mark.integration
def test_every_published_table_holds_what_the_warehouse_holds(clean_run) -> None:
    settings = clean_run.settings
    con = query.connect(settings)
    with psycopg.connect(settings.require_warehouse().conninfo) as conn:
        for table, schema in STAR_SCHEMAS.items():
            columns = ", ".join(f'"{f.name}"' for f in schema.fields if not f.name.endswith("_time"))
            lake = query.run_sql(settings, f"SELECT {columns} FROM {table}", con).rows
            warehouse = conn.execute(f"SELECT {columns} FROM {table}").fetchall()
            assert normalised(lake) == normalised(warehouse), table
            assert lake, table


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(query.saved_queries()))
def test_each_saved_query_answers_as_the_warehouse_does(clean_run, as_of, name: str) -> None:
    settings = clean_run.settings
    lake = query.run_saved(settings, name, as_of=as_of)
    with psycopg.connect(settings.require_warehouse().conninfo) as conn:
        warehouse = conn.execute(WAREHOUSE_SQL[name], {"as_of": as_of}).fetchall()
    assert lake.rows, f"{name} as of {as_of} found nothing: the comparison would prove nothing"
    assert normalised(lake.rows) == normalised(warehouse)


@pytest.mark.integration
def test_an_answer_in_well_under_a_second(clean_run) -> None:
    settings = clean_run.settings
    query.run_sql(settings, "SELECT 1")  # DuckDB's first use in this process
    times = []
    for _ in range(3):
        result = query.run_saved(settings, "monthly-sales-by-currency", as_of=date(2024, 11, 14))
        times.append(result.seconds)
    assert statistics.median(times) < 1.0, times


@pytest.mark.integration
def test_the_cli_prints_the_saved_query_and_counts(clean_run, as_of) -> None:
    settings = clean_run.settings
    env_args = ["--lake-root", settings.lake_root]
    started = time.monotonic()
    listed = subprocess.run(
        [sys.executable, "-m", "shared.local.cli", "query", "--list-saved", *env_args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    assert {line.split()[0] for line in listed.stdout.splitlines()} == set(query.saved_queries())
    saved = subprocess.run(
        [
            sys.executable,
            "-m",
            "shared.local.cli",
            "query",
            "--saved",
            "payments-outstanding-by-counterparty",
            "--as-of",
            as_of.isoformat(),
            *env_args,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert saved.returncode == 0, saved.stderr
    expected = query.run_saved(settings, "payments-outstanding-by-counterparty", as_of=as_of)
    assert f"({len(expected.rows)} rows in " in saved.stdout
    assert [c.strip() for c in saved.stdout.splitlines()[1].split("|")[1:-1]] == expected.columns
    assert saved.stderr == ""
    assert time.monotonic() - started < 60
    wrong = subprocess.run(
        [sys.executable, "-m", "shared.local.cli", "query", "--saved", "x", "--engine", "spark", *env_args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert wrong.returncode == 2 and "run on the DuckDB engine" in wrong.stderr
