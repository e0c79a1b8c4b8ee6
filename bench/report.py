"""The benchmark's verdicts on the targets of issue 5, and its markdown table (bench/results/latest.md)."""

from __future__ import annotations

from typing import Any

FULL_LOAD_MAX_X_FLOOR = 15.0
INCREMENTAL_MAX_GROWTH = 1.5
NO_CHANGE_MAX_SECONDS = 60.0
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


def targets(scales: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target with the measured value and whether it is met (None: not measured)."""
    out: list[dict[str, Any]] = []
    if not scales:
        return out
    largest = max(scales, key=lambda s: s["scale"])
    smallest_1 = next((s for s in scales if s["scale"] == 1), None)
    full = largest["full"]
    out.append(
        {
            "target": f"full load at scale {largest['scale']:g} within {FULL_LOAD_MAX_X_FLOOR:g}x the COPY floor",
            "measured": f"{full['seconds']} s = {full['x_floor']}x the floor ({largest['floor']['seconds']} s); "
            f"driver peak {full['driver_mib']} MiB, JVM peak {full['jvm_mib']} MiB",
            "met": bool(
                full["ok"] and full["x_floor"] is not None and full["x_floor"] <= FULL_LOAD_MAX_X_FLOOR
            ),
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
            "target": f"no change: all three jobs under {NO_CHANGE_MAX_SECONDS:g} s, Spark start-up included",
            "measured": f"at most {worst['no_change']['seconds']} s (scale {worst['scale']:g})",
            "met": (worst["no_change"]["seconds"] or 0) < NO_CHANGE_MAX_SECONDS,
        }
    )
    return out


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
        "| transform s | load s | driver MiB | JVM MiB | x floor | load avg |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scale in document["scales"]:
        sizes = scale["sizes"]
        head = f"| {scale['scale']:g} | {sizes['sales_order']:,} | {sizes['payment']:,} "
        floor = scale["floor"]
        lines.append(
            head + f"| COPY floor (out {floor['copy_out_seconds']} s + in {floor['copy_in_seconds']} s) "
            f"| {floor['n']} | {_fmt(floor['seconds'], 2)} | | | | | | | 1.0 |"
        )
        for key, label in SCENARIOS:
            s = scale[key]
            jobs = s["jobs"]
            lines.append(
                head + f"| {label} | {s['n']} | {_fmt(s['seconds'])} | {_fmt(s['spark_startup'])} "
                f"| {_fmt(jobs.get('extract'))} | {_fmt(jobs.get('transform'))} | {_fmt(jobs.get('load'))} "
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
    return "\n".join(lines) + "\n"
