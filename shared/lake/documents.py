"""The documents the jobs hand each other through the lake, typed, versioned, read and written here.

    Manifest        <ingestion>/_manifests/<run_id>.json   an extract run is complete (its row counts)
    Published       <processed>/_current.json              what the transform's last run made complete
    TransformState  the transform's bookmark               what it has processed, where its tables are
    LoadBookmark    the load's bookmark                    the last transform run loaded
    JobBookmarks    <state>/bookmarks/<job>.json           a job's committed bookmark contexts
    (the run record, `shared.runtime.context.JobReport`, is written through `write_document` too)

Each is a frozen dataclass with `FORMAT_VERSION`, `to_json()` and `from_json()`, and carries its
format version in the file (`"format_version": 1`). A document written before versions existed has
none and is read as version 1 (its fields are the same). A document of a version this code does
not know, or one missing a field, is a `DocumentError` naming the file and what is wrong, never a
KeyError three calls later. `read_document` / `write_document` are the one place that does I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from shared.lake.storage import Storage

FORMAT_VERSION_KEY = "format_version"


class DocumentError(ValueError):
    """A lake document that this code cannot read: unknown format version, a missing field, not JSON."""


class Document(Protocol):
    FORMAT_VERSION: ClassVar[int]
    KIND: ClassVar[str]

    def to_json(self) -> dict[str, Any]: ...


D = TypeVar("D")


def _require(document: Mapping[str, Any], key: str, kind: str) -> Any:
    if key not in document:
        raise DocumentError(
            f"{kind} document has no {key!r} (it has: {', '.join(sorted(document)) or 'nothing'})"
        )
    return document[key]


def _check_version(document: Mapping[str, Any], cls: Any) -> None:
    version = document.get(FORMAT_VERSION_KEY, 1)
    if version != cls.FORMAT_VERSION:
        raise DocumentError(
            f"{cls.KIND} document of format version {version!r}; this code reads version {cls.FORMAT_VERSION} "
            "(written by a newer release? upgrade the jobs before reading this lake)"
        )


@dataclass(frozen=True)
class Manifest:
    """An extract run is complete: the rows it wrote per table (tables with none are left out)."""

    FORMAT_VERSION: ClassVar[int] = 1
    KIND: ClassVar[str] = "manifest"

    run_id: str
    tables: Mapping[str, int]
    notes: tuple[str, ...] = ()

    def rows(self, table: str) -> int:
        return int(self.tables.get(table) or 0)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"run_id": self.run_id, "tables": dict(self.tables)}
        if self.notes:
            out["notes"] = list(self.notes)
        return out

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Manifest:
        _check_version(document, cls)
        tables = _require(document, "tables", cls.KIND)
        return cls(
            str(_require(document, "run_id", cls.KIND)),
            {str(t): int(n) for t, n in tables.items()},
            tuple(document.get("notes", ())),
        )


@dataclass(frozen=True)
class TableEntry:
    """Where a published processed table is and which transform run last changed it.

    A dimension points at one version folder and, when it was built from the version before it, at
    the rows that differ (`changes`, since the version of run `changes_since`). A fact points at its
    table folder; its rows carry their `transform_run_id`. dim_date records the calendar it covers.
    """

    location: str
    changed_run: str
    kind: Literal["dimension", "fact"]
    columns: tuple[str, ...] | None = None  # None: written before entries recorded their columns
    changes: str | None = None
    changes_since: str | None = None
    min: str | None = None  # dim_date only: the first and last date it covers
    max: str | None = None

    def changes_after(self, loaded_run: str) -> str | None:
        """Where this version's changes are, when they are all that a reader holding the version of
        transform run `loaded_run` lacks ("" : none loaded); None: it must read the whole `location`."""
        if not self.changes or self.changes_since is None or not loaded_run:
            return None
        return self.changes if self.changes_since <= loaded_run else None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"location": self.location, "changed_run": self.changed_run, "kind": self.kind}
        if self.columns is not None:
            out["columns"] = list(self.columns)
        for key in ("changes", "changes_since", "min", "max"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    @classmethod
    def from_json(cls, document: Mapping[str, Any], kind_of: str = "table entry") -> TableEntry:
        kind = _require(document, "kind", kind_of)
        if kind not in ("dimension", "fact"):
            raise DocumentError(f"{kind_of} of unknown kind {kind!r} (expected dimension or fact)")
        columns = document.get("columns")
        return cls(
            location=str(_require(document, "location", kind_of)),
            changed_run=str(_require(document, "changed_run", kind_of)),
            kind=kind,
            columns=None if columns is None else tuple(columns),
            changes=document.get("changes"),
            changes_since=document.get("changes_since"),
            min=document.get("min"),
            max=document.get("max"),
        )


def _tables_from_json(document: Mapping[str, Any], kind: str) -> dict[str, TableEntry]:
    tables = _require(document, "tables", kind)
    return {name: TableEntry.from_json(entry, f"{kind} entry {name!r}") for name, entry in tables.items()}


@dataclass(frozen=True)
class Published:
    """The transform's published pointer: every processed table as of its run `run_id`."""

    FORMAT_VERSION: ClassVar[int] = 1
    KIND: ClassVar[str] = "published pointer"

    run_id: str
    extract_runs: tuple[str, ...]
    tables: Mapping[str, TableEntry]

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "extract_runs": list(self.extract_runs),
            "tables": {name: entry.to_json() for name, entry in sorted(self.tables.items())},
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Published:
        _check_version(document, cls)
        return cls(
            str(_require(document, "run_id", cls.KIND)),
            tuple(document.get("extract_runs", ())),
            _tables_from_json(document, cls.KIND),
        )


@dataclass(frozen=True)
class TransformState:
    """The transform's bookmark: the newest extract run processed, the `_latest` snapshots, the tables.

    `run_id` is the transform run that committed it ("" before the first commit).
    """

    FORMAT_VERSION: ClassVar[int] = 1
    KIND: ClassVar[str] = "transform state"

    run_id: str = ""
    extract_watermark: str = ""
    latest: Mapping[str, str] = field(default_factory=dict)
    tables: Mapping[str, TableEntry] = field(default_factory=dict)

    @property
    def committed_run(self) -> str:
        """The transform run that committed this state; a state written before the run id was kept
        falls back on the newest run that changed a table (the same for facts)."""
        if self.run_id:
            return self.run_id
        return max((entry.changed_run for entry in self.tables.values()), default="")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "extract_watermark": self.extract_watermark,
            "latest": dict(sorted(self.latest.items())),
            "tables": {name: entry.to_json() for name, entry in sorted(self.tables.items())},
        }
        if self.run_id:
            out["run_id"] = self.run_id
        return {FORMAT_VERSION_KEY: self.FORMAT_VERSION, **out}

    @classmethod
    def from_json(cls, document: Mapping[str, Any] | None) -> TransformState:
        if document is None:
            return cls()
        _check_version(document, cls)
        return cls(
            run_id=str(document.get("run_id") or ""),
            extract_watermark=str(_require(document, "extract_watermark", cls.KIND)),
            latest=dict(_require(document, "latest", cls.KIND)),
            tables=_tables_from_json(document, cls.KIND),
        )


@dataclass(frozen=True)
class LoadBookmark:
    """The load's bookmark: the last transform run whose published tables are in the warehouse."""

    FORMAT_VERSION: ClassVar[int] = 1
    KIND: ClassVar[str] = "load bookmark"

    transform_run_id: str = ""

    def to_json(self) -> dict[str, Any]:
        return {FORMAT_VERSION_KEY: self.FORMAT_VERSION, "transform_run_id": self.transform_run_id}

    @classmethod
    def from_json(cls, document: Mapping[str, Any] | None) -> LoadBookmark:
        if document is None:
            return cls()
        _check_version(document, cls)
        return cls(str(document.get("transform_run_id") or ""))


@dataclass(frozen=True)
class JobBookmarks:
    """A job's committed bookmarks: one value per `transformation_ctx`, and the run that committed them."""

    FORMAT_VERSION: ClassVar[int] = 1
    KIND: ClassVar[str] = "job bookmarks"

    job: str
    run_id: str | None = None  # None: never committed
    committed_at: str | None = None
    contexts: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "run_id": self.run_id,
            "committed_at": self.committed_at,
            "contexts": dict(self.contexts),
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> JobBookmarks:
        _check_version(document, cls)
        return cls(
            job=str(_require(document, "job", cls.KIND)),
            run_id=document.get("run_id"),
            committed_at=document.get("committed_at"),
            contexts=dict(document.get("contexts", {})),
        )


def read_document(storage: Storage, location: str, cls: type[D]) -> D | None:
    """The document at `location` as `cls` (None if there is none), or a DocumentError naming the file."""
    text = storage.read_text(location)
    if text is None:
        return None
    try:
        document = json.loads(text)
        if not isinstance(document, dict):
            raise DocumentError(f"expected a JSON object, found {type(document).__name__}")
        return cls.from_json(document)  # type: ignore[attr-defined, no-any-return]
    except (DocumentError, json.JSONDecodeError, TypeError, ValueError) as exc:
        raise DocumentError(f"{location}: {exc}") from None


def write_document(storage: Storage, location: str, document: Document) -> None:
    """Write `document` (atomically per file: see shared/lake/storage.py) with its format version."""
    body = {FORMAT_VERSION_KEY: document.FORMAT_VERSION, **document.to_json()}
    storage.write_text(location, json.dumps(body, indent=2, sort_keys=True, default=str) + "\n")
