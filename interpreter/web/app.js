// tideflow web UI: plain JavaScript, no libraries, no network but this server's API.
"use strict";
const $ = (sel) => document.querySelector(sel);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const token = () => localStorage.getItem("tideflow-token") || "";
let live = null; // the EventSource or timer of the current page

async function api(path, options = {}) {
  const headers = { "Content-Type": "application/json" };
  if (token()) headers.Authorization = "Bearer " + token();
  const resp = await fetch(path, { ...options, headers });
  if (resp.status === 401) $("#token-box").hidden = false;
  const body = await resp.json();
  if (!resp.ok) throw new Error(body.error ? `${body.error.type}: ${body.error.message}` : resp.statusText);
  return body;
}

function fmtTime(ts) { return ts ? new Date(ts * 1000).toISOString().replace("T", " ").slice(0, 19) : "-"; }
function fmtDur(s) { return s == null ? "-" : s < 1 ? `${Math.round(s * 1000)} ms` : s < 120 ? `${s.toFixed(1)} s` : `${(s / 60).toFixed(1)} min`; }

function stop() { if (live) { live.close ? live.close() : clearInterval(live); live = null; } }

async function route() {
  stop();
  const hash = location.hash || "#/";
  const main = $("#main");
  try {
    if (hash.startsWith("#/run/")) await runPage(main, decodeURIComponent(hash.slice(6)));
    else if (hash.startsWith("#/definitions")) await definitionsPage(main);
    else await runsPage(main);
  } catch (err) { main.innerHTML = `<p class="error">${esc(err.message)}</p>`; }
}

// ------------------------------------------------------------------ runs list
async function runsPage(main) {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  main.innerHTML = `<h2>Runs</h2>
    <form id="filters">status <select name="status"><option value="">any</option>
    ${["running", "completed", "failed", "cancelled", "terminated", "timed_out"].map((s) => `<option ${params.get("status") === s ? "selected" : ""}>${s}</option>`).join("")}</select>
    workflow <input name="workflow" value="${esc(params.get("workflow") || "")}"> <button>filter</button></form>
    <table id="runs"><thead><tr><th>run</th><th>status</th><th>workflow</th><th>started</th><th>duration</th></tr></thead><tbody></tbody></table>`;
  $("#filters").onsubmit = (e) => {
    e.preventDefault();
    const q = new URLSearchParams([...new FormData(e.target)].filter(([, v]) => v));
    location.hash = "#/?" + q;
  };
  const q = new URLSearchParams([...params].filter(([, v]) => v));
  async function refresh() {
    const data = await api("/runs?" + q);
    $("#runs tbody").innerHTML = data.runs.map((r) => `<tr data-run="${esc(r.run_id)}">
      <td><a href="#/run/${encodeURIComponent(r.run_id)}">${esc(r.run_id)}</a>${r.forked_from ? ` <span class="fork">fork of ${esc(r.forked_from.run)}</span>` : ""}</td>
      <td class="status-${esc(r.status)}">${esc(r.status)}</td><td>${esc(r.workflow)}</td>
      <td>${fmtTime(r.created_at)}</td><td>${fmtDur(r.duration)}</td></tr>`).join("");
  }
  await refresh();
  live = setInterval(() => refresh().catch(() => {}), 2000);
}

// ------------------------------------------------------------------ definitions
async function definitionsPage(main) {
  const data = await api("/definitions");
  main.innerHTML = `<h2>Pinned definitions</h2><table><tr><th>workflow</th><th>version</th><th>definition</th><th>runs</th><th>last started</th></tr>
    ${data.definitions.map((d) => `<tr><td>${esc(d.workflow)}</td><td>${esc(d.version ?? "-")}</td><td><code>${esc(d.definition_hash.slice(0, 12))}</code></td>
    <td><a href="#/?workflow=${encodeURIComponent(d.workflow)}">${d.runs}</a></td><td>${fmtTime(d.last_started)}</td></tr>`).join("")}</table>`;
}

// ------------------------------------------------------------------ run page
async function runPage(main, runId) {
  const id = encodeURIComponent(runId);
  const [info, graph] = await Promise.all([api(`/runs/${id}`), api(`/runs/${id}/graph`)]);
  main.innerHTML = `<h2>Run ${esc(runId)} <span id="status" class="status-${esc(info.status)}">${esc(info.status)}</span></h2>
    <p>workflow ${esc(info.workflow)} (version ${esc(info.version ?? "-")}) started ${fmtTime(info.created_at)}
    ${info.parent_id ? ` · parent <a href="#/run/${encodeURIComponent(info.parent_id)}">${esc(info.parent_id)}</a>` : ""}
    ${info.retried ? ` · retried ${info.retried} time${info.retried === 1 ? "" : "s"}` : ""}</p>
    <p id="children">${info.children.map((c) => `child <a href="#/run/${encodeURIComponent(c)}">${esc(c)}</a>`).join(" · ")}</p>
    <p id="forks">${info.forked_from ? `forked from <a href="#/run/${encodeURIComponent(info.forked_from.run)}">${esc(info.forked_from.run)}</a> at ${esc(info.forked_from.state)}` : ""}
    ${info.forks.map((f) => `fork <a href="#/run/${encodeURIComponent(f)}">${esc(f)}</a>`).join(" · ")}
    ${info.fork_count > info.forks.length ? ` and ${info.fork_count - info.forks.length} more` : ""}</p>
    <div id="actions"></div>
    <div class="panes"><div><h3>State machine</h3><div id="graph"></div></div>
    <div><h3>Input</h3><pre id="input"></pre><h3>Output</h3><pre id="output"></pre><h3>Error</h3><pre id="error"></pre></div></div>
    <h3>Timeline</h3><div id="timeline" class="timeline"></div>
    <h3>History</h3><table id="history"><tbody></tbody></table>`;
  const events = [];
  const draw = (current, status) => {
    renderGraph($("#graph"), graph.graph, events, current, status);
    renderTimeline($("#timeline"), events);
  };
  const show = (info) => {
    $("#status").textContent = info.status;
    $("#status").className = "status-" + info.status;
    $("#input").textContent = JSON.stringify(info.input, null, 2);
    $("#output").textContent = JSON.stringify(info.output, null, 2);
    $("#error").textContent = info.error ? JSON.stringify(info.error, null, 2) : "";
    renderActions($("#actions"), runId, info, graph);
    draw(info.current.map((c) => c.state), info.status);
  };
  show(info);
  const tbody = $("#history tbody");
  let pending = [];
  let scheduled = false;
  const flush = async () => {
    scheduled = false;
    const rows = pending.map((e) => `<tr><td>${e.seq}</td><td>${fmtTime(e.time)}</td><td>${esc(e.type)}</td><td>${esc(e.state ?? "")}</td><td>${esc(e.attempt ?? "")}</td></tr>`);
    pending = [];
    tbody.insertAdjacentHTML("beforeend", rows.join(""));
    show(await api(`/runs/${id}`));
  };
  const source = new EventSource(`/runs/${id}/history?follow=1` + (token() ? `&token=${encodeURIComponent(token())}` : ""));
  source.addEventListener("history", (m) => {
    const e = JSON.parse(m.data);
    events.push(e);
    pending.push(e);
    if (!scheduled) { scheduled = true; setTimeout(flush, 50); }
  });
  source.addEventListener("end", () => { source.close(); setTimeout(flush, 60); document.body.dataset.historyEnded = "1"; });
  live = source;
}

function renderActions(box, runId, info, graph) {
  const id = encodeURIComponent(runId);
  if (box.dataset.status === info.status) return;
  box.dataset.status = info.status;
  const running = info.status === "running";
  box.innerHTML = `<div id="queries"></div><div id="signals"></div>
    ${running ? `<button id="cancel">cancel</button><button id="terminate">terminate</button>` : ""}
    ${!running && graph.retry ? `<button id="retry">retry</button>` : ""} <span id="action-result"></span>`;
  const result = (text) => { $("#action-result").textContent = text; };
  const act = (btn, what, path, body) => btn && (btn.onclick = async () => {
    if (!confirm(`${what} run ${runId}?`)) return;
    try { await api(path, { method: "POST", body: JSON.stringify(body || {}) }); result(`${what}: sent`); } catch (err) { result(err.message); }
  });
  act($("#cancel"), "cancel", `/runs/${id}/cancel`);
  act($("#terminate"), "terminate", `/runs/${id}/terminate`, { reason: "terminated from the web UI" });
  act($("#retry"), "retry", `/runs/${id}/retry`);
  const defn = graph.workflow || {};
  for (const name of defn.queries || []) {
    const b = document.createElement("button");
    b.textContent = `query ${name}`;
    b.onclick = async () => {
      try { result(JSON.stringify((await api(`/runs/${id}/query`, { method: "POST", body: JSON.stringify({ name }) })).value)); } catch (err) { result(err.message); }
    };
    $("#queries").appendChild(b);
  }
  if (!running) return;
  for (const [name, decl] of Object.entries(defn.signals || {})) $("#signals").appendChild(signalForm(runId, name, (decl && decl.schema) || {}, result));
}

// A form from the signal's JSON Schema: one field per property (checkbox, number or text),
// or a JSON text area when the schema is not a flat object.
function signalForm(runId, name, schema, result) {
  const form = document.createElement("form");
  form.className = "signal";
  form.dataset.signal = name;
  const props = schema.type === "object" && schema.properties ? schema.properties : null;
  form.innerHTML = `<strong>signal ${esc(name)}</strong> ` + (props
    ? Object.entries(props).map(([k, p]) => `<label>${esc(k)} ${p.type === "boolean" ? `<input type="checkbox" name="${esc(k)}">` : `<input name="${esc(k)}" data-type="${esc(p.type || "string")}">`}</label>`).join(" ")
    : `<textarea name="__json" rows="2" cols="40">null</textarea>`) + ` <button>send</button>`;
  form.onsubmit = async (e) => {
    e.preventDefault();
    let payload;
    try {
      if (props) {
        payload = {};
        for (const [k, p] of Object.entries(props)) {
          const input = form.elements[k];
          if (p.type === "boolean") payload[k] = input.checked;
          else if (input.value !== "") payload[k] = p.type === "number" || p.type === "integer" ? Number(input.value) : input.value;
        }
      } else payload = JSON.parse(form.elements.__json.value);
    } catch (err) { result("not JSON: " + err.message); return; }
    if (!confirm(`send signal ${name} to run ${runId}?`)) return;
    try {
      await api(`/runs/${encodeURIComponent(runId)}/signal`, { method: "POST", body: JSON.stringify({ name, payload }) });
      result(`signal ${name}: sent`);
    } catch (err) { result(err.message); }
  };
  return form;
}

// ------------------------------------------------------------------ graph (dsl/graph.py's description)
function allNodes(cluster, out = []) { out.push(...cluster.nodes); cluster.clusters.forEach((c) => allNodes(c, out)); return out; }

function renderGraph(box, diagram, events, current, status) {
  const nodes = allNodes(diagram.root);
  const byId = Object.fromEntries(nodes.map((n) => [n.id, n]));
  // Layers by longest path from the start markers along forward edges (BFS, each node once).
  const layer = {};
  const out = {};
  diagram.edges.forEach((e) => (out[e.source] ||= []).push(e.target));
  const queue = nodes.filter((n) => n.kind === "start").map((n) => n.id);
  queue.forEach((id) => (layer[id] = 0));
  for (let i = 0; i < queue.length; i++) {
    for (const t of out[queue[i]] || []) if (!(t in layer)) { layer[t] = layer[queue[i]] + 1; queue.push(t); }
  }
  nodes.forEach((n) => { if (!(n.id in layer)) layer[n.id] = 0; });
  const rows = {};
  nodes.forEach((n) => (rows[layer[n.id]] ||= []).push(n));
  const W = 150, H = 34, GX = 20, GY = 30, pos = {};
  Object.entries(rows).forEach(([l, row]) => row.forEach((n, i) => (pos[n.id] = { x: 10 + i * (W + GX), y: 10 + Number(l) * (H + GY) })));
  const visited = new Set(events.filter((e) => e.type === "StateEntered").map((e) => e.state));
  // A run that completed reached its machine's end marker (succeed states record no event).
  const root = new Set(diagram.root.nodes.map((n) => n.id));
  const path = events.filter((e) => e.type === "StateEntered").map((e) => e.state);
  const taken = new Set(path.slice(1).map((s, i) => path[i] + "\u2192" + s));
  const name = (n) => (n.kind === "start" || n.kind === "end" ? null : n.label[0]);
  const width = Math.max(...Object.values(pos).map((p) => p.x)) + W + 20;
  const height = Math.max(...Object.values(pos).map((p) => p.y)) + H + 20;
  const edges = diagram.edges.map((e) => {
    const a = pos[e.source], b = pos[e.target];
    if (!a || !b) return "";
    const cls = taken.has(name(byId[e.source]) + "\u2192" + name(byId[e.target])) ? "edge taken" : "edge";
    return `<path class="${cls}" d="M${a.x + W / 2},${a.y + H} L${b.x + W / 2},${b.y}"><title>${esc(e.label)}</title></path>`;
  }).join("");
  const cur = new Set(current);
  const shapes = nodes.map((n) => {
    const p = pos[n.id], s = name(n);
    const ended = n.kind === "end" && status === "completed" && root.has(n.id);
    const cls = ["node", (s && visited.has(s)) || ended ? "visited" : "", s && cur.has(s) ? "current" : ""].join(" ");
    return `<g class="${cls}" data-state="${esc(s ?? n.kind)}"><rect x="${p.x}" y="${p.y}" width="${W}" height="${H}" rx="${n.kind === "start" || n.kind === "end" ? 16 : 4}"></rect>
      <text x="${p.x + 6}" y="${p.y + 21}">${esc(n.label[0]).slice(0, 22)}</text><title>${esc(n.label.join("\n"))}</title></g>`;
  }).join("");
  box.innerHTML = `<svg width="${width}" height="${height}" xmlns="http://www.w3.org/2000/svg">
    <defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#999"/></marker></defs>${edges}${shapes}</svg>`;
}

// ------------------------------------------------------------------ timeline
function renderTimeline(box, events) {
  if (!events.length) { box.innerHTML = ""; return; }
  const t0 = events[0].time, t1 = Math.max(events[events.length - 1].time, t0 + 0.001);
  const scale = 600 / (t1 - t0);
  const bars = [];
  const open = {};
  for (const e of events) {
    const key = `${e.state}#${e.attempt}`;
    if (e.type === "ActivityScheduled" || e.type === "TimerStarted") open[key + e.type[0]] = e;
    const done = { ActivityCompleted: "", ActivityFailed: "failed", ActivityTimedOut: "failed", TimerFired: "timer" }[e.type];
    if (done !== undefined) {
      const start = open[key + (e.type === "TimerFired" ? "T" : "A")] || e;
      bars.push({ label: e.type === "TimerFired" ? `timer ${e.state}` : `${e.state} attempt ${e.attempt}`, cls: done, from: start.time, to: e.time });
    }
    if (e.type === "SignalReceived") bars.push({ label: `signal ${(e.payload && e.payload.name) || ""}`, cls: "signal", from: e.time, to: e.time });
  }
  box.innerHTML = bars.slice(0, 2000).map((b) => `<div class="bar ${b.cls}" style="margin-left:${Math.round((b.from - t0) * scale)}px;width:${Math.max(3, Math.round((b.to - b.from) * scale))}px">${esc(b.label)} ${fmtDur(b.to - b.from)}</div>`).join("");
}

$("#token-save").onclick = () => { localStorage.setItem("tideflow-token", $("#token").value); $("#token-box").hidden = true; route(); };
window.addEventListener("hashchange", route);
route();
