"""shared/runtime/jvm_names.py: the classes PySpark names on every call are single imports of py4j's view."""

from __future__ import annotations

import gc

from py4j import protocol
from py4j.java_gateway import JavaClass

from shared.runtime.glue import configure_session
from shared.runtime.jvm_names import HOT_CLASSES


def single_imports(spark) -> dict[str, str]:
    """The single imports of the py4j view `sc._jvm` is, from the JVM side.

    A raw call on the view's object id, not a JavaObject of it: when such a Python proxy is
    collected, py4j deletes its Java object, and the session's view with it (every later
    `sc._jvm` lookup then fails).
    """
    client = spark.sparkContext._gateway._gateway_client
    view_id = protocol.DEFAULT_JVM_ID[1:]
    method = "getSingleImportsMap"
    answer = client.send_command(
        f"{protocol.CALL_COMMAND_NAME}{view_id}\n{method}\n{protocol.END_COMMAND_PART}"
    )
    return dict(protocol.get_return_value(answer, client, view_id, method))


def test_every_hot_class_is_a_single_import_of_the_view_pyspark_uses(spark) -> None:
    # The session fixture's session comes from shared.local.spark.build_spark.
    wanted = {name.rsplit(".", 1)[1]: name for name in HOT_CLASSES}
    assert wanted.items() <= single_imports(spark).items()
    configure_session(spark)  # what the Glue seam does to Glue's session: the same imports again
    assert wanted.items() <= single_imports(spark).items()
    gc.collect()  # any py4j proxy made above is gone: the view must still answer
    sc = spark.sparkContext
    for name in HOT_CLASSES:  # each still exists under that name (a Spark upgrade could move one)
        found = getattr(sc._jvm, name.rsplit(".", 1)[1])
        assert isinstance(found, JavaClass) and found._fqn == name, name
