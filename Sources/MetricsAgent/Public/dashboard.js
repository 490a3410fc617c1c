"use strict";
// The historical dashboard: panels from dashboards/*.json, one TimeChart each.
// The view (dashboard, range, instance, refresh, theme) lives in the URL.

const RANGES = { "1h": HOUR, "6h": 6 * HOUR, "24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY, "90d": 90 * DAY, "1y": 365 * DAY };
const $ = (id) => document.getElementById(id);
const state = { dash: null, range: "24h", from: null, to: null, instance: "all", refresh: 0, theme: null };
let charts = [];
let refreshTimer = null;
let loadSeq = 0;
let fleetRules = {};  // metric → sum | avg | max, from /api/metrics
let units = {};       // metric → unit, from /api/metrics
const FLEET_WORDS = { sum: "fleet total", avg: "fleet average", max: "fleet maximum" };

function readURL() {
  const q = new URLSearchParams(location.search);
  state.dash = q.get("dash");
  state.range = q.get("range") || (q.get("from") ? null : "24h");
  state.from = q.get("from") ? Number(q.get("from")) : null;
  state.to = q.get("to") ? Number(q.get("to")) : null;
  if (state.range && !RANGES[state.range]) state.range = "24h";
  state.instance = q.get("instance") || "all";
  state.refresh = Number(q.get("refresh") || 0);
  state.theme = q.get("theme") || localStorage.getItem("liaptui.theme") || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
}

function writeURL() {
  const q = new URLSearchParams();
  if (state.dash) q.set("dash", state.dash);
  if (state.range) q.set("range", state.range); else { q.set("from", state.from); q.set("to", state.to); }
  if (state.instance !== "all") q.set("instance", state.instance);
  if (state.refresh) q.set("refresh", state.refresh);
  q.set("theme", state.theme);
  history.replaceState(null, "", "?" + q.toString());
}

function window_() {
  if (state.range) { const to = Date.now(); return { from: to - RANGES[state.range], to }; }
  return { from: state.from, to: state.to };
}

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || response.status + " " + response.statusText);
  return body;
}

function setStatus(text, error) {
  $("status").textContent = text || "";
  $("status").classList.toggle("error", !!error);
}

function applyTheme() {
  document.documentElement.dataset.theme = state.theme;
  localStorage.setItem("liaptui.theme", state.theme);
}

function seriesColor(i) { return `var(--s${i % 6})`; }
function resolveColor(canvas, color) {
  const m = /^var\((--[\w-]+)\)$/.exec(color);
  return m ? getComputedStyle(canvas).getPropertyValue(m[1]).trim() : color;
}

// ---------- Tooltip and shared crosshair ----------

function onHover(time, chart, x, y) {
  for (const c of charts) { c.chart.hoverTime = time; c.chart.draw(); }
  const tip = $("tooltip");
  if (time === null || !chart) { tip.hidden = true; return; }
  const panel = charts.find((c) => c.chart === chart);
  const values = chart.valuesAt(time);
  tip.replaceChildren();
  const head = document.createElement("div");
  head.className = "time";
  head.textContent = formatFullTime(values.find((v) => v.time !== undefined)?.time ?? time);
  tip.append(head);
  for (const v of values) {
    const row = document.createElement("div");
    const swatch = document.createElement("span");
    swatch.textContent = "● ";
    swatch.style.color = v.color;
    row.append(swatch, document.createTextNode(`${v.name}: ${v.value === null ? "no data" : formatNumber(v.value) + " " + (panel?.unit || "")}`));
    tip.append(row);
  }
  for (const a of chart.annotationsNear(time).slice(0, 3)) {
    const note = document.createElement("div");
    note.className = "note";
    note.textContent = `${a.kind}${a.instance ? " · " + a.instance : ""}: ${a.text}`;
    tip.append(note);
  }
  tip.hidden = false;
  const rect = tip.getBoundingClientRect();
  tip.style.left = Math.min(window.innerWidth - rect.width - 8, x + 14) + "px";
  tip.style.top = Math.min(window.innerHeight - rect.height - 8, y + 14) + "px";
}

function zoomTo(from, to) {
  state.range = null;
  state.from = from;
  state.to = to;
  writeURL();
  load();
}

function zoomOut() {
  const w = window_();
  const span = w.to - w.from;
  zoomTo(Math.round(w.from - span / 2), Math.min(Date.now(), Math.round(w.to + span / 2)));
}

// ---------- Legends: click hides a series, shift-click shows it alone ----------

function renderLegend(c) { fillLegend(c.legend, c.series, (name, e) => toggleSeries(c, name, e.shiftKey)); }

function toggleSeries(c, name, solo) {
  if (solo) {
    c.solo = c.solo === name ? null : name;
    c.hidden.clear();
  } else {
    c.solo = null;
    if (c.hidden.has(name)) c.hidden.delete(name); else c.hidden.add(name);
  }
  for (const s of c.series) s.hidden = c.solo ? s.name !== c.solo : c.hidden.has(s.name);
  c.chart.draw();
  c.peak.textContent = c.chart.peak ? `peak ${formatNumber(c.chart.peak[1])} ${c.unit} at ${formatFullTime(c.chart.peak[0])}` : "no data";
  renderLegend(c);
}

// ---------- Alerts: firing now, the last 24 hours, and the way from an annotation to its alert ----------

let alertsPanelTouched = false, alertsPanelSet = null;
// A toggle to anything but what the page set is the user's.
$("alerts").addEventListener("toggle", () => { if ($("alerts").open !== alertsPanelSet) alertsPanelTouched = true; });

async function loadAlerts() {
  try {
    const [current, past] = await Promise.all([getJSON("/api/alerts"), getJSON("/api/alerts/history?from=now-24h&to=now")]);
    const firing = [];
    for (const rule of current.rules || []) for (const a of rule.alerts) if (a.state === "firing") firing.push({ rule, a });
    const table = $("alerts-firing");
    table.replaceChildren();
    const head = document.createElement("tr");
    for (const text of ["alert", "instance", "since", "value", "notified", "summary"]) { const th = document.createElement("th"); th.textContent = text; head.append(th); }
    table.append(head);
    for (const { rule, a } of firing) {
      const tr = document.createElement("tr");
      tr.id = "alert-" + rule.name + "-" + a.instance_id;
      tr.className = "firing " + rule.severity;
      for (const text of [rule.name, a.instance_id, formatFullTime(a.since), a.value === null ? "–" : formatNumber(a.value), (a.notified || []).join(", ") || "nobody yet", a.summary]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      table.append(tr);
    }
    $("alerts-none").hidden = firing.length > 0;
    // Open while something fires, folded when nothing does (until the user opens or folds it).
    if (!alertsPanelTouched) $("alerts").open = alertsPanelSet = firing.length > 0;
    $("alerts-count").textContent = firing.length ? `${firing.length} firing` : "none firing";
    const list = $("alerts-history");
    list.replaceChildren(...(past.history || []).slice(0, 200).map((h) => {
      const li = document.createElement("li");
      li.id = "history-" + h.rule + "-" + h.instance_id + "-" + h.at;
      li.className = h.event;
      li.textContent = `${formatFullTime(h.at)} · ${h.event} · ${h.rule} on ${h.instance_id}: ${h.text}`;
      return li;
    }));
    if (!(past.history || []).length) list.append(Object.assign(document.createElement("li"), { textContent: "nothing in the last 24 hours" }));
  } catch (error) {
    $("alerts-count").textContent = "alerts unavailable: " + error.message;
  }
}

// A click on a chart near an alert annotation opens the alerts panel at that alert's history entry.
function showAlertsNear(chart, time) {
  const note = chart.annotationsNear(time).find((a) => a.kind === "alert" || a.kind === "resolved");
  if (!note) return;
  const rule = note.text.split(":")[0];
  const target = document.getElementById("alert-" + rule + "-" + note.instance)
    || document.getElementById("history-" + rule + "-" + note.instance + "-" + note.time);
  $("alerts").open = true;
  for (const old of document.querySelectorAll(".highlight")) old.classList.remove("highlight");
  if (target) { target.classList.add("highlight"); target.scrollIntoView({ block: "center" }); }
  else $("alerts").scrollIntoView();
}

// ---------- Panels ----------

function buildPanels(definition) {
  $("panels").replaceChildren();
  charts = [];
  $("title").textContent = definition.title || "Liap Tui metrics";
  document.title = definition.title || "Liap Tui metrics";
  for (const p of definition.panels) {
    const section = document.createElement("section");
    section.className = "panel";
    section.dataset.metric = p.metric;
    const h = document.createElement("h2");
    const title = document.createElement("span");
    title.textContent = p.title;
    const peak = document.createElement("span");
    peak.className = "peak";
    // Downloads of what the panel shows, for the range shown (links set by load()).
    const downloads = document.createElement("span");
    downloads.className = "downloads";
    const csv = document.createElement("a"), json = document.createElement("a");
    csv.textContent = "CSV";
    json.textContent = "JSON";
    csv.className = "csv";
    json.className = "json";
    downloads.append(csv, json);
    h.append(title, peak, downloads);
    const canvas = document.createElement("canvas");
    const legend = document.createElement("table");
    legend.className = "legend";
    section.append(h, canvas, legend);
    $("panels").append(section);
    const unit = p.unit || units[p.metric] || "";
    const chart = new TimeChart(canvas, { thresholds: p.thresholds || [], min: p.min, max: p.max, unit, onHover, onZoom: zoomTo, onZoomOut: zoomOut,
                                          onClick: (t, ch) => showAlertsNear(ch, t) });
    charts.push({ definition: p, chart, canvas, legend, peak, csv, json, unit, hidden: new Set(), solo: null });
  }
}

async function load() {
  const seq = ++loadSeq;
  const w = window_();
  document.querySelectorAll("#ranges button[data-range]").forEach((b) => b.classList.toggle("active", b.dataset.range === state.range));
  $("range-label").textContent = `${formatFullTime(w.from)} – ${formatFullTime(w.to)}`;
  setStatus("loading…");
  const instance = state.instance;
  try {
    const annotations = getJSON(`/api/annotations?from=${w.from}&to=${w.to}&instance=${encodeURIComponent(instance === "fleet" ? "all" : instance)}`);
    // About one point per pixel; from 60 days on, whole days (finer steps alias the daily cycle into a band).
    const width = Math.max(200, charts[0] ? charts[0].canvas.clientWidth - 50 : 600);
    const step = Math.max(1000, Math.round((w.to - w.from) / width), w.to - w.from >= 60 * DAY ? DAY : 0);
    const queries = charts.map((c) => `metric=${encodeURIComponent(c.definition.metric)}&stat=${encodeURIComponent(c.definition.stat || "avg")}` +
      `&from=${w.from}&to=${w.to}&step=${Math.round(step / 1000)}&instance=${encodeURIComponent(instance === "fleet" ? "all" : instance)}`);
    const results = await Promise.all(queries.map((q) => getJSON("/api/series?" + q)));
    const notes = (await annotations).annotations;
    if (seq !== loadSeq) return;  // a newer view was asked for meanwhile
    results.forEach((result, i) => {
      const c = charts[i];
      let series = [];
      if (instance !== "fleet") {
        series = result.series.map((s, j) => ({ name: s.instance, color: resolveColor(c.canvas, seriesColor(j)), points: s.points, main: result.series.length === 1 }));
      }
      let fleetName = null;
      if (result.fleet && (instance === "fleet" || result.series.length > 1)) {
        const rule = c.definition.stat === "count" ? "sum" : fleetRules[c.definition.metric];
        fleetName = `${FLEET_WORDS[rule] || "fleet"} of ${result.series.length}`;
        series.push({ name: fleetName, color: resolveColor(c.canvas, "var(--fleet)"), points: result.fleet, width: 2, main: true });
      }
      for (const s of series) s.hidden = c.solo ? s.name !== c.solo : c.hidden.has(s.name);
      // Exact peaks (charts of maxima): the minute and value the server found, by series name.
      let peaks = null;
      if (result.peaks) {
        peaks = {};
        for (const s of result.series) if (result.peaks[s.instance]) peaks[s.instance] = result.peaks[s.instance];
        if (fleetName && result.peaks.fleet) peaks[fleetName] = result.peaks.fleet;
      }
      c.series = series;
      c.chart.setData({ from: w.from, to: w.to, series, annotations: notes, peak: peaks });
      c.canvas.dataset.tier = result.tier;
      c.canvas.dataset.step = result.step_ms;
      c.peak.textContent = c.chart.peak ? `peak ${formatNumber(c.chart.peak[1])} ${c.unit} at ${formatFullTime(c.chart.peak[0])}` : "no data";
      c.csv.href = "/api/series.csv?" + queries[i] + "&columns=instances";
      c.csv.download = `${c.definition.metric}-${c.definition.stat || "avg"}.csv`;
      c.json.href = "/api/series?" + queries[i];
      c.json.download = `${c.definition.metric}-${c.definition.stat || "avg"}.json`;
      renderLegend(c);
    });
    loadAlerts();
    setStatus(`${results[0] ? results[0].tier + " tier, step " + Math.round((results[0].step_ms || 0) / 60000) + " min" : ""} · updated ${new Date().toISOString().slice(11, 19)} UTC`);
    document.body.dataset.loaded = String(seq);
  } catch (error) {
    if (seq === loadSeq) setStatus("Could not load: " + error.message, true);
  }
}

function scheduleRefresh() {
  clearInterval(refreshTimer);
  if (state.refresh > 0) refreshTimer = setInterval(load, state.refresh * 1000);
}

async function start() {
  readURL();
  applyTheme();
  try {
    const [list, instances, catalog] = await Promise.all([getJSON("/api/dashboards"), getJSON("/api/instances"), getJSON("/api/metrics")]);
    for (const m of catalog.metrics) { fleetRules[m.name] = m.fleet; units[m.name] = m.unit === "count" ? "" : m.unit; }
    const select = $("dashboard-select");
    for (const d of list.dashboards) {
      const option = document.createElement("option");
      option.value = d.name;
      option.textContent = d.title;
      select.append(option);
    }
    if (!list.dashboards.length) { setStatus("No dashboards: add JSON files to the agent's --dashboards folder.", true); return; }
    if (!state.dash || !list.dashboards.some((d) => d.name === state.dash)) state.dash = list.dashboards[0].name;
    select.value = state.dash;
    const instanceSelect = $("instance-select");
    const addOption = (parent, value, label) => {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = label;
      parent.append(option);
    };
    addOption(instanceSelect, "all", "all instances");
    addOption(instanceSelect, "fleet", "fleet total");
    // In a fleet of agents, instances are grouped by the agent (host) whose files they come from.
    const origins = [...new Set(instances.instances.map((i) => i.origin))].sort();
    for (const origin of origins) {
      const members = instances.instances.filter((i) => i.origin === origin);
      let parent = instanceSelect;
      if (origins.length > 1) {
        parent = document.createElement("optgroup");
        parent.label = `agent ${origin}` + (members[0].origin_reachable ? "" : " (unreachable)");
        instanceSelect.append(parent);
      }
      for (const i of members) addOption(parent, i.instance_id, i.instance_id + (origins.length > 1 ? ` · ${origin}` : ""));
    }
    const values = ["all", "fleet"].concat(instances.instances.map((i) => i.instance_id));
    instanceSelect.value = values.includes(state.instance) ? state.instance : "all";
    $("refresh-select").value = String(state.refresh);
    buildPanels(await getJSON("/api/dashboards/" + encodeURIComponent(state.dash)));
    writeURL();
    scheduleRefresh();
    await load();
  } catch (error) {
    setStatus("Could not load the dashboard: " + error.message, true);
  }
}

$("ranges").addEventListener("click", (e) => {
  const range = e.target.dataset && e.target.dataset.range;
  if (!range) return;
  state.range = range;
  state.from = state.to = null;
  $("custom-range").hidden = true;
  writeURL();
  load();
});
$("custom-toggle").addEventListener("click", () => {
  const w = window_();
  $("custom-from").value = new Date(w.from).toISOString().slice(0, 16);
  $("custom-to").value = new Date(w.to).toISOString().slice(0, 16);
  $("custom-range").hidden = !$("custom-range").hidden;
});
$("custom-range").addEventListener("submit", (e) => {
  e.preventDefault();
  const from = Date.parse($("custom-from").value + "Z"), to = Date.parse($("custom-to").value + "Z");
  if (!(to > from)) { setStatus("The end must be after the start.", true); return; }
  zoomTo(from, to);
});
$("dashboard-select").addEventListener("change", async (e) => {
  state.dash = e.target.value;
  writeURL();
  buildPanels(await getJSON("/api/dashboards/" + encodeURIComponent(state.dash)));
  load();
});
$("instance-select").addEventListener("change", (e) => { state.instance = e.target.value; writeURL(); load(); });
$("refresh-select").addEventListener("change", (e) => { state.refresh = Number(e.target.value); writeURL(); scheduleRefresh(); });
$("theme-toggle").addEventListener("click", () => {
  state.theme = state.theme === "dark" ? "light" : "dark";
  applyTheme();
  writeURL();
  load();
});
window.addEventListener("resize", () => { for (const c of charts) c.chart.draw(); });

start();
