// The page: a login, then five views chosen by the URL fragment.
import { api, postJSON, setUnauthorizedHandler } from "./api.js";
import { $, status } from "./dom.js";
import * as live from "./live.js";
import * as visits from "./visits.js";
import * as hits from "./hits.js";
import * as gallery from "./gallery.js";
import * as audit from "./audit.js";

const views = { live, visits, hits, gallery, audit };
let current = null;

function showLogin() {
  if (current) views[current].hide();
  current = null;
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== "login";
  $("#nav").hidden = true;
  $("#token").focus();
}

async function route() {
  const name = location.hash.slice(1) in views ? location.hash.slice(1) : "live";
  if (current && current !== name) views[current].hide();
  current = name;
  status("");
  $("#nav").hidden = false;
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== name;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.hash === "#" + name);
  try {
    await views[name].show();
  } catch (e) {
    status(e.message);
  }
}

async function start() {
  setUnauthorizedHandler(showLogin);
  $("#login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await postJSON("/api/v1/login", { token: $("#token").value });
      $("#token").value = "";
      status("");
      route();
    } catch (e) {
      status(e.message);
    }
  });
  $("#logout").addEventListener("click", async () => {
    await api("/api/v1/logout", { method: "POST" });
    showLogin();
  });
  window.addEventListener("hashchange", () => {
    if (current) route();
  });
  for (const v of Object.values(views)) v.init();
  const s = await api("/api/v1/session");
  if (s.authenticated) route();
  else showLogin();
}

start().catch((e) => status(e.message));
