// A run's datasets as a paged table, filtered and paged by the server (DuckDB): filters with counts per
// value, text search, column choice; the filters live in the address, so a view can be shared.
import { get, query } from "./api.js";
import { h, select, short, show } from "./dom.js";

export const FILTERS = {
  category: "intended category", judged_category: "judged category", agreement: "judge agreement",
  tactic: "tactic", persona_id: "persona", review: "review",
};
const LINEAGE = ["id", "category", "judged_category", "agreement", "tactic", "persona_id", "review", "reviewer"];
const DEFAULT_COLUMNS = ["id", "category", "judged_category", "tactic", "review", "instruction", "response", "chosen"];
const PAGE = 50;

export function filtersOf(params) {
  const found = {};
  for (const key of [...Object.keys(FILTERS), "q"]) if (params.get(key)) found[key] = params.get(key);
  return found;
}

export async function renderBrowse(main, runId, params) {
  const { datasets } = await get(`/v1/runs/${encodeURIComponent(runId)}/datasets`);
  const names = Object.keys(datasets);
  main.append(h("h1", {}, `Run ${runId}`));
  if (!names.length) {
    main.append(h("p", {}, "This run has no dataset rows yet."));
    return;
  }
  const dataset = names.includes(params.get("dataset")) ? params.get("dataset") : names[0];
  const filters = filtersOf(params);
  const offset = Number(params.get("offset") || 0);
  const go = (changes) => {
    const next = { dataset, ...filters, offset: 0, columns: params.get("columns"), ...changes };
    location.hash = `#/browse/${encodeURIComponent(runId)}?${query(next)}`;
  };
  const page = await get(`/v1/runs/${encodeURIComponent(runId)}/datasets/${dataset}/rows?${query({ ...filters, offset, limit: PAGE })}`);

  const fields = [...new Set(page.items.flatMap((row) => Object.keys(row.data)))];
  const available = [...new Set([...LINEAGE, ...fields])];
  const columns = (params.get("columns") || DEFAULT_COLUMNS.join(",")).split(",").filter((c) => available.includes(c));

  main.append(
    h("nav", { class: "datasets" }, names.map((name) => h("button", {
      "data-dataset": name, disabled: name === dataset, onclick: () => go({ dataset: name, ...clearFilters() }),
    }, `${name} (${datasets[name]})`))),
    h("form", { class: "filters", id: "filters", onsubmit: (e) => { e.preventDefault(); go({ q: e.target.q.value }); } },
      Object.entries(FILTERS).map(([name, label]) =>
        select(name, label, page.counts[name], filters[name], (e) => go({ [name]: e.target.value }))),
      h("label", {}, "search ", h("input", { name: "q", type: "search", value: filters.q || "" })),
      h("button", { type: "submit" }, "Search"),
      h("button", { type: "button", onclick: () => go(clearFilters()) }, "Clear"),
      h("a", { id: "review-queue", href: `#/review/${encodeURIComponent(runId)}?${query({ dataset, ...filters })}` },
        "Review these rows")),
    h("details", { class: "columns" }, h("summary", {}, "Columns"),
      available.map((c) => h("label", {}, h("input", {
        type: "checkbox", name: c, checked: columns.includes(c),
        onchange: () => go({ offset, columns: available.filter((a) => a === c ? !columns.includes(c) : columns.includes(a)).join(",") }),
      }), ` ${c} `))),
    h("p", { id: "total" }, page.total ? `rows ${offset + 1}–${offset + page.items.length} of ${page.total}` : "no row matches"),
    h("table", { id: "rows" },
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", {}, c)))),
      h("tbody", {}, page.items.map((row) => h("tr", { "data-id": row.id }, columns.map((c) => cell(row, c)))))),
    h("div", { class: "pager" },
      h("button", { disabled: offset === 0, onclick: () => go({ offset: Math.max(0, offset - PAGE) }) }, "Previous"),
      h("button", { disabled: offset + PAGE >= page.total, onclick: () => go({ offset: offset + PAGE }) }, "Next")));
  show(`${page.total} rows`);
}

function clearFilters() {
  return Object.fromEntries([...Object.keys(FILTERS), "q"].map((k) => [k, ""]));
}

function cell(row, column) {
  if (column === "id") return h("td", {}, h("a", { href: `#/record/${encodeURIComponent(row.id)}` }, row.id));
  const value = LINEAGE.includes(column) ? row[column] : row.data[column];
  return h("td", { class: `text ${column === "review" ? `decision-${value}` : ""}` }, short(value, 240));
}
