"""The worked example of docs/schema-changes.md, run: a column added to a dimension and to a fact on a
deployment that is already running.

A warehouse and a lake are made by the star as it is (one workflow run: a copy of the faults
reference's lake, catalog and warehouse, tests/faults_support.py). Then the change a developer
makes, exactly as the doc's diff shows it: two star columns (shared/contract/star.py), the builders that fill
them (shared/transforms.py) and migration 0002 (shared/migrations/). Here they are applied with
monkeypatch instead of edits, the only difference. The next workflow run must:
- migrate the warehouse inside the load's transaction (0002 recorded after 0001);
- fill `dim_staff.department_manager` for every staff member (a type-1 dimension is rebuilt from the
  latest source state when its columns change) and `fact_sales_order.gross_value` for every version
  taken from then on, leaving it NULL in the versions loaded before;
- lose and duplicate nothing: the keys and rows of every warehouse table before the change are all
  still there, unchanged, and the only new ones are the new source versions;
- give the catalog's tables the new columns (older Parquet files read them as NULL), and keep a
  month partition compacted from files of both schemas whole;
- and a run after it with no source change changes nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from faults_support import Databases, cli_args, warehouse_content
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from shared import migrations
from shared import transforms as T
from shared.contract import registry, star
from shared.contract.source import MONEY
from shared.contract.star import FACT_VERSION_KEYS, STAR_TABLES, StarTable
from shared.jdbc.warehouse import MIGRATIONS_TABLE
from shared.jobs import transform as transform_job
from shared.jobs.transform.tables import read_processed
from shared.lake.layout import LakeLayout
from shared.local import totesys
from shared.local.workflow import run_workflow
from shared.migrations import Migration

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "schema-changes.md"
PREVIOUS_RELEASE = "fd1d3ef"  # the last commit before migrations: its load ran CREATE TABLE IF NOT EXISTS

# ---- the change, as docs/schema-changes.md shows it --------------------------------------------
# shared/contract/star.py: one column appended to each table (nullable: rows already loaded have no value).
DEPARTMENT_MANAGER = star._c("department_manager", nullable=True)
GROSS_VALUE = star._c("gross_value", MONEY, nullable=True)


# shared/transforms.py: the builders fill them.
def dim_staff(staff: DataFrame, department: DataFrame) -> DataFrame:
    departments = department.select(
        "department_id", "department_name", "location", F.col("manager").alias("department_manager")
    )
    return T.conform(staff.join(departments, "department_id", "inner"), "dim_staff")


def fact_sales_order(sales_order: DataFrame) -> DataFrame:
    return T.conform(
        sales_order.select(
            "sales_order_id",
            *T._version_columns(),
            F.col("staff_id").alias("sales_staff_id"),
            "counterparty_id",
            "units_sold",
            "unit_price",
            "currency_id",
            "design_id",
            T._business_date("agreed_payment_date"),
            T._business_date("agreed_delivery_date"),
            "agreed_delivery_location_id",
            (F.col("units_sold") * F.col("unit_price")).alias("gross_value"),
        ),
        "fact_sales_order",
    )


# shared/migrations/v0002_staff_manager_and_sales_value.py
MIGRATION_SQL = """
ALTER TABLE "dim_staff" ADD COLUMN "department_manager" varchar;
ALTER TABLE "fact_sales_order" ADD COLUMN "gross_value" numeric;
"""
# -------------------------------------------------------------------------------------------------


def apply_the_change(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, column in (("dim_staff", DEPARTMENT_MANAGER), ("fact_sales_order", GROSS_VALUE)):
        table: StarTable = dataclasses.replace(
            STAR_TABLES[name], columns=(*STAR_TABLES[name].columns, column)
        )
        monkeypatch.setitem(star.STAR_TABLES, name, table)
        monkeypatch.setitem(star.STAR_SCHEMAS, name, table.spark_schema)
        monkeypatch.setitem(
            star.NULLABLE_COLUMNS, name, frozenset(c.name for c in table.columns if c.nullable)
        )
    # shared/contract/registry.py names the builders; the change is in the builders themselves.
    for name, builder in (("dim_staff", dim_staff), ("fact_sales_order", fact_sales_order)):
        monkeypatch.setitem(
            registry.STAR_BUILDS, name, dataclasses.replace(registry.STAR_BUILDS[name], build=builder)
        )
    change = Migration(2, "staff_manager_and_sales_value", MIGRATION_SQL)
    monkeypatch.setattr(migrations, "MIGRATIONS", (*migrations.MIGRATIONS, change))


# ---- what is compared before and after ------------------------------------------------------------
def rows(url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def keyed_content(url: str, columns: dict[str, list[str]]) -> dict[str, dict[tuple, tuple]]:
    """Each table's rows by key (dimension key / fact record id), over the given columns."""
    out = {}
    for table, names in columns.items():
        key = star.DIMENSION_KEYS.get(table) or star.FACT_RECORD_IDS[table]
        listed = ", ".join(f'"{c}"' for c in names)
        out[table] = {r[0]: r[1:] for r in rows(url, f'SELECT "{key}", {listed} FROM "{table}"')}
    return out


def fingerprint(url: str) -> str:
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        content = [conn.execute(f'SELECT * FROM "{t}" ORDER BY 1').fetchall() for t in sorted(tables)]
    return hashlib.sha256(repr(content).encode()).hexdigest()


@pytest.fixture(scope="module")
def source(pg, dbs, tmp_path_factory) -> Databases:
    """A ToteSys of this module's own (a clone of the faults one): the scenario writes to it."""
    return Databases(pg, tmp_path_factory.mktemp("schema_change"), "schema", template=dbs.source_db)


@pytest.fixture(scope="module")
def change(spark, source, clean_run) -> dict[str, Any]:
    # The deployment as it runs before the change: a clean run's lake, catalog and warehouse.
    settings = source.new_target("schema_change", state=clean_run.after("load"), catalog=spark)
    url = settings.require_warehouse().conninfo
    old_columns = {t: list(s.names) for t, s in star.STAR_SCHEMAS.items()}
    before = keyed_content(url, old_columns)
    with pytest.MonkeyPatch.context() as patch:
        apply_the_change(patch)
        # The change deployed, the source unchanged: the schema and the dimension follow at once.
        alone = {r.job: r for r in run_workflow(spark, settings)}
        mid = keyed_content(url, old_columns)
        mid_new_columns = (
            staff_managers(url),
            rows(url, "SELECT count(gross_value) FROM fact_sales_order"),
            rows(url, f"SELECT version FROM {MIGRATIONS_TABLE} ORDER BY 1"),
        )
        # New orders (this month), and a new version of an old sales order, in a month of history.
        done = totesys.simulate(source.admin_url, sales_orders=4, purchase_orders=2, seed=11)
        with psycopg.connect(source.admin_url) as conn:
            conn.execute(
                "UPDATE sales_order SET units_sold = units_sold + 1, "
                "last_updated = date_trunc('milliseconds', localtimestamp) WHERE sales_order_id = 1"
            )
        patch.setattr(transform_job, "COMPACT_ABOVE_FILES", 1)  # the old month's two files: compacted
        reports = {r.job: r for r in run_workflow(spark, settings)}
        after = keyed_content(url, old_columns)
        quiet = fingerprint(url)
        again = run_workflow(spark, settings)
    # Returned, not yielded inside the block: the change must not outlive this module's scenario.
    return {
        "settings": settings, "url": url, "before": before, "alone": alone, "mid": mid,
        "mid_new_columns": mid_new_columns, "after": after, "done": done, "reports": reports,
        "quiet": quiet, "again": again, "spark": spark,
    }  # fmt: skip


def staff_managers(url: str) -> list[tuple]:
    return rows(url, "SELECT staff_id, department_manager FROM dim_staff ORDER BY 1")


def test_the_change_alone_migrates_the_warehouse_and_fills_the_dimension(change, source) -> None:
    """Deployed with no source change: the next run migrates, rebuilds dim_staff, changes no other row."""
    alone = change["alone"]
    assert [r.status for r in alone.values()] == ["SUCCEEDED"] * 3
    assert all(s.read == 0 for s in alone["extract"].tables.values())
    assert alone["transform"].tables["dim_staff"].written == len(change["before"]["dim_staff"])
    assert change["mid"] == change["before"]
    managers = rows(
        source.admin_url,
        "SELECT staff_id, manager FROM staff JOIN department USING (department_id) ORDER BY 1",
    )
    assert any(m is not None for _, m in managers)
    assert change["mid_new_columns"] == (managers, [(0,)], [(1,), (2,)])


def test_the_run_after_the_change_succeeds_and_records_the_migration(change) -> None:
    assert [r.status for r in change["reports"].values()] == ["SUCCEEDED"] * 3
    assert [
        r[0:2] for r in rows(change["url"], f"SELECT version, name FROM {MIGRATIONS_TABLE} ORDER BY 1")
    ] == [
        (1, "star_schema"),
        (2, "staff_manager_and_sales_value"),
    ]


def test_nothing_is_lost_or_duplicated(change) -> None:
    before, after, done = change["before"], change["after"], change["done"]
    new_versions = {
        "fact_sales_order": done["sales_order"] + 1,
        "fact_purchase_order": done["purchase_order"],
    }
    new_versions["fact_payment"] = done["payment"]
    for table, old in before.items():
        new = after[table]
        assert {k: new[k] for k in old} == old, f"{table}: a row loaded before the change was lost or altered"
        added = len(new) - len(old)
        if table in new_versions:
            assert added == new_versions[table], table
        elif table == "dim_transaction":
            assert added == done["transaction"]
        elif table != "dim_date":
            assert added == 0, table
    for fact, key in FACT_VERSION_KEYS.items():
        listed = ", ".join(f'"{c}"' for c in key)
        assert (
            rows(change["url"], f'SELECT {listed} FROM "{fact}" GROUP BY {listed} HAVING count(*) > 1') == []
        )


def test_the_new_dimension_column_is_filled_for_every_member(change, source) -> None:
    managers = rows(
        source.admin_url,
        "SELECT staff_id, manager FROM staff JOIN department USING (department_id) ORDER BY 1",
    )
    assert staff_managers(change["url"]) == managers


def test_the_new_fact_column_is_filled_from_then_on_and_null_before(change) -> None:
    url, old = change["url"], change["before"]["fact_sales_order"]
    values = dict(rows(url, "SELECT sales_record_id, gross_value FROM fact_sales_order"))
    assert {values[k] for k in old} == {None}
    fresh = rows(
        url,
        "SELECT gross_value, units_sold * unit_price FROM fact_sales_order WHERE sales_record_id > %s",
        [max(old)],
    )
    assert len(fresh) == change["done"]["sales_order"] + 1
    assert all(isinstance(g, Decimal) and g == v for g, v in fresh)


def test_the_lake_and_catalog_have_the_new_columns(change, monkeypatch) -> None:
    apply_the_change(monkeypatch)  # the lake read by the code that has the change
    spark, settings = change["spark"], change["settings"]
    db = settings.catalog_database
    facts = spark.sql(
        f"SELECT count(*) AS n, count(gross_value) AS filled FROM `{db}`.fact_sales_order"
    ).first()
    assert (facts["n"], facts["filled"]) == (
        len(change["after"]["fact_sales_order"]),
        change["done"]["sales_order"] + 1,
    )
    staff = spark.sql(
        f"SELECT count(*) AS n, count(department_manager) AS filled FROM `{db}`.dim_staff"
    ).first()
    assert staff["n"] == len(change["after"]["dim_staff"]) and staff["filled"] > 0
    # The old month holding sales order 1 was compacted from a file of each schema: both versions kept.
    compacted = change["reports"]["transform"].tables["fact_sales_order"].compacted_files
    assert compacted >= 2
    versions = (
        read_processed(spark, "fact_sales_order", LakeLayout.of(settings).table("fact_sales_order"))
        .where("sales_order_id = 1")
        .orderBy("last_updated_date", "last_updated_time")
        .select("gross_value")
        .collect()
    )
    assert (
        len(versions) == 2 and versions[0]["gross_value"] is None and versions[1]["gross_value"] is not None
    )


def test_a_run_after_the_change_with_no_source_change_changes_nothing(change) -> None:
    assert [r.status for r in change["again"]] == ["SUCCEEDED"] * 3
    assert fingerprint(change["url"]) == change["quiet"]


def test_the_doc_shows_this_very_change() -> None:
    text = DOC.read_text(encoding="utf-8")
    for line in MIGRATION_SQL.strip().splitlines():
        assert f"+{line}" in text, f"docs/schema-changes.md lacks the migration line {line!r}"
    for column in (DEPARTMENT_MANAGER, GROSS_VALUE):
        assert column.name in text


def test_a_deployment_made_by_the_release_before_migrations_is_upgraded_in_place(
    spark, pg, dbs, tmp_path
) -> None:
    """The previous release's own code (from git) makes the lake and the warehouse, in its own process;
    this code then runs on them: the warehouse is adopted, every row kept, new versions loaded once."""
    assert "department_manager" not in star.STAR_SCHEMAS["dim_staff"].names  # the example's change is undone
    if (
        shutil.which("git") is None
        or subprocess.run(
            ["git", "cat-file", "-e", f"{PREVIOUS_RELEASE}^{{commit}}"], cwd=REPO, capture_output=True
        ).returncode
    ):
        pytest.skip(f"no git history with commit {PREVIOUS_RELEASE} (e.g. a source tarball)")
    old = tmp_path / "previous-release"
    old.mkdir()
    archive = subprocess.run(
        ["git", "archive", PREVIOUS_RELEASE, "shared"], cwd=REPO, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
    own = Databases(pg, tmp_path, "previous", template=dbs.source_db)  # written to below
    settings = own.new_target("previous_release")
    env = {k: v for k, v in os.environ.items() if k not in ("TOTESYS_URL", "WAREHOUSE_URL", "LAKE_ROOT")}
    env |= {
        "SPARK_LOCAL_IP": "127.0.0.1",
        "TOTES_HOME": str(tmp_path / ".totes-home"),
        "PYTHONPATH": str(old),
    }
    result = subprocess.run(  # cwd first on sys.path: the previous release's `shared`, not this one
        # Its CLI is `shared.cli` (shared/local/ came later): that release's module, not this one's.
        [sys.executable, "-m", "shared.cli", "run", *cli_args(settings)],
        cwd=old,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    url = settings.require_warehouse().conninfo
    # Made by the old code: no bookkeeping, and published tables that do not record their columns.
    assert rows(url, "SELECT to_regclass('etl_meta.schema_migrations')") == [(None,)]
    assert "columns" not in (Path(settings.processed) / "_current.json").read_text(encoding="utf-8")
    before = warehouse_content(url)

    done = totesys.simulate(own.admin_url, sales_orders=3, purchase_orders=1, seed=5)
    assert [r.status for r in run_workflow(spark, settings)] == ["SUCCEEDED"] * 3
    assert rows(url, f"SELECT version, name FROM {MIGRATIONS_TABLE}") == [(1, "star_schema (adopted)")]
    after = warehouse_content(url)
    for table, old_rows in before.items():
        assert set(old_rows) <= set(after[table]), f"{table}: rows of the old deployment lost"
        assert len(after[table]) == len(set(after[table])), f"{table}: duplicated rows"
    assert len(after["fact_sales_order"]) - len(before["fact_sales_order"]) == done["sales_order"]
    assert len(after["fact_payment"]) - len(before["fact_payment"]) == done["payment"]
    quiet = fingerprint(url)
    assert [r.status for r in run_workflow(spark, settings)] == ["SUCCEEDED"] * 3
    assert fingerprint(url) == quiet
