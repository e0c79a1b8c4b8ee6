"""Orders derived from foreign keys: which table comes before which, computed, never hand-written.

`dependency_order` is graphlib's topological sort with ties broken by name, so an order is the same
on every run and every machine, and a table added to the contract takes its place by its foreign
keys alone. A cycle, or a dependency on a table nobody declared, is an `OrderError` naming it.
Used for the extract's `EXTRACT_ORDER` (shared/contract/source.py), the transform's
`VALIDATION_ORDER` (shared/contract/registry.py) and the warehouse's `LOAD_ORDER`
(shared/jdbc/warehouse.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from graphlib import CycleError, TopologicalSorter


class OrderError(ValueError):
    """Tables whose dependencies admit no order: a cycle, or a dependency on an undeclared table."""


def dependency_order(depends_on: Mapping[str, Iterable[str]], what: str) -> tuple[str, ...]:
    """Every table of `depends_on` after all the tables it depends on.

    Tables are taken in rounds: first those that depend on nothing, then those whose dependencies
    are all taken, and so on; within a round, by name.

    Args:
        depends_on: Table -> the tables it must come after (e.g. the targets of its foreign keys).
            Every table named as a dependency must be a key too.
        what: What the dependencies are, for the error message ("the source tables' foreign keys").

    Returns:
        Every key of `depends_on`, once.

    Raises:
        OrderError: A dependency on a table that is not a key, or a cycle (the message names it).
    """
    graph = {table: set(dependencies) for table, dependencies in depends_on.items()}
    unknown = {d: t for t, dependencies in graph.items() for d in dependencies if d not in graph}
    if unknown:
        named = ", ".join(f"{t} -> {d}" for d, t in sorted(unknown.items()))
        raise OrderError(f"{what}: {named}, a table that is not declared")
    sorter = TopologicalSorter(graph)
    try:
        sorter.prepare()
    except CycleError as exc:
        cycle = " -> ".join(reversed(exc.args[1]))  # graphlib lists it dependency first
        raise OrderError(f"{what} form a cycle, {cycle}: no order puts every table after its own") from None
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(ready)
        sorter.done(*ready)
    return tuple(order)


def dependents(depends_on: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    """The reversed graph: table -> the tables that depend on it (its referencing tables)."""
    out: dict[str, set[str]] = {table: set() for table in depends_on}
    for table, dependencies in depends_on.items():
        for dependency in dependencies:
            out.setdefault(dependency, set()).add(table)
    return out
