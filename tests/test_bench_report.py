"""The benchmark's verdicts and its Glue cost arithmetic (bench/report.py), on made-up results.

`make bench` itself takes minutes and is not part of the suite; what it concludes from its
measurements is, so a target cannot silently read as met.
"""

from __future__ import annotations

from typing import Any

from bench import report


def scenario(seconds: float, jobs: dict[str, float], spark: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "n": 1,
        "seconds": seconds,
        "spark_startup": 3.0,
        "jobs": jobs,
        "phases": {},
        "spark": {
            phase: {"spark_jobs": n, "job_seconds": 0.1 * n, "task_seconds": 0.0, "gc_seconds": 0.0}
            for phase, n in (spark or {}).items()
        },
        "driver_mib": 115,
        "jvm_mib": 1500,
        "ok": True,
        "x_floor": None,
    }


def scale(value: float, incremental: dict[str, Any], no_change_seconds: float = 4.0) -> dict[str, Any]:
    full = scenario(100.0, {"extract": 20.0, "transform": 60.0, "load": 20.0})
    full["x_floor"] = 7.5
    return {
        "scale": value,
        "sizes": {"sales_order": 11_187, "payment": 15_836},
        "seed_seconds": 0.4,
        "floor": {"seconds": 13.3, "copy_out_seconds": 3.0, "copy_in_seconds": 10.3, "n": 3},
        "full": full,
        "incremental": incremental,
        "no_change": scenario(no_change_seconds, {"extract": 1.0, "transform": 0.0, "load": 0.1}),
    }


def verdicts(scales: list[dict[str, Any]]) -> dict[str, bool | None]:
    return {t["target"]: t["met"] for t in report.targets(scales)}


def test_the_transform_target_counts_the_transforms_spark_jobs_only():
    fast = scenario(
        12.0,
        {"extract": 3.0, "transform": 5.0, "load": 1.0},
        {
            "extract:jdbc read": 40,
            "transform:json read + validate": 15,
            "transform:facts dedupe + append": 10,
        },
    )
    got = verdicts([scale(1, fast)])
    transform = next(t for t in got if "transform at most" in t)
    assert got[transform] is True  # 25 transform jobs: at the target; the extract's 40 do not count
    assert report.spark_jobs(fast, "transform") == 25
    assert report.spark_jobs(fast, "extract") == 40

    one_more = scenario(12.0, fast["jobs"], {"transform:json read + validate": 26})
    assert verdicts([scale(1, one_more)])[transform] is False


def test_each_scale_is_judged_and_scales_not_run_are_reported_not_measured():
    ok = scenario(14.0, {"extract": 3.0, "transform": 6.0, "load": 1.0}, {"transform:x": 20})
    slow = scenario(15.5, {"extract": 3.0, "transform": 6.5, "load": 1.0}, {"transform:x": 20})
    got = verdicts([scale(1, ok), scale(10, slow)])
    assert got["20-minute change at scale 1: at most 15 s end to end, Spark start-up included"] is True
    assert got["20-minute change at scale 10: at most 15 s end to end, Spark start-up included"] is False
    assert got["full load at scale 100 within 8x the COPY floor"] is None
    assert got["scale 1000: the full load finishes with the driver's memory flat"] is None
    assert got["no change: all three jobs in at most 5 s, Spark start-up included"] is True

    with_100 = verdicts([scale(1, ok), scale(100, ok, no_change_seconds=5.5)])
    assert with_100["full load at scale 100 within 8x the COPY floor"] is True  # 7.5x
    assert with_100["no change: all three jobs in at most 5 s, Spark start-up included"] is False


def test_glue_bills_each_job_run_at_least_a_minute_on_two_g1x_workers():
    quick = report.glue_cost(scenario(12.0, {"extract": 3.0, "transform": 5.0, "load": 1.0}))
    assert quick["dpu_seconds"] == 3 * 60 * 2  # three job runs at the 1-minute minimum, 2 DPU each
    assert quick["run_usd"] == round(360 / 3600 * 0.44, 4)
    assert quick["day_usd"] == round(360 / 3600 * 0.44 * 72, 2)

    long = report.glue_cost(scenario(150.0, {"extract": 30.0, "transform": 90.0, "load": 1.0}))
    assert long["dpu_seconds"] == (60 + 90 + 60) * 2
    assert long["jobs"]["transform"]["billed_seconds"] == 90.0


def test_the_markdown_has_a_row_per_scenario_and_the_cost_table():
    doc = {
        "command": "python -m bench.run",
        "started_at": "2026-12-02T05:00:00+00:00",
        "seconds": 60,
        "machine": {
            "cores": 2,
            "cpu": "x",
            "memory_gib": 23.5,
            "java": "openjdk 17",
            "python": "3.11",
            "spark": "3.5.4",
            "load_average_at_start": 0.5,
        },
        "settings": {"driver_memory": "2g"},
        "scales": [
            scale(1, scenario(12.0, {"extract": 3.0, "transform": 5.0, "load": 1.0}, {"transform:x": 9}))
        ],
    }
    doc["targets"] = report.targets(doc["scales"])
    text = report.render_markdown(doc)
    rows = [line for line in text.splitlines() if line.startswith("| 1 | 11,187")]
    assert len(rows) == 4  # the COPY floor and the three scenarios
    header = next(line for line in text.splitlines() if line.startswith("| scale | sales orders"))
    assert all(row.count("|") == header.count("|") for row in rows)
    assert "| 0 / 9 / 0 |" in text
    assert "## What it costs on Glue" in text
    assert "| 1 | incremental (20-minute change) |" not in text  # the label is the scenario's own
    assert "| 1 | incremental (20-min change) | 3.0 / 5.0 / 1.0 | 360 | 0.0440 | 3.17 |" in text
