// On-device check of an item's proof bundle (docs/proof-bundle.md): the phone verifies the checkpoint's log
// signature and witness cosignatures (C2SP signed-note, tlog-cosignature, tlog-policy), each entry's
// inclusion (C2SP tlog-proof, RFC 6962), each statement's signature under a key its party held, and the
// order of the steps, then says what it found. No server answer is trusted here.
import * as ed from "./vendor/noble/ed25519/index.js";
import { sha256, sha512 } from "./vendor/noble/hashes/sha2.js";

ed.hashes.sha512 = sha512;

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

class Fail extends Error {}
const need = (ok, why) => { if (!ok) throw new Fail(why); };

function b64(text, what) {
  need(typeof text === "string" && /^[A-Za-z0-9+/]*={0,2}$/.test(text) && text.length % 4 === 0, `${what}: not base64`);
  const bin = atob(text);
  const out = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  need(btoa(bin) === text, `${what}: not canonical base64`);
  return out;
}
const cat = (...parts) => { const n = parts.reduce((a, p) => a + p.length, 0); const o = new Uint8Array(n); let i = 0; for (const p of parts) { o.set(p, i); i += p.length; } return o; };
const eq = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const hex = (a) => Array.from(a, (x) => x.toString(16).padStart(2, "0")).join("");
const isName = (n) => n.length > 0 && !/[\s+\u0000-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u.test(n);
const verifySig = (sig, msg, pk) => { try { return ed.verify(sig, msg, pk, { zip215: false }); } catch { return false; } };

// --- signed notes and keys (c2sp.org/signed-note) ---
function parseNote(note) {
  need(!/[\u0000-\u0009\u000b-\u001f]/.test(note), "note holds a control character");
  const cut = note.lastIndexOf("\n\n");
  need(cut >= 0, "note has no signatures");
  const text = note.slice(0, cut + 1), block = note.slice(cut + 2);
  need(block.endsWith("\n"), "note signature lines must end in a newline");
  const sigs = block.slice(0, -1).split("\n").map((line) => {
    need(line.startsWith("\u2014 "), "malformed signature line");
    const f = line.slice(2).split(" ");
    need(f.length === 2 && isName(f[0]), "malformed signature line");
    const raw = b64(f[1], "signature");
    need(raw.length >= 5, "signature too short");
    return { name: f[0], id: raw.slice(0, 4), sig: raw.slice(4) };
  });
  return { text, sigs };
}
function keyId(name, type, pk) { return sha256(cat(enc.encode(name + "\n"), Uint8Array.of(type), pk)).slice(0, 4); }
function parseVkey(vkey, type) {
  const a = vkey.indexOf("+"), b = vkey.indexOf("+", a + 1);  // the base64 key may hold '+' itself
  need(a > 0 && b > a, "bad verifier key");
  const p = [vkey.slice(0, a), vkey.slice(a + 1, b), vkey.slice(b + 1)];
  need(isName(p[0]) && /^[0-9a-f]{8}$/.test(p[1]), "bad verifier key");
  const raw = b64(p[2], "verifier key");
  need(raw.length === 33 && raw[0] === type, `verifier key is not of type ${type}`);
  const pk = raw.slice(1);
  need(hex(keyId(p[0], type, pk)) === p[1], "verifier key hash does not match");
  return { name: p[0], id: keyId(p[0], type, pk), pk, type };
}
// Every line by a known key must verify; returns the names of the known keys that signed.
function openNote(note, keys) {
  const { text, sigs } = parseNote(note);
  const signed = new Set();
  for (const s of sigs) {
    for (const k of keys) {
      if (k.name !== s.name || !eq(k.id, s.id)) continue;
      let ok;
      if (k.type === 1) ok = s.sig.length === 64 && verifySig(s.sig, enc.encode(text), k.pk);
      else {
        need(s.sig.length === 72, "cosignature has the wrong length");
        let t = 0n;
        for (const b of s.sig.slice(0, 8)) t = (t << 8n) | BigInt(b);
        ok = verifySig(s.sig.slice(8), enc.encode(`cosignature/v1\ntime ${t}\n${text}`), k.pk);
      }
      need(ok, `the signature by ${k.name} does not verify`);
      signed.add(k);
    }
  }
  return { text, signed };
}
function parseCheckpoint(text) {
  const lines = text.slice(0, -1).split("\n");
  need(lines.length >= 3 && lines.every((l) => l.length > 0), "bad checkpoint");
  need(/^(0|[1-9][0-9]{0,18})$/.test(lines[1]), "bad checkpoint size");
  const root = b64(lines[2], "root");
  need(root.length === 32, "bad root");
  return { origin: lines[0], size: BigInt(lines[1]), root };
}

// --- witness policy (c2sp.org/tlog-policy) ---
function parsePolicy(text) {
  const logs = [], witnesses = new Map(), groups = new Map();
  let quorum = null;
  for (const raw of text.split("\n")) {
    const w = raw.trim().split(/[ \t]+/);
    if (!w[0] || w[0].startsWith("#")) continue;
    if (w[0] === "log") logs.push(parseVkey(w[1], 1));
    else if (w[0] === "witness") { need(!witnesses.has(w[1]) && !groups.has(w[1]), "duplicate policy name"); witnesses.set(w[1], parseVkey(w[2], 4)); }
    else if (w[0] === "group") {
      const members = w.slice(3);
      need(members.length > 0 && members.every((m) => witnesses.has(m) || groups.has(m)), "bad policy group");
      const k = w[2] === "all" ? members.length : w[2] === "any" ? 1 : Number(w[2]);
      need(Number.isInteger(k) && k >= 1 && k <= members.length, "bad group threshold");
      groups.set(w[1], { k, members });
    } else if (w[0] === "quorum") { need(quorum === null, "two quorum lines"); quorum = w[1]; }
    else throw new Fail(`unknown policy line ${w[0]}`);
  }
  need(quorum !== null, "policy has no quorum");
  const meets = (name, got) => name === "none" || (groups.has(name)
    ? groups.get(name).members.filter((m) => meets(m, got)).length >= groups.get(name).k : got.has(name));
  return { logs, witnesses, quorum, meets };
}

// --- Merkle inclusion (RFC 6962 / 9162) ---
const leafHash = (d) => sha256(cat(Uint8Array.of(0), d));
const nodeHash = (l, r) => sha256(cat(Uint8Array.of(1), l, r));
function rootFromInclusion(leaf, index, size, proof) {
  need(index < size, "leaf index outside the tree");
  let fn = index, sn = size - 1n, r = leaf;
  for (const p of proof) {
    need(sn !== 0n, "inclusion proof too long");
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(p, r);
      while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else r = nodeHash(r, p);
    fn >>= 1n; sn >>= 1n;
  }
  need(sn === 0n, "inclusion proof too short");
  return r;
}
function parseTlogProof(text) {
  const cut = text.indexOf("\n\n");
  need(cut > 0, "bad tlog-proof");
  let lines = text.slice(0, cut).split("\n");
  need(lines[0] === "c2sp.org/tlog-proof@v1", "not a c2sp.org/tlog-proof@v1 proof");
  lines = lines.slice(1);
  if (lines[0] && lines[0].startsWith("extra ")) lines = lines.slice(1);
  const m = /^index (0|[1-9][0-9]{0,18})$/.exec(lines[0] || "");
  need(m, "tlog-proof has no index");
  const proof = lines.slice(1).map((l) => b64(l, "proof line"));
  need(proof.every((h) => h.length === 32), "bad proof line");
  return { index: BigInt(m[1]), proof, note: text.slice(cut + 2) };
}

// --- statements (DSSE envelopes, SPEC §1-2) ---
function pae(type, payload) {
  const t = enc.encode(type);
  return cat(enc.encode(`DSSEv1 ${t.length} `), t, enc.encode(` ${payload.length} `), payload);
}
const keyValidAt = (k, when) => (k.not_before || "") <= when && (!k.revoked_at || when < k.revoked_at);

export function checkBundle(bundle) {
  need(bundle && bundle.format === "waybill-proof-bundle/v1", "not a proof bundle");
  const log = parseVkey(bundle.log_vkey, 1);
  const policy = parsePolicy(bundle.policy || `log ${bundle.log_vkey}\nquorum none\n`);
  const known = [log, ...policy.witnesses.values()];
  const { text, signed } = openNote(bundle.checkpoint, known);
  need(signed.has(log), "the checkpoint is not signed by the ledger's key");
  const cp = parseCheckpoint(text);
  need(cp.origin === log.name, "the checkpoint is for another log");
  const witnessed = new Set([...policy.witnesses].filter(([, k]) => signed.has(k)).map(([n]) => n));
  const docs = bundle.entries.map((e) => {
    const data = b64(e.entry, "entry");
    const p = parseTlogProof(e.proof);
    need(p.note === bundle.checkpoint && p.index === BigInt(e.leaf_index), `entry ${e.leaf_index}: proof is not against this checkpoint`);
    need(eq(rootFromInclusion(leafHash(data), p.index, cp.size, p.proof), cp.root), `entry ${e.leaf_index} is not in the signed log`);
    const env = JSON.parse(dec.decode(data));
    const payload = b64(env.payload, "payload");
    return { index: Number(p.index), env, payload, doc: JSON.parse(dec.decode(payload)) };
  }).sort((a, b) => a.index - b.index);
  const keys = new Map(), earlier = new Set(), steps = [];
  let names = new Set();
  for (const { index, env, payload, doc } of docs) {
    if (doc.type === "party" && index === 0) keys.set("admin", doc.party.keys);
    const msg = pae(env.payloadType, payload);
    const ok = (env.signatures || []).some((s) => (keys.get(doc.actor) || []).some((k) => {
      const pk = b64(k.public_key, "public key");
      return hex(sha256(pk).slice(0, 8)) === s.keyid && keyValidAt(k, doc.time) && verifySig(b64(s.sig, "sig"), msg, pk);
    }));
    need(ok, `step ${index} (${doc.type}) is not signed by a key ${doc.actor} held at ${doc.time}`);
    if (doc.type === "party") { keys.set(doc.party.id, doc.party.keys); continue; }
    const id = "sha256:" + hex(sha256(payload));
    const link = doc.prev && doc.prev[bundle.item];
    need(!link || earlier.has(link), `step ${index}: its previous step is not an earlier step of this path`);
    earlier.add(id);
    names.add(doc.actor);
    steps.push({ index, type: doc.type, actor: doc.actor, time: doc.time });
  }
  need(docs.some((d) => (d.doc.items || []).includes(bundle.item)), "no step names this item");
  return { witnessed: witnessed.size, witnesses: policy.witnesses.size, quorum: policy.meets(policy.quorum, witnessed),
    steps, signers: [...names], size: cp.size };
}

function show(box, state, headline, detail) {
  box.dataset.state = state;
  box.querySelector(".device-check-result").textContent = headline;
  box.querySelector(".device-check-detail").textContent = detail;
}

function run() {
  const box = document.getElementById("device-check");
  const source = document.getElementById("proof-bundle");
  if (!box || !source) return;
  let bundle;
  try { bundle = JSON.parse(source.textContent); } catch { show(box, "failed", "Check failed on this device", "The proof could not be read."); return; }
  try {
    const r = checkBundle(bundle);
    const order = r.steps.map((s) => `${s.type} by ${s.actor}`).join(", then ");
    if (r.quorum) show(box, "ok", `Checked on this device against ${r.witnessed} of ${r.witnesses} witnesses`,
      `Every step is in the signed ledger (size ${r.size}) and signed by its party, in order: ${order}.`);
    else show(box, "partial", `Checked on this device, but only ${r.witnessed} of ${r.witnesses} witnesses have confirmed it so far`,
      `The ledger's own signature and every step hold (${order}); the witness policy is not met yet, so this is not fully verified.`);
  } catch (e) {
    show(box, "failed", "Check failed on this device", e instanceof Fail ? e.message : `Unexpected error: ${e}`);
  }
}

if (typeof document !== "undefined") run();
