// A tool's form, generated from its request model's JSON Schema: ranges become
// sliders, enums selects, image fields (format: binary) drop zones. Adding a
// tool on the server adds its form here with no front-end change.

import { DropZone } from "./dropzone.js";

const SLIDER_SPAN = 10000; // wider ranges (seeds) get a plain number box

// Optional[X] is anyOf [X, null] in pydantic's schema: unwrap it
export function fieldSpec(name, prop, required) {
  let base = prop;
  let nullable = false;
  if (Array.isArray(prop.anyOf)) {
    const real = prop.anyOf.filter((s) => s.type !== "null");
    nullable = real.length < prop.anyOf.length;
    base = { ...real[0], ...Object.fromEntries(Object.entries(prop).filter(([k]) => k !== "anyOf")) };
    for (const k of ["format", "enum", "minimum", "maximum", "type", "description", "maxLength"]) {
      if (real[0] && real[0][k] !== undefined && base[k] === undefined) base[k] = real[0][k];
    }
    if (real[0]?.description && !prop.description) base.description = real[0].description;
  }
  let kind = "text";
  if (base.format === "binary") kind = "image";
  else if (Array.isArray(base.enum)) kind = "select";
  else if (base.type === "boolean") kind = "checkbox";
  else if (base.type === "integer" || base.type === "number") {
    const span = (base.maximum ?? Infinity) - (base.minimum ?? -Infinity);
    kind = span <= SLIDER_SPAN ? "slider" : "number";
  } else if (base.type === "string" && (base.maxLength ?? 0) > 200) kind = "textarea";
  return {
    name, kind, nullable,
    title: base.title || name,
    description: base.description || "",
    required: required.includes(name),
    default: prop.default,
    enum: base.enum,
    min: base.minimum, max: base.maximum,
    integer: base.type === "integer",
    step: base.type === "integer" ? 1 : stepFor(base.minimum, base.maximum),
  };
}

function stepFor(min, max) {
  const span = (max ?? 1) - (min ?? 0);
  return span <= 2 ? 0.01 : span <= 20 ? 0.1 : 1;
}

let uid = 0;
const el = (tag, attrs = {}, ...kids) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...kids.filter(Boolean));
  return node;
};
export { el };

// One tool's form. `values()` gives what differs from the defaults (what the
// request, the snippets and the history need); images are Files/Blobs.
export class ToolForm {
  constructor(container, tool, { onChange = () => {}, onImage = () => {} } = {}) {
    this.tool = tool;
    this.schema = tool.schema || {};
    this.onChange = onChange;
    this.controls = new Map();
    this.zones = new Map();
    const props = this.schema.properties || {};
    const required = this.schema.required || [];
    this.specs = Object.entries(props).map(([n, p]) => fieldSpec(n, p, required));
    this.primary = ["image", "init_image"].find((n) => this.specs.some((s) => s.name === n && s.kind === "image"))
      || this.specs.find((s) => s.kind === "image")?.name || null;
    container.replaceChildren();
    const advanced = el("details", { class: "advanced" }, el("summary", { text: "More settings" }));
    for (const spec of this.specs) {
      const row = this.build(spec, onImage);
      // seeds and formats are rarely changed: keep the form short
      (["seed", "output_format"].includes(spec.name) ? advanced : container).append(row);
    }
    if (advanced.children.length > 1) container.append(advanced);
  }

  build(spec, onImage) {
    const id = `f-${spec.name}-${++uid}`;
    const help = spec.description ? el("p", { class: "help", id: `${id}-help`, text: spec.description }) : null;
    const describedBy = help ? `${id}-help` : undefined;
    const label = el("label", { for: id, text: spec.title + (spec.required ? " *" : "") });
    const row = el("div", { class: `field field-${spec.kind}`, "data-field": spec.name });
    if (spec.kind === "image") {
      const zone = new DropZone({
        id, label: spec.title, required: spec.required, describedBy,
        onFile: (file) => { onImage(spec.name, file); this.onChange(); },
      });
      this.zones.set(spec.name, zone);
      row.append(zone.element, help);
      return row;
    }
    let input;
    if (spec.kind === "select") {
      input = el("select", { id, name: spec.name, "aria-describedby": describedBy });
      if (spec.nullable) input.append(el("option", { value: "", text: "(none)" }));
      for (const v of spec.enum) input.append(el("option", { value: String(v), text: String(v) }));
      input.value = spec.default == null ? "" : String(spec.default);
    } else if (spec.kind === "checkbox") {
      input = el("input", { id, name: spec.name, type: "checkbox", "aria-describedby": describedBy });
      input.checked = !!spec.default;
      row.append(input, label, help);
      this.controls.set(spec.name, input);
      input.addEventListener("change", () => this.onChange());
      return row;
    } else if (spec.kind === "slider") {
      input = el("input", {
        id, name: spec.name, type: "number", min: spec.min, max: spec.max, step: spec.step,
        "aria-describedby": describedBy, placeholder: spec.nullable ? "auto" : undefined,
      });
      const slider = el("input", {
        type: "range", min: spec.min, max: spec.max, step: spec.step, "aria-label": `${spec.title} slider`,
        tabindex: "-1",
      });
      const mid = spec.default ?? (spec.min + spec.max) / 2;
      slider.value = String(mid);
      input.value = spec.default == null ? "" : String(spec.default);
      slider.addEventListener("input", () => { input.value = slider.value; this.onChange(spec.name); });
      input.addEventListener("input", () => { if (input.value !== "") slider.value = input.value; });
      row.append(label, el("div", { class: "slider-pair" }, slider, input), help);
      this.controls.set(spec.name, input);
      input.addEventListener("input", () => this.onChange(spec.name));
      return row;
    } else if (spec.kind === "number") {
      input = el("input", { id, name: spec.name, type: "number", min: spec.min, max: spec.max, step: 1,
        "aria-describedby": describedBy });
      input.value = spec.default == null ? "" : String(spec.default);
    } else if (spec.kind === "textarea") {
      input = el("textarea", { id, name: spec.name, rows: 2, "aria-describedby": describedBy,
        required: spec.required });
      input.value = spec.default ?? "";
    } else {
      input = el("input", { id, name: spec.name, type: "text", "aria-describedby": describedBy });
      input.value = spec.default ?? "";
    }
    input.addEventListener("input", () => this.onChange(spec.name));
    input.addEventListener("change", () => this.onChange(spec.name));
    this.controls.set(spec.name, input);
    row.append(label, input, help);
    return row;
  }

  spec(name) { return this.specs.find((s) => s.name === name); }
  has(name) { return this.controls.has(name) || this.zones.has(name); }

  // field values that differ from the defaults (required ones always)
  values() {
    const out = {};
    for (const spec of this.specs) {
      if (spec.kind === "image") {
        const file = this.zones.get(spec.name).file;
        if (file) out[spec.name] = file;
        continue;
      }
      const input = this.controls.get(spec.name);
      let value;
      if (spec.kind === "checkbox") value = input.checked;
      else if (spec.kind === "slider" || spec.kind === "number") value = input.value === "" ? null : Number(input.value);
      else value = input.value === "" && spec.nullable ? null : input.value;
      if (value === null || value === undefined) continue;
      if (!spec.required && value === spec.default) continue;
      if (!spec.required && value === "" && (spec.default === "" || spec.default == null)) continue;
      out[spec.name] = value;
    }
    return out;
  }

  set(name, value) {
    const spec = this.spec(name);
    if (!spec) return;
    if (spec.kind === "image") return;
    const input = this.controls.get(name);
    if (spec.kind === "checkbox") input.checked = !!value;
    else input.value = value == null ? "" : String(value);
    input.dispatchEvent(new Event("input"));
  }

  setImage(name, file) { this.zones.get(name)?.setFile(file); }
  image(name) { return this.zones.get(name)?.file || null; }
  get imageNames() { return this.specs.filter((s) => s.kind === "image").map((s) => s.name); }
}
