/* The one map page (一张图) around the folium-built map (mapservice.maps.one_map; its venue
 * layer is mapservice/maps/static/venue-layer.js, published as MapService.oneMap): the list of
 * matches and its sort, the count, the circle of the filter's radius, the located position for
 * distances, the filter form's "Me" and "Pick" helpers and the messages under the map.
 *
 * Every piece of venue text goes into the DOM with textContent: never innerHTML. */
(function () {
  "use strict";

  var cfg = JSON.parse(document.getElementById("map-config").textContent);
  var T = cfg.labels;
  var LIST_LIMIT = 300;
  var api = window.MapService && window.MapService.oneMap;
  if (!api) return;
  var map = api.map;
  var state = api.state;
  var wrapper = document.getElementById("one-map");

  var el = window.MapService.dom.el;  // mapservice/maps/static/dom.js
  var fmt = window.MapService.dom.fmt;

  function message(text) {
    document.getElementById("map-message").textContent = text || "";
  }

  var typeInfo = {};
  cfg.types.forEach(function (t) { typeInfo[t.key] = t; });

  // ---- the located position (leaflet.locatecontrol fires the map's locationfound) ---------
  var located = null;
  map.on("locationfound", function (e) {
    located = e.latlng;
    renderList();
  });
  map.on("locationerror", function () { message(T.locateFailed); });

  // ---- the list ---------------------------------------------------------------------
  function refPoint() {
    if (state.near) return state.near; // [lon, lat] of the filter, in the display CRS
    if (located) return [located.lng, located.lat];
    return null;
  }

  function isShown(f) {
    return !state.hiddenTypes[f.t] && !state.hiddenUnits[f.u];
  }

  function renderList() {
    var list = document.getElementById("venue-list");
    var more = document.getElementById("venue-list-more");
    var shown = state.features.filter(isShown);
    var ref = refPoint();
    var byDistance = document.getElementById("venue-sort").value === "distance" && ref;
    var items = shown.map(function (f) {
      return { f: f, d: ref ? MapService.haversineKm(ref[0], ref[1], f.x, f.y) : null };
    });
    if (byDistance) {
      items.sort(function (a, b) { return a.d - b.d || a.f.i - b.f.i; });
    }
    list.replaceChildren();
    items.slice(0, LIST_LIMIT).forEach(function (it) {
      var p = it.f;
      var li = el("li", "venue-item");
      li.dataset.venueId = String(p.i);
      li.tabIndex = 0;
      var name = el("div", "venue-item-name fw-semibold");
      name.appendChild(el("span", "type-swatch vt-" + (typeInfo[p.t] || typeInfo.other).key));
      name.appendChild(document.createTextNode(p.n));
      li.appendChild(name);
      var meta = (typeInfo[p.t] || typeInfo.other).label + " · " + (state.units[p.u] || "");
      if (it.d !== null) meta += " · " + it.d.toFixed(2) + " " + T.km;
      li.appendChild(el("div", "small text-muted", meta));
      li.addEventListener("click", function () { openFromList(p.i); });
      li.addEventListener("keydown", function (e) { if (e.key === "Enter") openFromList(p.i); });
      list.appendChild(li);
    });
    document.getElementById("venue-count").textContent = shown.length
      ? fmt(T.shown, { shown: shown.length, total: state.features.length })
      : T.none;
    more.textContent = items.length > LIST_LIMIT ? fmt(T.more, { n: items.length - LIST_LIMIT }) : "";
  }
  document.getElementById("venue-sort").addEventListener("change", renderList);

  // From the list the map is first scrolled into view: on a phone the list lies below the
  // map, which is off-screen when an entry is tapped.
  function openFromList(id) {
    revealMap();
    api.openVenue(id);
  }

  function revealMap() {
    var r = wrapper.getBoundingClientRect();
    var viewHeight = window.innerHeight || document.documentElement.clientHeight;
    if (r.top >= 0 && r.bottom <= viewHeight) return;
    wrapper.scrollIntoView({ block: r.height <= viewHeight ? "nearest" : "start", behavior: "instant" });
  }

  // ---- the filter's radius ------------------------------------------------------------
  var nearLayer = L.layerGroup().addTo(map);
  function drawNear() {
    nearLayer.clearLayers();
    if (state.near && cfg.radiusKm) {
      L.circle([state.near[1], state.near[0]], { radius: cfg.radiusKm * 1000, weight: 1,
        color: "#1565c0", fill: false, interactive: false }).addTo(nearLayer);
    }
  }

  // Each time the venue layer has drawn (first load, a toggle, another base map).
  function drawn() {
    drawNear();
    renderList();
  }
  document.addEventListener("mapservice:drawn", drawn);
  document.addEventListener("mapservice:error", function () { message(T.loadFailed); });
  if (api.ready) drawn(); // it may have drawn before this script ran

  // ---- the filter form's point helpers ------------------------------------------------
  var nearInput = document.getElementById("f-near");
  var picking = false;
  function toWgs84Text(latlng) {
    return latlng.lng.toFixed(6) + "," + latlng.lat.toFixed(6);
  }
  var nearMe = document.getElementById("near-me");
  if (nearMe) {
    nearMe.addEventListener("click", function () {
      if (!navigator.geolocation) { message(T.locateFailed); return; }
      navigator.geolocation.getCurrentPosition(function (pos) {
        nearInput.value = pos.coords.longitude.toFixed(6) + "," + pos.coords.latitude.toFixed(6);
      }, function () { message(T.locateFailed); });
    });
  }
  var nearPick = document.getElementById("near-pick");
  if (nearPick) {
    nearPick.addEventListener("click", function () {
      picking = true;
      map.getContainer().style.cursor = "crosshair";
      message(T.pick);
    });
  }
  map.on("click", function (e) {
    if (!picking) return;
    picking = false;
    map.getContainer().style.cursor = "";
    message("");
    var ll = e.latlng;
    if (state.crs === "gcj02") ll = gcjToWgs(ll);
    nearInput.value = toWgs84Text(ll);
  });
  // GCJ-02 → WGS-84 for a point clicked on an AMap base map (the filter takes WGS-84): the
  // published forward formula (as in mapservice/core/coords.py), inverted by iteration.
  function gcjOffset(lon, lat) {
    var x = lon - 105, y = lat - 35, PI = Math.PI, A = 6378245.0, EE = 0.00669342162296594323;
    var dlat = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    dlat += (20 * Math.sin(6 * x * PI) + 20 * Math.sin(2 * x * PI)) * 2 / 3;
    dlat += (20 * Math.sin(y * PI) + 40 * Math.sin(y / 3 * PI)) * 2 / 3;
    dlat += (160 * Math.sin(y / 12 * PI) + 320 * Math.sin(y * PI / 30)) * 2 / 3;
    var dlon = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    dlon += (20 * Math.sin(6 * x * PI) + 20 * Math.sin(2 * x * PI)) * 2 / 3;
    dlon += (20 * Math.sin(x * PI) + 40 * Math.sin(x / 3 * PI)) * 2 / 3;
    dlon += (150 * Math.sin(x / 12 * PI) + 300 * Math.sin(x / 30 * PI)) * 2 / 3;
    var rad = lat / 180 * PI, magic = 1 - EE * Math.sin(rad) * Math.sin(rad), sq = Math.sqrt(magic);
    return [(dlon * 180) / (A / sq * Math.cos(rad) * PI), (dlat * 180) / ((A * (1 - EE)) / (magic * sq) * PI)];
  }
  function gcjToWgs(ll) {
    var x = ll.lng, y = ll.lat;
    for (var i = 0; i < 10; i++) {
      var o = gcjOffset(x, y);
      x = ll.lng - o[0];
      y = ll.lat - o[1];
    }
    return L.latLng(y, x);
  }
})();
