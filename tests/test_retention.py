"""Retention of dimension versions and latest snapshots (shared/jobs/transform/retention.py) on real folders."""

from __future__ import annotations

from pathlib import Path

from shared.jobs.transform.retention import prune_versions
from shared.lake.documents import TableEntry, TransformState
from shared.lake.layout import LakeLayout
from shared.lake.storage import LocalStorage


def make(path: str) -> str:
    Path(path).mkdir(parents=True)
    (Path(path) / "part-00000.snappy.parquet").write_bytes(b"PAR1")
    return path


def dimension(location: str, changes: str | None = None) -> TableEntry:
    return TableEntry(location, changed_run=Path(location).name, kind="dimension", changes=changes)


def test_only_versions_no_state_points_at_and_beyond_the_newest_are_deleted(tmp_path) -> None:
    layout = LakeLayout(*(str(tmp_path / zone) for zone in ("ingestion", "processed", "quarantine", "state")))
    processed = layout.processed
    runs = [f"2026113{d}T000000000000Z" for d in range(6)]  # sorted in time order
    staff = [make(layout.version("dim_staff", r)) for r in runs]
    changes = [make(layout.changes("dim_staff", r)) for r in runs]
    latest = [make(layout.latest_version("staff", r)) for r in runs]
    dim_date = make(layout.version("dim_date", runs[0]))  # alone: one of the newest
    committed = TransformState(latest={"staff": latest[0]}, tables={"dim_staff": dimension(staff[1])})
    new = TransformState(
        latest={"staff": latest[5]},
        tables={"dim_staff": dimension(staff[5], changes[5]), "dim_date": dimension(dim_date)},
    )

    deleted = prune_versions(LocalStorage(), layout, [committed, new], keep=3)

    def left(folder: str) -> list[str]:
        return sorted(p.name for p in Path(processed, folder).iterdir())

    assert left("dim_staff") == sorted(
        [Path(p).name for p in (staff[1], *staff[3:], *changes[3:])]
    )  # the committed state's version 1 too
    assert left("_latest/staff") == sorted(Path(p).name for p in (latest[0], *latest[3:]))
    assert left("dim_date") == [Path(dim_date).name]
    assert deleted == 2 + 3 + 2  # dim_staff versions 0 and 2, changes 0 to 2, latest 1 and 2
