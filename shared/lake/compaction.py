"""Fact partition compaction: many small appended files of a month -> one file, never losing a row.

Every transform run appends one file to each month partition it touches (shared/jobs/transform/facts.py),
so 20-minute runs would leave about 72 small files a day in the current month. When a run leaves
a partition with more than `COMPACT_ABOVE_FILES` data files, it rewrites them into one:

1. the partition's files (listed once) are read with the declared schema and written as one file
   to a hidden staging folder, `<fact>/_compaction/<run_id>/...` (Spark, Hive and Athena ignore
   names starting with '_');
2. the staged file's row count (from its Parquet footer) must equal the listed files': if not, the
   staging folder is deleted and the partition is left as it was;
3. a journal, `<fact>/_compaction/<run_id>.json`, records the switch: staged file -> partition,
   and the files it replaces;
4. the switch: the new file is moved in first, then the replaced files are deleted, then the journal
   and the staging folder.

A run that dies during 1 or 2 leaves only a staging folder (no journal): `recover` deletes it. A run
that dies during 4 leaves the journal: `recover` finishes the switch (moves what is still staged,
deletes what is still there). The transform calls `recover` before anything else, under the lake's
run lock. Between the move and the deletes, a reader listing the partition can see a version twice
for a moment; the pipeline's own readers key fact versions (the load inserts each version once,
the transform de-duplicates by version key), and a crash there is repaired by `recover`.
Rows keep their `transform_run_id`, so what the load selects is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.types import StringType, StructField, StructType

from shared.config import join
from shared.contract.star import STAR_SCHEMAS
from shared.lake.layout import LakeLayout
from shared.lake.storage import Storage, read_json, write_json

# A month partition holds at most this many data files before a run compacts it (one 20-minute run
# appends one file): about 11 hours of appends, then one file again.
COMPACT_ABOVE_FILES = 32


class CompactionError(RuntimeError):
    """The compacted output does not hold exactly the rows it replaces; nothing was switched."""


def data_files(storage: Storage, partition: str) -> list[str]:
    """The partition's Parquet data files (Spark's part files; not `_SUCCESS`, not hidden files)."""
    return [join(partition, n) for n in storage.list_names(partition) if not n.startswith("_")]


def file_schema(fact: str) -> StructType:
    """The columns stored in a fact's data files: the star's and the lineage column (the partition
    columns are in the folder names)."""
    return StructType([*STAR_SCHEMAS[fact].fields, StructField("transform_run_id", StringType())])


def compact_partition(
    spark: SparkSession,
    storage: Storage,
    fact: str,
    location: str,
    partition: str,
    run_id: str,
    above: int = 1,
) -> int:
    """Rewrite the data files of `partition` (a folder under the fact's `location`) into one file,
    if it holds more than `above` of them (listed once).

    Returns the number of files replaced (0: not more than `above`, nothing done).

    Raises:
        CompactionError: The staged file's row count differs from the replaced files'. The
            partition is untouched and the staging folder removed.
    """
    replaced = data_files(storage, partition)
    if len(replaced) <= max(above, 1):
        return 0
    relative = partition[len(location) :].strip("/")
    staging_root = LakeLayout.compaction_staging(location, run_id)
    staging = join(staging_root, relative)
    rows = spark.read.schema(file_schema(fact)).parquet(*replaced)
    rows.coalesce(1).write.mode("errorifexists").parquet(staging)
    staged = data_files(storage, staging)
    expected, written = rows.count(), spark.read.parquet(staging).count()  # both from Parquet footers
    if written != expected or len(staged) != 1:
        storage.delete(staging_root)
        raise CompactionError(
            f"{fact} {relative}: the compacted file holds {written} rows in {len(staged)} file(s), "
            f"the {len(replaced)} files it would replace hold {expected}; left as it was"
        )
    name = staged[0].rsplit("/", 1)[-1]
    journal = {
        "fact": fact,
        "partition": partition,
        "moves": [[staged[0], join(partition, f"compacted-{run_id}-{name}")]],
        "replaced": replaced,
        "staging": staging_root,
    }
    journal_path = LakeLayout.compaction_journal(location, run_id)
    write_json(storage, journal_path, journal)
    _switch(storage, journal, journal_path)
    return len(replaced)


def _switch(storage: Storage, journal: dict[str, Any], journal_path: str) -> None:
    for source, target in journal["moves"]:
        if storage.exists(source):
            storage.move(source, target)
    for path in journal["replaced"]:
        storage.delete(path)
    storage.delete(journal["staging"])
    storage.delete(journal_path)


def recover(storage: Storage, locations: Iterable[str]) -> list[str]:
    """Finish every switch a dead run journaled, drop every staging folder it left unjournaled.

    Returns the partitions whose switch was finished.
    """
    finished = []
    for location in locations:
        folder = LakeLayout.compaction_folder(location)
        for name in storage.list_names(folder):
            if name.endswith(".json"):
                journal_path = LakeLayout.compaction_journal(location, name.removesuffix(".json"))
                journal = read_json(storage, journal_path)
                if journal is not None:
                    _switch(storage, journal, journal_path)
                    finished.append(journal["partition"])
        for name in storage.list_names(folder):  # staging folders without a journal: never switched
            if not name.endswith(".json"):
                storage.delete(LakeLayout.compaction_staging(location, name))
    return finished
