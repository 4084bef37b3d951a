// The API client: same-origin fetches that carry the session cookie.

export class APIError extends Error {
  constructor(status, msg, field) {
    super(msg);
    this.status = status;
    this.field = field;
  }
}

// onUnauthorized is called when a request needs a (new) login.
let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export async function api(path, opts = {}) {
  const res = await fetch(path, { credentials: "same-origin", ...opts });
  if (res.status === 401) onUnauthorized();
  if (!res.ok) {
    let body = {};
    try {
      body = await res.json();
    } catch {
      // not JSON: keep the status text
    }
    throw new APIError(res.status, body.error || res.statusText, body.field);
  }
  if (res.status === 204) return null;
  return res.json();
}

export const postJSON = (path, v) =>
  api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(v) });
