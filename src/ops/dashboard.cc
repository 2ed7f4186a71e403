#include "ops/dashboard.h"

namespace lb::ops {

namespace {

// Plain JS, no libraries: the page must work offline, behind a proxy, and under a strict
// Content-Security-Policy of the same origin.
constexpr std::string_view kHtml = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lifeboat</title>
<link rel="icon" href="data:,">
<style>
body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; background: #fafafa; }
h1 { font-size: 1.4em; margin: 0 0 .2em 0; }
h2 { font-size: 1.1em; margin: 1.4em 0 .5em 0; }
.sub { color: #666; margin-bottom: 1em; }
.state { display: inline-block; padding: .1em .6em; border-radius: .3em; font-weight: 600; color: #fff; }
.OK { background: #2e7d32; } .WARNING { background: #ef6c00; } .VIOLATED { background: #c62828; }
.NOT_MEASURED { background: #777; }
.grid { display: flex; flex-wrap: wrap; gap: 1em; }
.card { background: #fff; border: 1px solid #ddd; border-radius: .4em; padding: .8em; }
.card h3 { font-size: 1em; margin: 0 0 .4em 0; }
table { border-collapse: collapse; background: #fff; }
td, th { border: 1px solid #ddd; padding: .25em .6em; text-align: left; font-size: 13px; }
th { background: #f0f0f0; }
svg text { font: 11px system-ui, sans-serif; fill: #444; }
.err { color: #c62828; }
</style>
</head>
<body>
<h1>lifeboat <span id="overall" class="state">…</span></h1>
<div class="sub" id="sub">loading…</div>
<h2>Recovery point objectives</h2>
<div class="grid" id="objectives"></div>
<h2>Jobs</h2>
<table id="jobs"><thead><tr><th>job</th><th>kind</th><th>schedule</th><th>last run (UTC)</th>
<th>result</th><th>duration</th><th>next run (UTC)</th><th>runs</th><th>failures</th></tr></thead>
<tbody></tbody></table>
<h2>Backup durations and sizes</h2>
<div class="grid" id="plots"></div>
<h2>Recent failures</h2>
<table id="failures"><thead><tr><th>started (UTC)</th><th>job</th><th>attempt</th><th>result</th>
<th>error</th></tr></thead><tbody></tbody></table>
<div id="errors" class="err"></div>
<script>
"use strict";
const SVGNS = "http://www.w3.org/2000/svg";
const exposureSeries = {};  // objective -> [[unix, seconds]] sampled while the page is open

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const k in (attrs || {})) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
function sv(tag, attrs, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const k in (attrs || {})) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
function human(n) {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(Math.round(n))) + " " + u[i];
}
function secs(s) {
  if (s === null || s === undefined) return "–";
  if (s < 1) return s.toFixed(2) + " s";
  if (s < 120) return s.toFixed(s < 10 ? 1 : 0) + " s";
  if (s < 7200) return (s / 60).toFixed(1) + " min";
  return (s / 3600).toFixed(1) + " h";
}
function clock(t) { return new Date(t * 1000).toISOString().substring(11, 19); }

// A line plot of [x, y] points (x unix seconds) with optional horizontal reference lines.
function plot(title, points, yfmt, refs) {
  const W = 420, H = 170, L = 62, R = 10, T = 22, B = 26;
  const s = sv("svg", {width: W, height: H, viewBox: "0 0 " + W + " " + H, class: "plot",
                       "data-points": points.length, role: "img"});
  s.appendChild(sv("title", {}, title));
  s.appendChild(sv("text", {x: L, y: 14, "font-weight": "600"}, title));
  s.appendChild(sv("rect", {x: L, y: T, width: W - L - R, height: H - T - B, fill: "#fff",
                            stroke: "#ccc"}));
  if (points.length === 0) {
    s.appendChild(sv("text", {x: L + 10, y: T + 30}, "no data yet"));
    return s;
  }
  const xs = points.map(p => p[0]), ys = points.map(p => p[1]);
  let x0 = Math.min(...xs), x1 = Math.max(...xs);
  if (x1 === x0) { x0 -= 30; x1 += 30; }
  let y1 = Math.max(...ys, ...(refs || []).map(r => r.value)) * 1.1;
  if (!(y1 > 0)) y1 = 1;
  const px = x => L + (x - x0) / (x1 - x0) * (W - L - R);
  const py = y => H - B - y / y1 * (H - T - B);
  for (let i = 0; i <= 4; i++) {
    const v = y1 * i / 4;
    s.appendChild(sv("line", {x1: L, x2: W - R, y1: py(v), y2: py(v), stroke: "#eee"}));
    s.appendChild(sv("text", {x: L - 4, y: py(v) + 4, "text-anchor": "end"}, yfmt(v)));
  }
  s.appendChild(sv("text", {x: L, y: H - 8}, clock(x0)));
  s.appendChild(sv("text", {x: W - R, y: H - 8, "text-anchor": "end"}, clock(x1)));
  for (const r of (refs || [])) {
    s.appendChild(sv("line", {x1: L, x2: W - R, y1: py(r.value), y2: py(r.value),
                              stroke: r.color, "stroke-dasharray": "5,3"}));
    s.appendChild(sv("text", {x: W - R - 2, y: py(r.value) - 3, "text-anchor": "end",
                              fill: r.color}, r.label));
  }
  s.appendChild(sv("polyline", {fill: "none", stroke: "#1565c0", "stroke-width": 1.5,
      points: points.map(p => px(p[0]).toFixed(1) + "," + py(p[1]).toFixed(1)).join(" ")}));
  for (const p of points)
    s.appendChild(sv("circle", {cx: px(p[0]), cy: py(p[1]), r: 2.5,
                                fill: p[2] === false ? "#c62828" : "#1565c0"}));
  return s;
}

function fill(tbody, rows) {
  tbody.textContent = "";
  for (const r of rows) {
    const tr = el("tr");
    for (const c of r) tr.appendChild(c instanceof Element ? wrap(c) : el("td", {}, c));
    tbody.appendChild(tr);
  }
}
function wrap(node) { const td = el("td"); td.appendChild(node); return td; }

function render(status, history) {
  const overall = document.getElementById("overall");
  overall.textContent = status.state;
  overall.className = "state " + status.state;
  document.getElementById("sub").textContent =
      "plan " + status.plan + " — " + status.now + " — refreshed every 10 s";
  const objectives = document.getElementById("objectives");
  objectives.textContent = "";
  for (const o of status.objectives) {
    if (o.rpo_seconds === null) continue;
    const series = exposureSeries[o.name] = exposureSeries[o.name] || [];
    if (o.exposure_seconds !== null) series.push([status.now_unix, o.exposure_seconds]);
    while (series.length > 720) series.shift();
    const card = el("div", {class: "card"});
    const h = el("h3", {}, o.name + " ");
    h.appendChild(el("span", {class: "state " + o.state}, o.state));
    card.appendChild(h);
    card.appendChild(el("div", {}, "exposure " + (o.exposure_seconds === null ? "unbounded (no backup)"
        : secs(o.exposure_seconds)) + " of RPO " + secs(o.rpo_seconds) + " (worst source: " +
        o.worst_source + ")"));
    card.appendChild(plot("RPO exposure (s)", series, v => v.toFixed(0),
        [{value: o.rpo_seconds, color: "#c62828", label: "RPO"},
         {value: o.rpo_seconds * 0.8, color: "#ef6c00", label: "80%"}]));
    objectives.appendChild(card);
  }
  const jobsBody = document.querySelector("#jobs tbody");
  fill(jobsBody, status.jobs.map(j => [j.name, j.kind, j.schedule,
      j.last_run ? j.last_run.started.substring(0, 19) : "–",
      j.running ? "running" : (j.last_run ? j.last_run.result : "–"),
      j.last_run ? secs(j.last_run.duration_seconds) : "–",
      j.next_run ? j.next_run.substring(0, 19) : "–", String(j.runs), String(j.failures)]));
  const plots = document.getElementById("plots");
  plots.textContent = "";
  const byJob = {};
  for (const r of history) (byJob[r.job] = byJob[r.job] || []).push(r);
  for (const j of status.jobs) {
    const runs = (byJob[j.name] || []).filter(r => r.result !== "running");
    const card = el("div", {class: "card", "data-job": j.name});
    card.appendChild(el("h3", {}, j.name + " (" + j.kind + ")"));
    card.appendChild(plot("duration", runs.map(r => [r.started, r.duration_seconds,
                                                     r.result === "ok"]), v => secs(v)));
    card.appendChild(plot("size backed up", runs.filter(r => r.result === "ok")
                                                .map(r => [r.started, r.bytes]), v => human(v)));
    plots.appendChild(card);
  }
  fill(document.querySelector("#failures tbody"), status.failures.map(f => [
      f.started.substring(0, 19), f.job, String(f.attempt), f.result, f.error]));
  document.getElementById("errors").textContent = status.errors.join("; ");
}

async function refresh() {
  try {
    const [s, h] = await Promise.all([fetch("status"), fetch("history?limit=2000")]);
    if (!s.ok || !h.ok) throw new Error("HTTP " + s.status + "/" + h.status);
    render(await s.json(), await h.json());
  } catch (e) {
    document.getElementById("errors").textContent = "cannot read the daemon: " + e.message;
  }
}
refresh();
setInterval(refresh, 10000);
</script>
</body>
</html>
)html";

}  // namespace

std::string_view DashboardHtml() { return kHtml; }

}  // namespace lb::ops
