// Laneway analytics page: reads GET /api/v1/tenants/<tenant>/analytics with the operator key
// (the dashboard's sessionStorage sign-in, or this page's own) and draws it with Chart.js (vendored, no CDN).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const store = window.sessionStorage;
  const charts = {};
  let session = null;

  function loadSession() {
    try {
      const raw = JSON.parse(store.getItem("laneway.session") || "null");
      if (raw && raw.tenant && raw.key) session = raw;
    } catch (e) { session = null; }
  }

  function iso(d) { return d.toISOString().slice(0, 10); }

  function pct(x) { return x === null || x === undefined ? "–" : (100 * x).toFixed(0) + " %"; }

  function duration(s) {
    if (s === null || s === undefined) return "–";
    return s < 120 ? Math.round(s) + " s" : (s / 60).toFixed(1) + " min";
  }

  async function fetchAnalytics() {
    const url = "/api/v1/tenants/" + encodeURIComponent(session.tenant) + "/analytics?from=" +
      encodeURIComponent($("from").value) + "&to=" + encodeURIComponent($("to").value);
    const response = await fetch(url, { headers: { "Authorization": "Bearer " + session.key }, cache: "no-store" });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || ("HTTP " + response.status));
    return data;
  }

  function draw(id, config) {
    if (charts[id]) charts[id].destroy();
    config.options = Object.assign({ responsive: true, animation: false, maintainAspectRatio: true }, config.options || {});
    charts[id] = new Chart($(id), config);
  }

  function render(data) {
    const t = data.totals;
    $("t-conversations").textContent = String(t.conversations);
    $("t-containment").textContent = pct(t.containment_rate);
    $("t-escalations").textContent = t.escalations + (t.escalation_rate === null ? "" : " (" + pct(t.escalation_rate) + ")");
    $("t-frt").textContent = duration(t.first_response.median_s) + " / " + duration(t.first_response.p90_s);
    $("t-csat").textContent = t.csat.average === null ? "–" : t.csat.average + " (" + t.csat.count + ")";
    $("t-spend").textContent = "$" + t.llm_cost_usd.toFixed(4);
    const days = data.days.map((d) => d.day);
    draw("chart-days", { type: "bar", data: { labels: days, datasets: [
      { label: "conversations", data: data.days.map((d) => d.conversations) },
      { label: "escalations", data: data.days.map((d) => d.escalations) },
      { label: "resolved by AI", data: data.days.map((d) => d.resolved_by_ai) },
    ] } });
    const reasons = Object.keys(t.escalations_by_reason);
    draw("chart-reasons", { type: "doughnut", data: { labels: reasons, datasets: [
      { label: "escalations", data: reasons.map((r) => t.escalations_by_reason[r]) },
    ] } });
    const pages = data.funnel.pages;
    draw("chart-funnel", { type: "bar", data: {
      labels: ["started"].concat(pages.map((p) => p.page + ". " + p.title), ["submitted"]),
      datasets: [
        { label: "sessions", data: [data.funnel.forms_started].concat(pages.map((p) => p.reached), [data.funnel.submitted]) },
        { label: "dropped here", data: [0].concat(pages.map((p) => p.dropped), [0]) },
      ] }, options: { indexAxis: "y" } });
    const lanes = Object.keys(data.by_lane), channels = Object.keys(data.by_channel);
    draw("chart-dimensions", { type: "bar", data: {
      labels: lanes.map((l) => "lane " + l).concat(channels.map((c) => "channel " + c)),
      datasets: [
        { label: "conversations", data: lanes.map((l) => data.by_lane[l].conversations).concat(channels.map((c) => data.by_channel[c].conversations)) },
        { label: "escalations", data: lanes.map((l) => data.by_lane[l].escalations).concat(channels.map((c) => data.by_channel[c].escalations)) },
      ] } });
    const minutes = (s) => (s === null ? null : Math.round(s / 6) / 10);
    draw("chart-frt", { type: "line", data: { labels: days, datasets: [
      { label: "median", data: data.days.map((d) => minutes(d.first_response.median_s)), spanGaps: true },
      { label: "p90", data: data.days.map((d) => minutes(d.first_response.p90_s)), spanGaps: true },
    ] } });
    draw("chart-spend", { type: "bar", data: { labels: days, datasets: [
      { label: "USD", data: data.days.map((d) => d.llm_cost_usd) },
    ] } });
    document.body.dataset.rendered = "true";
  }

  async function show(event) {
    if (event) event.preventDefault();
    $("range-error").textContent = "";
    try {
      render(await fetchAnalytics());
    } catch (error) {
      $("range-error").textContent = error.message;
    }
  }

  function start() {
    $("signin").hidden = true;
    $("analytics").hidden = false;
    show();
  }

  function signIn(event) {
    event.preventDefault();
    session = { tenant: $("tenant").value.trim(), operator: "analytics", key: $("apikey").value.trim() };
    store.setItem("laneway.session", JSON.stringify(session));
    start();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const today = new Date();
    $("to").value = iso(today);
    $("from").value = iso(new Date(today.getTime() - 13 * 86400000));
    $("range").addEventListener("submit", show);
    $("signin-form").addEventListener("submit", signIn);
    loadSession();
    if (session) start(); else $("signin").hidden = false;
  });
})();
