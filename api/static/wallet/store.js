// What the wallet keeps, in this browser's IndexedDB: the holder's key pair (the private
// key a non-extractable CryptoKey, which no script can read out, this one included), the
// credentials and identity cards, and the shares made with their withdraw tokens and QR codes.

const DB = "eduledger-wallet";
const STORES = { keys: "name", credentials: "id", shares: "share_id" };

let opened = null;

function open() {
  if (!opened) {
    opened = new Promise((resolve, reject) => {
      const request = indexedDB.open(DB, 1);
      request.onupgradeneeded = () => {
        for (const [name, keyPath] of Object.entries(STORES)) {
          if (!request.result.objectStoreNames.contains(name)) request.result.createObjectStore(name, { keyPath });
        }
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }
  return opened;
}

async function run(store, mode, work) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(store, mode);
    const request = work(tx.objectStore(store));
    tx.oncomplete = () => resolve(request ? request.result : undefined);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

export const get = (store, key) => run(store, "readonly", (s) => s.get(key));
export const all = (store) => run(store, "readonly", (s) => s.getAll());
export const put = (store, value) => run(store, "readwrite", (s) => s.put(value));
export const remove = (store, key) => run(store, "readwrite", (s) => s.delete(key));
const add = (store, value) => run(store, "readwrite", (s) => s.add(value));

/**
 * The holder's key: made once, on first use, as a non-extractable Ed25519 key pair. Two tabs
 * opening the wallet at once both make one; the first stored wins and both use it.
 */
export async function holderKey() {
  const have = await get("keys", "holder");
  if (have) return have;
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
  const exported = await crypto.subtle.exportKey("jwk", pair.publicKey); // a public key exports
  const record = {
    name: "holder", privateKey: pair.privateKey, publicKey: pair.publicKey,
    jwk: { kty: "OKP", crv: "Ed25519", x: exported.x }, created_at: new Date().toISOString(),
  };
  try {
    await add("keys", record);
    return record;
  } catch (error) {
    if (error && error.name === "ConstraintError") return get("keys", "holder");
    throw error;
  }
}
