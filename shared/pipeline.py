"""The local workflow: extract -> transform -> load, each only if the one before succeeded.

This is the local twin of the Glue workflow (a scheduled trigger starting extract, conditional
triggers on SUCCEEDED for the next jobs). It holds the lake's run lock for the whole run, checks
that the databases answer before starting Spark work, and returns one report per job.
Every failure becomes one line with any password masked (`one_line`, `redact`): that line is what
the CLI prints and what the run history in the lake keeps.
Called by `totes run` and by the integration tests.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from urllib.parse import quote

from pyspark.sql import SparkSession

from shared.config import ConfigError, Settings
from shared.jobs import extract, load, transform
from shared.lake import LakeLocked, run_lock
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
        ctx.finish("FAILED", redact(one_line(exc), settings))
        raise
    if ctx.report.message:  # a succeeded job's notes (e.g. source columns not in the contract)
        ctx.finish(ctx.report.status, redact(ctx.report.message, settings))
    return ctx.report


# postgresql://user:secret@host, password=secret, "password": "secret": the secret is replaced.
_URL_PASSWORD = re.compile(r"(?i)\b(postgres(?:ql)?://[^:/@\s]+:)[^@\s]+@")
_KEY_PASSWORD = re.compile(r"""(?i)(\bpassword["']?\s*[=:]\s*["']?)[^\s"'&,;}]+""")
MASK = "***"


def one_line(exc: BaseException) -> str:
    """The reason of a failure on one line, without a Java stack trace, passwords masked."""
    if isinstance(exc, SourceUnreachable | SchemaDrift | WarehouseError | ConfigError | LakeLocked):
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    else:
        from shared.sources import java_reason

        text = f"{type(exc).__name__}: {java_reason(exc)}"
    return redact(text)


def redact(text: str, settings: Settings | None = None) -> str:
    """`text` with the passwords of `settings` (and anything shaped like a password) masked."""
    if settings is not None:
        for url in (settings.totesys, settings.warehouse):
            if url is not None and url.password:
                for form in {url.password, quote(url.password, safe="")}:
                    text = text.replace(form, MASK)
    text = _URL_PASSWORD.sub(rf"\g<1>{MASK}@", text)
    return _KEY_PASSWORD.sub(rf"\g<1>{MASK}", text)


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
                raise JobFailed(name, redact(one_line(exc), settings), reports) from exc
    return reports
