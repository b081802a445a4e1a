/* Admin registry changes (templates/admin/index.html): Approve adds a device key to its party, Revoke sets a
 * key's revoked_at. The server proposes the exact `party` statement; this page shows it, signs those bytes
 * with the admin's own device key (a key of party `admin`) and posts the envelope back. */
(function () {
  "use strict";
  var W = window.Waybill;
  var page = document.getElementById("admin");
  if (!page || !W) { return; }
  var errorBox = document.getElementById("admin-error");
  var resultBox = document.getElementById("admin-result");

  function show(box, message) {
    box.hidden = !message;
    box.textContent = message || "";
  }

  function signAndSend(button) {
    show(errorBox, null);
    show(resultBox, null);
    button.disabled = true;
    var proposal;
    W.approvedDevice(page.getAttribute("data-approved")).then(function (state) {
      if (!state.device) { throw new Error("This browser has no signing key: create one below first."); }
      if (!state.approved) {
        throw new Error("This browser's key " + state.device.keyid + " is not an approved admin key yet.");
      }
      return W.getJson(button.getAttribute("data-statement-url")).then(function (doc) {
        proposal = doc;
        var party = doc.statement.party;
        var what = button.classList.contains("revoke") ? "Revoke a key of " : "Add a key to ";
        var summary = what + party.name + " (" + party.id + ")? The statement you sign:\n\n" +
          JSON.stringify(doc.statement, null, 2);
        if (!window.confirm(summary)) { return null; }
        return W.signPayload(W.b64ToBytes(doc.payload), state.device);
      });
    }).then(function (envelope) {
      if (!envelope) { return null; }
      return W.postJson(button.getAttribute("data-submit-url"), { envelope: envelope });
    }).then(function (result) {
      if (!result) { return; }
      show(resultBox, "Recorded in the ledger as " + result.event_id + ". Reloading…");
      var row = button.closest("tr");
      if (row) { row.setAttribute("data-status", button.classList.contains("revoke") ? "revoked" : "approved"); }
      window.setTimeout(function () { window.location.reload(); }, 600);
    }).catch(function (err) {
      show(errorBox, err.message || String(err));
    }).then(function () {
      button.disabled = false;
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("button.approve, button.revoke"), function (button) {
    button.addEventListener("click", function () { signAndSend(button); });
  });

  W.approvedDevice(page.getAttribute("data-approved")).then(function (state) {
    var boot = document.getElementById("admin-bootstrap");
    if (state.device && !state.approved) {
      document.getElementById("bootstrap-keyid").textContent = state.device.keyid;
      boot.hidden = false;
    }
  });
  W.warnUnlessApproved(page.getAttribute("data-approved"), null);
})();
