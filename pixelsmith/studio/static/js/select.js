// Click-to-select: a click on the stage asks the server's segmentation model
// (POST /v1/segment) for the object under it, and the answer becomes the mask
// layer, where the brush and eraser can touch it up. Shift+click takes a part
// away (a point with label 0), or, on a point's mark, takes that point back; a
// drag sends a box. The image is sent once; later
// clicks send the image_id the server gave, and the image again if the server
// no longer knows it (404). Points accumulate until the mask is edited some
// other way (a brush stroke, undo, clear, a new image): the next click then
// starts a new selection, added to what is already painted.

import { postJSON, probe } from "./api.js";

export const SEGMENT = "/v1/segment";
const MARK_RADIUS = 8; // screen px: a drawn point's mark (6 px) and a little slack
export const UNAVAILABLE = "Click-to-select needs the segmentation model, which this server does not have: "
  + "run `pixelsmith models fetch` on the server.";

export class Selector {
  constructor(stage, { file, onBusy = () => {}, onError = () => {} }) {
    this.stage = stage;
    this.file = file; // () => the File on the stage (the tool's main image)
    this.onBusy = onBusy;
    this.onError = onError;
    this.available = null; // unknown until probe()
    this.session = null;
    this.image = { file: null, id: null, b64: null };
    this.queue = Promise.resolve();
    this.pending = 0;
  }

  // The route is there unless the server answers 404 or 405 to it (an empty body gets a 422 where it is)
  async probe() {
    const status = await probe(SEGMENT, {});
    this.available = status !== 0 && status !== 404 && status !== 405;
    return this.available;
  }

  // prompt: { point: [x, y], label } in image pixels, or { box: [x0, y0, x1, y1] }
  add(prompt) {
    const stage = this.stage;
    const file = this.file();
    if (!stage.base || !file) return Promise.resolve();
    const s = this.session;
    if (!s || s.bitmap !== stage.base || s.version !== stage.maskVersion) {
      this.session = { points: [], box: null, base: stage.maskData(), bitmap: stage.base, version: stage.maskVersion };
    }
    const session = this.session;
    const hit = !prompt.box && !prompt.label ? this.markAt(prompt.point) : -1;
    if (hit >= 0) session.points.splice(hit, 1); // Shift+click on a point's mark takes that point back
    else if (prompt.box) session.box = prompt.box.map(Math.round);
    else session.points.push([Math.round(prompt.point[0]), Math.round(prompt.point[1]), prompt.label ? 1 : 0]);
    this.showMarks();
    const body = { points: session.points.map((p) => [...p]) };
    if (session.box) body.box = [...session.box];
    if (!body.points.length) delete body.points;
    const empty = !body.points && !body.box; // nothing left to select: back to the mask before the selection
    this.pending++;
    this.onBusy(true);
    this.queue = this.queue
      .then(() => (empty ? this.clear(session) : this.send(file, session, body)))
      .catch((err) => this.onError(err))
      .finally(() => { if (--this.pending === 0) this.onBusy(false); });
    return this.queue;
  }

  // the index of the selection's point whose mark (6 px on screen) is under ``point`` (image pixels), or -1:
  // a label-0 point there would contradict the point itself, and the model would keep the part anyway
  markAt(point) {
    const points = this.session?.points || [];
    const at = this.stage.toScreen(point[0], point[1]);
    let best = -1;
    let bestDistance = MARK_RADIUS;
    points.forEach(([x, y], i) => {
      const p = this.stage.toScreen(x, y);
      const d = Math.hypot(p.x - at.x, p.y - at.y);
      if (d <= bestDistance) { best = i; bestDistance = d; }
    });
    return best;
  }

  async clear(session) {
    if (session !== this.session || session.version !== this.stage.maskVersion || session.bitmap !== this.stage.base) return;
    this.stage.applySelection(session.base, await createImageBitmap(new ImageData(1, 1))); // an empty selection
    session.version = this.stage.maskVersion;
    this.showMarks();
  }

  async send(file, session, body) {
    const out = await this.request(file, body);
    // dropped when the mask was edited or the image changed while the model worked
    if (session !== this.session || session.version !== this.stage.maskVersion || session.bitmap !== this.stage.base) return;
    const bitmap = await createImageBitmap(await (await fetch(`data:image/png;base64,${out.mask}`)).blob());
    this.stage.applySelection(session.base, bitmap);
    session.version = this.stage.maskVersion;
    this.score = out.score;
    this.showMarks();
  }

  async request(file, body) {
    if (this.image.file !== file) this.image = { file, id: null, b64: null };
    for (let attempt = 0; ; attempt++) {
      const image = this.image;
      const payload = image.id ? { image_id: image.id, ...body } : { image: image.b64 ??= await toBase64(file), ...body };
      try {
        const out = await postJSON(SEGMENT, payload);
        if (this.image === image) image.id = out.image_id || null;
        return out;
      } catch (err) {
        // the server forgot the image (restart, cache full): send it again, once
        if (err.status === 404 && image.id && attempt === 0) { image.id = null; continue; }
        throw err;
      }
    }
  }

  // the current selection's points and box, drawn on the stage while they still describe the mask
  showMarks() {
    const s = this.session;
    this.stage.marks = s ? { points: s.points, box: s.box, version: () => s.version } : null;
    this.stage.draw();
  }

  reset() { this.session = null; this.stage.marks = null; }
}

function toBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}
