"""Foreign keys of small batches: checked against only the keys they refer to, in few Spark jobs.

A 20-minute batch refers to a few keys of each table it references, which may hold millions
(1.6 million transactions at 100x the real volumes). Instead of joining the batch with every known
key, its references are collected, looked up in the known keys (an IN list, which Parquet prunes
by its statistics), and `check_rows` (shared/contract/quality.py) tests each foreign key against the
keys found, as an IN list: no join, no broadcast, a cost that does not grow with the history.
- `summarise_batches` + `lookup_keys`: every small batch of a run summarised in one Spark job
  (references, the keys it brings, its tallies), every reference looked up in one more;
  `resolve_batches` then settles, in validation order, each table whose every reference exists:
  its tallies are final, as no row of it can fail a foreign key.
- `batch_references` (`referenced_key_values`): one table at a time, against known-keys DataFrames;
  for the batches `resolve_batches` leaves (a key unknown, a referenced batch with an unknown key).
Called by shared/jobs/transform/validate.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from shared.contract.quality import REASON_COLUMN, KnownKeys, in_list, key_column
from shared.contract.registry import VALIDATION_ORDER
from shared.contract.source import SOURCE_TABLES, SourceTable

# Up to this many distinct keys of one referenced table that a batch refers to, they are checked as
# an IN list (referenced_key_values); beyond it, against the known-keys DataFrame (a broadcast
# join), as a big list costs more to plan than the join costs to run (a first load's 15,836
# payments refer to as many transactions).
MAX_KEYS_IN_LIST = 2_000


@dataclass(frozen=True)
class References:
    """What `batch_references` found in one Spark job over a batch (and one more for the lookups).

    `keys`: `known_keys` cut down as `referenced_key_values` describes; `all_found`: every key the
    batch's foreign keys refer to was looked up and exists, so no row can be rejected for an
    unknown key (False when a reference kept its DataFrame: it was not looked up); `also`: the
    values of the extra aggregates computed in the same job, by alias.
    """

    keys: dict[str, KnownKeys]
    all_found: bool
    also: Mapping[str, Any]


def referenced_key_values(
    table: SourceTable, rows: DataFrame, known_keys: Mapping[str, DataFrame]
) -> dict[str, KnownKeys]:
    """`known_keys` cut down to the keys that the foreign keys of `rows` refer to, as the keys themselves.

    `check_rows(table, rows, referenced_key_values(table, rows, known))` gives exactly the verdicts
    of `check_rows(table, rows, known)`: a key nobody in `rows` refers to cannot change a verdict.
    It is for a small batch against a big history (20 minutes of payments against 1.6 million
    transactions), with two Spark jobs whatever the number of foreign keys: one collects the
    batch's distinct references, one finds which of them exist (each known set filtered by an IN list, which Parquet prunes by
    its statistics, all in one union). `check_rows` then tests each foreign key against an IN list:
    no join, no broadcast. Only for a batch whose references fit in the driver (SMALL_BATCH_ROWS,
    shared/runtime/sizing.py); a referenced table the batch refers to more than MAX_KEYS_IN_LIST
    keys of keeps its DataFrame, as do the tables `table` does not refer to.
    """
    return batch_references(table, rows, known_keys).keys


def batch_references(
    table: SourceTable, rows: DataFrame, known_keys: Mapping[str, DataFrame], also: Sequence[Column] = ()
) -> References:
    """`referenced_key_values`, with `also` (aliased aggregates over `rows`) in its first job.

    With `also`, that job runs even when `table` refers to no known table (then `all_found`).
    """
    restricted: dict[str, KnownKeys] = dict(known_keys)
    columns_by_reference: dict[str, list[str]] = {}
    for column, reference in table.foreign_keys.items():
        if reference in known_keys:
            columns_by_reference.setdefault(reference, []).append(column)
    if not columns_by_reference and not also:
        return References(restricted, True, {})
    columns = [c for cs in columns_by_reference.values() for c in cs]
    row = rows.agg(*(F.collect_set(c).alias(c) for c in columns), *also).first()
    extra = {k: v for k, v in (row.asDict() if row else {}).items() if k not in columns}
    referenced = {
        reference: sorted({int(v) for c in cs for v in (row[c] if row else [])})
        for reference, cs in columns_by_reference.items()
    }
    wanted = {r: values for r, values in referenced.items() if len(values) <= MAX_KEYS_IN_LIST}
    found = lookup_keys(table.name, known_keys, wanted)
    restricted.update(found)
    all_found = len(wanted) == len(referenced) and all(set(wanted[r]) == found[r] for r in wanted)
    return References(restricted, all_found, extra)


def lookup_keys(
    where: str, known_keys: Mapping[str, DataFrame], wanted: Mapping[str, Collection[int]]
) -> dict[str, frozenset[int]]:
    """Which of the `wanted` keys of each referenced table exist in its `known_keys`: one Spark job for all.

    Each known set is filtered by an IN list (which Parquet prunes by its statistics), all in one
    union. Every table in `wanted` gets an entry (empty when none of its keys exists, or none was wanted).
    """
    found: dict[str, set[int]] = {reference: set() for reference in wanted}
    lookups = [
        known_keys[reference]
        .select(F.col(key_column(where, reference, known_keys[reference])).alias("key"))
        .where(in_list("key", values))
        .select(F.lit(reference).alias("reference"), "key")
        for reference, values in wanted.items()
        if values
    ]
    if lookups:
        for hit in reduce(DataFrame.unionByName, lookups).distinct().collect():
            found[hit["reference"]].add(int(hit["key"]))
    return {reference: frozenset(keys) for reference, keys in found.items()}


@dataclass(frozen=True)
class BatchSummary:
    """One table's batch, checked by every rule but its foreign keys (`summarise_batches`).

    `references`: per referenced table, the keys its foreign keys refer to (NULLs left out);
    `ids`: the primary keys of the rows that pass every rule but the foreign keys; `tallies`: the
    values of the table's extra aggregates, by alias (JSON values: a struct is a dict).
    """

    references: Mapping[str, frozenset[int]]
    ids: frozenset[int]
    tallies: Mapping[str, Any]


def summarise_batches(
    annotated: Mapping[str, DataFrame], tallies: Callable[[str], Sequence[Column]]
) -> dict[str, BatchSummary]:
    """`BatchSummary` of every table in `annotated` (its rows as `check_rows` without known keys
    annotates them), in one Spark job for all of them: one aggregate per table, in one union.

    For batches whose references fit in the driver (a 20-minute change): the keys a batch refers to
    and the keys it brings are then known at once for every table, so one more job (`lookup_keys`)
    settles every foreign key of every table, instead of two or three jobs per table.
    """
    if not annotated:
        return {}
    parts = []
    for name, df in annotated.items():
        table = SOURCE_TABLES[name]
        columns = [F.collect_set(c).alias(c) for c in table.foreign_keys]
        summary = F.struct(
            *([F.struct(*columns).alias("references")] if columns else []),
            F.collect_set(F.when(F.col(REASON_COLUMN) == "", F.col(table.primary_key))).alias("ids"),
            *tallies(name),
        )
        # One string column whatever the table, so the aggregates share one schema and one union.
        as_json = F.to_json(summary, {"ignoreNullFields": "false"})  # a NULL aggregate stays a null
        parts.append(df.agg(as_json.alias("summary")).select(F.lit(name).alias("table"), "summary"))
    out: dict[str, BatchSummary] = {}
    for row in reduce(DataFrame.unionByName, parts).collect():
        table = SOURCE_TABLES[row["table"]]
        values = json.loads(row["summary"])
        by_column = values.pop("references", {})
        references: dict[str, set[int]] = {}
        for column, reference in table.foreign_keys.items():
            references.setdefault(reference, set()).update(int(v) for v in by_column.get(column, []))
        ids = frozenset(int(v) for v in values.pop("ids", []))
        out[table.name] = BatchSummary({r: frozenset(keys) for r, keys in references.items()}, ids, values)
    return out


def resolve_batches(
    annotated: Mapping[str, DataFrame],
    committed: Mapping[str, DataFrame],
    tallies: Callable[[str], Sequence[Column]],
) -> dict[str, Mapping[str, Any]]:
    """The small batches whose verdicts two Spark jobs settle, whatever their number, and their tallies.

    `annotated`: per table, its batch as `check_rows` without known keys annotates it (every rule
    but the foreign keys). `committed`: per referenced table, a DataFrame of the keys known before
    this run (its primary key column). A key a batch refers to exists if it is committed or if the
    referenced table's own batch brings it in a row that passes every rule. `summarise_batches`
    gives every batch's references, keys and tallies; `lookup_keys` finds the referenced keys not
    brought by a batch among the committed ones. Then, in validation order, a table is resolved
    when each table it refers to is either unknown (nothing committed, no batch: the foreign key is
    not checked, as `check_rows` does without its keys) or holds every key it refers to, with that
    table's own batch resolved first (so the rows bringing those keys cannot fail a foreign key of
    their own). No row of a resolved table can fail a foreign key: its check without known keys
    is the full check (no IN list, however many keys it refers to), its tallies are final. A
    table not resolved (a key unknown, more committed keys to look up than an IN list holds, a
    referenced table not resolved or not in `annotated`) is left to `batch_references`.
    """
    summaries = summarise_batches(annotated, tallies)
    wanted: dict[str, set[int]] = {}
    for summary in summaries.values():
        for reference, values in summary.references.items():
            own = summaries[reference].ids if reference in summaries else frozenset()
            wanted.setdefault(reference, set()).update(values - own)
    found = lookup_keys(
        "validation",
        committed,
        {r: keys for r, keys in wanted.items() if r in committed and len(keys) <= MAX_KEYS_IN_LIST},
    )
    resolved: dict[str, Mapping[str, Any]] = {}
    for table in (t for t in VALIDATION_ORDER if t in summaries):
        for reference, values in summaries[table].references.items():
            has_batch = reference in annotated
            if not has_batch and reference not in committed:
                continue  # nothing known of it: not checked
            if has_batch and reference not in resolved:
                break
            exists = found.get(reference, frozenset()) | (
                summaries[reference].ids if has_batch else frozenset()
            )
            if not values <= exists:
                break
        else:
            resolved[table] = summaries[table].tallies
    return resolved
