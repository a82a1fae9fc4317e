"""The headers every page (and its error pages and static files) answers with.

The pages run no inline script and no ``eval``; scripts, styles, fonts and frames come from
this origin only; media plays from this origin and from the ``blob:`` URLs Media Source
Extensions give the ``<video>`` element. Nothing may frame a page (clickjacking), and a
page's address (which names a private video's id) never leaves the origin as a referrer.
"""

from __future__ import annotations

CSP_DIRECTIVES = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    "connect-src 'self' blob:",
    "font-src 'self'",
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)
"""``data:`` images are the SVG icons inside Shaka's ``controls.css``; ``blob:`` images are the
posters and storyboard sprites of private videos, fetched with the owner's token, and the
storyboard's WebVTT that names such a sprite is read from a ``blob:`` URL (``connect-src``)."""
CONTENT_SECURITY_POLICY = "; ".join(CSP_DIRECTIVES)

PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}
"""``X-Frame-Options`` is ``frame-ancestors`` for browsers that predate it."""
