// The visit timeline: one card per visit (a person's pass in front of a
// camera, decided from all of its shots fused): best SR shot | LR | bicubic,
// the decision with its confidence, the top candidates with their gallery
// photos and fused scores, open or ended, and the strip of the visit's shots.
// While the view is open it asks for the newest visits every POLL_MS and
// adds new cards and replaces changed ones (a visit's events: new, update,
// end) in place.
import { api } from "./api.js";
import { $, h, fmtTime, pct } from "./dom.js";
import { explanation } from "./explain.js";
import { feedbackControls } from "./feedback.js";
import { emptyMessage, suggest } from "./filters.js";
import { Poller } from "./poll.js";

const POLL_MS = 3000;
const PAGE = 20;
let next = "";
const poller = new Poller(POLL_MS);

export function init() {
  $("#visit-filter").addEventListener("submit", (ev) => {
    ev.preventDefault();
    load(true).catch((e) => $("#status").replaceChildren(e.message));
  });
  $("#visits-more").addEventListener("click", () => load(false).catch((e) => $("#status").replaceChildren(e.message)));
}

export async function show() {
  await poller.start(() => Promise.all([suggest($("#visit-filter")).catch(() => {}), load(true)]), refresh);
}

export function hide() {
  poller.stop();
}

function filters() {
  const q = new URLSearchParams({ limit: String(PAGE) });
  for (const [k, v] of new FormData($("#visit-filter"))) if (v.trim()) q.set(k, v.trim());
  return q;
}

async function load(fresh) {
  const q = filters();
  if (!fresh && next) q.set("before", next);
  const page = await api(`/api/v1/visits?${q}`);
  const list = $("#visit-timeline");
  if (fresh) list.replaceChildren();
  list.querySelector(".empty")?.remove();
  for (const v of page.visits) list.append(card(v));
  if (list.children.length === 0) list.append(h("li", { className: "dim empty" }, emptyMessage($("#visit-filter"), "visits", "No visits yet.")));
  next = page.next || "";
  $("#visits-more").hidden = !next;
}

// refresh merges the newest page into the list: new visits go in by id
// (newest first), a card whose visit changed is replaced.
async function refresh() {
  const page = await api(`/api/v1/visits?${filters()}`);
  const list = $("#visit-timeline");
  for (const v of page.visits) {
    const key = renderKey(v);
    const old = list.querySelector(`.visit[data-id="${CSS.escape(v.id)}"]`);
    if (old) {
      if (old.dataset.key !== key) old.replaceWith(card(v));
      continue;
    }
    list.querySelector(".empty")?.remove();
    const after = [...list.querySelectorAll(".visit")].find((c) => c.dataset.id < v.id);
    list.insertBefore(card(v), after || null);
  }
}

// renderKey changes when a card must be drawn again: a new event, or a
// shot's image that has reached the history since.
function renderKey(v) {
  return `${v.rev}/${v.shots.filter((s) => s.images).length}/${v.images.best ? 1 : 0}`;
}

function figure(src, caption, className = "") {
  return h("figure", {}, h("img", { src, alt: caption, className, width: 128, height: 128 }), h("figcaption", {}, caption));
}

function placeholder(caption) {
  return h("figure", { className: "missing" }, h("div", { className: "noimg" }, "not stored"), h("figcaption", {}, caption));
}

function decisionText(d) {
  if (d.known) return `${d.name}`;
  return `unknown${d.reason ? ` (${d.reason.replaceAll("_", " ")})` : ""}`;
}

function confidence(d) {
  return typeof d.confidence === "number" ? `${Math.round(d.confidence * 100)}%` : "–";
}

function candidates(v) {
  const photos = new Map((v.images.candidates || []).map((c) => [c.name, c.photo]));
  const top = v.decision.top_k || [];
  if (top.length === 0) return h("p", { className: "dim" }, "no candidates");
  return h("ol", { className: "candidates" }, ...top.map((c, i) => {
    const photo = photos.get(c.name);
    return h("li", { className: v.decision.known && i === 0 ? "chosen" : "" },
      photo ? h("img", { src: photo, alt: `gallery: ${c.name}`, width: 48, height: 48 }) : h("div", { className: "noimg small" }),
      h("span", { className: "name" }, c.name),
      h("span", { className: "score" }, `fused ${pct(c.similarity)}`));
  }));
}

function shotStrip(v) {
  return h("div", { className: "shots" }, ...v.shots.map((s) => {
    const best = s.hit_id === v.best_shot;
    const caption = `${s.face_px}px q${pct(s.quality)}${s.similarity ? ` s${pct(s.similarity)}` : ""}`;
    return h("figure", { className: best ? "best" : "", dataset: { hit: s.hit_id } },
      s.images ? h("img", { src: s.images.sr, alt: `shot ${s.hit_id}`, width: 64, height: 64 }) : h("div", { className: "noimg small" }, "–"),
      h("figcaption", {}, caption));
  }));
}

function card(v) {
  const d = v.decision;
  const open = v.state !== "end";
  const b = v.images.best;
  const imgs = h("div", { className: "images" },
    b ? figure(b.sr, "best SR") : placeholder("best SR"),
    b ? figure(b.lr, "LR", "lr") : placeholder("LR"),
    b ? figure(b.preview, "bicubic") : placeholder("bicubic"),
    d.known && v.images.gallery ? figure(v.images.gallery, `gallery: ${d.name}`) : null);
  const end = v.end || v.last_seen;
  const secs = Math.max(0, (new Date(end) - new Date(v.start)) / 1000);
  const facts = h("div", { className: "facts" },
    h("p", { className: "decision" },
      h("strong", {}, decisionText(d)),
      h("span", { className: "confidence" }, ` confidence ${confidence(d)}`),
      h("span", { className: `state ${open ? "open" : "ended"}` }, open ? "open" : "ended"),
      v.repeat ? h("span", { className: "dim" }, " (repeat: no alert)") : null),
    h("p", { className: "dim" },
      `${v.camera}, track ${v.track_id}, ${fmtTime(v.start)}, ${secs.toFixed(0)} s, largest face ${v.face_px}px; `,
      `${d.shots} shot${d.shots === 1 ? "" : "s"} fused (${d.fusion || "–"}), threshold ${pct(d.threshold)}, margin ${pct(d.margin)} (min ${pct(d.min_margin)})`),
    explanation(d, { photo: true }),
    candidates(v),
    shotStrip(v),
    v.best_shot ? feedbackControls(`/api/v1/visits/${v.id}`, d) : null);
  return h("li", {
    className: `visit ${d.known ? "known" : "unknown"} ${open ? "open" : "ended"}`,
    dataset: { id: v.id, key: renderKey(v), state: v.state },
  }, imgs, facts);
}
