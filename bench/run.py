"""`make bench`: time the pipeline at several ToteSys scales against the COPY floor of the same data.

    .venv/bin/python -m bench.run [--scales 1 10 100] [--repeat 2] [--full-repeat-large 1] [--quick]

For each scale (1 = the real snapshot's volumes, SPEC.md section 1), on its own embedded PostgreSQL
under `.local/bench/pg` (never the one `make run` uses):
1. seed a fresh ToteSys with `seed_synthetic` (generated inside PostgreSQL), timed, then
   VACUUM (FREEZE, ANALYZE) it, as a live database long since is;
2. full load: `totes run` in a fresh process on an empty lake and an empty warehouse, `--repeat`
   times (`--full-repeat-large` times from `--large-scale` up);
3. the floor: COPY of every source table out, COPY of the warehouse tables it produced back in;
4. incremental: a 20-minute change (`totes simulate`: 21 sales and 9 purchase orders, each with
   its transaction and payment, and 3 edits of existing rows), then `totes run`, `--repeat` times;
5. no change: `totes run` with nothing new, `--repeat` times.
Every `totes run` is a fresh process and JVM (Spark start-up included, like a Glue job run).
Results: bench/results/latest.json and latest.md (git-ignored), plus the raw logs there.
Environment variables BENCH_SCALES, BENCH_REPEAT, BENCH_FULL_REPEAT_LARGE, BENCH_LARGE_SCALE set the
defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.measure import RunResult, copy_floor, environment, ratio, summarise, totes_run
from bench.report import render_markdown, targets

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
HOME = ROOT / ".local" / "bench"
# A realistic 20-minute change: "a few dozen new orders" (issue 5) and a few edits.
CHANGE = {"sales_orders": 21, "purchase_orders": 9, "edits": 3}


def _db_suffix(scale: float) -> str:
    return f"{scale:g}".replace(".", "_")


def _say(text: str) -> None:
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {text}", flush=True)


def vacuum(url: str) -> None:
    """VACUUM (FREEZE, ANALYZE) the whole database (it cannot run inside a transaction)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (FREEZE, ANALYZE)")


def bench_scale(
    server: Any, scale: float, repeat: int, full_repeat: int, floor_repeat: int, totes: str, log: Path
) -> dict[str, Any]:
    from shared.contract.source import SOURCE_TABLES
    from shared.jdbc.warehouse import LOAD_ORDER
    from shared.local import totesys

    suffix = _db_suffix(scale)
    source_db, warehouse_db = f"totesys_s{suffix}", f"warehouse_s{suffix}"
    lake = HOME / f"lake_s{suffix}"
    result: dict[str, Any] = {"scale": scale}

    _say(f"scale {scale:g}: seeding ToteSys")
    server.drop_database(source_db)
    server.create_database(source_db)
    started = time.monotonic()
    result["sizes"] = totesys.seed_synthetic(server.url(source_db), scale=scale)
    result["seed_seconds"] = round(time.monotonic() - started, 2)
    # Freshly inserted rows get their hint bits set, and autovacuum visits them, on the first reads
    # after the seed: without this, the full load would pay for that and the COPY floor (timed after
    # it) would not. A live ToteSys has long been vacuumed.
    started = time.monotonic()
    vacuum(server.url(source_db))
    result["vacuum_seconds"] = round(time.monotonic() - started, 2)
    _say(
        f"  seeded in {result['seed_seconds']} s: {result['sizes']['sales_order']:,} sales orders, "
        f"{result['sizes']['payment']:,} payments"
    )

    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if k not in ("INGESTION_ROOT", "CATALOG_DATABASE", "LOOKBACK_MINUTES")
        },
        "SPARK_LOCAL_IP": "127.0.0.1",
        "TOTES_HOME": str(HOME),
        "TOTESYS_URL": server.url(source_db, user="totesys_reader"),  # read-only, as in production
        "WAREHOUSE_URL": server.url(warehouse_db),
        "LAKE_ROOT": str(lake),
    }

    def run(label: str) -> dict[str, Any]:
        outcome: RunResult = totes_run(totes, env, lake, log)
        jobs = ", ".join(f"{j} {s:.1f}" for j, s in outcome.jobs.items())
        _say(
            f"  {label}: {outcome.seconds:.1f} s (spark {outcome.spark_startup} s; {jobs}); "
            f"driver {outcome.memory['driver_mib']} MiB, JVM {outcome.memory['jvm_mib']} MiB"
            + ("" if outcome.ok else f"  FAILED:\n{outcome.tail}")
        )
        if not outcome.ok:
            raise SystemExit(f"bench: totes run failed at scale {scale:g} ({label}); see {log}")
        return outcome.to_json()

    full = []
    for i in range(full_repeat):
        shutil.rmtree(lake, ignore_errors=True)
        server.drop_database(warehouse_db)
        server.create_database(warehouse_db)
        full.append(run(f"full load {i + 1}/{full_repeat}"))
    result["full"] = {**summarise(full), "runs": full}

    floors = []
    for i in range(floor_repeat):
        floors.append(
            copy_floor(server.url(source_db), server.url(warehouse_db), list(SOURCE_TABLES), list(LOAD_ORDER))
        )
        _say(f"  COPY floor {i + 1}/{floor_repeat}: {floors[-1]['seconds']} s")
    result["floor"] = {
        key: sorted(f[key] for f in floors)[len(floors) // 2] for key in floors[0]
    }  # median (odd counts) / upper median
    result["floor"]["n"] = len(floors)

    incremental = []
    for i in range(repeat):
        totesys.simulate(server.url(source_db), **CHANGE, seed=1000 + i)
        incremental.append(run(f"incremental {i + 1}/{repeat}"))
    result["incremental"] = {**summarise(incremental), "runs": incremental}

    unchanged = []
    for i in range(repeat):
        unchanged.append(run(f"no change {i + 1}/{repeat}"))
    result["no_change"] = {**summarise(unchanged), "runs": unchanged}

    for scenario in ("full", "incremental", "no_change"):
        result[scenario]["x_floor"] = ratio(result[scenario]["seconds"], result["floor"]["seconds"])
    return result


def main(argv: list[str] | None = None) -> int:
    env_scales = os.environ.get("BENCH_SCALES", "1 10 100").split()
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[float(s) for s in env_scales])
    parser.add_argument("--repeat", type=int, default=int(os.environ.get("BENCH_REPEAT", "2")))
    parser.add_argument(
        "--full-repeat-large",
        type=int,
        default=int(os.environ.get("BENCH_FULL_REPEAT_LARGE", "1")),
        help="full-load repetitions at scales >= --large-scale (each takes minutes)",
    )
    parser.add_argument(
        "--large-scale",
        type=float,
        default=float(os.environ.get("BENCH_LARGE_SCALE", "10")),
        help="from this scale up, a full load is repeated --full-repeat-large times",
    )
    parser.add_argument("--quick", action="store_true", help="development: scales 0.1 and 1, one run each")
    parser.add_argument("--keep", action="store_true", help="leave the benchmark's PostgreSQL running")
    args = parser.parse_args(argv)
    if args.quick:
        args.scales, args.repeat, args.full_repeat_large = [0.1, 1.0], 1, 1

    from shared.local.embedded_pg import EmbeddedPostgres

    RESULTS.mkdir(parents=True, exist_ok=True)
    log = RESULTS / "runs.log"
    log.write_text("")
    totes = str(Path(sys.executable).with_name("totes"))
    server = EmbeddedPostgres(HOME / "pg")
    server.start()
    document: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.run " + " ".join(sys.argv[1:] if argv is None else argv),
        "settings": {
            "scales": args.scales,
            "repeat": args.repeat,
            "full_repeat_large": args.full_repeat_large,
            "large_scale": args.large_scale,
            "change": CHANGE,
            "driver_memory": os.environ.get("TOTES_DRIVER_MEMORY", "2g"),
        },
        "machine": environment(),
        "scales": [],
    }
    started = time.monotonic()
    try:
        for scale in args.scales:
            full_repeat = args.full_repeat_large if scale >= args.large_scale else args.repeat
            document["scales"].append(
                bench_scale(server, scale, args.repeat, full_repeat, max(3, args.repeat), totes, log)
            )
            document["targets"] = targets(document["scales"])
            document["seconds"] = round(time.monotonic() - started, 1)
            (RESULTS / "latest.json").write_text(json.dumps(document, indent=2) + "\n")
            (RESULTS / "latest.md").write_text(render_markdown(document))
    finally:
        if not args.keep:
            server.stop()
    print((RESULTS / "latest.md").read_text())
    _say(f"done in {document['seconds'] / 60:.1f} min: {RESULTS / 'latest.md'}, {RESULTS / 'latest.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
