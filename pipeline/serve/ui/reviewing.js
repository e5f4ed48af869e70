// Reviews by hand: who reviews (kept in this browser), posting a decision, and the edit form.
import { get, post } from "./api.js";
import { h } from "./dom.js";

export const EDITABLE = ["instruction", "response", "chosen"];

export function reviewerInput() {
  return h("input", {
    id: "reviewer", name: "reviewer", placeholder: "your name", required: true,
    value: localStorage.getItem("safeset_reviewer") || "",
    onchange: (e) => localStorage.setItem("safeset_reviewer", e.target.value.trim()),
  });
}

export async function decide(recordId, decision, { edits = null, note = "" } = {}) {
  const reviewer = (localStorage.getItem("safeset_reviewer") || "").trim();
  if (!reviewer) throw new Error("give your name as the reviewer first");
  const body = { reviewer, decision, note: note || null };
  if (edits) body.edits = edits;
  return post(`/v1/records/${encodeURIComponent(recordId)}/reviews`, body);
}

export const history = (recordId) => get(`/v1/records/${encodeURIComponent(recordId)}/reviews`);

// Text areas for the editable fields the record has, and a way to read back the changed ones.
export function editForm(data) {
  const areas = EDITABLE.filter((k) => k in data).map((k) => [k, h("textarea", { name: `edit-${k}` }, data[k])]);
  const form = h("div", { class: "edit" },
    areas.map(([k, area]) => h("label", {}, k, area)),
    h("p", { class: "keys" }, h("kbd", {}, "Ctrl+Enter"), " saves the edit, ", h("kbd", {}, "Esc"), " cancels"));
  form.changed = () => {
    const edits = {};
    for (const [k, area] of areas) if (area.value !== data[k]) edits[k] = area.value;
    return Object.keys(edits).length ? edits : null;
  };
  return form;
}

export function historyTable(reviews) {
  if (!reviews.length) return h("p", { class: "reviews" }, "Not reviewed yet.");
  return h("table", { class: "reviews" },
    h("thead", {}, h("tr", {}, ["when", "reviewer", "decision", "edits", "note"].map((c) => h("th", {}, c)))),
    h("tbody", {}, reviews.map((r) => h("tr", {},
      h("td", {}, r.created_at), h("td", {}, r.reviewer), h("td", { class: `decision-${r.decision}` }, r.decision),
      h("td", { class: "text" }, r.edits ? Object.entries(r.edits).map(([k, v]) => `${k}: ${v}`).join("\n") : "–"),
      h("td", { class: "text" }, r.note || "–")))));
}
