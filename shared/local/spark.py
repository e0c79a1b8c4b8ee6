"""Builds the local SparkSession the jobs run in when they are not on Glue.

Called by the CLI (`totes run`, `totes query`) and by the test suite's session fixture. On Glue the
session comes from GlueContext instead (shared/runtime/glue.py); everything downstream only sees a
SparkSession, so both paths run the same library code.
"""

from __future__ import annotations

import os
from pathlib import Path

from pyspark.sql import SparkSession

from shared.local import jvm_archive
from shared.runtime.jvm_names import import_hot_classes

DEBIAN_JDBC_JAR = Path("/usr/share/java/postgresql.jar")
JDBC_PACKAGE = "org.postgresql:postgresql:42.7.4"
# Spark's default logging without its start-up notes that are not about the pipeline (see the file).
LOG4J2_CONFIG = Path(__file__).with_name("log4j2.properties")


def jdbc_jar() -> str | None:
    """The PostgreSQL JDBC driver on this machine: $TOTES_JDBC_JAR, else the Debian package's jar."""
    configured = os.environ.get("TOTES_JDBC_JAR")
    if configured:
        if not Path(configured).is_file():
            raise FileNotFoundError(f"TOTES_JDBC_JAR={configured} does not exist")
        return configured
    return str(DEBIAN_JDBC_JAR) if DEBIAN_JDBC_JAR.is_file() else None


def build_spark(catalog_dir: Path, app_name: str = "totes", shuffle_partitions: int = 4) -> SparkSession:
    """A local-mode session with Hive support: an embedded Derby metastore under `catalog_dir`.

    Derby allows one JVM per metastore directory, so each lake has its own catalog directory and
    two lakes never mix. Times are UTC end to end: ToteSys timestamps have no zone, and a UTC JVM and
    session keep their wall-clock values exactly through JDBC, JSON and Parquet.
    """
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    catalog_dir = catalog_dir.resolve()
    catalog_dir.mkdir(parents=True, exist_ok=True)
    java_opts = f"-Duser.timezone=UTC -Dderby.system.home={catalog_dir}"
    if LOG4J2_CONFIG.is_file():
        java_opts += f" -Dlog4j2.configurationFile={LOG4J2_CONFIG.resolve().as_uri()}"
    driver_opts = java_opts
    if "Archive" not in os.environ.get("SPARK_SUBMIT_OPTS", ""):  # unless set for this JVM already
        driver_opts = f"{java_opts} {jvm_archive.java_options()}".strip()
    builder = (
        SparkSession.builder.appName(app_name)
        .master(os.environ.get("TOTES_SPARK_MASTER", "local[2]"))
        .config("spark.driver.extraJavaOptions", driver_opts)
        .config("spark.executor.extraJavaOptions", java_opts)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", os.environ.get("TOTES_DRIVER_MEMORY", "2g"))
        .config("spark.sql.warehouse.dir", str(catalog_dir / "warehouse"))
        .config(
            "spark.hadoop.javax.jdo.option.ConnectionURL",
            f"jdbc:derby:;databaseName={catalog_dir / 'metastore_db'};create=true",
        )
        # Glue 5.0 runs Spark 3.5 with ANSI mode off; keep the same semantics locally.
        .config("spark.sql.ansi.enabled", "false")
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .enableHiveSupport()
    )
    event_log = os.environ.get("TOTES_SPARK_EVENT_LOG_DIR")
    if event_log:  # profiling (make bench, docs/performance.md): every job, stage and task, as JSON lines
        Path(event_log).mkdir(parents=True, exist_ok=True)
        builder = builder.config("spark.eventLog.enabled", "true").config(
            "spark.eventLog.dir", Path(event_log).resolve().as_uri()
        )
    jar = jdbc_jar()
    if jar:
        # Also on the driver's own class path, as on Glue (where the driver is on the JVM's class
        # path). The driver's own connections (shared.jdbc.sources.jdbc_connection) load the Driver
        # through Spark's class loader, so they work with spark.jars alone as well
        # (tests/test_jdbc_connections.py).
        builder = builder.config("spark.jars", jar).config("spark.driver.extraClassPath", jar)
    else:  # no local driver: let Spark fetch it (needs Maven Central)
        builder = builder.config("spark.jars.packages", JDBC_PACKAGE)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("TOTES_SPARK_LOG_LEVEL", "ERROR"))
    import_hot_classes(spark)
    return spark
