/* otklik: the city's chat widget. Embed with one line:
 *   <script src="https://bot.city.ru/widget.js" async></script>
 * Optional attributes: data-lang="ru|en" (default: the page's <html lang>), data-mode="page" (a full-page
 * panel, as /chat uses). Everything is drawn in a shadow root, so the page's CSS cannot reach it and its CSS
 * cannot reach the page. The resident's token is an HttpOnly cookie, and the same token in this page's
 * localStorage, sent as a header where third-party cookies are blocked. */
(function () {
  "use strict";
  var UI = {{ ui }};
  var MAX_PHOTOS = {{ max_photos }};
  var MAX_SIDE = 2560;
  var script = document.currentScript;
  if (!script || window.__otklikWidget) return;
  window.__otklikWidget = true;
  var BASE = new URL(script.src, location.href).origin;
  var MODE = script.getAttribute("data-mode") === "page" ? "page" : "embed";
  var lang = pickLang(script.getAttribute("data-lang") || document.documentElement.lang || navigator.language);
  var T = UI[lang];
  var KEY = "otklik-widget:" + BASE;
  var state = loadState();
  var open = MODE === "page";
  var els = {};

  function pickLang(value) {
    var code = String(value || "").slice(0, 2).toLowerCase();
    return UI[code] ? code : "ru";
  }
  function loadState() {
    try {
      var saved = JSON.parse(localStorage.getItem(KEY) || "{}");
      return { token: saved.token || "", lastId: saved.lastId || 0, log: saved.log || [] };
    } catch (e) {
      return { token: "", lastId: 0, log: [] };
    }
  }
  function saveState() {
    state.log = state.log.slice(-80);
    try { localStorage.setItem(KEY, JSON.stringify(state)); } catch (e) { /* storage full or blocked */ }
  }
  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var a = new Uint8Array(16);
    crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function headers(json) {
    var h = { "X-Widget": "1", "X-Widget-Lang": lang };
    if (state.token) h["X-Widget-Token"] = state.token;
    if (json) h["Content-Type"] = "application/json";
    return h;
  }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text != null) node.textContent = text;
    return node;
  }

  var CSS = [
    ":host{all:initial !important;position:fixed !important;right:20px !important;bottom:20px !important;",
    "z-index:2147483000 !important;display:block !important;font:15px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif !important;color:#1d2430 !important}",
    ":host(.page){position:fixed !important;inset:0 !important;right:0 !important;bottom:0 !important}",
    "*{box-sizing:border-box}",
    ".launcher{all:unset;cursor:pointer;width:60px;height:60px;border-radius:50%;background:#1f6feb;color:#fff;",
    "display:flex;align-items:center;justify-content:center;font-size:28px;box-shadow:0 4px 14px rgba(0,0,0,.25);position:relative}",
    ".badge{position:absolute;top:-4px;right:-4px;min-width:22px;height:22px;border-radius:11px;background:#d1242f;color:#fff;",
    "font-size:13px;font-weight:700;display:flex;align-items:center;justify-content:center;padding:0 6px}",
    ".badge[hidden],.panel[hidden],.launcher[hidden],.overlay[hidden]{display:none}",
    ".panel{width:370px;max-width:calc(100vw - 40px);height:560px;max-height:calc(100vh - 40px);background:#fff;border-radius:14px;",
    "box-shadow:0 8px 30px rgba(0,0,0,.3);display:flex;flex-direction:column;overflow:hidden;position:relative}",
    ":host(.page) .panel{width:100%;height:100%;max-width:none;max-height:none;border-radius:0;box-shadow:none}",
    ".head{background:#1f6feb;color:#fff;padding:12px 14px;display:flex;align-items:center;justify-content:space-between;font-weight:600}",
    ".head button{all:unset;cursor:pointer;font-size:20px;padding:0 4px;color:#fff}",
    ".log{flex:1;overflow-y:auto;padding:12px;background:#f4f6f9;display:flex;flex-direction:column;gap:8px}",
    ".msg{max-width:85%;padding:8px 11px;border-radius:12px;white-space:pre-wrap;overflow-wrap:anywhere;color:#1d2430}",
    ".bot{background:#fff;align-self:flex-start;border:1px solid #dde3ea}",
    ".me{background:#d7e8ff;align-self:flex-end}",
    ".error{background:#ffe9e9;align-self:center;color:#8a1010;font-size:14px}",
    ".buttons{display:flex;flex-direction:column;gap:4px;margin-top:6px}",
    ".row{display:flex;gap:4px;flex-wrap:wrap}",
    ".choice{all:unset;cursor:pointer;flex:1;text-align:center;padding:7px 8px;border:1px solid #1f6feb;color:#1f6feb;border-radius:8px;background:#fff;font-size:14px}",
    ".choice:hover{background:#eef4ff}",
    ".msg img{display:block;max-width:100%;border-radius:8px;margin-top:6px}",
    ".form{display:flex;gap:6px;padding:8px;border-top:1px solid #dde3ea;background:#fff;align-items:flex-end}",
    ".text{flex:1;resize:none;border:1px solid #c9d1da;border-radius:8px;padding:8px;font:inherit;color:#1d2430;background:#fff;min-height:38px;max-height:120px}",
    ".icon{all:unset;cursor:pointer;padding:8px 10px;border-radius:8px;background:#1f6feb;color:#fff;font-size:15px}",
    ".attach{background:#eef1f5;color:#1d2430}",
    ".file{display:none}",
    ".overlay{position:absolute;inset:0;background:#fff;display:flex;flex-direction:column}",
    ".overlay iframe{flex:1;border:0;width:100%}"
  ].join("");

  function build() {
    var host = document.createElement("otklik-widget");
    if (MODE === "page") host.className = "page";
    var root = host.attachShadow({ mode: "open" });
    var style = el("style");
    style.textContent = CSS;
    root.appendChild(style);

    els.launcher = el("button", "launcher", "💬");
    els.launcher.setAttribute("aria-label", T.open);
    els.launcher.title = T.open;
    els.badge = el("span", "badge");
    els.badge.hidden = true;
    els.badge.setAttribute("aria-label", T.unread);
    els.launcher.appendChild(els.badge);
    els.launcher.addEventListener("click", function () { setOpen(true); });

    els.panel = el("section", "panel");
    els.panel.setAttribute("aria-label", T.title);
    var head = el("div", "head");
    head.appendChild(el("span", "title", T.title));
    if (MODE !== "page") {
      var close = el("button", "close", "×");
      close.setAttribute("aria-label", T.close);
      close.addEventListener("click", function () { setOpen(false); });
      head.appendChild(close);
    }
    els.log = el("div", "log");
    els.log.setAttribute("aria-live", "polite");
    var form = el("form", "form");
    els.file = el("input", "file");
    els.file.type = "file";
    els.file.accept = "image/*";
    els.file.multiple = true;
    var attach = el("button", "icon attach", "📎");
    attach.type = "button";
    attach.title = T.attach;
    attach.setAttribute("aria-label", T.attach);
    attach.addEventListener("click", function () { els.file.click(); });
    els.file.addEventListener("change", function () {
      var files = Array.prototype.slice.call(els.file.files || [], 0, MAX_PHOTOS);
      els.file.value = "";
      if (files.length) sendPhotos(files);
    });
    els.text = el("textarea", "text");
    els.text.rows = 1;
    els.text.placeholder = T.placeholder;
    els.text.setAttribute("aria-label", T.placeholder);
    els.text.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); submitText(); }
    });
    var send = el("button", "icon send", "➤");
    send.type = "submit";
    send.title = T.send;
    send.setAttribute("aria-label", T.send);
    form.addEventListener("submit", function (e) { e.preventDefault(); submitText(); });
    form.appendChild(attach);
    form.appendChild(els.file);
    form.appendChild(els.text);
    form.appendChild(send);
    els.overlay = el("div", "overlay");
    els.overlay.hidden = true;
    els.panel.appendChild(head);
    els.panel.appendChild(els.log);
    els.panel.appendChild(form);
    els.panel.appendChild(els.overlay);

    root.appendChild(els.launcher);
    root.appendChild(els.panel);
    (document.body || document.documentElement).appendChild(host);
    setOpen(open);
    state.log.forEach(function (entry) { draw(entry); });
    scrollDown();
  }

  function setOpen(value) {
    open = value;
    els.panel.hidden = !open;
    els.launcher.hidden = open;
    if (open) {
      markRead();
      setTimeout(function () { els.text.focus(); }, 0);
      scrollDown();
    }
  }
  function setBadge(count) {
    els.badge.textContent = count > 99 ? "99+" : String(count);
    els.badge.hidden = open || !count;
  }
  function scrollDown() { els.log.scrollTop = els.log.scrollHeight; }

  // --- drawing ---------------------------------------------------------------------------------------------
  function record(entry) {
    state.log.push(entry);
    saveState();
    draw(entry);
    scrollDown();
  }
  function draw(entry) {
    if (entry.who === "me") { els.log.appendChild(el("div", "msg me", entry.text)); return; }
    if (entry.who === "error") { els.log.appendChild(el("div", "msg error", entry.text)); return; }
    var reply = entry.reply;
    var box = el("div", "msg bot", reply.text || "");
    if (entry.inbox) box.setAttribute("data-inbox", String(entry.inbox));
    (reply.photos || []).forEach(function (url) {
      var img = el("img");
      img.alt = "";
      box.appendChild(img);
      fetch(BASE + url, { headers: headers(false), credentials: "include" })
        .then(function (r) { return r.ok ? r.blob() : null; })
        .then(function (blob) { if (blob) img.src = URL.createObjectURL(blob); })
        .catch(function () {});
    });
    if (reply.location) {
      box.appendChild(el("div", "pin", "📍 " + reply.location.lat.toFixed(5) + ", " + reply.location.lon.toFixed(5)));
    }
    var rows = (reply.buttons || []).slice();
    var extra = [];
    if (reply.ask_location) {
      extra.push({ label: T.map, action: openMap });
      if (navigator.geolocation) extra.push({ label: T.my_location, action: useMyLocation });
    }
    if (rows.length || extra.length) {
      var buttons = el("div", "buttons");
      if (extra.length) buttons.appendChild(makeRow(extra));
      rows.forEach(function (row) { buttons.appendChild(makeRow(row)); });
      box.appendChild(buttons);
    }
    els.log.appendChild(box);
  }
  function makeRow(row) {
    var line = el("div", "row");
    row.forEach(function (b) {
      var button = el("button", "choice", b.label);
      button.type = "button";
      if (b.data != null) button.setAttribute("data-data", b.data);
      button.addEventListener("click", function () {
        if (b.action) { b.action(); return; }
        act({ kind: "button", data: b.data }, b.label);
      });
      line.appendChild(button);
    });
    return line;
  }
  function showReplies(replies) {
    (replies || []).forEach(function (reply) { record({ who: "bot", reply: reply }); });
  }
  function showError(text) { record({ who: "error", text: text }); }

  // --- talking to the server -------------------------------------------------------------------------------
  function call(path, options, tries) {
    return fetch(BASE + path, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (response.status === 503 && tries > 0) {
          return new Promise(function (ok) { setTimeout(ok, 1000); }).then(function () { return call(path, options, tries - 1); });
        }
        if (!response.ok) throw { message: body.message || T.network, status: response.status };
        return body;
      });
    }, function () { throw { message: T.network }; });
  }
  function post(path, body) {
    return call(path, { method: "POST", headers: headers(true), credentials: "include", body: JSON.stringify(body) }, 2);
  }
  function act(action, shown) {
    action.id = newId();
    action.lang = lang;
    if (shown) record({ who: "me", text: shown });
    return post("/widget/api/send", action).then(function (body) { showReplies(body.replies); }, function (err) { showError(err.message); });
  }
  function submitText() {
    var text = els.text.value;
    if (!text.trim()) return;
    els.text.value = "";
    act({ kind: "text", text: text }, text.length > 600 ? text.slice(0, 600) + "…" : text);
  }
  function sendLocation(lat, lon) {
    act({ kind: "location", lat: lat, lon: lon }, "📍 " + lat.toFixed(5) + ", " + lon.toFixed(5));
  }
  function useMyLocation() {
    navigator.geolocation.getCurrentPosition(
      function (pos) { sendLocation(pos.coords.latitude, pos.coords.longitude); },
      function () { showError(T.geo_failed); },
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 }
    );
  }

  // --- the map picker: our own page in a frame; it posts the chosen point back ---------------------------
  function openMap() {
    var frame = el("iframe");
    frame.title = T.map_title;
    frame.src = BASE + "/widget/map?lang=" + lang + "&origin=" + encodeURIComponent(location.origin) +
      "#t=" + encodeURIComponent(state.token);
    els.overlay.textContent = "";
    els.overlay.appendChild(frame);
    els.overlay.hidden = false;
    els.frame = frame;
  }
  function closeMap() {
    els.overlay.hidden = true;
    els.overlay.textContent = "";
    els.frame = null;
  }
  window.addEventListener("message", function (event) {
    if (event.origin !== BASE || !els.frame || event.source !== els.frame.contentWindow) return;
    var data = event.data || {};
    if (data.type === "otklik-point" && isFinite(data.lat) && isFinite(data.lon)) {
      closeMap();
      sendLocation(Number(data.lat), Number(data.lon));
    } else if (data.type === "otklik-map-close") {
      closeMap();
    }
  });

  // --- photos: downscaled here, checked again by the server -------------------------------------------------
  function shrink(file) {
    if (!window.createImageBitmap) return Promise.resolve(file);
    return createImageBitmap(file).then(function (bitmap) {
      var scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
      var canvas = document.createElement("canvas");
      canvas.width = Math.max(1, Math.round(bitmap.width * scale));
      canvas.height = Math.max(1, Math.round(bitmap.height * scale));
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      if (bitmap.close) bitmap.close();
      return new Promise(function (ok) {
        canvas.toBlob(function (blob) { ok(blob || file); }, "image/jpeg", 0.85);
      });
    }, function () { return file; });  // not decodable here: the server says what is wrong with it
  }
  function sendPhotos(files) {
    record({ who: "me", text: "📷 × " + files.length });
    Promise.all(files.map(shrink)).then(function (blobs) {
      var form = new FormData();
      form.append("id", newId());
      blobs.forEach(function (blob, i) { form.append("photo", blob, "photo-" + (i + 1) + ".jpg"); });
      return call("/widget/api/photos", { method: "POST", headers: headers(false), credentials: "include", body: form }, 2);
    }).then(function (body) { showReplies(body.replies); }, function (err) { showError(err.message); });
  }

  // --- live messages: Server-Sent Events read through fetch (so the token can ride in a header) -------------
  function markRead() {
    if (!state.lastId || !state.token) { setBadge(0); return; }
    post("/widget/api/read", { up_to: state.lastId }).then(function (body) { setBadge(body.unread || 0); }, function () {});
  }
  function onEvent(chunk) {
    var data = "";
    chunk.split("\n").forEach(function (line) { if (line.indexOf("data: ") === 0) data += line.slice(6); });
    if (!data) return;
    var event = JSON.parse(data);
    if (event.id <= state.lastId) return;
    state.lastId = event.id;
    record({ who: "bot", reply: event.reply, inbox: event.id });
    if (open) markRead(); else setBadge(event.unread);
  }
  function stream() {
    var again = function () { setTimeout(stream, 3000); };
    fetch(BASE + "/widget/api/events?after=" + state.lastId, { headers: headers(false), credentials: "include" })
      .then(function (response) {
        if (response.status === 401 || !response.body) return;
        if (!response.ok) { again(); return; }
        var reader = response.body.getReader();
        var decoder = new TextDecoder();
        var buffer = "";
        function pump() {
          return reader.read().then(function (part) {
            if (part.done) { again(); return; }
            buffer += decoder.decode(part.value, { stream: true });
            var at;
            while ((at = buffer.indexOf("\n\n")) >= 0) {
              onEvent(buffer.slice(0, at));
              buffer = buffer.slice(at + 2);
            }
            return pump();
          });
        }
        return pump();
      })
      .catch(again);
  }

  function start() {
    build();
    post("/widget/api/session", { lang: lang }).then(function (body) {
      if (body.token !== state.token) {
        state.token = body.token;
        state.lastId = 0;
        state.log = [];
        els.log.textContent = "";
      }
      saveState();
      showReplies(body.replies);
      setBadge(body.unread || 0);
      if (open) markRead();
      stream();
    }, function (err) { showError(err.message); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
