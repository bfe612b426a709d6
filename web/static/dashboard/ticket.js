// A small map with the ticket's point; a circle marker, so it shows without tiles too.
(function () {
  "use strict";
  var p = JSON.parse(document.getElementById("point-config").textContent);
  var map = L.map("point", { scrollWheelZoom: false }).setView([p.lat, p.lon], 16);
  L.tileLayer(p.tiles, { maxZoom: 19, attribution: p.attribution }).addTo(map);
  L.circleMarker([p.lat, p.lon], { radius: 9, color: "#fff", weight: 2, fillColor: p.colour, fillOpacity: 0.9 }).addTo(map);
})();
