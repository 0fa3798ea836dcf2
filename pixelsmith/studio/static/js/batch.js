// Batch: many images through a chain of steps. With the server's jobs API
// (/v1/jobs) the batch is a durable job on the server; without it, the page
// runs the chain itself through the REST routes, one image at a time.

import { ApiError, call, exists, getJSON, postJSON, runTool } from "./api.js";
import { el, ToolForm } from "./form.js";

const $ = (id) => document.getElementById(id);
const IMAGE_TYPES = /\.(png|jpe?g|webp)$/i;
const POLL_MS = 700;

export class BatchScreen {
  constructor({ showError }) {
    this.showError = showError;
    this.tools = [];
    this.files = [];
    this.steps = []; // {tool, form}
    this.job = null;
    this.serverJobs = null; // decided on first use
    this.bindInputs();
  }

  setTools(tools) {
    // a step takes the previous image as its main input: only tools with one
    this.tools = tools.filter((t) => primaryOf(t));
    const select = $("batch-add-tool");
    select.replaceChildren(...this.tools.map((t) =>
      el("option", { value: t.name, text: t.title + (t.ready ? "" : " (not installed)"), disabled: !t.ready })));
    const first = this.tools.find((t) => t.name === "remove-background" && t.ready) || this.tools.find((t) => t.ready);
    if (first) select.value = first.name;
    this.detectMode();
  }

  async detectMode() {
    if (this.serverJobs === null) {
      const found = await exists("/v1/jobs");
      if (this.serverJobs === null) this.serverJobs = found; // not if decided meanwhile (another call, a setting)
    }
    $("batch-mode").textContent = this.serverJobs
      ? "The batch runs as a job on the server: it goes on if you close this page; find it under History."
      : "This server has no jobs API: the batch runs from this page, one image at a time; keep the page open.";
    return this.serverJobs;
  }

  bindInputs() {
    const take = (list) => {
      const files = [...list].filter((f) => IMAGE_TYPES.test(f.name) || f.type.startsWith("image/"));
      this.files.push(...files);
      this.renderFiles();
    };
    $("batch-files").addEventListener("change", (e) => take(e.target.files));
    $("batch-folder").addEventListener("change", (e) => take(e.target.files));
    const drop = $("batch-drop");
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", async (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      take(await filesFromDrop(e.dataTransfer));
    });
    drop.addEventListener("paste", (e) => take(e.clipboardData?.files || []));
    $("batch-add").addEventListener("click", () => this.addStep($("batch-add-tool").value));
    $("batch-submit").addEventListener("click", () => this.submit());
    $("batch-retry").addEventListener("click", () => this.retry());
    $("batch-cancel").addEventListener("click", () => this.cancel());
  }

  renderFiles() {
    const n = this.files.length;
    $("batch-count").textContent = n
      ? `${n} image${n === 1 ? "" : "s"} chosen (${this.files.slice(0, 3).map((f) => f.name).join(", ")}${n > 3 ? ", …" : ""}). Add more, or`
      : "Drop images or a folder here, or";
  }

  addStep(name) {
    const tool = this.tools.find((t) => t.name === name);
    if (!tool) return;
    const box = el("div", { class: "step-fields" });
    const remove = el("button", { type: "button", class: "ghost small", text: "Remove", "aria-label": `Remove step ${tool.title}` });
    const li = el("li", { class: "step" }, el("div", { class: "step-head" }, el("strong", { text: tool.title }), remove), box);
    const form = new ToolForm(box, tool);
    // the main image comes from the previous step: hide its drop zone
    box.querySelector(`[data-field="${form.primary}"]`)?.remove();
    const step = { tool, form };
    remove.addEventListener("click", () => { this.steps = this.steps.filter((s) => s !== step); li.remove(); });
    this.steps.push(step);
    $("batch-steps").append(li);
  }

  stepSpecs() {
    return this.steps.map(({ tool, form }) => {
      const values = form.values();
      delete values[form.primary];
      return { tool, primary: form.primary, values };
    });
  }

  async submit() {
    $("batch-error").hidden = true;
    if (!this.files.length) return this.fail(new ApiError(0, "no_images", ["Choose at least one image."]));
    if (!this.steps.length) return this.fail(new ApiError(0, "no_steps", ["Add at least one step."]));
    const steps = this.stepSpecs();
    try {
      if (await this.detectMode()) await this.submitToServer(steps);
      else await this.runInPage(steps);
    } catch (err) {
      this.fail(err);
    }
  }

  fail(err) {
    const box = $("batch-error");
    box.replaceChildren(el("strong", { text: err.name || "Error" }),
      el("ul", {}, ...(err.lines || [err.message]).map((l) => el("li", { text: l }))));
    box.hidden = false;
  }

  // ---- server jobs ---------------------------------------------------------
  async submitToServer(steps, files = this.files) {
    const form = new FormData();
    files.forEach((f) => form.append("files", f, f.webkitRelativePath || f.name));
    const wire = [];
    for (const s of steps) {
      const fields = { tool: s.tool.name };
      for (const [k, v] of Object.entries(s.values)) {
        // extra images (a mask, a style image) travel as parts named after the field
        if (v instanceof Blob) form.append(k, v, v.name || `${k}.png`); else fields[k] = v;
      }
      wire.push(fields);
    }
    form.append("steps", JSON.stringify(wire));
    form.append("title", `studio: ${steps.map((s) => s.tool.name).join(" → ")} × ${files.length}`);
    const response = await call("/v1/jobs", { method: "POST", body: form, headers: { accept: "application/json" } });
    const job = await response.json();
    this.watch(job.id, { steps, files });
  }

  // follow a server job; `origin` (steps and files) is known when this page submitted it
  watch(id, origin = null) {
    this.stopPolling();
    this.job = { id, server: true, origin, thumbs: new Map() };
    this.showProgress(`Job ${id}`);
    $("batch-zip").onclick = (e) => { e.preventDefault(); this.downloadServerZip(id); };
    const poll = async () => {
      if (this.job?.id !== id) return;
      try {
        const [job, items] = await Promise.all([getJSON(`/v1/jobs/${id}`), getJSON(`/v1/jobs/${id}/items?limit=1000`)]);
        $("batch-title").textContent = job.title ? `${job.title}` : `Job ${id}`;
        await this.renderServer(job, Array.isArray(items) ? items : items.items || []);
        if (isFinished(job)) { this.stopPolling(); return; }
      } catch (err) {
        this.fail(err);
        this.stopPolling();
        return;
      }
      this.timer = setTimeout(poll, POLL_MS);
    };
    poll();
  }

  async downloadServerZip(id) {
    try {
      const response = await call(`/v1/jobs/${id}/results?format=zip`);
      save(await response.blob(), `pixelsmith-${id}.zip`);
    } catch (err) { this.fail(err); }
  }

  stopPolling() { clearTimeout(this.timer); this.timer = null; }

  async renderServer(job, items) {
    const c = countsOf(job, items);
    const finished = isFinished(job);
    this.renderStats(c, job.rate ?? null, job.eta_s ?? null, jobState(job));
    $("batch-retry").disabled = !c.failed || !finished || !this.job.origin;
    $("batch-cancel").disabled = finished;
    setZip(c.done > 0);
    // outputs need the API key, so thumbnails are fetched, not linked
    const thumbs = this.job.thumbs;
    await Promise.all(items.filter((it) => it.state === "done" && it.url && !thumbs.has(it.id)).map(async (it) => {
      try { thumbs.set(it.id, URL.createObjectURL(await (await call(it.url)).blob())); } catch { /* shown without */ }
    }));
    this.renderItems(items.map((it) => ({
      name: it.label || basename(it.input || it.key || String(it.id)).replace(/^\d{4}-/, ""),
      state: it.state,
      error: it.error || "",
      thumb: thumbs.get(it.id) || null,
    })));
    this.job.items = items;
  }

  // ---- in-page runner (no jobs API) -----------------------------------------
  async runInPage(steps) {
    this.stopPolling();
    const items = this.files.map((file) => ({ name: file.webkitRelativePath || file.name, file, state: "queued", error: "", thumb: null, output: null }));
    this.job = { server: false, steps, items, started: performance.now(), cancelled: false };
    this.showProgress(`Batch of ${items.length} image${items.length === 1 ? "" : "s"}`);
    await this.drain();
  }

  async drain() {
    const job = this.job;
    job.running = true;
    $("batch-cancel").disabled = false;
    $("batch-retry").disabled = true;
    setZip(false);
    for (const item of job.items) {
      if (job.cancelled) break;
      if (item.state !== "queued") continue;
      item.state = "running";
      this.renderLocal();
      try {
        let image = item.file;
        let out = null;
        for (const step of job.steps) {
          const form = new FormData();
          form.append(step.primary, image, image.name || "input.png");
          for (const [k, v] of Object.entries(step.values)) {
            if (v instanceof Blob) form.append(k, v, v.name || `${k}.png`); else form.append(k, String(v));
          }
          out = await runTool(step.tool, form);
          image = new File([out.blob], `step.${out.mime.split("/")[1]}`, { type: out.mime });
        }
        item.output = out;
        item.thumb = URL.createObjectURL(out.blob);
        item.state = "done";
      } catch (err) {
        item.state = "failed";
        item.error = err.lines ? err.lines.join("; ") : err.message;
      }
      this.renderLocal();
    }
    for (const item of job.items) if (item.state === "queued" && job.cancelled) item.state = "cancelled";
    job.running = false;
    job.finished = performance.now();
    this.renderLocal();
  }

  renderLocal() {
    const job = this.job;
    const c = { total: job.items.length, done: 0, failed: 0, running: 0, queued: 0, cancelled: 0 };
    for (const it of job.items) c[it.state] = (c[it.state] || 0) + 1;
    const elapsed = ((job.finished || performance.now()) - job.started) / 1000;
    const rate = c.done ? c.done / elapsed : null;
    const left = c.queued + c.running;
    this.renderStats(c, rate, rate && left ? left / rate : null, job.running ? "running" : job.cancelled ? "cancelled" : "finished");
    $("batch-retry").disabled = job.running || !c.failed;
    $("batch-cancel").disabled = !job.running;
    setZip(!job.running && c.done > 0);
    if (!job.running && c.done) $("batch-zip").onclick = (e) => { e.preventDefault(); this.downloadZip(); };
    this.renderItems(job.items);
  }

  async downloadZip() {
    const entries = {};
    for (const it of this.job.items.filter((i) => i.state === "done")) {
      const ext = it.output.mime.split("/")[1].replace("jpeg", "jpg");
      const stem = it.name.replace(/\.[^.\/]+$/, "");
      let name = `${stem}.${ext}`;
      for (let n = 2; entries[name]; n++) name = `${stem}-${n}.${ext}`;
      entries[name] = new Uint8Array(await it.output.blob.arrayBuffer());
    }
    // loaded only here: servers with a jobs API zip on the server
    const { zipSync } = await import("../vendor/fflate-0.8.2/browser.js");
    // level 0: the images are already compressed
    save(new Blob([zipSync(entries, { level: 0 })], { type: "application/zip" }), "pixelsmith-batch.zip");
  }

  // ---- shared ----------------------------------------------------------------
  showProgress(title) {
    $("batch-progress").hidden = false;
    $("batch-title").textContent = title;
    $("batch-items").replaceChildren();
  }

  renderStats(c, rate, eta, stateText) {
    const bar = $("batch-bar");
    bar.max = Math.max(1, c.total);
    bar.value = c.done + c.failed + (c.cancelled || 0);
    const parts = [`${c.done} done`, `${c.failed} failed`, `${c.total} total`];
    if (rate) parts.push(`${rate.toFixed(2)} images/s`);
    if (eta) parts.push(`about ${Math.ceil(eta)} s left`);
    $("batch-stats").textContent = `${stateText}: ${parts.join(" · ")}`;
  }

  renderItems(items) {
    const list = $("batch-items");
    list.replaceChildren(...items.map((it) => el("li", { class: `item ${it.state}` },
      it.thumb ? el("img", { src: it.thumb, alt: `${it.name} result` }) : el("div", { class: "thumb-empty", "aria-hidden": "true" }),
      el("span", { class: "name", text: it.name }),
      el("span", { class: "state", text: it.state }),
      it.error ? el("span", { class: "item-error", text: it.error }) : null)));
  }

  async retry() {
    const job = this.job;
    if (!job) return;
    if (job.server) {
      // the job store already retried transient failures; a retry here is a new job of the failed inputs
      const { steps, files } = job.origin || {};
      const failed = (job.items || []).filter((it) => it.state === "failed")
        .map((it) => files?.[Number((basename(it.input).match(/^(\d{4})-/) || [])[1])]).filter(Boolean);
      if (!failed.length) return;
      try { await this.submitToServer(steps, failed); } catch (err) { this.fail(err); }
      return;
    }
    for (const it of job.items) if (it.state === "failed") { it.state = "queued"; it.error = ""; }
    job.cancelled = false;
    job.finished = null;
    await this.drain();
  }

  async cancel() {
    const job = this.job;
    if (!job) return;
    if (job.server) {
      try { await postJSON(`/v1/jobs/${job.id}/cancel`, {}); } catch (err) { this.fail(err); }
    } else job.cancelled = true;
  }

  // History: the server's batch jobs (when it has a jobs API)
  async renderJobs(list) {
    list.replaceChildren();
    if (!(await this.detectMode())) {
      list.append(el("li", { class: "empty", text: "This server has no jobs API; batches run from the page are not kept." }));
      return;
    }
    try {
      const body = await getJSON("/v1/jobs");
      // single runs from the Tools screen are listed above, as runs
      const jobs = (Array.isArray(body) ? body : body.jobs || []).filter((j) => j.meta?.kind !== "run");
      if (!jobs.length) list.append(el("li", { class: "empty", text: "No batch jobs yet." }));
      for (const job of jobs) {
        const c = countsOf(job, []);
        const open = el("button", { type: "button", text: "Open" });
        open.addEventListener("click", () => { document.getElementById("tab-batch").click(); this.watch(job.id); });
        const zip = el("button", { type: "button", text: "Download zip", disabled: !c.done });
        zip.addEventListener("click", () => this.downloadServerZip(job.id));
        const when = job.created ? new Date(job.created * 1000).toLocaleString() : "";
        list.append(el("li", { class: "run" },
          el("div", { class: "meta" }, el("strong", { text: job.title || job.id }),
            el("span", { text: `${when} · ${jobState(job)} · ${c.done}/${c.total} done · ${c.failed} failed` })),
          el("div", { class: "actions" }, open, zip)));
      }
    } catch (err) {
      list.append(el("li", { class: "empty", text: `Jobs could not be listed: ${err.message}` }));
    }
  }
}

function primaryOf(tool) {
  const props = tool.schema?.properties || {};
  const isImage = (p) => p.format === "binary" || (p.anyOf || []).some((s) => s.format === "binary");
  return ["image", "init_image"].find((n) => props[n] && isImage(props[n]))
    || Object.keys(props).find((n) => isImage(props[n])) || null;
}

function countsOf(job, items) {
  const c = job.counts || job.progress || job;
  const total = c.total ?? job.total ?? items.length;
  return {
    total, done: c.done ?? 0, failed: c.failed ?? 0, running: c.running ?? 0,
    queued: c.queued ?? 0, cancelled: c.cancelled ?? 0,
  };
}

function jobState(job) { return job.state || job.status || "running"; }
function isFinished(job) { return ["done", "finished", "failed", "cancelled", "completed"].includes(jobState(job)); }
function basename(p) { return String(p).split(/[\\/]/).pop(); }

function setZip(enabled) {
  const zip = $("batch-zip");
  zip.classList.toggle("disabled", !enabled);
  zip.setAttribute("aria-disabled", String(!enabled));
  if (!enabled) zip.removeAttribute("tabindex"); else zip.tabIndex = 0;
}

function save(blob, name) {
  const a = el("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

// a dropped folder: walk its entries (Chromium's webkitGetAsEntry)
async function filesFromDrop(dt) {
  const entries = [...(dt.items || [])].map((i) => i.webkitGetAsEntry?.()).filter(Boolean);
  if (!entries.length) return [...(dt.files || [])];
  const out = [];
  const walk = async (entry, prefix) => {
    if (entry.isFile) {
      const file = await new Promise((res, rej) => entry.file(res, rej));
      Object.defineProperty(file, "webkitRelativePath", { value: prefix + file.name });
      out.push(file);
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
        if (!batch.length) break;
        for (const e of batch) await walk(e, `${prefix}${entry.name}/`);
      }
    }
  };
  for (const e of entries) await walk(e, "");
  return out;
}
