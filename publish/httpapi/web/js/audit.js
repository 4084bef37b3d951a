// The audit log, oldest first, in pages.
import { api } from "./api.js";
import { $, h, fmtTime } from "./dom.js";

let after = 0;

export function init() {
  $("#audit-more").addEventListener("click", () => load().catch((e) => $("#status").replaceChildren(e.message)));
}

export async function show() {
  after = 0;
  $("#audit-log tbody").replaceChildren();
  await load();
}

export function hide() {}

async function load() {
  const page = await api(`/api/v1/audit?after=${after}&limit=200`);
  $("#audit-log tbody").append(...page.entries.map((e) =>
    h("tr", {}, h("td", {}, `${e.seq}`), h("td", {}, fmtTime(e.time)), h("td", {}, e.actor),
      h("td", {}, e.action), h("td", {}, e.target), h("td", {}, e.detail || ""), h("td", { className: "dim" }, e.remote))));
  if (page.entries.length) after = page.entries[page.entries.length - 1].seq;
  $("#audit-more").hidden = page.next === undefined;
}
