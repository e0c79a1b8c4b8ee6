"""The benchmark's verdicts on its targets, its markdown table (bench/results/latest.md) and what
the measured runs would cost on AWS Glue.

The targets are issue 12's (a 20-minute change in seconds, the full load near the COPY floor),
plus issue 5's that still hold (the incremental run does not grow with history). Each is reported
met, NOT MET or not measured (a scale the run did not include), never left out.
"""

from __future__ import annotations

from typing import Any

JOBS = ("extract", "transform", "load")
FULL_LOAD_MAX_X_FLOOR = 8.0  # at scale 100
FULL_LOAD_SCALE = 100.0
INCREMENTAL_MAX_SECONDS = 15.0  # end to end, Spark start-up included, at every scale
INCREMENTAL_TRANSFORM_MAX_SECONDS = 6.0
INCREMENTAL_TRANSFORM_MAX_SPARK_JOBS = 25
INCREMENTAL_MAX_GROWTH = 1.5
NO_CHANGE_MAX_SECONDS = 5.0

# AWS Glue's bill for a job run (https://aws.amazon.com/glue/pricing/, Glue 5.0 Spark jobs):
# DPU-hours = workers x DPU per worker x the run's seconds / 3600, each run billed for at least
# GLUE_MINIMUM_SECONDS; at GLUE_PRICE_PER_DPU_HOUR (the published us-east-1 rate: check your region's,
# e.g. eu-west-2, the stack's default). The stack runs each job on 2 G.1X workers (1 DPU each:
# terraform/variables.tf), 72 workflow runs a day (the trigger's cron(0/20 * * * ? *)).
GLUE_WORKERS = 2
GLUE_DPU_PER_WORKER = 1  # G.1X
GLUE_MINIMUM_SECONDS = 60.0
GLUE_PRICE_PER_DPU_HOUR = 0.44
RUNS_PER_DAY = 72
SCENARIOS = (
    ("full", "full load"),
    ("incremental", "incremental (20-min change)"),
    ("no_change", "no change"),
)


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def spark_jobs(summary: dict[str, Any], job: str) -> int | None:
    """Spark jobs a job ran in a scenario (median over its runs), from the event log's phases."""
    if "spark" not in summary:  # an older results file, from before the event log was read
        return None
    counts = [
        v.get("spark_jobs") or 0 for phase, v in summary["spark"].items() if phase.startswith(f"{job}:")
    ]
    return int(sum(counts))


def _incremental_targets(scales: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for scale in sorted(scales, key=lambda s: s["scale"]):
        inc = scale["incremental"]
        transform = inc["jobs"].get("transform")
        jobs = spark_jobs(inc, "transform")
        out += [
            {
                "target": f"20-minute change at scale {scale['scale']:g}: at most {INCREMENTAL_MAX_SECONDS:g} s "
                "end to end, Spark start-up included",
                "measured": f"{inc['seconds']} s (Spark start-up {inc['spark_startup']} s; "
                + ", ".join(f"{j} {inc['jobs'].get(j)} s" for j in JOBS)
                + ")",
                "met": inc["seconds"] is not None and inc["seconds"] <= INCREMENTAL_MAX_SECONDS,
            },
            {
                "target": f"20-minute change at scale {scale['scale']:g}: the transform at most "
                f"{INCREMENTAL_TRANSFORM_MAX_SECONDS:g} s and {INCREMENTAL_TRANSFORM_MAX_SPARK_JOBS} Spark jobs",
                "measured": f"{transform} s, {jobs} Spark jobs",
                "met": transform is not None
                and transform <= INCREMENTAL_TRANSFORM_MAX_SECONDS
                and jobs is not None
                and jobs <= INCREMENTAL_TRANSFORM_MAX_SPARK_JOBS,
            },
        ]
    return out


def targets(scales: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target with the measured value and whether it is met (None: not measured)."""
    out: list[dict[str, Any]] = []
    if not scales:
        return out
    largest = max(scales, key=lambda s: s["scale"])
    smallest_1 = next((s for s in scales if s["scale"] == 1), None)
    out += _incremental_targets(scales)
    at_100 = next((s for s in scales if s["scale"] == FULL_LOAD_SCALE), None)
    target = f"full load at scale {FULL_LOAD_SCALE:g} within {FULL_LOAD_MAX_X_FLOOR:g}x the COPY floor"
    if at_100 is None:
        out.append({"target": target, "measured": "scale 100 not in this run", "met": None})
    else:
        full = at_100["full"]
        out.append(
            {
                "target": target,
                "measured": f"{full['seconds']} s = {full['x_floor']}x the floor ({at_100['floor']['seconds']} s); "
                f"driver peak {full['driver_mib']} MiB, JVM peak {full['jvm_mib']} MiB",
                "met": bool(
                    full["ok"] and full["x_floor"] is not None and full["x_floor"] <= FULL_LOAD_MAX_X_FLOOR
                ),
            }
        )
    at_1000 = next((s for s in scales if s["scale"] == 1000), None)
    out.append(
        {
            "target": "scale 1000: the full load finishes with the driver's memory flat",
            "measured": "scale 1000 not in this run (make bench BENCH_SCALES=1000)"
            if at_1000 is None
            else f"{at_1000['full']['seconds']} s; driver peak {at_1000['full']['driver_mib']} MiB, "
            f"JVM peak {at_1000['full']['jvm_mib']} MiB",
            "met": None if at_1000 is None else bool(at_1000["full"]["ok"]),
        }
    )
    if smallest_1 is not None and largest is not smallest_1:
        a, b = smallest_1["incremental"]["seconds"], largest["incremental"]["seconds"]
        growth = round(b / a, 2) if a else None
        out.append(
            {
                "target": f"incremental at scale {largest['scale']:g} <= {INCREMENTAL_MAX_GROWTH:g}x the one at scale 1",
                "measured": f"{b} s vs {a} s = {growth}x",
                "met": growth is not None and growth <= INCREMENTAL_MAX_GROWTH,
            }
        )
    worst = max(scales, key=lambda s: s["no_change"]["seconds"] or 0)
    out.append(
        {
            "target": f"no change: all three jobs in at most {NO_CHANGE_MAX_SECONDS:g} s, Spark start-up included",
            "measured": f"at most {worst['no_change']['seconds']} s (scale {worst['scale']:g})",
            "met": (worst["no_change"]["seconds"] or 0) <= NO_CHANGE_MAX_SECONDS,
        }
    )
    return out


def glue_cost(scenario: dict[str, Any]) -> dict[str, Any]:
    """What one workflow run of `scenario` (its median job seconds) costs on Glue, and 72 a day.

    The job seconds are this machine's: a Glue worker has its own speed and a job run its own
    start-up, so this is an estimate; below GLUE_MINIMUM_SECONDS a job costs the minimum anyway.
    """
    per_job = {}
    for job in JOBS:
        seconds = scenario["jobs"].get(job) or 0.0
        billed = max(seconds, GLUE_MINIMUM_SECONDS)
        per_job[job] = {
            "seconds": seconds,
            "billed_seconds": billed,
            "dpu_seconds": round(billed * GLUE_WORKERS * GLUE_DPU_PER_WORKER, 1),
        }
    dpu_seconds = sum(j["dpu_seconds"] for j in per_job.values())
    run_usd = dpu_seconds / 3600 * GLUE_PRICE_PER_DPU_HOUR
    return {
        "jobs": per_job,
        "dpu_seconds": round(dpu_seconds, 1),
        "run_usd": round(run_usd, 4),
        "day_usd": round(run_usd * RUNS_PER_DAY, 2),
    }


def _phase_line(summary: dict[str, Any], top: int = 4) -> str:
    items = [
        (f"{job}: {name}", seconds)
        for job, phases in summary["phases"].items()
        for name, seconds in phases.items()
        if seconds
    ]
    items.sort(key=lambda kv: -kv[1])
    return "; ".join(f"{name} {seconds:.1f}" for name, seconds in items[:top])


def render_markdown(document: dict[str, Any]) -> str:
    machine = document["machine"]
    settings = document["settings"]
    lines = [
        "# Benchmark results",
        "",
        f"`{document['command']}`, started {document['started_at']}, "
        f"{document.get('seconds', 0) / 60:.1f} min in all.",
        f"Machine: {machine['cores']} cores ({machine['cpu']}), {machine['memory_gib']} GiB RAM; "
        f"{machine['java']}; Python {machine['python']}; Spark {machine['spark']}; "
        f"load average {machine['load_average_at_start']:.2f} at start. "
        f"Spark driver memory {settings['driver_memory']}.",
        "",
        "Seconds are medians of the runs counted in `n`; memory is the peak over those runs; "
        "`load avg` is the median 1-minute load average when the runs started (above the core "
        "count, other work was competing for the CPU).",
        "",
        "| scale | sales orders | payments | scenario | n | end to end s | Spark start s | extract s "
        "| transform s | load s | Spark jobs E / T / L | driver MiB | JVM MiB | x floor | load avg |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scale in document["scales"]:
        sizes = scale["sizes"]
        head = f"| {scale['scale']:g} | {sizes['sales_order']:,} | {sizes['payment']:,} "
        floor = scale["floor"]
        lines.append(
            head + f"| COPY floor (out {floor['copy_out_seconds']} s + in {floor['copy_in_seconds']} s) "
            f"| {floor['n']} | {_fmt(floor['seconds'], 2)} | | | | | | | | 1.0 | |"
        )
        for key, label in SCENARIOS:
            s = scale[key]
            jobs = s["jobs"]
            lines.append(
                head + f"| {label} | {s['n']} | {_fmt(s['seconds'])} | {_fmt(s['spark_startup'])} "
                f"| {_fmt(jobs.get('extract'))} | {_fmt(jobs.get('transform'))} | {_fmt(jobs.get('load'))} "
                f"| {' / '.join(_fmt(spark_jobs(s, j)) for j in JOBS)} "
                f"| {_fmt(s['driver_mib'], 0)} | {_fmt(s['jvm_mib'], 0)} | {_fmt(s['x_floor'])} "
                f"| {_fmt(s.get('load_average'), 2)} |"
            )
    lines += ["", "Seeding (generate_series inside PostgreSQL):", ""]
    for scale in document["scales"]:
        lines.append(
            f"- scale {scale['scale']:g}: {sum(scale['sizes'].values()):,} rows in {scale['seed_seconds']} s"
        )
    lines += ["", "## Targets", ""]
    for t in document.get("targets", []):
        verdict = {True: "MET", False: "NOT MET", None: "not measured"}[t["met"]]
        lines.append(f"- **{verdict}**: {t['target']}: {t['measured']}")
    lines += ["", "## Where the time goes (median seconds per phase, largest first)", ""]
    for scale in document["scales"]:
        for key, label in SCENARIOS:
            lines.append(f"- scale {scale['scale']:g}, {label}: {_phase_line(scale[key])}")
            spark = scale[key].get("spark") or {}
            if spark:
                lines.append(
                    "  - Spark jobs (wall s): "
                    + "; ".join(
                        f"{phase} {v['spark_jobs']:g} ({v['job_seconds']:.1f})"
                        for phase, v in sorted(spark.items(), key=lambda kv: -(kv[1]["spark_jobs"] or 0))
                        if v["spark_jobs"]
                    )
                )
    lines += [
        "",
        f"## What it costs on Glue ({GLUE_WORKERS} x G.1X, {GLUE_PRICE_PER_DPU_HOUR} USD per DPU-hour, "
        f"each job run billed at least {GLUE_MINIMUM_SECONDS:g} s, {RUNS_PER_DAY} runs a day)",
        "",
        "| scale | scenario | job seconds E / T / L (this machine) | DPU-seconds per run | USD per run | USD per day |",
        "|---:|---|---|---:|---:|---:|",
    ]
    for scale in document["scales"]:
        for key, label in SCENARIOS[1:]:  # the runs a schedule makes
            cost = glue_cost(scale[key])
            seconds = " / ".join(_fmt(cost["jobs"][j]["seconds"]) for j in JOBS)
            lines.append(
                f"| {scale['scale']:g} | {label} | {seconds} | {cost['dpu_seconds']:,.0f} "
                f"| {cost['run_usd']:.4f} | {cost['day_usd']:.2f} |"
            )
    return "\n".join(lines) + "\n"
