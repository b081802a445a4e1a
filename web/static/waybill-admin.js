/* Admin registry changes. Approve (templates/admin/device.html) adds a device key to its party; Revoke
 * (templates/admin/index.html) sets a key's revoked_at. The server proposes the exact `party` statement; this page
 * shows it in words (and in full under "The statement you will sign"), signs those bytes with the admin's own device
 * key (a key of party `admin`) and posts the envelope back. */
(function () {
  "use strict";
  var W = window.Waybill;
  var page = document.getElementById("admin");
  if (!page || !W) { return; }
  var errorBox = document.getElementById("admin-error");
  var resultBox = document.getElementById("admin-result");

  function show(box, message) {
    if (!box) { return; }
    box.hidden = !message;
    box.textContent = message || "";
  }

  function signer() {
    return W.approvedDevice(page.getAttribute("data-approved")).then(function (state) {
      if (!state.device) { throw new Error("This browser has no signing key: create one on the Device page first."); }
      if (!state.approved) {
        throw new Error("This browser's key " + state.device.keyid + " is not an approved admin key yet.");
      }
      return state.device;
    });
  }

  function send(button, proposal, device) {
    return W.signPayload(W.b64ToBytes(proposal.payload), device).then(function (envelope) {
      return W.postJson(button.getAttribute("data-submit-url"), { envelope: envelope });
    });
  }

  /* The approval page: the statement is fetched when the page opens, shown under a details box, and signed on
   * the press of Approve (the facts above it come from the same device request). */
  var approve = document.getElementById("approve");
  if (approve) {
    var proposal = null;
    W.getJson(approve.getAttribute("data-statement-url")).then(function (doc) {
      proposal = doc;
      document.getElementById("statement").textContent = JSON.stringify(doc.statement, null, 2);
    }).catch(function (err) { show(errorBox, err.message || String(err)); });
    approve.addEventListener("click", function () {
      show(errorBox, null);
      approve.disabled = true;
      signer().then(function (device) {
        if (!proposal) { throw new Error("The statement to sign has not loaded yet: try again in a moment."); }
        return send(approve, proposal, device);
      }).then(function () {
        var facts = document.getElementById("device-facts");
        facts.setAttribute("data-status", "approved");
        show(resultBox, "Approved: " + document.getElementById("fact-label").textContent + " now signs for " +
          document.getElementById("fact-party").textContent + ".");
        approve.hidden = true;
      }).catch(function (err) {
        show(errorBox, err.message || String(err));
        approve.disabled = false;
      });
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("button.revoke"), function (button) {
    button.addEventListener("click", function () {
      show(errorBox, null);
      show(resultBox, null);
      var row = button.closest("tr");
      var label = row.querySelector(".device-label").textContent.trim();
      var partyName = row.querySelector(".party-name").textContent.trim();
      confirmRevoke(button.getAttribute("data-keyid"), label, partyName).then(function (yes) {
        if (!yes) { button.focus(); return; }
        revoke(button, row, partyName);
      });
    });
  });

  /* Resolves true when the admin confirms in the dialog (a page without <dialog> support falls back to confirm()). */
  function confirmRevoke(keyid, label, partyName) {
    var dialog = document.getElementById("revoke-dialog");
    if (!dialog || typeof dialog.showModal !== "function") {
      return Promise.resolve(window.confirm("Revoke key " + keyid + (label ? " (" + label + ")" : "") + " of " +
        partyName + "? From now on nothing it signs is accepted. This cannot be undone."));
    }
    document.getElementById("revoke-party").textContent = partyName;
    document.getElementById("revoke-keyid").textContent = keyid;
    document.getElementById("revoke-device").textContent = label || "not enrolled from a browser";
    var ok = document.getElementById("revoke-ok");
    var cancel = document.getElementById("revoke-cancel");
    return new Promise(function (resolve) {
      function finish(value) {
        ok.removeEventListener("click", onOk);
        cancel.removeEventListener("click", onCancel);
        dialog.removeEventListener("cancel", onCancel);
        if (dialog.open) { dialog.close(); }
        resolve(value);
      }
      function onOk(event) { event.preventDefault(); finish(true); }
      function onCancel(event) { if (event) { event.preventDefault(); } finish(false); }
      ok.addEventListener("click", onOk);
      cancel.addEventListener("click", onCancel);
      dialog.addEventListener("cancel", onCancel);
      dialog.showModal();
      cancel.focus();  // the safe choice has the focus
    });
  }

  /* Signs the revocation the server proposes with this browser's admin key and posts it. */
  function revoke(button, row, partyName) {
    button.disabled = true;
    signer().then(function (device) {
      return W.getJson(button.getAttribute("data-statement-url")).then(function (doc) { return send(button, doc, device); });
    }).then(function () {
      row.setAttribute("data-revoked", "yes");
      show(resultBox, "Key " + button.getAttribute("data-keyid") + " of " + partyName + " revoked.");
      button.remove();
    }).catch(function (err) {
      show(errorBox, err.message || String(err));
      button.disabled = false;
    });
  }

  W.warnUnlessApproved(page.getAttribute("data-approved"), null);
})();
