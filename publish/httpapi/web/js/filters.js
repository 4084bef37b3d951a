// Filter forms of the hits and visits views: suggestions for the camera
// and person fields (the configured cameras, the enrolled people), and the
// message of an empty result that says why: a camera that is not
// configured, a person nobody enrolled under that name, or just nothing
// yet. The person filter of the API is case-insensitive and also finds
// faces where the person was only a candidate.
import { api } from "./api.js";
import { h } from "./dom.js";

let known = { cameras: [], people: [] };

// suggest fills the datalists of form's camera and person inputs.
export async function suggest(form) {
  const [cams, gallery] = await Promise.allSettled([api("/api/v1/cameras"), api("/api/v1/gallery")]);
  known = {
    cameras: cams.status === "fulfilled" ? cams.value.cameras.map((c) => c.camera) : known.cameras,
    people: gallery.status === "fulfilled" ? gallery.value.people.map((p) => p.name) : known.people,
  };
  for (const [field, values] of [["camera", known.cameras], ["person", known.people]]) {
    const input = form.querySelector(`input[name="${field}"]`);
    if (!input) continue;
    const id = `${form.id}-${field}-list`;
    let list = document.getElementById(id);
    if (!list) {
      list = h("datalist", { id });
      form.append(list);
      input.setAttribute("list", id);
    }
    list.replaceChildren(...values.map((v) => h("option", { value: v })));
  }
}

// emptyMessage is the text of an empty list of noun ("hits", "visits")
// under form's filter.
export function emptyMessage(form, noun, fallback) {
  const camera = form.querySelector('input[name="camera"]')?.value.trim() || "";
  const person = form.querySelector('input[name="person"]')?.value.trim() || "";
  if (camera && known.cameras.length && !known.cameras.includes(camera)) {
    const near = known.cameras.find((c) => c.toLowerCase() === camera.toLowerCase());
    return `No ${noun}: there is no camera "${camera}"${near ? ` (did you mean "${near}"? camera names are exact)` : ""}. ` +
      `Cameras: ${known.cameras.join(", ")}.`;
  }
  if (person && known.people.length && !known.people.some((p) => p.toLowerCase() === person.toLowerCase())) {
    const near = known.people.filter((p) => p.toLowerCase().includes(person.toLowerCase())).slice(0, 5);
    return `No ${noun} for "${person}": nobody is enrolled under that name` +
      (near.length ? ` (did you mean ${near.map((n) => `"${n}"`).join(", ")}?)` : "") + ".";
  }
  return fallback;
}
