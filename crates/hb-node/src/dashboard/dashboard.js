"use strict";
// Fetches ./stats (the only request the page makes) every 2 s and fills
// every element carrying data-field; draws the charts as SVG polylines.
function field(stats, path) {
  return path.split(".").reduce((v, k) => (v == null ? v : v[k]), stats);
}
function text(v) { return v == null ? "unknown" : String(v); }
function esc(v) {
  return text(v).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}
function chart(svg, points, series) {
  const w = 600, h = 140, n = points.length;
  let peak = 0;
  for (const p of points) for (const s of series) peak = Math.max(peak, s.value(p));
  const top = peak > 0 ? peak : 1;
  const x = (i) => (n > 1 ? (i * w) / (n - 1) : w);
  svg.innerHTML = series.map((s) => {
    const xy = points.map((p, i) => x(i).toFixed(1) + "," + (h - 4 - (s.value(p) / top) * (h - 8)).toFixed(1));
    return '<polyline class="' + s.cls + '" points="' + xy.join(" ") + '"></polyline>';
  }).join("");
  svg.setAttribute("data-points", String(n));
  return peak;
}
function render(stats) {
  for (const el of document.querySelectorAll("[data-field]")) {
    if (el.closest("#processes")) continue;
    const v = field(stats, el.getAttribute("data-field"));
    if (v !== undefined) el.textContent = text(v);
  }
  const points = stats.series.points;
  const perSec = (k) => (p) => (p[k] * 1000) / Math.max(p["length-ms"], 1);
  const tp = chart(document.getElementById("chart-throughput"), points, [
    { cls: "c1", value: perSec("requests") }, { cls: "c2", value: perSec("assigned") },
    { cls: "c3", value: perSec("computed") }, { cls: "c4", value: perSec("unavailable") },
  ]);
  const lat = chart(document.getElementById("chart-latency"), points, [
    { cls: "c1", value: (p) => p["schedule-p50-ms"] }, { cls: "c2", value: (p) => p["schedule-p99-ms"] },
    { cls: "c3", value: (p) => p["compute-p50-ms"] }, { cls: "c4", value: (p) => p["compute-p99-ms"] },
  ]);
  document.getElementById("throughput-peak").textContent = String(Math.round(tp));
  document.getElementById("latency-peak").textContent = String(lat);
  document.getElementById("processes").innerHTML = stats.processes.map((p) => {
    const e = p["last-error"];
    return '<tr data-pid="' + esc(p.process) + '"' + (p.lag > 0 ? ' class="behind"' : "") + ">" +
      '<td class="pid" data-field="process">' + esc(p.process) + "</td>" +
      '<td data-field="scheduled-slot">' + esc(p["scheduled-slot"]) + "</td>" +
      '<td data-field="computed-slot">' + esc(p["computed-slot"]) + "</td>" +
      '<td data-field="lag">' + esc(p.lag) + "</td>" +
      '<td data-field="worker">' + esc(p.worker) + "</td>" +
      '<td class="error" data-field="last-error">' + (e ? esc("slot " + e.slot + ": " + e.code + ": " + e.detail) : "") + "</td></tr>";
  }).join("");
  document.getElementById("status").textContent = "updated " + new Date().toISOString();
  document.body.setAttribute("data-loaded", "1");
}
async function refresh() {
  try {
    const res = await fetch("stats", { cache: "no-store" });
    if (!res.ok) throw new Error("stats answered " + res.status);
    render(await res.json());
  } catch (e) {
    document.getElementById("status").textContent = "cannot read stats: " + e.message;
  }
}
refresh();
setInterval(refresh, 2000);
