"""Every map the app draws, built with folium (issue 18): pure builders (no Flask) for the one
map, a venue's small map and the registration picker; our folium plugins (the fast venue
layer, the legend); and the helper that points folium's scripts and styles at the app.

    from mapservice.maps import one_map
    m = one_map(committee="runzhou", database_url="sqlite:///instance/mapservice.db")
    m.save("map.html")

(``docs/maps.md``: filters, base maps, the file to send, extending the map.)
"""

from __future__ import annotations

from mapservice.maps.assets import localize
from mapservice.maps.builders import map_labels, one_map, picker_map, venue_map, venue_types

__all__ = ["localize", "map_labels", "one_map", "picker_map", "venue_map", "venue_types"]
