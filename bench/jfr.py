"""Where an incremental transform's JVM time goes: a Java Flight Recorder profile of in-process runs.

    .venv/bin/python -m bench.jfr [--runs 4] [--without-hot-imports] [--top 25]

On its own embedded PostgreSQL and lake under `.local/bench/jfr` (a SCALE 0.02 synthetic ToteSys, as
the fault tests use), with the test JVMs' options (tests/jvm_options.py): one full workflow run and
one 20-minute change first (not recorded), then `--runs` more 20-minute changes, each a workflow run
in the same session, recorded by JFR (`jcmd JFR.start settings=profile`). Prints each run's transform
phases, the transform's seconds, the driver JVM's CPU seconds over the recorded runs, and the JFR
execution samples: the methods most often on top of a stack, and the callers of the two costs
docs/performance.md names (class-path searches, SCRAM key derivation). `--without-hot-imports`
leaves out shared/runtime/jvm_names.py's imports, to compare. Needs the JDK's `jcmd` and `jfr`.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from bench.run import CHANGE  # the bench's 20-minute change

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / ".local" / "bench" / "jfr"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _jdk(tool: str, *args: str) -> str:
    """Run one of the JDK's tools (jcmd, jfr) with fixed arguments; its stdout."""
    path = shutil.which(tool)
    if path is None:
        raise SystemExit(f"bench.jfr needs the JDK's {tool} on PATH")
    done = subprocess.run([path, *args], capture_output=True, text=True, check=True)  # noqa: S603 - fixed arguments
    return done.stdout


def summarise(recording: Path, top: int) -> None:
    printed = _jdk(
        "jfr", "print", "--json", "--events", "jdk.ExecutionSample", "--stack-depth", "64", str(recording)
    )
    events = json.loads(printed)["recording"]["events"]
    tops: collections.Counter[str] = collections.Counter()
    callers: dict[str, collections.Counter[str]] = {
        "class-path search": collections.Counter(),
        "SCRAM": collections.Counter(),
    }
    for event in events:
        frames = [
            f"{f['method']['type']['name']}.{f['method']['name']}"
            for f in event["values"]["stackTrace"]["frames"]
        ]
        if not frames:
            continue
        tops[frames[0]] += 1
        ours = [
            f for f in frames if not f.startswith(("java/", "jdk/", "sun/", "scala/", "com/sun/", "javax/"))
        ][:2]
        if any("URLClassPath" in f for f in frames[:12]):
            callers["class-path search"][" < ".join(ours)] += 1
        if any("ScramFunctions.saltedPassword" in f for f in frames):
            callers["SCRAM"][" < ".join(ours)] += 1
    print(f"\n{len(events)} execution samples; on top of the stack most often:")
    for name, n in tops.most_common(top):
        print(f"  {n:5d}  {name}")
    for cost, counter in callers.items():
        print(f"\n{sum(counter.values())} samples in a {cost}, by caller:")
        for name, n in counter.most_common(5):
            print(f"  {n:5d}  {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.jfr", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--without-hot-imports", action="store_true")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "tests"))
    import jvm_options

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    jvm_options.configure()
    import shared.local.spark as local_spark
    from shared.config import Settings, parse_pg_url
    from shared.local import totesys
    from shared.local.embedded_pg import EmbeddedPostgres
    from shared.local.workflow import run_workflow

    if args.without_hot_imports:
        local_spark.import_hot_classes = lambda spark: None  # type: ignore[assignment]
    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir(parents=True)
    server = EmbeddedPostgres(HOME / "pg")
    server.start()
    try:
        server.create_database("totesys")
        server.create_database("warehouse")
        totesys.seed_synthetic(server.url("totesys"), scale=0.02)
        spark = local_spark.build_spark(HOME / "catalog", app_name="bench-jfr", shuffle_partitions=2)
        settings = Settings(
            lake_root=str(HOME / "lake"),
            totesys=parse_pg_url("TOTESYS_URL", server.url("totesys", user="totesys_reader")),
            warehouse=parse_pg_url("WAREHOUSE_URL", server.url("warehouse")),
            catalog_database=f"jfr_{uuid.uuid4().hex[:6]}",
        )
        run_workflow(spark, settings)
        totesys.simulate(server.url("totesys"), **CHANGE, seed=1)
        run_workflow(spark, settings)
        pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
        recording = HOME / "incremental.jfr"
        _jdk("jcmd", str(pid), "JFR.start", "name=bench", "settings=profile", f"filename={recording}")
        cpu, transform = _cpu_seconds(pid), 0.0
        for i in range(args.runs):
            totesys.simulate(server.url("totesys"), **CHANGE, seed=100 + i)
            reports = run_workflow(spark, settings)
            report = next(r for r in reports if r.job == "transform")
            transform += report.seconds
            print(
                f"run {i + 1}: transform {report.seconds:.1f} s  "
                + ", ".join(f"{k} {v:.2f}" for k, v in report.phases.items() if v)
            )
        cpu = _cpu_seconds(pid) - cpu
        _jdk("jcmd", str(pid), "JFR.stop", "name=bench")
        print(
            f"\n{args.runs} incremental runs: transform {transform:.1f} s in all; driver JVM CPU {cpu:.1f} s (the three jobs)"
        )
        summarise(recording, args.top)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
