// The studio's glue: tabs, the tool list from GET /v1/tools, the generated
// form, the stage, running a tool, results, snippets and the API key prompt.

import {
  ApiError, auth, call, fetchFile, followRun, getJSON, origin, postJSON, runResult, runTool, submitRun, url,
} from "./api.js";
import { el, ToolForm } from "./form.js";
import { Stage } from "./stage.js";
import { boto3Snippet, cliSnippet, requestsSnippet } from "./snippets.js";
import { BatchScreen } from "./batch.js";
import { Selector, UNAVAILABLE } from "./select.js";

const $ = (id) => document.getElementById(id);
const SIDES = ["left", "right", "up", "down"];
const GROUP_TITLES = { edit: "Edit", upscale: "Upscale", control: "Control", generate: "Generate" };

const state = {
  tools: [], tool: null, form: null, input: null, result: null, controller: null, lang: "requests",
};
window.studio = state; // handy in the browser console and for the browser tests

// ---- API key ---------------------------------------------------------------
auth.ask = (again) => new Promise((resolve) => {
  const dialog = $("key-dialog");
  $("key-why").textContent = again
    ? "That key was not accepted. Check it and try again; it is kept for this browser tab only."
    : "This server requires an API key. It is kept for this browser tab only.";
  $("key-input").value = "";
  $("key-button").hidden = false;
  dialog.onclose = () => {
    if (dialog.returnValue === "save" && $("key-input").value.trim()) {
      auth.key = $("key-input").value.trim();
      resolve(true);
    } else {
      if (dialog.returnValue === "forget") auth.key = "";
      resolve(false);
    }
  };
  dialog.showModal();
  $("key-input").focus();
});
$("key-button").hidden = !auth.key;
$("key-button").addEventListener("click", () => auth.ask(false));

// ---- tabs --------------------------------------------------------------------
const tabs = [...document.querySelectorAll('[role="tab"][aria-controls^="screen-"]')];
function showScreen(id, focus = false) {
  for (const tab of tabs) {
    const on = tab.getAttribute("aria-controls") === id;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
    $(tab.getAttribute("aria-controls")).hidden = !on;
    if (on && focus) tab.focus();
  }
  if (id === "screen-history") renderHistory();
  if (id === "screen-tools") stage.resize();
}
tabs.forEach((tab, i) => {
  tab.addEventListener("click", () => {
    showScreen(tab.getAttribute("aria-controls"));
    setHash(tab.id === "tab-tools" ? `tool=${state.tool?.name || ""}` : tab.id.slice(4));
  });
  tab.addEventListener("keydown", (e) => {
    const d = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
    if (d) showScreen(tabs[(i + d + tabs.length) % tabs.length].getAttribute("aria-controls"), true);
  });
});
function setHash(hash) { window.history.replaceState(null, "", `#${hash}`); }

// ---- stage -----------------------------------------------------------------
const stage = new Stage($("stage"), {
  onMargins: (m) => { for (const side of SIDES) if (state.form?.has(side)) state.form.set(side, m[side]); },
  onMask: () => { updateHint(); scheduleSnippet(); },
  onView: (scale) => { $("zoom-level").value = `${Math.round(scale * 100)}%`; },
  onSelect: (prompt) => { hideError(); selector.add(prompt); },
});
const selector = new Selector(stage, {
  file: () => state.input,
  onBusy: (busy) => { $("stage-busy").hidden = !busy; stage.root.dataset.selecting = String(busy); },
  onError: (err) => showError(err.status ? err : { name: "Selection failed", lines: [err.message] }),
});
state.selector = selector;
// the select tool needs the server's segmentation route: without it, greyed out with the reason.
// Asked once, when the first tool with a mask opens (a page that never masks never asks).
let probed = null;
function probeSelect() {
  probed ??= selector.probe().then((ok) => {
    const label = $("select-tool");
    label.querySelector("input").disabled = !ok;
    label.classList.toggle("off", !ok);
    if (!ok) label.title = UNAVAILABLE;
    if (!ok && stage.tool === "select") setPointer("brush");
  });
}
$("zoom-in").addEventListener("click", () => stage.zoom(1.25));
$("zoom-out").addEventListener("click", () => stage.zoom(0.8));
$("zoom-fit").addEventListener("click", () => stage.fit());
$("zoom-actual").addEventListener("click", () => stage.actualSize());
function toggleLoupe() {
  const on = $("loupe-toggle").getAttribute("aria-pressed") !== "true";
  $("loupe-toggle").setAttribute("aria-pressed", String(on));
  stage.setLoupe(on);
}
$("loupe-toggle").addEventListener("click", toggleLoupe);
$("mask-undo").addEventListener("click", () => stage.undo());
$("mask-redo").addEventListener("click", () => stage.redo());
$("mask-invert").addEventListener("click", () => stage.invertMask());
$("mask-clear").addEventListener("click", () => stage.clearMask());
$("mask-show").addEventListener("change", (e) => { stage.showMask = e.target.checked; stage.draw(); });
$("brush-size").addEventListener("input", (e) => { stage.brush.size = Number(e.target.value); stage.draw(); });
$("brush-hardness").addEventListener("input", (e) => { stage.brush.hardness = Number(e.target.value) / 100; });
$("compare").addEventListener("input", (e) => { stage.split = Number(e.target.value) / 100; stage.draw(); });
// the backdrop under transparent pixels, the same on both sides of the split: checker, white, black or a colour
function applyBackdrop() {
  const kind = document.querySelector('input[name="backdrop"]:checked').value;
  stage.setBackdrop(kind === "color" ? $("backdrop-color").value : kind);
}
for (const radio of document.querySelectorAll('input[name="backdrop"]')) radio.addEventListener("change", applyBackdrop);
$("backdrop-color").addEventListener("input", () => {
  document.querySelector('input[name="backdrop"][value="color"]').checked = true;
  applyBackdrop();
});
for (const radio of document.querySelectorAll('input[name="pointer"]')) {
  radio.addEventListener("change", () => { stage.tool = radio.value; updateHint(); });
}
function setPointer(tool) {
  const radio = document.querySelector(`input[name="pointer"][value="${tool}"]`);
  if (radio && !radio.disabled && !$("mask-tools").hidden) { radio.checked = true; stage.tool = tool; updateHint(); }
}
stage.tool = "brush";
state.stage = stage;

// drop or paste an image anywhere on the stage: it becomes the tool's main image
const stageEl = $("stage");
stageEl.addEventListener("dragover", (e) => { e.preventDefault(); stageEl.classList.add("over"); });
stageEl.addEventListener("dragleave", () => stageEl.classList.remove("over"));
stageEl.addEventListener("drop", (e) => {
  e.preventDefault();
  stageEl.classList.remove("over");
  const file = [...(e.dataTransfer?.files || [])][0];
  if (file && state.form?.primary) setInput(file);
});
document.addEventListener("paste", (e) => {
  if (e.defaultPrevented || $("screen-tools").hidden) return;
  const target = e.target;
  if (target.closest && target.closest("input, textarea")) return;
  const file = [...(e.clipboardData?.files || [])][0];
  if (file && state.form?.primary) { e.preventDefault(); setInput(file); }
});

// keyboard shortcuts for the brush (not while typing in a field)
document.addEventListener("keydown", (e) => {
  if ($("screen-tools").hidden || e.target.closest("input[type=text], input[type=number], input[type=password], textarea, select, dialog")) return;
  const mod = e.ctrlKey || e.metaKey;
  if (mod && e.key.toLowerCase() === "z") { e.shiftKey ? stage.redo() : stage.undo(); e.preventDefault(); return; }
  if (mod && e.key.toLowerCase() === "y") { stage.redo(); e.preventDefault(); return; }
  if (!mod && !e.altKey && e.key.toLowerCase() === "l") { toggleLoupe(); e.preventDefault(); return; }
  if (mod || e.altKey || $("mask-tools").hidden) return;
  const size = $("brush-size");
  const actions = {
    b: () => setPointer("brush"), e: () => setPointer("eraser"), h: () => setPointer("pan"), s: () => setPointer("select"),
    i: () => stage.invertMask(),
    "[": () => { size.value = Math.max(2, Number(size.value) - 5); size.dispatchEvent(new Event("input")); },
    "]": () => { size.value = Math.min(300, Number(size.value) + 5); size.dispatchEvent(new Event("input")); },
  };
  const action = actions[e.key.toLowerCase()];
  if (action && !(e.target.type === "radio" && e.key.startsWith("Arrow"))) { action(); e.preventDefault(); }
});

function updateHint() {
  let hint = "";
  if (!stage.base && state.form?.primary) {
    hint = state.form.spec(state.form.primary).required ? "Add an image to start."
      : "Fill in the form and run; add an image only to start from it."; // text-to-image: the image is optional
  } else if (stage.maskEnabled) {
    hint = stage.tool === "pan"
      ? "Drag to pan, wheel to zoom. Press B to paint the mask."
      : stage.tool === "select"
        ? "Click an object to select it; Shift+click takes a part away; drag a box around it. Touch up with the brush (B)."
        : `Paint over what to ${state.tool?.name === "erase" ? "erase" : "change"} (white = edit). Hold Space or pick Pan to move; wheel zooms.`;
  } else if (stage.marginsEnabled) hint = "Drag the blue handles to extend the canvas, or type the margins in the form.";
  else if (stage.base) hint = "Drag to pan, wheel to zoom.";
  $("stage-hint").textContent = hint;
  $("stage-hint").title = hint; // one line on the page: the whole hint on hover
}

// ---- tools -----------------------------------------------------------------
function normTool(t) {
  const missing = Array.isArray(t.missing)
    ? t.missing.map((m) => (typeof m === "string" ? m : m.line || m.reason || m.engine)).join("; ")
    : t.missing || t.missing_text || t.reason || "";
  return {
    name: t.name, title: t.title || t.name, group: t.group || "other", summary: t.summary || t.description || "",
    rest_path: t.rest_path, rest_async: Boolean(t.rest_async ?? t.async),
    bedrock_model: t.bedrock_model || t.bedrock_model_id || null,
    schema: t.schema || t.request_schema || t.json_schema || {},
    ready: t.ready ?? t.available ?? true,
    missing,
    install: [t.install || t.install_command || t.command || ""].flat().filter(Boolean).join("\n"),
  };
}

async function loadTools() {
  // /readyz says whether this server wants keys: ask before the first run, not after a 401
  fetch(url("readyz")).then((r) => r.json()).then((ready) => {
    if (ready.auth) {
      auth.required = true;
      $("key-button").hidden = false;
      if (!auth.key) auth.ask(false);
    }
  }).catch(() => {});
  let body;
  try {
    body = await getJSON("/v1/tools");
  } catch (err) {
    showBanner(`The tool list could not be loaded: ${err.message}`);
    $("tool-title").textContent = "No tools";
    return;
  }
  state.tools = (Array.isArray(body) ? body : body.tools || []).map(normTool);
  renderToolList();
  batch.setTools(state.tools);
  const wanted = new URLSearchParams(location.hash.slice(1)).get("tool");
  const first = state.tools.find((t) => t.name === wanted) || state.tools.find((t) => t.ready) || state.tools[0];
  if (first) selectTool(first.name);
  const screen = location.hash.slice(1);
  if (screen === "batch" || screen === "history") showScreen(`screen-${screen}`);
}

function renderToolList() {
  const list = $("tool-list");
  const select = $("tool-select");
  list.replaceChildren();
  select.replaceChildren();
  const groups = [...new Set(state.tools.map((t) => t.group))];
  for (const group of groups) {
    const items = state.tools.filter((t) => t.group === group);
    const ul = el("ul", { role: "list" });
    const og = el("optgroup", { label: GROUP_TITLES[group] || group });
    for (const tool of items) {
      const button = el("button", {
        type: "button", class: `tool ${tool.ready ? "" : "unready"}`, "data-tool": tool.name,
        title: tool.ready ? tool.summary : `Not available here: ${tool.missing}`,
      }, el("span", { text: tool.title }), tool.ready ? null : el("small", { text: "not installed" }));
      button.addEventListener("click", () => { selectTool(tool.name); setHash(`tool=${tool.name}`); });
      ul.append(el("li", {}, button));
      og.append(el("option", { value: tool.name, text: tool.title + (tool.ready ? "" : " (not installed)") }));
    }
    list.append(el("li", { class: "group" }, el("h2", { text: GROUP_TITLES[group] || group }), ul));
    select.append(og);
  }
  select.onchange = () => { selectTool(select.value); setHash(`tool=${select.value}`); };
}

function selectTool(name) {
  const tool = state.tools.find((t) => t.name === name);
  if (!tool) return;
  if (state.controller) state.controller.abort();
  state.tool = tool;
  for (const b of document.querySelectorAll("#tool-list .tool")) b.setAttribute("aria-current", String(b.dataset.tool === name));
  $("tool-select").value = name;
  $("tool-title").textContent = tool.title;
  $("tool-summary").textContent = tool.summary;
  const box = $("tool-unavailable");
  box.hidden = tool.ready;
  box.replaceChildren();
  if (!tool.ready) {
    box.append(el("p", { text: `This server cannot run ${tool.title} yet: ${tool.missing || "no engine serves it"}.` }));
    if (tool.install) {
      box.append(el("p", { text: "To enable it, run on the server:" }), el("pre", {}, el("code", { text: tool.install })));
    }
  }
  $("run").disabled = !tool.ready;
  state.form = new ToolForm($("fields"), tool, { onChange: onFieldChange, onImage });
  const form = state.form;
  stage.maskEnabled = form.has("mask");
  stage.marginsEnabled = SIDES.every((s) => form.has(s));
  if (stage.marginsEnabled) {
    stage.marginMax = form.spec("left").max ?? 2000;
    for (const s of SIDES) stage.margins[s] = Number(form.values()[s] || 0);
  }
  $("mask-tools").hidden = !stage.maskEnabled;
  if (stage.maskEnabled) probeSelect();
  stage.tool = stage.maskEnabled ? document.querySelector('input[name="pointer"]:checked').value : "pan";
  $("stage-empty").hidden = !form.primary ? true : Boolean(state.input);
  // text-to-image tools take an image only to start from it: say so where the drop target is
  $("stage-empty-text").textContent = form.primary && !form.spec(form.primary).required
    ? "Optional: drop or paste an image here to start from it (image-to-image), or just run."
    : "Drop an image here, paste it, or use the form's file picker.";
  clearResult();
  hideError();
  resetVariations();
  if (form.primary && state.input) {
    form.setImage(form.primary, state.input);
    showInput(state.input, false);
  } else if (!form.primary) {
    stage.setBase(null);
    $("stage-empty").hidden = true;
  } else {
    stage.setBase(null);
  }
  updateHint();
  scheduleSnippet();
}

function onFieldChange(name) {
  if (SIDES.includes(name) && stage.marginsEnabled) {
    stage.margins[name] = Number(state.form.values()[name] || 0);
    if (!stage.drag) stage.fit(); else stage.draw();
  }
  scheduleSnippet();
}

async function onImage(field, file) {
  if (field === state.form.primary) {
    if (file) setInput(file, false); else { state.input = null; stage.setBase(null); $("stage-empty").hidden = false; }
  } else if (field === "mask" && file && stage.base) {
    try { stage.loadMask(await createImageBitmap(file)); } catch { /* the server will say what is wrong */ }
  }
  scheduleSnippet();
}

async function setInput(file, updateZone = true) {
  state.input = file;
  resetVariations(); // seeds of another image
  if (updateZone && state.form?.primary) state.form.setImage(state.form.primary, file);
  await showInput(file);
  scheduleSnippet();
}

async function showInput(file) {
  clearResult();
  try {
    const bitmap = await createImageBitmap(file);
    stage.setBase(bitmap);
    $("stage-empty").hidden = true;
    // a mask file chosen before the image: load it now that the layer has a size
    const maskFile = stage.maskEnabled && state.form?.image("mask");
    if (maskFile) createImageBitmap(maskFile).then((m) => stage.loadMask(m), () => {});
  } catch {
    stage.setBase(null);
    $("stage-empty").hidden = false;
  }
  updateHint();
}

// ---- run ---------------------------------------------------------------------
$("tool-form").addEventListener("submit", (e) => { e.preventDefault(); run(); });
$("cancel").addEventListener("click", () => {
  if (state.runJob) postJSON(`/v1/jobs/${state.runJob}/cancel`, {}).catch(() => {}); // the server stops it too
  state.controller?.abort();
});

async function requestValues() {
  const values = state.form.values();
  if (stage.maskEnabled && stage.base) {
    if (stage.hasMask()) values.mask = new File([await stage.exportMask()], "mask.png", { type: "image/png" });
    else delete values.mask;
  }
  return values;
}

async function run() {
  const tool = state.tool;
  if (!tool || state.controller) return;
  hideError();
  const values = await requestValues();
  const missing = state.form.specs.filter((s) => s.required && values[s.name] === undefined);
  if (missing.length) {
    showError(new ApiError(0, "missing", missing.map((s) => `${s.title}: is required`)));
    return;
  }
  const controller = new AbortController();
  state.controller = controller;
  $("run").disabled = true;
  $("cancel").hidden = false;
  const status = runStatus();
  try {
    // a run is a one-item job on the server (queued ahead of batches, kept in its history), with or
    // without an input image (text-to-image); only a server without the jobs API gets the REST route
    const asJob = await batch.detectMode();
    const out = asJob ? await runAsJob(tool, values, controller, status) : await runDirect(tool, values, controller, status);
    const bitmap = await createImageBitmap(out.blob);
    await showResult({ ...out, width: bitmap.width, height: bitmap.height, tool: tool.name }, bitmap, values);
    $("run-text").textContent = `Done in ${out.seconds.toFixed(1)} s.`;
  } catch (err) {
    $("run-text").textContent = "";
    if (err.name === "AbortError" || err.name === "cancelled" || controller.signal.aborted) $("run-text").textContent = "Cancelled.";
    else showError(err);
  } finally {
    status.stop();
    $("cancel").hidden = true;
    $("run").disabled = !tool.ready;
    state.controller = null;
    state.runJob = null;
  }
}

// The progress line: "Queued — 2 ahead of you", then "Tile 3 of 16" on a
// determinate bar, or the elapsed time while the recipe reports nothing.
function runStatus() {
  const bar = $("run-progress");
  const text = $("run-text");
  const started = performance.now();
  let line = () => "Sending…";
  bar.hidden = false;
  bar.removeAttribute("value");
  const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)} s`;
  const tick = setInterval(() => { text.textContent = line(); }, 100);
  return {
    queued(ahead, running) {
      bar.removeAttribute("value");
      line = () => (ahead > 0 ? `Queued — ${ahead} ahead of you` : running > 0 ? "Queued — next, when the server is free" : "Queued — next")
        + ` · ${elapsed()}`;
      text.textContent = line();
    },
    steps(done, total, unit) {
      bar.max = total;
      bar.value = done;
      const word = unit ? unit[0].toUpperCase() + unit.slice(1) : "Step";
      line = () => `${word} ${done} of ${total}`;
      text.textContent = line();
    },
    running(what = "Running") {
      bar.removeAttribute("value");
      line = () => `${what}… ${elapsed()}`;
    },
    stop() { clearInterval(tick); bar.hidden = true; },
  };
}

async function runAsJob(tool, values, controller, status) {
  const jobId = await submitRun(tool, values, state.form.primary);
  state.runJob = jobId;
  const item = await followRun(jobId, {
    signal: controller.signal,
    onStatus: ({ item: it, running }) => {
      if (it.state === "queued") status.queued(it.ahead ?? 0, running);
      else if (it.state === "running" && it.progress) status.steps(it.progress.done, it.progress.total, it.progress.unit);
      else if (it.state === "running") status.running();
    },
  });
  if (item.state === "cancelled") throw new ApiError(0, "cancelled", ["Cancelled."]);
  if (item.state === "failed") throw new ApiError(0, "Run failed", [item.error || "the server gave no reason"]);
  return { ...(await runResult(item)), job: jobId, item: item.id };
}

async function runDirect(tool, values, controller, status) {
  const form = new FormData();
  for (const [k, v] of Object.entries(values)) {
    if (v instanceof Blob) form.append(k, v, v.name || `${k}.png`);
    else form.append(k, String(v));
  }
  const started = performance.now();
  status.running();
  const out = await runTool(tool, form, {
    signal: controller.signal,
    onStatus: (st) => status.running(st.phase === "queued" ? "Working on the server" : "Running"),
  });
  return { ...out, seconds: (performance.now() - started) / 1000 };
}

async function showResult(result, bitmap, values) {
  state.result = result;
  let rect = null;
  if (stage.marginsEnabled && stage.base) {
    const m = { left: 0, right: 0, up: 0, down: 0, ...Object.fromEntries(SIDES.map((s) => [s, values[s] || 0])) };
    rect = { x: -m.left, y: -m.up, w: stage.base.width + m.left + m.right, h: stage.base.height + m.up + m.down };
  }
  stage.setResult(bitmap, rect);
  $("compare-group").hidden = !(stage.base && stage.resultPlacement());
  $("result").hidden = false;
  $("result-seed").textContent = result.seed ? String(result.seed) : "—";
  $("result-time").textContent = `${result.seconds.toFixed(2)} s`;
  $("result-size").textContent = `${result.width}×${result.height} ${result.mime.replace("image/", "")}`;
  $("result-finish").textContent = result.finishReason;
  const link = $("download");
  if (link.href) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(result.blob);
  const ext = { "image/jpeg": "jpg", "image/webp": "webp" }[result.mime] || "png";
  link.download = `${result.tool}${result.seed ? `-${result.seed}` : ""}.${ext}`;
  $("use-as-input").hidden = !state.form?.primary;
}

function clearResult() {
  state.result = null;
  stage.clearResult();
  $("result").hidden = true;
  $("compare-group").hidden = true;
  $("run-text").textContent = "";
}

$("use-as-input").addEventListener("click", async () => {
  if (!state.result) return;
  const r = state.result;
  const ext = r.mime.split("/")[1];
  const file = new File([r.blob], `${r.tool}-result.${ext}`, { type: r.mime });
  if (stage.maskEnabled) stage.clearMask();
  await setInput(file);
  for (const s of SIDES) if (state.form.has(s)) state.form.set(s, 0);
});

function showError(err) {
  const box = $("run-error");
  box.replaceChildren(
    el("strong", { text: err.status ? `${err.name} (HTTP ${err.status})` : err.name || "Error" }),
    el("ul", {}, ...(err.lines || [err.message]).map((line) => el("li", { text: line }))),
  );
  box.hidden = false;
}
function hideError() { $("run-error").hidden = true; }

function showBanner(text) {
  const b = $("banner");
  b.textContent = text;
  b.hidden = !text;
}

// ---- variations --------------------------------------------------------------
// Tools with a seed: the same settings run once per seed, each a one-item job (so
// they queue and stay in the history like any run); the thumbnails compare on the
// stage, and Keep puts the chosen seed into the form so the next Run makes it again.
const variations = { items: [], running: false, values: null };
state.variations = variations;
const SEED_MAX = 4294967294;

function randomSeeds(n) {
  const seeds = new Set();
  while (seeds.size < n) seeds.add((crypto.getRandomValues(new Uint32Array(1))[0] % SEED_MAX) + 1);
  return [...seeds];
}

function resetVariations() {
  for (const v of variations.items) if (v.url) URL.revokeObjectURL(v.url);
  variations.items = [];
  $("var-strip").replaceChildren();
  $("var-note").textContent = "The same settings with different seeds: click one to compare it on the stage; Keep puts its seed in the form.";
  $("var-run").disabled = !state.tool?.ready || variations.running;
  $("variations").hidden = !(state.tool?.ready && state.form?.has("seed"));
}

$("var-run").addEventListener("click", () => runVariations().catch(showError));

async function runVariations() {
  const tool = state.tool;
  if (!tool || variations.running || state.controller) return;
  hideError();
  const values = await requestValues();
  const missing = state.form.specs.filter((s) => s.required && values[s.name] === undefined);
  if (missing.length) {
    showError(new ApiError(0, "missing", missing.map((s) => `${s.title}: is required`)));
    return;
  }
  if (!(await batch.detectMode())) {
    showError(new ApiError(0, "Variations need the jobs API", ["This server has no /v1/jobs; run seeds one at a time."]));
    return;
  }
  resetVariations();
  variations.values = values;
  variations.running = true;
  $("var-run").disabled = true;
  try {
    const seeds = randomSeeds(Number($("var-count").value));
    await Promise.all(seeds.map((seed) => runVariation(tool, values, seed)));
  } finally {
    variations.running = false;
    $("var-run").disabled = !tool.ready;
  }
}

async function runVariation(tool, values, seed) {
  const v = { seed, state: "queued" };
  variations.items.push(v);
  const img = el("div", { class: "thumb-empty" });
  const caption = el("span", { class: "seed", text: `${seed} · queued` });
  const pick = el("button", { type: "button", class: "pick", "aria-pressed": "false", disabled: true,
    "aria-label": `Show seed ${seed} on the stage` }, img, caption);
  const keep = el("button", { type: "button", class: "small keep", text: "Keep", disabled: true,
    "aria-label": `Keep seed ${seed}` });
  const li = el("li", { "data-seed": String(seed) }, pick, keep);
  v.li = li;
  $("var-strip").append(li);
  try {
    v.job = await submitRun(tool, { ...values, seed }, state.form.primary);
    const item = await followRun(v.job, {
      onStatus: ({ item: it }) => {
        v.state = it.state;
        const p = it.progress;
        caption.textContent = `${seed} · ${p && it.state === "running" ? `${p.done}/${p.total}` : it.state}`;
      },
    });
    if (item.state !== "done") throw new Error(item.error || item.state);
    const out = await runResult(item);
    v.bitmap = await createImageBitmap(out.blob);
    v.result = { ...out, seed, width: v.bitmap.width, height: v.bitmap.height, tool: tool.name, job: v.job, item: item.id };
    v.url = URL.createObjectURL(out.blob);
    img.replaceWith(el("img", { src: v.url, alt: `Seed ${seed}` }));
    caption.textContent = `${seed} · ${out.seconds.toFixed(1)} s`;
    v.state = "done";
    pick.disabled = keep.disabled = false;
    pick.addEventListener("click", () => showVariation(v));
    keep.addEventListener("click", () => keepVariation(v));
  } catch (err) {
    v.state = "failed";
    li.classList.add("failed");
    caption.textContent = `${seed} · failed`;
    li.title = err.message;
  }
}

async function showVariation(v) {
  for (const other of variations.items) other.li.querySelector(".pick").setAttribute("aria-pressed", String(other === v));
  await showResult(v.result, v.bitmap, variations.values);
}

async function keepVariation(v) {
  state.form.set("seed", v.seed);
  await showVariation(v);
  for (const other of variations.items) if (other !== v) { other.li.remove(); if (other.url) URL.revokeObjectURL(other.url); }
  variations.items = [v];
  v.li.classList.add("kept");
  v.li.querySelector(".keep").disabled = true;
  $("var-note").textContent = `Kept seed ${v.seed}: it is in the form (More settings), so Run makes this one again.`;
}

// ---- snippets ----------------------------------------------------------------
let snippetTimer = null;
function scheduleSnippet() {
  clearTimeout(snippetTimer);
  snippetTimer = setTimeout(renderSnippet, 120);
}

async function renderSnippet() {
  if (!state.form || !state.tool) return;
  const values = state.form.values();
  if (stage.maskEnabled && stage.base && stage.hasMask()) values.mask = new File([], "mask.png");
  const needsKey = auth.required || Boolean(auth.key);
  const text = {
    requests: () => requestsSnippet(state.tool, values, origin, needsKey),
    boto3: () => boto3Snippet(state.tool, values, origin, needsKey),
    cli: () => cliSnippet(state.tool, values, state.form.primary),
  }[state.lang]();
  $("snippet-code").textContent = text;
}
for (const tab of document.querySelectorAll("#snippets [data-lang]")) {
  tab.addEventListener("click", () => {
    state.lang = tab.dataset.lang;
    for (const t of document.querySelectorAll("#snippets [data-lang]")) t.setAttribute("aria-selected", String(t === tab));
    renderSnippet();
  });
}
$("snippet-wrap").addEventListener("change", (e) => $("snippet-pre").classList.toggle("wrap", e.target.checked));
$("snippet-copy").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText($("snippet-code").textContent);
    $("snippet-copy").textContent = "Copied";
  } catch { // no clipboard access (plain http on another host): select the text for Ctrl+C
    const range = document.createRange();
    range.selectNodeContents($("snippet-code"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    $("snippet-copy").textContent = "Selected: press Ctrl+C";
  }
  setTimeout(() => { $("snippet-copy").textContent = "Copy"; }, 1500);
});

// ---- history -----------------------------------------------------------------
// Runs come from the server's job store (GET /v1/jobs, kind "run"): they outlive
// reloads and server restarts, and no image is kept in the browser. Thumbnails
// need the API key, so they are fetched, not linked, and kept for this page only.
const selected = new Map();
const thumbs = new Map();

async function listRuns() {
  const body = await getJSON("/v1/jobs");
  return (body.jobs || []).filter((j) => j.meta?.kind === "run" && j.item);
}

// the prompt stands for a run without an input image (text-to-image): the history shows it on its own line
const promptOf = (item) => (item.steps || [])[0]?.prompt || "";

function stepFields(item) {
  const step = (item.steps || [])[0] || {};
  return Object.fromEntries(Object.entries(step).filter(([k]) => k !== "tool" && !(k in (item.inputs || {}))));
}

async function thumbnail(item) {
  if (!thumbs.has(item.url)) thumbs.set(item.url, call(item.url).then((r) => r.blob()).then((b) => URL.createObjectURL(b)));
  try { return await thumbs.get(item.url); } catch { thumbs.delete(item.url); return null; }
}

async function renderHistory() {
  const list = $("history-runs");
  let runs = [];
  let problem = "";
  try { runs = await listRuns(); } catch (err) { problem = `Runs could not be listed: ${err.message}`; }
  list.replaceChildren();
  if (!runs.length) list.append(el("li", { class: "empty", text: problem || "No runs yet." }));
  for (const job of runs) {
    const item = job.item;
    const tool = job.meta.tool || item.steps?.[0]?.tool || job.title;
    const img = el("img", { alt: `${tool} result`, loading: "lazy" });
    if (item.state === "done") thumbnail(item).then((src) => { if (src) img.src = src; });
    const check = el("input", { type: "checkbox", "aria-label": `Select ${tool} run for compare`, disabled: item.state !== "done" });
    check.checked = selected.has(job.id);
    check.addEventListener("change", () => {
      check.checked ? selected.set(job.id, job) : selected.delete(job.id);
      $("history-compare").disabled = selected.size !== 2;
    });
    const open = el("button", { type: "button", text: "Open", disabled: item.state !== "done" });
    open.addEventListener("click", () => openRun(job, false).catch(showError));
    // a run made without an input image re-runs from its settings alone; one whose input is gone cannot
    const rerun = el("button", { type: "button", text: "Re-run", disabled: Boolean(item.input) && !item.inputs?.input });
    rerun.addEventListener("click", () => openRun(job, true).catch(showError));
    const when = new Date(job.created * 1000).toLocaleString();
    const last = (item.result?.steps || []).slice(-1)[0] || {};
    const facts = [when, item.state === "done" ? `${(item.seconds ?? 0).toFixed(1)} s` : item.state,
      item.result?.size ? item.result.size.join("×") : "", last.seed ? `seed ${last.seed}` : ""].filter(Boolean);
    const fields = Object.entries(stepFields(item)).filter(([k]) => k !== "prompt").map(([k, v]) => `${k}=${v}`).join(", ");
    const prompt = promptOf(item);
    list.append(el("li", { class: `run ${item.state}`, "data-job": job.id },
      img,
      el("div", { class: "meta" },
        el("strong", { text: tool }),
        el("span", { text: facts.join(" · ") }),
        ...(prompt ? [el("span", { class: "prompt", text: `“${prompt}”` })] : []),
        ...(fields ? [el("span", { class: "fields", text: fields })] : []),
        ...(item.error ? [el("span", { class: "reason", text: item.error })] : [])),
      el("div", { class: "actions" }, check, open, rerun)));
  }
  $("history-compare").disabled = selected.size !== 2;
  batch.renderJobs($("history-jobs"));
}

// put a stored run back on the stage; `again` runs it once more with the same inputs and settings
async function openRun(job, again) {
  const item = job.item;
  const toolName = job.meta.tool || item.steps?.[0]?.tool;
  if (!item.input) { state.input = null; } // made without an input image: none carried over from the stage
  selectTool(toolName);
  setHash(`tool=${toolName}`);
  showScreen("screen-tools");
  const form = state.form;
  for (const [k, v] of Object.entries(stepFields(item))) form.set(k, v);
  for (const [name, path] of Object.entries(item.inputs || {})) {
    const file = await fetchFile(path, `${name}.png`);
    if (name === "input") await setInput(file);
    else if (name === "mask" && stage.maskEnabled) { form.setImage(name, file); stage.loadMask(await createImageBitmap(file)); }
    else form.setImage(name, file);
  }
  if (again) return run();
  const out = await runResult(item);
  const bitmap = await createImageBitmap(out.blob);
  await showResult({ ...out, width: bitmap.width, height: bitmap.height, tool: toolName, job: job.id, item: item.id },
    bitmap, { ...stepFields(item) });
}

$("history-compare").addEventListener("click", async () => {
  const [a, b] = [...selected.values()];
  if (!a || !b) return;
  showScreen("screen-tools");
  const [ra, rb] = await Promise.all([runResult(a.item), runResult(b.item)]);
  const [ba, bb] = await Promise.all([createImageBitmap(ra.blob), createImageBitmap(rb.blob)]);
  clearResult();
  stage.setBase(ba);
  stage.setResult(bb, { x: 0, y: 0, w: ba.width, h: ba.height });
  $("stage-empty").hidden = true;
  $("compare-group").hidden = false;
  const label = (j) => `${j.meta.tool} (${new Date(j.created * 1000).toLocaleTimeString()})`;
  $("stage-hint").textContent = `Before: ${label(a)}; after: ${label(b)}.`;
});

// ---- start -------------------------------------------------------------------
const batch = new BatchScreen({ showError: (err) => showError(err) });
state.batch = batch;
loadTools();
