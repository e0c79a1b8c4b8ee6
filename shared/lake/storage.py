"""Small, durable state files in the lake: bookmarks, manifests, run history and the run lock.

Spark writes the data; this module stores the little JSON documents that say which data is
complete (their types: shared/lake/documents.py; their places: shared/lake/layout.py). Local folders use write-to-temp-then-rename (atomic on POSIX); S3 uses PutObject, which is
atomic per object. Used by the job runtime (shared/runtime/context.py) and by `totes status`.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from shared.config import is_s3


class LakeLocked(RuntimeError):
    """Another run holds this lake's lock (the local twin of Glue's max concurrent runs = 1)."""


class Storage(Protocol):
    def read_text(self, location: str) -> str | None: ...
    def write_text(self, location: str, text: str) -> None: ...
    def list_names(self, location: str) -> list[str]: ...
    def exists(self, location: str) -> bool: ...
    def move(self, source: str, target: str) -> None: ...
    def delete(self, location: str) -> None: ...


class LocalStorage:
    def read_text(self, location: str) -> str | None:
        try:
            return Path(location).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def write_text(self, location: str, text: str) -> None:
        path = Path(location)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def list_names(self, location: str) -> list[str]:
        path = Path(location)
        return sorted(p.name for p in path.iterdir() if not p.name.startswith(".")) if path.is_dir() else []

    def exists(self, location: str) -> bool:
        return Path(location).exists()

    def move(self, source: str, target: str) -> None:
        """Rename a file (atomic within one file system), with Hadoop's `.<name>.crc` beside it."""
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        crc = _crc(source)
        if crc.exists():
            os.replace(crc, _crc(target))

    def delete(self, location: str) -> None:
        """Remove a file (and its `.crc`) or a whole folder; nothing if it is already gone."""
        path = Path(location)
        if path.is_dir():
            shutil.rmtree(path)
            return
        path.unlink(missing_ok=True)
        _crc(location).unlink(missing_ok=True)


def _crc(location: str) -> Path:
    path = Path(location)
    return path.with_name(f".{path.name}.crc")


class S3Storage:
    """The same operations on S3 (boto3; tested with moto)."""

    def __init__(self, client: Any = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("s3")
        self._s3 = client

    @staticmethod
    def _split(location: str) -> tuple[str, str]:
        rest = location.split("://", 1)[1]
        bucket, _, key = rest.partition("/")
        return bucket, key

    def read_text(self, location: str) -> str | None:
        bucket, key = self._split(location)
        try:
            body = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except self._s3.exceptions.NoSuchKey:
            return None
        return str(body.decode("utf-8"))

    def write_text(self, location: str, text: str) -> None:
        bucket, key = self._split(location)
        self._s3.put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"))

    def list_names(self, location: str) -> list[str]:
        bucket, key = self._split(location.rstrip("/") + "/")
        names: set[str] = set()
        for page in self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=key, Delimiter="/"
        ):
            names.update(p["Prefix"][len(key) :].rstrip("/") for p in page.get("CommonPrefixes", []))
            names.update(o["Key"][len(key) :] for o in page.get("Contents", []))
        return sorted(n for n in names if n and not n.startswith("."))

    def exists(self, location: str) -> bool:
        """An object at `location` (of any content), or any object under `location/`."""
        bucket, key = self._split(location)
        try:
            self._s3.head_object(Bucket=bucket, Key=key)
            return True
        except self._s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise
        return bool(self.list_names(location))

    def move(self, source: str, target: str) -> None:
        """Server-side copy, then delete: S3 has no rename (files here are far below CopyObject's 5 GB)."""
        bucket, key = self._split(source)
        target_bucket, target_key = self._split(target)
        self._s3.copy_object(Bucket=target_bucket, Key=target_key, CopySource={"Bucket": bucket, "Key": key})
        self._s3.delete_object(Bucket=bucket, Key=key)

    def delete(self, location: str) -> None:
        """Delete one object, or every object under `location/`; nothing if there is none."""
        bucket, key = self._split(location)
        self._s3.delete_object(Bucket=bucket, Key=key)
        prefix = key.rstrip("/") + "/"
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            objects = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if objects:
                # DeleteObjects answers 200 and lists what it could not delete (AccessDenied, an
                # object lock) in Errors: a delete that silently left objects behind is no delete.
                errors = self._s3.delete_objects(Bucket=bucket, Delete={"Objects": objects}).get("Errors", [])
                if errors:
                    raise OSError(
                        f"could not delete {len(errors)} of {len(objects)} objects under s3://{bucket}/{prefix}, "
                        f"e.g. {errors[0].get('Key')}: {errors[0].get('Code')}"
                    )


def storage_for(location: str) -> Storage:
    return S3Storage() if is_s3(location) else LocalStorage()


def read_json(storage: Storage, location: str) -> Any:
    text = storage.read_text(location)
    return None if text is None else json.loads(text)


def write_json(storage: Storage, location: str, document: Any) -> None:
    storage.write_text(location, json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")


RUN_ID_FORMAT = "%Y%m%dT%H%M%S%fZ"


def new_run_id(after: str | None = None, now: datetime | None = None) -> str:
    """A sortable UTC run id (`20261122T004512123456Z`), strictly greater than `after`.

    Run ids order runs: the transform reads extract runs above its watermark, the load reads
    transform runs above its own. Strictly increasing ids keep that order even if the clock stalls.
    """
    stamp = (now or datetime.now(UTC)).strftime(RUN_ID_FORMAT)
    if after is not None and stamp <= after:
        stamp = (datetime.strptime(after, RUN_ID_FORMAT) + timedelta(microseconds=1)).strftime(RUN_ID_FORMAT)
    return stamp


@contextmanager
def run_lock(lock: str, holder: str) -> Iterator[None]:
    """Hold this lake's run lock, the file `lock` (`LakeLayout.lock`), or raise LakeLocked saying who holds it.

    A local lake takes an exclusive flock on the file: the kernel drops it when the holder dies (even
    by SIGKILL), so a crashed run never leaves the lake locked. On S3 the lock is Glue's own
    max-concurrent-runs = 1 and this is a no-op.
    """
    if is_s3(lock):
        yield
        return
    path = Path(lock)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the whole run
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            handle.seek(0)
            who = handle.read().strip() or "another process"
            raise LakeLocked(
                f"another run is already using this lake ({who}); it runs one job at a time, "
                "like Glue's max concurrent runs = 1. Try again when it finishes."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{holder}, pid {os.getpid()}, since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")
        handle.flush()
        yield
    finally:
        handle.close()
