/* The widget's map picker: Leaflet within the city's bounds; a click (or an address found by the city's
 * geocoder) places the pin; "send" posts the point to the panel that opened this page, and only to the
 * origin the server checked against WIDGET_ORIGINS. */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("config").textContent);
  var T = JSON.parse(document.getElementById("texts").textContent);
  var token = decodeURIComponent((location.hash.match(/[#&]t=([^&]*)/) || [])[1] || "");
  var lang = document.documentElement.lang;
  var bounds = L.latLngBounds(config.bounds);
  var map = L.map("map", { maxBounds: bounds.pad(0.5), maxBoundsViscosity: 0.8 });
  map.fitBounds(bounds);
  L.tileLayer(config.tiles, { maxZoom: 19, attribution: "&copy; OpenStreetMap" }).addTo(map);
  var marker = null;
  var hint = document.getElementById("hint");

  function place(latlng) {
    if (marker) marker.setLatLng(latlng);
    else marker = L.marker(latlng).addTo(map);
    hint.textContent = latlng.lat.toFixed(5) + ", " + latlng.lng.toFixed(5);
  }
  map.on("click", function (e) { place(e.latlng); });

  function post(message) { if (config.parent) window.parent.postMessage(message, config.parent); }
  function closeApp() {
    if (window.TelegramWebviewProxy) window.TelegramWebviewProxy.postEvent("web_app_close", "{}");
  }
  function launchData() {
    if (config.app === "telegram") return new URLSearchParams(location.hash.slice(1)).get("tgWebAppData") || "";
    return location.search.slice(1);
  }
  function sendToBot(at) {
    var id = Array.prototype.map.call(crypto.getRandomValues(new Uint8Array(12)), function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
    fetch("/widget/api/webapp/point", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Widget": "1", "X-Widget-Lang": lang },
      body: JSON.stringify({ id: id, platform: config.app, data: launchData(), lat: at.lat, lon: at.lng })
    })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (answer) {
        hint.textContent = answer.ok ? T.map_sent : answer.body.message || T.network;
        if (answer.ok) setTimeout(closeApp, 800);
      })
      .catch(function () { hint.textContent = T.network; });
  }
  document.getElementById("confirm").addEventListener("click", function () {
    if (!marker) { hint.textContent = T.map_no_point; return; }
    var at = marker.getLatLng();
    if (config.app) sendToBot(at);
    else post({ type: "otklik-point", lat: at.lat, lon: at.lng });
  });
  document.getElementById("cancel").addEventListener("click", function () {
    if (config.app) closeApp();
    else post({ type: "otklik-map-close" });
  });

  var results = document.getElementById("results");
  document.getElementById("search").addEventListener("submit", function (e) {
    e.preventDefault();
    var query = document.getElementById("query").value.trim();
    if (query.length < 2) return;
    results.textContent = "";
    fetch("/widget/api/geocode?q=" + encodeURIComponent(query), {
      headers: { "X-Widget": "1", "X-Widget-Token": token, "X-Widget-Lang": lang }
    })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (answer) {
        if (!answer.ok) { hint.textContent = answer.body.message || ""; return; }
        if (!answer.body.places.length) { hint.textContent = T.map_nothing; return; }
        answer.body.places.forEach(function (found) {
          var button = document.createElement("button");
          button.type = "button";
          button.textContent = found.label;
          button.addEventListener("click", function () {
            var at = L.latLng(found.lat, found.lon);
            map.setView(at, 17);
            place(at);
            results.textContent = "";
          });
          results.appendChild(button);
        });
      })
      .catch(function () { hint.textContent = T.network; });
  });
})();
