"""Steps of the transform job (shared/jobs/transform/) and their typed results, on tiny lakes.

What the whole job does with them (exactly once, crash recovery, schema changes) is tested end to
end by tests/test_pipeline.py, tests/test_faults*.py and tests/test_schema_change.py; here, the
results of single steps and the documents they hand over.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from test_quality import frame, row

from shared.config import Settings
from shared.jobs.transform.dimensions import update_dim_date
from shared.jobs.transform.facts import append_facts
from shared.jobs.transform.tables import reshaped_tables, star_columns
from shared.jobs.transform.validate import Pending, pending_work
from shared.lake.documents import DocumentError, Manifest, TableEntry, TransformState, write_document
from shared.lake.layout import LakeLayout
from shared.lake.storage import LocalStorage
from shared.runtime.context import JobReport, LocalJobContext

RUN = "20261201T100000000000Z"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(lake_root=str(tmp_path / "lake"))


def context(spark, settings: Settings, run_id: str) -> LocalJobContext:
    """A real local job context (JobContext is a Protocol), with the run id the test names."""
    ctx = LocalJobContext("transform", spark, settings)
    ctx.run_id, ctx.report = run_id, JobReport(job="transform", run_id=run_id)
    return ctx


def test_pending_work_is_what_is_published_after_the_watermark(spark, settings) -> None:
    layout = LakeLayout.of(settings)
    storage = LocalStorage()
    for run_id, tables in (("r1", {"staff": 2}), ("r2", {"staff": 3, "payment": 5}), ("r3", {"payment": 1})):
        write_document(storage, layout.manifest(run_id), Manifest(run_id, tables))
    storage.write_text(f"{layout.manifests}/notes.txt", "not a manifest")
    ctx = context(spark, settings, RUN)

    pending = pending_work(ctx, layout, TransformState(extract_watermark="r1"))

    assert pending.extract_runs == ("r2", "r3") and pending.reshaped == frozenset()
    assert (pending.rows("staff"), pending.rows("payment"), pending.rows("design")) == (3, 6, 0)
    assert pending and not pending_work(ctx, layout, TransformState(extract_watermark="r3"))
    assert not Pending((), frozenset()) and Pending((), frozenset({"dim_staff"}))


def test_a_manifest_of_an_unknown_format_stops_the_run_naming_the_file(spark, settings) -> None:
    layout = LakeLayout.of(settings)
    LocalStorage().write_text(layout.manifest("r9"), '{"format_version": 9, "run_id": "r9", "tables": {}}')
    with pytest.raises(DocumentError, match=r"r9\.json: manifest document of format version 9"):
        pending_work(context(spark, settings, RUN), layout, TransformState())


def test_reshaped_tables_are_those_whose_columns_are_not_the_stars(spark, tmp_path) -> None:
    old_dimension = str(tmp_path / "dim_design")  # written before entries recorded their columns
    columns = "design_id int, design_name string, file_location string, file_name string"
    spark.createDataFrame([(1, "a", "b", "c")], columns).write.parquet(old_dimension)
    state = TransformState(
        tables={
            "dim_design": TableEntry(old_dimension, "r1", "dimension"),  # the star's columns, in its footer
            "dim_staff": TableEntry("-", "r1", "dimension", columns=star_columns("dim_staff")),
            "dim_currency": TableEntry("-", "r1", "dimension", columns=("currency_id", "currency_code")),
            "fact_payment": TableEntry("-", "r1", "fact"),  # a fact without columns: checked once
        }
    )
    assert reshaped_tables(spark, state) == {"dim_currency", "fact_payment"}


def test_dim_date_is_extended_only_when_the_facts_reach_beyond_it(spark, settings) -> None:
    layout = LakeLayout.of(settings)
    ctx = context(spark, settings, RUN)
    published = TableEntry("-", "r1", "dimension", min="2024-11-01", max="2024-11-30")
    inside = ((date(2024, 11, 3), date(2024, 11, 29)),)

    assert update_dim_date(ctx, layout, published, inside) is None
    assert update_dim_date(ctx, layout, published, ()) is None
    assert update_dim_date(ctx, layout, None, ()) is None

    entry = update_dim_date(ctx, layout, published, ((date(2024, 10, 30), date(2024, 11, 2)),))
    columns = star_columns("dim_date")
    location = layout.version("dim_date", RUN)
    assert entry == TableEntry(location, RUN, "dimension", columns, min="2024-10-30", max="2024-11-30")
    calendar = spark.read.parquet(entry.location)
    assert calendar.count() == ctx.report.table("dim_date").written == 32

    again = context(spark, settings, RUN + "1")
    rebuilt = update_dim_date(again, layout, entry, (), rebuild=True)  # its star columns changed
    assert rebuilt is not None and (rebuilt.min, rebuilt.max) == ("2024-10-30", "2024-11-30")


@pytest.mark.parametrize(
    ("entry", "loaded", "expected"),
    [
        (TableEntry("v3", "r3", "dimension", changes="c3", changes_since="r2"), "r2", "c3"),
        (TableEntry("v3", "r3", "dimension", changes="c3", changes_since="r2"), "r2b", "c3"),
        (TableEntry("v3", "r3", "dimension", changes="c3", changes_since="r2"), "r1", None),  # missed r2
        (TableEntry("v3", "r3", "dimension", changes="c3", changes_since="r2"), "", None),  # first load
        (TableEntry("v3", "r3", "dimension"), "r2", None),  # no changes recorded: the whole version
    ],
)
def test_a_load_stages_a_dimensions_changes_only_on_top_of_the_version_they_follow(
    entry: TableEntry, loaded: str, expected: str | None
) -> None:
    assert entry.changes_after(loaded) == expected


@pytest.mark.parametrize("runs", [1, 2])
def test_a_fact_version_is_appended_once_and_a_month_in_one_file(spark, settings, runs) -> None:
    """Rows from one extract run hold each version once (no de-duplication); from several (a
    catch-up: the same version read by two runs) they are de-duplicated. Each month is one file."""
    layout = LakeLayout.of(settings)
    first, edited = row("sales_order"), row("sales_order", sales_order_id=2, units_sold=7)
    batch = frame(spark, "sales_order", [first, edited] * runs)
    one_run = {"sales_order"} if runs == 1 else set()

    appended = append_facts(
        context(spark, settings, RUN), layout, {"sales_order": batch}, {"sales_order"}, {}, "", one_run
    )

    fact = spark.read.parquet(layout.table("fact_sales_order"))
    assert sorted((r.sales_order_id, r.units_sold) for r in fact.collect()) == [(1, 42972), (2, 7)]
    assert appended.months == {"fact_sales_order": ((2024, 11),)}
    month = Path(layout.partition(layout.table("fact_sales_order"), 2024, 11))
    assert len(list(month.glob("*.parquet"))) == 1
