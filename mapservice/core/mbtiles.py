"""Raster tiles from an MBTiles file (SQLite; https://github.com/mapbox/mbtiles-spec): a base map
for an intranet deployment that was given a file instead of a tile server
(``MAPSERVICE_TILES=mbtiles:PATH``; the app serves the tiles at ``/tiles/Z/X/Y``).

Pure: the standard library's ``sqlite3``, opened read-only. MBTiles rows count from the south
(TMS); the web's tile ``y`` counts from the north, so the row is flipped here.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from mapservice.core.errors import DomainError
from mapservice.core.i18n import _

__all__ = ["MBTiles", "MBTilesError", "open_mbtiles"]

#: Raster formats a browser draws as an <img>, and their media types.
MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}


class MBTilesError(DomainError):
    """The configured MBTiles file cannot serve a base map (missing, not MBTiles, vector)."""


@dataclass(frozen=True)
class MBTiles:
    """An opened, checked MBTiles file."""

    path: Path
    format: str
    name: str
    attribution: str
    min_zoom: int
    max_zoom: int

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{quote(str(self.path))}?mode=ro", uri=True)

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        """The tile at zoom ``z``, column ``x``, row ``y`` counted from the north (XYZ, as
        Leaflet asks), or None when the file has none there."""
        if not (0 <= z <= 30 and 0 <= x < (1 << z) and 0 <= y < (1 << z)):
            return None
        connection = self._connect()
        try:
            row = connection.execute(
                "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ?"
                " AND tile_row = ?",
                (z, x, (1 << z) - 1 - y),
            ).fetchone()
        finally:
            connection.close()
        return bytes(row[0]) if row else None


def open_mbtiles(path: str | Path) -> MBTiles:
    """Open and check ``path``: an SQLite file with the ``tiles`` table (or view) and a raster
    ``format`` (png, jpg, webp; png when the metadata does not say). Raises
    :class:`MBTilesError` with a one-line message in the current language."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise MBTilesError(
            "mbtiles_missing", _("The MBTiles file %(path)s does not exist.", path=str(file))
        )
    try:
        connection = sqlite3.connect(f"file:{quote(str(file.resolve()))}?mode=ro", uri=True)
        try:
            meta = dict(connection.execute("SELECT name, value FROM metadata").fetchall())
            zooms = connection.execute(
                "SELECT MIN(zoom_level), MAX(zoom_level) FROM tiles"
            ).fetchone()
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise MBTilesError(
            "mbtiles_invalid",
            _("%(path)s is not an MBTiles file: %(reason)s", path=str(file), reason=str(exc)),
        ) from exc
    fmt = str(meta.get("format") or "png").lower()
    if fmt not in MEDIA_TYPES:
        raise MBTilesError(
            "mbtiles_format",
            _(
                "%(path)s holds %(format)s tiles; only raster tiles (png, jpg, webp) can be "
                "a base map.",
                path=str(file),
                format=fmt,
            ),
        )
    low, high = zooms if zooms and zooms[0] is not None else (0, 0)
    return MBTiles(
        path=file.resolve(),
        format="jpg" if fmt == "jpeg" else fmt,
        name=str(meta.get("name") or file.stem),
        attribution=str(meta.get("attribution") or ""),
        min_zoom=int(low),
        max_zoom=int(high),
    )
