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
  const date = $("day").value, period = $("period").value;
  history.replaceState(null, "", "?date=" + date + (period === "day" ? "" : "&period=" + period));
  $("status").textContent = "loading…";
  const response = await fetch("/api/review?date=" + encodeURIComponent(date) + "&period=" + period);
  const r = await response.json();
  if (!response.ok) { $("status").textContent = r.error || "could not load the review"; return; }
  const d = r[period], p = r["previous_" + period], w = r.seven_day_average || {}, c = r.cost;
  $("status").textContent = d.resolution === "hour" ? "From hourly rollups: the raw minutes of this day are past retention." : "";
  const rec = $("recommendation");
  rec.replaceChildren();
  rec.className = "recommendation " + (r.recommendation.action === "move up" ? "up" : r.recommendation.action);
  rec.append(el("h2", `${r.recommendation.action}: ${r.recommendation.target}`));
  rec.append(el("p", `Monthly cost ${money(r.recommendation.monthly_cost, c.currency)} (now ${money(r.recommendation.current_monthly_cost, c.currency)})`));
  const reasons = el("ul");
  for (const reason of r.recommendation.reasons) reasons.append(el("li", reason));
  rec.append(reasons);

  const cmp = (a, b) => period === "day" ? `day before ${fmt(a)} · 7-day avg ${fmt(b)}` : `${period} before ${fmt(a)}`;
  $("cards").replaceChildren(
    card("Peak players", fmt(d.peak_players && d.peak_players.value, 0) + (d.peak_players ? " at " + new Date(d.peak_players.time).toISOString().slice(period === "day" ? 11 : 5, 16).replace("T", " ") + " UTC" : ""), cmp(p.peak_players && p.peak_players.value, w.peak_players)),
    card("Peak connections", fmt(d.peak_connections && d.peak_connections.value, 0), cmp(p.peak_connections && p.peak_connections.value, w.peak_connections)),
    card("Games finished", fmt(d.games_finished, 0), cmp(p.games_finished, w.games_finished)),
    card("Busiest hour", d.busiest_hour ? new Date(d.busiest_hour.start).toISOString().slice(11, 16) + " UTC" : "–", d.busiest_hour ? `${fmt(d.busiest_hour.players)} players on average` : ""),
    card("CPU avg / p95 / max", d.cpu_percent ? `${fmt(d.cpu_percent.avg)} / ${fmt(d.cpu_percent.p95)} / ${fmt(d.cpu_percent.max)} %` : "–", `minutes above 80%: ${fmt(d.minutes_above_cpu_80, 0)}`),
    card("Memory avg / p95 / max", d.memory_percent ? `${fmt(d.memory_percent.avg)} / ${fmt(d.memory_percent.p95)} / ${fmt(d.memory_percent.max)} %` : "–", `minutes above 85%: ${fmt(d.minutes_above_memory_85, 0)}`),
    card(`The ${period}'s cost`, money(c[period], c.currency), `traffic ${fmt(c.transfer_gb, 2)} GB`),
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
  const spanDays = period === "day" ? 1 : (dayStart(d.to) - dayStart(d.from)) / 86400e3 + 1;
  const coverage = Object.entries(d.coverage_minutes).map(([i, m]) => `${i}: ${m}/${1440 * spanDays} minutes`).join(", ") || "no data";
  $("coverage").textContent = `${coverage}. Restarts: ${d.restarts}. Alerts fired: ${d.alerts_fired.join(", ") || "none"}.`;

  renderForecast(r);
  renderAdvice(r);
  const from = period === "day" ? dayStart(date) : dayStart(d.from), to = period === "day" ? from + 86400e3 : dayStart(d.to) + 86400e3;
  const step = Math.max(300, Math.round((to - from) / 1000 / 600 / 300) * 300);
  await Promise.all(charts.map(async (c) => {
    const s = await (await fetch(`/api/series?metric=${c.def.metric}&stat=${c.def.stat}&from=${from}&to=${to}&step=${step}`)).json();
    const series = s.series.map((x, i) => ({ name: x.instance, color: getComputedStyle(c.canvas).getPropertyValue(`--s${i % 6}`).trim(), points: x.points, main: s.series.length === 1 }));
    if (s.fleet && s.series.length > 1) series.push({ name: "fleet", color: getComputedStyle(c.canvas).getPropertyValue("--fleet").trim(), points: s.fleet, width: 2, main: true });
    for (const x of series) x.hidden = c.hidden.has(x.name);
    c.series = series;
    // Charts of maxima are labelled with the exact peak minute the server found.
    const peaks = s.peaks ? Object.fromEntries(series.map((x) => [x.name, s.peaks[x.name]]).filter(([, p]) => p)) : null;
    c.chart.setData({ from, to, series, annotations: [], peak: peaks });
    renderLegend(c);
  }));
  document.body.dataset.loaded = date + "/" + period;
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

// The plan's cost tips as numbers (the markdown's lines), and the burstable instances' credit balance charted.
let creditsChart = null;
function renderAdvice(r) {
  const lines = r.markdown.split("\n## Cost advice\n")[1] || "";
  $("advice").replaceChildren(...lines.split("\n").filter((l) => l.startsWith("- ")).map((l) => el("li", l.slice(2))));
  const credits = r.advice.cpu_credits, canvas = $("credits-chart");
  $("credits-panel").hidden = !credits.applicable;
  if (!credits.applicable) return;
  if (!creditsChart) creditsChart = new TimeChart(canvas, { min: 0, unit: "credits", thresholds: [{ value: credits.max_balance, label: "full", color: "#16a34a" }] });
  const series = credits.instances.map((i, n) => ({ name: i.instance + (i.runs_out === "never" ? "" : " (ran out " + i.runs_out + ")"),
    color: getComputedStyle(canvas).getPropertyValue(`--s${n % 6}`).trim(), points: i.balance, main: n === 0 }));
  const all = series.flatMap((s) => s.points);
  const from = all.length ? Math.min(...all.map((p) => p[0])) - 3600e3 : Date.now() - 14 * 86400e3;
  const to = all.length ? Math.max(...all.map((p) => p[0])) : Date.now();
  creditsChart.setData({ from, to, series, annotations: [] });
  fillLegend($("credits-legend"), series, () => {});
}

// Each trigger's trend: when it is crossed (or not within 90 days); peak players charted with the fitted line.
let forecastChart = null;
function renderForecast(r) {
  const f = r.forecast, c = r.cost;
  $("month-forecast").textContent = `This month: projected ${money(f.month.projected, c.currency)}, between ${money(f.month.low, c.currency)} and ${money(f.month.high, c.currency)} (from the cheapest and dearest day of the last 28).`;
  $("forecast").replaceChildren(...f.triggers.map((t) => {
    const tr = el("tr");
    tr.append(el("td", t.name), el("td", t.verdict, t.already_crossed || t.crosses_on ? "fired" : ""),
              el("td", t.slope_per_day === null ? "" : `${t.slope_per_day >= 0 ? "+" : ""}${fmt(t.slope_per_day, 2)} a day (${t.figure})`));
    return tr;
  }));
  const players = f.triggers[0];
  const canvas = $("forecast-chart");
  if (!forecastChart) forecastChart = new TimeChart(canvas, { min: 0, unit: "players", thresholds: [{ value: players.threshold, label: "upgrade trigger: 80+ players", color: "#d9921c" }] });
  const days = players.days.map((p) => [dayStart(p.date), p.value]);
  const color = (name) => getComputedStyle(canvas).getPropertyValue(name).trim();
  const series = [{ name: "peak players a day", color: color("--s0"), points: days, main: true }];
  let to = days.length ? days[days.length - 1][0] + 86400e3 : Date.now();
  if (players.fit) {
    const origin = dayStart(players.fit.from), end = days[days.length - 1][0] + 90 * 86400e3;
    const at = (t) => players.fit.intercept + players.fit.slope_per_day * (t - origin) / 86400e3;
    series.push({ name: "trend", color: color("--s3"), points: [[origin, at(origin)], [end, at(end)]], width: 2 });
    to = end;
  }
  forecastChart.setData({ from: days.length ? days[0][0] : to - 28 * 86400e3, to, series, annotations: [] });
  fillLegend($("forecast-legend"), series, () => {});
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
$("period").value = ["day", "week", "month"].includes(query.get("period")) ? query.get("period") : "day";
$("period").onchange = load;
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
