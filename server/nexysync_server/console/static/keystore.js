// Project keys kept in this browser, only when the owner asks: IndexedDB stores the CryptoKey
// objects themselves (structured clone), which stay non-extractable there. Nothing else is kept.

const DB_NAME = "nexysync-console";
const STORE = "project-keys";

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function run(mode, action) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const request = action(db.transaction(STORE, mode).objectStore(STORE));
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  } finally {
    db.close();
  }
}

/** The key ring entries ([{kid, key}]) remembered for a project, or null. */
export async function remembered(projectId) {
  try {
    return (await run("readonly", (store) => store.get(projectId))) || null;
  } catch {
    return null; // no IndexedDB (private mode): nothing remembered
  }
}

export function remember(projectId, entries) {
  return run("readwrite", (store) => store.put(entries, projectId));
}

export async function forget(projectId) {
  try {
    await run("readwrite", (store) => store.delete(projectId));
  } catch {
    // nothing was stored
  }
}
