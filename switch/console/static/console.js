// The switchd operator console (docs/console.md). It reads the admin API
// with the token kept in this tab's sessionStorage; every value from the
// API is written with textContent, never as HTML.
"use strict";

const tokenKey = "switchd-admin-token";
const pollMillis = 1000;
let timer = null;
let prev = null; // the previous stats answer, for rates

const $ = (id) => document.getElementById(id);

class AuthError extends Error {}

async function api(path, method) {
  const token = sessionStorage.getItem(tokenKey);
  const resp = await fetch(path, {
    method: method || "GET",
    headers: { "Authorization": "Bearer " + token },
    cache: "no-store",
  });
  if (resp.status === 401 || resp.status === 403) {
    throw new AuthError("the switch refused the token (HTTP " + resp.status + ")");
  }
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    throw new Error(body.error || ("HTTP " + resp.status));
  }
  return body;
}

function showLogin(message) {
  if (timer) { clearInterval(timer); timer = null; }
  sessionStorage.removeItem(tokenKey);
  prev = null;
  $("dashboard").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("status").textContent = "not signed in";
  $("login-error").textContent = message || "";
}

function showDashboard() {
  $("login").hidden = true;
  $("dashboard").hidden = false;
  $("logout").hidden = false;
  poll();
  timer = setInterval(poll, pollMillis);
}

// fill replaces a table body's rows; rows are arrays of cell values or
// DOM nodes.
function fill(tableId, rows) {
  const body = $(tableId).tBodies[0];
  body.replaceChildren();
  for (const row of rows) {
    const tr = document.createElement("tr");
    for (const v of row) {
      const td = document.createElement("td");
      if (v instanceof Node) td.appendChild(v); else td.textContent = String(v);
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
  $(tableId).hidden = rows.length === 0;
}

// quantile of a cumulative histogram [{le, count}] (le 0 = +Inf), with
// linear interpolation inside the bucket.
function quantile(q, buckets) {
  if (buckets.length === 0) return null;
  const total = buckets[buckets.length - 1].count;
  if (total <= 0) return null;
  const rank = q * total;
  let lowLE = 0, lowCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (b.le === 0) return lowLE; // beyond the last bound
      const inBucket = b.count - lowCount;
      const frac = inBucket > 0 ? (rank - lowCount) / inBucket : 1;
      return lowLE + (b.le - lowLE) * frac;
    }
    lowLE = b.le; lowCount = b.count;
  }
  return lowLE;
}

function delta(now, before) {
  if (!before) return now;
  return now.map((b, i) => ({ le: b.le, count: b.count - ((before[i] && before[i].le === b.le) ? before[i].count : 0) }));
}

function ms(seconds) {
  if (seconds === null) return "–";
  return (seconds * 1000).toFixed(seconds < 0.01 ? 2 : 1) + " ms";
}

function renderStats(s) {
  let tps = null, approval = null, lat = s.latency;
  if (prev) {
    const dt = (Date.parse(s.time) - Date.parse(prev.time)) / 1000;
    const dTx = s.transactions - prev.transactions;
    if (dt > 0) tps = dTx / dt;
    if (dTx > 0) {
      approval = (s.approved - prev.approved) / dTx;
      lat = delta(s.latency, prev.latency);
    }
  }
  if (approval === null && s.transactions > 0) approval = s.approved / s.transactions;
  $("tps").textContent = tps === null ? "–" : tps.toFixed(1);
  $("approval").textContent = approval === null ? "–" : (approval * 100).toFixed(1) + " %";
  $("p50").textContent = ms(quantile(0.5, lat));
  $("p99").textContent = ms(quantile(0.99, lat));
  $("transactions").textContent = String(s.transactions);
  const declines = s.by_rc.filter((r) => r.rc !== "00").sort((a, b) => b.count - a.count);
  fill("declines", declines.map((r) => [r.rc, r.count]));
  $("declines-none").hidden = declines.length > 0;
  fill("listeners", s.connections.map((c) => [c.listener, c.open]));
  fill("terminals", s.terminals.map((t) => [t.terminal, t.connections, t.peers.join(", ")]));
  fill("networks", s.networks.map((n) => [n.network, n.connections]));
  const errs = $("errors");
  errs.replaceChildren();
  for (const e of s.recent_errors.slice().reverse()) {
    const li = document.createElement("li");
    li.textContent = e.line;
    errs.appendChild(li);
  }
  $("errors-none").hidden = s.recent_errors.length > 0;
  prev = s;
}

function renderGateways(g) {
  const links = g.gateways || [];
  $("gateways-none").hidden = links.length > 0;
  fill("gateways", links.map((l) => {
    const st = document.createElement("span");
    st.textContent = l.state;
    st.className = "state-" + l.state;
    return [l.name, st, l.connections, l.saf_queued, l.saf_dead];
  }));
}

function safButton(label, cls, e) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.className = cls;
  b.dataset.id = String(e.id);
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      const r = await api("/api/v1/saf/" + encodeURIComponent(e.id) + "/" + cls, "POST");
      $("saf-message").textContent = r.action + " " + r.gateway + " #" + r.id + (r.new_id ? " (queued again as #" + r.new_id + ")" : "");
    } catch (err) {
      if (err instanceof AuthError) { showLogin(err.message); return; }
      $("saf-message").textContent = cls + " #" + e.id + ": " + err.message;
    }
    poll();
  });
  return b;
}

function renderSAF(s) {
  const entries = s.entries || [];
  $("saf-none").hidden = entries.length > 0;
  fill("saf", entries.map((e) => {
    const actions = document.createElement("span");
    actions.append(safButton("retry", "retry", e), " ", safButton("drop", "drop", e));
    return [e.id, e.link, e.card, e.amount, e.rrn, e.reason, e.attempts, actions];
  }));
}

function renderDay(d) {
  const today = (d.days || []).find((x) => x.business_date === d.business_date);
  $("day").textContent = d.business_date + (today ? " " + today.state : "") +
    (d.last_closed ? " (closed up to " + d.last_closed + ")" : "");
}

async function poll() {
  try {
    const [stats, gateways, saf, day] = await Promise.all([
      api("/api/v1/stats"),
      api("/api/v1/gateways").catch((e) => { if (e instanceof AuthError) throw e; return { gateways: [] }; }),
      api("/api/v1/saf?dead=true&limit=100").catch((e) => { if (e instanceof AuthError) throw e; return { entries: [] }; }),
      api("/api/v1/day?days=1").catch((e) => { if (e instanceof AuthError) throw e; return null; }),
    ]);
    renderStats(stats);
    renderGateways(gateways);
    renderSAF(saf);
    if (day) renderDay(day); else $("day").textContent = stats.business_date;
    $("status").textContent = "updated " + new Date(stats.time).toLocaleTimeString();
  } catch (err) {
    if (err instanceof AuthError) { showLogin(err.message); return; }
    $("status").textContent = "cannot reach the switch: " + err.message;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(tokenKey, $("token").value);
    $("token").value = "";
    try {
      await api("/api/v1/status");
      showDashboard();
    } catch (err) {
      showLogin(err.message);
    }
  });
  $("logout").addEventListener("click", () => showLogin(""));
  if (sessionStorage.getItem(tokenKey)) showDashboard();
});
