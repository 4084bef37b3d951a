// Operator feedback on a hit or a visit: "this is X", "not X", "not
// anyone enrolled" (POST .../feedback). A confirmed sighting becomes a
// template of the person, a rejected one a negative (README, "Feedback").
import { postJSON } from "./api.js";
import { h } from "./dom.js";
import { closest } from "./explain.js";

// feedbackControls returns the controls for the sighting at path (e.g.
// /api/v1/hits/ID) decided as m (a hit's match or a visit's decision).
export function feedbackControls(path, m) {
  const c = closest(m);
  const named = m && m.known ? m.name : "";
  const out = h("span", { className: "feedback-result dim", role: "status" });
  const send = async (body, what) => {
    out.textContent = "…";
    try {
      const r = await postJSON(`${path}/feedback`, body);
      const who = r.stored.map((s) => s.person).join(", ");
      out.textContent = `${what}: stored for ${who}`;
    } catch (e) {
      out.textContent = `not stored: ${e.message}`;
    }
  };
  const person = h("input", { type: "text", name: "person", placeholder: "name", value: c ? c.name : "", size: 16, title: "who this is" });
  const confirmBtn = h("button", { type: "button", className: "fb-confirm", onclick: () => {
    const p = person.value.trim();
    if (!p) {
      out.textContent = "say who it is";
      return;
    }
    send({ verdict: "confirm", person: p }, `confirmed as ${p}`);
  } }, "This is");
  const rejectName = named || (c ? c.name : "");
  const rejectBtn = rejectName
    ? h("button", { type: "button", className: "fb-reject", onclick: () => send({ verdict: "reject", person: rejectName }, `not ${rejectName}`) }, `Not ${rejectName}`)
    : null;
  const noneBtn = rejectName
    ? h("button", { type: "button", className: "fb-none", onclick: () => send({ verdict: "not_enrolled" }, "not anyone enrolled") }, "Not anyone enrolled")
    : null;
  return h("div", { className: "feedback" }, confirmBtn, person, rejectBtn, noneBtn, out);
}
