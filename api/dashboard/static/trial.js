// One trial: parameters, how it ran, and its curves; updates while it trains.
"use strict";

(() => {
  const { api, el, fill, fmt, badge, plot, poll, pageData } = hp;
  const initial = pageData();
  let trial = initial.trial;
  const path = `/api/studies/${initial.study_id}/trials/${trial.stage}/${trial.number}`;

  function render() {
    const link = document.getElementById("study-link");
    link.href = `/studies/${initial.study_id}`;
    link.textContent = `← ${initial.study}`;
    fill(document.getElementById("header"),
      el("h1", {}, `${trial.stage} trial #${trial.number} `, badge(trial.state)),
      trial.reason ? el("p", { class: "problem" }, `Failed: ${trial.reason}`) : "",
      el("p", {}, `Validation accuracy ${trial.value === null ? "(none yet)" : fmt.acc(trial.value)}`));
    fill(document.querySelector("#params tbody"), Object.entries(trial.params).map(([k, v]) =>
      el("tr", {}, el("th", {}, k), el("td", { class: "num" }, fmt.num(v)),
        el("td", { class: "small muted" }, trial.distributions[k] || ""))));
    const facts = [
      ["worker", trial.worker || ""],
      ["started", fmt.when(trial.started_at)],
      ["ended", fmt.when(trial.completed_at)],
      ["duration", fmt.seconds(trial.duration)],
      ["epochs", String(trial.epochs)],
      ["first of its round", trial.seeded ? "yes: the configuration a person would try first" : ""],
      ["retry of", trial.retry_of === null || trial.retry_of === undefined ? "" : `#${trial.retry_of}`],
    ].filter(([, v]) => v);
    fill(document.querySelector("#facts tbody"), facts.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))));
    const history = trial.history || [];
    const keys = ["train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds"]
      .filter((k) => history.some((m) => m[k] !== undefined));
    fill(document.querySelector("#epochs thead tr"), el("th", {}, "epoch"), keys.map((k) => el("th", { class: "num" }, k.replace("_", " "))));
    fill(document.querySelector("#epochs tbody"), history.map((m) =>
      el("tr", {}, el("td", {}, String(m.epoch)), keys.map((k) => el("td", { class: "num" }, fmt.num(m[k]))))));
    const epochs = history.map((m) => m.epoch);
    const line = (key, name, extra) => Object.assign({ x: epochs, y: history.map((m) => m[key]), mode: "lines+markers", name }, extra);
    plot("chart-epochs", [
      line("val_accuracy", "validation accuracy", { line: { color: "#ff7f0e" } }),
      ...(keys.includes("train_accuracy") ? [line("train_accuracy", "train accuracy", { line: { color: "#1f77b4" } })] : []),
      ...(keys.includes("val_loss") ? [line("val_loss", "validation loss", { yaxis: "y2", line: { color: "#ff7f0e", dash: "dot" } })] : []),
      ...(keys.includes("train_loss") ? [line("train_loss", "train loss", { yaxis: "y2", line: { color: "#1f77b4", dash: "dot" } })] : []),
    ], { xaxis: { title: "epoch", dtick: 1 }, yaxis: { title: "accuracy" }, yaxis2: { title: "loss", overlaying: "y", side: "right" } });
  }

  render();
  poll(async () => {
    if (trial.state !== "running" && trial.state !== "waiting") return;
    trial = await api(path);
    render();
  }, 2000);
})();
