"""The job runtime: what a job sees of the platform it runs on.

A job's `run(ctx)` gets a `JobContext`: a SparkSession, the settings, bookmark state per
`transformation_ctx`, and `commit()`. `LocalJobContext` is the local twin of Glue's `Job`, with the
same semantics as Glue job bookmarks: state is per job and per transformation_ctx, read when the job
starts, and advanced only by `commit()` at the end of a successful run. A run that dies before
commit leaves the bookmarks where they were, so the next run reads the same data again.
The Glue implementation lives in shared/runtime/glue.py, the only module that imports awsglue.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import SparkSession

from shared.config import Settings, join
from shared.lake.storage import Storage, new_run_id, read_json, storage_for, write_json


@dataclass
class TableStats:
    read: int = 0
    written: int = 0
    quarantined: int = 0
    loaded: int = 0
    compacted_files: int = 0  # fact data files a compaction replaced (shared/lake/compaction.py)


@dataclass
class JobReport:
    """What one job run did: written to the run history and printed in the summary."""

    job: str
    run_id: str
    status: str = "RUNNING"
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    seconds: float = 0.0
    tables: dict[str, TableStats] = field(default_factory=dict)
    message: str = ""
    # Wall-clock seconds per step of the job (`JobContext.phase`): the cheap profile of where the
    # time goes, kept in the run history (`make bench` reads it, docs/performance.md).
    phases: dict[str, float] = field(default_factory=dict)

    def table(self, name: str) -> TableStats:
        return self.tables.setdefault(name, TableStats())

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class JobContext:
    """Bookmark state and commit, independent of where the job runs."""

    def __init__(self, name: str, spark: SparkSession, settings: Settings, run_id: str) -> None:
        self.name = name
        self.spark = spark
        self.settings = settings
        self.run_id = run_id
        self.report = JobReport(job=name, run_id=run_id)
        self._pending: dict[str, Any] = {}

    def bookmark(self, transformation_ctx: str) -> Any | None:
        raise NotImplementedError

    def set_bookmark(self, transformation_ctx: str, value: Any) -> None:
        """Stage the new bookmark for `transformation_ctx`; it takes effect only at commit()."""
        self._pending[transformation_ctx] = value

    def commit(self) -> None:
        raise NotImplementedError

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time one step of the job into `report.phases[name]` (summed if repeated).

        The Spark jobs started inside carry `<job>:<name>` as their description, so an event log or
        the Spark UI attributes them to the same step.
        """
        context = self.spark.sparkContext
        context.setJobDescription(f"{self.name}:{name}")
        started = time.monotonic()
        try:
            yield
        finally:
            spent = time.monotonic() - started
            self.report.phases[name] = round(self.report.phases.get(name, 0.0) + spent, 3)
            context.setJobDescription(None)  # type: ignore[arg-type]


class LocalJobContext(JobContext):
    """Bookmarks as one JSON document per job under `<LAKE_ROOT>/_state/bookmarks/`."""

    def __init__(
        self, name: str, spark: SparkSession, settings: Settings, storage: Storage | None = None
    ) -> None:
        self._storage = storage or storage_for(settings.state)
        self._location = join(settings.state, "bookmarks", f"{name}.json")
        self._committed: dict[str, Any] = read_json(self._storage, self._location) or {}
        super().__init__(name, spark, settings, new_run_id(after=self._committed.get("run_id")))
        self._started = time.monotonic()
        self._record_history()

    @property
    def previous_run_id(self) -> str | None:
        return self._committed.get("run_id")

    def bookmark(self, transformation_ctx: str) -> Any | None:
        return self._committed.get("contexts", {}).get(transformation_ctx)

    def commit(self) -> None:
        contexts = {**self._committed.get("contexts", {}), **self._pending}
        document = {
            "job": self.name,
            "run_id": self.run_id,
            "committed_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "contexts": contexts,
        }
        write_json(self._storage, self._location, document)
        self._committed = document
        self._pending = {}
        self.finish("SUCCEEDED")

    def finish(self, status: str, message: str = "") -> None:
        self.report.status = status
        self.report.message = message
        self.report.seconds = round(time.monotonic() - self._started, 2)
        self._record_history()

    def _record_history(self) -> None:
        location = join(self.settings.state, "runs", f"{self.run_id}-{self.name}.json")
        write_json(self._storage, location, self.report.to_json())
