"""The one job registry of both runtimes: what each job needs reachable, how it runs, how its
failure is masked.

`totes run`'s in-process workflow (shared/local/workflow.py) and the Glue seam (shared/runtime/glue.py) both look
a job up here and run it with `run_registered(ctx, reader)`; only the extract's reader differs
(`shared.local.workflow.LocalReader` with the emulated bookmarks, `shared.runtime.glue.GlueReader` with Glue's
own). So neither runtime can lose what the other does: the databases checked before a job starts,
the notes a succeeded job leaves in its run history (e.g. source columns not in the contract), and
the masking of a failure's one line (the configured passwords, and anything shaped like one).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import quote

from shared.config import ConfigError, PgUrl, Settings
from shared.jdbc.sources import SchemaDrift, SourceUnreachable
from shared.jdbc.warehouse import WarehouseError
from shared.jobs import extract, load, transform
from shared.jobs.extract import Reader
from shared.lake.storage import LakeLocked
from shared.runtime.context import JobContext, JobReport


@dataclass(frozen=True)
class JobSpec:
    """One job of the workflow, the same on Glue and locally."""

    name: str
    # The databases that must answer before the job starts (a bad URL or secret fails here, in one
    # line naming its setting, before any Spark work).
    databases: Callable[[Settings], tuple[PgUrl, ...]]
    # The library job itself. `reader` is the runtime's extract read; the other jobs read the lake.
    run: Callable[[JobContext, Reader], object]


def _extract(ctx: JobContext, reader: Reader) -> None:
    extract.run(ctx, reader)


def _transform(ctx: JobContext, reader: Reader) -> None:
    transform.run(ctx)


def _load(ctx: JobContext, reader: Reader) -> None:
    load.run(ctx)


# In workflow order: the Glue workflow's triggers chain the jobs in this order too (terraform/glue.tf).
REGISTRY: dict[str, JobSpec] = {
    "extract": JobSpec("extract", lambda s: (s.require_totesys(),), _extract),
    "transform": JobSpec("transform", lambda s: (), _transform),
    "load": JobSpec("load", lambda s: (s.require_warehouse(),), _load),
}
JOBS: tuple[str, ...] = tuple(REGISTRY)


def job_spec(name: str) -> JobSpec:
    """The registered job `name`, or a ConfigError listing the jobs there are."""
    if name not in REGISTRY:
        raise ConfigError(f"unknown job {name!r}: expected one of {', '.join(JOBS)}")
    return REGISTRY[name]


def databases_needed(settings: Settings, names: Iterable[str]) -> list[PgUrl]:
    """The databases the jobs `names` need reachable, each once, in workflow order."""
    needed: list[PgUrl] = []
    for name in names:
        for url in job_spec(name).databases(settings):
            if url not in needed:
                needed.append(url)
    return needed


def run_registered(ctx: JobContext, reader: Reader) -> JobReport:
    """Run the job `ctx.name` to its commit, or record it FAILED (masked) and re-raise.

    The run history keeps a succeeded job's notes, masked too. `ctx` is either runtime's context
    (LocalJobContext, or GlueJobContext built on it: both record their run in `<LAKE_ROOT>/_state/runs`).
    """
    spec = job_spec(ctx.name)
    try:
        spec.run(ctx, reader)
    except BaseException as exc:
        ctx.finish("FAILED", failure_reason(exc, ctx.settings))
        raise
    if ctx.report.message:  # a succeeded job's notes (e.g. source columns not in the contract)
        ctx.finish(ctx.report.status, redact(ctx.report.message, ctx.settings))
    return ctx.report


# ---------------------------------------------------------------------------------------------
# The masking of every failure
# ---------------------------------------------------------------------------------------------

# postgresql://user:secret@host, password=secret, "password": "secret": the secret is replaced.
_URL_PASSWORD = re.compile(r"(?i)\b(postgres(?:ql)?://[^:/@\s]+:)[^@\s]+@")
_KEY_PASSWORD = re.compile(r"""(?i)(\bpassword["']?\s*[=:]\s*["']?)[^\s"'&,;}]+""")
MASK = "***"


def failure_reason(exc: BaseException, settings: Settings | None) -> str:
    """The one line a failed job reports and records: `one_line`, with `settings`' passwords masked.

    `settings` is None when the failure came before there was a configuration (then only what is
    shaped like a password can be masked; configuration errors never hold a secret).
    """
    return redact(one_line(exc), settings)


def one_line(exc: BaseException) -> str:
    """The reason of a failure on one line, without a Java stack trace, passwords masked."""
    if isinstance(exc, SourceUnreachable | SchemaDrift | WarehouseError | ConfigError | LakeLocked):
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    else:
        from shared.jdbc.sources import java_reason

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
