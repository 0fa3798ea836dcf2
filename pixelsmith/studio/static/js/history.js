// Single runs, kept in the browser's IndexedDB so they survive reloads: the
// tool, the form values (images as Blobs), the result and its seed/timing.
// Batch jobs are listed from the server's job store (see batch.js).

const DB = "pixelsmith-studio";
const STORE = "runs";
const KEEP = 60;

function open() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "id" });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function tx(mode, fn) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const t = db.transaction(STORE, mode);
    const out = fn(t.objectStore(STORE));
    t.oncomplete = () => resolve(out?.result ?? out);
    t.onerror = () => reject(t.error);
  });
}

export async function addRun(run) {
  const entry = { id: `${Date.now()}-${Math.random().toString(16).slice(2, 8)}`, at: Date.now(), ...run };
  await tx("readwrite", (s) => s.put(entry));
  const all = await listRuns();
  for (const old of all.slice(KEEP)) await tx("readwrite", (s) => s.delete(old.id));
  return entry;
}

export async function listRuns() {
  const all = await tx("readonly", (s) => s.getAll());
  return (all || []).sort((a, b) => b.at - a.at);
}

export async function getRun(id) { return tx("readonly", (s) => s.get(id)); }
export async function deleteRun(id) { return tx("readwrite", (s) => s.delete(id)); }
