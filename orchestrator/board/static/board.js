// irm's live board: every snapshot the server pushes (server-sent events) is drawn with DOM calls and
// textContent only: no text from the journal, the inventory or an alert is ever parsed as markup.
"use strict";

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

function row(cells) {
  const tr = el("tr");
  for (const c of cells) {
    if (c instanceof Node) { const td = el("td"); td.appendChild(c); tr.appendChild(td); }
    else tr.appendChild(el("td", c));
  }
  return tr;
}

function time(iso) {
  return iso ? String(iso).replace("T", " ").slice(0, 19) : "";
}

function drawIncident(s) {
  const p = document.getElementById("incident");
  if (s.error) { p.textContent = "the journal cannot be read: " + s.error; return; }
  if (!s.incident) { p.textContent = "no incident yet (journal " + s.journal + ")"; return; }
  const i = s.incident;
  const others = (s.open_incidents || []).filter(o => o.id !== i.id).map(o => "#" + o.id + " " + o.worm);
  p.textContent = "incident " + i.id + " (" + i.status + "): " + i.worm + ", vectors " + i.vectors.join(", ") +
    ", opened " + time(i.opened_at) + " by " + i.opened_by +
    (others.length ? "; also open: " + others.join(", ") : "") +
    (s.watch ? "; irm watch under policy " + s.watch.policy + (s.watch.paused ? " (paused)" : "") : "");
}

function drawMap(s) {
  const postures = {};
  for (const a of s.areas || []) {
    postures[a.name] = a.posture;
    for (const g of a.segments) postures[g.scope] = g.shown;
  }
  for (const rect of document.querySelectorAll("#map rect[data-scope]")) {
    const p = postures[rect.getAttribute("data-scope")];
    rect.setAttribute("class", p ? "posture-" + p : "");
  }
  const body = clear(document.querySelector("#areas tbody"));
  for (const a of s.areas || []) {
    const posture = el("td", a.posture.replace("_", " "), "posture-" + a.posture);
    const tr = row([a.name]);
    tr.appendChild(posture);
    const last = a.last_change ? a.last_change.stage + " " + a.last_change.state + " at " + time(a.last_change.at) : "";
    const running = a.running.map(r => r.phase + " " + r.name + " running since " + time(r.started_at)).join("; ");
    for (const c of [a.vectors_blocked ? "blocked" : "open", a.mobile_blocked ? "blocked" : "connected",
                     running || last]) tr.appendChild(el("td", c));
    tr.setAttribute("data-area", a.name);
    tr.setAttribute("data-posture", a.posture);
    body.appendChild(tr);
  }
}

function drawRunning(s) {
  const box = clear(document.getElementById("running"));
  const runs = s.running || [];
  if (!runs.length) { box.appendChild(el("p", "no irm command is running", "muted")); return; }
  for (const r of runs) {
    const div = el("div", null, "run");
    div.appendChild(el("p", r.command + (r.stage ? ": " + r.stage : ": between stages")));
    if (r.summary) div.appendChild(el("p", r.summary, "muted"));
    if (r.task) div.appendChild(el("p", "task: " + r.task, "muted"));
    const counts = Object.entries(r.counts || {}).map(([k, v]) => v + " " + k).join(", ");
    if (counts) div.appendChild(el("p", counts));
    const hosts = el("div");
    for (const h of r.hosts) {
      const span = el("span", h.host + " " + h.status, "host " + h.status);
      span.setAttribute("data-host", h.host);
      hosts.appendChild(span);
    }
    div.appendChild(hosts);
    for (const e of r.ended || []) div.appendChild(el("p", time(e.t) + " " + e.label + (e.ok ? " done" : " FAILED"), "muted"));
    box.appendChild(div);
  }
}

function drawDecisions(s) {
  const ul = clear(document.getElementById("decisions"));
  const items = s.decisions || [];
  if (!items.length) { ul.appendChild(el("li", "nothing waits", "muted")); return; }
  for (const d of items) ul.appendChild(el("li", (d.area ? d.area + ": " : "") + d.text, d.kind));
}

function drawDetections(s) {
  const body = clear(document.querySelector("#detections tbody"));
  const det = s.detections || { series: {}, now: {} };
  const scopes = new Set([...Object.keys(det.now || {}), ...Object.keys(det.series || {})]);
  for (const scope of [...scopes].sort()) {
    const points = (det.series || {})[scope] || [];
    const now = (det.now || {})[scope] || 0;
    if (!points.length && !now) continue;
    const bars = el("span", null, "bars");
    const max = Math.max(1, ...points.map(p => p[1]));
    for (const [at, n] of points.slice(-60)) {
      const bar = el("span", null, "bar");
      bar.style.height = Math.max(2, Math.round(24 * n / max)) + "px";
      bar.title = time(at) + ": " + n;
      bars.appendChild(bar);
    }
    body.appendChild(row([scope, String(now), bars]));
  }
  if (!body.firstChild) body.appendChild(row(["no detection", "", ""]));
}

function drawNotifications(s) {
  const ul = clear(document.getElementById("notifications"));
  const items = s.notifications || [];
  if (!items.length) { ul.appendChild(el("li", "none yet", "muted")); return; }
  for (const n of items.slice().reverse()) {
    ul.appendChild(el("li", time(n.time) + " " + n.channel + (n.ok ? " to " + n.recipients + " recipient(s): "
      + n.subject : " FAILED: " + n.error), n.ok ? "" : "failed"));
  }
}

function drawTimeline(s) {
  const body = clear(document.querySelector("#timeline tbody"));
  for (const e of (s.timeline || []).slice().reverse()) {
    const tr = row([time(e.time), e.area, e.text, e.operator]);
    tr.setAttribute("data-kind", e.kind);
    tr.setAttribute("data-id", String(e.id));
    body.appendChild(tr);
  }
  document.getElementById("report").hidden = !s.report;
}

function draw(s) {
  for (const f of [drawIncident, drawMap, drawRunning, drawDecisions, drawDetections, drawNotifications, drawTimeline]) {
    try { f(s); } catch (err) { console.error(f.name, err); }
  }
  const link = document.getElementById("link");
  link.textContent = "live: updated " + time(s.generated_at) + " UTC";
  link.className = "muted";
  document.body.setAttribute("data-generated", s.generated_at || "");
}

function connect() {
  const source = new EventSource("/events");
  source.addEventListener("snapshot", ev => draw(JSON.parse(ev.data)));
  source.onerror = () => {
    const link = document.getElementById("link");
    link.textContent = "connection lost: reconnecting...";
    link.className = "down";
  };
}

document.addEventListener("DOMContentLoaded", connect);
