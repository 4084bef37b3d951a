// The hit timeline: LR probe | SR face | detector framing | gallery photo,
// with the attributes that guided SR and the match scores; new hits appear
// on top while the view is open.
import { api } from "./api.js";
import { $, h, fmtTime, pct } from "./dom.js";
import { closest, explanation } from "./explain.js";
import { feedbackControls } from "./feedback.js";
import { emptyMessage, suggest } from "./filters.js";
import { Poller } from "./poll.js";

const POLL_MS = 5000;
const PAGE = 20;
let next = "";
const poller = new Poller(POLL_MS);

export function init() {
  $("#hit-filter").addEventListener("submit", (ev) => {
    ev.preventDefault();
    load(true).catch((e) => $("#status").replaceChildren(e.message));
  });
  $("#hits-more").addEventListener("click", () => load(false).catch((e) => $("#status").replaceChildren(e.message)));
}

// show loads the newest hits, then asks for newer ones every POLL_MS while
// the view is open (new cards go on top; older pages stay as loaded).
export async function show() {
  await poller.start(() => Promise.all([suggest($("#hit-filter")).catch(() => {}), load(true)]), refresh);
}

export function hide() {
  poller.stop();
}

function filters() {
  const q = new URLSearchParams({ limit: String(PAGE) });
  for (const [k, v] of new FormData($("#hit-filter"))) if (v.trim()) q.set(k, v.trim());
  return q;
}

async function load(fresh) {
  const q = filters();
  if (!fresh && next) q.set("before", next);
  const page = await api(`/api/v1/hits?${q}`);
  const list = $("#timeline");
  if (fresh) list.replaceChildren();
  list.querySelector(".empty")?.remove();
  for (const hit of page.hits) list.append(card(hit));
  if (list.children.length === 0) list.append(h("li", { className: "dim empty" }, emptyMessage($("#hit-filter"), "hits", "No hits yet.")));
  next = page.next || "";
  $("#hits-more").hidden = !next;
}

// refresh puts hits newer than the newest card on top (ids sort by time).
async function refresh() {
  const page = await api(`/api/v1/hits?${filters()}`);
  const list = $("#timeline");
  const newest = list.querySelector(".hit")?.dataset.id || "";
  const fresh = page.hits.filter((hit) => hit.id > newest);
  if (fresh.length === 0) return;
  list.querySelector(".empty")?.remove();
  list.prepend(...fresh.map(card));
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

// closestFigure is the gallery photo of the matched person, or of the
// closest candidate of an unknown face; a photo that is gone (the person
// was removed since) takes its figure with it.
function closestFigure(hit) {
  const m = hit.match || {};
  const c = closest(m);
  const src = hit.images.closest || hit.images.gallery || "";
  if (!c || !src) return null;
  const fig = figure(src, m.known ? `gallery: ${m.name}` : `closest: ${c.name}`, "closest");
  fig.querySelector("img").addEventListener("error", () => fig.remove());
  return fig;
}

// srFacts describes the SR run, or says that the face was read without
// one (srdg.direct_side: its crop is large enough to read as it is).
function srFacts(sr) {
  if (sr.sampler === "direct") return `none: the crop read directly (scale ${sr.scale})`;
  return `${sr.sampler}, ${sr.steps} steps, ${sr.ms.toFixed(0)} ms, x${sr.scale}${sr.guided ? `, guided w=${+sr.guidance_weight.toFixed(2)}` : ""}`;
}

function card(hit) {
  const m = hit.match || {};
  const imgs = h("div", { className: "images" },
    figure(hit.images.lr, `LR ${hit.sr.lr_size}px`, "lr"),
    figure(hit.images.sr, hit.sr.sampler === "direct" ? "read directly" : "SR"),
    figure(hit.images.preview, "bicubic"),
    closestFigure(hit));
  const facts = h("table", {},
    h("tr", {}, h("th", {}, "time"), h("td", { colSpan: 3 }, fmtTime(hit.time))),
    h("tr", {}, h("th", {}, "camera"), h("td", { colSpan: 3 }, `${hit.camera}, track ${hit.track_id}, ${hit.face_px}px face`)),
    h("tr", {}, h("th", {}, "SR"), h("td", { colSpan: 3 }, srFacts(hit.sr))),
    ...attrRows(hit.attributes),
    h("tr", {}, h("th", {}, "match"), h("td", { colSpan: 3, className: "match" }, explanation(m))),
    ...(m.top_k || []).map((c, i) => h("tr", { className: "dim" }, h("td", {}, `#${i + 1}`), h("td", { colSpan: 3 }, `${c.name} ${pct(c.similarity)}`))));
  return h("li", { className: m.known ? "hit known" : "hit", dataset: { id: hit.id } }, imgs, facts,
    feedbackControls(`/api/v1/hits/${hit.id}`, m));
}
