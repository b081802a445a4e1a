/* Customs decisions (templates/customs/*.html). Release signs at once; Hold and Seize first ask for a reason in a
 * dialog -- a private note: only "sha256:" + hex(SHA-256(salt || note)) enters the signed statement, the note and
 * its salt go beside it to the server, which keeps them off the public ledger. The unit's latest event (for
 * `prev`) is fetched fresh at the click, so a decision never forks the chain. A decision updates its row in place:
 * status badge, the buttons that still make sense, the table it sits in, and the counters. */
(function () {
  "use strict";
  var W = window.Waybill;
  var page = document.getElementById("customs");
  if (!page || !W) { return; }
  var party = page.getAttribute("data-party");
  var location = { name: page.getAttribute("data-party-name"), country: page.getAttribute("data-country") };
  var resolveUrl = page.getAttribute("data-resolve-url");
  var inspectUrl = page.getAttribute("data-inspect-url");
  // The decisions each status still allows (tracker.customs.DECISIONS).
  var ALLOWED = { awaiting: ["released", "held", "seized"], held: ["released", "seized"], released: ["held", "seized"],
                  seized: [], arrived: [] };
  var VERB = { released: "Release", held: "Hold", seized: "Seize" };
  var dialog = document.getElementById("decide-dialog");

  function rowError(row, message) {
    var box = row.querySelector(".row-error");
    if (!box) { return; }
    box.hidden = !message;
    box.textContent = message || "";
  }

  function toHex(bytes) {
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

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

  /* Ask for confirmation and a reason; resolves with the reason, or null when the officer cancels. */
  function askReason(key, decision) {
    if (!dialog || typeof dialog.showModal !== "function") {
      var typed = window.prompt(VERB[decision] + " " + key + "? Give the reason (a private note):", "");
      return Promise.resolve(typed && typed.trim() ? typed.trim() : null);
    }
    var reason = document.getElementById("decide-reason");
    var ok = document.getElementById("decide-ok");
    var err = document.getElementById("decide-error");
    document.getElementById("decide-title").textContent = (decision === "seized" ? "Seize" : "Hold") + " this unit?";
    document.getElementById("decide-what").textContent = key;
    ok.textContent = decision === "seized" ? "Seize" : "Hold for inspection";
    ok.className = decision === "seized" ? "danger" : "";
    reason.value = "";
    err.hidden = true;
    return new Promise(function (resolve) {
      function finish(value) {
        ok.removeEventListener("click", onOk);
        document.getElementById("decide-cancel").removeEventListener("click", onCancel);
        dialog.removeEventListener("cancel", onCancel);
        if (dialog.open) { dialog.close(); }
        resolve(value);
      }
      function onOk(event) {
        event.preventDefault();
        var text = reason.value.trim();
        if (!text) { err.hidden = false; err.textContent = "Give a reason: it stays with the decision."; reason.focus(); return; }
        finish(text);
      }
      function onCancel(event) { if (event) { event.preventDefault(); } finish(null); }
      ok.addEventListener("click", onOk);
      document.getElementById("decide-cancel").addEventListener("click", onCancel);
      dialog.addEventListener("cancel", onCancel);
      dialog.showModal();
      reason.focus();
    });
  }

  function adjustCount(status, delta) {
    Array.prototype.forEach.call(document.querySelectorAll('[data-count="' + status + '"]'), function (el) {
      el.textContent = String(Math.max(0, parseInt(el.textContent, 10) + delta));
    });
  }

  function syncEmpty(card) {
    if (!card) { return; }
    var any = card.querySelectorAll("tbody tr").length > 0;
    var wrap = card.querySelector(".table-wrap");
    var empty = card.querySelector(".empty");
    if (wrap) { wrap.hidden = !any; }
    if (empty) { empty.hidden = any; }
  }

  function setButtons(row, status) {
    var cell = row.querySelector(".actions");
    Array.prototype.forEach.call(cell.querySelectorAll("button.act, .no-decision"), function (b) { b.remove(); });
    var errorBox = cell.querySelector(".row-error");
    var allowed = ALLOWED[status] || [];
    allowed.forEach(function (d) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "act act-" + d + (d === "held" ? " secondary" : d === "seized" ? " danger" : "");
      b.setAttribute("data-decision", d);
      b.setAttribute("aria-label", VERB[d] + " " + row.getAttribute("data-key"));
      b.textContent = VERB[d];
      cell.insertBefore(b, errorBox);
    });
    if (!allowed.length) {
      var none = document.createElement("span");
      none.className = "hint no-decision";
      none.textContent = status === "seized" ? "Seized: no further decision." : "No decision to make.";
      cell.insertBefore(none, errorBox);
    }
    wire(row);
  }

  function moved(row, from, to) {
    row.setAttribute("data-status", to);
    var badge = row.querySelector('[data-role="status"]');
    if (badge) {
      badge.textContent = to;
      badge.className = "badge badge-" + to;
    }
    setButtons(row, to);
    var fromCard = row.closest(".status-card");
    var toCard = document.getElementById(to + "-card");
    if (fromCard && toCard && fromCard !== toCard) {
      toCard.querySelector("tbody").insertBefore(row, toCard.querySelector("tbody").firstChild);
      syncEmpty(fromCard);
      syncEmpty(toCard);
    }
    if (from !== to) {
      adjustCount(from, -1);
      adjustCount(to, 1);
    }
    row.classList.add("decided");
  }

  function decide(row, decision) {
    var key = row.getAttribute("data-key");
    var from = row.getAttribute("data-status");
    var buttons = Array.prototype.slice.call(row.querySelectorAll("button.act"));
    var asked = decision === "released" ? Promise.resolve("") : askReason(key, decision);
    var priv = null;
    var device = null;
    rowError(row, null);
    return asked.then(function (reason) {
      if (reason === null) { return null; }  // cancelled: nothing signed
      buttons.forEach(function (b) { b.disabled = true; });
      return W.approvedDevice(page.getAttribute("data-approved")).then(function (state) {
        if (!state.device) { throw new Error("This browser has no signing key: create one on the Device page."); }
        if (!state.approved) { throw new Error("This browser's key " + state.device.keyid + " is not approved yet."); }
        device = state.device;
        return Promise.all([W.getJson(resolveUrl + "?code=" + encodeURIComponent(key)), commitNote(reason)]);
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
        row.setAttribute("data-event", result.event_id);
        moved(row, from, decision);
        return result;
      });
    }).catch(function (err) {
      rowError(row, err.message || String(err));
      buttons.forEach(function (b) { b.disabled = false; });
    });
  }

  function wire(row) {
    Array.prototype.forEach.call(row.querySelectorAll("button.act"), function (button) {
      button.addEventListener("click", function () { decide(row, button.getAttribute("data-decision")); });
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-key]"), function (row) {
    if (row.querySelector(".actions")) { wire(row); }
  });

  W.customs = { decide: decide };
  W.warnUnlessApproved(page.getAttribute("data-approved"), "/account");
})();
