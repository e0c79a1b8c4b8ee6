"""The warehouse's versioned migrations: every change to its schema, in order, each one a module.

A migration is a module `vNNNN_<name>.py` in this package holding `SQL`, one PostgreSQL script
(several statements are fine; the JDBC driver runs them in order). The warehouse records each one it
has applied in `etl_meta.schema_migrations` (version, name, checksum, applied_at) and the load
applies the pending ones first, inside its own transaction, under an advisory lock
(shared/jdbc/warehouse.py `migrate`). Applied migrations are frozen: their checksum is checked on every
load, so changing one is an error, not a silent divergence between warehouses.

Adding one (docs/schema-changes.md): write `vNNNN_<name>.py` with the next number and add it to
`_MODULES` below. The list is explicit, not discovered, because the Glue zip holds only the
modules the Glue scripts import (shared/local/glue_package.py): an import here is what ships a migration.
tests/test_migrations.py fails when a file of this folder is missing from the list.
Called by shared/jdbc/warehouse.py.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from types import ModuleType

from shared.migrations import v0001_star_schema

_MODULES: tuple[ModuleType, ...] = (v0001_star_schema,)

MODULE_NAME = re.compile(r"^v(?P<version>\d{4})_(?P<name>[a-z0-9_]+)$")


class MigrationDefinitionError(ValueError):
    """A migration module is declared wrongly (its name, its SQL, its number); the message says which."""


@dataclass(frozen=True)
class Migration:
    """One schema change: applied once, in version order, never edited once applied."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """sha256 of the SQL as written (whitespace included: any edit is a different migration)."""
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


def from_module(module: ModuleType) -> Migration:
    """The migration a `vNNNN_<name>` module declares (bad names and a missing SQL are errors)."""
    short = module.__name__.rsplit(".", 1)[-1]
    match = MODULE_NAME.match(short)
    if match is None:
        raise MigrationDefinitionError(
            f"migration module {module.__name__}: name must be vNNNN_<lowercase_name>"
        )
    sql = getattr(module, "SQL", None)
    if not isinstance(sql, str) or not sql.strip():
        raise MigrationDefinitionError(f"migration {short}: no SQL (a module-level string `SQL`)")
    return Migration(int(match["version"]), match["name"], sql)


def ordered(migrations: list[Migration] | tuple[Migration, ...]) -> tuple[Migration, ...]:
    """`migrations` checked to be numbered 1, 2, 3 ... with no gap and no repeat, in that order."""
    out = tuple(sorted(migrations, key=lambda m: m.version))
    versions = [m.version for m in out]
    expected = list(range(1, len(out) + 1))
    if versions != expected:
        raise MigrationDefinitionError(
            f"migrations must be numbered 1..{len(out)} without gaps: got {versions}"
        )
    return out


MIGRATIONS: tuple[Migration, ...] = ordered([from_module(m) for m in _MODULES])
