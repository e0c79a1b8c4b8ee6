"""The star as one registry: each warehouse table with its builder and the source tables it is built from.

shared/contract/star.py says what a star table holds (its columns, keys, foreign keys); this says how
it is made: `STAR_BUILDS[table]` names its pure builder (shared/transforms.py) and its inputs, the
source tables whose rows the builder takes, in its argument order. Everything the transform job
(shared/jobs/transform/) decides per table is derived from here, never listed again:

- `DIMENSIONS`: rebuilt from the latest state of their inputs, which makes those inputs the
  `LATEST_TABLES` whose `_latest` snapshot the transform keeps;
- `FACTS`: one row per version of their one input (the star's `source`);
- `CALENDAR` (dim_date): the one table with no inputs, built from the dates the facts refer to;
- `VALIDATION_ORDER`: every source table, each after the tables its foreign keys point at, so a
  table's keys are known when the tables referring to it are checked.

Adding a dimension is its `StarTable` in star.py, one `StarBuild` here, its builder and their tests
(and a warehouse migration, docs/schema-changes.md). `check_registry` runs at import: a star table
without a build, an input that is not a source table, a fact built from another table than its
source or a builder taking a different number of inputs fails there, naming it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pyspark.sql import DataFrame

from shared import transforms as T
from shared.contract.ordering import dependency_order
from shared.contract.source import SOURCE_DEPENDENCIES, SOURCE_TABLES, SourceTable
from shared.contract.star import FACT_VERSION_KEYS, STAR_TABLES, StarTable


class RegistryError(ValueError):
    """The registry contradicts the star or the source contract; the message names the table."""


@dataclass(frozen=True)
class StarBuild:
    """How one star table is built: `build(*inputs)`, each input the rows of one source table.

    A dimension's inputs are the latest rows of its source tables; a fact's, the validated versions
    of its source table. The calendar (dim_date) has none: it is built from the facts' dates.
    """

    table: str
    build: Callable[..., DataFrame]
    inputs: tuple[str, ...]

    @property
    def star(self) -> StarTable:
        return STAR_TABLES[self.table]

    @property
    def is_fact(self) -> bool:
        return self.star.is_fact

    @property
    def key(self) -> tuple[str, ...]:
        """What identifies a row: a dimension's key, or a fact version's (source id, last_updated)."""
        if self.is_fact:
            return FACT_VERSION_KEYS[self.table]
        assert self.star.key is not None  # check_registry: a table is either a fact or has a key
        return (self.star.key,)

    @property
    def input_keys(self) -> tuple[str, ...]:
        """The primary key of each input, in the same order."""
        return tuple(SOURCE_TABLES[source].primary_key for source in self.inputs)


STAR_BUILDS: dict[str, StarBuild] = {
    b.table: b
    for b in [
        StarBuild("dim_date", T.dim_date, ()),
        StarBuild("dim_staff", T.dim_staff, ("staff", "department")),
        StarBuild("dim_location", T.dim_location, ("address",)),
        StarBuild("dim_currency", T.dim_currency, ("currency",)),
        StarBuild("dim_design", T.dim_design, ("design",)),
        StarBuild("dim_counterparty", T.dim_counterparty, ("counterparty", "address")),
        StarBuild("dim_payment_type", T.dim_payment_type, ("payment_type",)),
        StarBuild("dim_transaction", T.dim_transaction, ("transaction",)),
        StarBuild("fact_sales_order", T.fact_sales_order, ("sales_order",)),
        StarBuild("fact_purchase_order", T.fact_purchase_order, ("purchase_order",)),
        StarBuild("fact_payment", T.fact_payment, ("payment",)),
    ]
}

# The one table built from the dates the facts refer to (their columns referencing it).
CALENDAR = "dim_date"
# Dimensions built from source tables, and facts, in declaration order.
DIMENSIONS: tuple[str, ...] = tuple(n for n, b in STAR_BUILDS.items() if not b.is_fact and b.inputs)
FACTS: tuple[str, ...] = tuple(n for n, b in STAR_BUILDS.items() if b.is_fact)
# Source tables whose latest state the transform keeps: every input of a dimension.
LATEST_TABLES: frozenset[str] = frozenset(s for d in DIMENSIONS for s in STAR_BUILDS[d].inputs)
# Source table -> the fact holding its versions.
FACT_OF_SOURCE: dict[str, str] = {STAR_BUILDS[f].inputs[0]: f for f in FACTS}
# Every source table after the tables its foreign keys point at (ties by name).
VALIDATION_ORDER: tuple[str, ...] = dependency_order(SOURCE_DEPENDENCIES, "the source tables' foreign keys")


def check_registry(
    builds: Mapping[str, StarBuild],
    star_tables: Mapping[str, StarTable],
    source_tables: Mapping[str, SourceTable],
    calendar: str = CALENDAR,
) -> None:
    """Raise a RegistryError naming the first contradiction between `builds`, the star and the sources."""
    if set(builds) != set(star_tables):
        missing, extra = sorted(set(star_tables) - set(builds)), sorted(set(builds) - set(star_tables))
        raise RegistryError(f"star tables without a build: {missing}; builds of no star table: {extra}")
    for name, build in builds.items():
        table = star_tables[name]
        if build.table != name:
            raise RegistryError(f"{name}: registered under another name than its table {build.table!r}")
        unknown = [s for s in build.inputs if s not in source_tables]
        if unknown:
            raise RegistryError(f"{name}: inputs {unknown} are not source tables (shared/contract/source.py)")
        if table.is_fact and build.inputs != (table.source,):
            raise RegistryError(
                f"{name}: a fact is built from its source {table.source!r}, not {build.inputs}"
            )
        if not build.inputs and (table.is_fact or name != calendar):
            raise RegistryError(f"{name}: no inputs; only the calendar {calendar!r} is built from the facts")
        arity = len(build.inputs) or 1  # the calendar takes one DataFrame of dates
        parameters = inspect.signature(build.build).parameters
        if len(parameters) != arity:
            raise RegistryError(
                f"{name}: builder {build.build.__name__} takes {len(parameters)} argument(s), "
                f"its inputs are {build.inputs}"
            )
    if calendar not in builds or builds[calendar].inputs:
        raise RegistryError(f"the calendar {calendar!r} must be a star table built from no source table")


check_registry(STAR_BUILDS, STAR_TABLES, SOURCE_TABLES)
