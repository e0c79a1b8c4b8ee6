"""The class-data archive: a local session's JVM maps it, unless told not to (shared/local/jvm_archive.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.local import jvm_archive

REPO = Path(__file__).resolve().parents[1]

# What a `totes` process's session says of its JVM: the archive it was given, and how many classes
# the JVM has loaded. -Xshare:on makes a JVM that cannot map the archive fail to start.
PROBE = """
import sys
from pathlib import Path
from shared.local.spark import build_spark
spark = build_spark(Path(sys.argv[1]), app_name="archive-probe")
jvm = spark.sparkContext._jvm
bean = jvm.java.lang.management.ManagementFactory.getPlatformMXBean(
    jvm.java.lang.Class.forName("com.sun.management.HotSpotDiagnosticMXBean"))
print("archive=" + bean.getVMOption("SharedArchiveFile").getValue())
spark.stop()
"""


def _probe(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if k not in {"SPARK_SUBMIT_OPTS", "PYSPARK_SUBMIT_ARGS"}
    }
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "catalog")],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.integration
def test_a_local_session_maps_the_archive(tmp_path: Path) -> None:
    archive = jvm_archive.archive_path()
    assert archive.exists(), "make test makes it before pytest (make jvm-archive)"
    done = _probe(tmp_path, SPARK_SUBMIT_OPTS="-Xshare:on")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"archive={archive}" in done.stdout.splitlines()


def test_the_archive_is_left_out_when_switched_off_or_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "spark.jsa"
    monkeypatch.setattr(jvm_archive, "archive_path", lambda: archive)
    monkeypatch.delenv("TOTES_CLASS_ARCHIVE", raising=False)
    assert jvm_archive.java_options() == ""  # not made yet: JVMs load from the jars
    archive.write_bytes(b"")
    assert f"-XX:SharedArchiveFile={archive}" in jvm_archive.java_options()
    monkeypatch.setenv("TOTES_CLASS_ARCHIVE", "off")
    assert jvm_archive.java_options() == ""


def test_the_archive_name_follows_the_jdk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    java = tmp_path / "jdk" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text("one JDK")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    first = jvm_archive.archive_path()
    java.write_text("another JDK, a byte longer")
    assert jvm_archive.archive_path() != first
