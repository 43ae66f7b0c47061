/* ACME streaming QoE dashboard. Protocol: docs/protocol.md (messages with `type` and `v`).
 *
 * The same file runs locally (served by acme_telemetry.local.web) and from CloudFront. It
 * reads config.json, connects to the WebSocket, and renders kpi/feed messages. Unknown
 * message types and fields are ignored; a missed window shows as a gap in the charts.
 * Raw values are exposed as data-* attributes (data-value on tiles, data-window-* on the
 * window label) so the browser test can compare them exactly with acme_telemetry.kpis.
 */
"use strict";

(function () {
  const PROTOCOL_VERSION = 1;
  const HISTORY_MS = 15 * 60 * 1000;
  const FEED_LIMIT = 50;
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 10000;

  // Headline tiles. value(snapshot) returns the raw number shown (null when undefined).
  // better: which direction of change is good ("up"/"down"), for the trend colour.
  const TILES = [
    { key: "concurrent_viewers", name: "Concurrent viewers", unit: "", better: "up", value: (s) => s.overall.concurrent_viewers, fmt: fmtInt },
    { key: "play_attempts_per_min", name: "Play attempts / min", unit: "", better: "up", value: playAttemptsPerMin, fmt: fmtNum1 },
    { key: "video_start_failure_pct", name: "Video start failures", unit: "%", better: "down", value: (s) => s.overall.video_start_failure_pct, fmt: fmtNum2 },
    { key: "exits_before_video_start_pct", name: "Exits before video start", unit: "%", better: "down", value: (s) => s.overall.exits_before_video_start_pct, fmt: fmtNum2 },
    { key: "startup_time_ms_p50", name: "Startup time p50", unit: "ms", better: "down", value: (s) => s.overall.startup_time_ms_p50, fmt: fmtInt },
    { key: "startup_time_ms_p95", name: "Startup time p95", unit: "ms", better: "down", value: (s) => s.overall.startup_time_ms_p95, fmt: fmtInt },
    { key: "rebuffer_ratio", name: "Rebuffer ratio", unit: "%", better: "down", value: (s) => s.overall.rebuffer_ratio, fmt: fmtRatioPct },
    { key: "avg_bitrate_kbps", name: "Average bitrate", unit: "kbps", better: "up", value: (s) => s.overall.avg_bitrate_kbps, fmt: fmtInt },
  ];

  const CHARTS = [
    { id: "viewers", title: "Concurrent viewers and play attempts / min", series: [
      { label: "Concurrent viewers", stroke: "#5aa9ff", value: (s) => s.overall.concurrent_viewers },
      { label: "Play attempts / min", stroke: "#3ecf8e", value: playAttemptsPerMin },
    ] },
    { id: "failures", title: "Start failures and exits before start (%)", series: [
      { label: "Video start failure %", stroke: "#ff6b6b", value: (s) => s.overall.video_start_failure_pct },
      { label: "Exits before start %", stroke: "#ffc857", value: (s) => s.overall.exits_before_video_start_pct },
    ] },
    { id: "startup", title: "Startup time (ms)", series: [
      { label: "p50", stroke: "#3ecf8e", value: (s) => s.overall.startup_time_ms_p50 },
      { label: "p95", stroke: "#c084fc", value: (s) => s.overall.startup_time_ms_p95 },
    ] },
    { id: "rebuffer", title: "Rebuffer ratio (%) and average bitrate (kbps)", series: [
      { label: "Rebuffer ratio %", stroke: "#ff8c69", value: (s) => pct(s.overall.rebuffer_ratio), scale: "pct" },
      { label: "Avg bitrate kbps", stroke: "#7dd3fc", value: (s) => s.overall.avg_bitrate_kbps, scale: "kbps" },
    ] },
  ];

  const state = {
    config: { windowSeconds: 5, environment: "local" },
    windows: new Map(), // window_end ms -> snapshot
    latest: null,
    feed: [],
    feedKeys: new Set(),
    ws: null,
    attempt: 0,
    reconnectTimer: null,
    lastKpiAt: 0,
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
  function windowSeconds(s) {
    const a = parseTime(s.window_start), b = parseTime(s.window_end);
    return a !== null && b !== null && b > a ? (b - a) / 1000 : null;
  }
  function playAttemptsPerMin(s) {
    const secs = windowSeconds(s);
    return isNum(s.overall.play_attempts) && secs ? (s.overall.play_attempts * 60) / secs : null;
  }
  function hhmmss(ms) { return new Date(ms).toISOString().slice(11, 19); }
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    if (attrs) for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function safe(obj) { return obj && typeof obj === "object" ? obj : {}; }

  // ---- tiles --------------------------------------------------------------------------
  function buildTiles() {
    const root = document.querySelector('[data-testid="tiles"]');
    for (const t of TILES) {
      const tile = el("div", { class: "tile", "data-testid": "tile-" + t.key, "data-value": "" });
      tile.append(el("div", { class: "name" }, t.name));
      const value = el("div", { class: "value" });
      value.append(el("span", { class: "num" }, "—"), el("span", { class: "unit" }, t.unit));
      tile.append(value, el("div", { class: "trend", "data-direction": "flat" }, " "));
      root.append(tile);
    }
  }

  // Trend: the latest window against the mean of the previous windows of the last 5 minutes.
  function trendOf(t, snapshots) {
    const cur = t.value(snapshots[snapshots.length - 1]);
    const prev = snapshots.slice(0, -1).slice(-Math.max(1, Math.round(300 / state.config.windowSeconds)))
      .map((s) => t.value(s)).filter(isNum);
    if (!isNum(cur) || prev.length === 0) return null;
    const base = prev.reduce((a, b) => a + b, 0) / prev.length;
    return { delta: cur - base, rel: base !== 0 ? (cur - base) / Math.abs(base) : null };
  }

  function renderTiles(snapshots) {
    const latest = snapshots[snapshots.length - 1];
    for (const t of TILES) {
      const tile = document.querySelector('[data-testid="tile-' + t.key + '"]');
      let v = null;
      try { v = t.value(latest); } catch (e) { v = null; }
      tile.setAttribute("data-value", isNum(v) ? String(v) : "");
      tile.querySelector(".num").textContent = t.fmt(v);
      const trend = tile.querySelector(".trend");
      const tr = trendOf(t, snapshots);
      if (!tr || tr.delta === 0) {
        trend.textContent = tr ? "→ steady vs 5 min" : "→ no trend yet";
        trend.setAttribute("data-direction", "flat");
      } else {
        const up = tr.delta > 0;
        const arrow = up ? "▲" : "▼";
        const rel = tr.rel === null ? "" : " " + Math.abs(tr.rel * 100).toFixed(1) + "%";
        trend.textContent = arrow + rel + " vs 5 min";
        trend.setAttribute("data-direction", (up === (t.better === "up")) ? "better" : "worse");
      }
    }
    const w = document.querySelector('[data-testid="window"]');
    w.setAttribute("data-window-start", latest.window_start || "");
    w.setAttribute("data-window-end", latest.window_end || "");
    w.textContent = "window " + hhmmss(parseTime(latest.window_start)) + "–" + hhmmss(parseTime(latest.window_end)) + " UTC";
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
      const scales = { x: { time: true } };
      const axes = [{ stroke: "#93a4b6", grid: { stroke: "#2a3643" }, ticks: { stroke: "#2a3643" } }];
      const used = [...new Set(c.series.map((s) => s.scale || "y"))];
      used.forEach((name, i) => {
        scales[name] = { auto: true };
        axes.push({ scale: name, side: i === 0 ? 3 : 1, stroke: "#93a4b6", grid: { show: i === 0, stroke: "#2a3643" }, ticks: { stroke: "#2a3643" }, size: 60 });
      });
      const opts = {
        width: chartWidth(box), height: Math.round(Math.max(160, window.innerHeight * 0.22)),
        scales, axes,
        series: [{}].concat(c.series.map((s) => ({ label: s.label, stroke: s.stroke, width: 2, scale: s.scale || "y", spanGaps: false }))),
        legend: { live: true },
        cursor: { drag: { x: false, y: false } },
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"), // windows are UTC, like the header
      };
      const plot = new uPlot(opts, [[], ...c.series.map(() => [])], box);
      state.charts.push({ def: c, plot, box });
    }
    window.addEventListener("resize", () => {
      for (const ch of state.charts) ch.plot.setSize({ width: chartWidth(ch.box), height: Math.round(Math.max(160, window.innerHeight * 0.22)) });
    });
  }

  function renderCharts(snapshots) {
    // x in seconds; a missed window becomes a null point so the line shows a gap.
    const step = (state.config.windowSeconds || 5) * 1000;
    const points = [];
    let prevEnd = null;
    for (const s of snapshots) {
      const end = parseTime(s.window_end);
      if (prevEnd !== null && end - prevEnd > step * 1.5) points.push({ x: (prevEnd + step) / 1000, s: null });
      points.push({ x: end / 1000, s });
      prevEnd = end;
    }
    for (const ch of state.charts) {
      const data = [points.map((p) => p.x)];
      for (const ser of ch.def.series) {
        data.push(points.map((p) => { if (!p.s) return null; try { const v = ser.value(p.s); return isNum(v) ? v : null; } catch (e) { return null; } }));
      }
      ch.plot.setData(data);
    }
    document.querySelector('[data-testid="charts"]').setAttribute("data-points", String(snapshots.length));
  }

  // ---- breakdowns ---------------------------------------------------------------------
  function fillTable(testid, header, rows) {
    const table = document.querySelector('[data-testid="' + testid + '"]');
    const thead = table.querySelector("thead"), tbody = table.querySelector("tbody");
    thead.replaceChildren(); tbody.replaceChildren();
    const hr = el("tr");
    for (const h of header) hr.append(el("th", { scope: "col" }, h));
    thead.append(hr);
    for (const r of rows) {
      const tr = el("tr", { "data-key": r.key });
      r.cells.forEach((c, i) => {
        const td = el(i === 0 ? "th" : "td", i === 0 ? { scope: "row" } : {}, c.text);
        if (c.value !== undefined) td.setAttribute("data-value", isNum(c.value) ? String(c.value) : "");
        if (c.bad) td.classList.add("bad");
        tr.append(td);
      });
      tbody.append(tr);
    }
  }

  function groupRows(group) {
    return Object.entries(safe(group))
      .filter(([, k]) => k && typeof k === "object")
      .sort((a, b) => (b[1].concurrent_viewers || 0) - (a[1].concurrent_viewers || 0) || a[0].localeCompare(b[0]))
      .map(([name, k]) => ({ key: name, cells: [
        { text: name },
        { text: fmtInt(k.concurrent_viewers), value: k.concurrent_viewers },
        { text: fmtInt(k.play_attempts), value: k.play_attempts },
        { text: fmtNum2(k.video_start_failure_pct), value: k.video_start_failure_pct, bad: k.video_start_failure_pct > 5 },
        { text: fmtNum2(pct(k.rebuffer_ratio)), value: k.rebuffer_ratio, bad: k.rebuffer_ratio > 0.02 },
        { text: fmtInt(k.avg_bitrate_kbps), value: k.avg_bitrate_kbps },
      ] }));
  }
  const GROUP_HEADER = ["", "Viewers", "Attempts", "VSF %", "Rebuffer %", "Bitrate kbps"];

  function renderBreakdowns(s) {
    const by = safe(s.by);
    fillTable("by-device_type", GROUP_HEADER, groupRows(by.device_type));
    fillTable("by-connection_type", GROUP_HEADER, groupRows(by.connection_type));

    const worst = Object.entries(safe(by.state))
      .filter(([, k]) => k && isNum(k.rebuffer_ratio) && k.rebuffer_ratio > 0)
      .sort((a, b) => b[1].rebuffer_ratio - a[1].rebuffer_ratio || a[0].localeCompare(b[0]))
      .slice(0, 5)
      .map(([name, k]) => ({ key: name, cells: [
        { text: name },
        { text: fmtNum2(pct(k.rebuffer_ratio)), value: k.rebuffer_ratio, bad: k.rebuffer_ratio > 0.02 },
        { text: fmtInt(k.concurrent_viewers), value: k.concurrent_viewers },
        { text: fmtNum1(k.rebuffers_per_minute), value: k.rebuffers_per_minute },
      ] }));
    fillTable("worst-states", ["State", "Rebuffer %", "Viewers", "Rebuffers / min"], worst.length ? worst
      : [{ key: "", cells: [{ text: "No rebuffering in this window" }, { text: "" }, { text: "" }, { text: "" }] }]);

    const share = Object.entries(safe(s.overall.quality_share)).filter(([, v]) => isNum(v) && v >= 0);
    const order = ["SD", "HD", "FHD", "4K"];
    share.sort((a, b) => ((order.indexOf(a[0]) + 1) || 99) - ((order.indexOf(b[0]) + 1) || 99) || a[0].localeCompare(b[0]));
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

  // ---- feed ---------------------------------------------------------------------------
  function describe(item) {
    const parts = [];
    if (item.error_code) parts.push("code " + item.error_code + (item.fatal ? " (fatal)" : ""));
    if (isNum(item.rebuffer_duration_ms)) parts.push("stalled " + (item.rebuffer_duration_ms / 1000).toFixed(1) + " s");
    for (const k of ["device_type", "connection_type", "state", "quality"]) if (item[k]) parts.push(String(item[k]));
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
    while (state.feed.length > FEED_LIMIT) state.feedKeys.delete(JSON.stringify(state.feed.shift()));
    const list = document.querySelector('[data-testid="feed"]');
    list.replaceChildren();
    for (const item of state.feed.slice().reverse()) {
      const li = el("li", { "data-event-type": String(item.event_type || "") });
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
    if (!msg.overall || typeof msg.overall !== "object") return;
    const end = parseTime(msg.window_end);
    if (end === null) return;
    state.windows.set(end, msg);
    const newest = Math.max(...state.windows.keys());
    for (const k of [...state.windows.keys()]) if (k <= newest - HISTORY_MS) state.windows.delete(k);
    const snapshots = [...state.windows.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1]);
    state.latest = snapshots[snapshots.length - 1];
    state.lastKpiAt = Date.now();
    state.kpiMessages += 1;
    document.querySelector('[data-testid="tiles"]').setAttribute("data-kpi-messages", String(state.kpiMessages));
    setStale(false);
    renderTiles(snapshots);
    renderCharts(snapshots);
    renderBreakdowns(state.latest);
  }

  function onMessage(ev) {
    let msg;
    try { msg = JSON.parse(ev.data); } catch (e) { return; }
    if (!msg || typeof msg !== "object" || msg.v !== PROTOCOL_VERSION) return; // other versions: ignore
    if (msg.type === "kpi") onKpi(msg);
    else if (msg.type === "feed") addFeed(msg.items);
    else if (msg.type === "hello" && isNum(msg.window_seconds) && msg.window_seconds > 0) state.config.windowSeconds = msg.window_seconds;
    // unknown types are ignored on purpose
  }

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
