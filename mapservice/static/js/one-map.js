/* The one map (一张图): venues from /map/data.json (delta-encoded columns, decoded below)
 * drawn with Leaflet + markercluster, each popup's details fetched when it opens
 * (/map/venues/ID/popup and /free-today), boundaries from /map/areas.geojson, legend and
 * per-type / per-unit toggles, the list of matches, locate-me, fullscreen and a base-map
 * switch that reloads the data in the base map's coordinate system (GCJ-02 for AMap,
 * converted on the server).
 *
 * Every piece of venue text goes into the DOM with textContent / DOM properties: never
 * innerHTML, never a template literal. */
(function () {
  "use strict";

  var cfg = JSON.parse(document.getElementById("map-config").textContent);
  var T = cfg.labels;
  var LIST_LIMIT = 300;

  function el(tag, className, text) {
    var e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // "%(name)s" placeholders of a translated label; the result is only ever used as text.
  function fmt(template, params) {
    return template.replace(/%\((\w+)\)s/g, function (_m, key) { return String(params[key]); });
  }

  function haversineKm(lon1, lat1, lon2, lat2) {
    var r = Math.PI / 180;
    var a = Math.pow(Math.sin((lat2 - lat1) * r / 2), 2) +
      Math.cos(lat1 * r) * Math.cos(lat2 * r) * Math.pow(Math.sin((lon2 - lon1) * r / 2), 2);
    return 2 * 6371.0088 * Math.asin(Math.min(1, Math.sqrt(a)));
  }

  function withParam(url, key, value) {
    return url + (url.indexOf("?") >= 0 ? "&" : "?") + encodeURIComponent(key) + "=" +
      encodeURIComponent(value);
  }

  var typeInfo = {};
  cfg.types.forEach(function (t) { typeInfo[t.key] = t; });

  // Marker icons: a coloured dot with the type's glyph, set as text.
  var GlyphIcon = L.DivIcon.extend({
    createIcon: function (old) {
      var div = L.DivIcon.prototype.createIcon.call(this, old);
      div.textContent = this.options.glyph;
      return div;
    },
  });
  var icons = {};
  function iconFor(type) {
    if (!icons[type]) {
      var info = typeInfo[type] || typeInfo.other;
      icons[type] = new GlyphIcon({
        className: "venue-marker vt-" + info.key,
        html: false,
        glyph: info.glyph,
        iconSize: [24, 24],
        iconAnchor: [12, 12],
        popupAnchor: [0, -10],
      });
    }
    return icons[type];
  }

  // ---- the map and its controls -------------------------------------------------------
  var mapEl = document.getElementById("one-map");
  var map = L.map(mapEl, {
    zoomSnap: 0.25,
    maxZoom: 19, // markercluster needs one even with no tile layer

    fullscreenControl: true,
    fullscreenControlOptions: { title: T.fullscreen, titleCancel: T.exitFullscreen },
  });
  map.setView([32.2, 119.42], 12);
  map.attributionControl.setPrefix("Leaflet");
  L.control.scale({ imperial: false }).addTo(map);

  var bases = {};
  var firstBase = null;
  cfg.tiles.forEach(function (t) {
    var layer = t.url
      ? L.tileLayer(t.url, { attribution: t.attribution, subdomains: t.subdomains || "abc",
        maxZoom: t.maxZoom })
      : L.layerGroup();
    layer.mapserviceCrs = t.crs;
    layer.mapserviceKey = t.key;
    bases[t.name] = layer;
    if (!firstBase) firstBase = layer;
  });
  firstBase.addTo(map);
  if (cfg.tiles.length > 1) L.control.layers(bases, null, { position: "topright" }).addTo(map);

  // Locate me: Leaflet's own geolocation, shown as a circle of the reported accuracy.
  var located = null;
  var Locate = L.Control.extend({
    options: { position: "topleft" },
    onAdd: function () {
      var box = L.DomUtil.create("div", "leaflet-bar map-locate");
      var a = L.DomUtil.create("a", "", box);
      a.href = "#";
      a.setAttribute("role", "button");
      a.title = T.locate;
      a.setAttribute("aria-label", T.locate);
      a.id = "locate-me";
      a.textContent = "◎";
      L.DomEvent.on(a, "click", function (e) {
        L.DomEvent.preventDefault(e);
        L.DomEvent.stopPropagation(e);
        map.locate({ setView: true, maxZoom: 15 });
      });
      return box;
    },
  });
  new Locate().addTo(map);
  var locationLayer = L.layerGroup().addTo(map);
  map.on("locationfound", function (e) {
    locationLayer.clearLayers();
    L.circle(e.latlng, { radius: e.accuracy, weight: 1 }).addTo(locationLayer);
    L.circleMarker(e.latlng, { radius: 6, color: "#1565c0", fillOpacity: 1 }).addTo(locationLayer);
    located = e.latlng;
    renderList();
  });
  map.on("locationerror", function () { message(T.locateFailed); });

  function message(text) {
    document.getElementById("map-message").textContent = text || "";
  }

  // ---- state ------------------------------------------------------------------------
  var state = {
    crs: firstBase.mapserviceCrs,
    features: [],
    units: {},
    markers: {},
    hiddenTypes: {},
    hiddenUnits: {},
    near: null,
    firstLoad: true,
  };
  var cluster = L.markerClusterGroup({
    chunkedLoading: true,
    showCoverageOnHover: false,
    maxClusterRadius: 60,
  });
  map.addLayer(cluster);
  var areasLayer = L.layerGroup().addTo(map);
  var nearLayer = L.layerGroup().addTo(map);

  // The map data: columns of ids, coordinates (integers of 1/scale degree), type and unit
  // indexes and names, each of id/x/y delta-encoded (mapservice.core.mapdata.venue_columns).
  // A venue becomes {i: id, n: name, t: type key, u: unit id, x: lon, y: lat}.
  function decodeVenues(d) {
    if (d.v !== 1) throw new Error("unknown map data version " + d.v);
    var n = d.id.length, out = new Array(n), id = 0, x = 0, y = 0, s = d.scale;
    for (var k = 0; k < n; k++) {
      id += d.id[k];
      x += d.x[k];
      y += d.y[k];
      out[k] = { i: id, n: d.name[k], t: d.types[d.t[k]], u: d.units[d.u[k]][0], x: x / s, y: y / s };
    }
    return out;
  }

  // Distance (km) of a venue from the filter's point or the located position, if any.
  function distanceOf(f) {
    var ref = refPoint();
    return ref ? haversineKm(ref[0], ref[1], f.x, f.y) : null;
  }

  // The popup: what the map data has at once, the rest (capacity, hours, facilities, address,
  // phone) when /popup answers, and either the next free slots today (/free-today) or, when
  // the filter asks "free between", the venue's availability then (from /popup too). Text
  // only. Built once per opening: the lines filled in later re-fit the open popup.
  function popupContent(f, marker) {
    var box = el("div", "venue-popup");
    box.dataset.venueId = String(f.i);
    box.appendChild(el("div", "popup-name", f.n));
    var info = typeInfo[f.t] || typeInfo.other;
    box.appendChild(el("div", "popup-meta text-muted", info.label + " · " + (state.units[f.u] || "")));
    var details = el("div", "popup-details-box");
    box.appendChild(details);
    var d = state.near ? distanceOf(f) : null;
    if (d !== null) box.appendChild(el("div", "popup-distance", d.toFixed(2) + " " + T.km));
    var links = el("div", "popup-links d-flex gap-3 mt-1");
    var page = el("a", "popup-details", T.details);
    page.href = cfg.venueUrl + encodeURIComponent(f.i);
    var book = el("a", "popup-book fw-semibold", T.book);
    // With a "free between" window the booking form opens filled with it.
    book.href = cfg.venueUrl + encodeURIComponent(f.i) + (cfg.window ? "?" + cfg.window.book : "") + "#book";
    links.appendChild(page);
    links.appendChild(book);
    var free = cfg.window
      ? el("div", "popup-window small fw-semibold", cfg.window.text + ": …")
      : el("div", "popup-free small", T.freeToday + ": …");
    box.appendChild(free);
    box.appendChild(links);
    var loads = [loadDetails(f.i, details, cfg.window ? free : null)];
    if (!cfg.window) loads.push(loadFreeToday(f.i, free));
    marker.detailsLoaded = Promise.all(loads).then(function () { refit(marker); });
    return box;
  }

  // Lay the open popup out again after its content grew, and pan it back into view.
  function refit(marker) {
    var popup = marker.getPopup();
    if (popup && marker.isPopupOpen()) popup.update();
  }

  function fillWindow(w, target) {
    var params = { when: w.text, free: w.free, total: w.total };
    target.textContent = !w.open ? fmt(T.windowClosed, params)
      : w.free ? fmt(T.windowFree, params) : fmt(T.windowFull, params);
    target.dataset.free = String(w.open ? w.free : 0);
  }

  function fillDetails(p, box) {
    box.replaceChildren();
    var cap = T.units + ": " + p.capacity + (p.headcount ? " · " + T.headcount + ": " + p.headcount : "");
    box.appendChild(el("div", "popup-capacity", cap));
    // Today's hours, or with a "free between" window those of its day.
    var hours = p.hours_day
      ? (p.today ? fmt(T.openOn, { day: p.hours_day }) + ": " + p.today.replace(/,/g, ", ") : fmt(T.closedOn, { day: p.hours_day }))
      : (p.today ? T.today + ": " + p.today.replace(/,/g, ", ") : T.closedToday);
    box.appendChild(el("div", "popup-hours", hours));
    if (p.facilities) box.appendChild(el("div", "popup-facilities", T.facilities + ": " + p.facilities));
    if (p.address) box.appendChild(el("div", "popup-address", T.address + ": " + p.address));
    if (p.phone) {
      var line = el("div", "popup-phone", T.phone + ": ");
      var tel = el("a", "", p.phone);
      tel.href = "tel:" + String(p.phone).replace(/[^0-9+]/g, "");
      line.appendChild(tel);
      box.appendChild(line);
    }
  }

  function loadDetails(venueId, target, windowTarget) {
    var url = cfg.popupUrl + encodeURIComponent(venueId) + "/popup";
    if (windowTarget) url += "?" + cfg.window.query;
    return fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (p) {
        fillDetails(p, target);
        if (windowTarget && p.window) fillWindow(p.window, windowTarget);
      })
      .catch(function () {
        target.textContent = "";
        if (windowTarget) windowTarget.textContent = cfg.window.text;
      });
  }

  // The next free slots today come from the booking engine when the popup opens.
  function loadFreeToday(venueId, target) {
    return fetch(cfg.freeUrl + encodeURIComponent(venueId) + "/free-today", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (data) {
        target.textContent = data.free.length
          ? T.freeToday + ": " + data.free.map(function (w) { return w[0] + "-" + w[1]; }).join(", ")
          : T.noFreeToday;
      })
      .catch(function () { target.textContent = ""; });
  }

  // Popups keep clear of the controls down the map's left side (zoom, full screen, locate):
  // their left edge stays right of that column, and they are made narrow enough to fit.
  var POPUP_MAX = 280, POPUP_MIN = 200, POPUP_GAP = 8;
  function fitPopupOptions(popup) {
    var mapBox = mapEl.getBoundingClientRect();
    var left = POPUP_GAP;
    mapEl.querySelectorAll(".leaflet-top.leaflet-left .leaflet-control").forEach(function (c) {
      left = Math.max(left, c.getBoundingClientRect().right - mapBox.left + POPUP_GAP);
    });
    var room = mapBox.width - left - POPUP_GAP - 2 * 20; // 20: the popup's own padding
    popup.options.autoPanPaddingTopLeft = L.point(left, POPUP_GAP);
    popup.options.autoPanPaddingBottomRight = L.point(POPUP_GAP, POPUP_GAP);
    popup.options.maxWidth = Math.max(POPUP_MIN - 40, Math.min(POPUP_MAX, room));
    popup.options.minWidth = Math.min(220, popup.options.maxWidth);
  }

  function makeMarker(f) {
    var m = L.marker([f.y, f.x], { icon: iconFor(f.t), title: f.n });
    m.venue = f;
    var box = null;
    // Leaflet asks for the content on every layout (opening, update): the options are fitted
    // to the map's size and controls each time, the content built once per opening.
    m.bindPopup(function () {
      fitPopupOptions(m.getPopup());
      if (!box) box = popupContent(f, m);
      return box;
    }, { minWidth: 220, maxWidth: POPUP_MAX, autoPanPadding: [20, 20] });
    m.on("popupclose", function () { box = null; });
    return m;
  }

  function isShown(f) {
    return !state.hiddenTypes[f.t] && !state.hiddenUnits[f.u];
  }

  function shownFeatures() {
    return state.features.filter(isShown);
  }

  // ---- the list ---------------------------------------------------------------------
  function refPoint() {
    if (state.near) return state.near; // [lon, lat] of the filter, in the display CRS
    if (located) return [located.lng, located.lat];
    return null;
  }

  function renderList() {
    var list = document.getElementById("venue-list");
    var more = document.getElementById("venue-list-more");
    var shown = shownFeatures();
    var ref = refPoint();
    var byDistance = document.getElementById("venue-sort").value === "distance" && ref;
    var items = shown.map(function (f) {
      return { f: f, d: ref ? haversineKm(ref[0], ref[1], f.x, f.y) : null };
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
      li.addEventListener("click", function () { openVenue(p.i, null, true); });
      li.addEventListener("keydown", function (e) { if (e.key === "Enter") openVenue(p.i, null, true); });
      list.appendChild(li);
    });
    document.getElementById("venue-count").textContent = shown.length
      ? fmt(T.shown, { shown: shown.length, total: state.features.length })
      : T.none;
    more.textContent = items.length > LIST_LIMIT ? fmt(T.more, { n: items.length - LIST_LIMIT }) : "";
  }
  document.getElementById("venue-sort").addEventListener("change", renderList);

  // Open a venue's popup. From the list (``reveal``), the map is first scrolled into view:
  // on a phone the list lies below the map, which is off-screen when an entry is tapped.
  function openVenue(id, done, reveal) {
    var m = state.markers[id];
    if (!m || !cluster.hasLayer(m)) return false;
    if (reveal) revealMap();
    cluster.zoomToShowLayer(m, function () {
      m.openPopup();
      if (done) (m.detailsLoaded || Promise.resolve()).then(done);
    });
    return true;
  }

  function revealMap() {
    var r = mapEl.getBoundingClientRect();
    var viewHeight = window.innerHeight || document.documentElement.clientHeight;
    if (r.top >= 0 && r.bottom <= viewHeight) return;
    mapEl.scrollIntoView({ block: r.height <= viewHeight ? "nearest" : "start", behavior: "instant" });
  }

  // ---- legend and layer toggles (per type, per unit) --------------------------------
  var Layers = L.Control.extend({
    options: { position: "bottomleft" },
    onAdd: function () {
      var box = L.DomUtil.create("details", "map-layers");
      box.id = "map-layers";
      if (window.innerWidth >= 768) box.open = true;
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      this.box = box;
      return box;
    },
  });
  var layersControl = new Layers().addTo(map);

  function checkbox(label, swatchClass, checked, onChange, attrs) {
    var lab = el("label");
    var input = el("input");
    input.type = "checkbox";
    input.checked = checked;
    Object.keys(attrs).forEach(function (k) { input.dataset[k] = attrs[k]; });
    input.addEventListener("change", function () { onChange(input.checked); });
    lab.appendChild(input);
    lab.appendChild(document.createTextNode(" "));
    if (swatchClass) lab.appendChild(el("span", "type-swatch " + swatchClass));
    lab.appendChild(document.createTextNode(label));
    return lab;
  }

  function renderLayers() {
    var box = layersControl.box;
    box.replaceChildren();
    box.appendChild(el("summary", "", T.layers));
    var counts = {};
    var unitCounts = {};
    state.features.forEach(function (f) {
      counts[f.t] = (counts[f.t] || 0) + 1;
      unitCounts[f.u] = (unitCounts[f.u] || 0) + 1;
    });
    cfg.types.forEach(function (t) {
      if (!counts[t.key]) return;
      box.appendChild(checkbox(t.label + " (" + counts[t.key] + ")", "vt-" + t.key,
        !state.hiddenTypes[t.key], function (on) {
          state.hiddenTypes[t.key] = !on;
          redraw();
        }, { layerType: t.key }));
    });
    var unitIds = Object.keys(unitCounts);
    if (unitIds.length > 1) {
      var sub = el("details", "mt-1");
      sub.appendChild(el("summary", "", T.unitLayers));
      unitIds.sort(function (a, b) {
        return (state.units[a] || "").localeCompare(state.units[b] || "");
      }).forEach(function (u) {
        sub.appendChild(checkbox((state.units[u] || u) + " (" + unitCounts[u] + ")", null,
          !state.hiddenUnits[u], function (on) {
            state.hiddenUnits[u] = !on;
            redraw();
          }, { layerUnit: u }));
      });
      box.appendChild(sub);
    }
  }

  function redraw(after) {
    api.ready = false;
    mapEl.dataset.status = "drawing";
    cluster.clearLayers();
    var layers = shownFeatures().map(function (f) { return state.markers[f.i]; });
    var finished = false;
    function done() {
      if (finished) return;
      finished = true;
      renderList();
      api.ready = true;
      if (!api.firstReadyAt) api.firstReadyAt = performance.now(); // ms since navigation
      mapEl.dataset.status = "ready";
      mapEl.dataset.shown = String(layers.length);
      if (after) after();
    }
    if (!layers.length) { done(); return; }
    cluster.options.chunkProgress = function (processed, total) {
      // Let markercluster finish its bookkeeping before anyone zooms to a marker.
      if (processed >= total) setTimeout(done, 0);
    };
    cluster.addLayers(layers);
  }

  // ---- loading ----------------------------------------------------------------------
  function getJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      });
  }

  function drawAreas(fc) {
    areasLayer.clearLayers();
    var layer = L.geoJSON(fc, {
      style: function (f) {
        return f.properties.level === "district"
          ? { color: "#c62828", weight: 2, fillColor: "#ffebee", fillOpacity: 0.3 }
          : { color: "#607d8b", weight: 1, dashArray: "4 4", fill: false };
      },
      interactive: false,
      onEachFeature: function (f, lyr) {
        if (f.properties.level === "street") {
          var span = el("span", "", f.properties.name +
            (f.properties.approximate ? " (" + T.approx + ")" : ""));
          lyr.bindTooltip(span, { permanent: true, direction: "center", className: "street-label" });
        }
      },
    });
    layer.addTo(areasLayer);
    return layer;
  }

  function load(crs, keepView) {
    api.ready = false;
    mapEl.dataset.status = "loading";
    var dataReq = getJSON(withParam(cfg.dataUrl, "crs", crs));
    var areaReq = getJSON(withParam(cfg.areasUrl, "crs", crs));
    return Promise.all([dataReq, areaReq]).then(function (res) {
      var data = res[0];
      var venues = decodeVenues(data);
      state.crs = crs;
      state.features = venues;
      state.units = {};
      data.units.forEach(function (u) { state.units[u[0]] = u[1]; });
      state.near = data.near || null;
      state.markers = {};
      venues.forEach(function (f) { state.markers[f.i] = makeMarker(f); });
      var areas = drawAreas(res[1]);
      nearLayer.clearLayers();
      if (state.near && cfg.radiusKm) {
        L.circle([state.near[1], state.near[0]], { radius: cfg.radiusKm * 1000, weight: 1,
          color: "#1565c0", fill: false, interactive: false }).addTo(nearLayer);
      }
      renderLayers();
      var permalink = state.firstLoad && cfg.venue && state.markers[cfg.venue];
      if (!keepView) {
        var bounds = venues.length
          ? L.latLngBounds(venues.map(function (f) { return [f.y, f.x]; }))
          : areas.getBounds();
        if (bounds.isValid()) map.fitBounds(bounds, { padding: [20, 20], maxZoom: 16, animate: false });
      }
      state.firstLoad = false;
      redraw(function () {
        if (permalink) {
          api.ready = false;
          openVenue(cfg.venue, function () { api.ready = true; mapEl.dataset.status = "ready"; });
        }
      });
    }).catch(function (err) {
      if (window.console) console.error(err);
      message(T.loadFailed);
      mapEl.dataset.status = "error";
    });
  }

  map.on("baselayerchange", function (e) {
    var crs = e.layer.mapserviceCrs || "wgs84";
    if (crs !== state.crs) {
      map.closePopup();
      load(crs, true);
    }
  });

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
      mapEl.style.cursor = "crosshair";
      message(T.pick);
    });
  }
  map.on("click", function (e) {
    if (!picking) return;
    picking = false;
    mapEl.style.cursor = "";
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

  var api = {
    map: map,
    cluster: cluster,
    ready: false,
    state: state,
    openVenue: openVenue,
    load: load,
    // Venues counted in what is drawn: clusters count their children.
    drawnCount: function () {
      var n = 0;
      cluster._featureGroup.eachLayer(function (l) {
        n += l.getChildCount ? l.getChildCount() : 1;
      });
      return n;
    },
    fitAll: function () {
      var b = cluster.getBounds();
      if (b.isValid()) map.fitBounds(b, { padding: [20, 20], animate: false });
    },
  };
  window.MapService = window.MapService || {};
  window.MapService.oneMap = api;
  load(state.crs, false);
})();
