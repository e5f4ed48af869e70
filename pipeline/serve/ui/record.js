// A record with its whole chain: the parents back to the root (scenario → persona → instruction →
// verdict → dedup → rewrite → response and its check; for EvoRefuse the mutations and recombinations
// back to the seed, with strategy, verdict, reason and fitness terms as stored), what consumed it, and
// its reviews.
import { get } from "./api.js";
import { h, show, text } from "./dom.js";
import { decide, editForm, history, historyTable, reviewerInput } from "./reviewing.js";

const SUMMARY = ["operation", "strategy", "group", "iteration", "verdict", "error", "category", "judged_category",
  "reason", "harmless_reason", "fitness", "refusal_term", "confidence_term", "refusal_rate", "tactic", "passed",
  "check", "duplicate_of", "name", "instruction", "text", "response"];

export async function renderRecord(main, recordId) {
  const record = await get(`/v1/records/${encodeURIComponent(recordId)}`);
  const { reviews } = await history(record.id);
  const reviewsBox = h("div", { id: "reviews" }, historyTable(reviews));
  const note = h("input", { name: "note", placeholder: "note (optional)" });
  const editBox = h("div");
  const act = async (decision, edits = null) => {
    try {
      await decide(record.id, decision, { edits, note: note.value });
      reviewsBox.replaceChildren(historyTable((await history(record.id)).reviews));
      editBox.replaceChildren();
      show(`${decision}: ${record.id}`);
    } catch (error) {
      show(error.message, true);
    }
  };
  const startEdit = () => {
    const form = editForm(record.data);
    editBox.replaceChildren(form, h("button", { onclick: () => act("edit", form.changed()) }, "Save edit"));
  };
  main.append(
    h("h1", {}, `${record.stage} ${record.id}`),
    h("p", {}, `run ${record.run_id} · model ${text(record.model)} · prompt ${text(record.prompt_name)}@${text(record.prompt_version)}`),
    h("section", { class: "card" }, h("h2", {}, "Record"), fields(record.data)),
    h("section", { class: "card", id: "review" }, h("h2", {}, "Review"),
      h("label", {}, "reviewer ", reviewerInput()), " ", note, " ",
      h("button", { onclick: () => act("accept") }, "Accept"),
      h("button", { onclick: () => act("reject") }, "Reject"),
      h("button", { onclick: startEdit }, "Edit"), editBox, reviewsBox),
    h("section", { class: "card", id: "lineage" }, h("h2", {}, "Lineage (each record above the ones it came from)"),
      h("ul", { class: "tree" }, node(record))),
    h("section", { class: "card" }, h("h2", {}, "Outcomes and children"),
      h("ul", {}, record.outcomes.map((o) => h("li", {}, `${o.stage}: ${o.status}${o.reason ? ` (${o.reason})` : ""}`)),
        record.children.map((c) => h("li", {}, "child ", h("a", { href: `#/record/${encodeURIComponent(c.id)}` }, c.id), ` (${c.stage})`)))));
}

function fields(data) {
  return h("dl", { class: "fields" }, Object.entries(data).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, text(v))]));
}

function node(r) {
  const shown = SUMMARY.filter((k) => r.data && k in r.data && r.data[k] != null);
  return h("li", {},
    h("div", { class: "node", "data-stage": r.stage },
      h("span", { class: "stage" }, r.stage), " ",
      h("a", { href: `#/record/${encodeURIComponent(r.id)}` }, r.id),
      r.persona_id ? ` · persona ${r.persona_id}` : null,
      h("dl", { class: "fields" }, shown.flatMap((k) => [h("dt", {}, k), h("dd", {}, text(r.data[k]))]))),
    r.parents?.length ? h("ul", {}, r.parents.map(node)) : null);
}
