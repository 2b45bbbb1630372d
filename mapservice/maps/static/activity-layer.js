/* The one map's activity layer (mapservice.maps.plugins.ActivityLayer).
 *
 * MapService.activityLayer(map, options) fetches options.dataUrl (/map/activities.json: the
 * upcoming activities, the pairings in force and the paired streets, GeoJSON in the base
 * map's coordinate system) with the filter's month, kind and "open for sign-up", draws the
 * activities as circles coloured by kind (a site's drawn area shaded), the pairings as dashed
 * lines and the paired streets shaded, and adds a control to change the filter and switch
 * the pairings. It reloads in the base map's coordinate system when that changes.
 *
 * Every text goes into the DOM as text (textContent), never as HTML. */
(function () {
  "use strict";

  var MapService = (window.MapService = window.MapService || {});

  var el = MapService.dom.el;
  var fmt = MapService.dom.fmt;

  MapService.activityLayer = function (map, opts) {
    var T = opts.labels || {};
    var colors = {};
    (opts.kinds || []).forEach(function (k) { colors[k.key] = k.color; });
    var flt = { month: (opts.filter && opts.filter.month) || "", kind: (opts.filter && opts.filter.kind) || "",
                open: !!(opts.filter && opts.filter.open) };
    var state = { crs: opts.crs || "wgs84", pairings: true, data: null };
    var activities = L.featureGroup().addTo(map);
    var pairings = L.featureGroup().addTo(map);
    var mapEl = map.getContainer();

    function url() {
      var q = ["crs=" + encodeURIComponent(state.crs)];
      if (flt.month) q.push("month=" + encodeURIComponent(flt.month));
      if (flt.kind) q.push("kind=" + encodeURIComponent(flt.kind));
      if (flt.open) q.push("open=1");
      return opts.dataUrl + (opts.dataUrl.indexOf("?") >= 0 ? "&" : "?") + q.join("&");
    }

    function popup(p) {
      var box = el("div", "activity-popup");
      var name = el("div", "popup-name");
      var link = el("a", null, p.title);
      link.href = p.url;
      name.appendChild(link);
      box.appendChild(name);
      box.appendChild(el("div", null, p.kindLabel + " · " + p.statusLabel));
      box.appendChild(el("div", null, p.when));
      box.appendChild(el("div", null, p.place + (p.street ? " · " + p.street : "")));
      box.appendChild(el("div", null, fmt(T.lead || "%(unit)s", { unit: p.unit })));
      box.appendChild(el("div", null, fmt(T.places || "%(confirmed)s/%(capacity)s",
        { confirmed: p.confirmed, capacity: p.capacity })));
      if (p.open) {
        var join = el("a", "btn btn-sm btn-danger text-white", T.signUp || "Sign up");
        join.href = p.url + "#signup-form";
        box.appendChild(join);
      }
      return box;
    }

    function draw(data) {
      activities.clearLayers();
      pairings.clearLayers();
      state.data = data;
      data.activities.features.forEach(function (f) {
        var p = f.properties, color = colors[p.kind] || "#546e7a";
        if (p.area) {
          L.geoJSON(p.area, { style: { color: color, weight: 1, fillColor: color, fillOpacity: 0.25 } })
            .bindPopup(function () { return popup(p); }).addTo(activities);
        }
        var c = f.geometry.coordinates;
        var marker = L.circleMarker([c[1], c[0]], {
          radius: 9, color: "#fff", weight: 2, fillColor: color, fillOpacity: 0.95,
          className: "activity-marker activity-" + p.kind,
        });
        marker.activityId = p.id;
        marker.bindPopup(function () { return popup(p); });
        marker.bindTooltip(function () { return el("span", null, p.title); });
        marker.addTo(activities);
      });
      if (state.pairings) {
        L.geoJSON(data.paired, {
          style: { color: "#8e24aa", weight: 1, fillColor: "#ce93d8", fillOpacity: 0.25, dashArray: "2 4" },
          onEachFeature: function (f, layer) {
            layer.bindTooltip(function () {
              return el("span", null, fmt(T.pairedArea || "%(name)s", { name: f.properties.name, units: f.properties.units.join("、") }));
            }, { sticky: true });
          },
        }).addTo(pairings);
        L.geoJSON(data.pairings, {
          style: { color: "#8e24aa", weight: 2, dashArray: "6 4" },
          onEachFeature: function (f, layer) {
            layer.bindTooltip(function () {
              return el("span", null, f.properties.unit + " — " + f.properties.partner);
            }, { sticky: true });
          },
        }).addTo(pairings);
      }
      mapEl.dataset.activities = String(data.activities.features.length);
      mapEl.dataset.pairings = String(state.pairings ? data.pairings.features.length : 0);
      api.ready = true;
    }

    function load() {
      api.ready = false;
      return fetch(url(), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
        .then(draw)
        .catch(function () { mapEl.dataset.activities = "error"; });
    }

    function select(id, label, choices, value, onChange) {
      var s = el("select", "form-select form-select-sm");
      s.id = id;
      s.setAttribute("aria-label", label);
      choices.forEach(function (c) {
        var o = el("option", null, c[1]);
        o.value = c[0];
        o.selected = c[0] === value;
        s.appendChild(o);
      });
      s.addEventListener("change", function () { onChange(s.value); });
      return s;
    }

    function checkbox(id, label, checked, onChange) {
      var row = el("label");
      var input = el("input");
      input.type = "checkbox";
      input.id = id;
      input.checked = checked;
      input.addEventListener("change", function () { onChange(input.checked); });
      row.appendChild(input);
      row.appendChild(document.createTextNode(" " + label));
      return row;
    }

    var Control = L.Control.extend({
      options: { position: "topright" },
      onAdd: function () {
        var box = el("details", "map-layers activity-filter");
        box.id = "activity-filter";
        box.appendChild(el("summary", null, T.activities || "Activities"));
        var months = [["", T.anyMonth || "—"]].concat((opts.months || []).map(function (m) { return [m, m]; }));
        box.appendChild(select("activity-month", T.month || "Month", months, flt.month,
          function (v) { flt.month = v; load(); }));
        var kinds = [["", T.anyKind || "—"]].concat((opts.kinds || []).map(function (k) { return [k.key, k.label]; }));
        box.appendChild(select("activity-kind", T.kind || "Kind", kinds, flt.kind,
          function (v) { flt.kind = v; load(); }));
        box.appendChild(checkbox("activity-open", T.openOnly || "Open for sign-up", flt.open,
          function (on) { flt.open = on; load(); }));
        box.appendChild(checkbox("activity-pairings", T.pairings || "Pairings", state.pairings,
          function (on) { state.pairings = on; if (state.data) draw(state.data); }));
        L.DomEvent.disableClickPropagation(box);
        L.DomEvent.disableScrollPropagation(box);
        return box;
      },
    });
    new Control().addTo(map);

    map.on("baselayerchange", function (e) {
      var crs = (e.layer.options && e.layer.options.mapserviceCrs) || "wgs84";
      if (crs !== state.crs) { state.crs = crs; load(); }
    });

    var api = {
      ready: false,
      activities: activities,
      pairings: pairings,
      filter: flt,
      load: load,
      ids: function () {
        var out = [];
        activities.eachLayer(function (l) { if (l.activityId) out.push(l.activityId); });
        return out;
      },
    };
    MapService.activities = api;
    setTimeout(load, 0);
    return activities;
  };
})();
