// dashboard.js - the admin dashboard: reads the server-sent events of
// GET /events with fetch() (so the token travels in the Authorization header,
// never in a URL), and renders members, config, targets, limits and traffic.
"use strict";

const state = {
  token: sessionStorage.getItem("gvToken") || "",
  members: [], since: {}, seenChanges: null, lastStats: null, configVersion: null, alive: 1,
};

function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

function badge(text, cls) { return el("span", { class: "badge " + (cls || text) }, text); }

function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.floor(s / 60) + " min ago";
  return Math.floor(s / 3600) + " h ago";
}

// A config version is a hybrid-logical-clock stamp: the wall-clock ms of the
// write since 2025-01-01 over 12 bits of counter. Shown as that time.
const HLC_EPOCH_MS = 1735689600000;
function versionText(v) {
  if (!v) return "0 (config file only)";
  const ms = Math.floor(v / 4096) + HLC_EPOCH_MS, n = v % 4096;
  const d = new Date(ms);
  const t = d.toLocaleDateString() === new Date().toLocaleDateString()
    ? d.toLocaleTimeString() : d.toLocaleString();
  return t + (n ? " +" + n : "");
}

function setConn(text, ok) {
  const c = $("conn");
  c.textContent = text;
  c.className = "badge " + (ok ? "on" : "off");
}

function headers() {
  return state.token ? { Authorization: "Bearer " + state.token } : {};
}

function askToken(msg) {
  $("token-form").hidden = false;
  $("token-msg").textContent = msg || "";
  $("token-input").focus();
}

async function api(path) {
  const r = await fetch(path, { headers: headers(), cache: "no-store" });
  if (r.status === 401) { askToken("the admin API wants a token"); throw new Error("401"); }
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

// ---- members --------------------------------------------------------------

function majorityDigest(members) {
  const count = {};
  for (const m of members) if (m.state === "alive") count[m.config_digest] = (count[m.config_digest] || 0) + 1;
  let best = null;
  for (const d of Object.keys(count)) if (best === null || count[d] > count[best]) best = d;
  return best;
}

function onMembers(members) {
  const now = Date.now();
  for (const m of members) {
    const s = state.since[m.name];
    if (!s || s.state !== m.state) state.since[m.name] = { state: m.state, at: now };
  }
  members.sort((a, b) => a.name.localeCompare(b.name));
  state.members = members;
  const major = majorityDigest(members);
  const counts = {};
  for (const m of members) counts[m.state] = (counts[m.state] || 0) + 1;
  state.alive = counts.alive || 1;
  $("members-summary").textContent = Object.entries(counts).map(([k, v]) => v + " " + k).join(", ");
  fill($("members").tBodies[0], members.map((m) => {
    const skew = m.state === "alive" && major !== null && m.config_digest !== major;
    const tr = el("tr", { class: skew ? "skew" : "", "data-name": m.name, "data-state": m.state },
      el("td", {}, m.name + (m.self ? " (this node)" : "")),
      el("td", { class: "mono" }, m.address),
      el("td", {}, badge(m.state)),
      el("td", { class: "muted" }, ago(state.since[m.name].at)),
      el("td", { class: "mono", title: String(m.config_version) }, versionText(m.config_version)),
      el("td", { class: "mono", title: m.config_digest }, (m.config_digest || "").slice(0, 12) + (skew ? " (differs)" : "")));
    return tr;
  }));
  renderLimits();
}

// ---- config ---------------------------------------------------------------

function onConfig(c) {
  $("config-summary").textContent = "applied here: " + versionText(c.version) + ", digest " + (c.digest || "").slice(0, 12);
  const first = state.seenChanges === null;
  const seen = state.seenChanges || new Set();
  fill($("changes").tBodies[0], c.changes.map((ch) => {
    const key = ch.kind + "/" + ch.name + "@" + ch.stamp;
    const fresh = !first && !seen.has(key);
    seen.add(key);
    return el("tr", { class: fresh ? "fresh" : "", "data-object": ch.kind + "/" + ch.name },
      el("td", { class: "mono", title: ch.at }, new Date(ch.at).toLocaleTimeString()),
      el("td", {}, ch.kind + "/" + ch.name),
      el("td", {}, ch.origin || "a config file"),
      el("td", {}, ch.deleted ? "deleted" : "put"));
  }));
  state.seenChanges = seen;
  if (state.configVersion !== c.version) {
    state.configVersion = c.version;
    api("/config").then((cfg) => { state.config = cfg; renderLimits(); }).catch(() => {});
  }
}

function rateLimits(cfg) {
  const out = [];
  for (const p of cfg.plugins || []) if (p.rate_limit) out.push({ where: "all routes", rl: p.rate_limit });
  for (const r of cfg.routes || [])
    for (const p of r.plugins || []) if (p.rate_limit) out.push({ where: "route " + r.name, rl: p.rate_limit });
  return out;
}

function renderLimits() {
  if (!state.config) return;
  fill($("limits").tBodies[0], rateLimits(state.config).map(({ where, rl }) => {
    const cluster = (rl.scope || "cluster") === "cluster";
    const share = cluster ? (rl.limit / state.alive).toFixed(1) + " (1/" + state.alive + ")" : rl.limit + " (own)";
    return el("tr", {},
      el("td", {}, "rate_limit"), el("td", {}, where),
      el("td", {}, rl.limit + " / " + (rl.window || "1s")), el("td", {}, rl.key || "ip"),
      el("td", {}, rl.scope || "cluster"), el("td", {}, share));
  }));
}

function renderKeys(keys) {
  fill($("rl-keys").tBodies[0], keys.slice(0, 10).map((k) => el("tr", { "data-key": k.key },
    el("td", { class: "mono" }, k.key), el("td", {}, k.demand.toFixed(1)),
    el("td", {}, k.peer_demand.toFixed(1)), el("td", {}, (k.share * 100).toFixed(0) + " %"))));
}

// ---- backends -------------------------------------------------------------

function onBackends(services) {
  const rows = [];
  for (const s of services)
    for (const t of s.targets) {
      const healthy = t.healthy !== false && !t.pending;
      rows.push(el("tr", { "data-target": t.address, "data-healthy": String(healthy) },
        el("td", {}, s.service + " (" + s.balancer + ")"),
        el("td", { class: "mono", title: t.target || "" }, t.address || t.target),
        el("td", {}, badge(healthy ? "healthy" : "unhealthy")),
        el("td", {}, t.reason || ""),
        el("td", {}, (t.checked_by || []).join(", ")),
        el("td", {}, t.inflight === undefined ? "" : t.inflight)));
    }
  fill($("backends").tBodies[0], rows);
}

// ---- traffic --------------------------------------------------------------

function quantile(buckets, bounds, q) {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  let acc = 0;
  for (let i = 0; i < buckets.length; i++) {
    acc += buckets[i];
    if (acc >= q * total) return i < bounds.length ? bounds[i] : Infinity;
  }
  return Infinity;
}

function fmtSecs(s) {
  if (s === null) return "-";
  if (s === Infinity) return "> 5 s";
  return s < 1 ? "≤ " + (s * 1000) + " ms" : "≤ " + s + " s";
}

function card(k, v) { return el("div", { class: "card" }, el("div", { class: "v" }, v), el("div", { class: "k" }, k)); }

function onStats(s) {
  api("/cluster/ratelimit").then(renderKeys).catch(() => {});
  $("node").textContent = s.node + ", up " + Math.round(s.uptime_ms / 1000) + " s";
  const p = state.lastStats;
  state.lastStats = s;
  let rate = "-", errs = "-", mean = "-", p50 = "-", p99 = "-";
  if (p && s.time_ms > p.time_ms) {
    const dt = (s.time_ms - p.time_ms) / 1000, dn = s.requests - p.requests;
    rate = (dn / dt).toFixed(1);
    errs = ((s.errors - p.errors) / dt).toFixed(1);
    mean = dn > 0 ? ((s.sum_us - p.sum_us) / dn / 1000).toFixed(2) + " ms" : "-";
    const d = s.buckets.map((b, i) => b - p.buckets[i]);
    p50 = fmtSecs(quantile(d, s.bounds, 0.5));
    p99 = fmtSecs(quantile(d, s.bounds, 0.99));
  }
  $("traffic").replaceChildren(card("requests/s", rate), card("5xx/s", errs), card("mean latency", mean),
    card("p50", p50), card("p99", p99), card("requests (total)", s.requests));
}

// ---- the stream -----------------------------------------------------------

const handlers = { members: onMembers, config: onConfig, backends: onBackends, stats: onStats };

function dispatch(block) {
  let name = "message", data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data += line.slice(5).trim();
  }
  if (data && handlers[name]) handlers[name](JSON.parse(data));
}

async function stream() {
  const r = await fetch("/events", { headers: headers(), cache: "no-store" });
  if (r.status === 401) { setConn("token needed", false); askToken("the admin API wants a token"); return false; }
  if (!r.ok || !r.body) throw new Error("events: " + r.status);
  setConn("live", true);
  const reader = r.body.getReader(), dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      dispatch(buf.slice(0, i));
      buf = buf.slice(i + 2);
    }
  }
  return true;
}

async function run() {
  for (;;) {
    let again = true;
    try { again = await stream(); } catch (e) { console.warn("event stream:", e.message); }
    if (!again) return; // waits for a token
    setConn("reconnecting", false);
    await new Promise((res) => setTimeout(res, 2000));
  }
}

$("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  state.token = $("token-input").value.trim();
  sessionStorage.setItem("gvToken", state.token);
  $("token-form").hidden = true;
  run();
});
$("token-btn").addEventListener("click", () => askToken(""));
setInterval(() => { if (state.members.length) onMembers(state.members.slice()); }, 5000);
run();
