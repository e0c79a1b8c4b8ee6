"""`totes dashboard` in headless Chromium (Selenium, /usr/bin/chromedriver: `make chromium`): the page
loads, every chart is drawn by Chart.js with data points, and the numbers it shows are the
warehouse's, asked here with SQL of the test's own. A screenshot is kept in the test's tmp folder."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from shared.config import Settings, parse_pg_url
from shared.contract.source import SOURCE_TABLES
from shared.local.dashboard.server import STATIC, DashboardServer
from shared.local.status import read_source_freshness

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--window-size=1400,3200",
)
CHART_JS_SHA256 = "87364cc2b2a76a6684929e7d6b80b18a897794db38400caff1fcf1791c6925d2"  # chart.js 4.6.1
CHARTS = (
    "chart-sales-by-month",
    "chart-top-designs",
    "chart-sales-by-counterparty",
    "chart-sales-by-country",
    "chart-payments",
    "chart-purchase-spend",
    "chart-runs",
    "chart-quarantine",
)


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - 127.0.0.1 only
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# --------------------------------------------------------------------------- without a browser


def test_chart_js_is_vendored_unchanged_with_its_licence() -> None:
    assert hashlib.sha256((STATIC / "chart.umd.min.js").read_bytes()).hexdigest() == CHART_JS_SHA256
    assert "MIT License" in (STATIC / "chart.js-LICENSE.md").read_text(encoding="utf-8")
    assert CHART_JS_SHA256 in (STATIC / "README.md").read_text(encoding="utf-8")
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page  # nothing from a CDN


def test_an_unreachable_warehouse_is_reported_and_the_server_keeps_serving(tmp_path) -> None:
    settings = Settings(
        lake_root=str(tmp_path / "lake"),
        warehouse=parse_pg_url("WAREHOUSE_URL", "postgresql://etl:hunter2@127.0.0.1:9/warehouse"),
    )
    server = DashboardServer(settings)
    server.start_in_thread()
    try:
        assert server.server_address[0] == "127.0.0.1"
        status, body = get(server.url + "api/data")
        assert status == 503
        error = json.loads(body)["error"]
        assert error.startswith("OperationalError") and "hunter2" not in error
        assert get(server.url)[0] == 200
        assert get(server.url + "static/chart.umd.min.js")[0] == 200
        for path in ("static/../data.py", "static/..%2Fdata.py", "static/nothing.js", "data.py", "static/"):
            assert get(server.url + path)[0] == 404, path
    finally:
        server.shutdown()
        server.server_close()


def test_make_test_installs_chromium_when_it_is_missing() -> None:
    # A dry run of `make test` itself (its sub-makes run dry too): with no chromedriver where it
    # looks, the apt-get that installs it is among its commands, before pytest.
    dry = subprocess.run(
        ["make", "-n", "test", "CHROMEDRIVER=/nonexistent/chromedriver"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dry.returncode == 0, dry.stderr
    commands = dry.stdout
    assert "apt-get install -y -qq chromium chromium-driver" in commands, "make test must install it"
    assert commands.index("chromium-driver") < commands.index("/bin/pytest")


# --------------------------------------------------------------------------- in the browser


@pytest.fixture(scope="module")
def dashboard(clean_run) -> Iterator[tuple[str, Settings]]:
    """`totes dashboard` in its own process, over the reference run's warehouse and lake."""
    settings: Settings = clean_run.settings
    env = {k: v for k, v in os.environ.items() if k not in ("TOTESYS_URL", "WAREHOUSE_URL", "LAKE_ROOT")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shared.local.cli",
            "dashboard",
            "--port",
            "0",
            "--lake-root",
            settings.lake_root,
            "--totesys-url",
            settings.require_totesys().conninfo,
            "--warehouse-url",
            settings.require_warehouse().conninfo,
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("totes dashboard: http://127.0.0.1:"), first + process.stderr.read()
        yield first.split()[2], settings
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMEDRIVER.is_file(), (
        f"{CHROMEDRIVER} missing: `make chromium` installs Debian's chromium-driver"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _latest(fact: str, key: str) -> str:
    """The latest version of each source row, with a window function (the dashboard uses DISTINCT ON)."""
    return f"""(SELECT * FROM (
                  SELECT f.*, row_number() OVER (PARTITION BY f.{key}
                           ORDER BY f.last_updated_date DESC, f.last_updated_time DESC) AS rank
                  FROM {fact} f) v WHERE rank = 1)"""


def warehouse(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def money(value: Any) -> float:
    return round(float(value), 2)


@pytest.mark.integration
def test_the_page_draws_every_chart_with_the_warehouses_numbers(dashboard, browser, tmp_path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    url, settings = dashboard
    browser.get(url)
    WebDriverWait(browser, 60).until(
        lambda d: d.execute_script("return document.body.dataset.ready") is not None
    )
    assert browser.execute_script("return document.body.dataset.ready") == "true", browser.find_element(
        "id", "error"
    ).text
    browser.save_screenshot(str(tmp_path / "dashboard.png"))
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000

    charts = browser.execute_script(
        """
        return arguments[0].map((id) => {
          const canvas = document.getElementById(id);
          const chart = Chart.getChart(canvas);
          return {
            id, width: canvas.clientWidth, height: canvas.clientHeight, drawn: !!chart,
            labels: chart ? chart.data.labels : [],
            datasets: chart ? chart.data.datasets.map((d) => ({label: d.label, data: d.data})) : [],
            points: chart ? chart.getDatasetMeta(0).data.length : 0,
          };
        });""",
        list(CHARTS),
    )
    by_id = {c["id"]: c for c in charts}
    for chart in charts:
        assert chart["drawn"] and chart["width"] > 0 and chart["height"] > 0, chart["id"]
        assert chart["points"] > 0, f"{chart['id']} has no data points"

    wh = settings.require_warehouse().conninfo
    sales = _latest("fact_sales_order", "sales_order_id")

    # tiles
    kpis = {
        k: browser.find_element("id", f"kpi-{k}")
        for k in ("sales-orders", "units-sold", "purchase-orders", "outstanding-payments")
    }
    [(orders,)] = warehouse(wh, "SELECT count(DISTINCT sales_order_id) FROM fact_sales_order")
    [(units,)] = warehouse(wh, f"SELECT sum(units_sold) FROM {sales} s")
    [(purchases,)] = warehouse(wh, "SELECT count(DISTINCT purchase_order_id) FROM fact_purchase_order")
    [(unpaid,)] = warehouse(
        wh, f"SELECT count(*) FROM {_latest('fact_payment', 'payment_id')} p WHERE NOT paid"
    )
    for key, expected in (
        ("sales-orders", orders),
        ("units-sold", units),
        ("purchase-orders", purchases),
        ("outstanding-payments", unpaid),
    ):
        assert kpis[key].get_attribute("data-value") == str(expected), key
        assert kpis[key].text == f"{int(expected):,}", key

    # sales by month and currency: every point of every currency's line
    rows = warehouse(
        wh,
        f"""SELECT to_char(created_date, 'YYYY-MM'), c.currency_code, sum(units_sold * unit_price)
            FROM {sales} s JOIN dim_currency c ON c.currency_id = s.currency_id GROUP BY 1, 2""",
    )
    month_chart = by_id["chart-sales-by-month"]
    shown = {
        (month, ds["label"]): value
        for ds in month_chart["datasets"]
        for month, value in zip(month_chart["labels"], ds["data"], strict=True)
        if value is not None
    }
    assert shown == {(m, c): pytest.approx(money(v), abs=0.005) for m, c, v in rows}

    def bar(chart_id: str) -> list[tuple[str, float]]:
        chart = by_id[chart_id]
        return list(zip(chart["labels"], chart["datasets"][0]["data"], strict=True))

    designs = warehouse(
        wh,
        f"""SELECT d.design_name || ' #' || d.design_id, sum(units_sold) FROM {sales} s
            JOIN dim_design d ON d.design_id = s.design_id GROUP BY d.design_id, d.design_name
            ORDER BY 2 DESC, d.design_id LIMIT 10""",
    )
    assert bar("chart-top-designs") == [(n, int(u)) for n, u in designs]
    counterparties = warehouse(
        wh,
        f"""SELECT cp.counterparty_legal_name, sum(units_sold) FROM {sales} s
            JOIN dim_counterparty cp ON cp.counterparty_id = s.counterparty_id
            GROUP BY cp.counterparty_id, cp.counterparty_legal_name ORDER BY 2 DESC, cp.counterparty_id LIMIT 10""",
    )
    assert bar("chart-sales-by-counterparty") == [(n, int(u)) for n, u in counterparties]
    countries = warehouse(
        wh,
        f"""SELECT cp.counterparty_legal_country, sum(units_sold) FROM {sales} s
            JOIN dim_counterparty cp ON cp.counterparty_id = s.counterparty_id
            GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10""",
    )
    assert bar("chart-sales-by-country") == [(n, int(u)) for n, u in countries]

    payments = warehouse(
        wh,
        f"""SELECT c.currency_code, sum(CASE WHEN paid THEN payment_amount ELSE 0 END),
                   sum(CASE WHEN paid THEN 0 ELSE payment_amount END)
            FROM {_latest("fact_payment", "payment_id")} p
            JOIN dim_currency c ON c.currency_id = p.currency_id GROUP BY 1 ORDER BY 1""",
    )
    chart = by_id["chart-payments"]
    assert chart["labels"] == [c for c, _, _ in payments]
    assert [d["label"] for d in chart["datasets"]] == ["paid", "outstanding"]
    assert chart["datasets"][0]["data"] == [pytest.approx(money(p), abs=0.005) for _, p, _ in payments]
    assert chart["datasets"][1]["data"] == [pytest.approx(money(o), abs=0.005) for _, _, o in payments]

    spend = warehouse(
        wh,
        f"""SELECT to_char(created_date, 'YYYY-MM'), c.currency_code, sum(item_quantity * item_unit_price)
            FROM {_latest("fact_purchase_order", "purchase_order_id")} p
            JOIN dim_currency c ON c.currency_id = p.currency_id GROUP BY 1, 2""",
    )
    spend_chart = by_id["chart-purchase-spend"]
    shown = {
        (month, ds["label"]): value
        for ds in spend_chart["datasets"]
        for month, value in zip(spend_chart["labels"], ds["data"], strict=True)
        if value is not None
    }
    assert shown == {(m, c): pytest.approx(money(v), abs=0.005) for m, c, v in spend}

    # health: the run records, the quarantine they count, each table's rows
    records = [json.loads(p.read_text()) for p in sorted((Path(settings.state) / "runs").glob("*.json"))]
    assert bar("chart-runs") == [(f"{r['job']} {r['run_id']}", r["seconds"]) for r in records[-24:]]
    transform = next(r for r in records if r["job"] == "transform")
    assert bar("chart-quarantine") == sorted(
        (t, s["quarantined"]) for t, s in transform["tables"].items() if not t.startswith(("dim_", "fact_"))
    )
    freshness = {
        row.get_attribute("data-table"): row.find_elements("tag name", "td")[1].text
        for row in browser.find_elements("css selector", "#freshness tbody tr")
    }
    counts = {
        t: warehouse(wh, f'SELECT count(*) FROM "{t}"')[0][0]  # noqa: S608
        for t in freshness
    }
    assert freshness == {t: f"{n:,}" for t, n in counts.items()} and len(freshness) == 11
    # freshness per source table against the contract, as `totes status --json` computes it now
    contract = read_source_freshness(settings).to_json()["tables"]
    shown = {
        row.get_attribute("data-table"): [td.text for td in row.find_elements("tag name", "td")[1:3]]
        for row in browser.find_elements("css selector", "#source-freshness tbody tr")
    }
    assert sorted(shown) == sorted(SOURCE_TABLES)
    for table, (minutes, state) in shown.items():
        expected = contract[table]
        assert float(minutes) == pytest.approx(expected["freshness_minutes"], abs=1.0), (
            table
        )  # a minute apart at most
        assert state == ("STALE" if expected["stale"] else "fresh"), table
    run_rows = browser.find_elements("css selector", "#runs tbody tr")
    assert [r.find_elements("tag name", "td")[2].text for r in run_rows] == ["SUCCEEDED"] * len(records)
    last_load = next(r["started_at"] for r in reversed(records) if r["job"] == "load")
    tile = browser.find_element("id", "kpi-last-load")
    assert tile.get_attribute("data-value") == last_load
    assert tile.text == last_load.replace("T", " ").replace("+00:00", " UTC")
    # the page asked for nothing outside 127.0.0.1
    resources = browser.execute_script("return performance.getEntriesByType('resource').map((e) => e.name)")
    assert resources and all(r.startswith(url.rstrip("/")) for r in resources), resources
