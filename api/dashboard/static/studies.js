// The studies page: every study with its progress, live; launch from YAML; stop and resume.
"use strict";

(() => {
  const { api, el, fill, fmt, badge, poll, pageData } = hp;
  const body = document.querySelector("#studies tbody");

  function progress(trials) {
    const parts = ["running", "complete", "pruned", "failed"].map((state) => [state, trials[state] || 0]);
    const total = parts.reduce((sum, [, n]) => sum + n, 0);
    const bar = el(
      "div",
      { class: "bar", title: parts.map(([s, n]) => `${n} ${s}`).join(", ") },
      parts.filter(([, n]) => n > 0).map(([state, n]) =>
        el("span", { class: `seg ${state}`, style: `flex-grow: ${n}` })),
    );
    const words = parts.filter(([, n]) => n > 0).map(([s, n]) => `${n} ${s}`).join(" · ");
    return [bar, el("div", { class: "small muted" }, total ? words : "no trials yet")];
  }

  function elapsed(study) {
    const start = new Date(study.created_at).getTime();
    const end = study.state === "running" ? Date.now() : new Date(study.updated_at).getTime();
    return fmt.seconds(Math.max(0, (end - start) / 1000));
  }

  async function act(study, action) {
    await api(`/api/studies/${study.id}/${action}`, { method: "POST" });
    await refresh();
  }

  function actions(study) {
    if (study.state === "running") return el("button", { onclick: () => act(study, "stop") }, "Stop");
    if (study.state === "stopped") return el("button", { onclick: () => act(study, "resume") }, "Resume");
    return "";
  }

  function bestValue(s) {
    // the search maximises the spec's objective; name it unless it is accuracy
    if (s.best_value === null || s.best_value === undefined) return "";
    const value = fmt.acc(s.best_value);
    return s.objective && s.objective !== "accuracy" ? `${value} (${s.objective})` : value;
  }

  function render(studies) {
    document.getElementById("no-studies").hidden = studies.length > 0;
    fill(body, studies.map((s) =>
      el("tr", { dataset: { study: s.name } },
        el("td", {}, el("a", { href: `/studies/${s.id}` }, s.name)),
        el("td", {}, badge(s.state)),
        el("td", {}, s.stage || ""),
        el("td", { class: "progress" }, progress(s.trials)),
        el("td", { class: "num", title: s.objective }, bestValue(s)),
        el("td", {}, fmt.when(s.created_at)),
        el("td", { class: "num" }, elapsed(s)),
        el("td", {}, actions(s)),
      )));
  }

  async function refresh() {
    render(await api("/api/studies"));
  }

  document.getElementById("launch").addEventListener("submit", async (event) => {
    event.preventDefault();
    const result = document.getElementById("launch-result");
    const problems = document.getElementById("launch-problems");
    fill(problems);
    result.textContent = "launching...";
    try {
      const created = await api("/api/studies", {
        method: "POST",
        headers: { "Content-Type": "application/yaml" },
        body: document.getElementById("spec").value,
      });
      window.location.href = `/studies/${created.id}`;
    } catch (error) {
      result.textContent = error.message.split("\n")[0];
      const listed = (error.body && error.body.problems) || [];
      fill(problems, listed.map((p) => el("li", {}, p.field ? `${p.field}: ${p.message}` : p.message)));
    }
  });

  render(pageData().studies);
  poll(refresh, 2000);
})();
