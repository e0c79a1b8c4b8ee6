"""Faults, for real: SIGKILL at each crash point of each job, in a first run and in an incremental one.

Every scenario runs against the embedded PostgreSQL and a real lake, and ends by comparing the
warehouse with the one SPEC.md asks for, computed from the same ToteSys data with plain SQL
(tests/expected_star.py; surrogate keys left out). A killed run is a separate
`python -m shared.local.cli run` process with TOTES_KILL_AT set: it dies by SIGKILL at the named
point (shared/runtime/faults.py), then the next run is started normally and must catch up with no
lost row and no duplicate fact version. The jobs before the one that dies are not run again here:
the lake and warehouse start as copies of a clean reference run's after those jobs
(tests/faults_support.py). The other faults are in tests/test_faults_recovery.py;
docs/reliability.md maps each row of the fault matrix to the test that proves it.
"""

from __future__ import annotations

import signal
from pathlib import Path

import expected_star
import pytest
from faults_support import (
    Databases,
    count,
    duplicate_fact_versions,
    lake_text,
    password_of,
    totes_process,
)

from shared.config import Settings
from shared.contract.star import FACT_TABLES
from shared.lake.layout import LakeLayout
from shared.lake.storage import read_json, storage_for
from shared.local import status, totesys
from shared.local.workflow import JOBS, run_workflow
from shared.runtime.faults import POINTS

pytestmark = pytest.mark.integration


# --------------------------------------------------------------------------- SIGKILL at each point

# What must already be true at each point when the process dies (and so not read as complete).
HALF_WRITTEN = {
    "extract:mid": "some ingestion JSON, no manifest: the transform must not read it",
    "extract:before_commit": "a published manifest, the extract bookmark not committed",
    "transform:mid": "_latest states written, nothing published (_current.json absent)",
    "transform:before_commit": "facts, dimensions and _current.json published, bookmark not committed",
    "load:before_apply": "staging tables written, the warehouse untouched",
    "load:after_apply": "the warehouse transaction committed, the load bookmark not",
}


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_then_next_run_recovers_exactly(spark, dbs, clean_run, expected, point) -> None:
    assert set(HALF_WRITTEN) == set(POINTS)
    # The jobs before the one that dies succeeded, as in the workflow: the lake and the warehouse
    # start as the clean reference run left them after those jobs. The job that dies runs in its
    # own process, as each job does on Glue.
    job = point.split(":")[0]
    before = JOBS[JOBS.index(job) - 1] if JOBS.index(job) else None
    settings = dbs.new_target(point.replace(":", "_"), state=clean_run.after(before))
    warehouse = settings.require_warehouse().conninfo
    lake = Path(settings.lake_root)

    killed = totes_process(settings, kill_at=point, job=job)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert password_of(settings) not in killed.stdout + killed.stderr

    # What the dead run left is never read as complete.
    ingestion = storage_for(settings.ingestion)
    manifests = ingestion.list_names(str(lake / "ingestion" / "_manifests"))
    published = read_json(storage_for(settings.processed), LakeLayout.of(settings).published)
    facts_loaded = count(warehouse, "fact_sales_order")
    if point == "extract:mid":
        assert (lake / "ingestion").is_dir() and manifests == []
    if point.startswith("extract"):
        assert published is None
    if point == "transform:mid":
        assert manifests and published is None
    if point in ("transform:before_commit", "load:before_apply"):
        assert published is not None
    assert facts_loaded == (len(expected["fact_sales_order"]) if point == "load:after_apply" else 0)
    died = [r for r in status.collect(settings)["recent_runs"] if r and r["status"] == "DIED"]
    assert [r["job"] for r in died] == [job]

    # The next run, started normally, catches up: the warehouse SPEC.md asks for, as a clean run gives.
    reports = run_workflow(spark, settings)
    assert [r.status for r in reports] == ["SUCCEEDED"] * 3
    assert expected_star.warehouse_star(warehouse) == expected
    assert duplicate_fact_versions(spark, settings) == dict.fromkeys(FACT_TABLES, 0)
    assert password_of(settings) not in lake_text(lake)
    if point == "extract:before_commit":  # at-least-once: the dead run's manifest was read too
        assert len(ingestion.list_names(str(lake / "ingestion" / "_manifests"))) == 2


# --------------------------------------------------------------------------- SIGKILL in an incremental run


@pytest.fixture(scope="module")
def incremental(spark, pg, dbs, clean_run, tmp_path_factory) -> tuple[Settings, dict[str, list[tuple]]]:
    """A lake and warehouse loaded once (a copy of the reference's), over a ToteSys of its own (a
    clone of the one they were loaded from); then live-like changes. Returns the lake, left for the
    crash, and the warehouse a clean incremental run must give: every fact version either run saw,
    the latest dimensions (tests/expected_star.py)."""
    own = Databases(pg, tmp_path_factory.mktemp("incremental"), "incr", template=dbs.source_db)
    crashed = own.new_target("incr_crashed", state=clean_run.after("load"), catalog=spark)
    expectation = expected_star.Expectation(own.admin_url)
    assert expectation.star == clean_run.expected  # the clone holds what the reference loaded
    totesys.simulate(own.admin_url, sales_orders=5, purchase_orders=3, paid_batch=True, edits=4, seed=11)
    return crashed, expectation.seen(own.admin_url).star


def test_sigkill_before_an_incremental_transform_commits_loses_and_duplicates_nothing(
    spark, incremental
) -> None:
    """The transform appended new fact versions and published them, then died: the next transform
    finds those versions in the table but not in its committed state; they must still be loaded."""
    crashed, expected = incremental
    run_workflow(spark, crashed, ["extract"])
    killed = totes_process(crashed, kill_at="transform:before_commit", job="transform")
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    reports = run_workflow(spark, crashed)
    assert [r.status for r in reports] == ["SUCCEEDED"] * 3
    assert expected_star.warehouse_star(crashed.require_warehouse().conninfo) == expected
    assert duplicate_fact_versions(spark, crashed) == dict.fromkeys(FACT_TABLES, 0)
