/* Customs decisions (templates/customs/*.html): one click on Release / Hold / Seize signs an `inspect`
 * statement for that unit with this browser's device key and posts it. The unit's latest event (for `prev`)
 * is fetched fresh at the click, not taken from the page, so a decision never forks the chain. */
(function () {
  "use strict";
  var W = window.Waybill;
  var page = document.getElementById("customs");
  if (!page || !W) { return; }
  var party = page.getAttribute("data-party");
  var location = { name: page.getAttribute("data-party-name"), country: page.getAttribute("data-country") };
  var resolveUrl = page.getAttribute("data-resolve-url");
  var inspectUrl = page.getAttribute("data-inspect-url");
  var LABELS = { released: "released", held: "held", seized: "seized" };

  function rowError(row, message) {
    var box = row.querySelector(".row-error");
    if (!box) { return; }
    box.hidden = !message;
    box.textContent = message || "";
  }

  function toHex(bytes) {
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  /* A private note never enters the signed statement: only "sha256:" + hex(SHA-256(salt || UTF-8 note)) does,
   * with 16 fresh random bytes of salt; note and salt go beside the envelope to the server, which keeps them
   * off the public ledger (customs of this country and the admin can read them). */
  function commitNote(note) {
    if (!note) { return Promise.resolve(null); }
    var salt = crypto.getRandomValues(new Uint8Array(16));
    var text = new TextEncoder().encode(note);
    var both = new Uint8Array(salt.length + text.length);
    both.set(salt, 0);
    both.set(text, salt.length);
    return crypto.subtle.digest("SHA-256", both).then(function (digest) {
      return { note: note, salt: toHex(salt), commitment: "sha256:" + toHex(new Uint8Array(digest)) };
    });
  }

  function decide(row, decision, buttons) {
    var key = row.getAttribute("data-key");
    var noteInput = row.querySelector(".note-input");
    var note = noteInput ? noteInput.value.trim() : "";
    var priv = null;
    var device = null;
    rowError(row, null);
    buttons.forEach(function (b) { b.disabled = true; });
    W.approvedDevice(page.getAttribute("data-approved")).then(function (state) {
      if (!state.device) { throw new Error("This browser has no signing key: create one on the Device page."); }
      if (!state.approved) { throw new Error("This browser's key " + state.device.keyid + " is not approved yet."); }
      device = state.device;
      return Promise.all([W.getJson(resolveUrl + "?code=" + encodeURIComponent(key)), commitNote(note)]);
    }).then(function (got) {
      var info = got[0];
      priv = got[1];
      var st = { v: 1, type: "inspect", actor: party, time: W.nowRfc3339(),
                 location: { name: location.name, country: location.country },
                 items: [info.key], decision: decision, prev: {} };
      if (info.head) { st.prev[info.key] = info.head; }
      if (priv) { st.note_commitment = priv.commitment; }
      return W.signStatement(st, device);
    }).then(function (envelope) {
      var body = { envelope: envelope };
      if (priv) { body.note = priv.note; body.salt = priv.salt; }
      return W.postJson(inspectUrl, body);
    }).then(function (result) {
      if (noteInput) { noteInput.value = ""; }
      row.setAttribute("data-status", decision);
      row.setAttribute("data-event", result.event_id);
      var badge = row.querySelector('[data-role="status"]');
      if (badge) {
        badge.textContent = LABELS[decision];
        badge.className = "badge badge-" + decision;
      }
      row.classList.add("decided");
    }).catch(function (err) {
      rowError(row, err.message || String(err));
    }).then(function () {
      buttons.forEach(function (b) { b.disabled = false; });
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("tr[data-key]"), function (row) {
    var buttons = Array.prototype.slice.call(row.querySelectorAll("button.act"));
    buttons.forEach(function (button) {
      button.addEventListener("click", function () { decide(row, button.getAttribute("data-decision"), buttons); });
    });
  });

  W.warnUnlessApproved(page.getAttribute("data-approved"), "/account");
})();
