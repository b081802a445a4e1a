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

  function decide(row, decision, buttons) {
    var key = row.getAttribute("data-key");
    rowError(row, null);
    buttons.forEach(function (b) { b.disabled = true; });
    W.approvedDevice(page.getAttribute("data-approved")).then(function (state) {
      if (!state.device) { throw new Error("This browser has no signing key: create one on the Device page."); }
      if (!state.approved) { throw new Error("This browser's key " + state.device.keyid + " is not approved yet."); }
      return W.getJson(resolveUrl + "?code=" + encodeURIComponent(key)).then(function (info) {
        var st = { v: 1, type: "inspect", actor: party, time: W.nowRfc3339(),
                   location: { name: location.name, country: location.country },
                   items: [info.key], decision: decision, prev: {} };
        if (info.head) { st.prev[info.key] = info.head; }
        return W.signStatement(st, state.device);
      });
    }).then(function (envelope) {
      return W.postJson(inspectUrl, { envelope: envelope });
    }).then(function (result) {
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
