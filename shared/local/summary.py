"""What `totes run` prints: a progress line per job while it works, then the run summary.

The summary lists, per job, the source tables (ToteSys: rows read, written to the ingestion zone,
quarantined) apart from the star tables (rows read, written to the processed zone, loaded into the
warehouse), because a job's report mixes both kinds under one `tables` map
(`shared.runtime.context.JobReport`). Called by `shared/local/cli.py`; pure formatting, no I/O
except the progress lines written to the stream it is given.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

from shared.contract.source import SOURCE_TABLES
from shared.contract.star import STAR_TABLES

if TYPE_CHECKING:  # the summary never needs Spark; JobReport's module imports it
    from shared.runtime.context import JobReport, TableStats

SOURCE_COLUMNS = ("read", "written", "quarantined")
STAR_COLUMNS = ("read", "written", "loaded")
NAME_WIDTH = 22


@contextmanager
def job_progress(name: str, out: TextIO | None = None) -> Iterator[None]:
    """Print `  <job> ... ` when a job starts and `done in 12.3 s` (or `FAILED after ...`) when it ends."""
    stream = out or sys.stdout
    stream.write(f"  {name} ... ")
    stream.flush()
    started = time.monotonic()
    try:
        yield
    except BaseException:
        stream.write(f"FAILED after {time.monotonic() - started:.1f} s\n")
        stream.flush()
        raise
    stream.write(f"done in {time.monotonic() - started:.1f} s\n")
    stream.flush()


def _section(title: str, tables: dict[str, TableStats], columns: Sequence[str]) -> list[str]:
    if any(stats.compacted_files for stats in tables.values()):
        columns = (*columns, "compacted_files")
    widths = [max(len(c) + 2, 10) for c in columns]
    header = f"  {title:<{NAME_WIDTH}}" + "".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True))
    lines = [header]
    for name, stats in tables.items():
        cells = "".join(f"{getattr(stats, c):>{w}}" for c, w in zip(columns, widths, strict=True))
        lines.append(f"  {name:<{NAME_WIDTH}}{cells}")
    return lines


def _star_order(name: str) -> tuple[int, str]:
    return (1 if STAR_TABLES[name].is_fact else 0, name)


def render_report(report: JobReport) -> list[str]:
    """One job's lines: its status, then its source tables and its star tables as two sections."""
    lines = [f"{report.job} [{report.status}] run {report.run_id} in {report.seconds:.1f} s"]
    if report.message:
        lines.append(f"  {report.message}")
    if not report.tables:
        return [*lines, "  nothing new"]
    source = {n: s for n, s in sorted(report.tables.items()) if n in SOURCE_TABLES}
    star = {
        n: report.tables[n] for n in sorted((n for n in report.tables if n in STAR_TABLES), key=_star_order)
    }
    other = {n: s for n, s in sorted(report.tables.items()) if n not in source and n not in star}
    if source:
        lines += _section("source tables", source, SOURCE_COLUMNS)
    if star:
        lines += _section("star tables", star, STAR_COLUMNS)
    if other:  # nothing reports other names today; never hide one that does
        lines += _section("other", other, (*SOURCE_COLUMNS, "loaded"))
    return lines


def render_reports(reports: Sequence[JobReport]) -> str:
    """The run summary: each job's lines, a blank line between jobs."""
    return "\n\n".join("\n".join(render_report(r)) for r in reports)
