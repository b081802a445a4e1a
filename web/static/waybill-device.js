/* Waybill device key and DSSE signing in the browser (SPEC §1–2).
 *
 * The key pair is Ed25519 from WebCrypto, generated non-extractable: the private key can sign but no script
 * (ours included) can read it out. The CryptoKeyPair is kept in IndexedDB under a slot per user, so two
 * people sharing a browser profile keep separate keys. The server never sees a private key.
 *
 * Statement bytes are JSON with keys sorted and compact separators, the same bytes
 * tracker.statements.statement_bytes produces, so the server could recompute them; it stores the bytes as
 * signed either way.
 */
(function () {
  "use strict";
  var W = (window.Waybill = window.Waybill || {});
  var DB_NAME = "waybill-device";
  var STORE = "keys";
  var PAYLOAD_TYPE = "application/vnd.waybill.event+json";

  function openDb() {
    return new Promise(function (resolve, reject) {
      var req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = function () { req.result.createObjectStore(STORE); };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
  }

  function idb(mode, action) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, mode);
        var req = action(tx.objectStore(STORE));
        tx.oncomplete = function () { db.close(); resolve(req ? req.result : undefined); };
        tx.onerror = function () { db.close(); reject(tx.error); };
        tx.onabort = function () { db.close(); reject(tx.error); };
      });
    });
  }

  function bytesToB64(bytes) {
    var out = "";
    for (var i = 0; i < bytes.length; i += 0x8000) {
      out += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(out);
  }

  function b64ToBytes(text) {
    var raw = atob(text);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out;
  }

  function hex(bytes) {
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function concat(parts) {
    var total = parts.reduce(function (n, p) { return n + p.length; }, 0);
    var out = new Uint8Array(total);
    var pos = 0;
    parts.forEach(function (p) { out.set(p, pos); pos += p.length; });
    return out;
  }

  /* JSON with sorted keys and no whitespace: json.dumps(doc, sort_keys=True, separators=(",", ":"),
   * ensure_ascii=False). JSON.stringify escapes strings exactly as Python does for well-formed text. */
  function canonicalJson(value) {
    if (value === null) { return "null"; }
    if (Array.isArray(value)) { return "[" + value.map(canonicalJson).join(",") + "]"; }
    if (typeof value === "object") {
      return "{" + Object.keys(value).sort().filter(function (k) { return value[k] !== undefined; })
        .map(function (k) { return JSON.stringify(k) + ":" + canonicalJson(value[k]); }).join(",") + "}";
    }
    if (typeof value === "number" && !Number.isInteger(value)) {
      throw new Error("statements carry no fractional numbers");
    }
    return JSON.stringify(value);
  }

  function statementBytes(doc) { return new TextEncoder().encode(canonicalJson(doc)); }

  /* DSSE pre-authentication encoding: "DSSEv1" SP len(type) SP type SP len(payload) SP payload. */
  function pae(payloadType, payload) {
    var enc = new TextEncoder();
    var type = enc.encode(payloadType);
    return concat([enc.encode("DSSEv1 " + type.length + " "), type, enc.encode(" " + payload.length + " "), payload]);
  }

  function keyidOf(rawPublicKey) {
    return crypto.subtle.digest("SHA-256", rawPublicKey).then(function (h) {
      return hex(new Uint8Array(h).slice(0, 8));
    });
  }

  function slotName() {
    var user = document.body.getAttribute("data-username") || "anonymous";
    return "user:" + user;
  }

  function describe(record) {
    return { keyPair: record.keyPair, publicKey: record.publicKey, keyid: record.keyid, createdAt: record.createdAt };
  }

  var device = {
    supported: function () {
      return !!(window.crypto && crypto.subtle && window.indexedDB);
    },
    load: function (slot) {
      slot = slot || slotName();
      return idb("readonly", function (s) { return s.get(slot); }).then(function (r) { return r ? describe(r) : null; });
    },
    create: function (slot) {
      slot = slot || slotName();
      var keyPair;
      return crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]).then(function (kp) {
        keyPair = kp;
        return crypto.subtle.exportKey("raw", kp.publicKey);  // a public key is always exportable
      }).then(function (raw) {
        var rawBytes = new Uint8Array(raw);
        return keyidOf(rawBytes).then(function (keyid) {
          var record = { keyPair: keyPair, publicKey: bytesToB64(rawBytes), keyid: keyid,
                         createdAt: new Date().toISOString() };
          return idb("readwrite", function (s) { return s.put(record, slot); }).then(function () { return describe(record); });
        });
      });
    },
    remove: function (slot) {
      slot = slot || slotName();
      return idb("readwrite", function (s) { return s.delete(slot); });
    }
  };

  /* Sign raw payload bytes into a DSSE envelope (JSON form, SPEC §2). */
  function signPayload(payload, dev) {
    return crypto.subtle.sign({ name: "Ed25519" }, dev.keyPair.privateKey, pae(PAYLOAD_TYPE, payload)).then(function (sig) {
      return { payloadType: PAYLOAD_TYPE, payload: bytesToB64(payload),
               signatures: [{ keyid: dev.keyid, sig: bytesToB64(new Uint8Array(sig)) }] };
    });
  }

  function signStatement(doc, dev) { return signPayload(statementBytes(doc), dev); }

  /* RFC 3339 UTC with Z and whole seconds, as statements carry it. */
  function nowRfc3339(date) {
    return (date || new Date()).toISOString().replace(/\.\d+Z$/, "Z");
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function request(method, url, body) {
    var init = { method: method, credentials: "same-origin",
                 headers: { "Accept": "application/json", "X-CSRFToken": csrfToken() } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(function (response) {
      return response.text().then(function (text) {
        var doc = null;
        try { doc = text ? JSON.parse(text) : null; } catch (e) { doc = null; }
        if (!response.ok) {
          var err = new Error((doc && doc.error && doc.error.message) || ("HTTP " + response.status));
          err.status = response.status;
          err.code = doc && doc.error && doc.error.code;
          throw err;
        }
        return doc;
      });
    });
  }

  /* This browser's key, if it is one of the approved key ids in `approved` (a space-separated list). */
  function approvedDevice(approved) {
    var ids = (approved || "").split(/\s+/).filter(Boolean);
    return device.load().then(function (dev) {
      if (!dev) { return { device: null, approved: false }; }
      return { device: dev, approved: ids.indexOf(dev.keyid) >= 0 };
    });
  }

  /* Show why this browser cannot sign yet, in the page's #device-warning element. */
  function warnUnlessApproved(approved, accountUrl) {
    var box = document.getElementById("device-warning");
    return approvedDevice(approved).then(function (state) {
      if (!box) { return state; }
      var msg = null;
      if (!device.supported()) {
        msg = "This browser cannot keep a signing key (no WebCrypto or IndexedDB). Use a current Chrome, Edge, Safari or Firefox.";
      } else if (!state.device) {
        msg = "This browser has no signing key yet. Open “Device” to create one and ask an administrator to approve it.";
      } else if (!state.approved) {
        msg = "This browser's key " + state.device.keyid + " is not approved yet. Ask an administrator to approve it, then reload.";
      }
      box.hidden = !msg;
      box.textContent = msg || "";
      if (msg && accountUrl) {
        var link = document.createElement("a");
        link.href = accountUrl;
        link.textContent = " Open the device page.";
        box.appendChild(link);
      }
      return state;
    });
  }

  W.device = device;
  W.PAYLOAD_TYPE = PAYLOAD_TYPE;
  W.canonicalJson = canonicalJson;
  W.statementBytes = statementBytes;
  W.pae = pae;
  W.keyidOf = keyidOf;
  W.bytesToB64 = bytesToB64;
  W.b64ToBytes = b64ToBytes;
  W.signPayload = signPayload;
  W.signStatement = signStatement;
  W.nowRfc3339 = nowRfc3339;
  W.getJson = function (url) { return request("GET", url); };
  W.postJson = function (url, body) { return request("POST", url, body); };
  W.approvedDevice = approvedDevice;
  W.warnUnlessApproved = warnUnlessApproved;
})();
