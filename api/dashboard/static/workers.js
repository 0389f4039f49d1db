// The workers the server has heard from, live.
"use strict";

(() => {
  const { api, el, fill, fmt, badge, poll, pageData } = hp;

  function holding(w) {
    const c = w.current;
    if (!c) return "idle";
    if (c.kind !== "trial") return `${c.study}: ${c.stage}`;
    return el("a", { href: `/studies/${c.study_id}/trials/${c.stage}/${c.trial_number}` }, `${c.study}: ${c.stage} #${c.trial_number}`);
  }

  function render(workers) {
    document.getElementById("no-workers").hidden = workers.length > 0;
    fill(document.querySelector("#workers tbody"), workers.map((w) =>
      el("tr", { dataset: { worker: w.id } },
        el("td", {}, w.id),
        el("td", {}, w.host || ""),
        el("td", {}, (w.devices || []).join(", ")),
        el("td", {}, badge(w.alive ? (w.current ? "working" : "idle") : "gone")),
        el("td", {}, holding(w)),
        el("td", { class: "num" }, String(w.items_done)),
        el("td", { title: fmt.when(w.last_seen) }, fmt.ago(w.last_seen)),
        el("td", {}, fmt.when(w.first_seen)))));
  }

  render(pageData().workers);
  poll(async () => render(await api("/api/workers")), 3000);
})();
