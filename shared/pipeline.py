"""The local workflow: extract -> transform -> load, each only if the one before succeeded.

This is the local twin of the Glue workflow (a scheduled trigger starting extract, conditional
triggers on SUCCEEDED for the next jobs). It holds the lake's run lock for the whole run, checks
that the databases answer before starting Spark work, and returns one report per job.
Called by `totes run` and by the integration tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from pyspark.sql import SparkSession

from shared.config import ConfigError, Settings
from shared.jobs import extract, load, transform
from shared.lake import run_lock
from shared.runtime import JobContext, JobReport, LocalJobContext
from shared.schema import SourceTable
from shared.sources import Increment, SchemaDrift, SourceUnreachable, check_reachable, read_increment
from shared.warehouse import WarehouseError

JOBS: tuple[str, ...] = ("extract", "transform", "load")


class JobFailed(RuntimeError):
    """A job failed; the message is the one-line reason. Later jobs were not started."""

    def __init__(self, job: str, reason: str, reports: list[JobReport]) -> None:
        super().__init__(f"{job} failed: {reason}")
        self.job = job
        self.reason = reason
        self.reports = reports


def local_reader(ctx: JobContext, table: SourceTable) -> Increment:
    """The extract's incremental read with emulated Glue bookmarks (see shared/sources.py)."""
    return read_increment(
        ctx.spark,
        ctx.settings.require_totesys(),
        table,
        ctx.bookmark(extract.transformation_ctx(table.name)),
        lookback=timedelta(minutes=ctx.settings.lookback_minutes),
    )


def run_job(name: str, spark: SparkSession, settings: Settings) -> JobReport:
    """Run one job to its commit, or record it as FAILED and raise."""
    ctx = LocalJobContext(name, spark, settings)
    try:
        if name == "extract":
            extract.run(ctx, local_reader)
        elif name == "transform":
            transform.run(ctx)
        elif name == "load":
            load.run(ctx)
        else:
            raise ConfigError(f"unknown job {name!r}: expected one of {', '.join(JOBS)}")
    except BaseException as exc:
        ctx.finish("FAILED", one_line(exc))
        raise
    return ctx.report


def one_line(exc: BaseException) -> str:
    if isinstance(exc, SourceUnreachable | SchemaDrift | WarehouseError | ConfigError):
        return str(exc)
    from shared.sources import java_reason

    return f"{type(exc).__name__}: {java_reason(exc)}"


def run_workflow(spark: SparkSession, settings: Settings, jobs: Sequence[str] = JOBS) -> list[JobReport]:
    """Run `jobs` in order under the lake lock; stop at the first failure (raises JobFailed)."""
    reports: list[JobReport] = []
    with run_lock(settings.state, f"totes run ({', '.join(jobs)})"):
        if "extract" in jobs:
            check_reachable(spark, settings.require_totesys())
        if "load" in jobs:
            check_reachable(spark, settings.require_warehouse())
        for name in jobs:
            try:
                reports.append(run_job(name, spark, settings))
            except Exception as exc:
                raise JobFailed(name, one_line(exc), reports) from exc
    return reports
