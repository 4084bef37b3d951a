// The gallery: enrolled people, enrolment with photo upload, removal.
import { api } from "./api.js";
import { $, h, status } from "./dom.js";

const photoURL = (name) => `/api/v1/gallery/${encodeURIComponent(name)}/photo.jpg`;

export function init() {
  $("#enrol-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    enrol(ev.target).catch((e) => status(e.message));
  });
}

export async function show() {
  $("#enrol-results").replaceChildren();
  await list();
}

export function hide() {}

const attr = (v) => (v === null || v === undefined ? null : v ? "yes" : "no");

async function list() {
  const { people } = await api("/api/v1/gallery");
  const rows = people.map((p) => {
    const forced = [["male", p.male], ["glasses", p.glasses], ["no beard", p.no_beard]]
      .filter(([, v]) => attr(v)).map(([k, v]) => `${k}: ${attr(v)}`).join(", ");
    const remove = h("button", { type: "button", onclick: () => removePerson(p.name) }, "Remove");
    return h("tr", { dataset: { name: p.name } },
      h("td", {}, h("img", { src: photoURL(p.name), alt: p.name, loading: "lazy" })),
      h("td", {}, p.name), h("td", {}, `${p.photos}`),
      h("td", {}, h("button", { type: "button", className: "watchlist", dataset: { on: p.watchlist ? "1" : "" },
        onclick: () => setWatchlist(p.name, !p.watchlist).catch((e) => status(e.message)) }, p.watchlist ? "on watchlist" : "add to watchlist")),
      h("td", { className: "dim" }, forced || "predicted",
        p.threshold_offset || p.margin_offset
          ? h("div", { className: "override", title: "threshold override: added to the bar a decision naming this person is held to" },
            `threshold ${p.threshold_offset >= 0 ? "+" : ""}${p.threshold_offset.toFixed(3)}, margin ${p.margin_offset >= 0 ? "+" : ""}${p.margin_offset.toFixed(3)}`)
          : null),
      h("td", {}, remove));
  });
  if (rows.length === 0) rows.push(h("tr", {}, h("td", { colSpan: 6, className: "dim" }, "Nobody enrolled.")));
  $("#people tbody").replaceChildren(...rows);
}

async function enrol(form) {
  status("");
  const res = await fetch("/api/v1/gallery", { method: "POST", credentials: "same-origin", body: new FormData(form) });
  const body = await res.json();
  const out = $("#enrol-results");
  out.replaceChildren();
  if (body.photos) {
    for (const p of body.photos) {
      out.append(h("li", { className: p.result === "enrolled" ? "enrolled" : "rejected" },
        `${p.source}: ${p.result.replace("_", " ")}${p.error ? ` (${p.error})` : ""}`));
    }
  }
  if (!res.ok) {
    status(body.error || res.statusText);
    return;
  }
  form.reset();
  await list();
}

async function setWatchlist(name, on) {
  await api(`/api/v1/gallery/${encodeURIComponent(name)}`, {
    method: "PATCH", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ watchlist: on }),
  });
  await list();
}

async function removePerson(name) {
  if (!confirm(`Remove ${name} and all their photos from the gallery?`)) return;
  await api(`/api/v1/gallery/${encodeURIComponent(name)}`, { method: "DELETE" });
  await list();
}
