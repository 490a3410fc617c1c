"use strict";
// The daily review page: the day's figures, cost and recommendation from /api/review,
// and the day's charts with the peak marked. All text is set with textContent.
const $ = (id) => document.getElementById(id);
const PANELS = [
  { title: "Players online", metric: "players", stat: "max", unit: "players", peak: "peak_players" },
  { title: "Connections", metric: "connections", stat: "max", unit: "connections", peak: "peak_connections" },
  { title: "Host CPU", metric: "cpu_percent", stat: "avg", unit: "%", max: 100, thresholds: [{ value: 80, label: "alert 80%", color: "#d64545" }, { value: 70, label: "upgrade trigger 70%", color: "#d9921c" }] },
  { title: "Host memory", metric: "memory_percent", stat: "avg", unit: "%", max: 100, thresholds: [{ value: 85, label: "alert 85%", color: "#d64545" }, { value: 80, label: "upgrade trigger 80%", color: "#d9921c" }] },
];
let charts = [];

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}
const fmt = (v, digits = 1) => (v === null || v === undefined ? "–" : Number(v).toLocaleString("en-US", { maximumFractionDigits: digits }));
const money = (v, c) => (v === null || v === undefined ? "–" : (Math.abs(v) < 0.01 && v !== 0 ? v.toFixed(4) : v.toFixed(2)) + " " + c);

function card(label, value, compare) {
  const c = el("div", undefined, "card");
  c.append(el("div", label, "label"), el("div", value, "value"));
  if (compare) c.append(el("div", compare, "compare"));
  return c;
}

function dayStart(text) { return Date.parse(text + "T00:00:00Z"); }

async function load() {
  const date = $("day").value;
  history.replaceState(null, "", "?date=" + date);
  $("status").textContent = "loading…";
  const response = await fetch("/api/review?date=" + encodeURIComponent(date));
  const r = await response.json();
  if (!response.ok) { $("status").textContent = r.error || "could not load the review"; return; }
  const d = r.day, p = r.previous_day, w = r.seven_day_average, c = r.cost;
  $("status").textContent = d.resolution === "hour" ? "From hourly rollups: the raw minutes of this day are past retention." : "";
  const rec = $("recommendation");
  rec.replaceChildren();
  rec.className = "recommendation " + (r.recommendation.action === "move up" ? "up" : r.recommendation.action);
  rec.append(el("h2", `${r.recommendation.action}: ${r.recommendation.target}`));
  rec.append(el("p", `Monthly cost ${money(r.recommendation.monthly_cost, c.currency)} (now ${money(r.recommendation.current_monthly_cost, c.currency)})`));
  const reasons = el("ul");
  for (const reason of r.recommendation.reasons) reasons.append(el("li", reason));
  rec.append(reasons);

  const cmp = (a, b) => `day before ${fmt(a)} · 7-day avg ${fmt(b)}`;
  $("cards").replaceChildren(
    card("Peak players", fmt(d.peak_players && d.peak_players.value, 0) + (d.peak_players ? " at " + new Date(d.peak_players.time).toISOString().slice(11, 16) + " UTC" : ""), cmp(p.peak_players && p.peak_players.value, w.peak_players)),
    card("Peak connections", fmt(d.peak_connections && d.peak_connections.value, 0), cmp(p.peak_connections && p.peak_connections.value, w.peak_connections)),
    card("Games finished", fmt(d.games_finished, 0), cmp(p.games_finished, w.games_finished)),
    card("Busiest hour", d.busiest_hour ? new Date(d.busiest_hour.start).toISOString().slice(11, 16) + " UTC" : "–", d.busiest_hour ? `${fmt(d.busiest_hour.players)} players on average` : ""),
    card("CPU avg / p95 / max", d.cpu_percent ? `${fmt(d.cpu_percent.avg)} / ${fmt(d.cpu_percent.p95)} / ${fmt(d.cpu_percent.max)} %` : "–", `minutes above 80%: ${fmt(d.minutes_above_cpu_80, 0)}`),
    card("Memory avg / p95 / max", d.memory_percent ? `${fmt(d.memory_percent.avg)} / ${fmt(d.memory_percent.p95)} / ${fmt(d.memory_percent.max)} %` : "–", `minutes above 85%: ${fmt(d.minutes_above_memory_85, 0)}`),
    card("The day's cost", money(c.day, c.currency), `traffic ${fmt(c.transfer_gb, 2)} GB`),
    card("Month to date", money(c.month_to_date, c.currency), `projected ${money(c.projected_month, c.currency)}`),
    card("Per 1,000 games", money(c.per_1000_games, c.currency), `per player-hour ${money(c.per_player_hour, c.currency)}`),
  );
  const rows = $("triggers");
  rows.replaceChildren();
  for (const t of r.triggers) {
    const tr = el("tr");
    tr.append(el("td", t.fired ? "FIRED" : "no", t.fired ? "fired" : ""), el("td", t.name), el("td", t.evidence.join("; ") || "—"));
    rows.append(tr);
  }
  const coverage = Object.entries(d.coverage_minutes).map(([i, m]) => `${i}: ${m}/1440 minutes`).join(", ") || "no data";
  $("coverage").textContent = `${coverage}. Restarts: ${d.restarts}. Alerts fired: ${d.alerts_fired.join(", ") || "none"}.`;

  const from = dayStart(date), to = from + 86400e3;
  await Promise.all(charts.map(async (c) => {
    const s = await (await fetch(`/api/series?metric=${c.def.metric}&stat=${c.def.stat}&from=${from}&to=${to}&step=300`)).json();
    const series = s.series.map((x, i) => ({ name: x.instance, color: getComputedStyle(c.canvas).getPropertyValue(`--s${i % 6}`).trim(), points: x.points, main: s.series.length === 1 }));
    if (s.fleet && s.series.length > 1) series.push({ name: "fleet", color: getComputedStyle(c.canvas).getPropertyValue("--fleet").trim(), points: s.fleet, width: 2, main: true });
    for (const x of series) x.hidden = c.hidden.has(x.name);
    c.series = series;
    // Charts of maxima are labelled with the exact peak minute the server found.
    const peaks = s.peaks ? Object.fromEntries(series.map((x) => [x.name, s.peaks[x.name]]).filter(([, p]) => p)) : null;
    c.chart.setData({ from, to, series, annotations: [], peak: peaks });
    renderLegend(c);
  }));
  document.body.dataset.loaded = date;
}

// A click on a legend row hides or shows that series.
function renderLegend(c) {
  fillLegend(c.legend, c.series, (name) => {
    if (c.hidden.has(name)) c.hidden.delete(name); else c.hidden.add(name);
    for (const s of c.series) s.hidden = c.hidden.has(s.name);
    c.chart.draw();
    renderLegend(c);
  });
}

function build() {
  for (const def of PANELS) {
    const section = el("section", undefined, "panel");
    section.dataset.metric = def.metric;
    section.append(el("h2", def.title));
    const canvas = el("canvas");
    const legend = el("table", undefined, "legend");
    section.append(canvas, legend);
    $("panels").append(section);
    const chart = new TimeChart(canvas, { thresholds: def.thresholds || [], min: 0, max: def.max, unit: def.unit, onHover: (t, ch, x, y) => {
      for (const c of charts) { c.chart.hoverTime = t; c.chart.draw(); }
      const tip = $("tooltip");
      if (t === null || !ch) { tip.hidden = true; return; }
      tip.replaceChildren(el("div", formatFullTime(t), "time"), ...ch.valuesAt(t).map((v) => el("div", `${v.name}: ${fmt(v.value)}`)));
      tip.hidden = false;
      tip.style.left = x + 14 + "px";
      tip.style.top = y + 14 + "px";
    } });
    charts.push({ def, chart, canvas, legend, hidden: new Set(), series: [] });
  }
}

const query = new URLSearchParams(location.search);
const yesterday = new Date(Date.now() - 86400e3).toISOString().slice(0, 10);
$("day").value = query.get("date") || yesterday;
document.documentElement.dataset.theme = localStorage.getItem("liaptui.theme") || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
$("theme-toggle").onclick = () => {
  const theme = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
  document.documentElement.dataset.theme = theme;
  localStorage.setItem("liaptui.theme", theme);
  load();
};
$("day").onchange = load;
const shift = (days) => { const t = dayStart($("day").value) + days * 86400e3; $("day").value = new Date(t).toISOString().slice(0, 10); load(); };
$("previous-day").onclick = () => shift(-1);
$("next-day").onclick = () => shift(1);
build();
load();
