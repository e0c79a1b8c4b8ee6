"""The JVM classes PySpark names on almost every call, imported once per session for py4j.

PySpark reaches its JVM helpers by simple name: every `F.col`, `F.lit` or `F.when` is
`sc._jvm.functions.<name>`, every `select` goes through `sc._jvm.PythonUtils`. py4j resolves a
simple name by trying it as a class of the default package, then its single imports, then each
star import in turn (`java.lang`, `org.apache.spark.api.java`, ... `org.apache.spark.sql`): each
miss is a class-path search through every jar, and `functions` is found at the seventh try.
A data job builds thousands of such expressions: in an incremental transform, half of the driver
JVM's py4j time went to those misses (a JFR profile, docs/performance.md). A single import of each
of these classes makes the lookup one miss and one hit.

Called where each runtime gets its session: `shared.local.spark.build_spark` and, on Glue,
`shared.runtime.glue.configure_session`. What the jobs compute is unchanged.
"""

from __future__ import annotations

from py4j.java_gateway import java_import
from pyspark.sql import SparkSession

# By how often an incremental workflow run looked each one up (counted on py4j's JVMView).
HOT_CLASSES = (
    "org.apache.spark.sql.functions",
    "org.apache.spark.api.python.PythonUtils",
    "org.apache.spark.sql.SparkSession",
    "org.apache.spark.sql.SparkSession$",
    "org.apache.spark.api.python.PythonRDD",
    "org.apache.spark.api.python.SerDeUtil",
    "org.apache.spark.sql.api.python.PythonSQLUtils",
    "org.apache.spark.api.python.SimplePythonFunction",
)


def import_hot_classes(spark: SparkSession) -> None:
    """Single-import HOT_CLASSES into the py4j view PySpark's functions use (the gateway's `jvm`)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    for name in HOT_CLASSES:
        java_import(jvm, name)
