"""The JDBC connections the Spark driver opens itself (shared/sources.py `jdbc_connection`,
`check_reachable`), against a real PostgreSQL.

- The PostgreSQL driver is found where Glue puts it, and where `spark.jars` puts it locally: a
  driver jar only in `spark.jars` is not visible to `java.sql.DriverManager` called through py4j,
  so the connections are opened through the Driver class loaded by Spark's own class loader.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shared.spark import jdbc_jar

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.integration
def test_the_probe_and_the_warehouse_connection_find_a_driver_that_is_only_in_spark_jars(fresh_db) -> None:
    jar = jdbc_jar()
    assert jar, "no PostgreSQL JDBC driver on this machine (make setup installs one)"
    # A JVM of its own: the session fixture also puts the jar on the driver's class path.
    code = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(ROOT)!r})
        from pyspark.sql import SparkSession
        from shared.config import parse_pg_url
        from shared.sources import check_reachable, jdbc_connection

        spark = (
            SparkSession.builder.master("local[1]").appName("spark-jars-only")
            .config("spark.jars", {jar!r})
            .config("spark.ui.enabled", "false")
            .getOrCreate()
        )
        jvm = spark.sparkContext._jvm
        out = {{}}
        try:
            jvm.java.lang.ClassLoader.getSystemClassLoader().loadClass("org.postgresql.Driver")
            out["on_jvm_class_path"] = True
        except Exception:
            out["on_jvm_class_path"] = False
        url = parse_pg_url("WAREHOUSE_URL", {fresh_db!r})
        try:
            check_reachable(spark, url)  # before any Spark JDBC read registers Spark's own wrapper
            out["probe"] = "ok"
        except Exception as exc:
            out["probe"] = str(exc)
        try:
            connection = jdbc_connection(spark, url)
            try:
                result = connection.createStatement().executeQuery("SELECT 40 + 2")
                result.next()
                out["query"] = result.getInt(1)
            finally:
                connection.close()
        except Exception as exc:
            out["query"] = str(exc).splitlines()[0]
        print("RESULT " + json.dumps(out))
        """
    )
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    env.pop("PYSPARK_SUBMIT_ARGS", None)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env, check=False
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, result.stderr[-3000:]
    out = json.loads(lines[-1].removeprefix("RESULT "))
    assert out["on_jvm_class_path"] is False  # the situation under test: the jar is only in spark.jars
    assert out["probe"] == "ok"
    assert out["query"] == 42
