"""The options of every JVM the tests start: the session's, and each `totes` process's.

Spark's launcher adds SPARK_SUBMIT_OPTS to the java command line, so setting it once, before the
first JVM starts (tests/conftest.py, `pytest_configure`), reaches every JVM the tests start, the
killed `totes` processes included. A test JVM's life is start-up and many tiny Spark jobs, so:

- C1 only, serial collector: there C2 compiling Spark costs about a third of the CPU and never pays
  back (tests/test_bad_data.py: 138 CPU-s of JVM by default, 80 with these).
- Class data sharing: an archive of the classes a Spark session loads (`-XX:SharedArchiveFile`),
  so a JVM maps them instead of loading and verifying each from the jars (test_bad_data: another
  fifth of its CPU). It is made once per virtualenv and JDK, by a throwaway session that ends
  normally (the JVM writes the archive as it exits), and kept in the virtualenv under a name that
  changes with its jars and the JDK. A JVM whose class path is not the archive's ignores it,
  silently (`-Xlog:cds=off`); if it cannot be made, JVMs run without it.

What the jobs compute is the same; `make run` and `make bench` keep the JVM's defaults. Set
SPARK_SUBMIT_OPTS yourself to run the tests with other options.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import platform
import subprocess
import sys
from pathlib import Path

BASE = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"

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
    java = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
    key.update((java.stderr + platform.machine()).encode())
    return Path(sys.prefix) / "totes-cds" / f"spark-{key.hexdigest()[:16]}.jsa"


def make_archive(archive: Path, repo: Path) -> bool:
    """Make the archive if it is missing (one process at a time); True if it exists then."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with open(archive.parent / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if archive.exists():
            return True
        partial = archive.with_suffix(f".partial-{os.getpid()}")
        env = {k: v for k, v in os.environ.items() if k != "PYSPARK_SUBMIT_ARGS"}
        env["SPARK_SUBMIT_OPTS"] = f"{BASE} {QUIET} -XX:ArchiveClassesAtExit={partial}"
        env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        with open(archive.parent / "make.log", "w") as log:
            done = subprocess.run(
                [sys.executable, "-c", DUMP],
                cwd=repo,
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


def configure(repo: Path) -> None:
    """Set SPARK_SUBMIT_OPTS for every JVM started from here (unless it is set already)."""
    if "SPARK_SUBMIT_OPTS" in os.environ:
        return
    options = BASE
    with contextlib.suppress(Exception):  # no archive: slower JVMs, the same results
        archive = archive_path()
        if make_archive(archive, repo):
            options = f"{BASE} {QUIET} -XX:SharedArchiveFile={archive}"
    os.environ["SPARK_SUBMIT_OPTS"] = options


if __name__ == "__main__":  # `make test` makes the archive beside its other checks, before pytest starts
    # As in configure: no archive means slower JVMs and the same results, never a failed make test.
    why = f"see {archive_path().parent / 'make.log'}"
    try:
        made = make_archive(archive_path(), Path(__file__).resolve().parents[1])
    except Exception as exc:  # noqa: BLE001 - reported; the tests then run without it
        made, why = False, f"{type(exc).__name__}: {exc}"
    if not made:
        print(f"class-data archive not made ({why}): the test JVMs run without it")
