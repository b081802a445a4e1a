/* Recording a handoff (templates/staff/record.html): scan codes, list each with where it is, then build ship /
 * receive / aggregate statements, sign them with this browser's device key and post them. Problems (unknown
 * item, held by someone else, nothing shipped to you) show next to the item and block signing; warnings (sold,
 * flagged by the provenance check, an unpacked pallet) show next to it and ask for a second press. The lists
 * above ("On its way to you", "In your custody", recent handoffs) come from the server and are refreshed after
 * each send; a shipment in the inbound list is received with one press. */
(function () {
  "use strict";
  var W = window.Waybill;
  var page = document.getElementById("handoff");
  if (!page || !W) { return; }
  var party = page.getAttribute("data-party");
  var location = { name: page.getAttribute("data-party-name"), country: page.getAttribute("data-country") };
  var resolveUrl = page.getAttribute("data-resolve-url");
  var submitUrl = page.getAttribute("data-submit-url");
  var list = document.getElementById("items");
  var count = document.getElementById("count");
  var submitButton = document.getElementById("submit");
  var submitError = document.getElementById("submit-error");
  var submitResult = document.getElementById("submit-result");
  var warnBox = document.getElementById("warn-summary");
  var containerInput = document.getElementById("container");
  var rows = [];  // {raw, info, failure, error, done, li}
  var confirmed = false;  // the signer saw the warnings of this list and chose to sign anyway

  function mode() {
    var checked = document.querySelector('input[name="mode"]:checked');
    return checked ? checked.value : "ship";
  }

  function el(tag, cls, content) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (content != null) { node.textContent = content; }
    return node;
  }

  function listChanged() {
    confirmed = false;
    warnBox.hidden = true;
    submitButton.textContent = "Sign and send";
  }

  /* What is wrong with this item for the chosen handoff (it cannot be signed), or null. */
  function problem(row) {
    var info = row.info;
    if (row.failure) { return row.failure; }
    if (!info) { return null; }
    var m = mode();
    if (!info.known) {
      return "Unknown " + (info.kind === "container" ? "case or pallet" : "item") + ": the ledger has no record of it.";
    }
    if (m === "receive") {
      if (!info.incoming) {
        return "Nothing shipped to you is waiting for this" + (info.holder_name ? " (held by " + info.holder_name + ")." : ".");
      }
      if (info.incoming.shipped_unit !== info.key) {
        return "This travelled inside " + info.incoming.shipped_unit + ": scan that label to receive it.";
      }
      return null;
    }
    if (info.incoming) { return "This is on its way to you: receive it before you ship or pack it."; }
    if (info.holder !== party) {
      return info.holder ? "Held by " + info.holder_name + ", not by you: only the holder can hand it on." :
        "Nobody holds this now (it is on its way somewhere, or sold): you cannot hand it on.";
    }
    return null;
  }

  /* What the signer should know before handing this unit on (sold, flagged, unpacked): advice, not a block. */
  function warningsOf(row) {
    if (!row.info || !row.info.warnings || row.done) { return []; }
    if (mode() === "receive") { return row.info.warnings.filter(function (w) { return w.code === "flagged"; }); }
    return row.info.warnings;
  }

  function nameOf(r) {
    var what = r.info && (r.info.product || (r.info.kind === "container" ? "Case or pallet" : null));
    var key = r.info ? r.info.key : r.raw;
    return what ? what + " (" + key + ")" : key;
  }

  function render(row) {
    var li = row.li;
    row.error = row.done ? null : problem(row);
    var warnings = row.error ? [] : warningsOf(row);
    li.className = "item" + (row.error ? " item-error" : warnings.length ? " item-warn" : "") + (row.done ? " item-done" : "");
    li.setAttribute("data-key", row.info ? row.info.key : row.raw);
    li.setAttribute("data-state", row.done ? "done" : row.error ? "error" : warnings.length ? "warn" : row.info ? "ok" : "checking");
    li.innerHTML = "";
    var head = el("div", "item-head");
    head.appendChild(el("span", "mono item-key", row.info ? row.info.key : row.raw));
    var remove = el("button", "link item-remove", "Remove");
    remove.type = "button";
    remove.setAttribute("aria-label", "Remove " + (row.info ? row.info.key : row.raw) + " from the list");
    remove.addEventListener("click", function () { removeRow(row); });
    if (!row.done) { head.appendChild(remove); }
    li.appendChild(head);
    if (row.info && row.info.known) {
      var meta = el("p", "item-meta");
      meta.appendChild(el("span", "item-product", row.info.product || (row.info.kind === "container" ? "Case or pallet" : "")));
      // A unit on its way to you is the sender's until you receive it: say where it is going, not who holds it.
      meta.appendChild(el("span", "item-holder", row.info.incoming ? "On its way to you from " + row.info.incoming.from_name :
        (row.info.holder ? (row.info.holder === party ? "In your custody" : "Held by " + row.info.holder_name) : "No current holder")));
      meta.appendChild(el("span", "badge verdict-badge-" + row.info.verdict, row.info.verdict.replace("_", " ")));
      li.appendChild(meta);
    } else if (!row.failure) {
      li.appendChild(el("p", "hint", "Checking…"));
    }
    if (row.error) { li.appendChild(el("p", "item-error-text form-error", row.error)); }
    warnings.forEach(function (w) {
      var p = el("p", "item-warn-text", w.message);
      p.setAttribute("data-warning", w.code);
      li.appendChild(p);
    });
    count.textContent = String(rows.length);
  }

  function removeRow(row) {
    rows = rows.filter(function (r) { return r !== row; });
    row.li.remove();
    count.textContent = String(rows.length);
    listChanged();
  }

  function addCode(raw) {
    raw = (raw || "").trim();
    if (!raw) { return Promise.resolve(null); }
    submitResult.hidden = true;
    listChanged();
    var row = { raw: raw, info: null, failure: null, done: null, li: el("li", "item") };
    list.insertBefore(row.li, list.firstChild);
    rows.unshift(row);
    render(row);
    return W.getJson(resolveUrl + "?code=" + encodeURIComponent(raw)).then(function (info) {
      var dup = rows.filter(function (r) { return r !== row && r.info && r.info.key === info.key && !r.done; })[0];
      if (dup) { removeRow(row); flash(dup.li); return dup; }
      if (mode() === "aggregate" && info.kind === "container" && !containerInput.value.trim()) {
        containerInput.value = info.key;  // the first case/pallet label scanned while packing is the container
        removeRow(row);
        return null;
      }
      row.info = info;
      render(row);
      return row;
    }).catch(function (err) {
      row.failure = err.message || "Could not check this code.";
      render(row);
      return row;
    });
  }

  function flash(li) {
    li.classList.add("item-again");
    window.setTimeout(function () { li.classList.remove("item-again"); }, 800);
  }

  function prevOf(keys, byKey) {
    var prev = {};
    keys.forEach(function (k) { if (byKey[k] && byKey[k].head) { prev[k] = byKey[k].head; } });
    return prev;
  }

  function base(type) {
    return { v: 1, type: type, actor: party, time: W.nowRfc3339(), location: { name: location.name, country: location.country } };
  }

  /* [{statement, rows}] for the current list and mode. Every statement names `prev` for every unit. */
  function build(ready) {
    var byKey = {};
    ready.forEach(function (r) { byKey[r.info.key] = r.info; });
    var keys = ready.map(function (r) { return r.info.key; });
    var m = mode();
    if (m === "ship") {
      var to = document.getElementById("ship-to").value;
      if (!to) { return Promise.reject(new Error("Choose who you are shipping to.")); }
      var ship = base("ship");
      ship.items = keys;
      ship.to = to;
      ship.prev = prevOf(keys, byKey);
      return Promise.resolve([{ statement: ship, rows: ready }]);
    }
    if (m === "receive") {
      var groups = {};
      ready.forEach(function (r) {
        var id = r.info.incoming.ship;
        (groups[id] = groups[id] || { from: r.info.incoming.from, rows: [] }).rows.push(r);
      });
      return Promise.resolve(Object.keys(groups).map(function (id) {
        var g = groups[id];
        var gkeys = g.rows.map(function (r) { return r.info.key; });
        var receive = base("receive");
        receive.items = gkeys;
        receive.from = g.from;
        receive.ship = id;
        receive.prev = prevOf(gkeys, byKey);
        return { statement: receive, rows: g.rows };
      }));
    }
    var code = containerInput.value.trim();
    if (!code) { return Promise.reject(new Error("Scan or type the case or pallet (SSCC) you are packing into.")); }
    return W.getJson(resolveUrl + "?code=" + encodeURIComponent(code)).then(function (info) {
      if (info.kind !== "container") { throw new Error("That is an item code: the case or pallet needs its SSCC."); }
      var agg = base("aggregate");
      agg.container = info.key;
      agg.items = keys;
      agg.prev = prevOf(keys, byKey);
      if (info.head) { agg.prev[info.key] = info.head; }
      return [{ statement: agg, rows: ready }];
    });
  }

  function showError(message) {
    submitError.hidden = !message;
    submitError.textContent = message || "";
  }

  function partyName(id) {
    var option = document.querySelector('#ship-to option[value="' + id + '"]');
    return option ? option.textContent.split(" — ")[0] : id;
  }

  /* "Shipped 2 units to Berlin Retail: Aurora wireless earbuds (01/…), …." */
  function describe(st, rs) {
    var n = rs.length === 1 ? "1 unit" : rs.length + " units";
    var names = rs.map(nameOf).join(", ");
    if (st.type === "ship") { return "Shipped " + n + " to " + partyName(st.to) + ": " + names + "."; }
    if (st.type === "receive") {
      var from = rs[0].info && rs[0].info.incoming ? rs[0].info.incoming.from_name : partyName(st.from);
      return "Received " + n + " from " + from + ": " + names + ".";
    }
    if (st.type === "aggregate") { return "Packed " + n + " into " + st.container + ": " + names + "."; }
    return "Recorded " + n + ": " + names + ".";
  }

  function showWarnings(warned) {
    warnBox.innerHTML = "";
    warnBox.appendChild(el("p", "warn-title", (warned.length === 1 ? "1 unit needs" : warned.length + " units need") +
      " a second look before you sign:"));
    var ul = el("ul");
    warned.forEach(function (r) {
      ul.appendChild(el("li", null, nameOf(r) + ": " + warningsOf(r).map(function (w) { return w.message; }).join(" ")));
    });
    warnBox.appendChild(ul);
    warnBox.appendChild(el("p", null, "Remove them from the list, or press “Sign anyway” if you are sure."));
    warnBox.hidden = false;
    submitButton.textContent = "Sign anyway";
    confirmed = true;
  }

  function submit() {
    showError(null);
    submitResult.hidden = true;
    var pending = rows.filter(function (r) { return !r.done; });
    if (!pending.length) { showError("Scan at least one code first."); return Promise.resolve(null); }
    pending.forEach(render);
    var bad = pending.filter(function (r) { return r.error || !r.info; });
    if (bad.length) {
      showError(bad.length === 1 ? "Remove or fix the item marked in red first." :
        "Remove or fix the " + bad.length + " items marked in red first.");
      return Promise.resolve(null);
    }
    var warned = pending.filter(function (r) { return warningsOf(r).length; });
    if (warned.length && !confirmed) { showWarnings(warned); return Promise.resolve(null); }
    warnBox.hidden = true;
    submitButton.disabled = true;
    var batch;
    return W.approvedDevice(page.getAttribute("data-approved")).then(function (state) {
      if (!state.device) { throw new Error("This browser has no signing key: create one on the Device page."); }
      if (!state.approved) { throw new Error("This browser's key " + state.device.keyid + " is not approved yet."); }
      return build(pending).then(function (b) {
        batch = b;
        return Promise.all(batch.map(function (x) { return W.signStatement(x.statement, state.device); }));
      });
    }).then(function (envelopes) {
      return W.postJson(submitUrl, { envelopes: envelopes });
    }).then(function (doc) {
      var said = [];
      doc.results.forEach(function (result, i) {
        batch[i].rows.forEach(function (r) {
          if (result.error) { r.failure = result.error.message; } else { r.done = true; }
        });
        if (!result.error) { said.push(describe(batch[i].statement, batch[i].rows)); }
      });
      // What was recorded leaves the list; what was refused stays, marked with the reason.
      rows.filter(function (r) { return r.done; }).forEach(removeRow);
      rows.forEach(render);
      if (said.length) {
        submitResult.hidden = false;
        submitResult.textContent = "Recorded. " + said.join(" ");
        submitResult.focus();
        refreshWork();
      }
      if (said.length < doc.results.length) { showError("Some handoffs were refused: see the items marked in red."); }
      return said;
    }).catch(function (err) {
      showError(err.message || String(err));
      return null;
    }).then(function (said) {
      submitButton.disabled = false;
      return said;
    });
  }

  /* The lists on this page (on its way, custody, recent) as the server sees them now. */
  function refreshWork() {
    return fetch(page.getAttribute("data-home-url"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("work");
        var old = document.getElementById("work");
        if (fresh && old) { old.replaceWith(fresh); wireWork(); }
      }).catch(function () { /* the lists stay as they were; the next load shows them */ });
  }

  /* Receive whole shipments from the inbound list: their units join the list in receive mode, then sign. */
  function receiveShipments(items) {
    document.querySelector('input[name="mode"][value="receive"]').checked = true;
    syncMode();
    var keys = [];
    items.forEach(function (li) {
      li.getAttribute("data-units").split(" ").filter(Boolean).forEach(function (k) { keys.push(k); });
    });
    return Promise.all(keys.map(addCode)).then(function () { return submit(); });
  }

  function wireWork() {
    var inbound = document.getElementById("inbound");
    var selected = document.getElementById("receive-selected");
    Array.prototype.forEach.call(inbound.querySelectorAll("button.receive-one"), function (b) {
      b.addEventListener("click", function () { receiveShipments([b.closest("li.shipment")]); });
    });
    Array.prototype.forEach.call(inbound.querySelectorAll("input.pick-shipment"), function (box) {
      box.addEventListener("change", function () {
        var n = inbound.querySelectorAll("input.pick-shipment:checked").length;
        selected.disabled = !n;
        selected.textContent = n > 1 ? "Receive " + n + " shipments" : "Receive selected";
      });
    });
    if (selected) {
      selected.addEventListener("click", function () {
        var chosen = Array.prototype.map.call(inbound.querySelectorAll("input.pick-shipment:checked"),
                                              function (box) { return box.closest("li.shipment"); });
        if (chosen.length) { receiveShipments(chosen); }
      });
    }
    Array.prototype.forEach.call(document.querySelectorAll("#custody button.add-held"), function (b) {
      b.addEventListener("click", function () { addCode(b.getAttribute("data-key")); });
    });
  }

  function syncMode() {
    var m = mode();
    document.getElementById("ship-fields").hidden = m !== "ship";
    document.getElementById("aggregate-fields").hidden = m !== "aggregate";
    listChanged();
    rows.forEach(render);
  }

  Array.prototype.forEach.call(document.querySelectorAll('input[name="mode"]'), function (input) {
    input.addEventListener("change", syncMode);
  });
  document.getElementById("manual-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var input = document.getElementById("manual-code");
    W.scanner.deliver(input.value, "typed");
    input.value = "";
  });
  submitButton.addEventListener("click", submit);
  document.getElementById("clear").addEventListener("click", function () {
    rows.slice().forEach(removeRow);
    showError(null);
    submitResult.hidden = true;
  });

  var video = document.getElementById("camera");
  var cameraState = document.getElementById("camera-state");
  var toggle = document.getElementById("camera-toggle");
  toggle.addEventListener("click", function () {
    if (W.scanner.running()) {
      W.scanner.stop(video);
      toggle.textContent = "Start camera";
      cameraState.textContent = "Camera off.";
      return;
    }
    cameraState.textContent = "Starting the camera…";
    W.scanner.start(video, function (decoder) {
      cameraState.textContent = "Point the camera at a code (" + (decoder === "native" ? "built-in decoder" : "ZXing") + ").";
      cameraState.setAttribute("data-decoder", decoder);
    }).then(function () {
      toggle.textContent = "Stop camera";
    }).catch(function (err) {
      var why = String(err.message || err.name || "unavailable").replace(/[.!?\s]*$/, "");
      cameraState.textContent = "No camera: " + why + ". You can type codes below.";
    });
  });

  /* The one entry point for every decoded or typed code (tests inject codes here too). */
  W.onScannedCode = function (code) { return addCode(code); };
  W.handoff = { rows: function () { return rows; }, submit: submit, refresh: refreshWork };

  syncMode();
  wireWork();
  W.warnUnlessApproved(page.getAttribute("data-approved"), "/account");
})();
