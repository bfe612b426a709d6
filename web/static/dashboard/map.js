// The city's map: asks the server only for the tickets in view (bbox), follows the page's filters, and draws
// circle markers (vectors: they show even when no tile loads) coloured by status, overdue ones outlined red.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("map-config").textContent);
  var map = L.map("map", { preferCanvas: false });
  map.fitBounds(config.bounds);
  L.tileLayer(config.tiles, { maxZoom: 19, attribution: config.attribution }).addTo(map);
  var cluster = L.markerClusterGroup({ chunkedLoading: true, showCoverageOnHover: false });
  map.addLayer(cluster);
  // The heat layer: each report a faint disc of ~150 m; where they pile up the colour deepens.
  var heat = L.layerGroup();
  if (config.layers) {
    var overlays = {};
    overlays[config.layers.markers] = cluster;
    overlays[config.layers.heat] = heat;
    L.control.layers(null, overlays, { collapsed: false }).addTo(map);
  }
  var pending = null;
  var generation = 0;

  function popup(p) {
    var box = document.createElement("div");
    var link = document.createElement(config.link === false ? "strong" : "a");
    if (config.link !== false) link.href = "/web/tickets/" + p.number;
    link.textContent = "№ " + p.number + " · " + p.category;
    box.appendChild(link);
    [p.address, p.status_name, p.organisation, p.created].forEach(function (text) {
      if (!text) return;
      var line = document.createElement("div");
      line.textContent = text; // text, never HTML: addresses come from residents
      box.appendChild(line);
    });
    return box;
  }

  function load() {
    var mine = ++generation;
    if (pending) pending.abort();
    pending = new AbortController();
    var url = config.data + (config.data.indexOf("?") >= 0 ? "&" : "?") + "bbox=" + map.getBounds().toBBoxString();
    fetch(url, { signal: pending.signal, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (doc) {
        if (mine !== generation) return;
        cluster.clearLayers();
        var markers = doc.features.map(function (f) {
          var p = f.properties;
          var c = f.geometry.coordinates;
          var marker = L.circleMarker([c[1], c[0]], {
            radius: p.overdue ? 9 : 7,
            color: p.overdue ? "#dc3545" : "#ffffff",
            weight: p.overdue ? 3 : 1.5,
            fillColor: config.colours[p.status] || "#333",
            fillOpacity: 0.9,
            className: "ticket-marker status-" + p.status + (p.overdue ? " overdue" : ""),
          });
          marker.bindPopup(function () { return popup(p); });
          marker.options.number = p.number;
          return marker;
        });
        cluster.addLayers(markers);
        heat.clearLayers();
        doc.features.forEach(function (f) {
          var c = f.geometry.coordinates;
          L.circle([c[1], c[0]], { radius: 150, stroke: false, fillColor: "#dc3545", fillOpacity: 0.12, interactive: false }).addTo(heat);
        });
        var holder = document.getElementById("map");
        holder.dataset.markers = String(markers.length);
        holder.dataset.truncated = String(doc.truncated);
      })
      .catch(function (err) { if (err.name !== "AbortError") console.error(err); });
  }

  map.on("moveend", load);
  load();
})();
