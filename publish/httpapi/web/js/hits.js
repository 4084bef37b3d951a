// The hit timeline: LR probe | SR face | detector framing | gallery photo,
// with the attributes that guided SR and the match scores.
import { api } from "./api.js";
import { $, h, fmtTime, pct } from "./dom.js";

let next = "";

export function init() {
  $("#hit-filter").addEventListener("submit", (ev) => {
    ev.preventDefault();
    load(true).catch((e) => $("#status").replaceChildren(e.message));
  });
  $("#hits-more").addEventListener("click", () => load(false).catch((e) => $("#status").replaceChildren(e.message)));
}

export async function show() {
  await load(true);
}

export function hide() {}

async function load(fresh) {
  const q = new URLSearchParams({ limit: "20" });
  for (const [k, v] of new FormData($("#hit-filter"))) if (v) q.set(k, v);
  if (!fresh && next) q.set("before", next);
  const page = await api(`/api/v1/hits?${q}`);
  const list = $("#timeline");
  if (fresh) list.replaceChildren();
  for (const hit of page.hits) list.append(card(hit));
  if (fresh && page.hits.length === 0) list.append(h("li", { className: "dim" }, "No hits."));
  next = page.next || "";
  $("#hits-more").hidden = !next;
}

function figure(src, caption, className = "") {
  return h("figure", {}, h("img", { src, alt: caption, className, loading: "lazy", width: 128, height: 128 }), h("figcaption", {}, caption));
}

function attrRows(attrs) {
  return (attrs || []).map((a) =>
    h("tr", {}, h("td", {}, a.name),
      h("td", {}, a.label === null ? "not guided" : a.label ? "yes" : "no"),
      h("td", { className: "dim" }, a.source),
      h("td", { className: "dim" }, a.probability === null ? "" : `p=${pct(a.probability)}`)));
}

function card(hit) {
  const m = hit.match || {};
  const imgs = h("div", { className: "images" },
    figure(hit.images.lr, `LR ${hit.sr.lr_size}px`, "lr"),
    figure(hit.images.sr, "SR"),
    figure(hit.images.preview, "bicubic"),
    m.known && hit.images.gallery ? figure(hit.images.gallery, `gallery: ${m.name}`) : null);
  const facts = h("table", {},
    h("tr", {}, h("th", {}, "time"), h("td", { colSpan: 3 }, fmtTime(hit.time))),
    h("tr", {}, h("th", {}, "camera"), h("td", { colSpan: 3 }, `${hit.camera}, track ${hit.track_id}, ${hit.face_px}px face`)),
    h("tr", {}, h("th", {}, "SR"), h("td", { colSpan: 3 },
      `${hit.sr.sampler}, ${hit.sr.steps} steps, ${hit.sr.ms.toFixed(0)} ms, x${hit.sr.scale}${hit.sr.guided ? `, guided w=${hit.sr.guidance_weight}` : ""}`)),
    ...attrRows(hit.attributes),
    h("tr", {}, h("th", {}, "match"), h("td", { colSpan: 3, className: "match" },
      m.known ? `${m.name}: ${pct(m.similarity)}` : `unknown (${m.reason || "no match"})`,
      ` threshold ${pct(m.threshold)}, margin ${pct(m.margin)}`)),
    ...(m.top_k || []).map((c, i) => h("tr", { className: "dim" }, h("td", {}, `#${i + 1}`), h("td", { colSpan: 3 }, `${c.name} ${pct(c.similarity)}`))));
  return h("li", { className: m.known ? "hit known" : "hit", dataset: { id: hit.id } }, imgs, facts);
}
