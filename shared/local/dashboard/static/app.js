// The dashboard page: fetches /api/data (shared/local/dashboard/data.py) and draws it with Chart.js.
// Sets <body data-ready="true"> once every chart is drawn (the browser test waits for it), "error"
// when the data could not be read. Refreshes every minute.
"use strict";

const COLOURS = ["#2563eb", "#d97706", "#059669", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];
const STATUS_COLOURS = { SUCCEEDED: "#059669", FAILED: "#dc2626", DIED: "#991b1b", RUNNING: "#d97706" };
const charts = {};
const number = new Intl.NumberFormat("en-GB");

function when(iso) {
  // 2026-12-02T01:09:00+00:00 -> 2026-12-02 01:09:00 UTC (the stack runs in UTC)
  if (!iso) return "";
  return iso.replace("T", " ").replace(/\.\d+/, "").replace("+00:00", " UTC");
}

function series(rows, valueKey) {
  // rows of {month, currency, <valueKey>} -> labels (months) and one dataset per currency
  const months = [...new Set(rows.map((r) => r.month))].sort();
  const currencies = [...new Set(rows.map((r) => r.currency))].sort();
  const datasets = currencies.map((currency, i) => {
    const byMonth = new Map(rows.filter((r) => r.currency === currency).map((r) => [r.month, r[valueKey]]));
    return {
      label: currency,
      data: months.map((m) => (byMonth.has(m) ? byMonth.get(m) : null)),
      borderColor: COLOURS[i % COLOURS.length],
      backgroundColor: COLOURS[i % COLOURS.length],
      spanGaps: true,
    };
  });
  return { labels: months, datasets };
}

function bars(rows, labelKey, valueKey, label) {
  return {
    labels: rows.map((r) => r[labelKey]),
    datasets: [{ label, data: rows.map((r) => r[valueKey]), backgroundColor: COLOURS[0] }],
  };
}

function draw(id, type, data, options = {}) {
  const base = { responsive: true, maintainAspectRatio: false, animation: false };
  if (charts[id]) {
    charts[id].data = data;
    charts[id].update("none");
    return;
  }
  charts[id] = new Chart(document.getElementById(id), { type, data, options: { ...base, ...options } });
}

function setKpi(id, value, text) {
  const element = document.getElementById(id);
  element.dataset.value = value === null || value === undefined ? "" : String(value);
  element.textContent = text;
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  row.appendChild(td);
}

function render(doc) {
  const b = doc.business;
  const h = doc.health;
  document.getElementById("source").textContent =
    `warehouse ${doc.warehouse} · lake ${doc.lake_root} · read ${when(doc.generated_at)}`;
  setKpi("kpi-sales-orders", b.totals.sales_orders, number.format(b.totals.sales_orders));
  setKpi("kpi-units-sold", b.totals.units_sold, number.format(b.totals.units_sold));
  setKpi("kpi-purchase-orders", b.totals.purchase_orders, number.format(b.totals.purchase_orders));
  setKpi("kpi-outstanding-payments", b.totals.outstanding_payments, number.format(b.totals.outstanding_payments));
  setKpi("kpi-last-load", h.last_successful_load, when(h.last_successful_load) || "never");

  const horizontal = { indexAxis: "y", plugins: { legend: { display: false } } };
  draw("chart-sales-by-month", "line", series(b.sales_by_month, "value"));
  draw("chart-top-designs", "bar", bars(b.top_designs, "label", "units", "units sold"), horizontal);
  draw("chart-sales-by-counterparty", "bar", bars(b.sales_by_counterparty, "label", "units", "units sold"), horizontal);
  draw("chart-sales-by-country", "bar", bars(b.sales_by_country, "label", "units", "units sold"), horizontal);
  draw(
    "chart-payments",
    "bar",
    {
      labels: b.payments.map((r) => r.currency),
      datasets: [
        { label: "paid", data: b.payments.map((r) => r.paid), backgroundColor: COLOURS[2] },
        { label: "outstanding", data: b.payments.map((r) => r.outstanding), backgroundColor: COLOURS[3] },
      ],
    },
    { scales: { x: { stacked: true }, y: { stacked: true } } },
  );
  draw("chart-purchase-spend", "bar", series(b.purchase_spend, "spend"));

  const runs = [...h.recent_runs].reverse(); // oldest left
  draw(
    "chart-runs",
    "bar",
    {
      labels: runs.map((r) => `${r.job} ${r.run_id}`),
      datasets: [
        {
          label: "seconds",
          data: runs.map((r) => r.seconds),
          backgroundColor: runs.map((r) => STATUS_COLOURS[r.status] || "#9ca3af"),
        },
      ],
    },
    { plugins: { legend: { display: false } } },
  );
  draw("chart-quarantine", "bar", bars(h.quarantined, "table", "rows", "rows quarantined"), {
    plugins: { legend: { display: false } },
  });

  const fresh = document.querySelector("#freshness tbody");
  fresh.replaceChildren();
  for (const t of h.freshness) {
    const tr = document.createElement("tr");
    tr.dataset.table = t.table;
    cell(tr, t.table);
    cell(tr, t.rows === null ? "missing" : number.format(t.rows), "num");
    cell(tr, when(t.last_loaded) || "never");
    cell(tr, when(t.newest_change));
    fresh.appendChild(tr);
  }
  const source = document.querySelector("#source-freshness tbody");
  source.replaceChildren();
  const sf = h.source_freshness || {};
  const caption = document.getElementById("source-freshness-caption");
  if (sf.error) {
    caption.textContent = `Freshness per source table: ${sf.error}`;
  } else {
    caption.textContent =
      `Freshness per source table (contract: ${sf.limit_minutes} minutes; ` +
      `worst ${sf.overall_minutes === null ? "unknown" : sf.overall_minutes + " min"})`;
    for (const [name, t] of Object.entries(sf.tables || {})) {
      const tr = document.createElement("tr");
      tr.dataset.table = name;
      cell(tr, name);
      cell(tr, t.freshness_minutes === null ? "unknown" : t.freshness_minutes.toFixed(1), "num");
      cell(tr, t.stale === null ? "unknown" : t.stale ? "STALE" : "fresh", t.stale ? "status-FAILED" : "");
      cell(tr, when(t.warehouse_newest) || "nothing yet");
      source.appendChild(tr);
    }
  }
  const table = document.querySelector("#runs tbody");
  table.replaceChildren();
  for (const r of h.recent_runs) {
    const tr = document.createElement("tr");
    cell(tr, r.run_id);
    cell(tr, r.job);
    cell(tr, r.status, `status-${r.status}`);
    cell(tr, when(r.started_at));
    cell(tr, r.seconds, "num");
    cell(tr, r.message);
    table.appendChild(tr);
  }
}

async function refresh() {
  const error = document.getElementById("error");
  try {
    const response = await fetch("/api/data", { cache: "no-store" });
    const doc = await response.json();
    if (!response.ok) throw new Error(doc.error || response.statusText);
    render(doc);
    error.hidden = true;
    document.body.dataset.ready = "true";
  } catch (exc) {
    error.textContent = `cannot read the data: ${exc.message}`;
    error.hidden = false;
    document.body.dataset.ready = "error";
  }
}

refresh();
setInterval(refresh, 60000);
