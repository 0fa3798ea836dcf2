// The stage: the input image on a canvas with zoom and pan, a mask layer
// painted with a brush/eraser (size, hardness, undo/redo, invert, clear),
// outpaint handles that drag the canvas edges, and a before/after split
// between the input and the result. Zoom: wheel, +/-/0, or pinch with two
// fingers (pointer events); pan: drag, middle button, Space, arrow keys.

const MAX_UNDO = 20;
const HANDLE = 9; // half-size of an outpaint handle, in CSS px
// fit() keeps this much free under the image for the view bar (backdrop, before/after), with or
// without a result, so a result arriving never moves the image under the brush
export const VIEWBAR_RESERVE = 48;
const BACKDROPS = { white: "#ffffff", black: "#000000" };

export class Stage {
  constructor(root, { onMargins = () => {}, onMask = () => {}, onView = () => {}, onSelect = () => {} } = {}) {
    this.root = root;
    this.canvas = root.querySelector("canvas");
    this.ctx = this.canvas.getContext("2d");
    this.onMargins = onMargins;
    this.onMask = onMask;
    this.onView = onView;
    this.onSelect = onSelect; // a click ({point, label}) or a dragged box ({box}) with the select tool, in image pixels
    this.marks = null; // the current selection's points and box, drawn while they still describe the mask
    this.base = null;
    this.result = null;
    this.resultRect = null;
    this.mask = document.createElement("canvas");
    this.maskCtx = this.mask.getContext("2d", { willReadFrequently: true });
    this.view = { scale: 1, x: 0, y: 0 };
    this.tool = "pan";
    this.brush = { size: 40, hardness: 0.7 };
    this.maskEnabled = false;
    this.showMask = true;
    this.marginsEnabled = false;
    this.margins = { left: 0, right: 0, up: 0, down: 0 };
    this.marginMax = 2000;
    this.split = 0.5;
    this.backdrop = "checker"; // or "white", "black", or a CSS colour: under both sides of the split
    this.viewbar = root.querySelector(".viewbar");
    this.loupe = root.querySelector(".loupe");
    this.loupeOn = false;
    this.undoStack = [];
    this.redoStack = [];
    this.maskVersion = 0; // bumped on every mask change; the pink overlay is re-tinted only then
    this.pointer = null;
    this.drag = null;
    this.touches = new Map(); // pointers down now (two of them pinch)
    this.pinch = null;
    this.spaceDown = false;
    new ResizeObserver(() => this.resize()).observe(root);
    this.bindPointer();
    this.bindKeys();
    this.resize();
  }

  // ---- content -----------------------------------------------------------
  setBase(bitmap) {
    this.base = bitmap;
    this.result = null;
    this.resultRect = null;
    this.mask.width = bitmap ? bitmap.width : 1;
    this.mask.height = bitmap ? bitmap.height : 1;
    this.undoStack = [];
    this.redoStack = [];
    this.maskVersion++;
    this.fit();
    this.onMask();
  }

  setResult(bitmap, rect = null) {
    this.result = bitmap;
    this.resultRect = rect;
    if (!this.base) this.fit();
    this.draw();
  }

  clearResult() { this.result = null; this.resultRect = null; this.draw(); }

  // where the result lies in input-image coordinates, or null to show it alone
  resultPlacement() {
    if (!this.result) return null;
    if (this.resultRect) return this.resultRect;
    if (!this.base) return null;
    const a = this.base.width / this.base.height;
    const b = this.result.width / this.result.height;
    return Math.abs(a - b) / a < 0.01 ? { x: 0, y: 0, w: this.base.width, h: this.base.height } : null;
  }

  contentRect() {
    if (this.base) {
      const m = this.marginsEnabled ? this.margins : { left: 0, right: 0, up: 0, down: 0 };
      return { x: -m.left, y: -m.up, w: this.base.width + m.left + m.right, h: this.base.height + m.up + m.down };
    }
    if (this.result) return { x: 0, y: 0, w: this.result.width, h: this.result.height };
    return null;
  }

  // ---- view ----------------------------------------------------------------
  resize() {
    const dpr = window.devicePixelRatio || 1;
    const { width, height } = this.root.getBoundingClientRect();
    this.cssW = Math.max(1, width);
    this.cssH = Math.max(1, height);
    this.canvas.width = Math.round(this.cssW * dpr);
    this.canvas.height = Math.round(this.cssH * dpr);
    this.canvas.style.width = `${this.cssW}px`;
    this.canvas.style.height = `${this.cssH}px`;
    if (!this.fitted) this.fit(); else this.draw();
  }

  fit() {
    const r = this.contentRect();
    if (!r) { this.draw(); return; }
    const pad = 24;
    const below = this.viewbar ? VIEWBAR_RESERVE : 0;
    const scale = Math.min((this.cssW - 2 * pad) / r.w, (this.cssH - 2 * pad - below) / r.h);
    this.view.scale = Math.max(0.01, scale);
    this.view.x = (this.cssW - r.w * this.view.scale) / 2 - r.x * this.view.scale;
    this.view.y = (this.cssH - below - r.h * this.view.scale) / 2 - r.y * this.view.scale;
    this.fitted = true;
    this.draw();
    this.onView(this.view.scale);
  }

  // 100 %: one image pixel to one CSS pixel, about the given point (the stage's centre by default)
  actualSize(cx = this.cssW / 2, cy = this.cssH / 2) { this.zoom(1 / this.view.scale, cx, cy); }

  zoom(factor, cx = this.cssW / 2, cy = this.cssH / 2) {
    const s = Math.min(32, Math.max(0.02, this.view.scale * factor));
    const k = s / this.view.scale;
    this.view.x = cx - (cx - this.view.x) * k;
    this.view.y = cy - (cy - this.view.y) * k;
    this.view.scale = s;
    this.draw();
    this.onView(s);
  }

  pan(dx, dy) { this.view.x += dx; this.view.y += dy; this.draw(); }

  toImage(sx, sy) { return { x: (sx - this.view.x) / this.view.scale, y: (sy - this.view.y) / this.view.scale }; }
  toScreen(ix, iy) { return { x: ix * this.view.scale + this.view.x, y: iy * this.view.scale + this.view.y }; }

  // ---- drawing -------------------------------------------------------------
  setBackdrop(value) { this.backdrop = value; this.draw(); }

  // called where the context draws in image coordinates: the checker's squares stay 8 CSS px at any zoom
  backdropFill(ctx) {
    if (this.backdrop !== "checker") return BACKDROPS[this.backdrop] || this.backdrop;
    const pattern = checker(ctx);
    const { scale, x, y } = this.view;
    pattern.setTransform(new DOMMatrix([1 / scale, 0, 0, 1 / scale, -x / scale, -y / scale]));
    return pattern;
  }

  draw() {
    if (this.viewbar) this.viewbar.hidden = !(this.base || this.result);
    const { ctx } = this;
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, this.cssW, this.cssH);
    const v = this.view;
    const place = this.resultPlacement();
    ctx.save();
    ctx.translate(v.x, v.y);
    ctx.scale(v.scale, v.scale);
    ctx.imageSmoothingEnabled = v.scale < 2;
    if (this.base) {
      const r = this.contentRect();
      // the same backdrop under the input (and the outpaint margins) as under the result
      ctx.fillStyle = this.backdropFill(ctx);
      if (this.marginsEnabled) ctx.fillRect(r.x, r.y, r.w, r.h);
      else if (!this.result || place) ctx.fillRect(0, 0, this.base.width, this.base.height);
      if (!this.result || place) ctx.drawImage(this.base, 0, 0);
      // the mask sits on the "before" side; the "after" side shows the result clean
      if (this.maskEnabled && this.showMask && (!this.result || place)) ctx.drawImage(tinted(this.mask, this.maskVersion), 0, 0);
      if (this.result && place) {
        ctx.save();
        ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
        ctx.beginPath();
        ctx.rect(this.cssW * this.split, 0, this.cssW, this.cssH);
        ctx.clip();
        ctx.translate(v.x, v.y);
        ctx.scale(v.scale, v.scale);
        ctx.fillStyle = this.backdropFill(ctx);
        ctx.fillRect(place.x, place.y, place.w, place.h);
        ctx.drawImage(this.result, place.x, place.y, place.w, place.h);
        ctx.restore();
      } else if (this.result) {
        const h = this.base.width * this.result.height / this.result.width;
        ctx.fillStyle = this.backdropFill(ctx);
        ctx.fillRect(0, 0, this.base.width, h);
        ctx.drawImage(this.result, 0, 0, this.base.width, h);
      }
      if (this.marginsEnabled) {
        ctx.setLineDash([6 / v.scale, 4 / v.scale]);
        ctx.strokeStyle = "#4f8cff";
        ctx.lineWidth = 1.5 / v.scale;
        ctx.strokeRect(r.x, r.y, r.w, r.h);
        ctx.setLineDash([]);
      }
    } else if (this.result) {
      ctx.fillStyle = this.backdropFill(ctx);
      ctx.fillRect(0, 0, this.result.width, this.result.height);
      ctx.drawImage(this.result, 0, 0);
    }
    ctx.restore();
    if (this.base && this.result && place) {
      const x = Math.round(this.cssW * this.split) + 0.5;
      ctx.strokeStyle = "#fff";
      ctx.lineWidth = 2;
      ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, this.cssH); ctx.stroke();
      // in the stage's top corners: the outpaint handles sit at the middle of each edge,
      // where labels beside the split line (50% by default) would cover the top one
      label(ctx, "before", 10, 20, "left");
      label(ctx, "after", this.cssW - 10, 20, "right");
    }
    if (this.marginsEnabled && this.base) {
      for (const h of this.handles()) {
        ctx.fillStyle = "#4f8cff";
        ctx.strokeStyle = "#fff";
        ctx.lineWidth = 2;
        ctx.fillRect(h.x - HANDLE, h.y - HANDLE, 2 * HANDLE, 2 * HANDLE);
        ctx.strokeRect(h.x - HANDLE, h.y - HANDLE, 2 * HANDLE, 2 * HANDLE);
      }
    }
    if (this.maskEnabled && this.base) this.drawMarks(ctx);
    this.canvas.style.cursor = this.maskEnabled && this.base && this.tool === "select" ? "crosshair" : "";
    this.drawLoupe();
    if (this.pointer && this.maskEnabled && (this.tool === "brush" || this.tool === "eraser")) {
      ctx.beginPath();
      ctx.arc(this.pointer.x, this.pointer.y, (this.brush.size / 2) * v.scale, 0, Math.PI * 2);
      ctx.strokeStyle = this.tool === "brush" ? "#fff" : "#ffb347";
      ctx.lineWidth = 1.5;
      ctx.stroke();
    }
  }

  // The loupe: the pixels under the pointer at 100 % (one image pixel per CSS pixel), whatever the
  // zoom: the input's left of the split (with the mask), the result's own pixels right of it.
  setLoupe(on) { this.loupeOn = on; this.draw(); }

  loupeSource() {
    const p = this.pointer;
    const ip = this.toImage(p.x, p.y);
    const place = this.resultPlacement();
    if (this.result && (!this.base || !place || p.x >= this.cssW * this.split)) {
      const r = place || (this.base ? { x: 0, y: 0, w: this.base.width, h: this.base.width * this.result.height / this.result.width }
        : { x: 0, y: 0, w: this.result.width, h: this.result.height });
      return { image: this.result, x: (ip.x - r.x) * this.result.width / r.w, y: (ip.y - r.y) * this.result.height / r.h, mask: false };
    }
    return this.base ? { image: this.base, x: ip.x, y: ip.y, mask: this.maskEnabled && this.showMask } : null;
  }

  drawLoupe() {
    const L = this.loupe;
    if (!L) return;
    const src = this.loupeOn && this.pointer && !this.drag ? this.loupeSource() : null;
    L.hidden = !src;
    if (!src) return;
    const size = 160;
    const dpr = window.devicePixelRatio || 1;
    if (L.width !== Math.round(size * dpr)) { L.width = Math.round(size * dpr); L.height = Math.round(size * dpr); }
    const g = L.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.imageSmoothingEnabled = false;
    const pattern = this.backdrop === "checker" ? checker(g) : null;
    if (pattern) pattern.setTransform(new DOMMatrix());
    g.fillStyle = pattern || BACKDROPS[this.backdrop] || this.backdrop;
    g.fillRect(0, 0, size, size);
    // the pointer's pixel lands on the loupe's centre pixel, at whole-pixel offsets (no resampling)
    const ox = size / 2 - Math.floor(src.x);
    const oy = size / 2 - Math.floor(src.y);
    g.drawImage(src.image, ox, oy);
    if (src.mask) g.drawImage(tinted(this.mask, this.maskVersion), ox, oy);
    // ticks at the edges point at the centre pixel and leave the pixels around it untouched
    g.fillStyle = "#fff";
    for (const [x, y, w, h] of [[80, 0, 1, 10], [80, 150, 1, 10], [0, 80, 10, 1], [150, 80, 10, 1]]) g.fillRect(x, y, w, h);
    // beside the pointer, flipped to stay on the stage
    const p = this.pointer;
    const left = p.x + 24 + size > this.cssW ? p.x - 24 - size : p.x + 24;
    const top = p.y - 24 - size < 0 ? p.y + 24 : p.y - 24 - size;
    L.style.left = `${Math.max(0, left)}px`;
    L.style.top = `${Math.max(0, top)}px`;
  }

  handles() {
    const r = this.contentRect();
    const a = this.toScreen(r.x, r.y);
    const b = this.toScreen(r.x + r.w, r.y + r.h);
    const mx = (a.x + b.x) / 2;
    const my = (a.y + b.y) / 2;
    return [
      { side: "left", x: a.x, y: my }, { side: "right", x: b.x, y: my },
      { side: "up", x: mx, y: a.y }, { side: "down", x: mx, y: b.y },
    ];
  }

  // ---- mask ----------------------------------------------------------------
  snapshot() {
    this.undoStack.push(this.maskCtx.getImageData(0, 0, this.mask.width, this.mask.height));
    if (this.undoStack.length > MAX_UNDO) this.undoStack.shift();
    this.redoStack = [];
  }

  undo() { this.swap(this.undoStack, this.redoStack); }
  redo() { this.swap(this.redoStack, this.undoStack); }

  swap(from, to) {
    if (!from.length || !this.base) return;
    to.push(this.maskCtx.getImageData(0, 0, this.mask.width, this.mask.height));
    this.maskCtx.putImageData(from.pop(), 0, 0);
    this.maskVersion++;
    this.draw();
    this.onMask();
  }

  clearMask() {
    if (!this.base) return;
    this.snapshot();
    this.maskCtx.clearRect(0, 0, this.mask.width, this.mask.height);
    this.maskVersion++;
    this.draw();
    this.onMask();
  }

  invertMask() {
    if (!this.base) return;
    this.snapshot();
    const data = this.maskCtx.getImageData(0, 0, this.mask.width, this.mask.height);
    const px = data.data;
    for (let i = 0; i < px.length; i += 4) {
      px[i] = px[i + 1] = px[i + 2] = 255;
      px[i + 3] = 255 - px[i + 3];
    }
    this.maskCtx.putImageData(data, 0, 0);
    this.maskVersion++;
    this.draw();
    this.onMask();
  }

  hasMask() {
    if (!this.base) return false;
    const px = this.maskCtx.getImageData(0, 0, this.mask.width, this.mask.height).data;
    for (let i = 3; i < px.length; i += 4) if (px[i]) return true;
    return false;
  }

  // an uploaded mask (white = edit) becomes the painted layer, so it can be touched up
  loadMask(bitmap) {
    if (!this.base) return;
    this.snapshot();
    const tmp = document.createElement("canvas");
    tmp.width = this.mask.width;
    tmp.height = this.mask.height;
    const t = tmp.getContext("2d");
    t.drawImage(bitmap, 0, 0, tmp.width, tmp.height);
    const data = t.getImageData(0, 0, tmp.width, tmp.height);
    const px = data.data;
    for (let i = 0; i < px.length; i += 4) {
      const lum = 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
      px[i + 3] = Math.round(lum * (px[i + 3] / 255));
      px[i] = px[i + 1] = px[i + 2] = 255;
    }
    this.maskCtx.putImageData(data, 0, 0);
    this.maskVersion++;
    this.draw();
    this.onMask();
  }

  maskData() { return this.maskCtx.getImageData(0, 0, this.mask.width, this.mask.height); }

  // a selection (an L mask, 0/255, any size: scaled to the layer) added to the layer as it was before it
  applySelection(base, bitmap) {
    if (!this.base) return;
    this.snapshot();
    const w = this.mask.width;
    const h = this.mask.height;
    const tmp = document.createElement("canvas");
    tmp.width = w;
    tmp.height = h;
    const t = tmp.getContext("2d", { willReadFrequently: true });
    t.drawImage(bitmap, 0, 0, w, h);
    const sel = t.getImageData(0, 0, w, h).data;
    const out = new ImageData(new Uint8ClampedArray(base.data), w, h);
    const px = out.data;
    for (let i = 0; i < px.length; i += 4) {
      if (sel[i] > px[i + 3]) { px[i] = px[i + 1] = px[i + 2] = 255; px[i + 3] = sel[i]; }
    }
    this.maskCtx.putImageData(out, 0, 0);
    this.maskVersion++;
    this.draw();
    this.onMask();
  }

  // the painted layer as a black/white PNG at the input's size (white = edit)
  exportMask() {
    const out = document.createElement("canvas");
    out.width = this.mask.width;
    out.height = this.mask.height;
    const o = out.getContext("2d");
    o.fillStyle = "#000";
    o.fillRect(0, 0, out.width, out.height);
    o.drawImage(this.mask, 0, 0);
    return new Promise((resolve) => out.toBlob(resolve, "image/png"));
  }

  stamp(x, y) {
    const r = this.brush.size / 2;
    const g = this.maskCtx;
    const grad = g.createRadialGradient(x, y, 0, x, y, r);
    const hard = Math.min(0.999, Math.max(0, this.brush.hardness));
    grad.addColorStop(0, "rgba(255,255,255,1)");
    grad.addColorStop(hard, "rgba(255,255,255,1)");
    grad.addColorStop(1, "rgba(255,255,255,0)");
    g.globalCompositeOperation = this.tool === "eraser" ? "destination-out" : "source-over";
    g.fillStyle = grad;
    g.beginPath();
    g.arc(x, y, r, 0, Math.PI * 2);
    g.fill();
    g.globalCompositeOperation = "source-over";
    this.maskVersion++;
  }

  strokeTo(p) {
    const last = this.drag.last;
    const dist = Math.hypot(p.x - last.x, p.y - last.y);
    const step = Math.max(1, this.brush.size * 0.2);
    const n = Math.max(1, Math.floor(dist / step));
    for (let i = 1; i <= n; i++) this.stamp(last.x + ((p.x - last.x) * i) / n, last.y + ((p.y - last.y) * i) / n);
    if (n >= 1) this.drag.last = p;
  }

  // ---- input ---------------------------------------------------------------
  local(e) {
    const rect = this.canvas.getBoundingClientRect();
    return { x: e.clientX - rect.left, y: e.clientY - rect.top };
  }

  bindPointer() {
    const c = this.canvas;
    c.addEventListener("pointerdown", (e) => {
      c.focus();
      const p = this.local(e);
      try { c.setPointerCapture(e.pointerId); } catch { /* a pointer the browser no longer tracks */ }
      this.touches.set(e.pointerId, p);
      if (this.touches.size === 2) { this.startPinch(); e.preventDefault(); return; }
      if (this.touches.size > 2) return;
      const handle = this.marginsEnabled && this.base
        ? this.handles().find((h) => Math.abs(h.x - p.x) <= HANDLE + 4 && Math.abs(h.y - p.y) <= HANDLE + 4) : null;
      if (handle) {
        this.drag = { kind: "margin", side: handle.side };
      } else if (e.button === 1 || this.spaceDown || this.tool === "pan" || !this.maskEnabled || !this.base) {
        this.drag = { kind: "pan", from: p };
      } else if (e.button === 0 && this.tool === "select") {
        this.drag = { kind: "select", from: p, to: p, label: e.shiftKey ? 0 : 1 };
      } else if (e.button === 0) {
        this.snapshot();
        const ip = this.toImage(p.x, p.y);
        this.drag = { kind: "paint", last: ip };
        this.stamp(ip.x, ip.y);
        this.draw();
      }
      e.preventDefault();
    });
    c.addEventListener("pointermove", (e) => {
      const p = this.local(e);
      this.pointer = p;
      if (this.touches.has(e.pointerId)) this.touches.set(e.pointerId, p);
      if (this.pinch) { this.movePinch(); return; }
      const d = this.drag;
      if (!d) { this.draw(); return; }
      if (d.kind === "pan") { this.pan(p.x - d.from.x, p.y - d.from.y); d.from = p; return; }
      if (d.kind === "paint") { this.strokeTo(this.toImage(p.x, p.y)); this.draw(); return; }
      if (d.kind === "select") { d.to = p; this.draw(); return; }
      if (d.kind === "margin") {
        const ip = this.toImage(p.x, p.y);
        const b = this.base;
        const value = { left: -ip.x, right: ip.x - b.width, up: -ip.y, down: ip.y - b.height }[d.side];
        this.margins[d.side] = Math.round(Math.min(this.marginMax, Math.max(0, value)));
        this.draw();
        this.onMargins({ ...this.margins });
      }
    });
    const end = (e) => {
      this.touches.delete(e.pointerId);
      if (this.pinch) { // lifting one finger ends the pinch; the other does not start a stroke
        if (this.touches.size < 2) this.pinch = null;
        return;
      }
      if (this.drag?.kind === "paint") this.onMask();
      if (this.drag?.kind === "select") this.endSelect(this.drag);
      const refit = this.drag?.kind === "margin"; // keep the whole extended canvas in view
      this.drag = null;
      if (refit) this.fit();
    };
    c.addEventListener("pointerup", end);
    c.addEventListener("pointercancel", end);
    c.addEventListener("pointerleave", () => { this.pointer = null; this.draw(); });
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const p = this.local(e);
      this.zoom(Math.exp(-e.deltaY * 0.0015), p.x, p.y);
    }, { passive: false });
  }

  // a click is a point (Shift: label 0, take away), a drag of more than a few pixels a box
  endSelect(d) {
    const a = this.toImage(d.from.x, d.from.y);
    if (Math.hypot(d.to.x - d.from.x, d.to.y - d.from.y) < 5) {
      this.onSelect({ point: [a.x, a.y], label: d.label });
      return;
    }
    const b = this.toImage(d.to.x, d.to.y);
    const clamp = (v, max) => Math.min(max, Math.max(0, v));
    const [w, h] = [this.base.width, this.base.height];
    this.onSelect({ box: [clamp(Math.min(a.x, b.x), w), clamp(Math.min(a.y, b.y), h),
      clamp(Math.max(a.x, b.x), w), clamp(Math.max(a.y, b.y), h)] });
  }

  drawMarks(ctx) {
    const m = this.marks;
    if (this.drag?.kind === "select") {
      const { from, to } = this.drag;
      ctx.setLineDash([5, 4]);
      ctx.strokeStyle = "#fff";
      ctx.lineWidth = 1.5;
      ctx.strokeRect(Math.min(from.x, to.x), Math.min(from.y, to.y), Math.abs(to.x - from.x), Math.abs(to.y - from.y));
      ctx.setLineDash([]);
    }
    if (!m || m.version() !== this.maskVersion || !this.showMask) return;
    if (m.box) {
      const a = this.toScreen(m.box[0], m.box[1]);
      const b = this.toScreen(m.box[2], m.box[3]);
      ctx.strokeStyle = "#4cd28b";
      ctx.lineWidth = 1.5;
      ctx.strokeRect(a.x, a.y, b.x - a.x, b.y - a.y);
    }
    for (const [x, y, label] of m.points || []) {
      const p = this.toScreen(x, y);
      ctx.beginPath();
      ctx.arc(p.x, p.y, 6, 0, Math.PI * 2);
      ctx.fillStyle = label ? "#4cd28b" : "#ff6b6b";
      ctx.fill();
      ctx.strokeStyle = "#fff";
      ctx.lineWidth = 1.5;
      ctx.stroke();
      ctx.fillStyle = "#fff";
      ctx.fillRect(p.x - 3, p.y - 0.75, 6, 1.5);
      if (label) ctx.fillRect(p.x - 0.75, p.y - 3, 1.5, 6);
    }
  }

  // two pointers: zoom by the change in their distance, about their midpoint, and pan with it
  startPinch() {
    if (this.drag?.kind === "paint" && this.undoStack.length) { // the first finger's stroke was the pinch's start
      this.maskCtx.putImageData(this.undoStack.pop(), 0, 0);
      this.maskVersion++;
    }
    this.drag = null;
    const [a, b] = [...this.touches.values()];
    this.pinch = { dist: Math.max(1, Math.hypot(b.x - a.x, b.y - a.y)), mid: { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 } };
    this.draw();
  }

  movePinch() {
    const [a, b] = [...this.touches.values()];
    const dist = Math.max(1, Math.hypot(b.x - a.x, b.y - a.y));
    const mid = { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
    this.view.x += mid.x - this.pinch.mid.x;
    this.view.y += mid.y - this.pinch.mid.y;
    this.zoom(dist / this.pinch.dist, mid.x, mid.y);
    this.pinch = { dist, mid };
  }

  bindKeys() {
    const c = this.canvas;
    c.addEventListener("keydown", (e) => {
      const step = 40;
      const keys = {
        ArrowLeft: () => this.pan(step, 0), ArrowRight: () => this.pan(-step, 0),
        ArrowUp: () => this.pan(0, step), ArrowDown: () => this.pan(0, -step),
        "+": () => this.zoom(1.25), "=": () => this.zoom(1.25), "-": () => this.zoom(0.8), 0: () => this.fit(),
        1: () => this.actualSize(this.pointer?.x, this.pointer?.y),
      };
      if (keys[e.key]) { keys[e.key](); e.preventDefault(); }
      if (e.key === " ") { this.spaceDown = true; e.preventDefault(); }
    });
    c.addEventListener("keyup", (e) => { if (e.key === " ") this.spaceDown = false; });
  }
}

let checkerPattern = null;
function checker(ctx) {
  if (!checkerPattern) {
    const t = document.createElement("canvas");
    t.width = t.height = 16;
    const g = t.getContext("2d");
    g.fillStyle = "#3a3f4b"; g.fillRect(0, 0, 16, 16);
    g.fillStyle = "#2c3039"; g.fillRect(0, 0, 8, 8); g.fillRect(8, 8, 8, 8);
    checkerPattern = ctx.createPattern(t, "repeat");
  }
  return checkerPattern;
}

const tintCanvas = document.createElement("canvas");
let tintVersion = -1;
function tinted(mask, version) {
  if (version === tintVersion && tintCanvas.width === mask.width && tintCanvas.height === mask.height) return tintCanvas;
  tintVersion = version;
  tintCanvas.width = mask.width;
  tintCanvas.height = mask.height;
  const t = tintCanvas.getContext("2d");
  t.globalAlpha = 0.55;
  t.drawImage(mask, 0, 0);
  t.globalAlpha = 1;
  t.globalCompositeOperation = "source-in";
  t.fillStyle = "#ff3b6b";
  t.fillRect(0, 0, mask.width, mask.height);
  t.globalCompositeOperation = "source-over";
  return tintCanvas;
}

function label(ctx, text, x, y, align) {
  ctx.font = "600 12px system-ui, sans-serif";
  ctx.textAlign = align;
  ctx.fillStyle = "rgba(0,0,0,.6)";
  const w = ctx.measureText(text).width + 10;
  ctx.fillRect(align === "right" ? x - w + 5 : x - 5, y - 13, w, 18);
  ctx.fillStyle = "#fff";
  ctx.fillText(text, x, y);
}
