// Live boxes: the tracker's boxes of every analysed frame ("tracks" messages
// on the live view's events channel), each labelled with its visit's current
// decision, drawn over the video frame they were detected in. With
// requestVideoFrameCallback's RTP timestamp (Chromium) a displayed frame gets
// the boxes of the newest analysed frame not after it; without it, boxes are
// drawn as they arrive. The canvas says which (data-sync), how far the boxes'
// frame is behind the displayed one (data-lag-ms) and what it shows
// (aria-label).

const KEEP = 64; // messages kept per camera (about 13 s at 5 analysed fps)
const MAX_BEHIND = 90000; // 1 s of the 90 kHz RTP clock: older boxes are not drawn
const ARRIVAL_MS = 1000; // without RTP timestamps: boxes shown this long
// DELAY_MS holds the video back in the jitter buffer so that the boxes of a
// frame (detected after it was decoded) arrive before it is shown.
export const DELAY_MS = 400;

export function newTracks() {
  return { msgs: [], latest: null, latestAt: 0 };
}

export function onTracks(state, m) {
  state.msgs.push(m);
  if (state.msgs.length > KEEP) state.msgs.shift();
  state.latest = m;
  state.latestAt = performance.now();
}

// delay asks the receiver to hold the video DELAY_MS (where supported).
export function delay(receiver) {
  if (receiver && "jitterBufferTarget" in receiver) receiver.jitterBufferTarget = DELAY_MS;
}

// rtpAfter is a - b on the wrapping 32-bit RTP clock.
const rtpAfter = (a, b) => (a - b) | 0;

// pick returns the message of the newest analysed frame not after the
// displayed frame ts, unless it is more than MAX_BEHIND older.
function pick(state, ts) {
  let best = null, bestD = 0;
  for (const m of state.msgs) {
    if (typeof m.rtp_timestamp !== "number") continue;
    const d = rtpAfter(ts, m.rtp_timestamp);
    if (d < 0 || d > MAX_BEHIND) continue;
    if (!best || d < bestD) [best, bestD] = [m, d];
  }
  return best ? { m: best, lagTicks: bestD } : null;
}

export function label(t) {
  switch (t.decision) {
    case "known":
      return `${t.name} ${Math.round((t.confidence || 0) * 100)}%`;
    case "unknown":
      return "unknown";
    default:
      return t.shots ? `deciding (${t.shots} shot${t.shots === 1 ? "" : "s"})` : "deciding";
  }
}

const COLOURS = { known: "#58a6ff", unknown: "#f0883e", deciding: "#e6e6e6" };

// paint draws message m's boxes on canvas over the letterboxed video area
// (object-fit: contain).
function paint(video, canvas, m, sync, lagMs) {
  const w = canvas.clientWidth, hgt = canvas.clientHeight;
  if (canvas.width !== w || canvas.height !== hgt) {
    canvas.width = w;
    canvas.height = hgt;
  }
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, w, hgt);
  const labels = [];
  const tracks = (m && m.tracks) || [];
  const fw = (m && m.frame_width) || video.videoWidth, fh = (m && m.frame_height) || video.videoHeight;
  if (fw && fh) {
    const scale = Math.min(w / fw, hgt / fh);
    const ox = (w - fw * scale) / 2, oy = (hgt - fh * scale) / 2;
    ctx.font = "12px system-ui";
    ctx.lineWidth = 2;
    for (const t of tracks) {
      const text = label(t);
      labels.push(text);
      ctx.strokeStyle = ctx.fillStyle = COLOURS[t.decision] || COLOURS.deciding;
      ctx.setLineDash(t.coasting ? [4, 3] : []);
      const x = ox + t.box.x * scale, y = oy + t.box.y * scale;
      ctx.strokeRect(x, y, t.box.w * scale, t.box.h * scale);
      ctx.fillText(text, x, y - 4);
    }
  }
  canvas.dataset.sync = sync;
  canvas.dataset.boxes = String(tracks.length);
  canvas.dataset.labels = labels.join("|");
  if (lagMs === null) delete canvas.dataset.lagMs;
  else canvas.dataset.lagMs = String(Math.round(lagMs));
  canvas.setAttribute("aria-label", tracks.length ? `faces: ${labels.join(", ")}` : "no faces tracked");
}

// drawTracks keeps canvas in step with video until alive() is false.
export function drawTracks(video, canvas, state, alive) {
  if (typeof video.requestVideoFrameCallback === "function") {
    const onFrame = (_now, meta) => {
      if (!alive()) return;
      if (typeof meta.rtpTimestamp === "number") {
        const p = pick(state, meta.rtpTimestamp);
        paint(video, canvas, p && p.m, "rtp", p ? p.lagTicks / 90 : null);
      } else {
        arrival(video, canvas, state);
      }
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
    return;
  }
  const onAnim = () => {
    if (!alive()) return;
    arrival(video, canvas, state);
    requestAnimationFrame(onAnim);
  };
  requestAnimationFrame(onAnim);
}

function arrival(video, canvas, state) {
  const fresh = state.latest && performance.now() - state.latestAt < ARRIVAL_MS;
  paint(video, canvas, fresh ? state.latest : null, "arrival", null);
}
