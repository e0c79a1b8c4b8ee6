"""Spark's shuffle settings sized to the batch a job processes.

Spark's defaults are made for big data: adaptive query execution (AQE) runs every shuffle and every
broadcast of a query as a Spark job of its own, so it can re-plan between them, and a shuffle has
`spark.sql.shuffle.partitions` tasks. For the thirty-odd rows of a 20-minute change that is pure
overhead: the incremental transform ran about 150 Spark jobs, most of them AQE's query stages over
a few kilobytes (docs/performance.md). A batch of at most SMALL_BATCH_ROWS rows therefore runs with
AQE off and one shuffle partition: each query is one Spark job, its shuffles one task each. A big
batch (a first load, a catch-up after an outage) keeps the session's settings, where AQE pays back.

Both are SQL settings a running session takes (`spark.conf.set`), on Glue as locally; they are put
back when the job's step ends, so the session (the same one runs all three jobs locally, and every
test) is left as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession

# Up to this many rows a batch is small. Also the threshold under which the transform checks foreign
# keys against only the keys a batch refers to (shared/jobs/transform/validate.py).
SMALL_BATCH_ROWS = 100_000

SMALL_BATCH_CONF = {
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.shuffle.partitions": "1",
}


@contextmanager
def sized_for(spark: SparkSession, rows: int) -> Iterator[bool]:
    """Within the block, `spark` runs with SMALL_BATCH_CONF if `rows` <= SMALL_BATCH_ROWS.

    Yields whether it does. The previous values are restored on the way out, error or not.
    """
    if rows > SMALL_BATCH_ROWS:
        yield False
        return
    with small_shuffles(spark):
        yield True


@contextmanager
def small_shuffles(spark: SparkSession) -> Iterator[None]:
    """Within the block, `spark` runs with SMALL_BATCH_CONF, whatever the size of the data.

    For work whose shuffles are small at any scale: the extract's only shuffle is the one-row
    aggregate of each read (its high-water mark and row count). Restored on the way out.
    """
    before = {key: spark.conf.get(key, None) for key in SMALL_BATCH_CONF}
    for key, small in SMALL_BATCH_CONF.items():
        spark.conf.set(key, small)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)
