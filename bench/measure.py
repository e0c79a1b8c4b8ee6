"""What the benchmark measures, and how: a timed `totes run` subprocess with its peak memory, the
COPY floor, and the pure arithmetic of the results table.

Peak memory is the kernel's own high-water mark of each process's resident set (`VmHWM` in
/proc/<pid>/status), read every `POLL_SECONDS` for the `totes` process and every descendant while
the run lasts (VmHWM never goes down, so the last reading before a process exits is its peak, give
or take one poll interval of growth). The `totes` process is "the driver" (Python); the `java`
process under it is "the JVM" (Spark's driver and, in local mode, its executors).
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench.profile import summarise_event_logs
from shared.config import Settings
from shared.lake.documents import read_document
from shared.lake.layout import LakeLayout
from shared.lake.storage import LocalStorage
from shared.runtime.context import JobReport

POLL_SECONDS = 0.2
_SPARK_READY = re.compile(r"spark ready in ([0-9.]+) s")


# ------------------------------------------------------------------ memory of a process tree


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _status(pid: int) -> tuple[str, int] | None:
    """(process name, VmHWM in KiB) of a live process, None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    name = re.search(r"^Name:\s*(\S+)", text, re.M)
    hwm = re.search(r"^VmHWM:\s*(\d+) kB", text, re.M)
    if not name or not hwm:
        return None
    return name.group(1), int(hwm.group(1))


class PeakMemory:
    """Samples the VmHWM of a process and all its descendants until `stop()`."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peaks: dict[int, tuple[str, int]] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._done.is_set():
            pending, seen = [self.root], set()
            while pending:
                pid = pending.pop()
                if pid in seen:
                    continue
                seen.add(pid)
                status = _status(pid)
                if status is not None:
                    self.peaks[pid] = (status[0], max(status[1], self.peaks.get(pid, ("", 0))[1]))
                pending.extend(_children(pid))
            self._done.wait(POLL_SECONDS)

    def stop(self) -> dict[str, float]:
        """Peak RSS in MiB: `driver` (the totes Python process) and `jvm` (the largest java process)."""
        self._done.set()
        self._thread.join()
        driver = self.peaks.get(self.root, ("", 0))[1]
        jvm = max((kib for name, kib in self.peaks.values() if name == "java"), default=0)
        return {"driver_mib": round(driver / 1024, 1), "jvm_mib": round(jvm / 1024, 1)}


# ------------------------------------------------------------------ one `totes run`


@dataclass
class RunResult:
    """One timed `totes run`: end-to-end seconds, Spark start-up, per-job seconds and phases."""

    seconds: float
    spark_startup: float | None
    jobs: dict[str, float]
    phases: dict[str, dict[str, float]]
    rows: dict[str, dict[str, int]]
    memory: dict[str, float]
    load_average: float = 0.0  # 1-minute load average at the start: other work on the machine
    spark: dict[str, dict[str, float]] = field(default_factory=dict)  # per phase, from the event log
    ok: bool = True
    tail: str = field(default="", repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "spark_startup": self.spark_startup,
            "jobs": self.jobs,
            "phases": self.phases,
            "rows": self.rows,
            "memory": self.memory,
            "load_average": self.load_average,
            "spark": self.spark,
            "ok": self.ok,
        }


def totes_run(totes: str, env: Mapping[str, str], lake_root: Path, log: Path) -> RunResult:
    """Run `totes run` in a fresh process (a fresh JVM, as a Glue job run) and measure it.

    Per-job seconds and phases come from the run records the jobs write under
    `<lake>/_state/runs/` (`LakeLayout.runs`; only the records this run added).
    """
    layout, store = LakeLayout.of(Settings(lake_root=str(lake_root))), LocalStorage()

    def records() -> set[tuple[str, str]]:
        return {key for name in store.list_names(layout.runs) if (key := layout.run_record_of(name))}

    before = records()
    load_average = os.getloadavg()[0]
    event_logs = Path(tempfile.mkdtemp(prefix="eventlog-", dir=log.parent))
    env = {**env, "TOTES_SPARK_EVENT_LOG_DIR": str(event_logs)}
    started = time.monotonic()
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"\n$ totes run  (LAKE_ROOT={lake_root})\n")
        out.flush()
        proc = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            [totes, "run"], env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        memory = PeakMemory(proc.pid)
        output, _ = proc.communicate()
        seconds = time.monotonic() - started
        peaks = memory.stop()
        out.write(output)
    try:
        spark = summarise_event_logs(event_logs)
    finally:
        shutil.rmtree(event_logs, ignore_errors=True)
    ready = _SPARK_READY.search(output)
    jobs: dict[str, float] = {}
    phases: dict[str, dict[str, float]] = {}
    rows: dict[str, dict[str, int]] = {}
    for key in sorted(records() - before):
        report = read_document(store, layout.run_record(*key), JobReport)
        assert report is not None, key
        jobs[report.job] = report.seconds
        phases[report.job] = report.phases
        for table, stats in report.tables.items():
            moved = {"load": stats.loaded, "transform": stats.written}.get(report.job, stats.read)
            if moved:
                rows.setdefault(report.job, {})[table] = moved
    return RunResult(
        seconds=round(seconds, 2),
        spark_startup=float(ready.group(1)) if ready else None,
        jobs=jobs,
        phases=phases,
        rows=rows,
        memory=peaks,
        load_average=round(load_average, 2),
        spark=spark,
        ok=proc.returncode == 0 and len(jobs) == 3,
        tail="\n".join(output.strip().splitlines()[-5:]),
    )


# ------------------------------------------------------------------ the COPY floor


def copy_floor(
    source_url: str, warehouse_url: str, tables: Sequence[str], warehouse_tables: Sequence[str]
) -> dict[str, float]:
    """The physical floor on the same server and data: seconds to COPY every source table out of
    PostgreSQL, and to COPY the warehouse tables the pipeline produced back into empty copies.

    The copies are `LIKE ... INCLUDING ALL` (primary keys, unique version keys and defaults, no
    foreign keys) in a scratch schema, dropped afterwards. The warehouse rows are dumped to a
    temporary file first, untimed.
    """
    out_seconds = 0.0
    out_bytes = 0
    with psycopg.connect(source_url) as conn, conn.cursor() as cur:
        for table in tables:
            started = time.monotonic()
            with cur.copy(sql.SQL("COPY (SELECT * FROM {}) TO STDOUT").format(sql.Identifier(table))) as copy:
                for block in copy:
                    out_bytes += len(block)
            out_seconds += time.monotonic() - started
    in_seconds = 0.0
    in_bytes = 0
    with psycopg.connect(warehouse_url) as conn, tempfile.TemporaryDirectory() as tmp:
        scratch = sql.Identifier("bench_floor")
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(scratch))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(scratch))
        for table in warehouse_tables:
            dump = Path(tmp) / f"{table}.copy"
            with conn.cursor() as cur, open(dump, "wb") as handle:
                with cur.copy(sql.SQL("COPY {} TO STDOUT").format(sql.Identifier(table))) as copy:
                    for block in copy:
                        handle.write(block)
            conn.execute(
                sql.SQL("CREATE TABLE {}.{} (LIKE public.{} INCLUDING ALL)").format(
                    scratch, sql.Identifier(table), sql.Identifier(table)
                )
            )
            conn.commit()
            in_bytes += dump.stat().st_size
            started = time.monotonic()
            with conn.cursor() as cur, open(dump, "rb") as handle:
                with cur.copy(
                    sql.SQL("COPY {}.{} FROM STDIN").format(scratch, sql.Identifier(table))
                ) as copy:
                    while block := handle.read(1 << 20):
                        copy.write(block)
            conn.commit()
            in_seconds += time.monotonic() - started
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(scratch))
        conn.commit()
    return {
        "seconds": round(out_seconds + in_seconds, 2),
        "copy_out_seconds": round(out_seconds, 2),
        "copy_in_seconds": round(in_seconds, 2),
        "copy_out_mib": round(out_bytes / 2**20, 1),
        "copy_in_mib": round(in_bytes / 2**20, 1),
    }


# ------------------------------------------------------------------ arithmetic of the table


def median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 2) if present else None


def summarise(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Medians over repetitions of `RunResult.to_json()` documents (per job and per phase too)."""
    jobs = sorted({j for r in runs for j in r["jobs"]})
    phases: dict[str, dict[str, float | None]] = {}
    for job in jobs:
        names = sorted({p for r in runs for p in r["phases"].get(job, {})})
        phases[job] = {p: median(r["phases"].get(job, {}).get(p, 0.0) for r in runs) for p in names}
    spark_phases = sorted({p for r in runs for p in r.get("spark", {})})
    spark = {
        p: {
            k: median(r.get("spark", {}).get(p, {}).get(k, 0.0) for r in runs)
            for k in ("spark_jobs", "job_seconds", "task_seconds", "gc_seconds")
        }
        for p in spark_phases
    }
    return {
        "n": len(runs),
        "spark": spark,
        "seconds": median(r["seconds"] for r in runs),
        "spark_startup": median(r["spark_startup"] for r in runs),
        "jobs": {j: median(r["jobs"].get(j) for r in runs) for j in jobs},
        "phases": phases,
        "driver_mib": max((r["memory"]["driver_mib"] for r in runs), default=None),
        "jvm_mib": max((r["memory"]["jvm_mib"] for r in runs), default=None),
        "load_average": median(r.get("load_average") for r in runs),
        "ok": all(r["ok"] for r in runs),
    }


def ratio(seconds: float | None, floor: float | None) -> float | None:
    return round(seconds / floor, 1) if seconds is not None and floor else None


def environment() -> dict[str, Any]:
    """The machine the numbers come from."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    java = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False).stderr  # noqa: S607
    import platform

    import pyspark

    return {
        "cores": os.cpu_count(),
        "cpu": model.group(1).strip() if model else "unknown",
        "memory_gib": round(int(mem.group(1)) / 2**20, 1) if mem else None,
        "java": java.splitlines()[0] if java else "unknown",
        "python": platform.python_version(),
        "spark": pyspark.__version__,
        "kernel": platform.release(),
        "load_average_at_start": os.getloadavg()[0],
    }
