"""The star registry (shared/contract/registry.py) and the orders derived from foreign keys
(shared/contract/ordering.py): the extract's, the transform's validation order, the warehouse load's.

No Spark session: these are checks of declarations, cheap enough to run on every change.
"""

from __future__ import annotations

import dataclasses

import pytest

from shared import transforms as T
from shared.contract import registry
from shared.contract.ordering import OrderError, dependency_order, dependents
from shared.contract.registry import (
    CALENDAR,
    DIMENSIONS,
    FACT_OF_SOURCE,
    FACTS,
    LATEST_TABLES,
    STAR_BUILDS,
    VALIDATION_ORDER,
    RegistryError,
    StarBuild,
    check_registry,
)
from shared.contract.source import EXTRACT_ORDER, SOURCE_TABLES
from shared.contract.star import FACT_FOREIGN_KEYS, STAR_TABLES
from shared.jdbc.warehouse import LOAD_ORDER


def position(order: tuple[str, ...]) -> dict[str, int]:
    assert len(order) == len(set(order)), f"a table twice in {order}"
    return {table: i for i, table in enumerate(order)}


# --------------------------------------------------------------------------- the derived orders
def test_validation_order_has_every_source_table_after_the_tables_its_foreign_keys_point_at() -> None:
    at = position(VALIDATION_ORDER)
    assert set(at) == set(SOURCE_TABLES)  # every source table is validated, so read
    for name, table in SOURCE_TABLES.items():
        for column, target in table.foreign_keys.items():
            assert at[target] < at[name], f"{name}.{column} -> {target}"


def test_extract_order_has_every_referencing_table_before_the_tables_it_references() -> None:
    at = position(EXTRACT_ORDER)
    assert set(at) == set(SOURCE_TABLES)
    for name, table in SOURCE_TABLES.items():
        for column, target in table.foreign_keys.items():
            assert at[name] < at[target], f"{name}.{column} -> {target}"


def test_load_order_has_every_dimension_before_the_facts_referencing_it() -> None:
    at = position(LOAD_ORDER)
    assert set(at) == set(STAR_TABLES)
    for fact, references in FACT_FOREIGN_KEYS.items():
        for column, dimension in references.items():
            assert at[dimension] < at[fact], f"{fact}.{column} -> {dimension}"
    dimensions = [t for t in LOAD_ORDER if not STAR_TABLES[t].is_fact]
    assert LOAD_ORDER[: len(dimensions)] == tuple(dimensions)  # every dimension first


def test_orders_are_deterministic_rounds_with_ties_by_name() -> None:
    graph = {"b": [], "a": [], "c": ["b"], "d": ["a", "c"]}
    assert dependency_order(graph, "x") == ("a", "b", "c", "d")
    assert dependency_order(dict(reversed(graph.items())), "x") == ("a", "b", "c", "d")
    assert dependency_order(dependents(graph), "x") == ("d", "a", "c", "b")  # rounds: d; a, c; b
    assert VALIDATION_ORDER == (
        "address", "currency", "department", "design", "payment_type",
        "counterparty", "staff", "purchase_order", "sales_order", "transaction", "payment",
    )  # fmt: skip


def test_a_cycle_is_an_error_naming_it() -> None:
    with pytest.raises(OrderError, match=r"the test keys form a cycle, a -> b -> c -> a"):
        dependency_order({"a": ["b"], "b": ["c"], "c": ["a"], "d": []}, "the test keys")
    with pytest.raises(OrderError, match=r"a -> a"):
        dependency_order({"a": ["a"]}, "self")


def test_a_dependency_on_an_undeclared_table_is_an_error_naming_it() -> None:
    with pytest.raises(OrderError, match=r"keys: a -> ghost, a table that is not declared"):
        dependency_order({"a": ["ghost"]}, "keys")


# --------------------------------------------------------------------------- the registry
def test_every_star_table_is_built_and_every_dimension_input_is_kept_latest() -> None:
    assert set(STAR_BUILDS) == set(STAR_TABLES)
    assert set(DIMENSIONS) | set(FACTS) | {CALENDAR} == set(STAR_TABLES)
    for dimension in DIMENSIONS:
        assert set(STAR_BUILDS[dimension].inputs) <= LATEST_TABLES, dimension
    assert LATEST_TABLES == {
        "address", "department", "design", "currency", "payment_type", "staff", "counterparty", "transaction",
    }  # fmt: skip
    for fact in FACTS:
        assert STAR_BUILDS[fact].inputs == (STAR_TABLES[fact].source,)
    assert FACT_OF_SOURCE == {"sales_order": "fact_sales_order", "purchase_order": "fact_purchase_order", "payment": "fact_payment"}  # fmt: skip
    # Every source table feeds the star: none is extracted and validated for nothing.
    assert LATEST_TABLES | set(FACT_OF_SOURCE) == set(SOURCE_TABLES)


def test_keys_of_a_build() -> None:
    assert STAR_BUILDS["dim_staff"].key == ("staff_id",)
    assert STAR_BUILDS["dim_staff"].input_keys == ("staff_id", "department_id")
    assert STAR_BUILDS["fact_payment"].key == ("payment_id", "last_updated_date", "last_updated_time")


def replaced(table: str, **changes) -> dict[str, StarBuild]:
    return {**STAR_BUILDS, table: dataclasses.replace(STAR_BUILDS[table], **changes)}


@pytest.mark.parametrize(
    ("builds", "message"),
    [
        ({k: v for k, v in STAR_BUILDS.items() if k != "dim_design"}, r"without a build: \['dim_design'\]"),
        (replaced("dim_staff", inputs=("staff", "departments")), r"dim_staff: inputs \['departments'\]"),
        (replaced("fact_payment", inputs=("transaction",)), r"fact_payment: a fact is built from its source"),
        (replaced("dim_design", inputs=()), r"dim_design: no inputs; only the calendar"),
        (replaced("dim_staff", inputs=("staff",)), r"dim_staff: builder dim_staff takes 2 argument"),
        (replaced("dim_design", build=T.dim_staff), r"dim_design: builder dim_staff takes 2"),
        (replaced(CALENDAR, inputs=("address",)), r"calendar 'dim_date' must be a star table built from no"),
    ],
)
def test_a_registry_that_contradicts_the_star_or_the_sources_is_an_error_naming_the_table(
    builds, message
) -> None:
    with pytest.raises(RegistryError, match=message):
        check_registry(builds, STAR_TABLES, SOURCE_TABLES)


def test_the_registry_as_declared_is_consistent() -> None:
    check_registry(registry.STAR_BUILDS, STAR_TABLES, SOURCE_TABLES)  # also run at import
