// The starmesh dashboard: one WebSocket to the WebSocket engine, every panel drawn from it.
"use strict";

const TOPICS = [
  "risk.alert.*", "collateral.margin.*", "portfolio.balance.*", "portfolio.fill.*",
  "vpin.market_structure.*", "vpin.toxicity.*", "system.health.*", "analytics.performance.*",
  "backtest.progress.*",
];
const ENGINES = ["marketdata", "strategy", "portfolio", "risk", "collateral", "vpin",
                 "features", "ml", "factor", "toraniko", "analytics", "websocket", "backtesting"];
const MAX_ALERTS = 200;
const MAX_EQUITY_POINTS = 3000;

const state = {
  messages: 0, equity: [], peak: 0, vpin: new Map(), health: new Map(),
  lastRoutes: null, lastRoutesAt: 0, rates: new Map(), alertIds: new Set(),
};
const $ = (id) => document.getElementById(id);
const fmt = (x, digits = 0) => x == null || Number.isNaN(x) ? "–" :
  Number(x).toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const cell = (text, cls) => { const td = document.createElement("td"); td.textContent = text;
                              if (cls) td.className = cls; return td; };
const row = (...cells) => { const tr = document.createElement("tr"); cells.forEach((c) => tr.append(c));
                            return tr; };

function connect() {
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  socket.onopen = () => {
    $("connection").textContent = "live"; $("connection").className = "badge up";
    socket.send(JSON.stringify({ subscribe: TOPICS }));
  };
  socket.onclose = () => {
    $("connection").textContent = "reconnecting"; $("connection").className = "badge down";
    setTimeout(connect, 1000);
  };
  socket.onmessage = (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type === "messages") frame.messages.forEach(onMessage);
    else if (frame.type === "platform") onPlatform(frame);
    else if (frame.type === "error") console.warn("dashboard:", frame.message);
  };
}

function onMessage(frame) {
  state.messages += 1;
  $("messages-total").textContent = fmt(state.messages);
  const p = frame.payload || {};
  switch (p._type) {
    case "portfolio_balance": return onBalance(p, frame.ts_event);
    case "risk_alert": case "flash_crash_alert": case "margin_call": return onAlert(frame, p);
    case "market_structure": if (p.vpin != null) { state.vpin.set(p.symbol, p); drawVpin(); } return;
    case "toxicity_warning": state.vpin.set(p.symbol, { ...(state.vpin.get(p.symbol) || {}),
                                                         symbol: p.symbol, vpin: p.vpin, cdf: p.cdf,
                                                         toxic: true }); drawVpin(); return;
    case "health_status": state.health.set(p.engine, { ...p, seen: Date.now() }); return drawEngines();
    case "backtest_progress":
      $("backtest").classList.remove("hidden");
      $("backtest-progress").textContent = `${fmt(100 * p.fraction_done, 0)}%`; return;
    default: return;
  }
}

function showTotals(b) {
  $("equity-value").textContent = fmt(b.equity, 2);
  $("realised").textContent = fmt(b.realised_pnl, 2);
  $("unrealised").textContent = fmt(b.unrealised_pnl, 2);
  $("commissions").textContent = fmt(b.commissions, 2);
  state.peak = Math.max(state.peak, b.equity);
  $("drawdown-value").textContent = state.peak ? `${fmt(100 * (1 - b.equity / state.peak), 2)}%` : "–";
}

function onBalance(b, ts) {
  showTotals(b);
  state.equity.push([ts, b.equity]);
  if (state.equity.length > MAX_EQUITY_POINTS) state.equity.splice(0, state.equity.length - MAX_EQUITY_POINTS);
  const body = $("positions").tBodies[0];
  body.replaceChildren(...Object.entries(b.positions || {}).sort().map(([symbol, qty]) => {
    const avg = (b.avg_costs || {})[symbol], mark = (b.prices || {})[symbol];
    const pnl = qty * (mark - avg);
    return row(cell(symbol), cell(fmt(qty)), cell(fmt(avg, 2)), cell(fmt(mark, 2)),
               cell(fmt(pnl, 2), pnl >= 0 ? "pos" : "neg"));
  }));
  drawEquity();
}

function alertItem(frame, p) {
  const li = document.createElement("li");
  const when = new Date(frame.ts_event / 1e6);
  const flash = p._type === "flash_crash_alert";
  li.className = p.cleared ? "cleared" : flash ? "flash" : (p.severity || "warning");
  const what = p.rule || (flash ? "flash_crash" : p._type);
  // A logged alert (from the ledger) may be from another day, and its priority is not kept.
  const shown = frame.logged ? `${when.toLocaleString()} logged` : `${when.toLocaleTimeString()} ${frame.priority}`;
  li.textContent = `${shown} ${what}${p.symbol ? " " + p.symbol : ""}: ${p.message}`;
  return li;
}

function onAlert(frame, p) {
  if (frame.id) { if (state.alertIds.has(frame.id)) return; state.alertIds.add(frame.id); }
  const flash = p._type === "flash_crash_alert";
  $("alerts").prepend(alertItem(frame, p));
  while ($("alerts").children.length > MAX_ALERTS) $("alerts").lastChild.remove();
  if (flash && !p.cleared) {
    const banner = $("flash-banner");
    banner.textContent = `FLASH CRASH — ${p.message} — trading halted`;
    banner.classList.remove("hidden");
  } else if (flash && p.cleared) {
    $("flash-banner").classList.add("hidden");
  }
}

function onPlatform(frame) {
  const now = frame.ts / 1e9;
  const hub = frame.hub || {};
  $("hub-hit-rate").textContent = hub.hit_rate == null ? "–" : `${fmt(100 * hub.hit_rate, 1)}%`;
  $("hub-saved").textContent = fmt(hub.saved_upstream_calls);
  $("routes-count").textContent = fmt((frame.routes || []).length);
  if (state.lastRoutes) {
    const dt = Math.max(now - state.lastRoutesAt, 1e-3);
    for (const r of frame.routes) {
      const key = `${r.from}|${r.to}|${r.topic}`;
      const before = state.lastRoutes.get(key) ?? r.messages;
      state.rates.set(key, (r.messages - before) / dt);
    }
  }
  state.lastRoutes = new Map(frame.routes.map((r) => [`${r.from}|${r.to}|${r.topic}`, r.messages]));
  state.lastRoutesAt = now;
  for (const [engine, figures] of Object.entries(frame.engines || {})) {
    const known = state.health.get(engine) || {};
    state.health.set(engine, { ...known, engine, platformState: figures.state,
                               messages_in: figures.messages_in, messages_out: figures.messages_out,
                               handler_errors: figures.handler_errors, seen: Date.now() });
  }
  drawRoutes(frame.routes || []);
  drawTopology(frame.routes || []);
  drawEngines();
}

function drawRoutes(routes) {
  $("routes").tBodies[0].replaceChildren(...routes.map((r) => row(
    cell(r.from), cell(r.to), cell(r.topic), cell(fmt(r.messages)),
    cell(fmt(state.rates.get(`${r.from}|${r.to}|${r.topic}`) || 0, 0)),
    cell(fmt(r.p50_us)), cell(fmt(r.p99_us)))));
}

function drawEngines() {
  const names = [...state.health.keys()].sort((a, b) => ENGINES.indexOf(a) - ENGINES.indexOf(b));
  $("engines").tBodies[0].replaceChildren(...names.map((name) => {
    const h = state.health.get(name);
    const shown = h.platformState || ({ running: "up", degraded: "degraded", starting: "starting" }[h.state] || "down");
    const badge = document.createElement("span");
    badge.className = `badge ${shown}`; badge.textContent = shown;
    const stateCell = document.createElement("td"); stateCell.append(badge);
    return row(cell(name), stateCell, cell(fmt(h.messages_in)), cell(fmt(h.messages_out)),
               cell(fmt(h.handler_errors)), cell(`${fmt((Date.now() - h.seen) / 1000, 0)} s`));
  }));
}

function drawVpin() {
  const rows = [...state.vpin.values()].sort((a, b) => (b.vpin || 0) - (a.vpin || 0));
  $("vpin").tBodies[0].replaceChildren(...rows.map((v) => {
    const bar = document.createElement("span");
    bar.className = `bar${v.toxic || (v.cdf || 0) > 0.9 ? " toxic" : ""}`;
    bar.style.width = `${Math.round(160 * (v.vpin || 0))}px`;
    const barCell = document.createElement("td"); barCell.style.textAlign = "left"; barCell.append(bar);
    return row(cell(v.symbol), cell(fmt(v.vpin, 3)), cell(fmt(v.cdf, 2)), barCell);
  }));
}

function drawEquity() {
  const canvas = $("equity-chart"), ctx = canvas.getContext("2d");
  const points = state.equity;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (points.length < 2) return;
  const top = canvas.height * 0.7, gap = 8;
  const values = points.map((p) => p[1]);
  const lo = Math.min(...values), hi = Math.max(...values), span = hi - lo || 1;
  const x = (i) => (i / (points.length - 1)) * (canvas.width - 4) + 2;
  ctx.strokeStyle = "#58a6ff"; ctx.lineWidth = 1.2; ctx.beginPath();
  values.forEach((v, i) => { const y = top - ((v - lo) / span) * (top - 6) ; i ? ctx.lineTo(x(i), y) : ctx.moveTo(x(i), y); });
  ctx.stroke();
  let peak = -Infinity; const dd = values.map((v) => { peak = Math.max(peak, v); return 1 - v / peak; });
  const worst = Math.max(...dd) || 1;
  ctx.fillStyle = "rgba(248, 81, 73, 0.5)";
  dd.forEach((d, i) => { const h = (d / worst) * (canvas.height - top - gap); ctx.fillRect(x(i), top + gap, 1.5, h); });
  ctx.fillStyle = "#8a96a3"; ctx.font = "11px system-ui";
  ctx.fillText(fmt(hi, 0), 4, 12); ctx.fillText(fmt(lo, 0), 4, top - 2);
  ctx.fillText(`max drawdown ${fmt(100 * Math.max(...dd), 2)}%`, 4, canvas.height - 4);
}

function drawTopology(routes) {
  const svg = $("topology"), W = 900, H = 420, cx = W / 2, cy = H / 2;
  const names = new Set(["marketdata"]);
  routes.forEach((r) => { names.add(r.from); names.add(r.to === "*" ? "browsers" : r.to); });
  state.health.forEach((_, name) => names.add(name));
  const around = [...names].filter((n) => n !== "marketdata")
                           .sort((a, b) => ENGINES.indexOf(a) - ENGINES.indexOf(b));
  const at = new Map([["marketdata", [cx, cy]]]);
  around.forEach((n, i) => { const a = (2 * Math.PI * i) / around.length - Math.PI / 2;
                             at.set(n, [cx + 380 * Math.cos(a), cy + 175 * Math.sin(a)]); });
  const ns = "http://www.w3.org/2000/svg";
  const el = (tag, attrs, text) => { const e = document.createElementNS(ns, tag);
    Object.entries(attrs).forEach(([k, v]) => e.setAttribute(k, v)); if (text != null) e.textContent = text; return e; };
  const parts = [];
  const byPair = new Map();
  for (const r of routes) {
    const to = r.to === "*" ? "browsers" : r.to;
    const key = `${r.from}|${to}`;
    byPair.set(key, (byPair.get(key) || 0) + (state.rates.get(`${r.from}|${r.to}|${r.topic}`) || 0));
  }
  for (const [key, rate] of byPair) {
    const [from, to] = key.split("|"), a = at.get(from), b = at.get(to);
    if (!a || !b) continue;
    const bend = 0.12, mx = (a[0] + b[0]) / 2 + bend * (b[1] - a[1]), my = (a[1] + b[1]) / 2 - bend * (b[0] - a[0]);
    parts.push(el("path", { d: `M${a[0]},${a[1]} Q${mx},${my} ${b[0]},${b[1]}`, fill: "none",
                            class: `edge ${from === "marketdata" ? "star" : "mesh"}` }));
    parts.push(el("text", { x: mx, y: my, class: "rate", "text-anchor": "middle" }, `${fmt(rate)}/s`));
  }
  for (const [name, [x, y]] of at) {
    const g = el("g", { class: `node${name === "marketdata" ? " hub" : ""}` });
    g.append(el("circle", { cx: x, cy: y, r: name === "marketdata" ? 34 : 26 }));
    g.append(el("text", { x, y: y + 4, "text-anchor": "middle" }, name === "marketdata" ? "hub" : name));
    parts.push(g);
  }
  svg.replaceChildren(...parts);
}

// The past, from the ledger (when the platform keeps one), drawn under what arrives live.
async function loadHistory() {
  let history;
  try {
    const response = await fetch("/v1/history");
    if (!response.ok) { console.warn("dashboard: no history:", await response.text()); return; }
    history = await response.json();
  } catch (error) { console.warn("dashboard: no history:", error); return; }
  if (!history.ledger) return;
  $("history").textContent = `history: ${history.equity.length} equity points, ${history.alerts.length} alerts`;
  const firstLive = state.equity.length ? state.equity[0][0] : Infinity;
  const past = history.equity.filter(([ts]) => ts < firstLive);
  state.equity = [...past, ...state.equity].slice(-MAX_EQUITY_POINTS);
  past.forEach(([, equity]) => { state.peak = Math.max(state.peak, equity); });
  if (history.balance && !state.equity.some(([ts]) => ts >= firstLive)) showTotals(history.balance);
  drawEquity();
  // Oldest first; live alerts are above them, so the logged ones go below (newest on top).
  const older = history.alerts.filter((a) => !state.alertIds.has(a.id));
  older.forEach((a) => state.alertIds.add(a.id));
  older.reverse().forEach((a) => $("alerts").append(alertItem({ ...a, logged: true }, a.payload)));
  while ($("alerts").children.length > MAX_ALERTS) $("alerts").lastChild.remove();
}

connect();
loadHistory();
