/* The device section (templates/auth/_device.html): show this browser's key and its approval state, or
 * create a key and send its public half for approval. */
(function () {
  "use strict";
  var W = window.Waybill;
  var section = document.getElementById("device");
  if (!section || !W) { return; }
  var state = document.getElementById("device-state");
  var ids = document.getElementById("device-ids");
  var enroll = document.getElementById("device-enroll");
  var errorBox = document.getElementById("device-error");
  var createButton = document.getElementById("device-create");

  function show(kind, text) {
    state.setAttribute("data-state", kind);
    state.textContent = text;
  }

  function fail(err) {
    errorBox.hidden = false;
    errorBox.textContent = err && err.message ? err.message : String(err);
  }

  function render(dev) {
    if (!dev) {
      ids.hidden = true;
      enroll.hidden = false;
      show("none", "This browser has no signing key yet.");
      return Promise.resolve();
    }
    ids.hidden = false;
    enroll.hidden = true;
    document.getElementById("device-keyid").textContent = dev.keyid;
    document.getElementById("device-fingerprint").textContent = dev.keyid.toUpperCase().replace(/(.{4})(?=.)/g, "$1 ");
    document.getElementById("device-public-key").textContent = dev.publicKey;
    return W.getJson(section.getAttribute("data-devices-url")).then(function (doc) {
      var mine = (doc.devices || []).filter(function (d) { return d.keyid === dev.keyid; })[0];
      if (!mine) {
        // A key made here but never sent (or sent to another account): ask for approval now.
        return W.postJson(section.getAttribute("data-enroll-url"), { public_key: dev.publicKey, label: labelText() })
          .then(function (d) { show(d.status, statusText(d.status)); });
      }
      show(mine.status, statusText(mine.status));
    });
  }

  function statusText(status) {
    return {
      pending: "Waiting for an administrator to approve this browser's key.",
      approved: "Approved: this browser signs for your party.",
      rejected: "An administrator rejected this key.",
      revoked: "This key was revoked: it can no longer sign."
    }[status] || status;
  }

  function labelText() {
    var input = document.getElementById("device-label");
    var text = input && input.value.trim();
    return text || (navigator.userAgent.indexOf("Mobile") >= 0 ? "phone" : "browser");
  }

  /* The page's list of enrolled devices, as the server has it now (it said "None yet" before this key). */
  function refreshList() {
    return fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("my-devices-card");
        var old = document.getElementById("my-devices-card");
        if (fresh && old) { old.replaceWith(fresh); }
      }).catch(function () { /* the list updates on the next load */ });
  }

  if (!W.device.supported()) {
    show("unsupported", "This browser cannot keep a signing key (no WebCrypto or IndexedDB).");
    return;
  }

  createButton.addEventListener("click", function () {
    createButton.disabled = true;
    errorBox.hidden = true;
    W.device.create().then(function (dev) {
      return W.postJson(section.getAttribute("data-enroll-url"), { public_key: dev.publicKey, label: labelText() })
        .then(function () { return render(dev); })
        .then(function () { refreshList(); });
    }).catch(function (err) {
      createButton.disabled = false;
      fail(err.name === "NotSupportedError" ? new Error("This browser does not support Ed25519 keys yet.") : err);
    });
  });

  W.device.load().then(render).catch(fail);
})();
