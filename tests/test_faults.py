"""Faults, for real: SIGKILL at each crash point of each job, in a first run and in an incremental one.

Every scenario runs against the embedded PostgreSQL and a real lake, and ends by comparing the
warehouse with a clean reference run over the same ToteSys data (surrogate keys left out). A killed
run is a separate `python -m shared.local.cli run` process with TOTES_KILL_AT set: it dies by SIGKILL at
the named point (shared/runtime/faults.py), then the next run is started normally and must catch up with no
lost row and no duplicate fact version. The other faults are in tests/test_faults_recovery.py;
docs/reliability.md maps each row of the fault matrix to the test that proves it.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from faults_support import (
    Databases,
    count,
    duplicate_fact_versions,
    lake_text,
    password_of,
    totes_process,
    warehouse_content,
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
def test_sigkill_then_next_run_recovers_exactly(spark, dbs, reference, point) -> None:
    assert set(HALF_WRITTEN) == set(POINTS)
    settings = dbs.new_target(point.replace(":", "_"))
    warehouse = settings.require_warehouse().conninfo
    lake = Path(settings.lake_root)

    # The jobs before the one that dies run here (they succeed, as in the workflow); the job that
    # dies runs in its own process, as each job does on Glue.
    job = point.split(":")[0]
    if JOBS.index(job):
        run_workflow(spark, settings, JOBS[: JOBS.index(job)])
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
    assert facts_loaded == (len(reference["fact_sales_order"]) if point == "load:after_apply" else 0)
    died = [r for r in status.collect(settings)["recent_runs"] if r and r["status"] == "DIED"]
    assert [r["job"] for r in died] == [job]

    # The next run, started normally, catches up: the same warehouse as a clean run.
    reports = run_workflow(spark, settings)
    assert [r.status for r in reports] == ["SUCCEEDED"] * 3
    assert warehouse_content(warehouse) == reference
    assert duplicate_fact_versions(spark, settings) == dict.fromkeys(FACT_TABLES, 0)
    assert password_of(settings) not in lake_text(lake)
    if point == "extract:before_commit":  # at-least-once: the dead run's manifest was read too
        assert len(ingestion.list_names(str(lake / "ingestion" / "_manifests"))) == 2


# --------------------------------------------------------------------------- SIGKILL in an incremental run


@pytest.fixture(scope="module")
def incremental(spark, pg, tmp_path_factory) -> tuple[Settings, Settings]:
    """Two lakes over one ToteSys, both loaded once; then live-like changes; the first one runs
    again cleanly (the reference), the second is left for the crash."""
    dbs = Databases(pg, tmp_path_factory.mktemp("incremental"), "incr")
    reference, crashed = dbs.new_target("incr_reference"), dbs.new_target("incr_crashed")
    run_workflow(spark, reference)
    run_workflow(spark, crashed)
    totesys.simulate(dbs.admin_url, sales_orders=5, purchase_orders=3, paid_batch=True, edits=4, seed=11)
    run_workflow(spark, reference)
    return reference, crashed


def test_sigkill_before_an_incremental_transform_commits_loses_and_duplicates_nothing(
    spark, incremental
) -> None:
    """The transform appended new fact versions and published them, then died: the next transform
    finds those versions in the table but not in its committed state; they must still be loaded."""
    reference, crashed = incremental
    run_workflow(spark, crashed, ["extract"])
    killed = totes_process(crashed, kill_at="transform:before_commit", job="transform")
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    reports = run_workflow(spark, crashed)
    assert [r.status for r in reports] == ["SUCCEEDED"] * 3
    expected = warehouse_content(reference.require_warehouse().conninfo)
    assert warehouse_content(crashed.require_warehouse().conninfo) == expected
    assert duplicate_fact_versions(spark, crashed) == dict.fromkeys(FACT_TABLES, 0)
