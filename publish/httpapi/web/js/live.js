// The live grid: one <video> per viewable camera over WHEP (RFC 9725), the
// tracker's boxes from the "events" data channel drawn on the frames they
// belong to (tracks.js), a strip of recent SR crops.
import { api } from "./api.js";
import { $, h } from "./dom.js";
import { newTracks, onTracks, delay, drawTracks } from "./tracks.js";

const STRIP_MAX = 24;
let sessions = []; // {pc, location}
let generation = 0;

export function init() {}

export async function show() {
  hide();
  const gen = ++generation;
  const { cameras } = await api("/api/v1/cameras");
  if (gen !== generation) return;
  const grid = $("#cameras");
  grid.replaceChildren();
  if (cameras.length === 0) grid.append(h("p", { className: "dim" }, "No cameras configured."));
  const waiting = new Map(); // camera -> tile without video yet
  for (const c of cameras) {
    const state = h("span", { className: "state" });
    const meta = h("div", { className: "meta" }, h("strong", {}, c.camera), state,
      h("span", {}, c.fps ? `${c.fps.toFixed(1)} fps` : ""));
    const tile = h("div", { className: "camera", dataset: { camera: c.camera } }, meta,
      h("p", { className: "last-error" }));
    showState(tile, c);
    grid.append(tile);
    if (c.live) {
      attach(c.camera, tile, gen);
    } else {
      tile.append(h("p", { className: "dim waiting" }, waitingText(c)));
      waiting.set(c.camera, tile);
    }
  }
  const tiles = new Map([...grid.querySelectorAll(".camera")].map((t) => [t.dataset.camera, t]));
  // ask again: a camera becomes viewable once its first key frame arrived,
  // and every tile keeps showing its camera's state and last error
  const poll = async () => {
    if (gen !== generation) return;
    try {
      const { cameras } = await api("/api/v1/cameras");
      if (gen !== generation) return;
      for (const c of cameras) {
        const t = tiles.get(c.camera);
        if (t) showState(t, c);
        const tile = waiting.get(c.camera);
        if (!tile || !c.live) continue;
        waiting.delete(c.camera);
        tile.querySelector(".waiting")?.remove();
        attach(c.camera, tile, gen);
      }
    } catch {
      // the next poll tries again
    }
    setTimeout(poll, 2000);
  };
  setTimeout(poll, 2000);
}

// STATE_TEXT explains the states that need a person.
const STATE_TEXT = {
  backoff: "cannot reach the camera or its stream; retrying",
  auth_failed: "the camera rejected the credentials: check username and password (retried every few minutes)",
  failed: "ingest gave up on this camera; see the error, then restart srdgd",
};

// showState writes the camera's state and, unless it streams, its last error
// into its tile.
function showState(tile, c) {
  const state = tile.querySelector(".state");
  state.textContent = c.state;
  state.className = "state " + (c.state === "connected" ? "state-ok" : c.state === "auth_failed" || c.state === "failed" ? "state-bad" : "state-other");
  const err = tile.querySelector(".last-error");
  const why = STATE_TEXT[c.state] || "";
  err.textContent = c.connected ? "" : [why, c.last_error || ""].filter(Boolean).join(" — ");
  err.hidden = err.textContent === "";
  const w = tile.querySelector(".waiting");
  if (w) w.textContent = waitingText(c);
}

// waitingText says why a tile has no video: the camera is not streaming
// (its state and error are above), or it streams but no key frame came
// yet, or it sends a codec the browser view cannot play.
function waitingText(c) {
  if (!c.connected) return `no live view: the camera is ${c.state === "backoff" ? "down, retrying" : c.state.replace("_", " ")}`;
  if (c.codec && !/^h\.?264$/i.test(c.codec)) return `no live view: the camera sends ${c.codec}, the live view plays H.264 only`;
  return "no live view yet (waiting for the first H.264 key frame)";
}

function attach(camera, tile, gen) {
  const video = h("video", { autoplay: true, muted: true, playsInline: true });
  const canvas = h("canvas");
  tile.append(h("div", { className: "view" }, video, canvas));
  watch(camera, video, canvas, gen).catch((e) => {
    tile.append(h("p", { className: "dim" }, `live view: ${e.message}`));
  });
}

export function hide() {
  generation++;
  for (const s of sessions) {
    // end the WHEP session first: closing the peer connection first lets the
    // server drop the session on its own, and the DELETE would then 404
    if (s.location) {
      const pc = s.pc;
      fetch(s.location, { method: "DELETE", credentials: "same-origin" }).catch(() => {}).finally(() => pc.close());
    } else {
      s.pc.close();
    }
  }
  sessions = [];
}

// gathered resolves when ICE gathering is complete (WHEP without trickle),
// or after two seconds with the candidates found so far.
function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(resolve, 2000);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") {
        clearTimeout(t);
        resolve();
      }
    });
  });
}

async function watch(camera, video, canvas, gen) {
  const pc = new RTCPeerConnection();
  const s = { pc, location: null };
  sessions.push(s);
  pc.addTransceiver("video", { direction: "recvonly" });
  const events = pc.createDataChannel("events");
  const tracks = newTracks();
  events.addEventListener("message", (ev) => onEvent(ev.data, camera, tracks));
  pc.addEventListener("track", (ev) => {
    delay(ev.receiver);
    video.srcObject = ev.streams[0] || new MediaStream([ev.track]);
  });
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const res = await fetch(`/whep/${encodeURIComponent(camera)}`, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/sdp" },
    body: pc.localDescription.sdp,
  });
  if (res.status !== 201) throw new Error(`WHEP ${res.status}`);
  s.location = res.headers.get("Location");
  if (gen !== generation) return;
  await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
  drawTracks(video, canvas, tracks, () => gen === generation);
}

function onEvent(data, camera, tracks) {
  let m;
  try {
    m = JSON.parse(data);
  } catch {
    return;
  }
  if (m.type === "tracks") {
    onTracks(tracks, m);
    return;
  }
  if (m.type !== "hit") return;
  const sr = m.image && m.image.sr_jpeg;
  if (sr) {
    const who = m.match && m.match.known ? m.match.name : "unknown";
    const fig = h("figure", {},
      h("img", { src: `data:image/jpeg;base64,${sr}`, alt: who }),
      h("figcaption", {}, `${camera}: ${who}`));
    const strip = $("#strip");
    strip.prepend(fig);
    while (strip.children.length > STRIP_MAX) strip.lastChild.remove();
  }
}
