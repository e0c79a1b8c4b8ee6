"""State documents, run ids and the run lock on a real folder; the S3 twin against moto."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from shared.lake.storage import (
    LakeLocked,
    LocalStorage,
    S3Storage,
    new_run_id,
    read_json,
    run_lock,
    write_json,
)


def test_local_state_round_trip_is_atomic_and_lists_only_visible_names(tmp_path) -> None:
    store = LocalStorage()
    target = str(tmp_path / "state" / "bookmarks" / "extract.json")
    assert read_json(store, target) is None
    write_json(store, target, {"run_id": "1", "contexts": {"a": [1, 2]}})
    write_json(store, target, {"run_id": "2", "contexts": {}})
    assert read_json(store, target) == {"run_id": "2", "contexts": {}}
    assert store.list_names(str(tmp_path / "state" / "bookmarks")) == ["extract.json"]  # no temp files left


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
    with run_lock(str(tmp_path), "first run"):
        with pytest.raises(LakeLocked, match="first run"):
            with run_lock(str(tmp_path), "second run"):
                pass
    with run_lock(str(tmp_path), "third run"):  # released: a later run goes ahead
        pass


def test_lock_of_a_killed_process_is_released(tmp_path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import time
                from shared.lake.storage import run_lock
                with run_lock({str(tmp_path)!r}, "doomed"):
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
        with run_lock(str(tmp_path), "while alive"):
            pass
    holder.kill()
    holder.wait()
    with run_lock(str(tmp_path), "after SIGKILL"):
        pass
