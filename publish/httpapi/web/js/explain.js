// Explanations of identity decisions, for hit cards, visits and box
// labels: the decision's one sentence and the closest candidate's gallery
// photo. Works on a hit's `match` and on a visit's `decision` alike.
import { h, pct } from "./dom.js";

// closest returns the closest candidate of a decision, or null.
export function closest(m) {
  if (!m) return null;
  const e = m.explanation;
  if (e && e.closest) return e.closest;
  return (m.top_k && m.top_k[0]) || null;
}

// closestPhoto is the gallery photo URL of the closest candidate, or "".
export function closestPhoto(m) {
  const c = closest(m);
  return c && c.name ? `/api/v1/gallery/${encodeURIComponent(c.name)}/photo.jpg` : "";
}

// explanationText is the decision's sentence; records made before
// decisions were explained get one from their numbers.
export function explanationText(m) {
  if (!m) return "";
  if (m.explanation && m.explanation.text) return m.explanation.text;
  const c = closest(m);
  if (m.known) return `Named ${m.name}: ${pct(m.similarity)} (needs ${pct(m.threshold)}).`;
  if (!c) return `Not matched (${m.reason || "no candidate"}).`;
  return `Not matched (${m.reason || "no match"}): closest ${c.name}, ${pct(c.similarity)}, needs ${pct(m.threshold)}.`;
}

// shortLabel is a box label: the name and score when named, else why not
// in a few words.
export function shortLabel(m) {
  if (!m) return "unknown";
  if (m.known) return `${m.name} ${pct(m.similarity)}`;
  const e = m.explanation || {};
  if (e.indistinct >= 3) return `unknown: top ${e.indistinct} alike`;
  if (m.reason === "ambiguous") return "unknown: ambiguous";
  if (m.reason === "below_threshold") return `unknown: ${pct(m.similarity)} < ${pct(m.threshold)}`;
  return "unknown";
}

// explanation renders the sentence, and with { photo: true } the closest
// candidate's gallery photo in front of it (a missing photo, e.g. of a
// person removed since, leaves the sentence alone).
export function explanation(m, { photo = false } = {}) {
  const text = h("p", { className: "explain-text" }, explanationText(m));
  const e = (m && m.explanation) || {};
  const facts = [];
  if (typeof e.threshold === "number" && e.closest) {
    facts.push(`needs ${pct(e.threshold)}`);
    if (e.runner_up) facts.push(`lead ${pct(e.lead)} of ${pct(e.margin_needed)} needed`);
    if (e.indistinct > 1) facts.push(`${e.indistinct} indistinct`);
  }
  if (e.override) facts.push(`${e.override} override${e.override_name ? `: ${e.override_name}` : ""}`);
  const el = h("div", { className: "explanation" + (m && m.known ? " known" : "") },
    text, facts.length ? h("p", { className: "explain-facts dim" }, facts.join(" · ")) : null);
  const url = photo ? closestPhoto(m) : "";
  if (url) {
    const c = closest(m);
    const img = h("img", { src: url, alt: `gallery photo of ${c.name}`, className: "closest-photo", loading: "lazy", width: 64, height: 64 });
    img.addEventListener("error", () => img.remove());
    el.prepend(img);
  }
  return el;
}
