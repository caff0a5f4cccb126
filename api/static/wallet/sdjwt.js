// SD-JWT for the holder (RFC 9901, compact serialization), in the browser: split a
// credential, decode and place its Disclosures, keep the chosen ones, and append a
// key-binding JWT signed with the holder's WebCrypto Ed25519 key. Verifying issuers'
// signatures is the verifier's work (the node checks every share), not the wallet's.

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

export function b64url(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function b64urlBytes(text) {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new Error("not base64url");
  const plain = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
  return Uint8Array.from(plain, (c) => c.charCodeAt(0));
}

const b64urlJson = (text) => JSON.parse(fromUtf8.decode(b64urlBytes(text)));
const jsonB64url = (value) => b64url(utf8.encode(JSON.stringify(value)));

async function sha256b64url(text) {
  return b64url(new Uint8Array(await crypto.subtle.digest("SHA-256", utf8.encode(text))));
}

/** The parts of a compact SD-JWT: issuer-signed JWT, Disclosures, key-binding JWT (or ""). */
export function split(compact) {
  const parts = String(compact).split("~");
  if (parts.length < 2 || !/^[\w-]+\.[\w-]+\.[\w-]+$/.test(parts[0])) throw new Error("not an SD-JWT");
  return { jwt: parts[0], disclosures: parts.slice(1, -1), kb: parts[parts.length - 1] };
}

export function jwtPayload(jwt) {
  return b64urlJson(jwt.split(".")[1]);
}

/**
 * Every Disclosure of a credential with its claim path (as the command-line wallet names it:
 * ["credentialSubject", "courses", 3]), its value with the children put back, and the
 * Disclosure it is nested in; parents come before their children.
 */
export async function claimTree(compact) {
  const { jwt, disclosures } = split(compact);
  const payload = jwtPayload(jwt);
  const byDigest = new Map();
  for (const [index, encoded] of disclosures.entries()) {
    const decoded = b64urlJson(encoded);
    if (!Array.isArray(decoded) || (decoded.length !== 2 && decoded.length !== 3)) {
      throw new Error("not a Disclosure");
    }
    byDigest.set(await sha256b64url(encoded), {
      index, encoded, name: decoded.length === 3 ? decoded[1] : null,
      raw: decoded[decoded.length - 1], path: null, parent: -1, value: undefined,
    });
  }
  const order = [];
  // Walks a (blinded) value: returns it with every referenced Disclosure put back.
  const reveal = (value, path, parent) => {
    if (Array.isArray(value)) {
      const out = [];
      value.forEach((item, position) => {
        const digest = item && typeof item === "object" && !Array.isArray(item) &&
          Object.keys(item).length === 1 ? item["..."] : undefined;
        if (typeof digest === "string") {
          const found = place(byDigest.get(digest), [...path, position], parent);
          if (found !== undefined) out.push(found);
        } else {
          out.push(reveal(item, [...path, position], parent));
        }
      });
      return out;
    }
    if (value && typeof value === "object") {
      const out = {};
      for (const [key, inner] of Object.entries(value)) {
        if (key !== "_sd" && key !== "_sd_alg") out[key] = reveal(inner, [...path, key], parent);
      }
      for (const digest of Array.isArray(value._sd) ? value._sd : []) {
        const d = byDigest.get(digest);
        if (d && d.name !== null) {
          const found = place(d, [...path, d.name], parent);
          if (found !== undefined) out[d.name] = found;
        }
      }
      return out;
    }
    return value;
  };
  const place = (d, path, parent) => {
    if (!d || d.path !== null) return undefined; // a decoy, or referenced twice
    d.path = path;
    d.parent = parent;
    order.push(d);
    d.value = reveal(d.raw, path, d.index);
    return d.value;
  };
  const claims = reveal(payload, [], -1);
  return { payload, claims, disclosures: order };
}

/** Whether a claim path is kept by the chosen paths (a path leads to it, or lies inside it). */
function kept(path, chosen) {
  const have = path.map(String);
  return chosen.some((want) => {
    const parts = want.split(".");
    const n = Math.min(parts.length, have.length);
    return parts.slice(0, n).every((part, i) => part === have[i]);
  });
}

/** The credential with only the Disclosures the chosen dotted paths need, in their order. */
export async function select(compact, chosen) {
  const { jwt, disclosures } = split(compact);
  const tree = await claimTree(compact);
  const keep = new Set();
  for (const d of tree.disclosures) {
    if (!kept(d.path, chosen)) continue;
    for (let at = d; at; at = tree.disclosures.find((o) => o.index === at.parent)) keep.add(at.index);
  }
  return [jwt, ...disclosures.filter((_, i) => keep.has(i)), ""].join("~");
}

/** A key-binding JWT for `audience` and `nonce` after the presentation (which ends in "~"). */
export async function keyBound(presentation, privateKey, audience, nonce) {
  const header = jsonB64url({ alg: "EdDSA", typ: "kb+jwt" });
  const payload = jsonB64url({
    iat: Math.floor(Date.now() / 1000), aud: audience, nonce,
    sd_hash: await sha256b64url(presentation),
  });
  const input = `${header}.${payload}`;
  const signature = await crypto.subtle.sign({ name: "Ed25519" }, privateKey, utf8.encode(input));
  return `${presentation}${input}.${b64url(new Uint8Array(signature))}`;
}

/** A random nonce: 128 bits, base64url. */
export function newNonce() {
  return b64url(crypto.getRandomValues(new Uint8Array(16)));
}
