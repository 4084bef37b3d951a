// The audit log, newest first, in pages, filtered by actor, action (a
// prefix ending in "." takes a family: "gallery.") and target (a person's
// name, a hit or visit id). The image fetches of one hit by one actor
// within a minute are one line ("hit.image ×3: lr.png, sr.jpg,
// preview.jpg").
import { api } from "./api.js";
import { $, h, fmtTime } from "./dom.js";

const PAGE = 200;
let before = 0;
// groups: the line of each hit's image fetches by one actor, by
// actor and hit id, across pages (the browser fetches a page of cards'
// images in parallel, so one hit's entries interleave with others')
let groups = new Map();

export function init() {
  $("#audit-filter").addEventListener("submit", (ev) => {
    ev.preventDefault();
    show().catch((e) => $("#status").replaceChildren(e.message));
  });
  $("#audit-more").addEventListener("click", () => load().catch((e) => $("#status").replaceChildren(e.message)));
}

export async function show() {
  before = 0;
  groups = new Map();
  $("#audit-log tbody").replaceChildren();
  await load();
}

export function hide() {}

async function load() {
  const q = new URLSearchParams({ order: "newest", limit: String(PAGE) });
  for (const [k, v] of new FormData($("#audit-filter"))) if (v.trim()) q.set(k, v.trim());
  if (before) q.set("before", String(before));
  const page = await api(`/api/v1/audit?${q}`);
  const body = $("#audit-log tbody");
  for (const e of page.entries) {
    const g = e.action === "hit.image" ? groups.get(`${e.actor}\x00${e.target}`) : null;
    if (g && Math.abs(new Date(g.time) - new Date(e.time)) < 60000) {
      g.seqs.push(e.seq);
      g.details.push(e.detail || "");
      g.seq.textContent = `${Math.min(...g.seqs)}–${Math.max(...g.seqs)}`;
      g.action.textContent = `${e.action} ×${g.seqs.length}`;
      g.detail.textContent = g.details.join(", ");
      continue;
    }
    const seq = h("td", {}, `${e.seq}`);
    const action = h("td", {}, e.action);
    const detail = h("td", {}, e.detail || "");
    body.append(h("tr", { dataset: { action: e.action } }, seq, h("td", {}, fmtTime(e.time)), h("td", {}, e.actor),
      action, h("td", {}, e.target), detail, h("td", { className: "dim" }, e.remote)));
    if (e.action === "hit.image") {
      groups.set(`${e.actor}\x00${e.target}`, { time: e.time, seqs: [e.seq], details: [e.detail || ""], seq, action, detail });
    }
  }
  if (body.children.length === 0) body.append(h("tr", {}, h("td", { colSpan: 7, className: "dim" }, "No entries.")));
  if (page.entries.length) before = page.entries[page.entries.length - 1].seq;
  $("#audit-more").hidden = page.next === undefined;
}
