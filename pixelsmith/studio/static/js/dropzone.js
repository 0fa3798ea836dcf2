// An image drop zone: drag and drop, paste from the clipboard (when focused),
// or the file picker. It keeps the File as given; the server decodes and
// validates it (a file the browser cannot preview is flagged, not dropped,
// so the server's own message is what the person sees on Run).

export class DropZone {
  constructor({ id, label, required = false, describedBy, onFile = () => {} }) {
    this.file = null;
    this.onFile = onFile;
    const zone = document.createElement("div");
    zone.className = "dropzone";
    zone.tabIndex = 0;
    zone.setAttribute("role", "group");
    zone.setAttribute("aria-label", `${label}: drop, paste or choose an image`);
    if (describedBy) zone.setAttribute("aria-describedby", describedBy);
    zone.innerHTML = `
      <img class="dz-thumb" alt="" hidden>
      <div class="dz-text">
        <strong class="dz-label"></strong>
        <span class="dz-info">Drop an image, paste (Ctrl+V) or</span>
        <label class="dz-pick button small">Choose file<input type="file" accept="image/*" class="visually-hidden"></label>
        <button type="button" class="dz-clear small" hidden>Remove</button>
        <span class="dz-error" role="alert"></span>
      </div>`;
    zone.querySelector(".dz-label").textContent = label + (required ? " *" : "");
    const input = zone.querySelector("input");
    input.id = id;
    input.setAttribute("aria-label", `Choose ${label} file`);
    input.addEventListener("change", () => input.files[0] && this.setFile(input.files[0], true));
    zone.querySelector(".dz-clear").addEventListener("click", () => this.setFile(null, true));
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      zone.classList.remove("over");
      const file = [...(e.dataTransfer?.files || [])][0];
      if (file) this.setFile(file, true);
    });
    zone.addEventListener("paste", (e) => {
      const file = [...(e.clipboardData?.files || [])][0];
      if (file) { e.preventDefault(); e.stopPropagation(); this.setFile(file, true); }
    });
    this.element = zone;
    this.input = input;
  }

  async setFile(file, fromUser = false) {
    this.file = file;
    const zone = this.element;
    const thumb = zone.querySelector(".dz-thumb");
    const info = zone.querySelector(".dz-info");
    const error = zone.querySelector(".dz-error");
    if (thumb.src) URL.revokeObjectURL(thumb.src);
    error.textContent = "";
    zone.classList.remove("invalid");
    zone.querySelector(".dz-clear").hidden = !file;
    if (!file) {
      thumb.hidden = true;
      thumb.removeAttribute("src");
      info.textContent = "Drop an image, paste (Ctrl+V) or";
      this.input.value = "";
      if (fromUser) this.onFile(null);
      return;
    }
    const name = file.name || "pasted image";
    info.textContent = `${name} · ${formatBytes(file.size)}`;
    try {
      const bitmap = await createImageBitmap(file);
      info.textContent += ` · ${bitmap.width}×${bitmap.height}`;
      bitmap.close();
      thumb.src = URL.createObjectURL(file);
      thumb.hidden = false;
    } catch {
      thumb.hidden = true;
      zone.classList.add("invalid");
      error.textContent = "This browser cannot read this file as an image; the server will check it on Run.";
    }
    if (fromUser) this.onFile(file);
  }
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
