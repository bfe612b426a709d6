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

  function post(message) { window.parent.postMessage(message, config.parent); }
  document.getElementById("confirm").addEventListener("click", function () {
    if (!marker) { hint.textContent = T.map_no_point; return; }
    var at = marker.getLatLng();
    post({ type: "otklik-point", lat: at.lat, lon: at.lng });
  });
  document.getElementById("cancel").addEventListener("click", function () { post({ type: "otklik-map-close" }); });

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
