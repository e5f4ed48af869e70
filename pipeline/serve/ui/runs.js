// Runs: each with its config name, state, live per-stage progress (from the event stream), rate, ETA,
// cost and failures; stop, resume, retry failed, export; a form to submit a config.
import { events, get, post } from "./api.js";
import { h, show } from "./dom.js";

const ACTIVE = ["queued", "running"];

export async function renderRuns(main) {
  const streams = [];
  const exportFormat = h("select", { name: "format" },
    ["parquet", "jsonl", "sft", "dpo", "llamafactory", "hf"].map((f) => h("option", { value: f }, f)));
  const reviewedOnly = h("input", { type: "checkbox", name: "reviewed_only" });
  const exportsBox = h("div", { id: "exports" });
  const body = h("tbody");
  main.append(
    submitForm(() => renderAgain()),
    h("fieldset", {}, h("legend", {}, "Export options"),
      h("label", {}, "format ", exportFormat), " ",
      h("label", {}, reviewedOnly, " reviewed rows only"), exportsBox),
    h("table", { id: "runs" },
      h("thead", {}, h("tr", {}, ["run", "config", "state", "progress per stage", "rate", "ETA", "cost",
        "failures", ""].map((c) => h("th", {}, c)))),
      body));

  const options = () => ({ format: exportFormat.value, reviewed_only: reviewedOnly.checked });
  const { runs } = await get("/v1/runs");
  if (!runs.length) body.append(h("tr", {}, h("td", { colspan: 9 }, "No run yet: submit a config above.")));
  for (const run of runs) {
    const row = new RunRow(run, options, exportsBox, renderAgain);
    body.append(row.tr);
    if (ACTIVE.includes(run.queue?.state)) streams.push(row.follow());
    else await row.refresh().catch((error) => row.showState("unreadable", error.message));
  }

  function renderAgain() {
    streams.forEach((s) => s.close());
    main.replaceChildren();
    renderRuns(main).catch((error) => show(error.message, true));
  }
  return () => streams.forEach((s) => s.close());
}

function submitForm(onSubmitted) {
  const config = h("textarea", { name: "config", placeholder: "the run config (YAML)", required: true });
  const maxItems = h("input", { name: "max_items", type: "number", min: 1, placeholder: "all" });
  return h("form", { id: "submit", onsubmit: async (event) => {
    event.preventDefault();
    try {
      const body = { config: config.value };
      if (maxItems.value) body.max_items = Number(maxItems.value);
      const answer = await post("/v1/runs", body);
      show(`run ${answer.run} ${answer.queued ? "queued" : "is already queued or running"}`);
      onSubmitted();
    } catch (error) {
      show(error.message, true);
    }
  } },
  h("fieldset", {}, h("legend", {}, "Submit a run"), config,
    h("label", {}, "at most ", maxItems, " root items "), h("button", { type: "submit" }, "Submit")));
}

class RunRow {
  constructor(run, options, exportsBox, onChange) {
    Object.assign(this, { run, options, exportsBox, onChange, samples: [] });
    const id = run.run;
    this.cells = Object.fromEntries(["state", "stages", "rate", "eta", "cost", "failures"].map((k) => [k, h("td", { class: k })]));
    this.tr = h("tr", { "data-run": id },
      h("td", {}, h("a", { href: `#/browse/${encodeURIComponent(id)}` }, id)),
      h("td", { class: "name" }, run.name || "–"),
      this.cells.state, this.cells.stages, this.cells.rate, this.cells.eta, this.cells.cost, this.cells.failures,
      h("td", {},
        this.button("stop", "Stop"), this.button("resume", "Resume"), this.button("retry", "Retry failed"),
        h("button", { onclick: () => this.export() }, "Export"),
        h("a", { href: `/v1/runs/${encodeURIComponent(id)}/report`, target: "_blank", rel: "noopener" }, "Report")));
    this.showState(run.queue?.state || "made by the CLI", run.queue?.reason);
  }

  button(action, label) {
    return h("button", { "data-action": action, onclick: async () => {
      try {
        await post(`/v1/runs/${encodeURIComponent(this.run.run)}/${action}`);
        show(`${label.toLowerCase()}: ${this.run.run}`);
        this.onChange();
      } catch (error) {
        show(error.message, true);
      }
    } }, label);
  }

  showState(state, reason) {
    this.cells.state.replaceChildren(h("span", {}, state, reason ? h("div", { class: "reason" }, reason) : null));
    this.tr.dataset.state = state;
    const active = ACTIVE.includes(state);
    for (const button of this.tr.querySelectorAll("button[data-action]")) {
      button.disabled = button.dataset.action === "stop" ? !active : active || !this.run.queue;
    }
  }

  async refresh() {
    const doc = await get(`/v1/runs/${encodeURIComponent(this.run.run)}`);
    if (doc.queue) this.showState(doc.queue.state, doc.queue.reason);
    const status = doc.status;
    if (!status) return;
    this.showStages(status.stages);
    this.cells.cost.textContent = `$${(status.cost_usd || 0).toFixed(4)}`;
    const failed = Object.values(status.stages).reduce((n, s) => n + s.failed, 0);
    this.cells.failures.replaceChildren(String(failed),
      ...status.failures.slice(0, 3).map((f) => h("div", { class: "reason" }, `${f.stage}: ${f.reason} (${f.count})`)));
  }

  showStages(stages) {
    const done = Object.values(stages).reduce((n, s) => n + s.done, 0);
    const pending = Object.values(stages).reduce((n, s) => n + s.pending, 0);
    this.samples.push([performance.now(), done]);
    this.samples = this.samples.slice(-20);
    const [t0, d0] = this.samples[0];
    const [t1, d1] = this.samples[this.samples.length - 1];
    const rate = t1 > t0 ? ((d1 - d0) * 1000) / (t1 - t0) : 0;
    this.cells.rate.textContent = rate ? `${rate.toFixed(1)} items/s` : "–";
    this.cells.eta.textContent = rate && pending ? `${Math.ceil(pending / rate)} s` : "–";
    this.cells.stages.replaceChildren(h("div", { class: "stages" }, Object.entries(stages).map(([name, s]) => {
      const total = s.done + s.pending + s.failed;
      const share = total ? Math.round((100 * s.done) / total) : 100;
      return h("div", { class: "stage", "data-stage": name },
        `${name} ${s.done}/${total}${s.failed ? ` (${s.failed} failed)` : ""}`,
        h("div", { class: "bar" }, h("span", { "data-share": share })));
    })));
    this.cells.stages.querySelectorAll(".bar > span").forEach((bar) => { bar.style.width = `${bar.dataset.share}%`; });
  }

  follow() {
    let busy = false;
    return events(this.run.run, async (progress) => {
      this.showState(progress.state, progress.reason);
      if (busy) return;
      busy = true;
      try { await this.refresh(); } finally { busy = false; }
    }, (end) => {
      this.showState(end.state, end.reason);
      this.onChange(); // the run's name and final figures
    });
  }

  async export() {
    const id = this.run.run;
    const line = h("div", { class: "export" }, `export of ${id}: starting`);
    this.exportsBox.append(line);
    try {
      let job = await post(`/v1/runs/${encodeURIComponent(id)}/exports`, this.options());
      while (!["finished", "failed"].includes(job.state)) {
        line.textContent = `export of ${id}: ${job.state}`;
        await new Promise((r) => setTimeout(r, 500));
        job = await get(`/v1/exports/${job.job_id}`);
      }
      if (job.state === "failed") throw new Error(job.reason);
      const rows = Object.values(job.manifest.parts).map((p) => Object.values(p.rows).reduce((a, b) => a + b, 0));
      line.replaceChildren(`export of ${id}: finished (${rows.reduce((a, b) => a + b, 0)} rows) `,
        h("a", { href: job.download.zip, "data-job": job.job_id }, "download"));
    } catch (error) {
      line.textContent = `export of ${id} failed: ${error.message}`;
      line.className = "error";
    }
  }
}
