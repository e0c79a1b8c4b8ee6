"""The warehouse's versioned migrations against a real PostgreSQL (shared/migrations/, shared/jdbc/warehouse.py).

- 0001 builds exactly the schema the pre-migration code built (`CREATE TABLE IF NOT EXISTS` on
  every load, commit fd1d3ef), and all the migrations together build what the star declares;
- a warehouse made by that old code is adopted: 0001 recorded, not run again, its data kept;
- a migration that fails, an edited applied migration, a migration unknown to the code, and a
  star column no migration adds are each a clear error that leaves the warehouse as it was;
- the migration lock makes a second load wait for the first one's commit.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from pyspark.sql.types import IntegerType, StructField, StructType

from shared import migrations
from shared.config import parse_pg_url
from shared.contract.star import STAR_SCHEMAS
from shared.jdbc.warehouse import (
    MIGRATION_LOCK,
    MIGRATIONS_TABLE,
    MigrationError,
    apply_load,
    migrate_schema,
    staging_table,
    warehouse_ddl,
)
from shared.migrations import Migration

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
LEGACY_COMMIT = "fd1d3ef"  # the last commit whose load ran `ensure_schema` (no migrations)
LEGACY_DDL = Path(__file__).parent / "data" / f"warehouse_ddl_{LEGACY_COMMIT}.sql"
STAFF = (1, "Jeremie", "Franey", "Purchasing", "Manchester", "jeremie.franey@terrifictotes.com")


def describe(conninfo: str) -> dict[str, set[tuple]]:
    """The schema of a warehouse as PostgreSQL's catalog has it: columns (type, NOT NULL, default),
    constraints and indexes with their definitions, and which of our schemas exist."""
    with psycopg.connect(conninfo) as conn:

        def q(sql: str) -> set[tuple]:
            return set(conn.execute(sql).fetchall())

        return {
            "columns": q(
                "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
                "pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_attrdef d "
                "ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
                "WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped"
            ),
            "constraints": q(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE connamespace = 'public'::regnamespace"
            ),
            "indexes": q("SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"),
            "schemas": q("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'etl%'"),
        }


def public_schema(conninfo: str) -> dict[str, set[tuple]]:
    return {k: v for k, v in describe(conninfo).items() if k != "schemas"}


def run_sql(conninfo: str, *statements: str) -> None:
    with psycopg.connect(conninfo) as conn:
        for statement in statements:
            conn.execute(statement)


def fetch(conninfo: str, sql: str) -> list[tuple]:
    with psycopg.connect(conninfo) as conn:
        return conn.execute(sql).fetchall()


def applied(conninfo: str) -> list[tuple]:
    return fetch(conninfo, f"SELECT version, name, checksum FROM {MIGRATIONS_TABLE} ORDER BY version")


def stage_staff(spark, url, rows: list[tuple]) -> None:
    (
        spark.createDataFrame(rows, STAR_SCHEMAS["dim_staff"])
        .write.format("jdbc")
        .mode("overwrite")
        .option("url", url.jdbc_url)
        .option("dbtable", staging_table("dim_staff"))
        .options(**url.jdbc_properties)
        .save()
    )


def legacy_warehouse(conninfo: str) -> None:
    """A warehouse exactly as the pre-migration load left it: its DDL, then a loaded row."""
    run_sql(conninfo, LEGACY_DDL.read_text(encoding="utf-8"))
    run_sql(
        conninfo, "INSERT INTO dim_staff VALUES (9, 'Old', 'Row', 'Sales', NULL, 'old.row@terrifictotes.com')"
    )


def broken(version: int = 2) -> Migration:
    # The first statement succeeds, the second fails: the first must not survive either.
    return Migration(
        version,
        "broken",
        'ALTER TABLE "dim_staff" ADD COLUMN "nickname" varchar;\nALTER TABLE "no_such_table" ADD COLUMN "x" int;',
    )


@pytest.fixture
def url(fresh_db):
    return parse_pg_url("WAREHOUSE_URL", fresh_db)


@pytest.fixture
def migrated(spark, url):
    assert migrate_schema(spark, url) == ["0001_star_schema"]
    return url


# --------------------------------------------------------------------------- the migrations themselves


def test_every_migration_module_is_listed_and_numbered_in_order() -> None:
    folder = REPO / "shared" / "migrations"
    files = sorted(p.stem for p in folder.glob("*.py") if p.name != "__init__.py")
    listed = [m.__name__.rsplit(".", 1)[-1] for m in migrations._MODULES]
    assert files == listed, "a migration module not in shared/migrations/__init__.py's _MODULES never runs"
    assert [m.version for m in migrations.MIGRATIONS] == list(range(1, len(files) + 1))
    assert migrations.MIGRATIONS[0].label == "0001_star_schema"


def test_misnumbered_or_empty_migrations_are_refused() -> None:
    with pytest.raises(
        migrations.MigrationDefinitionError, match=r"numbered 1\.\.2 without gaps: got \[1, 3\]"
    ):
        migrations.ordered([Migration(1, "a", "SELECT 1"), Migration(3, "c", "SELECT 1")])
    module = type(sys)("shared.migrations.v0002_nothing")
    with pytest.raises(migrations.MigrationDefinitionError, match="v0002_nothing: no SQL"):
        migrations.from_module(module)
    with pytest.raises(migrations.MigrationDefinitionError, match="vNNNN_<lowercase_name>"):
        migrations.from_module(type(sys)("shared.migrations.add_column"))


def test_0001_builds_exactly_the_schema_of_the_code_before_migrations(spark, migrated, pg) -> None:
    name = f"legacy_{time.time_ns()}"
    pg.create_database(name)
    legacy = pg.url(name)
    try:
        run_sql(legacy, LEGACY_DDL.read_text(encoding="utf-8"))
        before, after = describe(legacy), describe(migrated.conninfo)
        assert after["schemas"] == {("etl_staging",), ("etl_meta",)}
        assert before["schemas"] == {("etl_staging",)}
        assert public_schema(migrated.conninfo) == public_schema(legacy)
        assert len({c[0] for c in before["columns"]}) == 11  # SPEC.md's eleven tables, nothing else in public
    finally:
        pg.drop_database(name)


def test_the_migrations_build_what_the_star_declares(spark, migrated, pg) -> None:
    """The drift check a star change meets: shared/contract/star.py's DDL == what the migrations build."""
    name = f"star_{time.time_ns()}"
    pg.create_database(name)
    try:
        run_sql(pg.url(name), *warehouse_ddl())
        assert public_schema(migrated.conninfo) == public_schema(pg.url(name))
    finally:
        pg.drop_database(name)


def test_the_legacy_ddl_file_is_what_the_old_code_created(tmp_path) -> None:
    """tests/data/warehouse_ddl_fd1d3ef.sql is that commit's `warehouse_ddl()`, run from git."""
    if (
        shutil.which("git") is None
        or subprocess.run(
            ["git", "cat-file", "-e", f"{LEGACY_COMMIT}^{{commit}}"], cwd=REPO, capture_output=True
        ).returncode
    ):
        pytest.skip(f"no git history with commit {LEGACY_COMMIT} (e.g. a source tarball)")
    archive = subprocess.run(
        ["git", "archive", LEGACY_COMMIT, "shared"], cwd=REPO, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=archive.stdout, check=True)
    old = subprocess.run(
        [
            sys.executable,
            "-c",
            "from shared.warehouse import warehouse_ddl; [print(s + ';') for s in warehouse_ddl()]",
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    body = [line for line in LEGACY_DDL.read_text(encoding="utf-8").splitlines() if not line.startswith("--")]
    assert body == old.stdout.splitlines()


def test_a_second_migration_run_applies_nothing(spark, migrated) -> None:
    before = applied(migrated.conninfo)
    assert migrate_schema(spark, migrated) == []
    assert applied(migrated.conninfo) == before == [(1, "star_schema", migrations.MIGRATIONS[0].checksum)]


# --------------------------------------------------------------------------- adopting an existing deployment


def test_a_warehouse_made_before_migrations_is_adopted_not_migrated_again(spark, url) -> None:
    legacy_warehouse(url.conninfo)
    schema = public_schema(url.conninfo)
    stage_staff(spark, url, [STAFF])
    # 0001 is plain CREATE TABLE: running it again here would fail with "already exists".
    assert apply_load(spark, url, ["dim_staff"]) == {"dim_staff": 1}
    assert applied(url.conninfo) == [(1, "star_schema (adopted)", migrations.MIGRATIONS[0].checksum)]
    assert public_schema(url.conninfo) == schema
    assert fetch(url.conninfo, "SELECT staff_id FROM dim_staff ORDER BY 1") == [(1,), (9,)]
    assert migrate_schema(spark, url) == []  # adopted once; from then on an ordinary migrated warehouse


def test_a_warehouse_holding_only_some_of_the_tables_is_refused(spark, url) -> None:
    run_sql(url.conninfo, 'CREATE TABLE "dim_date" ("date_id" date PRIMARY KEY)')
    with pytest.raises(MigrationError, match=r"some of migration 0001_star_schema's tables \(dim_date\)"):
        migrate_schema(spark, url)
    assert describe(url.conninfo)["schemas"] == set()  # not even the bookkeeping table


# --------------------------------------------------------------------------- failures leave the warehouse as it was


def test_a_failing_migration_leaves_schema_data_and_bookkeeping_as_they_were(
    spark, migrated, monkeypatch
) -> None:
    run_sql(migrated.conninfo, "INSERT INTO dim_staff VALUES (9, 'Old', 'Row', 'Sales', NULL, 'o@t.com')")
    before = (describe(migrated.conninfo), applied(migrated.conninfo))
    monkeypatch.setattr(migrations, "MIGRATIONS", (*migrations.MIGRATIONS, broken()))
    stage_staff(spark, migrated, [STAFF])
    with pytest.raises(
        MigrationError, match=r'migration 0002_broken failed, nothing was applied: .*"no_such_table"'
    ):
        apply_load(spark, migrated, ["dim_staff"])
    assert (describe(migrated.conninfo), applied(migrated.conninfo)) == before  # no "nickname" column either
    assert fetch(migrated.conninfo, "SELECT staff_id FROM dim_staff") == [(9,)]  # the load was not applied


def test_a_failing_migration_on_a_new_warehouse_leaves_it_empty(spark, url, monkeypatch) -> None:
    monkeypatch.setattr(migrations, "MIGRATIONS", (*migrations.MIGRATIONS, broken()))
    with pytest.raises(MigrationError, match="0002_broken"):
        migrate_schema(spark, url)
    assert describe(url.conninfo) == {
        "columns": set(),
        "constraints": set(),
        "indexes": set(),
        "schemas": set(),
    }


def test_an_edited_applied_migration_is_an_error(spark, migrated, monkeypatch) -> None:
    first = migrations.MIGRATIONS[0]
    edited = Migration(first.version, first.name, first.sql + "\n-- tidied up\n")
    monkeypatch.setattr(migrations, "MIGRATIONS", (edited,))
    with pytest.raises(
        MigrationError, match=r"0001_star_schema was applied .* checksum .* must never be edited"
    ):
        migrate_schema(spark, migrated)


def test_a_warehouse_migrated_by_newer_code_is_an_error(spark, migrated) -> None:
    run_sql(
        migrated.conninfo,
        f"INSERT INTO {MIGRATIONS_TABLE} (version, name, checksum) VALUES (2, 'later', 'x')",
    )
    with pytest.raises(MigrationError, match=r"migration\(s\) 0002 that this code does not know"):
        migrate_schema(spark, migrated)


def test_a_star_column_without_its_migration_names_it_and_the_sql_to_add(
    spark, migrated, monkeypatch
) -> None:
    extended = StructType([*STAR_SCHEMAS["dim_staff"].fields, StructField("grade", IntegerType())])
    monkeypatch.setitem(STAR_SCHEMAS, "dim_staff", extended)
    with pytest.raises(
        MigrationError,
        match=r'lacks: dim_staff\.grade\. .*ALTER TABLE "dim_staff" ADD COLUMN "grade" integer',
    ):
        migrate_schema(spark, migrated)


def test_two_loads_never_migrate_at_once(spark, url) -> None:
    """A load holding the migration lock makes the next one wait, then find nothing pending."""
    done: list[object] = []
    with psycopg.connect(url.conninfo) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", [MIGRATION_LOCK])  # a transaction, held open
        worker = threading.Thread(target=lambda: done.append(migrate_schema(spark, url)))
        worker.start()
        worker.join(timeout=3)
        assert worker.is_alive() and done == []  # waiting on the lock, not migrating
        assert fetch(url.conninfo, f"SELECT to_regclass('{MIGRATIONS_TABLE}')") == [(None,)]
        holder.commit()
        worker.join(timeout=60)
    assert done == [["0001_star_schema"]]
    assert [v for v, _, _ in applied(url.conninfo)] == [1]
