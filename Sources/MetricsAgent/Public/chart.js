"use strict";
// A small canvas time-series chart: lines broken at gaps, threshold lines,
// annotation markers and bands, a peak marker, a crosshair shared between
// charts, and drag-to-zoom. No dependencies. All times are UTC milliseconds.

const MINUTE = 60e3, HOUR = 3600e3, DAY = 86400e3;
const TIME_STEPS = [MINUTE, 5 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 30 * DAY, 91 * DAY, 365 * DAY];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

// Trailing zeros never show: "75", not "75.0".
function trimZeros(text) { return text.includes(".") ? text.replace(/\.?0+$/, "") : text; }

function formatNumber(v) {
  if (v === null || v === undefined || !isFinite(v)) return "–";
  const a = Math.abs(v);
  if (a >= 1e6) return trimZeros((v / 1e6).toFixed(a >= 1e7 ? 0 : 1)) + "M";
  if (a >= 1e4) return trimZeros((v / 1e3).toFixed(a >= 1e5 ? 0 : 1)) + "k";
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return trimZeros(v.toFixed(1));
  return trimZeros(v.toFixed(2)) || "0";
}

// Units of things counted one by one: whole-number ticks.
const COUNT_UNITS = new Set(["players", "connections", "games", "rooms", "errors", "messages", "actions", "joins", "lines", "count"]);

function pad(n) { return n < 10 ? "0" + n : "" + n; }

function formatTime(t, span) {
  const d = new Date(t);
  const hm = pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
  if (span <= 2 * DAY) return hm;
  if (span <= 200 * DAY) return MONTHS[d.getUTCMonth()] + " " + d.getUTCDate();
  return MONTHS[d.getUTCMonth()] + " " + d.getUTCFullYear();
}

// A minute, with its day when the range is longer than two days: "20:34", "Mar 5 20:34".
function formatMoment(t, span) {
  const d = new Date(t);
  const hm = pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
  return span <= 2 * DAY ? hm : MONTHS[d.getUTCMonth()] + " " + d.getUTCDate() + " " + hm;
}

function formatFullTime(t) {
  const d = new Date(t);
  return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " + pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + " UTC";
}

function niceStep(range, count, integer) {
  const raw = range / Math.max(1, count);
  if (integer && raw <= 1) return 1;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 2.5, 5, 10]) {
    // Counts tick on whole numbers: a step of 2.5 is skipped (25 or 250 are kept).
    if (integer && !Number.isInteger(m * power)) continue;
    if (m * power >= raw) return m * power;
  }
  return 10 * power;
}

class TimeChart {
  constructor(canvas, options) {
    this.canvas = canvas;
    this.options = options || {};
    this.series = [];
    this.annotations = [];
    this.thresholds = this.options.thresholds || [];
    this.from = 0;
    this.to = 1;
    this.hoverTime = null;
    this.drag = null;
    canvas.addEventListener("mousemove", (e) => this.onMove(e));
    canvas.addEventListener("mouseleave", () => { if (!this.drag) this.options.onHover && this.options.onHover(null); });
    canvas.addEventListener("mousedown", (e) => { this.drag = { x0: this.localX(e), x1: this.localX(e) }; e.preventDefault(); });
    window.addEventListener("mouseup", (e) => this.onUp(e));
    canvas.addEventListener("dblclick", () => this.options.onZoomOut && this.options.onZoomOut());
  }

  setData(data) {
    this.from = data.from;
    this.to = data.to;
    this.series = data.series;
    this.annotations = data.annotations || [];
    // The peak as the server found it (the exact minute and value), when it says; else the highest point drawn.
    this.givenPeak = data.peak || null;
    this.draw();
  }

  visible() { return this.series.filter((s) => !s.hidden); }
  integer() { return COUNT_UNITS.has(this.options.unit); }

  css(name) { return getComputedStyle(this.canvas).getPropertyValue(name).trim() || "#888"; }

  localX(e) { return e.clientX - this.canvas.getBoundingClientRect().left; }

  timeAt(x) { return this.from + (x - this.plot.left) / this.plot.width * (this.to - this.from); }
  xOf(t) { return this.plot.left + (t - this.from) / (this.to - this.from) * this.plot.width; }
  yOf(v) { return this.plot.bottom - (v - this.yMin) / (this.yMax - this.yMin) * this.plot.height; }

  computeScale() {
    let lo = Infinity, hi = -Infinity;
    for (const s of this.visible()) for (const p of s.points) if (p[1] !== null) { lo = Math.min(lo, p[1]); hi = Math.max(hi, p[1]); }
    for (const t of this.thresholds) { hi = Math.max(hi, t.value * 1.05); lo = Math.min(lo, t.value); }
    if (lo === Infinity) { lo = 0; hi = 1; }
    if (this.options.min !== undefined) lo = Math.min(lo, this.options.min);
    if (this.options.max !== undefined && hi <= this.options.max) hi = this.options.max;
    if (hi === lo) hi = lo + 1;
    const step = niceStep(hi - lo, 4, this.integer());
    this.yMin = Math.floor(lo / step) * step;
    this.yMax = Math.ceil(hi / step) * step;
    this.yStep = step;
  }

  draw() {
    const c = this.canvas, ratio = window.devicePixelRatio || 1;
    const width = c.clientWidth, height = c.clientHeight;
    if (c.width !== Math.round(width * ratio) || c.height !== Math.round(height * ratio)) {
      c.width = Math.round(width * ratio);
      c.height = Math.round(height * ratio);
    }
    const g = c.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    g.font = "11px system-ui, sans-serif";
    this.computeScale();
    let labelWidth = 0;
    for (let v = this.yMin; v <= this.yMax + this.yStep / 2; v += this.yStep) labelWidth = Math.max(labelWidth, g.measureText(formatNumber(v)).width);
    const unit = this.options.unit || "";
    labelWidth = Math.max(labelWidth, unit ? g.measureText(unit).width - 6 : 0);
    this.plot = { left: labelWidth + 10, top: unit ? 18 : 8, right: width - 8, bottom: height - 20 };
    this.plot.width = Math.max(10, this.plot.right - this.plot.left);
    this.plot.height = Math.max(10, this.plot.bottom - this.plot.top);
    const p = this.plot, grid = this.css("--grid"), muted = this.css("--muted");

    // Grid and axes.
    g.strokeStyle = grid;
    g.fillStyle = muted;
    g.lineWidth = 1;
    g.textAlign = "right";
    g.textBaseline = "middle";
    for (let v = this.yMin; v <= this.yMax + this.yStep / 2; v += this.yStep) {
      const y = Math.round(this.yOf(v)) + 0.5;
      g.beginPath(); g.moveTo(p.left, y); g.lineTo(p.right, y); g.stroke();
      g.fillText(formatNumber(v), p.left - 5, y);
    }
    if (unit) {
      g.textAlign = "left";
      g.textBaseline = "top";
      g.fillText(unit, 2, 1);
    }
    const span = this.to - this.from;
    const tStep = TIME_STEPS.find((s) => span / s <= Math.max(2, p.width / 90)) || TIME_STEPS[TIME_STEPS.length - 1];
    g.textAlign = "center";
    g.textBaseline = "top";
    let lastRight = -Infinity;
    for (let t = Math.ceil(this.from / tStep) * tStep; t <= this.to; t += tStep) {
      const x = Math.round(this.xOf(t)) + 0.5;
      g.beginPath(); g.moveTo(x, p.top); g.lineTo(x, p.bottom); g.stroke();
      // Kept inside the canvas: a label at either edge is shifted in, and one that would overlap is left out.
      const text = formatTime(t, span), w = g.measureText(text).width;
      const left = Math.min(width - 2 - w, Math.max(2, x - w / 2));
      if (left < lastRight + 6) continue;
      g.textAlign = "left";
      g.fillText(text, left, p.bottom + 4);
      lastRight = left + w;
    }

    // Annotations: gaps as bands, the rest as vertical lines.
    for (const a of this.annotations) {
      const color = { restart: "#d64545", gap: muted, deploy: "#2563eb", alert: "#d9921c", resolved: "#16a34a" }[a.kind] || muted;
      const x0 = this.xOf(a.time);
      if (a.end && a.end > a.time) {
        g.fillStyle = color;
        g.globalAlpha = 0.12;
        g.fillRect(Math.max(p.left, x0), p.top, Math.min(p.right, this.xOf(a.end)) - Math.max(p.left, x0), p.height);
        g.globalAlpha = 1;
      } else if (x0 >= p.left && x0 <= p.right) {
        g.strokeStyle = color;
        g.setLineDash([2, 3]);
        g.beginPath(); g.moveTo(x0 + 0.5, p.top); g.lineTo(x0 + 0.5, p.bottom); g.stroke();
        g.setLineDash([]);
        g.fillStyle = color;
        g.beginPath(); g.moveTo(x0 - 4, p.top); g.lineTo(x0 + 4, p.top); g.lineTo(x0, p.top + 6); g.fill();
      }
    }

    // Thresholds; a label too close to the one above it goes to the left end instead.
    g.textBaseline = "bottom";
    let lastLabelY = -Infinity;
    for (const t of [...this.thresholds].sort((a, b) => b.value - a.value)) {
      const y = Math.round(this.yOf(t.value)) + 0.5;
      g.strokeStyle = t.color || "#d64545";
      g.setLineDash([6, 4]);
      g.beginPath(); g.moveTo(p.left, y); g.lineTo(p.right, y); g.stroke();
      g.setLineDash([]);
      g.fillStyle = t.color || "#d64545";
      const crowded = y - lastLabelY < 14;
      g.textAlign = crowded ? "left" : "right";
      g.fillText(t.label || formatNumber(t.value), crowded ? p.left + 4 : p.right - 2, y - 2);
      if (!crowded) lastLabelY = y;
    }

    // Series: a null breaks the line; lone points become dots.
    g.save();
    g.beginPath(); g.rect(p.left, p.top - 2, p.width, p.height + 4); g.clip();
    let drawn = 0;
    for (const s of this.visible()) {
      g.strokeStyle = s.color;
      g.fillStyle = s.color;
      g.lineWidth = s.width || 1.5;
      g.beginPath();
      let open = false, previousNull = true;
      for (let i = 0; i < s.points.length; i++) {
        const [t, v] = s.points[i];
        if (v === null) { open = false; previousNull = true; continue; }
        const x = this.xOf(t), y = this.yOf(v);
        const nextNull = i + 1 >= s.points.length || s.points[i + 1][1] === null;
        if (previousNull && nextNull) g.fillRect(x - 1.5, y - 1.5, 3, 3);
        if (open) g.lineTo(x, y); else { g.moveTo(x, y); open = true; }
        previousNull = false;
        drawn++;
      }
      g.stroke();
    }
    g.restore();
    this.canvas.dataset.points = String(drawn);

    // Peak marker of the main series.
    const shown = this.visible();
    const main = shown.find((s) => s.main) || shown[0];
    this.peak = null;
    if (main) {
      const given = this.givenPeak && this.givenPeak[main.name];
      if (given) this.peak = [given.time, given.value];
      else for (const [t, v] of main.points) if (v !== null && (!this.peak || v > this.peak[1])) this.peak = [t, v];
      if (this.peak) {
        const x = this.xOf(this.peak[0]), y = this.yOf(this.peak[1]);
        g.strokeStyle = main.color;
        g.fillStyle = this.css("--panel");
        g.lineWidth = 2;
        g.beginPath(); g.arc(x, y, 4, 0, 2 * Math.PI); g.fill(); g.stroke();
        g.fillStyle = main.color;
        g.textAlign = x > p.left + p.width * 0.8 ? "right" : "left";
        g.textBaseline = "bottom";
        g.fillText("peak " + formatNumber(this.peak[1]) + " at " + formatMoment(this.peak[0], span), x + (g.textAlign === "left" ? 6 : -6), Math.max(p.top + 12, y - 4));
      }
    }

    // Crosshair and zoom selection.
    if (this.hoverTime !== null && this.hoverTime >= this.from && this.hoverTime <= this.to) {
      const x = Math.round(this.xOf(this.hoverTime)) + 0.5;
      g.strokeStyle = this.css("--fg");
      g.globalAlpha = 0.5;
      g.beginPath(); g.moveTo(x, p.top); g.lineTo(x, p.bottom); g.stroke();
      g.globalAlpha = 1;
    }
    if (this.drag) {
      g.fillStyle = this.css("--accent");
      g.globalAlpha = 0.15;
      const x0 = Math.max(p.left, Math.min(this.drag.x0, this.drag.x1)), x1 = Math.min(p.right, Math.max(this.drag.x0, this.drag.x1));
      g.fillRect(x0, p.top, x1 - x0, p.height);
      g.globalAlpha = 1;
    }
  }

  /// The value of each series nearest to time t (within one step).
  valuesAt(t) {
    return this.visible().map((s) => {
      let lo = 0, hi = s.points.length - 1;
      if (hi < 0) return { name: s.name, color: s.color, value: null };
      while (lo < hi) { const mid = (lo + hi) >> 1; if (s.points[mid][0] < t) lo = mid + 1; else hi = mid; }
      let best = lo;
      if (lo > 0 && Math.abs(s.points[lo - 1][0] - t) < Math.abs(s.points[lo][0] - t)) best = lo - 1;
      return { name: s.name, color: s.color, time: s.points[best][0], value: s.points[best][1] };
    });
  }

  /// min, avg, max and last of a series over the range (of the points drawn; nulls left out).
  static stats(points) {
    let min = Infinity, max = -Infinity, sum = 0, n = 0, last = null;
    for (const [, v] of points) {
      if (v === null) continue;
      min = Math.min(min, v); max = Math.max(max, v); sum += v; n++; last = v;
    }
    return n ? { min, avg: sum / n, max, last } : { min: null, avg: null, max: null, last: null };
  }

  annotationsNear(t) {
    const slack = (this.to - this.from) / Math.max(50, this.plot ? this.plot.width : 500) * 4;
    return this.annotations.filter((a) => (a.end && t >= a.time && t <= a.end) || Math.abs(a.time - t) <= slack);
  }

  onMove(e) {
    if (!this.plot) return;
    const x = this.localX(e);
    if (this.drag) { this.drag.x1 = x; this.draw(); }
    const t = this.timeAt(Math.max(this.plot.left, Math.min(this.plot.right, x)));
    this.options.onHover && this.options.onHover(t, this, e.clientX, e.clientY);
  }

  onUp(e) {
    if (!this.drag) return;
    const drag = this.drag;
    this.drag = null;
    this.draw();
    if (Math.abs(drag.x1 - drag.x0) < 6) {
      if (this.options.onClick && this.plot) this.options.onClick(this.timeAt(drag.x0), this);
      return;
    }
    const t0 = this.timeAt(Math.min(drag.x0, drag.x1)), t1 = this.timeAt(Math.max(drag.x0, drag.x1));
    if (t1 - t0 >= MINUTE * 5 && this.options.onZoom) this.options.onZoom(Math.round(t0), Math.round(t1));
  }
}

// A legend table under a chart: a row per series with its min, avg, max and last over the range (of the points
// drawn); `onClick(name, event)` is called for a click on a row. Hidden series are struck through.
function fillLegend(table, series, onClick) {
  const head = document.createElement("tr");
  for (const text of ["", "min", "avg", "max", "last"]) { const th = document.createElement("th"); th.textContent = text; head.append(th); }
  const rows = series.map((s) => {
    const tr = document.createElement("tr");
    tr.className = "series" + (s.hidden ? " hidden" : "");
    tr.dataset.series = s.name;
    tr.title = "Click to hide or show; shift-click to show it alone (again: all)";
    const name = document.createElement("td");
    name.className = "name";
    name.style.setProperty("--c", s.color);
    name.textContent = s.name;
    const stats = TimeChart.stats(s.points);
    tr.append(name, ...["min", "avg", "max", "last"].map((k) => {
      const td = document.createElement("td");
      td.className = k;
      td.textContent = stats[k] === null ? "–" : formatNumber(stats[k]);
      return td;
    }));
    tr.addEventListener("click", (e) => onClick(s.name, e));
    return tr;
  });
  table.replaceChildren(head, ...rows);
}
