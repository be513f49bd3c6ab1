"""Content-Security-Policy of the map pages.

A Folium page is a dozen inline scripts (the map, each layer, the legend) plus
Leaflet. The policy lets scripts run only from the page's own origin
(``'self'``: Leaflet under ``/static``) and the inline scripts the page was
rendered with, each named by its SHA-256 hash. Hashes rather than a nonce:
the page is the same for everyone who asks (it can be saved, cached, served
as a file), and a hash covers exactly the script that was rendered, so even a
``<script>`` an attacker got into the page some other way does not run, nor
does any inline event handler (``onerror=``) or ``javascript:`` URL.

Styles need ``'unsafe-inline'``: Folium writes ``<style>`` blocks and the
legend and rank labels carry ``style=""`` attributes (in HTML given to
Leaflet), which no hash can allow without ``'unsafe-hashes'``. Styles cannot
run script, and every value put into that HTML is escaped anyway.

Images come from the page's origin, ``data:`` (the inlined Leaflet images of a
self-contained page) and the base-map tile server, if any.

Examples
--------
>>> policy = content_security_policy("<html><script>var a = 1;</script></html>")
>>> policy.split("; ")[1]
"script-src 'self' 'sha256-+dZ6udsWxNVoGfScAq7t5IIF5UJb4F6RhjbN6oe1p4w='"
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

import folium

from netgis.maps.figure import figure_of

#: An inline or external script element (HTML parsing: raw text up to ``</script``).
_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)
_HAS_SRC = re.compile(r"\bsrc\s*=", re.IGNORECASE)
_HEAD = re.compile(r"<head\b[^>]*>", re.IGNORECASE)


def script_hashes(page: str) -> list[str]:
    """``'sha256-...'`` sources of every inline script of ``page``, in page order.

    The HTML parser turns CR LF and lone CR into LF before a script's text is
    hashed by the browser; so does this.
    """
    out: list[str] = []
    for attrs, body in _SCRIPT.findall(page):
        if _HAS_SRC.search(attrs):
            continue  # an external script: allowed (or not) by its origin
        text = body.replace("\r\n", "\n").replace("\r", "\n")
        digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
        source = f"'sha256-{digest}'"
        if source not in out:
            out.append(source)
    return out


def content_security_policy(page: str, img_sources: Iterable[str] = (), *,
                            forms: bool = False) -> str:
    """The policy for ``page``: its inline scripts by hash, images from ``img_sources`` too;
    ``forms``: its forms may be sent to the page's own origin (else to none)."""
    images = ["'self'", "data:", *dict.fromkeys(img_sources)]
    return "; ".join([
        "default-src 'none'",
        "script-src " + " ".join(["'self'", *script_hashes(page)]),
        "style-src 'self' 'unsafe-inline'",
        "img-src " + " ".join(images),
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'" if forms else "form-action 'none'",
        "object-src 'none'",
    ])


def tile_origin(url: str) -> str | None:
    """The CSP source of a tile URL template; None for a relative URL ('self' covers it).

    ``https://{s}.tile.example.org/{z}/{x}/{y}.png`` becomes ``https://*.tile.example.org``.

    Examples
    --------
    >>> tile_origin("https://{s}.tile.example.org/{z}/{x}/{y}.png"), tile_origin("/t/{z}.png")
    ('https://*.tile.example.org', None)
    """
    parts = urlsplit(url.replace("{s}", "__sub__"))
    if not parts.scheme or not parts.netloc:
        return None
    host = parts.netloc.replace("__sub__.", "*.").replace("__sub__", "*")
    if "{" in host:  # any other placeholder in the host name: any subdomain
        host = "*." + host.split(".", 1)[-1] if "." in host else "*"
    return f"{parts.scheme}://{host}"


def tile_sources(m: folium.Map) -> list[str]:
    """The origins the map's base-map tiles come from, as CSP sources (see :func:`tile_origin`).

    Examples
    --------
    >>> m = folium.Map(tiles="https://{s}.tile.example.org/{z}/{x}/{y}.png", attr="x")
    >>> tile_sources(m)
    ['https://*.tile.example.org']
    """
    origins = [tile_origin(str(child.tiles)) for child in m._children.values()
               if isinstance(child, folium.TileLayer)]
    return [o for o in origins if o is not None]


def with_policy(page: str, policy: str) -> str:
    """``page`` with ``policy`` as a ``<meta http-equiv>`` at the top of its head.

    It must come before the first script to govern it; the rendered scripts
    are not touched, so their hashes stay valid.
    """
    meta = f'<meta http-equiv="Content-Security-Policy" content="{html.escape(policy)}">'
    head = _HEAD.search(page)
    if head is None:
        return meta + page
    return page[:head.end()] + "\n" + meta + page[head.end():]


def secure_html(m: folium.Map) -> tuple[str, str]:
    """Render ``m``: the page (the policy in its head) and the policy for a response header."""
    page: str = figure_of(m).render()
    policy = content_security_policy(page, tile_sources(m))
    return with_policy(page, policy), policy
