// The holder's wallet on a phone: redeem claim codes, list what it holds, share chosen claims
// as a QR code for the chosen time, withdraw a share, show an identity card and answer a
// relying party's challenge with it. The key never leaves this browser: the node sees only
// its public JWK, and presentations signed with it.

import { claimTree, keyBound, newNonce, select, split, jwtPayload } from "./sdjwt.js";
import * as store from "./store.js";

const page = document.getElementById("wallet");
const API = page.dataset.api;
const DATA = JSON.parse(page.dataset.labels);
const $ = (id) => document.getElementById(id);
const VIEWS = ["home", "redeem", "credential", "share", "card"];

// ---------------------------------------------------------------- text and time

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

const pair = ([zh, en]) => (zh === en ? en : `${zh} ${en}`);

/** A moment as people here read it: Beijing time, the zone said (whatever the phone's zone). */
export function beijing(moment) {
  const when = moment instanceof Date ? moment : new Date(moment);
  if (Number.isNaN(when.getTime())) return String(moment);
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-GB", {
    timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  }).formatToParts(when).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second} 北京时间 (UTC+8)`;
}

function say(text, kind = "error") {
  const box = $("message");
  box.textContent = text;
  box.className = kind;
  box.hidden = !text;
}

class Refused extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

function explain(error) {
  if (error instanceof Refused) {
    const known = DATA.errors[error.code];
    return known ? `${known[0]} ${known[1]}` : `${error.code}: ${error.message}`;
  }
  if (error instanceof TypeError) return pair(DATA.errors.network);
  return String(error && error.message ? error.message : error);
}

async function call(method, path, body, headers = {}) {
  const answer = await fetch(API + path, {
    method, cache: "no-store", credentials: "omit",
    headers: { Accept: "application/json", ...(body ? { "Content-Type": "application/json" } : {}), ...headers },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (answer.status === 204) return null;
  let doc = null;
  try {
    doc = await answer.json();
  } catch (ignored) {
    doc = null;
  }
  if (!answer.ok) throw new Refused(doc && doc.code ? doc.code : `http_${answer.status}`, doc ? doc.message : "");
  return doc;
}

function show(view) {
  for (const name of VIEWS) $(name).hidden = name !== view;
  say("");
  window.scrollTo(0, 0);
}

// ---------------------------------------------------------------- claims as people read them

const labelOf = (key) => DATA.claims[key] || DATA.claims[key.split(".").pop()] || [key, key];

function valueText(value, context) {
  if (Array.isArray(value)) return value.map((v) => valueText(v, context)).join(" | ");
  if (value && typeof value === "object") {
    return Object.entries(value).sort(([a], [b]) => rank(context, a) - rank(context, b))
      .map(([key, inner]) => {
        const inside = context ? `${context}.${key}` : key;
        return `${pair(labelOf(inside))}: ${valueText(inner, inside)}`;
      })
      .join(" · ");
  }
  const coded = DATA.values[context] && DATA.values[context][value];
  return coded ? pair(coded) : String(value);
}

// Fields in the order people read them: the item's name first, then as the labels list them.
const ORDER = () => Object.keys(DATA.claims);
function rank(context, key) {
  if (key === "name") return -1;
  const at = ORDER().indexOf(context ? `${context}.${key}` : key);
  return at === -1 ? ORDER().length : at;
}

/** The claims a holder can choose: each top-level claim, and each line of a list (a course). */
function choices(tree) {
  const out = [];
  for (const d of tree.disclosures) {
    if (d.path.length < 2 || d.path[0] !== "credentialSubject") continue;
    const [, key] = d.path;
    const lines = tree.disclosures.filter((o) => o.parent === d.index && typeof o.path[2] === "number");
    if (d.path.length === 2 && !(Array.isArray(d.value) && lines.length)) {
      out.push({ path: d.path.join("."), label: pair(labelOf(key)), value: valueText(d.value, key) });
    } else if (d.path.length === 3 && typeof d.path[2] === "number") {
      out.push({ path: d.path.join("."), label: pair(labelOf(key)), value: valueText(d.value, key) });
    }
  }
  const top = (choice) => rank("", choice.path.split(".")[1]) * 10000 + Number(choice.path.split(".")[2] || 0);
  return out.sort((a, b) => top(a) - top(b));
}

const typeLabel = (type) => (DATA.types[type] ? pair(DATA.types[type]) : type);

// ---------------------------------------------------------------- the list

let key = null;
const photoUrls = new Map();

function photoUrl(record) {
  if (!photoUrls.has(record.id)) photoUrls.set(record.id, URL.createObjectURL(record.photo));
  return photoUrls.get(record.id);
}

async function renderHome() {
  const list = $("credentials");
  const records = (await store.all("credentials")).sort((a, b) => a.received_at.localeCompare(b.received_at));
  const shares = await store.all("shares");
  list.replaceChildren(...records.map((record) => {
    const live = shares.filter((s) => s.credential_id === record.id && new Date(s.expires_at) > new Date());
    const item = el("li", { class: `item ${record.kind}`, "data-id": record.id },
      record.kind === "card" ? el("img", { class: "thumb", src: photoUrl(record), alt: "照片 Photo" }) : null,
      el("div", {},
        el("b", {}, record.kind === "card" ? `${record.claims.name || ""} · ${pair(DATA.card_kinds[record.card_kind] || [record.card_kind, record.card_kind])}`
          : typeLabel(record.type)),
        el("br"), el("small", {}, record.issuer_name),
        el("br"), el("small", {}, `领取 Received ${beijing(record.received_at)}`),
        live.length ? el("small", { class: "shares-count" }, ` · ${live.length} 个分享 shares`) : null));
    item.addEventListener("click", () => (record.kind === "card" ? openCard(record.id) : openCredential(record.id)));
    item.tabIndex = 0;
    return item;
  }));
  $("empty").hidden = records.length > 0;
}

// ---------------------------------------------------------------- redeeming

async function redeem(event) {
  event.preventDefault();
  const code = $("code").value.trim();
  const kind = new FormData($("redeem-form")).get("kind");
  if (!code) return say(pair(DATA.errors.no_code));
  const button = $("redeem-button");
  button.disabled = true;
  say("正在领取… Redeeming…", "info");
  try {
    const body = { code, holder_jwk: key.jwk };
    if (kind === "card") {
      const card = await call("POST", "/v1/identity/claims/redeem", body);
      await keepCard(card);
      await renderHome();
      await openCard(card.card_id);
    } else {
      const credential = await call("POST", "/v1/claims/redeem", body);
      await keepCredential(credential);
      await renderHome();
      await openCredential(credential.credential_id);
    }
    $("code").value = "";
    say("已领取 Redeemed.", "ok");
  } catch (error) {
    say(explain(error));
  } finally {
    button.disabled = false;
  }
}

function boundHere(compact) {
  const cnf = jwtPayload(split(compact).jwt).cnf;
  if (!cnf || !cnf.jwk || cnf.jwk.x !== key.jwk.x) throw new Refused("not_bound_to_wallet", "");
}

async function keepCredential(answer) {
  boundHere(answer.sd_jwt);
  await claimTree(answer.sd_jwt); // refuses what is not a well-formed SD-JWT
  await store.put("credentials", {
    id: answer.credential_id, kind: "credential", type: answer.type, compact: answer.sd_jwt,
    anchor: answer.anchor, issuer: answer.issuer, issuer_name: answer.issuer.name,
    received_at: new Date().toISOString(),
  });
}

async function keepCard(answer) {
  boundHere(answer.sd_jwt);
  const tree = await claimTree(answer.sd_jwt);
  const bytes = Uint8Array.from(atob(answer.photo_base64), (c) => c.charCodeAt(0));
  photoUrls.delete(answer.card_id);
  await store.put("credentials", {
    id: answer.card_id, kind: "card", card_kind: answer.kind, compact: answer.sd_jwt,
    issuer: answer.issuer, issuer_name: answer.issuer.name || tree.claims.holder?.school || "",
    claims: tree.claims.holder || {}, photo: new Blob([bytes], { type: answer.photo_type }),
    received_at: new Date().toISOString(),
  });
}

// ---------------------------------------------------------------- a credential and its shares

let current = null;

async function openCredential(id) {
  const record = await store.get("credentials", id);
  current = record;
  const tree = await claimTree(record.compact);
  $("credential-title").textContent = typeLabel(record.type);
  const facts = [["颁发机构 Issuer", record.issuer_name], ["领取时间 Received", beijing(record.received_at)]];
  const until = tree.claims.validUntil;
  if (until) facts.push(["有效期至 Valid until", beijing(until)]);
  $("credential-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  $("claims").replaceChildren(...choices(tree).map((choice) => el("label", { class: "claim" },
    el("input", { type: "checkbox", name: "claim", value: choice.path }),
    el("span", {}, el("b", {}, choice.label), el("br"), choice.value))));
  await renderShares();
  show("credential");
}

async function renderShares() {
  const shares = (await store.all("shares")).filter((s) => s.credential_id === current.id)
    .sort((a, b) => b.created_at.localeCompare(a.created_at));
  $("shares").replaceChildren(...shares.map((share) => {
    const expired = new Date(share.expires_at) <= new Date();
    const item = el("li", { class: expired ? "item expired" : "item", "data-share": share.share_id },
      el("b", {}, share.claims.join("；")), el("br"),
      el("small", {}, `${expired ? "已过期 Expired" : "有效期至 Valid until"} ${beijing(share.expires_at)}`));
    item.addEventListener("click", () => openShare(share.share_id));
    item.tabIndex = 0;
    return item;
  }));
  $("no-shares").hidden = shares.length > 0;
}

async function share(event) {
  event.preventDefault();
  const boxes = [...document.querySelectorAll("#claims input:checked")];
  if (!boxes.length) return say(pair(DATA.errors.no_claims));
  const chosen = boxes.map((b) => b.value);
  const labels = boxes.map((b) => b.parentElement.querySelector("b").textContent + ": " +
    b.parentElement.querySelector("span").lastChild.textContent);
  const days = Number($("days").value);
  const button = $("share-button");
  button.disabled = true;
  say("正在生成… Making the share…", "info");
  try {
    const presentation = await keyBound(await select(current.compact, chosen), key.privateKey, API, newNonce());
    const made = await call("POST", "/v1/shares", { presentation, expires_in_days: days });
    // The QR image is kept with the share, so that it shows with no network too.
    const qr = await fetch(made.qr_png_url.startsWith(API) ? made.qr_png_url : `${API}/s/${made.share_id}/qr.png`,
      { cache: "no-store", credentials: "omit" });
    if (!qr.ok) throw new Refused(`http_${qr.status}`, "QR code");
    await store.put("shares", {
      share_id: made.share_id, credential_id: current.id, url: made.url, expires_at: made.expires_at,
      withdraw_token: made.withdraw_token, claims: labels, paths: chosen, days,
      created_at: new Date().toISOString(), qr: await qr.blob(),
    });
    await openShare(made.share_id);
  } catch (error) {
    say(explain(error));
  } finally {
    button.disabled = false;
  }
}

let qrUrl = null;

async function openShare(id) {
  const record = await store.get("shares", id);
  if (qrUrl) URL.revokeObjectURL(qrUrl);
  qrUrl = URL.createObjectURL(record.qr);
  $("qr").src = qrUrl;
  $("share").dataset.share = id;
  $("share-claims").replaceChildren(...record.claims.map((c) => el("li", {}, c)));
  const expired = new Date(record.expires_at) <= new Date();
  $("share-expires").textContent = `${expired ? "已过期 Expired " : ""}${beijing(record.expires_at)}`;
  $("share-url").textContent = record.url;
  $("share-url").href = record.url;
  $("withdraw-confirm").hidden = true;
  show("share");
}

async function withdraw() {
  const id = $("share").dataset.share;
  const record = await store.get("shares", id);
  $("withdraw-confirm").hidden = true;
  try {
    await call("DELETE", `/v1/shares/${encodeURIComponent(id)}`, null, { "X-Withdraw-Token": record.withdraw_token });
  } catch (error) {
    if (!(error instanceof Refused && error.code === "share_not_found")) return say(explain(error));
  }
  await store.remove("shares", id);
  await renderHome();
  await openCredential(record.credential_id);
  say("已撤回分享 The share is withdrawn.", "ok");
}

// ---------------------------------------------------------------- identity cards

let challenge = null;

async function openCard(id) {
  const record = await store.get("credentials", id);
  current = record;
  challenge = null;
  $("card-photo").src = photoUrl(record);
  $("card-name").textContent = record.claims.name || "";
  $("card-school").textContent = record.claims.school || record.issuer_name;
  $("card-kind").textContent = pair(DATA.card_kinds[record.card_kind] || [record.card_kind, record.card_kind]);
  const facts = Object.entries(record.claims)
    .filter(([k]) => !["name", "school", "portrait"].includes(k))
    .map(([k, v]) => [pair(DATA.card_claims[k] || [k, k]), /(Until|Date)$/.test(k) ? String(v) : valueText(v, k)]);
  facts.push(["卡号 Card", `${record.id.slice(0, 10)}…`]);
  $("card-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  $("challenge").hidden = true;
  $("answered").hidden = true;
  show("card");
}

function challengeId(text) {
  const given = text.trim();
  let url = null;
  try {
    url = new URL(given);
  } catch (ignored) {
    url = null;
  }
  if (url) {
    const found = url.pathname.match(/^\/v1\/identity\/challenges\/([A-Za-z0-9_-]{1,64})$/);
    if (!found) throw new Refused("bad_challenge", "");
    if (url.origin !== new URL(API).origin) throw new Refused("other_node", "");
    return found[1];
  }
  if (/^[A-Za-z0-9_-]{8,64}$/.test(given)) return given;
  throw new Refused("bad_challenge", "");
}

async function readChallenge(event) {
  event.preventDefault();
  try {
    const id = challengeId($("challenge-input").value);
    challenge = await call("GET", `/v1/identity/challenges/${id}`);
    if (challenge.answered) throw new Refused("challenge_used", "");
    $("challenge-audience").textContent = challenge.audience;
    const shown = challenge.claims.map((c) => pair(DATA.card_claims[c] || [c, c]));
    if ("portrait" in current.claims) shown.push(`${pair(DATA.card_claims.portrait)}（不是照片本身 not the photo itself）`);
    $("challenge-claims").replaceChildren(...shown.map((text) => el("li", {}, text)));
    $("challenge-expires").textContent = beijing(challenge.expires_at);
    $("challenge").hidden = false;
    $("answered").hidden = true;
    say("");
  } catch (error) {
    $("challenge").hidden = true;
    say(explain(error));
  }
}

async function answer() {
  const button = $("answer");
  button.disabled = true;
  try {
    // The claims asked for and the portrait's opening, so the desk can compare the photo.
    const held = new Set(Object.keys(current.claims));
    const paths = [...challenge.claims, "portrait"].filter((c) => held.has(c)).map((c) => `holder.${c}`);
    const presentation = await keyBound(await select(current.compact, paths), key.privateKey,
      challenge.audience, challenge.nonce);
    await call("POST", `/v1/identity/challenges/${challenge.challenge_id}/answer`, { presentation });
    $("challenge").hidden = true;
    $("answered").textContent = `已向 ${challenge.audience} 出示身份卡。 Your card was presented to ${challenge.audience}.`;
    $("answered").hidden = false;
    $("challenge-input").value = "";
  } catch (error) {
    say(explain(error));
  } finally {
    button.disabled = false;
  }
}

// A challenge's QR code, read by the camera where the browser can decode QR codes.
async function scan() {
  const video = $("scanner");
  let stream = null;
  try {
    const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    for (let tries = 0; tries < 200; tries += 1) {
      const [found] = await detector.detect(video);
      if (found) {
        $("challenge-input").value = found.rawValue;
        $("challenge-form").requestSubmit();
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  } catch (error) {
    say(explain(error));
  } finally {
    if (stream) stream.getTracks().forEach((t) => t.stop());
    video.hidden = true;
  }
}

// ---------------------------------------------------------------- start

function network() {
  const online = navigator.onLine;
  $("network").textContent = online ? "" : "离线 Offline";
  $("network").hidden = online;
}

async function start() {
  if (!window.crypto || !crypto.subtle || !window.indexedDB) {
    return say(pair(DATA.errors.unsupported));
  }
  try {
    key = await store.holderKey();
  } catch (error) {
    return say(`${pair(DATA.errors.unsupported)} (${error.name || error})`);
  }
  page.dataset.key = key.jwk.x;
  $("show-redeem").addEventListener("click", () => show("redeem"));
  for (const back of document.querySelectorAll("[data-back]")) {
    back.addEventListener("click", async () => {
      const to = back.dataset.back;
      if (to === "credential" && current) return openCredential(current.id);
      await renderHome();
      show("home");
    });
  }
  $("redeem-form").addEventListener("submit", redeem);
  $("share-form").addEventListener("submit", share);
  // Withdrawing asks once more on the page: the QR code and link stop working at once.
  $("withdraw").addEventListener("click", () => { $("withdraw-confirm").hidden = false; });
  $("withdraw-cancel").addEventListener("click", () => { $("withdraw-confirm").hidden = true; });
  $("withdraw-yes").addEventListener("click", withdraw);
  $("challenge-form").addEventListener("submit", readChallenge);
  $("answer").addEventListener("click", answer);
  if ("BarcodeDetector" in window && navigator.mediaDevices) {
    $("scan").hidden = false;
    $("scan").addEventListener("click", scan);
  }
  window.addEventListener("online", network);
  window.addEventListener("offline", network);
  network();
  const code = new URLSearchParams(window.location.hash.slice(1)).get("code");
  await renderHome();
  if (code) {
    $("code").value = code;
    show("redeem");
  } else {
    show("home");
  }
  page.dataset.ready = "true";
  // Ask the browser not to evict what the wallet holds when space runs short.
  if (navigator.storage && navigator.storage.persist) navigator.storage.persist().catch(() => {});
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/wallet/sw.js", { scope: "/wallet" }).catch(() => {
      // no offline copy then; the wallet works online all the same
    });
  }
}

start();
