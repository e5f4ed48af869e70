// Building the page: every value from the server becomes a text node or an attribute, never markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else if (value !== false && value != null) el.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function show(message, isError = false) {
  const status = document.getElementById("status");
  status.textContent = message;
  status.className = isError ? "error" : "";
}

// A value of a record as text: strings as they are, anything else as JSON.
export function text(value) {
  if (value == null) return "–";
  return typeof value === "string" ? value : JSON.stringify(value);
}

export function short(value, n = 160) {
  const s = text(value);
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

export function select(name, label, counts, chosen, onchange) {
  const options = Object.entries(counts || {}).sort(([a], [b]) => a.localeCompare(b));
  return h("label", {}, label, " ",
    h("select", { name, onchange },
      h("option", { value: "" }, "any"),
      options.map(([value, n]) => h("option", { value, selected: value === chosen }, `${value} (${n})`)),
      chosen && !(chosen in (counts || {})) ? h("option", { value: chosen, selected: true }, chosen) : null));
}
