/* Recording a handoff (templates/staff/record.html): scan codes, list each with its current holder, then
 * build ship / receive / aggregate statements, sign them with this browser's device key and post them.
 * Problems (unknown item, held by someone else, nothing shipped to you) show next to the item. */
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
  var containerInput = document.getElementById("container");
  var rows = [];  // {key, raw, info, error, done, li}

  function mode() {
    var checked = document.querySelector('input[name="mode"]:checked');
    return checked ? checked.value : "ship";
  }

  function text(el, value) { el.textContent = value == null ? "" : value; return el; }

  function el(tag, cls, content) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (content != null) { node.textContent = content; }
    return node;
  }

  /* What is wrong with this item for the chosen handoff, or null. */
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
    if (info.holder !== party) {
      return info.holder ? "Held by " + info.holder_name + ", not by you." :
        "Nobody holds this now (on its way, or sold).";
    }
    return null;
  }

  function render(row) {
    var li = row.li;
    row.error = row.done ? null : problem(row);
    li.className = "item" + (row.error ? " item-error" : "") + (row.done ? " item-done" : "");
    li.setAttribute("data-key", row.info ? row.info.key : row.raw);
    li.setAttribute("data-state", row.done ? "done" : row.error ? "error" : row.info ? "ok" : "checking");
    li.innerHTML = "";
    var head = el("div", "item-head");
    head.appendChild(el("span", "mono item-key", row.info ? row.info.key : row.raw));
    var remove = el("button", "link item-remove", "Remove");
    remove.type = "button";
    remove.addEventListener("click", function () { removeRow(row); });
    if (!row.done) { head.appendChild(remove); }
    li.appendChild(head);
    if (row.info && row.info.known) {
      var meta = el("p", "item-meta");
      meta.appendChild(el("span", "item-product", row.info.product || (row.info.kind === "container" ? "Case or pallet" : "")));
      meta.appendChild(el("span", "item-holder", row.info.holder ? "Holder: " + row.info.holder_name :
        (row.info.incoming ? "On its way to you from " + row.info.incoming.from_name : "No current holder")));
      meta.appendChild(el("span", "badge verdict-badge-" + row.info.verdict, row.info.verdict.replace("_", " ")));
      li.appendChild(meta);
    } else if (!row.failure) {
      li.appendChild(el("p", "hint", "Checking…"));
    }
    if (row.error) { li.appendChild(el("p", "item-error-text form-error", row.error)); }
    if (row.done) { li.appendChild(el("p", "item-done-text", "Recorded: " + row.done)); }
    count.textContent = String(rows.length);
  }

  function removeRow(row) {
    rows = rows.filter(function (r) { return r !== row; });
    row.li.remove();
    count.textContent = String(rows.length);
  }

  function addCode(raw) {
    raw = (raw || "").trim();
    if (!raw) { return Promise.resolve(null); }
    submitResult.hidden = true;
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

  /* [{statement, rows}] for the current list and mode. */
  function build(ready) {
    var byKey = {};
    ready.forEach(function (r) { byKey[r.info.key] = r.info; });
    var keys = ready.map(function (r) { return r.info.key; });
    var m = mode();
    if (m === "ship") {
      var to = document.getElementById("ship-to").value;
      if (!to) { throw new Error("Choose who you are shipping to."); }
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

  function submit() {
    showError(null);
    submitResult.hidden = true;
    var pending = rows.filter(function (r) { return !r.done; });
    if (!pending.length) { showError("Scan at least one code first."); return; }
    pending.forEach(render);
    var bad = pending.filter(function (r) { return r.error || !r.info; });
    if (bad.length) { showError("Remove or fix the " + bad.length + " item(s) marked in red first."); return; }
    submitButton.disabled = true;
    var batch;
    W.approvedDevice(page.getAttribute("data-approved")).then(function (state) {
      if (!state.device) { throw new Error("This browser has no signing key: create one on the Device page."); }
      if (!state.approved) { throw new Error("This browser's key " + state.device.keyid + " is not approved yet."); }
      return build(pending).then(function (b) {
        batch = b;
        return Promise.all(batch.map(function (x) { return W.signStatement(x.statement, state.device); }));
      });
    }).then(function (envelopes) {
      return W.postJson(submitUrl, { envelopes: envelopes });
    }).then(function (doc) {
      var ok = 0;
      doc.results.forEach(function (result, i) {
        batch[i].rows.forEach(function (r) {
          if (result.error) {
            r.failure = result.error.message;
          } else {
            r.done = batch[i].statement.type + " " + result.event_id.slice(0, 19) + "…";
          }
          render(r);
        });
        if (!result.error) { ok++; }
      });
      if (ok) {
        submitResult.hidden = false;
        submitResult.textContent = "Signed and recorded " + ok + " statement" + (ok === 1 ? "" : "s") + ".";
      }
      if (ok < doc.results.length) { showError("Some statements were refused: see the items marked in red."); }
    }).catch(function (err) {
      showError(err.message || String(err));
    }).then(function () {
      submitButton.disabled = false;
    });
  }

  function syncMode() {
    var m = mode();
    document.getElementById("ship-fields").hidden = m !== "ship";
    document.getElementById("aggregate-fields").hidden = m !== "aggregate";
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
      cameraState.textContent = "No camera: " + (err.message || err.name) + " You can type codes below.";
    });
  });

  /* The one entry point for every decoded or typed code (tests inject codes here too). */
  W.onScannedCode = function (code) { return addCode(code); };
  W.handoff = { rows: function () { return rows; }, submit: submit };

  syncMode();
  W.warnUnlessApproved(page.getAttribute("data-approved"), "/account");
})();
