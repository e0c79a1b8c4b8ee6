"""`totes status` reads every lake document through its type (shared/lake/documents.py), where the
layout says (shared/lake/layout.py); one it cannot read is a DocumentError naming the file.

The databases here answer nothing (a closed port): the counts are then an error entry, which is
what `totes status` shows for a database that is down, and everything else is read from the lake.
"""

from __future__ import annotations

import re

import pytest

from shared.config import Settings, parse_pg_url
from shared.lake.documents import DocumentError, JobBookmarks, LoadBookmark, TransformState, write_document
from shared.lake.layout import LakeLayout
from shared.lake.storage import LocalStorage, write_json
from shared.local import status
from shared.runtime.context import JobReport

RUN_1, RUN_2, RUN_3 = "20261122T000000000000Z", "20261122T010000000000Z", "20261122T020000000000Z"


@pytest.fixture
def settings(tmp_path) -> Settings:
    closed = "postgresql://etl:hunter2@127.0.0.1:9/{}"
    return Settings(
        lake_root=str(tmp_path / "lake"),
        totesys=parse_pg_url("TOTESYS_URL", closed.format("totesys")),
        warehouse=parse_pg_url("WAREHOUSE_URL", closed.format("warehouse")),
    )


def commit(settings: Settings, job: str, run_id: str, contexts: dict) -> None:
    layout = LakeLayout.of(settings)
    write_document(
        LocalStorage(), layout.bookmark(job), JobBookmarks(job, run_id, "2026-11-22T02:00:00Z", contexts)
    )
    write_document(LocalStorage(), layout.run_record(run_id, job), JobReport(job, run_id, status="SUCCEEDED"))


def test_each_jobs_bookmarks_are_read_as_the_type_that_job_keeps(settings) -> None:
    extract_mark = {
        "last_updated": "2026-11-21 23:59:00.000000",
        "keys": [4, 5],
        "window": {"2026-11-21 23:58:00.000000": [1, 2, 3]},
    }
    commit(settings, "extract", RUN_1, {"extract_sales_order": extract_mark})
    commit(settings, "transform", RUN_2, {"transform_state": TransformState(RUN_2, RUN_1).to_json()})
    commit(settings, "load", RUN_3, {"load_watermark": LoadBookmark(RUN_2).to_json()})

    info = status.read_status(settings)
    assert info.contexts == {
        "extract": {"extract_sales_order": status.ExtractMark("2026-11-21 23:59:00.000000", 2, 3)},
        "transform": {"transform_state": TransformState(RUN_2, RUN_1)},
        "load": {"load_watermark": LoadBookmark(RUN_2)},
    }
    assert [(r.job, r.status) for r in info.recent_runs] == [
        ("extract", "SUCCEEDED"),
        ("transform", "SUCCEEDED"),
        ("load", "SUCCEEDED"),
    ]
    assert set(info.totesys_rows) == set(info.warehouse_rows) == {"error"}  # nobody answers on port 9

    shown = status.render(settings).splitlines()
    assert f"  extract    run {RUN_1} committed 2026-11-22T02:00:00Z" in shown
    assert (
        f"    {'extract_sales_order':<28} last_updated 2026-11-21 23:59:00.000000 "
        "(2 keys, 3 versions in the look-back window)"
    ) in shown
    assert f"    {'transform_state':<28} extract runs up to {RUN_1}" in shown
    assert f"    {'load_watermark':<28} transform runs up to {RUN_2}" in shown

    as_json = status.collect(settings)  # `totes status --json`
    assert as_json["bookmarks"]["load"]["contexts"] == {"load_watermark": LoadBookmark(RUN_2).to_json()}
    assert [r["run_id"] for r in as_json["recent_runs"]] == [RUN_1, RUN_2, RUN_3]


def test_a_run_recorded_as_running_while_nobody_holds_the_lock_died(settings) -> None:
    layout = LakeLayout.of(settings)
    write_document(LocalStorage(), layout.run_record(RUN_1, "transform"), JobReport("transform", RUN_1))
    (run,) = status.read_status(settings).recent_runs
    assert (run.status, run.message) == ("DIED", "stopped without a word (killed?); the next run redoes it")


def test_a_run_record_of_an_unknown_format_version_is_refused_naming_the_file(settings) -> None:
    location = LakeLayout.of(settings).run_record(RUN_1, "extract")
    write_json(
        LocalStorage(), location, {"format_version": 99, "job": "extract", "run_id": RUN_1, "status": "X"}
    )
    with pytest.raises(
        DocumentError, match=f"^{re.escape(location)}: run record document of format version 99; "
    ):
        status.collect(settings)


def test_a_bookmark_of_an_unknown_format_version_is_refused_naming_the_file(settings) -> None:
    location = LakeLayout.of(settings).bookmark("load")
    write_json(
        LocalStorage(), location, {"format_version": 99, "job": "load", "run_id": RUN_1, "contexts": {}}
    )
    with pytest.raises(
        DocumentError, match=f"^{re.escape(location)}: job bookmarks document of format version 99; "
    ):
        status.render(settings)


def test_a_bookmark_context_of_an_unknown_format_version_is_refused_naming_file_and_context(settings) -> None:
    commit(
        settings,
        "transform",
        RUN_1,
        {"transform_state": {**TransformState().to_json(), "format_version": 99}},
    )
    location = LakeLayout.of(settings).bookmark("transform")
    with pytest.raises(
        DocumentError,
        match=f"^{re.escape(location)}: context 'transform_state': transform state document of format version 99",
    ):
        status.collect(settings)
