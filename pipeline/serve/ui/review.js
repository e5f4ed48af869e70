// The filtered rows of a dataset one at a time, reviewed with the keyboard:
//   a accept · r reject · e edit (Ctrl+Enter saves, Esc cancels) · j next · k previous · n note
// The queue is the filtered rows as they were when the page opened (up to QUEUE of them), so a row
// reviewed out of the filter stays in place.
import { get, query } from "./api.js";
import { h, show, text } from "./dom.js";
import { FILTERS, filtersOf } from "./browse.js";
import { decide, editForm, history, historyTable, reviewerInput } from "./reviewing.js";

const QUEUE = 200;

export async function renderReview(main, runId, params) {
  const dataset = params.get("dataset") || "core";
  const filters = filtersOf(params);
  const page = await get(`/v1/runs/${encodeURIComponent(runId)}/datasets/${dataset}/rows?${query({ ...filters, limit: QUEUE })}`);
  const rows = page.items;
  let at = 0;
  let editing = null;
  const note = h("input", { id: "note", name: "note", placeholder: "note (optional; n)" });
  const card = h("section", { class: "card", id: "current" });
  const described = Object.entries(filters).map(([k, v]) => `${FILTERS[k] || "search"} = ${v}`).join(", ") || "no filter";
  main.append(
    h("h1", {}, `Review ${dataset} of ${runId}`),
    h("p", {}, `${rows.length} of ${page.total} rows (${described}) · `,
      h("a", { href: `#/browse/${encodeURIComponent(runId)}?${query({ dataset, ...filters })}` }, "back to the table")),
    h("p", {}, h("label", {}, "reviewer ", reviewerInput()), " ", note),
    h("p", { class: "keys" }, h("kbd", {}, "a"), " accept · ", h("kbd", {}, "r"), " reject · ", h("kbd", {}, "e"),
      " edit · ", h("kbd", {}, "j"), " next · ", h("kbd", {}, "k"), " previous · ", h("kbd", {}, "n"), " note"),
    card);

  async function showRow() {
    editing = null;
    if (!rows.length) {
      card.replaceChildren("No row matches these filters.");
      return;
    }
    const row = rows[at];
    const { reviews } = await history(row.id);
    card.replaceChildren(
      h("h2", {}, `${at + 1} / ${rows.length}: `, h("a", { href: `#/record/${encodeURIComponent(row.id)}` }, row.id)),
      h("p", {}, `category ${text(row.category)} · judged ${text(row.judged_category)} · tactic ${text(row.tactic)} · persona ${text(row.persona_id)}`),
      h("dl", { class: "fields" }, ["instruction", "response", "chosen", "rejected"].filter((k) => k in row.data)
        .flatMap((k) => [h("dt", {}, k), h("dd", { "data-field": k }, text(row.data[k]))])),
      h("div", { id: "history" }, historyTable(reviews)));
    card.dataset.id = row.id;
  }

  async function act(decision, edits = null) {
    const row = rows[at];
    try {
      const review = await decide(row.id, decision, { edits, note: note.value });
      row.review = review.decision;
      if (edits) Object.assign(row.data, edits);
      note.value = "";
      show(`${decision}: ${row.id}`);
      if (at < rows.length - 1) at += 1;
      await showRow();
    } catch (error) {
      show(error.message, true);
    }
  }

  function onKey(event) {
    if (!rows.length) return;
    if (editing) {
      if (event.key === "Escape") showRow();
      if (event.key === "Enter" && event.ctrlKey) {
        const edits = editing.changed();
        if (edits) act("edit", edits);
        else show("nothing was changed", true);
      }
      return;
    }
    if (["INPUT", "TEXTAREA", "SELECT"].includes(event.target.tagName)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    const keys = {
      a: () => act("accept"),
      r: () => act("reject"),
      e: () => { editing = editForm(rows[at].data); card.append(editing); editing.querySelector("textarea")?.focus(); },
      j: () => { if (at < rows.length - 1) { at += 1; showRow(); } },
      k: () => { if (at > 0) { at -= 1; showRow(); } },
      n: () => note.focus(),
    };
    if (keys[event.key] && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      keys[event.key]();
    }
  }

  document.addEventListener("keydown", onKey);
  await showRow();
  return () => document.removeEventListener("keydown", onKey);
}
