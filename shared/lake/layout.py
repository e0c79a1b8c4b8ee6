"""The lake's layout: every path the jobs, the CLI and the tests use, formatted here and nowhere else.

    <ingestion>/<table>/extract_run=<run_id>/part-*.json        an extract run's rows of one table
    <ingestion>/_manifests/<run_id>.json                         the extract run's manifest (published)
    <processed>/_current.json                                    the transform's published pointer
    <processed>/<dimension>/version-<run_id>/                    a dimension version
    <processed>/<dimension>/changes-<run_id>/                    its rows that differ from the previous one
    <processed>/<fact>/created_year=<y>/created_month=<m>/       a fact's month partition
    <processed>/<fact>/_compaction/<run_id>.json                 a compaction's journal (and staging folder)
    <processed>/_latest/<source table>/version-<run_id>/         the latest state of a dimension source
    <quarantine>/<table>/transform_run=<run_id>/                 the rows a transform run rejected
    <state>/bookmarks/<job>.json                                 a job's committed bookmarks
    <state>/runs/<run_id>-<job>.json                             a job run's record
    <state>/run.lock                                             the local run lock
    <state>/schedule/                                            `totes schedule`'s log and alert state

`LakeLayout.of(settings)` gives the layout of a configured lake (local folder or S3); the zone roots
themselves come from shared/config.py. ADR 0002 says why the lake is laid out this way.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.config import Settings, join

VERSION_PREFIX = "version-"
CHANGES_PREFIX = "changes-"
COMPACTION_FOLDER = "_compaction"
PARTITION_COLUMNS = ("created_year", "created_month")


@dataclass(frozen=True)
class LakeLayout:
    ingestion: str
    processed: str
    quarantine: str
    state: str

    @classmethod
    def of(cls, settings: Settings) -> LakeLayout:
        return cls(settings.ingestion, settings.processed, settings.quarantine, settings.state)

    # ------------------------------------------------------------------ ingestion zone (extract)
    def ingestion_run(self, table: str, run_id: str) -> str:
        return join(self.ingestion, table, f"extract_run={run_id}")

    def ingestion_table(self, table: str) -> str:
        return join(self.ingestion, table)

    @property
    def manifests(self) -> str:
        return join(self.ingestion, "_manifests")

    def manifest(self, run_id: str) -> str:
        return join(self.manifests, f"{run_id}.json")

    @staticmethod
    def manifest_run_id(name: str) -> str | None:
        """The run id of a file name listed under `manifests` (None: not a manifest)."""
        return name.removesuffix(".json") if name.endswith(".json") else None

    # ------------------------------------------------------------------ processed zone (transform)
    @property
    def published(self) -> str:
        return join(self.processed, "_current.json")

    def table(self, table: str) -> str:
        """A processed table's folder: a fact's data, or the folder of a dimension's versions."""
        return join(self.processed, table)

    def version(self, table: str, run_id: str) -> str:
        return join(self.table(table), f"{VERSION_PREFIX}{run_id}")

    def changes(self, table: str, run_id: str) -> str:
        return join(self.table(table), f"{CHANGES_PREFIX}{run_id}")

    @staticmethod
    def partition(fact_location: str, year: int, month: int) -> str:
        return join(fact_location, f"created_year={int(year)}", f"created_month={int(month)}")

    def latest_table(self, source_table: str) -> str:
        return join(self.processed, "_latest", source_table)

    def latest_version(self, source_table: str, run_id: str) -> str:
        return join(self.latest_table(source_table), f"{VERSION_PREFIX}{run_id}")

    @staticmethod
    def compaction_folder(fact_location: str) -> str:
        return join(fact_location, COMPACTION_FOLDER)

    @staticmethod
    def compaction_journal(fact_location: str, run_id: str) -> str:
        return join(fact_location, COMPACTION_FOLDER, f"{run_id}.json")

    @staticmethod
    def compaction_staging(fact_location: str, run_id: str) -> str:
        return join(fact_location, COMPACTION_FOLDER, run_id)

    # ------------------------------------------------------------------ quarantine zone
    def quarantine_table(self, table: str) -> str:
        return join(self.quarantine, table)

    def quarantine_run(self, table: str, run_id: str) -> str:
        return join(self.quarantine, table, f"transform_run={run_id}")

    @staticmethod
    def quarantine_run_id(name: str) -> str | None:
        """The run id of a folder name listed under `quarantine_table` (None: not a run's folder)."""
        return name.removeprefix("transform_run=") if name.startswith("transform_run=") else None

    # ------------------------------------------------------------------ state (bookmarks, runs, lock)
    @property
    def bookmarks(self) -> str:
        return join(self.state, "bookmarks")

    def bookmark(self, job: str) -> str:
        return join(self.bookmarks, f"{job}.json")

    @staticmethod
    def bookmark_job(name: str) -> str | None:
        """The job of a file name listed under `bookmarks` (None: not a bookmark document)."""
        return name.removesuffix(".json") if name.endswith(".json") else None

    @property
    def runs(self) -> str:
        return join(self.state, "runs")

    def run_record(self, run_id: str, job: str) -> str:
        return join(self.runs, f"{run_id}-{job}.json")

    @staticmethod
    def run_record_of(name: str) -> tuple[str, str] | None:
        """(run id, job) of a file name listed under `runs` (None: not a run record).

        Run ids hold no "-" (shared.lake.storage.RUN_ID_FORMAT), so the first one ends the run id.
        """
        stem = name.removesuffix(".json")
        run_id, dash, job = stem.partition("-")
        return (run_id, job) if name.endswith(".json") and dash and run_id and job else None

    @property
    def lock(self) -> str:
        return join(self.state, "run.lock")

    @property
    def schedule(self) -> str:
        return join(self.state, "schedule")
