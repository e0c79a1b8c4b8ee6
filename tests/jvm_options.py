"""The options of every JVM the tests start: the session's, and each `totes` process's.

Spark's launcher adds SPARK_SUBMIT_OPTS to the java command line, so setting it once, before the
first JVM starts (tests/conftest.py, `pytest_configure`), reaches every JVM the tests start, the
killed `totes` processes included. A test JVM's life is start-up and many tiny Spark jobs, so:

- C1 only, serial collector: there C2 compiling Spark costs about a third of the CPU and never pays
  back (tests/test_bad_data.py: 138 CPU-s of JVM by default, 80 with these).
- Class data sharing: the archive of Spark's classes every local JVM maps (shared/local/jvm_archive.py;
  test_bad_data: another fifth of its CPU), made before pytest starts (`make jvm-archive`, part of
  `make test`) or here, once per virtualenv and JDK. If it cannot be made, JVMs run without it.

What the jobs compute is the same; `make run` and `make bench` keep the JVM's default compilers and
collector, and map the same archive. Set SPARK_SUBMIT_OPTS yourself to run the tests with other options.
"""

from __future__ import annotations

import contextlib
import os

from shared.local.jvm_archive import archive_path, java_options, make_archive

BASE = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def configure() -> None:
    """Set SPARK_SUBMIT_OPTS for every JVM started from here (unless it is set already)."""
    if "SPARK_SUBMIT_OPTS" in os.environ:
        return
    with contextlib.suppress(Exception):  # no archive: slower JVMs, the same results
        make_archive(archive_path())
    os.environ["SPARK_SUBMIT_OPTS"] = f"{BASE} {java_options()}".strip()
