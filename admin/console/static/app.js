// Ferry console: the dashboard's live view, from the Server-Sent Events
// of /api/v1/stream (the session cookie goes with them). Nothing else
// needs JavaScript.
"use strict";

function human(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + units[i];
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function drawTransfers(list) {
  const body = document.querySelector("#transfers tbody");
  body.replaceChildren();
  if (list.length === 0) {
    const tr = document.createElement("tr");
    tr.className = "none";
    const td = cell(tr, "No transfer running.");
    td.colSpan = 7;
    body.appendChild(tr);
    return;
  }
  for (const s of list) {
    const t = s.transfer;
    const tr = document.createElement("tr");
    tr.dataset.session = s.id;
    cell(tr, String(s.id));
    cell(tr, s.user);
    cell(tr, t.direction);
    cell(tr, t.path, "path");
    const b = cell(tr, human(t.bytes), "bytes");
    b.dataset.bytes = t.bytes;
    cell(tr, human(t.rate) + "/s", "rate");
    const p = document.createElement("progress");
    p.setAttribute("aria-label", "transfer progress");
    if (t.size > 0) { // a download: its size is known
      p.max = t.size;
      p.value = Math.min(t.bytes, t.size);
    }
    const td = document.createElement("td");
    td.appendChild(p);
    tr.appendChild(td);
    body.appendChild(tr);
  }
}

function drawChart(points) {
  const w = 300, h = 80;
  let top = 1;
  for (const p of points) top = Math.max(top, p.up, p.down);
  const line = (key) => points.map((p, i) =>
    ((points.length < 2 ? 0 : i / (points.length - 1)) * w).toFixed(1) + "," + (h - (p[key] / top) * (h - 4)).toFixed(1)).join(" ");
  document.getElementById("chart-up").setAttribute("points", line("up"));
  document.getElementById("chart-down").setAttribute("points", line("down"));
  const last = points[points.length - 1];
  if (last) document.getElementById("chart-now").textContent = "now: " + human(last.up) + "/s in, " + human(last.down) + "/s out";
}

function live() {
  const es = new EventSource("/api/v1/stream");
  es.addEventListener("dashboard", (ev) => {
    const d = JSON.parse(ev.data);
    document.getElementById("stat-sessions").textContent = d.sessions;
    document.getElementById("stat-transfers").textContent = d.transfers.length;
    document.getElementById("stat-bans").textContent = d.bans;
    document.getElementById("stat-hooks").textContent = d.hook_queue;
    drawTransfers(d.transfers);
    drawChart(d.throughput);
    document.body.dataset.live = "1";
  });
}

if (document.body.dataset.page === "dashboard") live();
