"""Retention of dimension versions and latest snapshots (transform.prune_versions) on real folders."""

from __future__ import annotations

from pathlib import Path

from shared.jobs.transform import changes_path, prune_versions, version_path
from shared.lake.storage import LocalStorage


def make(path: str) -> str:
    Path(path).mkdir(parents=True)
    (Path(path) / "part-00000.snappy.parquet").write_bytes(b"PAR1")
    return path


def test_only_versions_no_state_points_at_and_beyond_the_newest_are_deleted(tmp_path) -> None:
    processed = str(tmp_path / "processed")
    runs = [f"2026113{d}T000000000000Z" for d in range(6)]  # sorted in time order
    staff = [make(version_path(processed, "dim_staff", r)) for r in runs]
    changes = [make(changes_path(processed, "dim_staff", r)) for r in runs]
    latest = [make(version_path(f"{processed}/_latest", "staff", r)) for r in runs]
    dim_date = make(version_path(processed, "dim_date", runs[0]))  # alone: one of the newest
    committed = {"latest": {"staff": latest[0]}, "tables": {"dim_staff": {"location": staff[1]}}}
    new = {
        "latest": {"staff": latest[5]},
        "tables": {
            "dim_staff": {"location": staff[5], "changes": changes[5]},
            "dim_date": {"location": dim_date},
        },
    }

    deleted = prune_versions(LocalStorage(), processed, [committed, new], keep=3)

    def left(folder: str) -> list[str]:
        return sorted(p.name for p in Path(processed, folder).iterdir())

    assert left("dim_staff") == sorted(
        [Path(p).name for p in (staff[1], *staff[3:], *changes[3:])]
    )  # the committed state's version 1 too
    assert left("_latest/staff") == sorted(Path(p).name for p in (latest[0], *latest[3:]))
    assert left("dim_date") == [Path(dim_date).name]
    assert deleted == 2 + 3 + 2  # dim_staff versions 0 and 2, changes 0 to 2, latest 1 and 2
