/* Camera scanning: frames from getUserMedia, decoded by the native BarcodeDetector where the browser has one
 * for QR codes (Android, macOS, ChromeOS), else by the vendored ZXing library (vendor/zxing). Every decoded
 * text goes through one function, Waybill.scanner.deliver(text), which hands it to the page's handler
 * (Waybill.onScannedCode) — the same path a typed code takes. */
(function () {
  "use strict";
  var W = (window.Waybill = window.Waybill || {});
  var INTERVAL_MS = 200;
  var REPEAT_MS = 3000;  // the same code seen again within this time is the same scan
  var stream = null;
  var timer = null;
  var lastText = null;
  var lastAt = 0;
  var canvas = document.createElement("canvas");
  var nativeDetector = null;
  var zxingReader = null;

  function deliver(text, source) {
    if (typeof text !== "string" || !text) { return false; }
    var now = Date.now();
    if (source === "camera" && text === lastText && now - lastAt < REPEAT_MS) { return false; }
    lastText = text;
    lastAt = now;
    if (typeof W.onScannedCode === "function") { W.onScannedCode(text, source || "camera"); }
    return true;
  }

  var PROBE_MS = 1500;  // getSupportedFormats can answer late or never (no shape-detection service): use ZXing

  function withTimeout(promise, ms) {
    return Promise.race([promise, new Promise(function (resolve) {
      window.setTimeout(function () { resolve([]); }, ms);
    })]);
  }

  var probed = false;

  function setupDecoders() {
    if ("BarcodeDetector" in window && !probed) {
      probed = true;  // once per page: a browser that did not answer in time will not later
      return withTimeout(window.BarcodeDetector.getSupportedFormats(), PROBE_MS).then(function (formats) {
        if (formats.indexOf("qr_code") >= 0) {
          nativeDetector = new window.BarcodeDetector({ formats: formats.filter(function (f) {
            return ["qr_code", "data_matrix", "code_128"].indexOf(f) >= 0; }) });
        }
      }).catch(function () { nativeDetector = null; });
    }
    return Promise.resolve();
  }

  function zxing() {
    if (!zxingReader && window.ZXing) {
      var Z = window.ZXing;
      zxingReader = new Z.MultiFormatReader();
      var hints = new Map();
      hints.set(Z.DecodeHintType.POSSIBLE_FORMATS, [Z.BarcodeFormat.QR_CODE, Z.BarcodeFormat.DATA_MATRIX,
                                                    Z.BarcodeFormat.CODE_128]);
      hints.set(Z.DecodeHintType.TRY_HARDER, true);
      zxingReader.setHints(hints);
    }
    return zxingReader;
  }

  function grab(video) {
    var w = video.videoWidth, h = video.videoHeight;
    if (!w || !h) { return null; }
    var scale = Math.min(1, 800 / Math.max(w, h));
    canvas.width = Math.round(w * scale);
    canvas.height = Math.round(h * scale);
    var ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
    return canvas;
  }

  function decodeFrame(video) {
    if (nativeDetector) {
      return nativeDetector.detect(video).then(function (codes) {
        return codes.map(function (c) { return c.rawValue; });
      });
    }
    var reader = zxing();
    var frame = reader && grab(video);
    if (!frame) { return Promise.resolve([]); }
    var Z = window.ZXing;
    try {
      var bitmap = new Z.BinaryBitmap(new Z.HybridBinarizer(new Z.HTMLCanvasElementLuminanceSource(frame)));
      return Promise.resolve([reader.decodeWithState(bitmap).getText()]);
    } catch (e) {
      return Promise.resolve([]);  // no code in this frame
    } finally {
      reader.reset();
    }
  }

  function loop(video, onState) {
    timer = window.setTimeout(function () {
      if (!stream) { return; }
      decodeFrame(video).then(function (texts) {
        texts.forEach(function (t) { deliver(t, "camera"); });
      }).catch(function () { /* a bad frame: try the next */ }).then(function () {
        if (stream) { loop(video, onState); }
      });
    }, INTERVAL_MS);
  }

  function start(video, onState) {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return Promise.reject(new Error("This browser cannot use the camera here (it needs HTTPS)."));
    }
    return setupDecoders().then(function () {
      if (!nativeDetector && !window.ZXing) { throw new Error("No barcode decoder is available in this browser."); }
      return navigator.mediaDevices.getUserMedia({ video: { facingMode: { ideal: "environment" } }, audio: false });
    }).then(function (s) {
      stream = s;
      video.srcObject = s;
      video.hidden = false;
      return video.play();
    }).then(function () {
      if (onState) { onState(nativeDetector ? "native" : "zxing"); }
      loop(video, onState);
    });
  }

  function stop(video) {
    if (timer) { window.clearTimeout(timer); timer = null; }
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
    if (video) { video.srcObject = null; video.hidden = true; }
  }

  W.scanner = { start: start, stop: stop, deliver: deliver, running: function () { return !!stream; } };
})();
