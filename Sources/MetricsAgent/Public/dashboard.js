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
    h.append(title, peak);
    const canvas = document.createElement("canvas");
    const legend = document.createElement("div");
    legend.className = "legend";
    section.append(h, canvas, legend);
    $("panels").append(section);
    const chart = new TimeChart(canvas, { thresholds: p.thresholds || [], min: p.min, max: p.max, onHover, onZoom: zoomTo, onZoomOut: zoomOut });
    charts.push({ definition: p, chart, canvas, legend, peak, unit: p.unit || "" });
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
    const results = await Promise.all(charts.map((c) =>
      getJSON(`/api/series?metric=${encodeURIComponent(c.definition.metric)}&stat=${encodeURIComponent(c.definition.stat || "avg")}` +
        `&from=${w.from}&to=${w.to}&step=${Math.round(step / 1000)}&instance=${encodeURIComponent(instance === "fleet" ? "all" : instance)}`)));
    const notes = (await annotations).annotations;
    if (seq !== loadSeq) return;  // a newer view was asked for meanwhile
    results.forEach((result, i) => {
      const c = charts[i];
      let series = [];
      if (instance !== "fleet") {
        series = result.series.map((s, j) => ({ name: s.instance, color: resolveColor(c.canvas, seriesColor(j)), points: s.points, main: result.series.length === 1 }));
      }
      if (result.fleet && (instance === "fleet" || result.series.length > 1)) {
        const rule = c.definition.stat === "count" ? "sum" : fleetRules[c.definition.metric];
        series.push({ name: `${FLEET_WORDS[rule] || "fleet"} of ${result.series.length}`, color: resolveColor(c.canvas, "var(--fleet)"), points: result.fleet, width: 2, main: true });
      }
      c.chart.setData({ from: w.from, to: w.to, series, annotations: notes });
      c.canvas.dataset.tier = result.tier;
      c.canvas.dataset.step = result.step_ms;
      c.peak.textContent = c.chart.peak ? `peak ${formatNumber(c.chart.peak[1])} ${c.unit} at ${formatFullTime(c.chart.peak[0])}` : "no data";
      c.legend.replaceChildren(...series.map((s) => { const span = document.createElement("span"); span.style.setProperty("--c", s.color); span.textContent = s.name; return span; }));
    });
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
    for (const m of catalog.metrics) fleetRules[m.name] = m.fleet;
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
