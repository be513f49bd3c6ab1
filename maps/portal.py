"""The public "fiber at my address?" page: one search box, a result card, a small map.

The page is plain HTML built here from a *messages file* (every text it shows, see
``maps/static/portal/messages.json``; a city translates the page by copying that
file, translating its values and pointing ``NETGIS_PORTAL_MESSAGES`` at the copy).
Its script (``/static/portal/portal.js``, no framework) asks the server's public
portal endpoints for addresses and the nearby plant and fills the card and the map
(Leaflet, vendored). Every message is escaped into the HTML, and passed to the
script as a JSON data block, which runs nothing.

Examples
--------
>>> page, policy = portal_page(load_messages(None), tiles_url="")
>>> "<h1>Is fiber available at my address?</h1>" in page, "script-src 'self'" in policy
(True, True)
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from netgis.errors import ConfigError
from netgis.maps.assets import VECTORGRID_JS, static_dir
from netgis.maps.basemap import BASEMAP_JS, Basemap
from netgis.maps.csp import content_security_policy, tile_origin, with_policy

#: The default messages (English): the keys every messages file must have.
DEFAULT_MESSAGES = static_dir() / "portal" / "messages.json"


class MessagesError(ConfigError):
    """A messages file that cannot be used: unreadable, not a JSON object, keys wrong."""


def load_messages(path: Path | str | None) -> dict[str, str]:
    """The portal's texts from ``path`` (None: the default English file), checked.

    The file is a JSON object with exactly the keys of :data:`DEFAULT_MESSAGES`,
    each a string; ``{name}`` placeholders are filled in by the page's script.

    Examples
    --------
    >>> load_messages(None)["lang"]
    'en'
    """
    default = json.loads(DEFAULT_MESSAGES.read_text(encoding="utf-8"))
    if not path:
        return {str(k): str(v) for k, v in default.items()}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MessagesError(f"portal messages {path}: cannot read it as JSON ({exc})") from None
    if not isinstance(data, dict):
        raise MessagesError(f"portal messages {path}: not a JSON object")
    missing = sorted(set(default) - set(data))
    unknown = sorted(set(data) - set(default))
    not_text = sorted(k for k, v in data.items() if not isinstance(v, str))
    problems = [f"missing keys: {', '.join(missing)}" if missing else "",
                f"unknown keys: {', '.join(unknown)}" if unknown else "",
                f"not strings: {', '.join(not_text)}" if not_text else ""]
    if any(problems):
        raise MessagesError(f"portal messages {path}: " + "; ".join(p for p in problems if p))
    return {str(k): str(v) for k, v in data.items()}


def _json_block(value: object) -> str:
    """JSON safe inside a ``<script type="application/json">`` element."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def portal_page(messages: dict[str, str], *, tiles_url: str = "",
                base_url: str = "/static", basemap: Basemap | None = None) -> tuple[str, str]:
    """The portal page and its Content-Security-Policy (as in :mod:`maps.csp`).

    ``basemap`` is the server's own base map (``NETGIS_BASEMAP``, drawn by
    basemap.js); else ``tiles_url`` is a base map's ``{z}/{x}/{y}`` template (empty: the
    map shows the plant on a blank background, and no request leaves the server).
    """
    m = {k: html.escape(v) for k, v in messages.items()}
    root = base_url.rstrip("/")
    config = _json_block({"messages": messages, "tilesUrl": tiles_url,
                          "basemap": None if basemap is None else basemap.config()})
    scripts = ""
    if basemap is not None:
        if basemap.vector:
            scripts += f'<script src="{root}/{VECTORGRID_JS[1]}" defer></script>\n'
        scripts += f'<script src="{root}/{BASEMAP_JS}" defer></script>\n'

    page = f"""<!DOCTYPE html>
<html lang="{m['lang']}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{m['title']}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{root}/vendor/leaflet/dist/leaflet.css">
<link rel="stylesheet" href="{root}/portal/portal.css">
<script type="application/json" id="portal-config">{config}</script>
<script src="{root}/vendor/leaflet/dist/leaflet.js" defer></script>
{scripts}<script src="{root}/portal/portal.js" defer></script>
</head>
<body>
<header>
<h1>{m['heading']}</h1>
<p>{m['intro']}</p>
</header>
<main>
<form id="portal-form" role="search" novalidate>
<label for="portal-address">{m['label']}</label>
<div class="portal-combo">
<input id="portal-address" name="q" type="text" role="combobox" autocomplete="off"
 spellcheck="false" aria-autocomplete="list" aria-expanded="false"
 aria-controls="portal-options" aria-describedby="portal-hint">
<button type="submit">{m['button']}</button>
<ul id="portal-options" role="listbox" aria-label="{m['options_label']}" hidden></ul>
</div>
<p id="portal-hint" class="portal-hint">{m['hint']}</p>
</form>
<p id="portal-status" class="portal-status" role="status" aria-live="polite"></p>
<section id="portal-result" class="portal-result" aria-live="polite" hidden>
<h2 id="portal-result-heading"></h2>
<p id="portal-result-text"></p>
<ul id="portal-nearest" class="portal-nearest" aria-label="{m['nearest_label']}" hidden></ul>
</section>
<section id="portal-map-section" class="portal-map-section" aria-label="{m['map_label']}" hidden>
<div id="portal-map" class="portal-map"></div>
<p class="portal-legend"><span class="portal-key portal-key-address"></span> {m['map_address']}
<span class="portal-key portal-key-fiber"></span> {m['map_fiber']}</p>
</section>
</main>
<footer><p>{m['footer']}</p></footer>
</body>
</html>
"""
    origin = tile_origin(tiles_url) if tiles_url else None
    policy = content_security_policy(page, [origin] if origin else [])
    return with_policy(page, policy), policy
