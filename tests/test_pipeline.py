"""The three jobs for real: the ToteSys snapshot in embedded PostgreSQL -> a temporary lake -> the warehouse.

One module-scoped scenario, checked step by step:
1. a first run over the real snapshot fills all 11 warehouse tables with exactly what SPEC.md says:
   every row equal to the star computed from ToteSys with plain SQL (tests/expected_star.py, no
   pipeline code), every column of the type SPEC gives it;
2. a second run with no source change changes nothing, in the warehouse or the processed zone;
3. after live-like changes (new orders, the paid batch, edits), one more run adds exactly one fact
   row per new version and updates dimensions in place.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import expected_star
import psycopg
import pytest

from shared.config import Settings, parse_pg_url
from shared.contract.star import FACT_TABLES, FACT_VERSION_KEYS
from shared.jdbc import sources
from shared.lake.documents import Published, read_document
from shared.lake.layout import LakeLayout
from shared.lake.storage import storage_for
from shared.local import totesys
from shared.local.workflow import run_workflow

pytestmark = pytest.mark.integration


def rows(url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def warehouse_fingerprint(url: str) -> dict[str, str]:
    """A hash of every warehouse table's full content, surrogate keys included."""
    out = {}
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in sorted(tables):
            content = conn.execute(f'SELECT * FROM "{table}" ORDER BY 1').fetchall()
            out[table] = hashlib.sha256(repr(content).encode()).hexdigest()
    return out


def lake_listing(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "_state" not in p.parts
    )


class Scenario:
    def __init__(self, spark, pg, tmp: Path, snapshot: Path) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.source_db, self.warehouse_db = f"totesys_{suffix}", f"warehouse_{suffix}"
        pg.create_database(self.source_db)
        pg.create_database(self.warehouse_db)
        self.admin_url = pg.url(self.source_db)
        self.warehouse_url = pg.url(self.warehouse_db)
        totesys.create_schema(self.admin_url)
        totesys.seed_from_parquet(self.admin_url, snapshot)
        self.lake = tmp / "lake"
        self.settings = Settings(
            lake_root=str(self.lake),
            totesys=parse_pg_url("TOTESYS_URL", pg.url(self.source_db, user="totesys_reader")),
            warehouse=parse_pg_url("WAREHOUSE_URL", self.warehouse_url),
            catalog_database=f"totes_{suffix}",
        )
        self.spark = spark
        # What the warehouse must hold after the live-like changes (set by `changed_run`).
        self.expected_after_changes: dict[str, list[tuple[Any, ...]]] = {}

    def run(self):
        return {r.job: r for r in run_workflow(self.spark, self.settings)}


@pytest.fixture(scope="module")
def scenario(spark, pg, tmp_path_factory) -> Scenario:
    from tests.conftest import SNAPSHOT

    assert SNAPSHOT.is_dir(), f"real ToteSys snapshot not found at {SNAPSHOT}"
    return Scenario(spark, pg, tmp_path_factory.mktemp("pipeline"), SNAPSHOT)


@pytest.fixture(scope="module")
def first_run(scenario):
    return scenario.run()


SPEC_SIZES = {
    "dim_staff": 20,
    "dim_location": 30,
    "dim_currency": 3,
    "dim_design": 473,
    "dim_counterparty": 20,
    "dim_payment_type": 4,
    "dim_transaction": 15836,
    "fact_sales_order": 11187,
    "fact_purchase_order": 4649,
    "fact_payment": 15836,
}


def test_first_run_fills_every_table_with_the_snapshot(scenario, first_run) -> None:
    assert [r.status for r in first_run.values()] == ["SUCCEEDED"] * 3
    for table, expected in SPEC_SIZES.items():
        assert rows(scenario.warehouse_url, f'SELECT count(*) FROM "{table}"')[0][0] == expected, table
    assert first_run["extract"].tables["payment"].read == 15836
    assert sum(s.quarantined for s in first_run["transform"].tables.values()) == 0
    # Every value of every table: the star SPEC.md section 3 derives from the snapshot, by plain SQL.
    expected = expected_star.source_star(scenario.admin_url)
    loaded = expected_star.warehouse_star(scenario.warehouse_url)
    assert set(loaded) == set(expected) and len(expected) == 11
    for table in expected:
        assert len(loaded[table]) == len(expected[table]), table
        assert loaded[table] == expected[table], table


def test_dim_date_is_a_complete_calendar_covering_every_fact_date(scenario, first_run) -> None:
    ((lo, hi, n, bad_dow),) = rows(
        scenario.warehouse_url,
        "SELECT min(date_id), max(date_id), count(*), "
        "count(*) FILTER (WHERE day_of_week <> extract(isodow FROM date_id)) FROM dim_date",
    )
    assert n == (hi - lo).days + 1 and bad_dow == 0
    # Every date column of every fact, as the warehouse has them (SPEC: the four fact dates, and
    # the split timestamps' dates).
    date_columns = rows(
        scenario.warehouse_url,
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name LIKE 'fact\\_%%' AND data_type = 'date' ORDER BY 1, 2",
    )
    assert sorted(date_columns) == sorted(
        (fact, column) for fact, columns in expected_star.FACT_DATES.items() for column in columns
    )
    every_date = " UNION ".join(f'SELECT "{column}" AS d FROM "{fact}"' for fact, column in date_columns)
    uncovered = rows(
        scenario.warehouse_url,
        f"SELECT d FROM ({every_date}) x WHERE d NOT IN (SELECT date_id FROM dim_date)",
    )
    assert uncovered == []
    assert rows(
        scenario.warehouse_url,
        "SELECT day_name, month_name, quarter FROM dim_date WHERE date_id = '2024-02-29'",
    ) == [("Thursday", "February", 1)]


def test_sales_facts_equal_the_source_row_for_row(scenario, first_run) -> None:
    source = rows(
        scenario.admin_url,
        """SELECT sales_order_id, created_at::date, created_at::time(3), last_updated::date, last_updated::time(3),
                  staff_id, counterparty_id, units_sold, unit_price, currency_id, design_id,
                  agreed_payment_date::date, agreed_delivery_date::date, agreed_delivery_location_id
           FROM sales_order ORDER BY sales_order_id""",
    )
    target = rows(
        scenario.warehouse_url,
        """SELECT sales_order_id, created_date, created_time, last_updated_date, last_updated_time,
                  sales_staff_id, counterparty_id, units_sold, unit_price, currency_id, design_id,
                  agreed_payment_date, agreed_delivery_date, agreed_delivery_location_id
           FROM fact_sales_order ORDER BY sales_order_id""",
    )
    assert len(source) == len(target) == 11187
    assert source == target


def test_payment_facts_and_dimensions_hold_source_values(scenario, first_run) -> None:
    source = rows(
        scenario.admin_url,
        "SELECT payment_id, transaction_id, counterparty_id, payment_amount, currency_id, payment_type_id, paid, "
        "payment_date::date, last_updated FROM payment ORDER BY payment_id",
    )
    target = rows(
        scenario.warehouse_url,
        "SELECT payment_id, transaction_id, counterparty_id, payment_amount, currency_id, payment_type_id, paid, "
        "payment_date, last_updated_date + last_updated_time FROM fact_payment ORDER BY payment_id",
    )
    assert source == target
    assert rows(
        scenario.warehouse_url, "SELECT currency_code, currency_name FROM dim_currency ORDER BY 1"
    ) == [
        ("EUR", "Euro"),
        ("GBP", "Pound Sterling"),
        ("USD", "US Dollar"),
    ]
    staff = rows(
        scenario.admin_url,
        "SELECT s.staff_id, first_name, last_name, department_name, location, email_address "
        "FROM staff s JOIN department d USING (department_id) ORDER BY 1",
    )
    assert rows(scenario.warehouse_url, "SELECT * FROM dim_staff ORDER BY 1") == staff
    counterparty = rows(
        scenario.admin_url,
        "SELECT counterparty_id, counterparty_legal_name, address_line_1, address_line_2, district, city, "
        "postal_code, country, phone FROM counterparty c JOIN address a ON a.address_id = c.legal_address_id ORDER BY 1",
    )
    assert rows(scenario.warehouse_url, "SELECT * FROM dim_counterparty ORDER BY 1") == counterparty


def test_processed_tables_are_queryable_by_name_in_the_catalog(scenario, first_run) -> None:
    spark = scenario.spark
    db = scenario.settings.catalog_database
    total = spark.sql(f"SELECT count(*) AS n FROM {db}.fact_sales_order").first()["n"]
    assert total == 11187
    pruned = spark.sql(
        f"SELECT count(*) AS n FROM {db}.fact_sales_order WHERE created_year = 2023 AND created_month = 6"
    )
    plan = pruned._jdf.queryExecution().executedPlan().toString()
    assert "PartitionFilters: [isnotnull(created_year" in plan
    by_sql = rows(
        scenario.admin_url,
        "SELECT count(*) FROM sales_order WHERE created_at >= '2023-06-01' AND created_at < '2023-07-01'",
    )[0][0]
    assert pruned.first()["n"] == by_sql
    assert {r.tableName for r in spark.sql(f"SHOW TABLES IN {db}").collect()} >= set(SPEC_SIZES) | {
        "dim_date"
    }


@pytest.fixture(scope="module")
def second_run(scenario, first_run):
    before = (warehouse_fingerprint(scenario.warehouse_url), lake_listing(scenario.lake))
    opened: list[str] = []  # the settings of the driver's own JDBC connections (no Spark read runs)
    connect = sources.jdbc_connection

    def counted(spark, url, *args, **kwargs):
        opened.append(url.setting)
        return connect(spark, url, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sources, "jdbc_connection", counted)
        reports = scenario.run()
    after = (warehouse_fingerprint(scenario.warehouse_url), lake_listing(scenario.lake))
    return before, after, reports, opened


def test_a_second_run_with_no_change_changes_nothing(second_run) -> None:
    (wh_before, lake_before), (wh_after, lake_after), reports, opened = second_run
    assert [r.status for r in reports.values()] == ["SUCCEEDED"] * 3
    # Two connections to ToteSys: the reachability check and the one all 11 no-change probes share.
    assert opened.count("TOTESYS_URL") == 2, opened
    assert wh_after == wh_before
    assert lake_after == lake_before
    assert all(s.read == 0 for s in reports["extract"].tables.values())


@pytest.fixture(scope="module")
def changed_run(scenario, second_run):
    admin = scenario.admin_url
    before = {t: rows(scenario.warehouse_url, f'SELECT count(*) FROM "{t}"')[0][0] for t in SPEC_SIZES}
    expectation = expected_star.Expectation(admin)  # the source as the first two runs read it
    unpaid_due = rows(
        admin, "SELECT count(*) FROM payment WHERE NOT paid AND payment_date::date <= current_date"
    )[0][0]
    done = totesys.simulate(admin, sales_orders=21, purchase_orders=9, paid_batch=True, edits=0, seed=7)
    # Edits, made here so the test knows exactly which versions exist: one sales order changed twice
    # between runs (one new version), a department renamed: five staff rows change in dim_staff.
    with psycopg.connect(admin) as conn:
        for units in (5, 6):
            conn.execute(
                "UPDATE sales_order SET units_sold = %s, last_updated = date_trunc('milliseconds', localtimestamp) "
                "WHERE sales_order_id = 2",
                [units],
            )
        conn.execute(
            "UPDATE department SET department_name = 'Purchasing & Logistics', "
            "last_updated = date_trunc('milliseconds', localtimestamp) WHERE department_id = 2"
        )
    # Every month this run appends to already holds a file: compact them all (normally above 32).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("shared.jobs.transform.COMPACT_ABOVE_FILES", 1)
        reports = scenario.run()
    after = {t: rows(scenario.warehouse_url, f'SELECT count(*) FROM "{t}"')[0][0] for t in SPEC_SIZES}
    scenario.expected_after_changes = expectation.seen(admin).star
    return before, after, done, unpaid_due, reports


def test_changes_add_one_fact_per_new_version_and_update_dimensions_in_place(scenario, changed_run) -> None:
    before, after, done, unpaid_due, reports = changed_run
    assert done["paid"] == unpaid_due
    assert after["fact_sales_order"] - before["fact_sales_order"] == 21 + 1  # new orders + one edited order
    assert after["fact_purchase_order"] - before["fact_purchase_order"] == 9
    assert after["fact_payment"] - before["fact_payment"] == 30 + unpaid_due
    assert after["dim_transaction"] - before["dim_transaction"] == 30
    assert after["dim_staff"] == before["dim_staff"]
    versions = rows(
        scenario.warehouse_url,
        "SELECT units_sold FROM fact_sales_order WHERE sales_order_id = 2 ORDER BY last_updated_date, last_updated_time",
    )
    assert versions == [(42972,), (6,)]  # the original, then only the latest of two changes
    renamed = rows(
        scenario.warehouse_url,
        "SELECT count(*) FROM dim_staff WHERE department_name = 'Purchasing & Logistics'",
    )[0][0]
    in_department = rows(scenario.admin_url, "SELECT count(*) FROM staff WHERE department_id = 2")[0][0]
    assert renamed == in_department == 5
    orphans = rows(
        scenario.warehouse_url,
        "SELECT count(*) FROM fact_payment f LEFT JOIN dim_date d ON d.date_id = f.last_updated_date WHERE d.date_id IS NULL",
    )[0][0]
    assert orphans == 0


def test_after_changes_the_catalog_reads_the_rebuilt_dimensions_new_versions(scenario, changed_run) -> None:
    """A dimension the run rebuilt is moved to its new version in the catalog (with unchanged columns
    only its location is set, no DESCRIBE first): a query by name sees the renamed department."""
    spark, db = scenario.spark, scenario.settings.catalog_database
    layout = LakeLayout.of(scenario.settings)
    published = read_document(storage_for(layout.processed), layout.published, Published)
    assert published is not None
    for dim in ("dim_staff", "dim_transaction"):
        described = spark.sql(f"DESCRIBE TABLE EXTENDED {db}.{dim}").where("col_name = 'Location'").first()
        entry = published.tables[dim]
        assert entry.changed_run == published.run_id  # rebuilt by the last run
        assert described["data_type"].removeprefix("file:").rstrip("/") == entry.location.rstrip("/")
    renamed = spark.sql(
        f"SELECT count(*) AS n FROM {db}.dim_staff WHERE department_name = 'Purchasing & Logistics'"
    ).first()["n"]
    assert renamed == 5


def test_after_changes_the_warehouse_holds_every_version_and_the_latest_dimensions(
    scenario, changed_run
) -> None:
    """The whole warehouse after the incremental run, against the star SPEC.md derives from the two
    states of the source the runs read: the facts of both, the dimensions of the latest."""
    assert expected_star.warehouse_star(scenario.warehouse_url) == scenario.expected_after_changes


def test_types_of_the_warehouse_match_the_spec(scenario, first_run) -> None:
    (row,) = rows(
        scenario.warehouse_url,
        "SELECT created_date, created_time, unit_price, agreed_payment_date FROM fact_sales_order WHERE sales_order_id = 3",
    )
    assert isinstance(row[0], date) and isinstance(row[1], time) and isinstance(row[2], Decimal)
    assert row[2] == Decimal("2.91") and row[3] == date(2022, 11, 7)
    assert not isinstance(row[0], datetime)
    types = dict(
        rows(
            scenario.warehouse_url,
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'fact_sales_order'",
        )
    )
    assert types["sales_record_id"] == "integer" and types["created_time"].startswith("time")
    assert types["unit_price"] == "numeric"
    # Every column of every table, exactly as SPEC.md section 3 types it (format_type: numeric(10,2),
    # time(3) for the milliseconds), with its nullability, in SPEC order.
    assert expected_star.warehouse_types(scenario.warehouse_url) == expected_star.SPEC_COLUMNS
    serials = rows(
        scenario.warehouse_url,
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND column_default LIKE 'nextval(%%' ORDER BY 1",
    )
    assert serials == sorted(expected_star.RECORD_IDS.items())


def test_months_a_run_appends_to_are_compacted_without_losing_or_doubling_a_version(
    scenario, changed_run
) -> None:
    reports = changed_run[-1]
    compacted = {t: s.compacted_files for t, s in reports["transform"].tables.items() if s.compacted_files}
    # The edited sales order and the paid batch add versions to months of 2022-2024; the new orders
    # (purchase orders included) open this month's partition, one file, nothing to compact.
    assert set(compacted) == {"fact_sales_order", "fact_payment"}
    lake = scenario.spark.read
    for fact in FACT_TABLES:
        location = scenario.lake / "processed" / fact
        files = [p for p in location.glob("created_year=*/created_month=*/*.parquet")]
        assert all(len(list(p.parent.glob("*.parquet"))) == 1 for p in files), fact  # one file a month
        table = lake.parquet(str(location))
        versions = table.select(*FACT_VERSION_KEYS[fact]).distinct().count()
        in_warehouse = rows(scenario.warehouse_url, f'SELECT count(*) FROM "{fact}"')[0][0]
        assert table.count() == versions == in_warehouse, fact
