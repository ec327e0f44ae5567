// Overseer on-call console: vanilla JS over /api/v1, polling every 2 s.
// The token lives in sessionStorage (gone when the tab closes) and is sent as a Bearer header.
"use strict";

const POLL_MS = 2000;
const state = { token: sessionStorage.getItem("overseer-token"), signedIn: false, selected: null, timer: null };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
}

async function api(path, options = {}) {
  const headers = { "Content-Type": "application/json" };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  const resp = await fetch(path, { ...options, headers });
  let body = {};
  try { body = await resp.json(); } catch (e) { body = {}; }
  if (!resp.ok) {
    const err = new Error(body.error || `${resp.status} ${resp.statusText}`);
    err.status = resp.status;
    throw err;
  }
  return body;
}

function age(seconds) {
  if (seconds < 60) return `${Math.floor(seconds)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86400)}d`;
}

// only http(s) links from rule files become clickable (never javascript: or data: URLs)
function safeUrl(url) { return typeof url === "string" && /^https?:\/\//i.test(url); }

function when(ts) { return ts ? new Date(ts).toISOString().replace("T", " ").slice(0, 19) + "Z" : ""; }

// -- sign in -------------------------------------------------------------------------------
async function signIn(token) {
  state.token = token || null;
  try {
    const me = await api("/api/v1/whoami");
    if (token) sessionStorage.setItem("overseer-token", token); else sessionStorage.removeItem("overseer-token");
    state.signedIn = true;
    $("who").textContent = `${me.name} (${me.role})`;
    $("login").hidden = true;
    $("main").hidden = false;
    $("login-error").textContent = "";
    await refresh();
    state.timer = setInterval(refresh, POLL_MS);
  } catch (e) {
    state.token = null;
    $("login-error").textContent = `sign-in failed: ${e.message}`;
  }
}

function signOut() {
  clearInterval(state.timer);
  sessionStorage.removeItem("overseer-token");
  Object.assign(state, { token: null, signedIn: false, selected: null });
  $("main").hidden = true;
  $("login").hidden = false;
  $("who").textContent = "not signed in";
}

// -- alerts --------------------------------------------------------------------------------
function renderAlerts(alerts) {
  const body = $("alerts").querySelector("tbody");
  body.replaceChildren();
  for (const a of alerts) {
    const flags = [];
    if (a.protected) flags.push(el("span", { class: "flag", title: "never silenced or inhibited" }, "safety"));
    if (a.silenced_by) flags.push(el("span", { class: "flag" }, "silenced"));
    if (a.inhibited_by) flags.push(el("span", { class: "flag", title: a.inhibited_by }, "inhibited"));
    const row = el("tr", { class: "alert-row" + (a.alert_id === state.selected ? " selected" : ""),
                           "data-testid": "alert-row", "data-alert-id": a.alert_id, "data-state": a.state,
                           "data-rule-id": a.rule_id, "data-scope": `${a.scope.kind}=${a.scope.value}`,
                           onclick: () => select(a.alert_id) },
      el("td", {}, el("span", { class: `sev sev-${a.severity}` }, a.severity)),
      el("td", {}, a.title, ...flags),
      el("td", {}, `${a.scope.kind}=${a.scope.value}`),
      el("td", { class: `state-${a.state}`, "data-testid": "alert-state" }, a.state +
         (a.acknowledged_by && a.state === "acknowledged" ? ` by ${a.acknowledged_by}` : "")),
      el("td", {}, age(a.age_s)),
      el("td", {}, String(a.count)),
      el("td", {}, el("button", { "data-testid": "open-alert", onclick: (ev) => { ev.stopPropagation(); select(a.alert_id); } }, "open")));
    body.append(row);
  }
  $("alert-count").textContent = `(${alerts.length})`;
}

async function select(alertId) {
  state.selected = alertId;
  $("action-result").textContent = "";
  await renderDetail();
}

async function renderDetail() {
  if (!state.selected) { $("detail").hidden = true; return; }
  const d = await api(`/api/v1/alerts/${encodeURIComponent(state.selected)}`);
  const a = d.alert;
  $("detail").hidden = false;
  $("detail-title").textContent = `${a.title} — ${a.scope.kind}=${a.scope.value}`;
  $("detail-meta").replaceChildren(
    el("span", { class: `sev sev-${a.severity}` }, a.severity), " ",
    el("span", { class: `state-${a.state}`, "data-testid": "detail-state" }, a.state), " · ",
    `${a.count} detection(s) · first ${when(a.first_seen)} · last ${when(a.last_seen)} · ${a.summary}`,
    a.acknowledged_by ? ` · acknowledged by ${a.acknowledged_by}` : "",
    safeUrl(a.runbook_url) ? el("span", {}, " · ", el("a", { href: a.runbook_url, target: "_blank", rel: "noopener" },
      "runbook")) : "");
  $("ack").disabled = a.state !== "firing";
  $("resolve").disabled = a.state === "resolved";
  $("silence").disabled = a.protected || a.state === "resolved";
  const r = d.rule;
  $("rule").textContent = r ? `${r.id} (${r.kind}, ${r.source})\n${r.description || r.title || ""}\n` +
    (r.condition ? `condition: ${r.condition}` : JSON.stringify(r, null, 1)) : `${a.rule_id} (not loaded on this worker)`;
  $("timeline").replaceChildren(...d.timeline.map((t) => el("li", { "data-testid": "timeline-item" },
    el("span", { class: "tl-kind" }, t.kind), `${when(t.ts)} ${t.text}`)));
  $("events").querySelector("tbody").replaceChildren(...d.events.map((e) => el("tr", { "data-testid": "event-row" },
    el("td", {}, when(e.ts)), el("td", {}, e.event_type), el("td", {}, e.agent_run_id),
    el("td", {}, e.tool_name || e.operation), el("td", {}, e.action_category),
    el("td", {}, e.resource || e.dest_host), el("td", {}, e.egress_bytes == null ? "" : String(e.egress_bytes)))));
}

async function act(path, body) {
  $("action-result").textContent = "…";
  try {
    const r = await api(path, { method: "POST", body: JSON.stringify(body) });
    $("action-result").textContent = r.status || "done";
    await refresh();
  } catch (e) {
    $("action-result").textContent = `refused: ${e.message}`;
  }
}

// -- kill-switch board -----------------------------------------------------------------------
function renderBoard(board) {
  const body = $("board").querySelector("tbody");
  body.replaceChildren(...board.active.map((k) => {
    const reason = el("input", { placeholder: "reason (audited)", "data-testid": "release-reason", size: 24 });
    const result = el("span", { "data-testid": "release-result" });
    const button = el("button", { "data-testid": "release", onclick: async () => {
      result.textContent = "…";
      try {
        const r = await api("/api/v1/killswitch/release", { method: "POST",
          body: JSON.stringify({ scope: k.scope, reason: reason.value, mode: k.mode }) });
        result.textContent = r.status;
        await refresh();
      } catch (e) { result.textContent = `refused: ${e.message}`; }
    } }, "Release");
    return el("tr", { "data-testid": "board-row", "data-scope": k.scope },
      el("td", {}, k.scope), el("td", {}, k.action), el("td", {}, k.mode),
      el("td", {}, k.operators.length ? k.operators.join(" + ") : k.issuer), el("td", {}, k.reason),
      el("td", {}, `${when(k.lease_expires_at)} (${age(Math.max(0, k.remaining_s))} left)`),
      el("td", {}, reason, button, result));
  }));
  $("release-requests").replaceChildren(...board.release_requests.map((r) => el("p", {},
    `fleet release requested by ${r.requested_by}: ${r.reason} (needs a second operator; expires ${when(r.expires_at)}) `,
    el("button", { onclick: () => api(`/api/v1/killswitch/release-requests/${r.request_id}/approve`,
      { method: "POST", body: "{}" }).then(refresh, (e) => { $("error").textContent = e.message; }) }, "Approve"))));
}

// -- polling ---------------------------------------------------------------------------------
async function refresh() {
  if (!state.signedIn) return;
  const states = $("show-resolved").checked ? "" : "?state=firing,acknowledged";
  try {
    const [alerts, board] = await Promise.all([api(`/api/v1/alerts${states}`), api("/api/v1/killswitch")]);
    renderAlerts(alerts.alerts);
    renderBoard(board);
    if (state.selected) await renderDetail();
    $("error").textContent = "";
    $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    $("error").textContent = `update failed: ${e.message}`;
    if (e.status === 401) signOut();
  }
}

$("login-form").addEventListener("submit", (ev) => { ev.preventDefault(); signIn($("token").value.trim()); });
$("no-token").addEventListener("click", () => signIn(""));
$("logout").addEventListener("click", signOut);
$("show-resolved").addEventListener("change", refresh);
$("ack").addEventListener("click", () => act(`/api/v1/alerts/${state.selected}/ack`, { reason: $("detail-reason").value }));
$("resolve").addEventListener("click", () => act(`/api/v1/alerts/${state.selected}/resolve`, { reason: $("detail-reason").value }));
$("silence").addEventListener("click", () => act(`/api/v1/alerts/${state.selected}/silence`,
  { owner: $("who").textContent.split(" ")[0], reason: $("detail-reason").value, duration: $("silence-duration").value }));
if (state.token) signIn(state.token);
