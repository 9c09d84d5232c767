// What both pages share: the signed-in token (sessionStorage), calls to the /v1 API with
// problem+json errors, commands under an Idempotency-Key that a retry reuses, the status
// document's long poll, and server-sent events read over fetch (EventSource cannot send
// an Authorization header).

const TOKEN_KEY = "usher.token";

/** The token of this tab, or null. */
export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** `{sub, role, exp}` of the token, or null if there is none or it does not read. */
export function claims() {
  const t = token();
  if (!t) return null;
  try {
    const payload = t.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = JSON.parse(atob(payload.padEnd(payload.length + ((4 - (payload.length % 4)) % 4), "=")));
    if (typeof json.sub !== "string" || typeof json.role !== "string") return null;
    return json;
  } catch {
    return null;
  }
}

export function signIn(newToken) {
  sessionStorage.setItem(TOKEN_KEY, newToken.trim());
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** An error the API answered (a problem document) or a network failure (`status` 0). */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem?.code || (status === 0 ? "network" : "http_" + status);
    this.field = problem?.field;
  }
}

/** A fresh key: a random v4 uuid (crypto.randomUUID needs a secure context; this does not). */
export function newKey() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One HTTP call. Resolves with `{status, body, headers}` for 2xx; throws ApiError otherwise. */
export async function call(path, { method = "GET", body, headers = {}, signal } = {}) {
  const h = { Accept: "application/json", ...headers };
  const t = token();
  if (t) h.Authorization = `Bearer ${t}`;
  if (body !== undefined) h["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body), signal });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, { detail: "the server cannot be reached" });
  }
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) throw new ApiError(response.status, json);
  return { status: response.status, body: json, headers: response.headers };
}

/**
 * Sends a command under one Idempotency-Key. A network error or a 409 (the first try is
 * still being admitted) is retried with the SAME key, so however often it is sent, at
 * most one command is admitted. Resolves with the 202 body `{request_id, status, status_url}`.
 */
export async function command(path, body, { key = newKey(), attempts = 4 } = {}) {
  for (let attempt = 1; ; attempt++) {
    try {
      const answer = await call(path, { method: "POST", body, headers: { "Idempotency-Key": key } });
      return answer.body;
    } catch (e) {
      const retryable = e.status === 0 || e.status === 409 || e.status === 503;
      if (!retryable || attempt >= attempts) throw e;
      await sleep(250 * 2 ** attempt);
    }
  }
}

const TERMINAL = new Set(["succeeded", "failed", "dead_lettered"]);

/**
 * Follows a request's status document with the long poll (`?wait=`) until it is terminal.
 * `onChange(doc)` is called with every document read. Resolves with the terminal one.
 */
export async function follow(requestId, onChange = () => {}) {
  let last = null;
  for (;;) {
    let doc;
    try {
      doc = (await call(`/v1/requests/${encodeURIComponent(requestId)}?wait=${last ? 20 : 2}`)).body;
    } catch (e) {
      if (e.status !== 0 && e.status !== 503) throw e;
      await sleep(1000);
      continue;
    }
    if (!last || last.status !== doc.status || last.updated_at !== doc.updated_at) onChange(doc);
    last = doc;
    if (TERMINAL.has(doc.status)) return doc;
  }
}

/**
 * Reads server-sent events from `path` until `signal` aborts, calling `onEvent(name, data)`
 * with the parsed JSON data, and reconnecting after a dropped connection.
 */
export async function events(path, onEvent, signal, onState = () => {}) {
  while (!signal.aborted) {
    try {
      const t = token();
      const response = await fetch(path, {
        headers: { Accept: "text/event-stream", ...(t ? { Authorization: `Bearer ${t}` } : {}) },
        signal,
      });
      if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
      onState("live");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let name = "message";
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) continue;
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "event") name = val;
            else if (field === "data") data.push(val);
          }
          if (data.length) {
            try {
              onEvent(name, JSON.parse(data.join("\n")));
            } catch (e) {
              console.warn("unreadable event", e);
            }
          }
        }
      }
    } catch (e) {
      if (signal.aborted) return;
      if (e instanceof ApiError && e.status !== 0 && e.status !== 503) {
        onState("stopped", e);
        return;
      }
    }
    if (signal.aborted) return;
    onState("reconnecting");
    await sleep(2000);
  }
}

/** Sets up a sign-in form: the dev form (`POST /dev/token`) and the paste-a-token form. */
export function setUpSignIn({ defaultRole = "customer", onSignedIn }) {
  const devForm = document.getElementById("dev-signin");
  const pasteForm = document.getElementById("paste-signin");
  const message = document.getElementById("signin-message");
  devForm.elements.role.value = defaultRole;
  devForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = devForm.querySelector("button");
    button.disabled = true;
    message.textContent = "";
    try {
      const sub = devForm.elements.sub.value.trim();
      const role = devForm.elements.role.value;
      const answer = await call("/dev/token", { method: "POST", body: { sub, role } });
      signIn(answer.body.token);
      onSignedIn();
    } catch (e) {
      message.textContent =
        e.status === 404
          ? "This server does not mint tokens (only `usher dev` does): paste a token below."
          : `Cannot sign in: ${e.message}`;
    } finally {
      button.disabled = false;
    }
  });
  pasteForm.addEventListener("submit", (event) => {
    event.preventDefault();
    signIn(pasteForm.elements.token.value);
    if (!claims()) {
      signOut();
      message.textContent = "That is not a token (expected a JWT: three parts separated by dots).";
      return;
    }
    onSignedIn();
  });
}

/** Text for a timestamp, in the reader's time zone. */
export function when(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

/** Creates an element: `el("p", {class: "x"}, "text", child)`. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
