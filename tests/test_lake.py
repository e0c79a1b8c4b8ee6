"""State documents, run ids and the run lock on a real folder; the S3 twin against moto. The job
context's two documents (committed bookmarks, run record) where the layout says, typed and versioned."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from shared.config import Settings
from shared.lake.documents import DocumentError, JobBookmarks, read_document
from shared.lake.layout import LakeLayout
from shared.lake.storage import (
    LakeLocked,
    LocalStorage,
    S3Storage,
    new_run_id,
    read_json,
    run_lock,
    write_json,
)
from shared.runtime.context import JobReport, LocalJobContext, TableStats


def test_local_state_round_trip_is_atomic_and_lists_only_visible_names(tmp_path) -> None:
    store = LocalStorage()
    target = str(tmp_path / "state" / "bookmarks" / "extract.json")
    assert read_json(store, target) is None
    write_json(store, target, {"run_id": "1", "contexts": {"a": [1, 2]}})
    write_json(store, target, {"run_id": "2", "contexts": {}})
    assert read_json(store, target) == {"run_id": "2", "contexts": {}}
    assert store.list_names(str(tmp_path / "state" / "bookmarks")) == ["extract.json"]  # no temp files left


@pytest.mark.integration  # moto's S3
def test_s3_state_round_trip_and_listing() -> None:
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-2")
        client.create_bucket(Bucket="lake", CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
        store = S3Storage(client)
        assert read_json(store, "s3://lake/_state/bookmarks/load.json") is None
        write_json(store, "s3://lake/_state/bookmarks/load.json", {"run_id": "7"})
        write_json(store, "s3://lake/_state/runs/a/x.json", {})
        assert read_json(store, "s3://lake/_state/bookmarks/load.json") == {"run_id": "7"}
        assert store.list_names("s3://lake/_state") == ["bookmarks", "runs"]
        assert store.list_names("s3://lake/_state/bookmarks/") == ["load.json"]


def test_local_move_and_delete_take_hadoops_checksum_files_along(tmp_path) -> None:
    store = LocalStorage()
    source, target = tmp_path / "staging" / "part-0.parquet", tmp_path / "month" / "part-0.parquet"
    source.parent.mkdir()
    source.write_bytes(b"PAR1\x00\xff")
    (source.parent / ".part-0.parquet.crc").write_bytes(b"crc")
    store.move(str(source), str(target))
    assert not source.exists() and target.read_bytes() == b"PAR1\x00\xff"
    assert (target.parent / ".part-0.parquet.crc").read_bytes() == b"crc"
    assert store.exists(str(target))
    store.delete(str(target))
    assert sorted(p.name for p in target.parent.iterdir()) == []
    store.delete(str(tmp_path / "staging"))  # a folder, and then one that is gone: no error
    store.delete(str(tmp_path / "staging"))
    assert not (tmp_path / "staging").exists()


@pytest.mark.integration  # moto's S3
def test_s3_move_delete_and_exists_on_binary_objects() -> None:
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-2")
        client.create_bucket(Bucket="lake", CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
        store = S3Storage(client)
        for key in ("fact/_c/r1/part-0.parquet", "fact/_c/r1/_SUCCESS", "fact/m=1/part-9.parquet"):
            client.put_object(Bucket="lake", Key=key, Body=b"PAR1\x00\xff")  # not UTF-8
        assert store.exists("s3://lake/fact/_c/r1/part-0.parquet")
        assert store.exists("s3://lake/fact/_c")  # a prefix
        assert not store.exists("s3://lake/fact/m=2")
        store.move("s3://lake/fact/_c/r1/part-0.parquet", "s3://lake/fact/m=1/compacted-part-0.parquet")
        assert store.list_names("s3://lake/fact/m=1") == ["compacted-part-0.parquet", "part-9.parquet"]
        store.delete("s3://lake/fact/m=1/part-9.parquet")
        store.delete("s3://lake/fact/_c")
        keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="lake")["Contents"])
        assert keys == ["fact/m=1/compacted-part-0.parquet"]


def test_run_ids_sort_in_time_order_and_never_repeat() -> None:
    moment = datetime(2026, 11, 22, 0, 45, 12, 123456, tzinfo=UTC)
    first = new_run_id(now=moment)
    assert first == "20261122T004512123456Z"
    assert new_run_id(after=first, now=moment) == "20261122T004512123457Z"
    assert new_run_id(after="20991231T235959999999Z", now=moment) > "20991231T235959999999Z"


def test_second_run_is_refused_while_the_first_holds_the_lock(tmp_path) -> None:
    lock = str(tmp_path / "state" / "run.lock")
    with run_lock(lock, "first run"):
        with pytest.raises(LakeLocked, match="first run"):
            with run_lock(lock, "second run"):
                pass
    with run_lock(lock, "third run"):  # released: a later run goes ahead
        pass


def test_lock_of_a_killed_process_is_released(tmp_path) -> None:
    lock = str(tmp_path / "run.lock")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import time
                from shared.lake.storage import run_lock
                with run_lock({lock!r}, "doomed"):
                    print("locked", flush=True)
                    time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    with pytest.raises(LakeLocked):
        with run_lock(lock, "while alive"):
            pass
    holder.kill()
    holder.wait()
    with run_lock(lock, "after SIGKILL"):
        pass


# --------------------------------------------------------------------------- the job context's documents
# The context never touches Spark outside `phase()`, so these pass no session.


def test_a_job_context_commits_its_bookmarks_and_records_its_run_as_documents(tmp_path) -> None:
    settings = Settings(lake_root=str(tmp_path / "lake"))
    layout, store = LakeLayout.of(settings), LocalStorage()
    first = LocalJobContext("load", None, settings)  # type: ignore[arg-type]
    assert first.previous_run_id is None and first.bookmark("load_watermark") is None
    running = read_document(store, layout.run_record(first.run_id, "load"), JobReport)
    assert running == JobReport("load", first.run_id, started_at=first.report.started_at)  # RUNNING

    first.set_bookmark("load_watermark", {"transform_run_id": "20261122T000000000000Z"})
    first.report.table("dim_staff").loaded = 7
    first.commit()

    committed = read_document(store, layout.bookmark("load"), JobBookmarks)
    assert committed is not None and committed.committed_at is not None
    assert committed == JobBookmarks(
        "load",
        first.run_id,
        committed.committed_at,
        {"load_watermark": {"transform_run_id": "20261122T000000000000Z"}},
    )
    stored = json.loads(Path(layout.bookmark("load")).read_text(encoding="utf-8"))
    assert stored["format_version"] == JobBookmarks.FORMAT_VERSION == 1
    record = read_document(store, layout.run_record(first.run_id, "load"), JobReport)
    assert record == first.report and record.status == "SUCCEEDED"
    assert record.tables == {"dim_staff": TableStats(loaded=7)}
    assert (
        json.loads(Path(layout.run_record(first.run_id, "load")).read_text(encoding="utf-8"))[
            "format_version"
        ]
        == JobReport.FORMAT_VERSION
    )

    second = LocalJobContext("load", None, settings)  # type: ignore[arg-type]
    assert second.previous_run_id == first.run_id and second.run_id > first.run_id
    assert second.bookmark("load_watermark") == {"transform_run_id": "20261122T000000000000Z"}


def test_a_run_record_written_before_format_versions_reads_as_version_1() -> None:
    old = {"job": "extract", "run_id": "20261122T000000000000Z", "status": "SUCCEEDED", "seconds": 3.5}
    report = JobReport.from_json({**old, "tables": {"sales_order": {"read": 2, "written": 2}}})
    assert (report.job, report.status, report.seconds, report.phases) == ("extract", "SUCCEEDED", 3.5, {})
    assert report.tables == {"sales_order": TableStats(read=2, written=2)}
    with pytest.raises(DocumentError, match="run record document has no 'status'"):
        JobReport.from_json({"job": "extract", "run_id": "20261122T000000000000Z"})


def test_bookmarks_of_an_unknown_format_version_stop_the_job_naming_the_file(tmp_path) -> None:
    settings = Settings(lake_root=str(tmp_path / "lake"))
    layout = LakeLayout.of(settings)
    newer = {"format_version": 99, "job": "transform", "run_id": "20261122T000000000000Z", "contexts": {}}
    write_json(LocalStorage(), layout.bookmark("transform"), newer)
    with pytest.raises(DocumentError) as refused:
        LocalJobContext("transform", None, settings)  # type: ignore[arg-type]
    assert str(refused.value).startswith(
        f"{layout.bookmark('transform')}: job bookmarks document of format version 99"
    )
    assert "this code reads version 1" in str(refused.value) and "upgrade the jobs" in str(refused.value)
    assert not Path(layout.runs).exists()  # refused before it recorded a run
