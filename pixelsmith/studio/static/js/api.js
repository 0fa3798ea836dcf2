// Talking to the pixelsmith server: the API key (session only), JSON and
// multipart calls, and the two error shapes (Stability {id,name,errors[]},
// and FastAPI's {detail}) turned into one ApiError with readable lines.

const KEY_STORE = "pixelsmith.apiKey";

// Every URL is relative to the page, so the studio also works behind a
// reverse proxy that serves pixelsmith under a path prefix.
export const BASE = new URL("./", location.href);
export const url = (path) => new URL(String(path).replace(/^\//, ""), BASE).href;
export const origin = BASE.href.replace(/\/$/, "");

export class ApiError extends Error {
  constructor(status, name, lines) {
    super(lines.join("; ") || name || `HTTP ${status}`);
    this.status = status;
    this.name = name || "error";
    this.lines = lines.length ? lines : [this.message];
  }
}

export const auth = {
  get key() { return sessionStorage.getItem(KEY_STORE) || ""; },
  set key(value) {
    if (value) sessionStorage.setItem(KEY_STORE, value);
    else sessionStorage.removeItem(KEY_STORE);
  },
  required: false,
  // set by main.js: asks the person for a key, resolves true when one was given
  ask: async () => false,
};

function headers(extra = {}) {
  const h = { ...extra };
  if (auth.key) h.authorization = `Bearer ${auth.key}`;
  return h;
}

export async function errorFrom(response) {
  let body = null;
  const text = await response.text();
  try { body = JSON.parse(text); } catch { /* not JSON */ }
  if (body && Array.isArray(body.errors)) return new ApiError(response.status, body.name, body.errors.map(String));
  if (body && body.detail !== undefined) {
    const detail = Array.isArray(body.detail)
      ? body.detail.map((d) => (d.loc ? `${d.loc.slice(1).join(".")}: ${d.msg}` : JSON.stringify(d)))
      : [typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)];
    return new ApiError(response.status, body.name || `HTTP ${response.status}`, detail);
  }
  if (body && body.message) {
    const lines = Array.isArray(body.details) && body.details.length ? body.details.map(String) : [body.message];
    return new ApiError(response.status, body.error || body.code || body.name, lines);
  }
  return new ApiError(response.status, `HTTP ${response.status}`, [text.slice(0, 300) || response.statusText]);
}

// fetch with the key; on 401 ask for a key once and retry; a busy server (429, 503) is asked again
// after its Retry-After (at most 5 s, 4 times): the queue is full for a moment, the request is not wrong
export async function call(path, options = {}) {
  for (let attempt = 0, busy = 0; ; attempt++) {
    let response;
    const sent = auth.key;
    try {
      response = await fetch(url(path), { ...options, headers: headers(options.headers) });
    } catch (err) {
      throw new ApiError(0, "network_error", [`The server could not be reached (${err.message}).`]);
    }
    if (response.status === 401 && attempt < 2) {
      auth.required = true;
      if (await auth.ask(Boolean(sent))) continue; // a key was sent: it was refused
    }
    if ((response.status === 429 || response.status === 503) && busy < 4 && !options.signal?.aborted) {
      busy++;
      const wait = Math.min(5, Number(response.headers.get("retry-after")) || busy);
      await sleep(wait * 1000);
      continue;
    }
    if (!response.ok && response.status !== 202) throw await errorFrom(response);
    return response;
  }
}

export async function getJSON(url) {
  return (await call(url, { headers: { accept: "application/json" } })).json();
}

export async function postJSON(url, body) {
  const response = await call(url, {
    method: "POST",
    headers: { accept: "application/json", "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return response.json();
}

export async function exists(path) {
  try {
    const response = await fetch(url(path), { headers: headers({ accept: "application/json" }) });
    return response.status !== 404 && response.status !== 405;
  } catch {
    return false;
  }
}

// POST a JSON body without asking for a key or throwing: the HTTP status (0 when unreachable),
// to learn whether an optional route is there at all
export async function probe(path, body) {
  try {
    const response = await fetch(url(path), {
      method: "POST", headers: headers({ accept: "application/json", "content-type": "application/json" }),
      body: JSON.stringify(body),
    });
    return response.status;
  } catch {
    return 0;
  }
}

export function base64ToBlob(b64, mime) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new Blob([bytes], { type: mime });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Run one tool through its Stability REST route. Async routes (creative
// upscale) answer {id}; we poll /v2beta/results/{id} until the image is there.
export async function runTool(tool, form, { onStatus = () => {}, signal } = {}) {
  onStatus({ phase: "sending" });
  let response = await call(tool.rest_path, {
    method: "POST", headers: { accept: "application/json" }, body: form, signal,
  });
  let body = await response.json();
  if (body.id && !body.image) {
    const id = body.id;
    for (let polls = 0; ; polls++) {
      onStatus({ phase: "queued", id, polls });
      await sleep(Math.min(500 + polls * 250, 2000));
      if (signal?.aborted) throw new ApiError(0, "cancelled", ["Cancelled."]);
      response = await call(`/v2beta/results/${id}`, { headers: { accept: "application/json" }, signal });
      if (response.status === 202) continue;
      body = await response.json();
      break;
    }
  }
  const type = (response.headers.get("content-type") || "").match(/type=(image\/[a-z]+)/);
  const mime = type ? type[1] : "image/png";
  return {
    blob: base64ToBlob(body.image, mime),
    mime,
    seed: body.seed ?? null,
    finishReason: body.finish_reason || "SUCCESS",
  };
}

// ---- runs as one-item jobs ----------------------------------------------------
// A studio run is a job of kind "run" on the server's jobs API: the server
// queues it ahead of batch work, records its progress and keeps it (inputs,
// settings, result) in its job store, which is also the studio's history.

const FINAL = new Set(["done", "failed", "cancelled"]);

// POST /v1/jobs: the primary image as `files` (none for text-to-image: the tool makes the image),
// other images by field name, the rest as one step
export async function submitRun(tool, values, primary) {
  const form = new FormData();
  const step = { tool: tool.name };
  for (const [name, value] of Object.entries(values)) {
    if (value instanceof Blob) form.append(name === primary ? "files" : name, value, value.name || `${name}.png`);
    else step[name] = value;
  }
  form.append("steps", JSON.stringify([step]));
  form.append("kind", "run");
  form.append("title", tool.title || tool.name);
  const response = await call("/v1/jobs", { method: "POST", body: form, headers: { accept: "application/json" } });
  return (await response.json()).id;
}

// Poll the run's item until it is done, failed or cancelled; onStatus hears
// each state (queue position while queued, {done,total,unit} while running).
export async function followRun(jobId, { onStatus = () => {}, signal } = {}) {
  for (let polls = 0; ; polls++) {
    if (signal?.aborted) throw new ApiError(0, "cancelled", ["Cancelled."]);
    const body = await getJSON(`/v1/jobs/${jobId}/items?limit=1`);
    const item = body.items[0];
    onStatus({ item, running: body.running ?? 0 });
    if (FINAL.has(item.state)) return item;
    await sleep(polls < 20 ? 250 : 500);
  }
}

// A finished run item -> what the result panel shows
export async function runResult(item) {
  const response = await call(item.url);
  const blob = await response.blob();
  const steps = item.result?.steps || [];
  const last = steps[steps.length - 1] || {};
  return {
    blob, mime: blob.type || "image/png", seed: last.seed ?? null, finishReason: "SUCCESS",
    seconds: item.seconds ?? last.seconds ?? 0,
  };
}

// An uploaded input of a stored run, as a File (its original name when the server gives one)
export async function fetchFile(path, fallback) {
  const response = await call(path);
  const blob = await response.blob();
  const named = (response.headers.get("content-disposition") || "").match(/filename="([^"]+)"/);
  return new File([blob], named ? named[1] : fallback, { type: blob.type || "image/png" });
}
