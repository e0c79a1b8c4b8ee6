"""Where the Spark time goes, from Spark's own event log (`spark.eventLog.enabled`).

`totes run` writes one when TOTES_SPARK_EVENT_LOG_DIR is set (shared/local/spark.py). The jobs label
their Spark jobs `<job>:<phase>` (JobContext.phase), so each Spark job, its stages and tasks are
attributed to a phase: `spark_jobs` (how many), `job_seconds` (wall time of those Spark jobs, summed),
`task_seconds` (executor run time of their tasks, summed: CPU-ish work, can exceed wall time with two
cores), `gc_seconds`. Wall time of a phase minus its job seconds is driver-side work (planning,
the metastore, JDBC statements issued by the driver, Python).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any


def summarise_event_log(path: Path) -> dict[str, dict[str, float]]:
    """Per phase description: Spark jobs, their wall seconds, task seconds and GC seconds."""
    job_phase: dict[int, str] = {}
    stage_phase: dict[int, str] = {}
    job_start: dict[int, int] = {}
    out: dict[str, dict[str, float]] = defaultdict(
        lambda: {"spark_jobs": 0, "job_seconds": 0.0, "task_seconds": 0.0, "gc_seconds": 0.0}
    )
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            event: dict[str, Any] = json.loads(line)
            kind = event.get("Event")
            if kind == "SparkListenerJobStart":
                props = event.get("Properties") or {}
                phase = props.get("spark.job.description") or "(outside any phase)"
                job_phase[event["Job ID"]] = phase
                job_start[event["Job ID"]] = event["Submission Time"]
                for stage in event.get("Stage IDs", []):
                    stage_phase[stage] = phase
                out[phase]["spark_jobs"] += 1
            elif kind == "SparkListenerJobEnd":
                job = event["Job ID"]
                if job in job_start:
                    seconds = (event["Completion Time"] - job_start[job]) / 1000
                    out[job_phase[job]]["job_seconds"] += seconds
            elif kind == "SparkListenerTaskEnd":
                metrics = event.get("Task Metrics") or {}
                phase = stage_phase.get(event["Stage ID"], "(outside any phase)")
                out[phase]["task_seconds"] += metrics.get("Executor Run Time", 0) / 1000
                out[phase]["gc_seconds"] += metrics.get("JVM GC Time", 0) / 1000
    return {
        phase: {k: round(v, 2) if isinstance(v, float) else v for k, v in values.items()}
        for phase, values in sorted(out.items())
    }


def summarise_event_logs(directory: Path) -> dict[str, dict[str, float]]:
    """The same, summed over every event log in `directory` (one per `totes run`)."""
    total: dict[str, dict[str, float]] = {}
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        for phase, values in summarise_event_log(path).items():
            into = total.setdefault(phase, dict.fromkeys(values, 0))
            for key, value in values.items():
                into[key] = round(into[key] + value, 2)
    return total
