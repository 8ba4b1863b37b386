// Eddy dashboard: polls the JSON API once a second, draws with inline SVG,
// and shows panels (a map's entries counted per value of a field, with its
// change stream) that jobs register at /api/panels or the user adds here.
// No build step, no CDN.
"use strict";

const POLL_MS = 1000;          // refresh period of jobs, maps and metrics
const HISTORY_POINTS = 120;    // chart history: two minutes at one point a second
const PANELS_EVERY_POLLS = 3;  // panel counts scan their map: every third poll
const PANEL_GROUPS_MAX = 12;   // bars per panel: the first distinct values
const LIVE_CHANGES_MAX = 40;   // changes kept in a panel's live list
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"];

const $ = (id) => document.getElementById(id);
const state = {
  selectedJob: null,
  prevJobs: new Map(),      // job id -> {t, source_items_out, sink_items_in}
  prevVertices: new Map(),  // "job/vertex" -> {t, items_in, items_out}
  throughput: [],           // {in, out} per poll, for the selected job
  prevHist: new Map(),      // histogram name -> counts at the previous poll
  latency: new Map(),       // histogram name -> [{p50, p90, p99}]
  query: { map: null, predicate: "", page: 0, pageSize: 20 },
  polls: 0,
  panels: new Map(),        // "map/field" -> {panel, chart, live, status, source}
  userPanels: [],           // panels added with the form, this page only
};

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}
function svg(tag, attrs = {}, text) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
async function api(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await r.json().catch(() => ({ error: `HTTP ${r.status} with a body that is not JSON` }));
  if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
  return body;
}
const fmt = (n) => n === null || n === undefined ? "–" : Math.round(n).toLocaleString("en-US");
function fmtRate(n) { return n === null || n === undefined ? "–" : n >= 100 ? fmt(n) : n.toFixed(1); }
function fmtBytes(b) {
  const units = ["B", "KiB", "MiB", "GiB"]; let i = 0;
  while (b >= 1024 && i < units.length - 1) { b /= 1024; i++; }
  return `${b.toFixed(i ? 1 : 0)} ${units[i]}`;
}
function fmtMs(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}
function fmtDuration(ms) {
  const s = Math.floor(ms / 1000);
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${Math.floor(s / 3600)}h ${Math.floor(s / 60) % 60}m`;
}
// The latest snapshot in a few words: id, age, duration, size.
function snapshotText(s) {
  if (!s) return "–";
  const failed = s.failed > 0 ? ` · ${fmt(s.failed)} failed${s.failed_in_a_row > 0 ? ` (${s.failed_in_a_row} in a row)` : ""}` : "";
  if (s.last_id === null) return `none yet${failed}`;
  return `#${s.last_id} · ${fmtDuration(s.last_age_ms)} ago · took ${fmtMs(s.last_duration_ms)} · ${fmtBytes(s.last_bytes)}${failed}`;
}
function snapshotTitle(s) {
  if (!s) return "the job takes no snapshots (guarantee none)";
  const restored = s.restored_from === null ? "" : `; this run started from snapshot #${s.restored_from}`;
  const failure = s.last_failure ? `; the latest failure: ${s.last_failure}` : "";
  return `${fmt(s.completed)} snapshots completed${s.last_entries === null ? "" : `; the latest holds ${fmt(s.last_entries)} entries`}${restored}${failure}`;
}
function fillBar(f) {
  const pct = Math.round(Math.min(1, Math.max(0, f)) * 100);
  const bar = el("span", { class: "fill", title: `${pct}% full` }, el("span"));
  bar.firstChild.style.width = `${pct}%`;
  bar.firstChild.style.background = fillColor(f);
  return el("span", {}, bar, `${pct}%`);
}
function fillColor(f) { return f > 0.8 ? "#dc2626" : f > 0.5 ? "#d97706" : "#16a34a"; }
function rate(prev, now, key, t) {
  if (!prev) return null;
  const dt = (t - prev.t) / 1000;
  return dt > 0 ? Math.max(0, (now[key] - prev[key]) / dt) : null;
}
function push(arr, v) { arr.push(v); if (arr.length > HISTORY_POINTS) arr.shift(); }

// ---- charts -------------------------------------------------------------

function lineChart(target, series, unitFmt) {
  const w = target.clientWidth || 500, h = target.clientHeight || 200;
  const left = 64, bottom = 18, top = 8;
  target.replaceChildren();
  target.setAttribute("viewBox", `0 0 ${w} ${h}`);
  let max = 0;
  for (const s of series) for (const v of s.points) if (v !== null && v > max) max = v;
  if (max === 0) max = 1;
  const x = (i) => left + (i / (HISTORY_POINTS - 1)) * (w - left - 8);
  const y = (v) => top + (1 - v / max) * (h - top - bottom);
  for (const f of [0, 0.5, 1]) {
    target.append(svg("line", { x1: left, x2: w - 8, y1: y(max * f), y2: y(max * f), stroke: "#e5e7eb" }));
    target.append(svg("text", { x: left - 6, y: y(max * f) + 4, "text-anchor": "end", "font-size": 11, fill: "#6b7280" }, unitFmt(max * f)));
  }
  let lx = left + 6;
  series.forEach((s, k) => {
    const offset = HISTORY_POINTS - s.points.length;
    const pts = s.points.map((v, i) => v === null ? null : `${x(i + offset).toFixed(1)},${y(v).toFixed(1)}`).filter(Boolean);
    const color = s.color || COLORS[k % COLORS.length];
    if (pts.length > 1) target.append(svg("polyline", { points: pts.join(" "), fill: "none", stroke: color, "stroke-width": 2 }));
    const label = svg("text", { x: lx, y: h - 4, "font-size": 11, fill: color }, s.name);
    target.append(label);
    lx += 12 + 7 * s.name.length;
  });
}

function barChart(target, bars, unitFmt) {
  const w = target.clientWidth || 500, h = target.clientHeight || 200;
  target.replaceChildren();
  target.setAttribute("viewBox", `0 0 ${w} ${h}`);
  if (!bars.length) {
    target.append(svg("text", { x: 10, y: 20, "font-size": 12, fill: "#6b7280" }, "no entries yet"));
    return;
  }
  const max = Math.max(1, ...bars.map((b) => b.value));
  const rowH = Math.min(32, (h - 8) / bars.length), labelW = 120;
  bars.forEach((b, i) => {
    const bw = (b.value / max) * (w - labelW - 80);
    const yy = 4 + i * rowH;
    target.append(svg("text", { x: labelW - 6, y: yy + rowH * 0.65, "text-anchor": "end", "font-size": 12 }, b.name));
    target.append(svg("rect", { x: labelW, y: yy + 3, width: Math.max(1, bw), height: rowH - 6, fill: COLORS[i % COLORS.length], rx: 3 }));
    target.append(svg("text", { x: labelW + bw + 6, y: yy + rowH * 0.65, "font-size": 12, "data-group": b.name }, unitFmt(b.value)));
  });
}

// ---- jobs -----------------------------------------------------------------

function renderJobs(jobs, t) {
  const body = $("jobs").tBodies[0];
  body.replaceChildren();
  $("jobs-empty").hidden = jobs.length > 0;
  if (state.selectedJob === null || !jobs.some((j) => j.id === state.selectedJob)) {
    const running = jobs.find((j) => j.status === "running");
    state.selectedJob = (running || jobs[0] || { id: null }).id;
    state.throughput = [];
  }
  for (const j of jobs) {
    const prev = state.prevJobs.get(j.id);
    const r = rate(prev, j, "source_items_out", t);
    state.prevJobs.set(j.id, { t, source_items_out: j.source_items_out, sink_items_in: j.sink_items_in });
    const row = el("tr", { class: "clickable" + (j.id === state.selectedJob ? " selected" : ""), "data-job": j.name },
      el("td", { text: j.id }),
      el("td", { text: j.name, "data-testid": "job-name" }),
      el("td", {}, el("span", { class: `badge ${j.status}`, text: j.status, "data-testid": "job-status" })),
      el("td", { text: j.guarantee, "data-testid": "job-guarantee" }),
      el("td", { text: snapshotText(j.snapshots), title: snapshotTitle(j.snapshots), "data-testid": "job-snapshot" }),
      el("td", { text: fmtDuration(j.uptime_ms) }),
      el("td", { text: fmt(j.source_items_out), "data-testid": "job-items" }),
      el("td", { text: fmtRate(r), "data-testid": "job-rate" }),
      el("td", { text: fmt(j.sink_items_in) }),
      el("td", { text: fmt(j.late_events) }),
      el("td", { text: fmt(j.dead_letters), class: j.dead_letters > 0 ? "warn" : "", "data-testid": "dead-letters" }),
      el("td", {}, fillBar(j.queue_fill_max)));
    row.addEventListener("click", () => { state.selectedJob = j.id; state.throughput = []; poll(); });
    body.append(row);
  }
}

function renderDag(job) {
  const target = $("dag");
  const w = target.clientWidth || 700;
  const depth = job.vertices.map(() => 0);
  for (const e of [...job.edges].sort((a, b) => a.from - b.from)) depth[e.to] = Math.max(depth[e.to], depth[e.from] + 1);
  const columns = Math.max(...depth, 0) + 1;
  const rows = [];
  job.vertices.forEach((v, i) => { (rows[depth[i]] = rows[depth[i]] || []).push(i); });
  const rowsMax = Math.max(...rows.map((r) => (r || []).length), 1);
  const boxW = Math.min(190, (w - 20) / columns - 30), boxH = 66, gapY = 14;
  const h = Math.max(220, rowsMax * (boxH + gapY) + 10);
  target.setAttribute("viewBox", `0 0 ${w} ${h}`);
  target.style.height = `${h}px`;
  target.replaceChildren();
  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#94a3b8" }));
  defs.append(marker);
  target.append(defs);
  const pos = job.vertices.map((v, i) => {
    const col = depth[i], row = rows[col].indexOf(i), n = rows[col].length;
    const x = 10 + col * ((w - 20) / columns);
    const y = (h - n * (boxH + gapY)) / 2 + row * (boxH + gapY);
    return { x, y };
  });
  for (const e of job.edges) {
    const a = pos[e.from], b = pos[e.to];
    const x1 = a.x + boxW, y1 = a.y + boxH / 2, x2 = b.x, y2 = b.y + boxH / 2, mx = (x1 + x2) / 2;
    target.append(svg("path", { d: `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`, fill: "none", stroke: "#94a3b8", "stroke-width": 2, "marker-end": "url(#arrow)" }));
    target.append(svg("text", { x: mx, y: (y1 + y2) / 2 - 4, "text-anchor": "middle", "font-size": 10, fill: "#64748b" }, e.routing));
  }
  job.vertices.forEach((v, i) => {
    const { x, y } = pos[i];
    const g = svg("g", { "data-vertex": v.name });
    g.append(svg("rect", { x, y, width: boxW, height: boxH, rx: 6, fill: "#fff", stroke: fillColor(v.queue_fill), "stroke-width": v.queue_fill > 0.5 ? 3 : 1.5 }));
    g.append(svg("text", { x: x + 8, y: y + 17, "font-size": 12, "font-weight": 600 }, `${v.name} ×${v.parallelism}`));
    g.append(svg("text", { x: x + 8, y: y + 34, "font-size": 11, fill: "#334155" }, `${fmtRate(v.rate_out)} out/s`));
    g.append(svg("rect", { x: x + 8, y: y + 44, width: boxW - 16, height: 8, rx: 4, fill: "#e5e7eb" }));
    g.append(svg("rect", { x: x + 8, y: y + 44, width: Math.max(0, (boxW - 16) * Math.min(1, v.queue_fill)), height: 8, rx: 4, fill: fillColor(v.queue_fill) }));
    g.append(svg("text", { x: x + 8, y: y + 63, "font-size": 10, fill: "#64748b" }, `queue ${Math.round(v.queue_fill * 100)}%`));
    target.append(g);
  });
}

function renderJob(job, t) {
  $("job-section").hidden = false;
  $("job-title").textContent = `${job.id} · ${job.name} (${job.status}, ${job.guarantee})${job.error ? " — " + job.error : ""}`;
  const unmatched = job.unmatched_state.length ? `; state of stages not in this job: ${job.unmatched_state.join(", ")}` : "";
  $("job-snapshots").textContent = job.snapshots
    ? `Snapshots: ${snapshotTitle(job.snapshots)}; latest ${snapshotText(job.snapshots)}${unmatched}`
    : `No snapshots (guarantee none)${unmatched}`;
  let totalIn = 0, totalOut = 0;
  for (const v of job.vertices) {
    const key = `${job.id}/${v.index}`;
    const prev = state.prevVertices.get(key);
    v.rate_in = rate(prev, v, "items_in", t);
    v.rate_out = rate(prev, v, "items_out", t);
    state.prevVertices.set(key, { t, items_in: v.items_in, items_out: v.items_out });
    if (!job.edges.some((e) => e.to === v.index)) totalIn += v.rate_out || 0;
    if (!job.edges.some((e) => e.from === v.index)) totalOut += v.rate_in || 0;
  }
  push(state.throughput, { in: totalIn, out: totalOut });
  renderDag(job);
  lineChart($("throughput-chart"), [
    { name: "sources out/s", points: state.throughput.map((p) => p.in) },
    { name: "sinks in/s", points: state.throughput.map((p) => p.out) },
  ], fmtRate);
  const body = $("vertices").tBodies[0];
  body.replaceChildren();
  for (const v of job.vertices) {
    body.append(el("tr", {},
      el("td", { text: v.name }), el("td", { text: v.parallelism }),
      el("td", { text: fmtRate(v.rate_in) }), el("td", { text: fmtRate(v.rate_out) }),
      el("td", { text: fmt(v.items_out), "data-testid": "vertex-items-out" }),
      el("td", {}, fillBar(v.queue_fill)),
      el("td", { text: v.watermark_ms === null ? "–" : new Date(v.watermark_ms).toISOString().replace("T", " ").replace("Z", "") }),
      el("td", { text: fmtMs(v.watermark_lag_ms) }),
      el("td", { text: fmt(v.late_events) })));
  }
}

// ---- latency ------------------------------------------------------------

// Quantile of the observations between two polls, from the bucket counts.
function windowQuantile(bounds, counts, q) {
  const total = counts.reduce((a, b) => a + b, 0);
  if (!total) return null;
  const rank = Math.max(1, q * total);
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    if (counts[i] > 0 && seen + counts[i] >= rank) {
      if (i >= bounds.length) return bounds[bounds.length - 1];
      const lo = i === 0 ? 0 : bounds[i - 1];
      return lo + (bounds[i] - lo) * (rank - seen) / counts[i];
    }
    seen += counts[i];
  }
  return bounds[bounds.length - 1];
}

function renderLatency(metrics) {
  const hs = metrics.histograms || [];
  $("latency-section").hidden = hs.length === 0;
  const box = $("latency-charts");
  for (const h of hs) {
    const prev = state.prevHist.get(h.name);
    state.prevHist.set(h.name, h.counts);
    const series = state.latency.get(h.name) || [];
    state.latency.set(h.name, series);
    if (prev) {
      const delta = h.counts.map((c, i) => c - (prev[i] || 0));
      const ms = (q) => { const s = windowQuantile(h.bounds_s, delta, q); return s === null ? null : s * 1000; };
      push(series, { p50: ms(0.5), p90: ms(0.9), p99: ms(0.99) });
    }
    let chart = box.querySelector(`[data-histogram="${CSS.escape(h.name)}"]`);
    if (!chart) {
      chart = el("div", { class: "latency-chart", "data-histogram": h.name },
        el("h3", {}), svg("svg", { class: "chart", role: "img", "aria-label": h.name }));
      box.append(chart);
    }
    const all = (q) => fmtMs(h[`${q}_s`] === null ? null : h[`${q}_s`] * 1000);
    chart.querySelector("h3").textContent = `${h.help || h.name} — since start: p50 ${all("p50")}, p90 ${all("p90")}, p99 ${all("p99")} (${fmt(h.count)} samples)`;
    lineChart(chart.querySelector("svg"), ["p50", "p90", "p99"].map((q) => ({ name: `${q} (ms)`, points: series.map((p) => p[q]) })), fmtMs);
  }
}

// ---- maps and panels -------------------------------------------------------

function renderMaps(maps) {
  const body = $("maps").tBodies[0];
  body.replaceChildren();
  for (const m of maps) {
    const row = el("tr", { class: "clickable", "data-map": m.name },
      el("td", { text: m.name }), el("td", { text: fmt(m.entries), "data-testid": "map-entries" }),
      el("td", { text: fmtBytes(m.allocated_bytes || m.bytes) }),
      el("td", { text: m.hit_rate === null ? "–" : `${(m.hit_rate * 100).toFixed(1)}%` }),
      el("td", { text: fmt(m.gets) }), el("td", { text: fmt(m.puts) }),
      el("td", { text: fmt(m.removals) }), el("td", { text: fmt(m.evictions) }));
    row.addEventListener("click", () => { $("query-map").value = m.name; runQuery(0); });
    body.append(row);
  }
  const select = $("query-map");
  const names = maps.map((m) => m.name);
  const current = [...select.options].map((o) => o.value);
  if (names.join("\n") !== current.join("\n")) {
    const keep = select.value;
    select.replaceChildren(...names.map((n) => el("option", { value: n, text: n })));
    if (names.includes(keep)) select.value = keep;
    const panelMap = $("panel-map"), keepPanel = panelMap.value;
    panelMap.replaceChildren(...names.map((n) => el("option", { value: n, text: n })));
    if (names.includes(keepPanel)) panelMap.value = keepPanel;
  }
}

// A panel's element, created on first sight; its change stream is followed
// while the page is open (a map the node does not watch answers 404, and
// the panel says so).
function panelView(panel) {
  const id = `${panel.map}/${panel.group_by}`;
  let view = state.panels.get(id);
  if (view) return view;
  const chart = svg("svg", { class: "chart panel-chart", role: "img", "aria-label": panel.title, "data-map": panel.map });
  const status = el("span", { class: "muted" });
  const live = el("ol", { class: "panel-live" });
  const box = el("div", { class: "panel", "data-panel": id },
    el("h3", { text: panel.title }), chart,
    el("h3", {}, `Changes of ${panel.map} `, status), live);
  $("panels").append(box);
  view = { panel, chart, live, status, source: null };
  state.panels.set(id, view);
  followChanges(view);
  return view;
}

function followChanges(view) {
  const { panel, live, status } = view;
  const source = new EventSource(`/api/maps/${encodeURIComponent(panel.map)}/changes`);
  view.source = source;
  source.onopen = () => { status.textContent = "(live)"; };
  source.onerror = () => { status.textContent = "(not streamed, or reconnecting…)"; };
  source.onmessage = (msg) => {
    let ev;
    try { ev = JSON.parse(msg.data); } catch { return; }
    if (ev.type === "lost") { status.textContent = `(live; ${ev.events} events skipped while behind)`; return; }
    if (ev.type !== "entry" || !ev.new_value) return;
    const v = ev.new_value;
    const isObj = typeof v === "object" && v !== null;
    const group = isObj && panel.group_by in v ? String(v[panel.group_by]) : "?";
    const detail = isObj
      ? Object.entries(v).filter(([k]) => k !== panel.group_by).slice(0, 5).map(([k, x]) => `${k}=${typeof x === "object" ? JSON.stringify(x) : x}`).join(" ")
      : JSON.stringify(v);
    const li = el("li", {}, el("span", { class: "rule", text: group }), ` ${typeof ev.key === "string" ? ev.key : JSON.stringify(ev.key)} `, el("span", { class: "muted", text: detail }));
    live.prepend(li);
    while (live.children.length > LIVE_CHANGES_MAX) live.lastChild.remove();
  };
}

async function refreshPanel(view) {
  const enc = encodeURIComponent, { map, group_by: field } = view.panel;
  const base = `/api/maps/${enc(map)}/aggregate`;
  const distinct = await api(`${base}?aggregation=${enc(`distinct(${field})`)}`);
  const groups = Array.isArray(distinct.result) ? distinct.result.slice(0, PANEL_GROUPS_MAX) : [];
  const counts = await Promise.all(groups.map((g) => {
    const literal = typeof g === "number" || typeof g === "boolean" ? String(g) : `'${String(g).replace(/'/g, "''")}'`;
    return api(`${base}?aggregation=count&predicate=${enc(`${field} = ${literal}`)}`)
      .then((c) => ({ name: String(g), value: Number(c.result) || 0 }))
      .catch(() => ({ name: String(g), value: 0 }));
  }));
  barChart(view.chart, counts, fmt);
}

async function refreshPanels(maps) {
  const { panels } = await api("/api/panels");
  const names = new Set(maps.map((m) => m.name));
  for (const panel of [...panels, ...state.userPanels]) {
    if (!names.has(panel.map)) continue;
    await refreshPanel(panelView(panel)).catch(() => {});
  }
}

// ---- entry browser ---------------------------------------------------------

async function runQuery(page) {
  const map = $("query-map").value;
  if (!map) return;
  // Only the latest query's answer is shown: an earlier one that arrives
  // late (the first automatic query, a slow page) must not overwrite it.
  const seq = (state.querySeq = (state.querySeq || 0) + 1);
  state.query = { ...state.query, map, predicate: $("predicate").value.trim(), page };
  const params = new URLSearchParams({ page: String(page), page_size: String(state.query.pageSize) });
  if (state.query.predicate) params.set("predicate", state.query.predicate);
  const status = $("query-status");
  const table = $("query-results");
  const body = table.tBodies[0];
  try {
    const r = await api(`/api/maps/${encodeURIComponent(map)}/query?${params}`);
    if (seq !== state.querySeq) return;
    table.dataset.predicate = state.query.predicate;
    body.replaceChildren(...r.entries.map((e) => el("tr", { "data-testid": "query-row" },
      el("td", { class: "value", text: typeof e.key === "string" ? e.key : JSON.stringify(e.key) }),
      el("td", { class: "value", text: JSON.stringify(e.value) }))));
    status.className = "muted";
    status.textContent = `${fmt(r.total)} matching entries`;
    $("page-info").textContent = r.pages ? `page ${r.page + 1} of ${r.pages}` : "";
    $("page-prev").disabled = r.page === 0;
    $("page-next").disabled = r.page + 1 >= r.pages;
  } catch (e) {
    if (seq !== state.querySeq) return;
    body.replaceChildren();
    status.className = "error";
    status.textContent = e.message;
  }
}

// ---- polling -------------------------------------------------------------

async function poll() {
  const t = performance.now();
  try {
    const [jobs, maps, metrics] = await Promise.all([api("/api/jobs"), api("/api/maps"), api("/api/metrics")]);
    renderJobs(jobs, t);
    if (state.selectedJob !== null) renderJob(await api(`/api/jobs/${state.selectedJob}`), t);
    else $("job-section").hidden = true;
    renderLatency(metrics);
    renderMaps(maps);
    if (state.polls % PANELS_EVERY_POLLS === 0) await refreshPanels(maps);
    if (state.query.map === null && $("query-map").value) runQuery(0);
    state.polls++;
    $("node-status").className = "badge ok";
    $("node-status").textContent = "connected";
    $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    $("node-status").className = "badge down";
    $("node-status").textContent = `unreachable: ${e.message}`;
  }
}

$("query-form").addEventListener("submit", (e) => { e.preventDefault(); runQuery(0); });
$("panel-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const map = $("panel-map").value, field = $("panel-field").value.trim();
  if (!map || !/^[A-Za-z_][A-Za-z0-9_.]*$/.test(field)) return;
  state.userPanels.push({ title: `${map} per ${field}`, map, group_by: field });
  state.polls = 0;
});
$("page-prev").addEventListener("click", () => runQuery(Math.max(0, state.query.page - 1)));
$("page-next").addEventListener("click", () => runQuery(state.query.page + 1));

(async function loop() {
  await poll();
  setTimeout(loop, POLL_MS);
})();
