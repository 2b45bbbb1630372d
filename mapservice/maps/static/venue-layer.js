/* The fast venue layer of the folium-built maps (mapservice.maps.plugins.VenueLayer) and their
 * legend (mapservice.maps.plugins.Legend).
 *
 * MapService.venueLayer(map, options, areas) reads the venues as delta-encoded columns
 * (mapservice.core.mapdata.venue_columns) from options.dataUrl or options.columns, draws them
 * as glyph markers in one Leaflet.markercluster group, adds the per-type / per-unit toggles,
 * builds each popup when it opens (details fetched from options.popupUrl / freeUrl when
 * given, else read from the embedded columns), shows the boundary layer of the base map's
 * coordinate system (areas: {crs: L.GeoJSON}) and reloads the venues in it when the base map
 * changes (AMap tiles are GCJ-02; the server converts).
 *
 * Every piece of venue text goes into the DOM with textContent / DOM properties: never
 * innerHTML, never a template literal. */
(function () {
  "use strict";

  var MapService = (window.MapService = window.MapService || {});

  var el = MapService.dom.el;  // dom.js
  var fmt = MapService.dom.fmt;

  function withParam(url, key, value) {
    return url + (url.indexOf("?") >= 0 ? "&" : "?") + encodeURIComponent(key) + "=" +
      encodeURIComponent(value);
  }

  function haversineKm(lon1, lat1, lon2, lat2) {
    var r = Math.PI / 180;
    var a = Math.pow(Math.sin((lat2 - lat1) * r / 2), 2) +
      Math.cos(lat1 * r) * Math.cos(lat2 * r) * Math.pow(Math.sin((lon2 - lon1) * r / 2), 2);
    return 2 * 6371.0088 * Math.asin(Math.min(1, Math.sqrt(a)));
  }
  MapService.haversineKm = haversineKm;

  // Columns -> [{i, n, t, u, x, y, k}] (k: the row, for optional detail columns).
  function decodeVenues(d) {
    if (d.v !== 1) throw new Error("unknown map data version " + d.v);
    var n = d.id.length, out = new Array(n), id = 0, x = 0, y = 0, s = d.scale;
    for (var k = 0; k < n; k++) {
      id += d.id[k];
      x += d.x[k];
      y += d.y[k];
      out[k] = { i: id, n: d.name[k], t: d.types[d.t[k]], u: d.units[d.u[k]][0], x: x / s, y: y / s, k: k };
    }
    return out;
  }

  var GlyphIcon = L.DivIcon.extend({
    createIcon: function (old) {
      var div = L.DivIcon.prototype.createIcon.call(this, old);
      div.textContent = this.options.glyph;
      return div;
    },
  });

  MapService.venueLayer = function (map, opts, areas) {
    var T = opts.labels || {};
    var typeInfo = {};
    opts.types.forEach(function (t) { typeInfo[t.key] = t; });
    var mapEl = map.getContainer();
    var icons = {};
    function iconFor(type) {
      if (!icons[type]) {
        var info = typeInfo[type] || typeInfo.other || { key: "other", glyph: "" };
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

    var state = {
      crs: opts.crs || "wgs84",
      data: null,
      features: [],
      units: {},
      markers: {},
      hiddenTypes: {},
      hiddenUnits: {},
      near: null,
      firstLoad: true,
    };
    var cluster = L.markerClusterGroup({ chunkedLoading: true, showCoverageOnHover: false, maxClusterRadius: 60 });

    // ---- popups ------------------------------------------------------------------------
    function column(name, k) {
      var c = state.data && state.data[name];
      return c ? c[k] : undefined;
    }

    function fillDetails(p, box) {
      box.replaceChildren();
      var cap = T.units + ": " + p.capacity + (p.headcount ? " · " + T.headcount + ": " + p.headcount : "");
      box.appendChild(el("div", "popup-capacity", cap));
      if (p.today !== undefined && p.today !== null) {
        var hours = p.hours_day
          ? (p.today ? fmt(T.openOn, { day: p.hours_day }) + ": " + p.today.replace(/,/g, ", ") : fmt(T.closedOn, { day: p.hours_day }))
          : (p.today ? T.today + ": " + p.today.replace(/,/g, ", ") : T.closedToday);
        box.appendChild(el("div", "popup-hours", hours));
      }
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

    function fillWindow(w, target) {
      var params = { when: w.text, free: w.free, total: w.total };
      target.textContent = !w.open ? fmt(T.windowClosed, params)
        : w.free ? fmt(T.windowFree, params) : fmt(T.windowFull, params);
      target.dataset.free = String(w.open ? w.free : 0);
    }

    // plain: no request header of our own, so that the page's preload link of the
    // data (templates/venue_layer.html) is the same request and its answer is used.
    function getJSON(url, plain) {
      var init = plain ? { credentials: "same-origin" }
        : { headers: { Accept: "application/json" }, credentials: "same-origin" };
      return fetch(url, init)
        .then(function (r) {
          if (!r.ok) throw new Error("HTTP " + r.status);
          return r.json();
        });
    }

    function popupContent(f, marker) {
      var box = el("div", "venue-popup");
      box.dataset.venueId = String(f.i);
      box.appendChild(el("div", "popup-name", f.n));
      var info = typeInfo[f.t] || typeInfo.other || { label: f.t };
      box.appendChild(el("div", "popup-meta text-muted", info.label + " · " + (state.units[f.u] || "")));
      var details = el("div", "popup-details-box");
      box.appendChild(details);
      // Distance from the filter's point (the list sorts by it too).
      if (state.near) {
        var d = haversineKm(state.near[0], state.near[1], f.x, f.y);
        box.appendChild(el("div", "popup-distance", d.toFixed(2) + " " + T.km));
      }
      var loads = [];
      if (column("capacity", f.k) !== undefined) {
        // The standalone file: the details are columns of the embedded data.
        fillDetails({
          capacity: column("capacity", f.k),
          headcount: column("headcount", f.k),
          today: column("today", f.k),
          facilities: column("facilities", f.k),
          address: column("address", f.k),
          phone: column("phone", f.k),
        }, details);
      }
      if (opts.venueUrl) {
        var links = el("div", "popup-links d-flex gap-3 mt-1");
        var page = el("a", "popup-details", T.details);
        page.href = opts.venueUrl + encodeURIComponent(f.i);
        var book = el("a", "popup-book fw-semibold", T.book);
        book.href = opts.venueUrl + encodeURIComponent(f.i) + (opts.window ? "?" + opts.window.book : "") + "#book";
        links.appendChild(page);
        links.appendChild(book);
        var free = null;
        if (opts.popupUrl) {
          free = opts.window
            ? el("div", "popup-window small fw-semibold", opts.window.text + ": …")
            : el("div", "popup-free small", T.freeToday + ": …");
          box.appendChild(free);
          var url = opts.popupUrl + encodeURIComponent(f.i) + "/popup" + (opts.window ? "?" + opts.window.query : "");
          loads.push(getJSON(url).then(function (p) {
            fillDetails(p, details);
            if (opts.window && p.window) fillWindow(p.window, free);
          }).catch(function () {
            details.textContent = "";
            if (opts.window) free.textContent = opts.window.text;
          }));
          if (!opts.window && opts.freeUrl) {
            loads.push(getJSON(opts.freeUrl + encodeURIComponent(f.i) + "/free-today").then(function (data) {
              free.textContent = data.free.length
                ? T.freeToday + ": " + data.free.map(function (w) { return w[0] + "-" + w[1]; }).join(", ")
                : T.noFreeToday;
            }).catch(function () { free.textContent = ""; }));
          }
        }
        box.appendChild(links);
      }
      marker.detailsLoaded = Promise.all(loads).then(function () {
        var popup = marker.getPopup();
        if (popup && marker.isPopupOpen()) popup.update();
      });
      return box;
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
      // Leaflet asks for the content on every layout (opening, update): the options are
      // fitted to the map's size and controls each time, the content built once per opening.
      m.bindPopup(function () {
        fitPopupOptions(m.getPopup());
        if (!box) box = popupContent(f, m);
        return box;
      }, { minWidth: 220, maxWidth: POPUP_MAX, autoPanPadding: [20, 20] });
      m.on("popupclose", function () { box = null; });
      return m;
    }

    // ---- toggles per type and unit (the one map's legend) ---------------------------
    var Toggles = L.Control.extend({
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
    var toggles = opts.toggles === false ? null : new Toggles().addTo(map);

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

    function renderToggles() {
      if (!toggles) return;
      var box = toggles.box;
      box.replaceChildren();
      box.appendChild(el("summary", "", T.layers));
      var counts = {}, unitCounts = {};
      state.features.forEach(function (f) {
        counts[f.t] = (counts[f.t] || 0) + 1;
        unitCounts[f.u] = (unitCounts[f.u] || 0) + 1;
      });
      opts.types.forEach(function (t) {
        if (!counts[t.key]) return;
        box.appendChild(checkbox(t.label + " (" + counts[t.key] + ")", "vt-" + t.key,
          !state.hiddenTypes[t.key], function (on) { state.hiddenTypes[t.key] = !on; redraw(); },
          { layerType: t.key }));
      });
      var unitIds = Object.keys(unitCounts);
      if (unitIds.length > 1) {
        var sub = el("details", "mt-1");
        sub.appendChild(el("summary", "", T.unitLayers));
        unitIds.sort(function (a, b) {
          return (state.units[a] || "").localeCompare(state.units[b] || "");
        }).forEach(function (u) {
          sub.appendChild(checkbox((state.units[u] || u) + " (" + unitCounts[u] + ")", null,
            !state.hiddenUnits[u], function (on) { state.hiddenUnits[u] = !on; redraw(); },
            { layerUnit: u }));
        });
        box.appendChild(sub);
      }
    }

    // ---- drawing ----------------------------------------------------------------------
    function isShown(f) { return !state.hiddenTypes[f.t] && !state.hiddenUnits[f.u]; }

    function redraw(after) {
      api.ready = false;
      mapEl.dataset.status = "drawing";
      cluster.clearLayers();
      var layers = state.features.filter(isShown).map(function (f) { return state.markers[f.i]; });
      var finished = false;
      function done() {
        if (finished) return;
        finished = true;
        api.ready = true;
        if (!api.firstReadyAt) api.firstReadyAt = performance.now();
        mapEl.dataset.status = "ready";
        mapEl.dataset.shown = String(layers.length);
        mapEl.dispatchEvent(new CustomEvent("mapservice:drawn", { detail: api, bubbles: true }));
        if (after) after();
      }
      // Ready once markercluster has finished: its bookkeeping (chunks) and the cluster
      // animation a zoom starts (zoomToShowLayer called during one never calls back).
      function settle() {
        if (cluster._inZoomAnimation) cluster.once("animationend", settle);
        else done();
      }
      if (!layers.length) { done(); return; }
      cluster.options.chunkProgress = function (processed, total) {
        if (processed >= total) setTimeout(settle, 0);
      };
      cluster.addLayers(layers);
    }

    function showAreas(crs) {
      Object.keys(areas || {}).forEach(function (key) {
        var layer = areas[key];
        if (key === crs) { if (!map.hasLayer(layer)) layer.addTo(map); }
        else if (map.hasLayer(layer)) map.removeLayer(layer);
      });
      return (areas || {})[crs] || null;
    }

    function draw(data, crs, keepView) {
      state.data = data;
      state.crs = crs;
      state.features = decodeVenues(data);
      state.units = {};
      data.units.forEach(function (u) { state.units[u[0]] = u[1]; });
      state.near = data.near || null;
      state.markers = {};
      state.features.forEach(function (f) { state.markers[f.i] = makeMarker(f); });
      var area = showAreas(crs);
      renderToggles();
      if (!keepView && opts.fit !== false) {
        var bounds = state.features.length
          ? L.latLngBounds(state.features.map(function (f) { return [f.y, f.x]; }))
          : area && area.getBounds();
        if (bounds && bounds.isValid()) map.fitBounds(bounds, { padding: [20, 20], maxZoom: 16, animate: false });
      }
      var permalink = state.firstLoad && opts.venue && state.markers[opts.venue];
      state.firstLoad = false;
      redraw(function () {
        if (permalink) {
          api.ready = false;
          openVenue(opts.venue, function () { api.ready = true; mapEl.dataset.status = "ready"; });
        }
      });
    }

    function load(crs, keepView) {
      api.ready = false;
      mapEl.dataset.status = "loading";
      if (opts.columns) {
        // Embedded columns come in one coordinate system only.
        draw(opts.columns, opts.columns.crs || "wgs84", keepView);
        return Promise.resolve();
      }
      return getJSON(withParam(opts.dataUrl, "crs", crs), true).then(function (data) {
        draw(data, crs, keepView);
      }).catch(function (err) {
        if (window.console) console.error(err);
        mapEl.dataset.status = "error";
        mapEl.dispatchEvent(new CustomEvent("mapservice:error", { detail: String(err), bubbles: true }));
      });
    }

    function openVenue(id, done) {
      var m = state.markers[id];
      if (!m || !cluster.hasLayer(m)) return false;
      cluster.zoomToShowLayer(m, function () {
        m.openPopup();
        if (done) (m.detailsLoaded || Promise.resolve()).then(done);
      });
      return true;
    }

    map.on("baselayerchange", function (e) {
      var crs = (e.layer.options && e.layer.options.mapserviceCrs) || "wgs84";
      if (crs !== state.crs && !opts.columns) {
        map.closePopup();
        load(crs, true);
      }
    });

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
        cluster._featureGroup.eachLayer(function (l) { n += l.getChildCount ? l.getChildCount() : 1; });
        return n;
      },
      fitAll: function () {
        var b = cluster.getBounds();
        if (b.isValid()) map.fitBounds(b, { padding: [20, 20], animate: false });
      },
    };
    if (opts.api) MapService[opts.api] = api;
    // folium adds the layer to the map right after this returns; the data follows.
    setTimeout(function () { load(state.crs, false); }, 0);
    return cluster;
  };

  // ---- the map's chrome: a metric scale, a plain attribution prefix ----------------------
  MapService.chrome = function (map, opts) {
    if (map.attributionControl) map.attributionControl.setPrefix(opts.prefix || "Leaflet");
    if (opts.scale !== false) L.control.scale({ imperial: false }).addTo(map);
  };

  // ---- the legend ---------------------------------------------------------------------
  MapService.legend = function (map, opts) {
    var Legend = L.Control.extend({
      options: { position: opts.position || "bottomleft" },
      onAdd: function () {
        var box = L.DomUtil.create("div", "map-legend");
        if (opts.title) box.appendChild(el("div", "map-legend-title", opts.title));
        opts.entries.forEach(function (e) {
          var row = el("div", "map-legend-row");
          var sw = el("span", "legend-swatch legend-" + e.kind + (e.kind === "type" ? " vt-" + e.key : ""), e.glyph || "");
          if (e.color) sw.style.backgroundColor = e.color;
          row.appendChild(sw);
          row.appendChild(document.createTextNode(" " + e.label));
          box.appendChild(row);
        });
        L.DomEvent.disableClickPropagation(box);
        return box;
      },
    });
    return new Legend().addTo(map);
  };

  // ---- a point to place (the registration picker) and the venue page's point -------------
  // The picker: a click places the point and fills the form's lon/lat/crs inputs (WGS-84
  // unless the base map is GCJ-02, then converted back by the server from the crs field).
  MapService.pointMarker = function (map, opts) {
    var style = { radius: 8, color: "#b71c1c", weight: 2, fillColor: "#ef5350", fillOpacity: 0.9 };
    var marker = null;
    function place(latlng) {
      if (marker) marker.setLatLng(latlng);
      else marker = L.circleMarker(latlng, style).addTo(map);
    }
    if (opts.point) {
      place(L.latLng(opts.point[1], opts.point[0]));
      if (opts.zoom) map.setView(L.latLng(opts.point[1], opts.point[0]), opts.zoom, { animate: false });
    }
    MapService.maps = MapService.maps || {};
    if (opts.key) MapService.maps[opts.key] = map;
    if (opts.pick) {
      var crs = opts.crs || "wgs84";
      map.on("baselayerchange", function (e) {
        crs = (e.layer.options && e.layer.options.mapserviceCrs) || "wgs84";
      });
      map.on("click", function (e) {
        var f = opts.pick;
        var lon = document.getElementById(f.lon), lat = document.getElementById(f.lat);
        var crsInput = document.getElementById(f.crs);
        if (lon) lon.value = e.latlng.lng.toFixed(6);
        if (lat) lat.value = e.latlng.lat.toFixed(6);
        if (crsInput) crsInput.value = crs;
        place(e.latlng);
        map.getContainer().dataset.picked = e.latlng.lng.toFixed(6) + "," + e.latlng.lat.toFixed(6);
      });
    }
    return marker;
  };
})();
