/* ACME streaming QoE dashboard. Protocol: docs/protocol.md (messages with `type` and `v`).
 *
 * The same file runs locally (served by acme_telemetry.local.web) and from CloudFront. It
 * reads config.json, connects to the WebSocket, and renders kpi/feed messages.
 *
 * v2 `kpi` messages carry a window's mergeable KPI state, or one part of it (a Lambda batch,
 * a late part): the page keeps the state of each (window key, part id), a repeated part id
 * replacing the earlier one, and merges the parts of a window (acme_telemetry.kpis.PartMerger
 * does the same in Python). The headline tiles are the merge of the windows of the last
 * `rollingSeconds` (60 s by default), refreshed every window, with the trend against the 5
 * minutes before; the charts keep one point per window over 15 minutes. Figures follow the
 * definitions of acme_telemetry.kpis (same maths, same sketch). Ratios and percentiles show
 * only with at least `min_samples` samples ("n=3" otherwise); rankings need `min_audience`.
 * v1 messages (derived figures per window, from a server not yet upgraded) still show in
 * the charts and, while no v2 window exists, in the tiles.
 *
 * Raw values are exposed as data-* attributes (data-value on tiles, data-window-* and
 * data-span-ms on the window label) so the browser tests compare them with acme_telemetry.kpis.
 */
"use strict";

(function () {
  const VERSIONS = [1, 2];
  const HISTORY_MS = 15 * 60 * 1000;
  const TREND_MS = 5 * 60 * 1000;
  const FEED_LIMIT = 50;
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 10000;
  // acme_telemetry/kpis/sketch.py: the same bins
  const ACCURACY = 0.01;
  const GAMMA = (1 + ACCURACY) / (1 - ACCURACY);
  const ZERO_BIN = -(2 ** 31);
  const COUNTERS = { n: "events", b: "beats", x: "ends", a: "play_attempts", f: "video_start_failures", e: "exits_before_video_start",
    p: "playback_failures", r: "rebuffers", pl: "played_ms", st: "stalled_ms", br: "bitrate_ms" };
  const QUALITY_ORDER = ["SD", "HD", "FHD", "4K"];

  // Headline tiles: value(k) of a KpiSet; gate(k): the sample count the figure needs (null: none).
  const TILES = [
    { key: "concurrent_viewers", name: "Concurrent viewers", unit: "", better: "up", value: (k) => k.concurrent_viewers, fmt: fmtInt },
    { key: "play_attempts_per_min", name: "Play attempts / min", unit: "", better: "up", value: (k) => k.play_attempts_per_min, fmt: fmtNum1 },
    { key: "video_start_failure_pct", name: "Video start failures", unit: "%", better: "down", value: (k) => k.video_start_failure_pct, fmt: fmtNum2, gate: (k) => k.play_attempts },
    { key: "exits_before_video_start_pct", name: "Exits before video start", unit: "%", better: "down", value: (k) => k.exits_before_video_start_pct, fmt: fmtNum2, gate: (k) => k.play_attempts },
    { key: "startup_time_ms_p50", name: "Startup time p50", unit: "ms", better: "down", value: (k) => k.startup_time_ms_p50, fmt: fmtInt, gate: (k) => k.startup_samples },
    { key: "startup_time_ms_p95", name: "Startup time p95", unit: "ms", better: "down", value: (k) => k.startup_time_ms_p95, fmt: fmtInt, gate: (k) => k.startup_samples },
    { key: "rebuffer_ratio", name: "Rebuffer ratio", unit: "%", better: "down", value: (k) => k.rebuffer_ratio, fmt: fmtRatioPct },
    { key: "avg_bitrate_kbps", name: "Average bitrate", unit: "kbps", better: "up", value: (k) => k.avg_bitrate_kbps, fmt: fmtInt },
  ];

  const CHARTS = [
    { id: "viewers", title: "Concurrent viewers and play attempts / min", series: [
      { label: "Concurrent viewers", stroke: "#5aa9ff", value: (k) => k.concurrent_viewers },
      { label: "Play attempts / min", stroke: "#3ecf8e", value: (k) => k.play_attempts_per_min, scale: "rate" },
    ] },
    { id: "failures", title: "Start failures and exits before start (%)", series: [
      { label: "Video start failure %", stroke: "#ff6b6b", value: (k) => k.video_start_failure_pct },
      { label: "Exits before start %", stroke: "#ffc857", value: (k) => k.exits_before_video_start_pct },
      { label: "Playback failures", stroke: "#c084fc", value: (k) => k.playback_failures, scale: "count" },
    ] },
    { id: "startup", title: "Startup time (ms)", series: [
      { label: "p50", stroke: "#3ecf8e", value: (k) => k.startup_time_ms_p50 },
      { label: "p95", stroke: "#c084fc", value: (k) => k.startup_time_ms_p95 },
    ] },
    { id: "rebuffer", title: "Rebuffer ratio (%) and average bitrate (kbps)", series: [
      { label: "Rebuffer ratio %", stroke: "#ff8c69", value: (k) => pct(k.rebuffer_ratio), scale: "pct" },
      { label: "Avg bitrate kbps", stroke: "#7dd3fc", value: (k) => k.avg_bitrate_kbps, scale: "kbps" },
    ] },
  ];

  const state = {
    config: { windowSeconds: 5, rollingSeconds: 60, heartbeatMs: 10000, minSamples: 20, minAudience: 20, environment: "local" },
    parts: new Map(), // "start|end" -> Map(part id -> wire state) (v2)
    legacy: new Map(), // "start|end" -> v1 snapshot
    feed: [],
    feedKeys: new Set(),
    alerts: new Map(), // "dim=value" -> alert text while active
    ws: null,
    attempt: 0,
    reconnectTimer: null,
    lastKpiAt: 0,
    newestEnd: null,
    charts: [],
    connects: 0,
    kpiMessages: 0,
  };

  // ---- formatting ---------------------------------------------------------------------
  function isNum(v) { return typeof v === "number" && Number.isFinite(v); }
  function fmtInt(v) { return isNum(v) ? Math.round(v).toLocaleString("en-US") : "—"; }
  function fmtNum1(v) { return isNum(v) ? v.toLocaleString("en-US", { maximumFractionDigits: 1, minimumFractionDigits: 1 }) : "—"; }
  function fmtNum2(v) { return isNum(v) ? v.toLocaleString("en-US", { maximumFractionDigits: 2, minimumFractionDigits: 2 }) : "—"; }
  function pct(ratio) { return isNum(ratio) ? ratio * 100 : null; }
  function fmtRatioPct(v) { return fmtNum2(pct(v)); }
  function parseTime(s) { const t = Date.parse(s); return Number.isFinite(t) ? t : null; }
  function hhmmss(ms) { return new Date(ms).toISOString().slice(11, 19); }
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    if (attrs) for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function safe(obj) { return obj && typeof obj === "object" ? obj : {}; }

  function round(x, nd) { const f = 10 ** nd; return Math.round(x * f) / f; }

  // ---- the KPI engine's maths (acme_telemetry/kpis) -------------------------------------
  function emptySlice() {
    const s = { q: {}, su: new Map() };
    for (const name of Object.values(COUNTERS)) s[name] = 0;
    return s;
  }
  function addWire(acc, w) {
    w = safe(w);
    for (const [short, name] of Object.entries(COUNTERS)) if (isNum(w[short])) acc[name] += w[short];
    for (const [q, ms] of Object.entries(safe(w.q))) if (isNum(ms)) acc.q[q] = (acc.q[q] || 0) + ms;
    for (const [i, n] of Object.entries(safe(w.su))) if (isNum(n)) acc.su.set(Number(i), (acc.su.get(Number(i)) || 0) + n);
  }
  function quantile(su, q) {
    let count = 0;
    for (const n of su.values()) count += n;
    if (!count) return null;
    const rank = Math.max(1, Math.ceil((q / 100) * count));
    let seen = 0;
    for (const i of [...su.keys()].sort((a, b) => a - b)) {
      seen += su.get(i);
      if (seen >= rank) return i === ZERO_BIN ? 0 : (2 * GAMMA ** i) / (GAMMA + 1);
    }
    return null;
  }
  function kpiSet(s, spanMs, hb) {
    const watch = s.played_ms + s.stalled_ms, att = s.play_attempts;
    let samples = 0;
    for (const n of s.su.values()) samples += n;
    const r = (x, nd) => (x === null ? null : round(x, nd));
    const share = {};
    if (s.played_ms) for (const q of QUALITY_ORDER) if (s.q[q]) share[q] = round(s.q[q] / s.played_ms, 4);
    return {
      events: s.events,
      concurrent_viewers: round(Math.max(0, hb * s.beats - (hb / 2) * s.ends) / spanMs, 1),
      play_attempts: att,
      play_attempts_per_min: round((att * 60000) / spanMs, 2),
      video_start_failures: s.video_start_failures,
      video_start_failure_pct: att ? r((100 * s.video_start_failures) / att, 3) : null,
      exits_before_video_start: s.exits_before_video_start,
      exits_before_video_start_pct: att ? r((100 * s.exits_before_video_start) / att, 3) : null,
      startup_time_ms_p50: r(quantile(s.su, 50), 1),
      startup_time_ms_p95: r(quantile(s.su, 95), 1),
      startup_samples: samples,
      rebuffer_ratio: watch ? r(s.stalled_ms / watch, 6) : null,
      rebuffers_per_minute: watch ? r((s.rebuffers * 60000) / watch, 4) : null,
      avg_bitrate_kbps: s.played_ms ? r(s.bitrate_ms / s.played_ms, 1) : null,
      quality_share: share,
      playback_failures: s.playback_failures,
    };
  }
  // One merged state from wire states (parts of one window, or several windows).
  function mergeStates(wires) {
    const out = { overall: emptySlice(), by: {} };
    for (const w of wires) {
      const st = safe(w.state);
      addWire(out.overall, st.overall);
      for (const [dim, vals] of Object.entries(safe(st.by))) {
        const d = out.by[dim] || (out.by[dim] = {});
        for (const [v, ws] of Object.entries(safe(vals))) addWire(d[v] || (d[v] = emptySlice()), ws);
      }
    }
    return out;
  }
  // The figures of a merged state: overall and by slice.
  function report(merged, spanMs, hb) {
    const by = {};
    for (const [dim, vals] of Object.entries(merged.by)) {
      by[dim] = {};
      for (const [v, s] of Object.entries(vals)) by[dim][v] = kpiSet(s, spanMs, hb);
    }
    return { overall: kpiSet(merged.overall, spanMs, hb), by };
  }

  // Windows by end time: {start, end, spanMs, hb, wires} (v2) or {start, end, legacy} (v1).
  function windowList() {
    const out = new Map();
    for (const [key, parts] of state.parts) {
      const first = parts.values().next().value;
      out.set(key, { start: parseTime(first.window_start), end: parseTime(first.window_end), spanMs: first.span_ms || (parseTime(first.window_end) - parseTime(first.window_start)),
        hb: first.heartbeat_ms || state.config.heartbeatMs, wires: [...parts.values()] });
    }
    for (const [key, snap] of state.legacy) if (!out.has(key)) out.set(key, { start: parseTime(snap.window_start), end: parseTime(snap.window_end), legacy: snap });
    return [...out.values()].sort((a, b) => a.end - b.end || a.start - b.start);
  }
  function windowReport(w) {
    if (w.legacy) return { overall: legacyKpis(w.legacy.overall, w), by: safe(w.legacy.by) };
    return report(mergeStates(w.wires), w.spanMs, w.hb);
  }
  function legacyKpis(o, w) {
    const k = Object.assign({}, safe(o));
    const secs = (w.end - w.start) / 1000;
    if (isNum(k.play_attempts) && secs > 0) k.play_attempts_per_min = (k.play_attempts * 60) / secs;
    return k;
  }
  // The merge of the v2 windows with end in (from, to].
  function span(windows, from, to) {
    const ws = windows.filter((w) => !w.legacy && w.end > from && w.end <= to);
    if (!ws.length) return null;
    const spanMs = ws.reduce((a, w) => a + w.spanMs, 0);
    return { start: Math.min(...ws.map((w) => w.start)), end: Math.max(...ws.map((w) => w.end)), spanMs, n: ws.length,
      report: report(mergeStates(ws.flatMap((w) => w.wires)), spanMs, ws[0].hb) };
  }

  // ---- tiles --------------------------------------------------------------------------
  function buildTiles() {
    const root = document.querySelector('[data-testid="tiles"]');
    for (const t of TILES) {
      const tile = el("div", { class: "tile", "data-testid": "tile-" + t.key, "data-value": "", "data-samples": "" });
      tile.append(el("div", { class: "name" }, t.name));
      const value = el("div", { class: "value" });
      value.append(el("span", { class: "num" }, "—"), el("span", { class: "unit" }, t.unit));
      tile.append(value, el("div", { class: "trend", "data-direction": "flat" }, " "));
      root.append(tile);
    }
  }

  function enough(t, k) {
    if (!t.gate) return { ok: true, n: null };
    const n = t.gate(k);
    return { ok: isNum(n) && n >= state.config.minSamples, n: isNum(n) ? n : 0 };
  }

  function renderTiles(cur, prev, label) {
    for (const t of TILES) {
      const tile = document.querySelector('[data-testid="tile-' + t.key + '"]');
      const k = cur.report.overall;
      let v = null;
      try { v = t.value(k); } catch (e) { v = null; }
      const g = enough(t, k);
      tile.setAttribute("data-value", isNum(v) ? String(v) : "");
      tile.setAttribute("data-samples", g.n === null ? "" : String(g.n));
      tile.setAttribute("data-enough", g.ok ? "true" : "false");
      tile.querySelector(".num").textContent = g.ok ? t.fmt(v) : "n=" + g.n;
      tile.querySelector(".unit").textContent = g.ok ? t.unit : "";
      const trend = tile.querySelector(".trend");
      const pk = prev ? prev.report.overall : null;
      const pv = pk ? t.value(pk) : null;
      if (!g.ok || !pk || !enough(t, pk).ok || !isNum(v) || !isNum(pv)) {
        trend.textContent = g.ok ? "→ no trend yet" : "too few samples";
        trend.setAttribute("data-direction", "flat");
      } else if (v === pv) {
        trend.textContent = "→ steady vs prev 5 min";
        trend.setAttribute("data-direction", "flat");
      } else {
        const up = v > pv;
        const rel = pv !== 0 ? " " + Math.abs(((v - pv) / Math.abs(pv)) * 100).toFixed(1) + "%" : "";
        trend.textContent = (up ? "▲" : "▼") + rel + " vs prev 5 min";
        const small = pv !== 0 && Math.abs((v - pv) / pv) < 0.02;
        trend.setAttribute("data-direction", small ? "flat" : (up === (t.better === "up")) ? "better" : "worse");
      }
    }
    const w = document.querySelector('[data-testid="window"]');
    w.setAttribute("data-window-start", new Date(cur.start).toISOString().replace(".000Z", "Z"));
    w.setAttribute("data-window-end", new Date(cur.end).toISOString().replace(".000Z", "Z"));
    w.setAttribute("data-span-ms", String(cur.spanMs));
    w.textContent = label + " " + hhmmss(cur.start) + "–" + hhmmss(cur.end) + " UTC";
  }

  // ---- charts -------------------------------------------------------------------------
  function chartWidth(node) { return Math.max(240, node.clientWidth - 12); }

  function buildCharts() {
    const grid = document.querySelector('[data-testid="charts"]');
    if (typeof uPlot === "undefined") { grid.textContent = "chart library missing"; return; }
    for (const c of CHARTS) {
      const box = el("div", { class: "chart", "data-testid": "chart-" + c.id });
      box.append(el("h3", {}, c.title));
      grid.append(box);
      // x: always the 15 minutes up to the newest window, so the axis is sane from the first point on
      const scales = { x: { time: true, auto: false, range: () => xRange() } };
      const axes = [{ stroke: "#93a4b6", grid: { stroke: "#2a3643" }, ticks: { stroke: "#2a3643" } }];
      const used = [...new Set(c.series.map((s) => s.scale || "y"))];
      used.forEach((name, i) => {
        scales[name] = { auto: true, range: (u, min, max) => [Math.min(0, min ?? 0), max > 0 ? max * 1.1 : 1] };
        axes.push({ scale: name, side: i === 0 ? 3 : 1, stroke: "#93a4b6", grid: { show: i === 0, stroke: "#2a3643" }, ticks: { stroke: "#2a3643" }, size: 60 });
      });
      const opts = {
        width: chartWidth(box), height: Math.round(Math.max(160, window.innerHeight * 0.2)),
        scales, axes,
        series: [{}].concat(c.series.map((s) => ({ label: s.label, stroke: s.stroke, width: 2, scale: s.scale || "y", spanGaps: false, points: { show: true, size: 3 } }))),
        legend: { live: true },
        cursor: { drag: { x: false, y: false } },
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"), // windows are UTC, like the header
      };
      const plot = new uPlot(opts, [[], ...c.series.map(() => [])], box);
      state.charts.push({ def: c, plot, box });
    }
    window.addEventListener("resize", () => {
      for (const ch of state.charts) ch.plot.setSize({ width: chartWidth(ch.box), height: Math.round(Math.max(160, window.innerHeight * 0.2)) });
    });
  }
  function xRange() {
    const end = (state.newestEnd || Date.now()) / 1000;
    return [end - HISTORY_MS / 1000, end];
  }

  function renderCharts(windows) {
    // x in seconds; a missed window becomes a null point so the line shows a gap.
    const step = (state.config.windowSeconds || 5) * 1000;
    const points = [];
    let prevEnd = null;
    for (const w of windows) {
      if (prevEnd !== null && w.end - prevEnd > step * 1.5) points.push({ x: (prevEnd + step) / 1000, k: null });
      points.push({ x: w.end / 1000, k: windowReport(w).overall });
      prevEnd = w.end;
    }
    for (const ch of state.charts) {
      const data = [points.map((p) => p.x)];
      for (const ser of ch.def.series) {
        data.push(points.map((p) => { if (!p.k) return null; try { const v = ser.value(p.k); return isNum(v) ? v : null; } catch (e) { return null; } }));
      }
      ch.plot.setData(data);
    }
    document.querySelector('[data-testid="charts"]').setAttribute("data-points", String(windows.length));
  }

  // ---- breakdowns ---------------------------------------------------------------------
  function fillTable(testid, header, rows) {
    const table = document.querySelector('[data-testid="' + testid + '"]');
    if (!table) return;
    const thead = table.querySelector("thead"), tbody = table.querySelector("tbody");
    thead.replaceChildren(); tbody.replaceChildren();
    const hr = el("tr");
    for (const h of header) hr.append(el("th", { scope: "col" }, h));
    thead.append(hr);
    for (const r of rows) {
      const tr = el("tr", { "data-key": r.key });
      if (r.alert) tr.classList.add("alert");
      r.cells.forEach((c, i) => {
        const td = el(i === 0 ? "th" : "td", i === 0 ? { scope: "row" } : {}, c.text);
        if (c.value !== undefined) td.setAttribute("data-value", isNum(c.value) ? String(c.value) : "");
        if (c.bad) td.classList.add("bad");
        tr.append(td);
      });
      tbody.append(tr);
    }
  }

  function gated(v, n, fmt) { return n >= state.config.minSamples ? fmt(v) : "n=" + n; }

  function groupRows(dim, group, overall) {
    return Object.entries(safe(group))
      .filter(([, k]) => k && typeof k === "object")
      .sort((a, b) => (b[1].concurrent_viewers || 0) - (a[1].concurrent_viewers || 0) || a[0].localeCompare(b[0]))
      .map(([name, k]) => ({ key: name, alert: state.alerts.has(dim + "=" + name), cells: [
        { text: name },
        { text: fmtInt(k.concurrent_viewers), value: k.concurrent_viewers },
        { text: fmtInt(k.play_attempts), value: k.play_attempts },
        { text: gated(k.video_start_failure_pct, k.play_attempts, fmtNum2), value: k.video_start_failure_pct, bad: bad(k, overall, "vsf") },
        { text: fmtNum2(pct(k.rebuffer_ratio)), value: k.rebuffer_ratio, bad: (state.alerts.get(dim + "=" + name) || "").includes("rebuffering") },
        { text: fmtInt(k.playback_failures), value: k.playback_failures, bad: bad(k, overall, "pbf") },
        { text: fmtInt(k.avg_bitrate_kbps), value: k.avg_bitrate_kbps },
      ] }));
  }
  const GROUP_HEADER = ["", "Viewers", "Attempts", "VSF %", "Rebuffer %", "Playback failures", "Bitrate kbps"];

  // A slice is degraded when, with enough attempts or audience, it is far worse than the
  // rest of the audience (overall minus the slice, so a big slice's outage cannot hide by
  // raising the overall figure it is compared with).
  function bad(k, o, what, before) {
    if (!k || !o) return false;
    const min = state.config.minSamples;
    if (what === "vsf") {
      const att = o.play_attempts - k.play_attempts;
      const rest = att > 0 ? (100 * (o.video_start_failures - k.video_start_failures)) / att : 0;
      return k.play_attempts >= min && k.video_start_failures >= 5 && k.video_start_failure_pct > Math.max(15, 4 * rest);
    }
    if (what === "pbf") {
      const viewers = o.concurrent_viewers - k.concurrent_viewers;
      const rest = viewers > 0 ? (o.playback_failures - k.playback_failures) / viewers : 0;
      return k.concurrent_viewers >= 2 * state.config.minAudience && k.playback_failures >= 10
        && k.playback_failures / k.concurrent_viewers > Math.max(0.01, 5 * rest);
    }
    if (what === "rebuffer") {
      // against the slice's own previous 5 minutes: a slow connection that always stalls more is not news
      const base = before && isNum(before.rebuffer_ratio) ? before.rebuffer_ratio : 4 * (o.rebuffer_ratio || 0);
      return k.concurrent_viewers >= 2 * state.config.minAudience && k.rebuffer_ratio > Math.max(0.05, 3 * base);
    }
    return false;
  }

  function renderBreakdowns(r) {
    const by = safe(r.by), o = r.overall;
    fillTable("by-device_type", GROUP_HEADER, groupRows("device_type", by.device_type, o));
    fillTable("by-connection_type", GROUP_HEADER, groupRows("connection_type", by.connection_type, o));
    fillTable("by-cdn", GROUP_HEADER, groupRows("cdn", by.cdn, o));

    const min = state.config.minAudience;
    const worst = (dim) => Object.entries(safe(by[dim]))
      .filter(([, k]) => k && isNum(k.rebuffer_ratio) && k.rebuffer_ratio > 0 && k.concurrent_viewers >= min)
      .sort((a, b) => b[1].rebuffer_ratio - a[1].rebuffer_ratio || a[0].localeCompare(b[0]))
      .slice(0, 5)
      .map(([name, k]) => ({ key: name, cells: [
        { text: name },
        { text: fmtNum2(pct(k.rebuffer_ratio)), value: k.rebuffer_ratio, bad: (state.alerts.get(dim + "=" + name) || "").includes("rebuffering") },
        { text: fmtInt(k.concurrent_viewers), value: k.concurrent_viewers },
        { text: gated(k.video_start_failure_pct, k.play_attempts, fmtNum2), value: k.video_start_failure_pct, bad: bad(k, o, "vsf") },
      ] }));
    const none = (what) => [{ key: "", cells: [{ text: "No " + what + " with " + min + "+ viewers is rebuffering" }, { text: "" }, { text: "" }, { text: "" }] }];
    const ws = worst("state"), wi = worst("isp");
    fillTable("worst-states", ["State", "Rebuffer %", "Viewers", "VSF %"], ws.length ? ws : none("state"));
    fillTable("worst-isps", ["ISP", "Rebuffer %", "Viewers", "VSF %"], wi.length ? wi : none("ISP"));

    const share = Object.entries(safe(o.quality_share)).filter(([, v]) => isNum(v) && v >= 0);
    share.sort((a, b) => ((QUALITY_ORDER.indexOf(a[0]) + 1) || 99) - ((QUALITY_ORDER.indexOf(b[0]) + 1) || 99) || a[0].localeCompare(b[0]));
    const total = share.reduce((a, [, v]) => a + v, 0);
    const bar = document.querySelector('[data-testid="quality-share"]');
    const legend = document.querySelector('[data-testid="quality-legend"]');
    bar.replaceChildren(); legend.replaceChildren();
    share.forEach(([name, v], i) => {
      const seg = el("div", { class: "seg q" + (i % 6), title: name, "data-quality": name, "data-value": String(v) });
      seg.style.width = (total > 0 ? (v / total) * 100 : 0) + "%";
      bar.append(seg);
      const li = el("li", { "data-quality": name });
      li.append(el("span", { class: "sw q" + (i % 6) }), document.createTextNode(name + " " + (total > 0 ? ((v / total) * 100).toFixed(1) : "0.0") + "%"));
      legend.append(li);
    });
  }

  // Slice alerts for the notable-event feed: a slice turns degraded / recovers.
  const ALERT_DIMS = ["cdn", "isp", "connection_type", "device_type", "state"];
  function updateAlerts(r, prev, at) {
    const o = r.overall, now = new Map();
    for (const dim of ALERT_DIMS) {
      for (const [v, k] of Object.entries(safe(r.by[dim]))) {
        const before = prev ? safe(prev.by[dim])[v] : null;
        const why = [];
        if (bad(k, o, "vsf")) why.push("start failures " + fmtNum1(k.video_start_failure_pct) + "% (n=" + k.play_attempts + ")");
        if (bad(k, o, "pbf")) why.push(k.playback_failures + " playback failures");
        if (bad(k, o, "rebuffer", before)) why.push("rebuffering " + fmtNum1(pct(k.rebuffer_ratio)) + "%");
        if (why.length) now.set(dim + "=" + v, why.join(", "));
      }
    }
    const items = [];
    const stamp = new Date(at).toISOString();
    for (const [key, text] of now) if (!state.alerts.has(key)) items.push({ event_type: "alert", event_timestamp: stamp, slice: key, detail: text });
    for (const key of state.alerts.keys()) if (!now.has(key)) items.push({ event_type: "recovered", event_timestamp: stamp, slice: key, detail: "back to normal" });
    state.alerts = now;
    if (items.length) addFeed(items);
    document.querySelector('[data-testid="tiles"]').setAttribute("data-alerts", [...now.keys()].sort().join(" "));
  }

  // ---- feed ---------------------------------------------------------------------------
  function describe(item) {
    if (item.event_type === "alert" || item.event_type === "recovered") return String(item.slice || "") + ": " + String(item.detail || "");
    const parts = [];
    if (item.error_code) parts.push("code " + item.error_code + (item.fatal ? " (fatal)" : ""));
    if (isNum(item.rebuffer_duration_ms)) parts.push("stalled " + (item.rebuffer_duration_ms / 1000).toFixed(1) + " s");
    for (const k of ["cdn", "isp", "device_type", "connection_type", "state", "quality"]) if (item[k]) parts.push(String(item[k]));
    if (isNum(item.bitrate_kbps)) parts.push(item.bitrate_kbps + " kbps");
    return parts.join(" · ");
  }

  function addFeed(items) {
    if (!Array.isArray(items)) return;
    for (const raw of items) {
      if (!raw || typeof raw !== "object") continue;
      const key = JSON.stringify(raw);
      if (state.feedKeys.has(key)) continue; // feed messages may repeat recent items
      state.feedKeys.add(key);
      state.feed.push(raw);
    }
    state.feed.sort((a, b) => (parseTime(a.event_timestamp) || 0) - (parseTime(b.event_timestamp) || 0));
    while (state.feed.length > FEED_LIMIT) {
      // alerts outlive ordinary errors: drop the oldest non-alert first
      const i = state.feed.findIndex((x) => x.event_type !== "alert" && x.event_type !== "recovered");
      state.feedKeys.delete(JSON.stringify(state.feed.splice(i >= 0 ? i : 0, 1)[0]));
    }
    const list = document.querySelector('[data-testid="feed"]');
    list.replaceChildren();
    for (const item of state.feed.slice().reverse()) {
      const li = el("li", { "data-event-type": String(item.event_type || "") });
      if (item.slice) li.setAttribute("data-slice", String(item.slice));
      const t = parseTime(item.event_timestamp);
      li.append(el("span", { class: "time" }, t === null ? "" : hhmmss(t)));
      li.append(el("span", { class: "kind kind-" + String(item.event_type || "event").replace(/[^a-z_]/gi, "") }, String(item.event_type || "event").replace(/_/g, " ")));
      li.append(el("span", { class: "detail" }, describe(item)));
      list.append(li);
    }
    document.querySelector('[data-testid="feed-empty"]').hidden = state.feed.length > 0;
  }

  // ---- messages -----------------------------------------------------------------------
  function onKpi(msg) {
    const start = parseTime(msg.window_start), end = parseTime(msg.window_end);
    if (start === null || end === null || end <= start) return;
    const key = start + "|" + end;
    if (msg.v >= 2 && msg.state && typeof msg.state === "object") {
      const parts = state.parts.get(key) || new Map();
      parts.set(String(msg.part || ""), msg); // a repeated part id replaces the earlier copy
      state.parts.set(key, parts);
    } else if (msg.overall && typeof msg.overall === "object") {
      state.legacy.set(key, msg);
    } else return;
    state.newestEnd = Math.max(state.newestEnd || end, end);
    for (const m of [state.parts, state.legacy]) for (const k of [...m.keys()]) if (Number(k.split("|")[1]) <= state.newestEnd - HISTORY_MS) m.delete(k);
    state.lastKpiAt = Date.now();
    state.kpiMessages += 1;
    document.querySelector('[data-testid="tiles"]').setAttribute("data-kpi-messages", String(state.kpiMessages));
    setStale(false);
    scheduleRender();
  }

  let renderPending = false;
  function scheduleRender() {
    if (renderPending) return;
    renderPending = true;
    setTimeout(() => { renderPending = false; render(); }, 50); // parts of one window arrive together
  }

  function render() {
    const windows = windowList();
    if (!windows.length) return;
    const newest = windows[windows.length - 1].end;
    const rollMs = (state.config.rollingSeconds || 60) * 1000;
    const cur = span(windows, newest - rollMs, newest);
    if (cur) {
      const prev = span(windows, newest - rollMs - TREND_MS, newest - rollMs);
      renderTiles(cur, prev, "last " + Math.round(rollMs / 1000) + " s:");
      updateAlerts(cur.report, prev ? prev.report : null, newest);
      renderBreakdowns(cur.report);
      document.querySelector('[data-testid="tiles"]').setAttribute("data-rolling-windows", String(cur.n));
    } else { // v1 only (an old server): the latest window as it came
      const w = windows[windows.length - 1];
      const r = windowReport(w);
      renderTiles({ start: w.start, end: w.end, spanMs: w.end - w.start, report: r }, null, "window");
      renderBreakdowns(r);
    }
    renderCharts(windows);
    updateLag();
  }

  function onMessage(ev) {
    let msg;
    try { msg = JSON.parse(ev.data); } catch (e) { return; }
    if (!msg || typeof msg !== "object" || !VERSIONS.includes(msg.v)) return; // other versions: ignore
    if (msg.type === "kpi") onKpi(msg);
    else if (msg.type === "feed") addFeed(msg.items);
    else if (msg.type === "hello") {
      if (isNum(msg.window_seconds) && msg.window_seconds > 0) state.config.windowSeconds = msg.window_seconds;
      if (isNum(msg.rolling_seconds) && msg.rolling_seconds > 0) state.config.rollingSeconds = msg.rolling_seconds;
      if (isNum(msg.heartbeat_ms) && msg.heartbeat_ms > 0) state.config.heartbeatMs = msg.heartbeat_ms;
      if (isNum(msg.min_samples)) state.config.minSamples = msg.min_samples;
      if (isNum(msg.min_audience)) state.config.minAudience = msg.min_audience;
    }
    // unknown types are ignored on purpose
  }

  // The header: the current UTC time, and how far the newest window is behind it.
  function updateLag() {
    const clock = document.querySelector('[data-testid="clock"]');
    const now = Date.now();
    if (clock) clock.textContent = new Date(now).toISOString().slice(0, 19).replace("T", " ") + " UTC";
    const lag = document.querySelector('[data-testid="lag"]');
    if (!lag || state.newestEnd === null) return;
    const behind = (now - state.newestEnd) / 1000;
    const limit = 3 * (state.config.windowSeconds || 5) + 5;
    lag.setAttribute("data-lag-s", String(Math.round(behind)));
    if (behind > 24 * 3600) { lag.textContent = "replay: data time " + new Date(state.newestEnd).toISOString().slice(0, 16).replace("T", " ") + " UTC"; lag.setAttribute("data-state", "replay"); }
    else if (behind > limit) { lag.textContent = "behind by " + Math.round(behind) + " s"; lag.setAttribute("data-state", "behind"); }
    else { lag.textContent = "up to date (" + Math.max(0, Math.round(behind)) + " s)"; lag.setAttribute("data-state", "current"); }
  }
  setInterval(updateLag, 1000);

  // ---- connection ---------------------------------------------------------------------
  function setConn(s, text) {
    const c = document.querySelector('[data-testid="connection"]');
    c.setAttribute("data-state", s);
    c.querySelector(".label").textContent = text || s;
  }
  function setStale(stale) { document.querySelector('[data-testid="connection"]').setAttribute("data-stale", stale ? "true" : "false"); }

  function token() {
    // AWS: the link carries #token=...; keep it for this tab and take it out of the address bar.
    const m = /(?:^|[#&])token=([^&]+)/.exec(location.hash || "");
    if (m) {
      try { sessionStorage.setItem("acme-dashboard-token", decodeURIComponent(m[1])); } catch (e) { /* storage off */ }
      history.replaceState(null, "", location.pathname + location.search);
      return decodeURIComponent(m[1]);
    }
    try { return sessionStorage.getItem("acme-dashboard-token"); } catch (e) { return null; }
  }

  function socketUrl() {
    const configured = state.config.websocketUrl;
    let url;
    if (typeof configured === "string" && /^wss?:\/\//.test(configured)) url = new URL(configured);
    else url = new URL((location.protocol === "https:" ? "wss://" : "ws://") + location.host + (typeof configured === "string" && configured.startsWith("/") ? configured : "/ws"));
    const t = token();
    if (t) url.searchParams.set("token", t);
    return url.toString();
  }

  function connect() {
    clearTimeout(state.reconnectTimer);
    setConn(state.attempt === 0 ? "connecting" : "reconnecting", state.attempt === 0 ? "connecting" : "reconnecting (try " + state.attempt + ")");
    let ws;
    try { ws = new WebSocket(socketUrl()); } catch (e) { scheduleReconnect(); return; }
    state.ws = ws;
    ws.onopen = () => {
      state.attempt = 0;
      state.connects += 1;
      document.querySelector('[data-testid="connection"]').setAttribute("data-connects", String(state.connects));
      setConn("open", "live");
    };
    ws.onmessage = onMessage;
    ws.onclose = () => { if (state.ws === ws) { state.ws = null; scheduleReconnect(); } };
    ws.onerror = () => { /* onclose follows */ };
  }

  function scheduleReconnect() {
    state.attempt += 1;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (state.attempt - 1));
    const delay = Math.round(base / 2 + Math.random() * base / 2); // jitter: herds of wall screens spread out
    setConn("reconnecting", "reconnecting in " + (delay / 1000).toFixed(1) + " s");
    document.querySelector('[data-testid="connection"]').setAttribute("data-retry-ms", String(delay));
    state.reconnectTimer = setTimeout(connect, delay);
  }

  setInterval(() => {
    if (state.lastKpiAt && Date.now() - state.lastKpiAt > 3 * state.config.windowSeconds * 1000) setStale(true);
  }, 1000);

  async function loadConfig() {
    try {
      const r = await fetch("config.json", { cache: "no-store" });
      if (r.ok) {
        const c = await r.json();
        if (c && typeof c === "object") Object.assign(state.config, c);
      }
    } catch (e) { /* no config.json: same-origin defaults */ }
    document.querySelector('[data-testid="environment"]').textContent = String(state.config.environment || "local");
  }

  async function main() {
    buildTiles();
    buildCharts();
    await loadConfig();
    connect();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", main);
  else main();
})();
