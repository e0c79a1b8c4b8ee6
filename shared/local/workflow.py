"""The local workflow: extract -> transform -> load, each only if the one before succeeded.

This is the local twin of the Glue workflow (a scheduled trigger starting extract, conditional
triggers on SUCCEEDED for the next jobs). It holds the lake's run lock for the whole run, checks
that the databases answer before starting Spark work, and returns one report per job.
Every failure becomes one line with any password masked (`shared.runtime.registry.failure_reason`): that
line is what the CLI prints and what the run history in the lake keeps. The jobs, what each needs
reachable and how its failure is masked come from the one registry both runtimes use
(shared/runtime/registry.py); this module adds the local reader and the lock.
Called by `totes run` and by the integration tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext, suppress
from datetime import timedelta

from pyspark.sql import SparkSession

from shared.config import Settings
from shared.contract.source import SourceTable
from shared.jdbc.sources import DriverConnection, Increment, check_reachable, read_increment
from shared.jobs import extract
from shared.lake.layout import LakeLayout
from shared.lake.storage import run_lock
from shared.runtime.context import JobContext, JobReport, LocalJobContext
from shared.runtime.registry import (
    JOBS,
    databases_needed,
    failure_reason,
    job_spec,
    one_line,
    redact,
    run_registered,
)

__all__ = ["JOBS", "JobFailed", "LocalReader", "one_line", "redact", "run_job", "run_workflow"]


class JobFailed(RuntimeError):
    """A job failed; the message is the one-line reason. Later jobs were not started."""

    def __init__(self, job: str, reason: str, reports: list[JobReport]) -> None:
        super().__init__(f"{job} failed: {reason}")
        self.job = job
        self.reason = reason
        self.reports = reports


class LocalReader:
    """The extract's incremental read with emulated Glue bookmarks (see shared/jdbc/sources.py).

    An `extract.Reader` for one job run: the no-change probes of all its tables share one driver
    connection to ToteSys, opened at the first probe and closed with the reader (`with`).
    """

    def __init__(self) -> None:
        self._probe: DriverConnection | None = None

    def __call__(self, ctx: JobContext, table: SourceTable) -> Increment:
        url = ctx.settings.require_totesys()
        if self._probe is None:
            self._probe = DriverConnection(ctx.spark, url)
        return read_increment(
            ctx.spark,
            url,
            table,
            ctx.bookmark(extract.transformation_ctx(table.name)),
            lookback=timedelta(minutes=ctx.settings.lookback_minutes),
            probe=self._probe,
        )

    def __enter__(self) -> LocalReader:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._probe is not None:
            with suppress(Exception):  # a connection ToteSys already dropped: nothing left to close
                self._probe.close()


def run_job(name: str, spark: SparkSession, settings: Settings) -> JobReport:
    """Run one registered job to its commit, or record it as FAILED (masked) and raise."""
    job_spec(name)  # an unknown job fails before it writes any state
    with LocalReader() as reader:
        return run_registered(LocalJobContext(name, spark, settings), reader)


def run_workflow(
    spark: SparkSession,
    settings: Settings,
    jobs: Sequence[str] = JOBS,
    progress: Callable[[str], AbstractContextManager[object]] | None = None,
) -> list[JobReport]:
    """Run `jobs` in order under the lake lock; stop at the first failure (raises JobFailed).

    Every database one of the jobs needs (shared.runtime.registry) is checked before the first starts.
    `progress(job)`, when given, wraps each job (`totes run` prints a line per job with it:
    shared.local.summary.job_progress).
    """
    reports: list[JobReport] = []
    with run_lock(LakeLayout.of(settings).lock, f"totes run ({', '.join(jobs)})"):
        for url in databases_needed(settings, jobs):
            check_reachable(spark, url)
        for name in jobs:
            with progress(name) if progress else nullcontext():
                try:
                    reports.append(run_job(name, spark, settings))
                except Exception as exc:
                    raise JobFailed(name, failure_reason(exc, settings), reports) from exc
    return reports
