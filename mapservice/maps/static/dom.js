/* The small DOM helpers the map scripts share (served, and inlined in an exported map, like
 * them; loaded before venue-layer.js and activity-layer.js by mapservice.maps.plugins):
 *
 * MapService.dom.el(tag, className, text) — an element, its text set with textContent;
 * MapService.dom.fmt(template, params) — "%(name)s" placeholders of a translated label filled
 * in; the result is only ever used as text, never as HTML. */
(function () {
  "use strict";

  var MapService = (window.MapService = window.MapService || {});
  if (MapService.dom) return;

  MapService.dom = {
    el: function (tag, className, text) {
      var e = document.createElement(tag);
      if (className) e.className = className;
      if (text !== undefined && text !== null) e.textContent = String(text);
      return e;
    },
    fmt: function (template, params) {
      return String(template).replace(/%\((\w+)\)s/g, function (_m, key) { return String(params[key]); });
    },
  };
})();
