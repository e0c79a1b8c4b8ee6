"""The job runtime: what a job sees of the platform it runs on.

A job's `run(ctx)` gets a `JobContext`, the one interface of both runtimes (a Protocol): a
SparkSession, the settings, bookmark state per `transformation_ctx`, `commit()`, the run's report.
`LocalJobContext` is the local twin of Glue's `Job`, with the same semantics as Glue job bookmarks:
state is per job and per transformation_ctx, read when the job starts, and advanced only by
`commit()` at the end of a successful run. A run that dies before commit leaves the bookmarks where
they were, so the next run reads the same data again.
Both documents it keeps are typed and versioned (shared/lake/documents.py), where the lake's layout
says (shared/lake/layout.py): the committed bookmarks (`JobBookmarks`, `<state>/bookmarks/<job>.json`)
and the run record (`JobReport`, `<state>/runs/<run_id>-<job>.json`), which `totes status` reads.
The Glue implementation (`GlueJobContext`, a LocalJobContext on S3 that also commits Glue's own
bookmarks) lives in shared/runtime/glue.py, the only module that imports awsglue.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

from pyspark.sql import SparkSession

from shared.config import Settings
from shared.lake.documents import JobBookmarks, _check_version, _require, read_document, write_document
from shared.lake.layout import LakeLayout
from shared.lake.storage import Storage, new_run_id, storage_for


@dataclass
class TableStats:
    read: int = 0
    written: int = 0
    quarantined: int = 0
    loaded: int = 0
    compacted_files: int = 0  # fact data files a compaction replaced (shared/lake/compaction.py)


@dataclass
class JobReport:
    """What one job run did: its run record in the lake (`LakeLayout.run_record`), and the summary."""

    FORMAT_VERSION: ClassVar[int] = 1
    KIND: ClassVar[str] = "run record"

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

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> JobReport:
        """A run record as written by `LocalJobContext` (one written before versions existed is version 1).

        Checked by the documents' own version check and field lookup, so it fails like any document.
        """
        _check_version(document, cls)
        for key in ("job", "run_id", "status"):
            _require(document, key, cls.KIND)
        known = set(TableStats.__dataclass_fields__)
        return cls(
            job=str(document["job"]),
            run_id=str(document["run_id"]),
            status=str(document["status"]),
            started_at=str(document.get("started_at", "")),
            seconds=float(document.get("seconds", 0.0)),
            tables={
                str(name): TableStats(**{k: int(v) for k, v in stats.items() if k in known})
                for name, stats in dict(document.get("tables", {})).items()
            },
            message=str(document.get("message", "")),
            phases={str(k): float(v) for k, v in dict(document.get("phases", {})).items()},
        )


@dataclass(frozen=True)
class Metric:
    """One datapoint a job publishes (on Glue: CloudWatch `put_metric_data`, shared/runtime/glue.py)."""

    name: str
    value: float
    unit: str = "None"  # a CloudWatch unit name
    dimensions: tuple[tuple[str, str], ...] = ()


class JobContext(Protocol):
    """What a job sees of the runtime it runs on: `LocalJobContext` locally, `GlueJobContext` on Glue.

    The jobs (shared/jobs/*) and the registry are typed against this, never against a runtime.
    """

    @property
    def name(self) -> str: ...
    @property
    def spark(self) -> SparkSession: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def run_id(self) -> str: ...
    @property
    def report(self) -> JobReport: ...
    @property
    def previous_run_id(self) -> str | None:
        """The run that last committed this job's bookmarks (None: none has yet)."""
        ...

    def bookmark(self, transformation_ctx: str) -> Any | None:
        """The committed bookmark of `transformation_ctx` (None: none yet)."""
        ...

    def set_bookmark(self, transformation_ctx: str, value: Any) -> None:
        """Stage the new bookmark for `transformation_ctx`; it takes effect only at commit()."""
        ...

    def commit(self) -> None:
        """Make the staged bookmarks the committed ones and record the run as SUCCEEDED."""
        ...

    def finish(self, status: str, message: str = "") -> None:
        """Record the run's end (`status` SUCCEEDED or FAILED, and its one-line message)."""
        ...

    def phase(self, name: str) -> AbstractContextManager[None]:
        """Time one step of the job into `report.phases[name]`."""
        ...

    @property
    def publishes_metrics(self) -> bool:
        """Whether `publish_metrics` sends them anywhere (a job skips work only a metric needs)."""
        ...

    def publish_metrics(self, metrics: Sequence[Metric]) -> None:
        """Publish `metrics` (on Glue to CloudWatch; locally they are kept in `metrics` only)."""
        ...


class LocalJobContext:
    """A `JobContext` whose bookmarks and run records are documents in `<LAKE_ROOT>/_state`.

    `storage` is where they are kept (default: the local folder or S3 of `settings.state`).
    Raises DocumentError naming the file when the committed bookmarks cannot be read (e.g. written
    by a newer release), before the run writes anything.
    """

    def __init__(
        self, name: str, spark: SparkSession, settings: Settings, storage: Storage | None = None
    ) -> None:
        self.layout = LakeLayout.of(settings)
        self._storage = storage or storage_for(settings.state)
        self._location = self.layout.bookmark(name)
        self._committed = read_document(self._storage, self._location, JobBookmarks) or JobBookmarks(name)
        self.name = name
        self.spark = spark
        self.settings = settings
        self.run_id = new_run_id(after=self._committed.run_id)
        self.report = JobReport(job=name, run_id=self.run_id)
        self._pending: dict[str, Any] = {}
        self.metrics: list[Metric] = []  # what the run published (locally: nowhere else)
        self._started = time.monotonic()
        self._record_history()

    @property
    def previous_run_id(self) -> str | None:
        return self._committed.run_id

    def bookmark(self, transformation_ctx: str) -> Any | None:
        return self._committed.contexts.get(transformation_ctx)

    def set_bookmark(self, transformation_ctx: str, value: Any) -> None:
        self._pending[transformation_ctx] = value

    def commit(self) -> None:
        committed = JobBookmarks(
            job=self.name,
            run_id=self.run_id,
            committed_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            contexts={**self._committed.contexts, **self._pending},
        )
        write_document(self._storage, self._location, committed)
        self._committed = committed
        self._pending = {}
        self.finish("SUCCEEDED")

    def finish(self, status: str, message: str = "") -> None:
        self.report.status = status
        self.report.message = message
        self.report.seconds = round(time.monotonic() - self._started, 2)
        self._record_history()

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

    # Locally nothing watches metrics: `totes status` computes freshness itself, and a job does not
    # pay for a measurement nobody reads. GlueJobContext publishes to CloudWatch.
    publishes_metrics: bool = False

    def publish_metrics(self, metrics: Sequence[Metric]) -> None:
        self.metrics.extend(metrics)

    def _record_history(self) -> None:
        write_document(self._storage, self.layout.run_record(self.run_id, self.name), self.report)
