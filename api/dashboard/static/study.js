// One study: its stage timeline with each stage's result and chart, the best-trials table, and
// Optuna's history charts. Everything redraws from the API while the study runs.
"use strict";

(() => {
  const { api, el, fill, fmt, badge, plot, poll, pageData } = hp;
  const initial = pageData();
  const studyId = initial.id;
  const params = initial.params;
  const table = { state: "complete", sort: "value", limit: 20, offset: 0, total: 0 };
  let summary = initial.summary;
  let signature = "";

  // a stage's typed result (the API's StageView.result) read alongside its name, status, counts
  const flat = (s) => s && Object.assign({}, s.result || {}, {
    name: s.name, status: s.status, counts: s.counts, trial_epochs: s.trial_epochs, seconds: s.seconds,
  });
  const stages = () => summary.stages.map(flat);
  const stageOf = (name) => stages().find((s) => s.name === name);
  const searchStages = () => stages().filter((s) => s.name === "coarse" || s.name.startsWith("refine-"));
  // the metric the search maximises (search.objective), in words
  const OBJECTIVES = { accuracy: "accuracy", balanced_accuracy: "balanced accuracy", macro_f1: "macro-F1", roc_auc: "ROC-AUC" };
  const objective = () => OBJECTIVES[summary.best.objective] || "accuracy";
  const dl = (pairs) => el("dl", { class: "facts" },
    pairs.filter(([, v]) => v !== "" && v !== null && v != null)
      .map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));

  // --- header and timeline -------------------------------------------------------------------

  async function act(action) {
    await api(`/api/studies/${studyId}/${action}`, { method: "POST" });
    await refresh(true);
  }

  function renderHeader() {
    const best = summary.best;
    const current = stages().find((s) => s.status === "running" || s.status === "pending");
    const totals = {};
    for (const s of searchStages()) {
      for (const [state, n] of Object.entries(s.counts || {})) totals[state] = (totals[state] || 0) + n;
    }
    const button = summary.state === "running" ? el("button", { onclick: () => act("stop") }, "Stop")
      : summary.state === "stopped" ? el("button", { onclick: () => act("resume") }, "Resume") : "";
    fill(document.getElementById("header"),
      el("h1", {}, summary.study, " ", badge(summary.state), " ", button),
      summary.message ? el("p", { class: "problem" }, summary.message) : "",
      ...(summary.warnings || []).map((w) => el("p", { class: "warning" }, w)),
      dl([
        ["stage", summary.state === "running" && current ? current.name : ""],
        [`best validation ${objective()}`, fmt.acc(best.value != null ? best.value : best.val_accuracy)],
        ["test accuracy", fmt.acc(best.test_accuracy)],
        ["best parameters", Object.entries(best.params || {}).map(([k, v]) => `${k} = ${fmt.num(v)}`).join(", ")],
        ["trials", Object.entries(totals).filter(([, n]) => n).map(([s, n]) => `${n} ${s}`).join(" · ")],
        ["diagnosis", summary.diagnosis ? `${summary.diagnosis.verdict}: ${summary.diagnosis.advice}` : ""],
        ["started", fmt.when(initial.created_at)],
      ]));
  }

  // the test-time augmentation the final model kept, or what was asked and not kept
  const tta = (s) => (s.tta && s.tta !== "none" ? ` with ${s.tta} TTA` : s.tta_flip ? " with flip TTA" : "")
    + (s.tta_gain != null && (!s.tta || s.tta === "none") ? ` (TTA not kept: validation gain ${fmt.acc(s.tta_gain)})` : "");

  function ensembleFacts(e) {
    const what = e.kind === "snapshots" ? `${e.k} snapshots (epochs ${e.members.map((m) => m.epoch).join(", ")})` : `top-${e.k}`;
    const gain = e.val_gain != null ? `, validation gain ${fmt.acc(e.val_gain)}` : "";
    return e.kept === false ? `${what}: not kept${gain}` : `${what}: test ${fmt.acc(e.test_accuracy)}${gain}`;
  }

  function stageFacts(s) {
    if (s.status === "pending") return "";
    if (s.name === "sanity") return s.verdict ? `verdict: ${s.verdict}` : s.reason || "";
    if (s.name === "range_test") {
      return s.range ? `suggested LR ${fmt.num(s.suggested_lr)}, range ${fmt.num(s.range.low)} to ${fmt.num(s.range.high)}` : s.reason || "";
    }
    if (s.name === "final") {
      return s.val_accuracy != null
        ? `val ${fmt.acc(s.val_accuracy)}, test ${fmt.acc(s.test_accuracy)}, ${s.diagnosis.verdict}` : s.reason || "";
    }
    if (s.name === "targeted") return `${s.action}${s.ran ? (s.improved ? ": kept" : ": not better") : `: ${s.reason}`}`;
    if (s.reason) return s.reason;
    const c = s.counts || {};
    const best = s.best && s.best.value != null ? `, best ${fmt.acc(s.best.value)}` : "";
    const gain = s.gain != null ? `, gain ${fmt.acc(s.gain)}` : "";
    return `${c.complete || 0} complete, ${c.pruned || 0} pruned, ${c.failed || 0} failed, ${c.running || 0} running${best}${gain}`;
  }

  function renderTimeline() {
    fill(document.getElementById("timeline"), stages().map((s) =>
      el("li", { class: `stage ${s.status}`, dataset: { stage: s.name } },
        el("div", { class: "stage-name" }, s.name, " ", badge(s.status)),
        el("div", { class: "small" }, stageFacts(s)),
        s.trial_epochs ? el("div", { class: "small muted" }, `${fmt.num(s.trial_epochs)} trial-epochs, ${fmt.seconds(s.seconds)}`) : "")));
  }

  // --- the stage panels ----------------------------------------------------------------------

  function renderSanity() {
    const s = stageOf("sanity");
    const text = document.getElementById("sanity-text");
    if (!s || !s.checks) { fill(text, el("p", { class: "muted" }, s && s.reason ? s.reason : "not run yet")); return; }
    const initialLoss = s.checks.find((c) => c.check === "initial_loss") || {};
    const overfit = s.checks.find((c) => c.check === "overfit");
    fill(text, dl([
      ["initial loss", initialLoss.measured != null
        ? `${fmt.num(initialLoss.measured)} measured vs ln(${initialLoss.classes}) = ${fmt.num(initialLoss.expected)} expected (±${fmt.pct(initialLoss.tolerance)}): ${initialLoss.verdict}`
        : initialLoss.verdict],
      ["overfit a small sample", overfit ? `${overfit.verdict}: train accuracy ${fmt.pct(overfit.train_accuracy)} on ${overfit.images} images in ${overfit.steps} steps` : ""],
      ["advice", s.advice],
    ]));
    if (overfit && overfit.curve) {
      plot("chart-overfit",
        [{ y: overfit.curve, mode: "lines", name: "training loss" }],
        { xaxis: { title: "step" }, yaxis: { title: "loss" }, title: { text: "Overfitting a small sample", font: { size: 13 } } });
    }
  }

  function renderRangeTest() {
    const s = stageOf("range_test");
    const text = document.getElementById("range-text");
    if (!s || !s.curve) { fill(text, el("p", { class: "muted" }, s && s.reason ? s.reason : "not run yet")); return; }
    const check = s.check || {};
    fill(text, dl([
      ["steepest descent at", fmt.num(s.lr_steepest)],
      ["lowest loss at", fmt.num(s.lr_min_loss)],
      ["range handed to the coarse search", `${fmt.num(s.range.low)} to ${fmt.num(s.range.high)}`],
      ["check at the suggested LR", check.loss_before != null
        ? `loss ${fmt.num(check.loss_before)} → ${fmt.num(check.loss_after)} in ${check.iterations} iterations: ${check.passed ? "falls" : "does not fall"}` : ""],
      ["sweep stopped", s.stopped],
    ]));
    const top = Math.max(...s.curve.smoothed.filter(Number.isFinite));
    plot("chart-range", [
      { x: s.curve.lr, y: s.curve.loss, mode: "lines", name: "loss", line: { color: "#bbb", width: 1 } },
      { x: s.curve.lr, y: s.curve.smoothed, mode: "lines", name: "smoothed loss", line: { color: "#1f77b4" } },
      { x: [s.suggested_lr, s.suggested_lr], y: [0, top], mode: "lines", name: "suggested LR", line: { color: "#d62728", dash: "dash" } },
    ], {
      xaxis: { type: "log", title: "learning rate" },
      yaxis: { title: "training loss" },
      shapes: [{ type: "rect", xref: "x", yref: "paper", x0: s.range.low, x1: s.range.high, y0: 0, y1: 1,
        fillcolor: "rgba(44, 160, 44, 0.12)", line: { width: 0 } }],
      annotations: [{ x: Math.log10(Math.sqrt(s.range.low * s.range.high)), y: 1, xref: "x", yref: "paper",
        text: "chosen range", showarrow: false, yanchor: "bottom", font: { size: 11, color: "#2ca02c" } }],
    });
  }

  async function renderSearch() {
    const stages = searchStages().filter((s) => s.ranges);
    const text = document.getElementById("search-text");
    if (!stages.length) { fill(text, el("p", { class: "muted" }, "no search stage has started yet")); return; }
    fill(text, el("table", { class: "grid compact" },
      el("thead", {}, el("tr", {}, ["round", "lr range", "weight decay range", "trials", "epochs", "best", "gain"].map((h) => el("th", {}, h)))),
      el("tbody", {}, stages.map((s) => el("tr", {},
        el("td", {}, s.name),
        el("td", {}, `${fmt.num(s.ranges.lr.low)} to ${fmt.num(s.ranges.lr.high)}`),
        el("td", {}, `${fmt.num(s.ranges.weight_decay.low)} to ${fmt.num(s.ranges.weight_decay.high)}`),
        el("td", { class: "num" }, s.trials),
        el("td", { class: "num" }, s.epochs),
        el("td", { class: "num" }, s.best ? fmt.acc(s.best.value) : ""),
        el("td", { class: "num" }, s.gain != null ? fmt.acc(s.gain) : ""))))));
    const points = await api(`/api/studies/${studyId}/points`);
    const pick = (keep) => points.number.map((_, i) => i).filter(keep);
    const trace = (rows, extra) => Object.assign({
      x: rows.map((i) => points.lr[i]), y: rows.map((i) => points.weight_decay[i]), mode: "markers", type: "scatter",
      text: rows.map((i) => `${points.stage[i]} #${points.number[i]}: ${points.state[i]} ${fmt.acc(points.value[i])}`),
      hoverinfo: "text",
    }, extra);
    const complete = pick((i) => points.state[i] === "complete");
    const pruned = pick((i) => points.state[i] === "pruned");
    const other = pick((i) => points.state[i] !== "complete" && points.state[i] !== "pruned");
    const palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b"];
    plot("chart-scatter", [
      trace(pruned, { name: "pruned", marker: { color: "#c7c7c7", size: 6 } }),
      trace(other, { name: "failed or running", marker: { color: "#d62728", symbol: "x", size: 7 } }),
      trace(complete, { name: `complete (colour: validation ${objective()})`, marker: {
        color: complete.map((i) => points.value[i]), colorscale: "Viridis", size: 9, showscale: true,
        colorbar: { title: { text: `val ${objective()}` } }, line: { width: 0.5, color: "#333" } } }),
    ], {
      xaxis: { type: "log", title: "learning rate" },
      yaxis: { type: "log", title: "weight decay" },
      shapes: stages.map((s, k) => ({ type: "rect", xref: "x", yref: "y",
        x0: s.ranges.lr.low, x1: s.ranges.lr.high, y0: s.ranges.weight_decay.low, y1: s.ranges.weight_decay.high,
        line: { color: palette[k % palette.length], width: 2, dash: k ? "dot" : "solid" } })),
      annotations: stages.map((s, k) => ({ x: Math.log10(s.ranges.lr.low), y: Math.log10(s.ranges.weight_decay.high),
        xref: "x", yref: "y", text: s.name, showarrow: false, xanchor: "left", yanchor: "bottom",
        font: { size: 11, color: palette[k % palette.length] } })),
    });
  }

  function renderFinal() {
    const s = stageOf("final");
    const text = document.getElementById("final-text");
    if (!s || !s.history) { fill(text, el("p", { class: "muted" }, s && s.reason ? s.reason : "not run yet")); return; }
    const d = s.diagnosis;
    const targeted = stageOf("targeted");
    fill(text,
      el("p", { class: `diagnosis ${d.verdict.replace(/ /g, "-")}` },
        `Diagnosis: ${d.verdict}. `, `${d.advice[0].toUpperCase()}${d.advice.slice(1)}. `,
        `Train-validation accuracy gap ${fmt.pct(d.gap)}${d.val_loss_rising ? "; validation loss rising while training loss falls" : ""}.`),
      dl([
        [`validation ${objective()}`, s.val_value != null && s.objective !== "accuracy" ? fmt.acc(s.val_value) : ""],
        ["validation accuracy", `${fmt.acc(s.val_accuracy)} (weights of epoch ${s.weights_epoch})`],
        ["test accuracy", `${fmt.acc(s.test_accuracy)}${tta(s)}`],
        ["ensemble", s.ensemble ? ensembleFacts(s.ensemble) : ""],
        ["model file", s.model ? `${s.model.filename} (${(s.model.size / 2 ** 20).toFixed(1)} MiB): GET /api/studies/${studyId}/model` : ""],
        ["targeted stage", targeted ? stageFacts(targeted) : ""],
      ]));
    const epochs = s.history.map((m) => m.epoch);
    const line = (key, name, extra) => Object.assign({ x: epochs, y: s.history.map((m) => m[key]), mode: "lines+markers", name }, extra);
    const curves = [
      line("train_accuracy", "train accuracy", { line: { color: "#1f77b4" } }),
      line("val_accuracy", "validation accuracy", { line: { color: "#ff7f0e" } }),
      line("train_loss", "train loss", { yaxis: "y2", line: { color: "#1f77b4", dash: "dot" } }),
      line("val_loss", "validation loss", { yaxis: "y2", line: { color: "#ff7f0e", dash: "dot" } }),
    ];
    if (s.objective && s.objective !== "accuracy") {
      curves.push(line(`val_${s.objective}`, `validation ${objective()}`, { line: { color: "#2ca02c" } }));
    }
    plot("chart-final", curves, {
      xaxis: { title: "epoch" },
      yaxis: { title: "accuracy" },
      yaxis2: { title: "loss", overlaying: "y", side: "right" },
    });
  }

  // The chosen model on the test split: the scalars, the confusion matrix, a row per class.
  function renderTest() {
    const s = stageOf("final");
    const panel = document.getElementById("test-panel");
    const test = s && s.test_metrics;
    panel.hidden = !test;
    if (!test) return;
    const weak = new Set((s.diagnosis && s.diagnosis.weak_classes) || []);
    fill(document.getElementById("test-text"), dl([
      ["accuracy", fmt.acc(test.accuracy)],
      ["balanced accuracy", fmt.acc(test.balanced_accuracy)],
      ["macro-F1", fmt.acc(test.macro_f1)],
      ["ROC-AUC (one-vs-rest)", test.roc_auc != null ? fmt.acc(test.roc_auc) : "undefined: one class only"],
      ["far below the average", [...weak].join(", ")],
    ]));
    const names = test.classes.map((c) => c.name);
    plot("chart-confusion", [{
      type: "heatmap", z: test.confusion, x: names, y: names, colorscale: "Blues", reversescale: true, showscale: true,
      texttemplate: names.length <= 20 ? "%{z}" : "", hovertemplate: "true %{y}, predicted %{x}: %{z}<extra></extra>",
    }], {
      title: { text: "Confusion matrix (test)", font: { size: 13 } },
      xaxis: { title: { text: "predicted class" }, type: "category", side: "bottom" },
      yaxis: { title: { text: "true class" }, type: "category", autorange: "reversed" },
      margin: { l: 80, r: 20, t: 30, b: 60 },
    });
    fill(document.querySelector("#per-class tbody"), test.classes.map((c) =>
      el("tr", { class: weak.has(c.name) ? "weak" : "", dataset: { name: c.name } },
        el("td", {}, c.name),
        ["precision", "recall", "f1"].map((k) => el("td", { class: "num" }, fmt.acc(c[k]))),
        el("td", { class: "num" }, c.support))));
  }

  // --- the trials table ----------------------------------------------------------------------

  const columns = [
    { key: "number", label: "trial" }, { key: "stage", label: "stage" }, { key: "state", label: "state" },
    { key: "value", label: `val ${objective()}`, num: true },
    ...params.map((p) => ({ key: p, label: p, num: true })),
    { key: "epochs", label: "epochs", num: true }, { key: "duration", label: "duration", num: true },
    { key: "worker", label: "worker" },
  ];

  function renderTableHead() {
    fill(document.querySelector("#trials thead tr"), columns.map((c) => {
      const active = table.sort.replace(/^-/, "") === c.key;
      const arrow = active ? (table.sort.startsWith("-") !== (c.key === "value") ? " ▲" : " ▼") : "";
      return el("th", { class: c.num ? "num" : "", dataset: { key: c.key }, onclick: () => sortBy(c.key) }, c.label + arrow);
    }));
  }

  function cell(trial, c) {
    if (c.key === "number") {
      return el("a", { href: `/studies/${studyId}/trials/${trial.stage}/${trial.number}` }, `#${trial.number}`);
    }
    if (c.key === "state") return badge(trial.state);
    if (c.key === "value") return fmt.acc(trial.value);
    if (c.key === "duration") return fmt.seconds(trial.duration);
    if (params.includes(c.key)) return fmt.num(trial.params[c.key]);
    return trial[c.key] === null || trial[c.key] === undefined ? "" : String(trial[c.key]);
  }

  function renderTable(trials) {
    renderTableHead();
    fill(document.querySelector("#trials tbody"), trials.map((t) =>
      el("tr", { dataset: { stage: t.stage, number: t.number } },
        columns.map((c) => el("td", { class: c.num ? "num" : "" }, cell(t, c))))));
    const last = Math.min(table.offset + table.limit, table.total);
    document.getElementById("trial-range").textContent =
      table.total ? `${table.offset + 1} to ${last} of ${table.total}` : "no trials";
    document.getElementById("trial-prev").disabled = table.offset === 0;
    document.getElementById("trial-next").disabled = last >= table.total;
  }

  async function loadTable() {
    const query = new URLSearchParams({ sort: table.sort, limit: table.limit, offset: table.offset });
    if (table.state) query.set("state", table.state);
    const page = await api(`/api/studies/${studyId}/trials?${query}`);
    table.total = page.total;
    renderTable(page.trials);
  }

  function sortBy(key) {
    const current = table.sort.replace(/^-/, "");
    table.sort = current === key && !table.sort.startsWith("-") ? `-${key}` : key;
    table.offset = 0;
    loadTable();
  }

  document.getElementById("trial-state").addEventListener("change", (e) => { table.state = e.target.value; table.offset = 0; loadTable(); });
  document.getElementById("trial-limit").addEventListener("change", (e) => { table.limit = Number(e.target.value); table.offset = 0; loadTable(); });
  document.getElementById("trial-prev").addEventListener("click", () => { table.offset = Math.max(0, table.offset - table.limit); loadTable(); });
  document.getElementById("trial-next").addEventListener("click", () => { table.offset += table.limit; loadTable(); });

  // --- Optuna's charts -----------------------------------------------------------------------

  async function renderOptunaCharts() {
    await Promise.all(["history", "importance", "intermediate"].map(async (kind) => {
      const figure = await api(`/api/studies/${studyId}/charts/${kind}`);
      await plot(`chart-${kind}`, figure.data, figure.layout);
    }));
  }

  // --- keeping up ----------------------------------------------------------------------------

  // What the page shows at all, and what the scatter and Optuna's charts show (finished trials
  // only: a trial starting changes the header and the table, not the charts).
  const shown = () => JSON.stringify([summary.state, summary.stages.map((s) => [s.name, s.status, s.counts])]);
  const finished = () => JSON.stringify(summary.stages.map((s) =>
    [s.name, s.status, s.counts && [s.counts.complete, s.counts.pruned, s.counts.failed]]));
  let finishedSignature = "";

  async function refresh(force) {
    summary = await api(`/api/studies/${studyId}`);
    const now = shown();
    if (now === signature && !force) return;
    signature = now;
    renderHeader();
    renderTimeline();
    renderSanity();
    renderRangeTest();
    renderFinal();
    renderTest();
    const charts = finished() !== finishedSignature || force;
    finishedSignature = finished();
    await Promise.all(charts ? [loadTable(), renderSearch(), renderOptunaCharts()] : [loadTable()]);
  }

  signature = shown();
  finishedSignature = finished();
  renderHeader();
  renderTimeline();
  renderSanity();
  renderRangeTest();
  renderFinal();
  renderTest();
  table.total = initial.table.total;
  renderTable(initial.table.trials);
  renderSearch();
  renderOptunaCharts();
  poll(() => refresh(false), 2000);
})();
