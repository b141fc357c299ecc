"""Security headers for the app's own HTML pages.

User content carries its own headers (``responses.content_response``:
nosniff and a sandboxing CSP); this tween covers the pages we render.
"""
from __future__ import annotations

PAGE_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def security_headers_tween_factory(handler, registry):
    def security_headers_tween(request):
        response = handler(request)
        if response.content_type == "text/html":
            for name, value in PAGE_HEADERS.items():
                response.headers.setdefault(name, value)
        return response

    return security_headers_tween


def includeme(config):
    # the debug toolbar injects inline code into pages: development turns this off
    if config.registry.pastefile.settings.page_security_headers:
        config.add_tween("pastefile.webapp.tweens.security_headers_tween_factory")
