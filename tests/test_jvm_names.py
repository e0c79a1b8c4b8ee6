"""shared/runtime/jvm_names.py: the classes PySpark names on every call are single imports of py4j's view."""

from __future__ import annotations

from py4j.java_gateway import JavaClass, JavaObject
from py4j.protocol import DEFAULT_JVM_ID

from shared.runtime.glue import configure_session
from shared.runtime.jvm_names import HOT_CLASSES


def single_imports(spark) -> dict[str, str]:
    sc = spark.sparkContext
    view = JavaObject(DEFAULT_JVM_ID[1:], sc._gateway._gateway_client)  # the view `sc._jvm` is
    return dict(view.getSingleImportsMap())


def test_every_hot_class_is_a_single_import_of_the_view_pyspark_uses(spark) -> None:
    # The session fixture's session comes from shared.local.spark.build_spark.
    wanted = {name.rsplit(".", 1)[1]: name for name in HOT_CLASSES}
    assert wanted.items() <= single_imports(spark).items()
    configure_session(spark)  # what the Glue seam does to Glue's session: the same imports again
    assert wanted.items() <= single_imports(spark).items()
    sc = spark.sparkContext
    for name in HOT_CLASSES:  # each still exists under that name (a Spark upgrade could move one)
        found = getattr(sc._jvm, name.rsplit(".", 1)[1])
        assert isinstance(found, JavaClass) and found._fqn == name, name
