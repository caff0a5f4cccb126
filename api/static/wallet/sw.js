// The wallet's service worker: keeps the page and its files so that the wallet opens with no
// network and shows what it holds (the credentials and the last QR codes live in IndexedDB).
// The node writes the version in (a hash of the files), so a changed file makes a new cache.

const VERSION = "__VERSION__";
const CACHE = `eduledger-wallet-${VERSION}`;
const FILES = __FILES__;
const NETWORK_WAIT_MS = 4000;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names.filter((n) => n.startsWith("eduledger-wallet-") && n !== CACHE)
      .map((n) => caches.delete(n))))
    .then(() => self.clients.claim()));
});

// The wallet's own files: from the network when it answers soon (so the page is current),
// else from the cache. Everything else (the API) goes to the network untouched.
self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin ||
      !FILES.includes(url.pathname)) return;
  event.respondWith(fresh(event.request, url.pathname));
});

async function fresh(request, path) {
  const cache = await caches.open(CACHE);
  try {
    const answer = await Promise.race([
      fetch(request, { cache: "no-cache" }),
      new Promise((_, reject) => setTimeout(() => reject(new Error("slow network")), NETWORK_WAIT_MS)),
    ]);
    if (answer.ok) {
      await cache.put(path, answer.clone());
      return answer;
    }
  } catch (error) {
    // offline or slow: the kept copy below
  }
  const kept = await cache.match(path);
  return kept || Response.error();
}
