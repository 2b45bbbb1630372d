/* Small Leaflet maps for the registry: the district and street boundaries (no tiles needed,
 * so it works offline), a venue marker, and click-to-place on the venue form.
 * All text goes into the DOM as text nodes, never as HTML. */
(function () {
  "use strict";

  function readJSON(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function label(text) {
    var span = document.createElement("span");
    span.textContent = text;
    return span;
  }

  function drawRegion(map, region, approxText) {
    var layer = L.geoJSON(region, {
      style: function (f) {
        return f.properties.level === "district"
          ? { color: "#c62828", weight: 2, fillColor: "#ffebee", fillOpacity: 0.35 }
          : { color: "#607d8b", weight: 1, dashArray: "4 4", fill: false };
      },
      onEachFeature: function (f, lyr) {
        if (f.properties.level === "street") {
          var name = f.properties.name + (f.properties.approximate ? " (" + approxText + ")" : "");
          lyr.bindTooltip(label(name), { permanent: true, direction: "center", className: "street-label" });
        }
      },
    }).addTo(map);
    if (layer.getBounds().isValid()) {
      map.fitBounds(layer.getBounds(), { padding: [8, 8], animate: false });
    }
    return layer;
  }

  function makeMap(el) {
    var map = L.map(el, { zoomSnap: 0.25, attributionControl: false });
    map.setView([32.2, 119.42], 12);
    L.control.scale({ imperial: false }).addTo(map);
    return map;
  }

  function pointStyle() {
    return { radius: 8, color: "#b71c1c", weight: 2, fillColor: "#ef5350", fillOpacity: 0.9 };
  }

  window.MapService = window.MapService || {};
  // Maps by element id, so scripts (and browser tests) can ask Leaflet where a place is.
  window.MapService.maps = {};

  window.MapService.venueMap = function (elId) {
    var el = document.getElementById(elId);
    if (!el) return;
    var map = makeMap(el);
    window.MapService.maps[elId] = map;
    drawRegion(map, readJSON("region-data"), el.dataset.approx || "approx.");
    var venues = readJSON("venue-data");
    if (venues && venues.features.length) {
      var layer = L.geoJSON(venues, {
        pointToLayer: function (f, latlng) { return L.circleMarker(latlng, pointStyle()); },
      }).addTo(map);
      map.setView(layer.getBounds().getCenter(), 15, { animate: false });
    }
  };

  window.MapService.pickerMap = function (elId) {
    var el = document.getElementById(elId);
    if (!el) return;
    var lon = document.getElementById("lon");
    var lat = document.getElementById("lat");
    var crs = document.getElementById("crs");
    var map = makeMap(el);
    window.MapService.maps[elId] = map;
    drawRegion(map, readJSON("region-data"), el.dataset.approx || "approx.");
    var marker = null;
    function place(latlng) {
      if (marker) { marker.setLatLng(latlng); }
      else { marker = L.circleMarker(latlng, pointStyle()).addTo(map); }
    }
    if (lon.value && lat.value && crs.value === "wgs84") {
      place(L.latLng(parseFloat(lat.value), parseFloat(lon.value)));
    }
    map.on("click", function (e) {
      lon.value = e.latlng.lng.toFixed(6);
      lat.value = e.latlng.lat.toFixed(6);
      crs.value = "wgs84";
      place(e.latlng);
      el.dataset.picked = lon.value + "," + lat.value;
    });
  };
  // Start the maps a page asks for with data-map (no inline script: the CSP forbids it).
  function start() {
    document.querySelectorAll("[data-map=picker]").forEach(function (el) {
      window.MapService.pickerMap(el.id);
    });
    document.querySelectorAll("[data-map=venue]").forEach(function (el) {
      window.MapService.venueMap(el.id);
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
