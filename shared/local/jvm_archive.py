"""The class-data archive local Spark JVMs map instead of loading Spark's classes from its jars.

A local run is short and cold: a JVM that has just started loads and verifies some 6,400 classes
from Spark's jars before and during its first jobs. Java's class data sharing writes those classes,
parsed and verified, to an archive once (`-XX:ArchiveClassesAtExit`, as a throwaway session that does
the kinds of work the jobs do exits), and every later JVM maps it (`-XX:SharedArchiveFile`): about
3 s off a 20-minute `totes run` at scale 1 on the 2-core machine (docs/performance.md). What the
jobs compute and how fast their hot loops run are unchanged: only where the classes come from.

The archive lives in the virtualenv under a name that changes with its jars and the JDK, so a JVM
never maps a stale one; a JVM whose class path is not the archive's ignores it, silently. Made by
`make jvm-archive` (which `make test` and `make bench` run); `shared.local.spark.build_spark` uses it
when it exists, and runs without it otherwise (or when `TOTES_CLASS_ARCHIVE=off`). Local only: on
Glue the JVM's options are Glue's.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

# A JVM that cannot map the archive says nothing and loads from the jars.
QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"
# The throwaway session's own options: C1 only and the serial collector make it quicker; the
# archive holds classes, not compiled code or heap, so JVMs of any options map it.
DUMP_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"

# What the throwaway session does before it exits: the kinds of work the jobs do (JSON, Parquet,
# joins, windows, aggregates, the Hive catalog), so that their classes are in the archive.
DUMP = """
import sys, tempfile
from datetime import date
from decimal import Decimal
from pathlib import Path
from pyspark.sql import Window, functions as F
from shared.local.spark import build_spark

tmp = Path(tempfile.mkdtemp(prefix="totes-cds-"))
spark = build_spark(tmp / "catalog", app_name="totes-cds", shuffle_partitions=2)
rows = [(i, f"n{i % 7}", date(2024, 1 + i % 12, 1 + i % 28), Decimal(i) / 100) for i in range(200)]
df = spark.createDataFrame(rows, "id int, name string, day date, price decimal(10,2)")
df.write.json(str(tmp / "json"))
again = spark.read.schema(df.schema).json(str(tmp / "json")).persist()
latest = again.withColumn("n", F.row_number().over(Window.partitionBy("name").orderBy(F.desc("day"))))
joined = latest.where("n = 1").join(again.groupBy("name").agg(F.sum("price").alias("total")), "name")
joined.withColumn("year", F.year("day")).write.partitionBy("year").parquet(str(tmp / "parquet"))
spark.sql("CREATE DATABASE IF NOT EXISTS cds")
spark.sql(f"CREATE TABLE cds.t (id int, name string) USING PARQUET LOCATION '{tmp / 'table'}'")
spark.sql("SHOW TABLES IN cds").collect()
spark.read.parquet(str(tmp / "parquet")).where("year = 2024").count()
proc = spark.sparkContext._gateway.proc
spark.stop()
proc.stdin.close()  # the JVM exits on EOF, and writes the archive as it does
sys.exit(proc.wait(timeout=600))
"""


def archive_path() -> Path:
    """Where this virtualenv's archive is: its name changes with the jars and the JDK."""
    import pyspark

    from shared.local.spark import jdbc_jar

    jars = sorted((Path(pyspark.__file__).parent / "jars").glob("*.jar"))
    extra = [Path(j) for j in [jdbc_jar()] if j]
    key = hashlib.sha256()
    for jar in [*extra, *jars]:
        stat = jar.stat()
        key.update(f"{jar}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    java = _java()  # its file, not `java -version`: no process on every session's start
    jdk = java.stat() if java else None
    key.update(f"{java}:{jdk and jdk.st_size}:{jdk and jdk.st_mtime_ns}:{platform.machine()}".encode())
    return Path(sys.prefix) / "totes-cds" / f"spark-{key.hexdigest()[:16]}.jsa"


def _java() -> Path | None:
    """The java binary Spark's launcher runs (JAVA_HOME's, else the PATH's), resolved."""
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    return Path(found).resolve() if found and Path(found).exists() else None


def make_archive(archive: Path) -> bool:
    """Make the archive if it is missing (one process at a time); True if it exists then."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with open(archive.parent / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if archive.exists():
            return True
        partial = archive.with_suffix(f".partial-{os.getpid()}")
        env = {k: v for k, v in os.environ.items() if k != "PYSPARK_SUBMIT_ARGS"}
        env["SPARK_SUBMIT_OPTS"] = f"{DUMP_OPTIONS} {QUIET} -XX:ArchiveClassesAtExit={partial}"
        env["TOTES_CLASS_ARCHIVE"] = "off"  # the session making it must not map another
        env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        with open(archive.parent / "make.log", "w") as log:
            done = subprocess.run(  # noqa: S603 - this Python and a fixed script, no shell
                [sys.executable, "-c", DUMP],
                cwd=Path(__file__).resolve().parents[2],  # where `shared` is, if not installed
                env=env,
                stdout=log,
                stderr=log,
                timeout=900,
                check=False,
            )
        if done.returncode == 0 and partial.exists():
            os.replace(partial, archive)
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        return archive.exists()


def java_options() -> str:
    """The options that map the archive, for a JVM about to start; empty without one."""
    if os.environ.get("TOTES_CLASS_ARCHIVE", "").lower() in {"off", "0", "false", "no"}:
        return ""
    with contextlib.suppress(Exception):  # no archive: slower start-up, the same results
        archive = archive_path()
        if archive.exists():
            return f"{QUIET} -XX:SharedArchiveFile={archive}"
    return ""


if __name__ == "__main__":  # make jvm-archive
    # No archive means slower JVMs and the same results, never a failed make target.
    try:
        path = archive_path()
        made, why = make_archive(path), f"see {path.parent / 'make.log'}"
    except Exception as exc:  # noqa: BLE001 - reported; JVMs then run without it
        made, why = False, f"{type(exc).__name__}: {exc}"
    print("class-data archive ready" if made else f"class-data archive not made ({why}): JVMs run without it")
