"""Retention of the processed zone: the dimension versions and `_latest` snapshots nobody needs go.

Every transform run that rebuilds a dimension or a dimension source writes a new `version-<run_id>`
folder (and a dimension its `changes-<run_id>`); the transform prunes them before its commit.
Called by `shared.jobs.transform.run` (its commit step).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from shared.contract.registry import CALENDAR, DIMENSIONS, LATEST_TABLES
from shared.lake.documents import TransformState
from shared.lake.layout import CHANGES_PREFIX, VERSION_PREFIX, LakeLayout
from shared.lake.storage import Storage

# Versions of a dimension (and of a `_latest` snapshot) kept beyond those a state points at: a
# reader that resolved an older location just before a switch (an Athena query, a load) finishes.
KEEP_VERSIONS = 3


def prune_versions(
    storage: Storage, layout: LakeLayout, states: Sequence[TransformState], keep: int = KEEP_VERSIONS
) -> int:
    """Delete the dimension versions, `changes-` folders and `_latest` snapshots nobody needs.

    Kept: everything any of `states` points at, and the `keep` newest of each kind in each folder
    (run ids sort in time order). The load never needs an older version: it loads the current one,
    or its changes when it has loaded the one before. Returns the number of folders deleted.
    """
    referenced: set[str] = set()
    for state in states:
        referenced.update(state.latest.values())
        for entry in state.tables.values():
            referenced.update(p for p in (entry.location, entry.changes) if p)
    deleted = 0
    for versions in _version_folders(storage, layout):
        for location in versions[: max(len(versions) - keep, 0)]:
            if location not in referenced:
                storage.delete(location)
                deleted += 1
    return deleted


def _version_folders(storage: Storage, layout: LakeLayout) -> Iterator[list[str]]:
    """Each kind of versions in each folder, oldest first: a dimension's versions, its changes, a
    `_latest` snapshot's versions."""
    for dim in (*DIMENSIONS, CALENDAR):
        names = storage.list_names(layout.table(dim))
        yield [layout.version(dim, run) for run in _runs(names, VERSION_PREFIX)]
        yield [layout.changes(dim, run) for run in _runs(names, CHANGES_PREFIX)]
    for table in sorted(LATEST_TABLES):
        names = storage.list_names(layout.latest_table(table))
        yield [layout.latest_version(table, run) for run in _runs(names, VERSION_PREFIX)]


def _runs(names: list[str], prefix: str) -> list[str]:
    return sorted(name.removeprefix(prefix) for name in names if name.startswith(prefix))
