// Tiny DOM helpers: elements are built with properties and text, never
// from HTML strings, so names and camera ids cannot inject markup.

// h creates an element: h("td", {className: "x"}, "text", child, ...).
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el[k] = v;
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export const $ = (sel) => document.querySelector(sel);

export function status(msg) {
  $("#status").textContent = msg || "";
}

export function fmtTime(s) {
  const d = new Date(s);
  return isNaN(d) ? "" : d.toLocaleString();
}

export function pct(x) {
  return typeof x === "number" ? x.toFixed(3) : "–";
}
