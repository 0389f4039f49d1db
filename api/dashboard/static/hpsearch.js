// Shared by every dashboard page: the page's embedded data, API calls, safe DOM building,
// number and time formats, charts, and polling. Data is only ever put in the page as text
// (textContent), never as HTML, so nothing a study holds can run as script.
"use strict";

const hp = (() => {
  const pageData = () => JSON.parse(document.getElementById("page-data").textContent);

  async function api(path, options = {}) {
    const headers = Object.assign({ "X-Requested-With": "hpsearch" }, options.headers || {});
    const response = await fetch(path, Object.assign({}, options, { headers }));
    if (response.status === 401) {
      window.location.href = "/login?next=" + encodeURIComponent(window.location.pathname);
      throw new Error("signed out");
    }
    const text = await response.text();
    const body = text ? JSON.parse(text) : null;
    if (!response.ok) {
      const error = new Error((body && body.detail) || response.statusText);
      error.status = response.status;
      error.body = body;
      throw error;
    }
    return body;
  }

  // el("a", {href: "/x", class: "y"}, "text", childNode, ...)
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function fill(node, ...children) {
    node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== ""));
  }

  const fmt = {
    acc: (v) => (v === null || v === undefined ? "" : Number(v).toFixed(4)),
    pct: (v) => (v === null || v === undefined ? "" : (100 * v).toFixed(2) + " %"),
    num: (v) => {
      if (v === null || v === undefined) return "";
      const x = Number(v);
      if (Number.isInteger(x)) return String(x);
      return Math.abs(x) >= 1e-3 && Math.abs(x) < 1e4 ? x.toPrecision(4) : x.toExponential(2);
    },
    seconds: (s) => {
      if (s === null || s === undefined) return "";
      if (s < 60) return s.toFixed(1) + " s";
      const m = Math.floor(s / 60);
      if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
      return `${Math.floor(m / 60)} h ${m % 60} min`;
    },
    when: (iso) => (iso ? new Date(iso).toLocaleString() : ""),
    ago: (iso) => {
      if (!iso) return "";
      const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
      return s < 90 ? `${Math.round(s)} s ago` : `${fmt.seconds(s)} ago`;
    },
  };

  const badge = (state) => el("span", { class: `badge ${state}` }, state);

  // Plotly, drawn in place (react keeps zoom and avoids flicker on updates).
  const plotConfig = { displaylogo: false, responsive: true };
  function plot(id, traces, layout) {
    const base = {
      margin: { l: 55, r: layout.yaxis2 ? 55 : 20, t: 30, b: 45 },  // room for a right axis
      template: "plotly_white",
      legend: { orientation: "h", y: -0.25 },
    };
    return Plotly.react(id, traces, Object.assign(base, layout), plotConfig);
  }

  // Call fn now and every `ms`; the footer's "live" mark shows whether the last call worked.
  function poll(fn, ms) {
    const mark = document.getElementById("live");
    const tick = async () => {
      try {
        await fn();
        mark.classList.remove("stale");
        mark.title = "Updated " + new Date().toLocaleTimeString();
      } catch (error) {
        mark.classList.add("stale");
        mark.title = "Update failed: " + error.message;
      }
      window.setTimeout(tick, ms);
    };
    window.setTimeout(tick, ms);
  }

  return { pageData, api, el, fill, fmt, badge, plot, poll };
})();
