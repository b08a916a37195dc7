"""Content-Security-Policy and X-Frame-Options for the HTML pages (Swagger UI, ReDoc).

The policy is built from the page as served: each inline ``<script>`` is allowed by its
SHA-256 hash and each external script by its origin, so the page keeps working when its
template or asset location changes, and nothing else may run. Styles may be inline
(both UIs set style attributes at run time), images and fonts may be data: URIs, the
page may fetch only from this origin (the OpenAPI document), and ReDoc's search runs in
a blob: worker. No page may be framed.
"""

import base64
import hashlib
from html.parser import HTMLParser
from urllib.parse import urlsplit

from flask import Flask
from werkzeug.wrappers import Response

FIXED_DIRECTIVES = [
    "default-src 'none'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'none'",
]


class _Scripts(HTMLParser):
    """Collects inline script bodies and external script origins."""

    def __init__(self):
        super().__init__(convert_charrefs=False)
        self.inline: list[str] = []
        self.origins: set[str] = set()
        self._in_script = False
        self._current: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag != "script":
            return
        src = dict(attrs).get("src")
        if src:
            parts = urlsplit(src)
            if parts.scheme and parts.netloc:
                self.origins.add(f"{parts.scheme}://{parts.netloc}")
        else:
            self._in_script, self._current = True, []

    def handle_data(self, data):
        if self._in_script:
            self._current.append(data)

    def handle_endtag(self, tag):
        if tag == "script" and self._in_script:
            self.inline.append("".join(self._current))
            self._in_script = False


def policy_for(html: str) -> str:
    scripts = _Scripts()
    scripts.feed(html)
    scripts.close()
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in scripts.inline
    ]
    script_src = " ".join(["script-src 'self'", *sorted(scripts.origins), *hashes])
    return "; ".join([FIXED_DIRECTIVES[0], script_src, *FIXED_DIRECTIVES[1:]])


def _html_page_headers(response: Response) -> Response:
    if response.mimetype == "text/html" and not response.direct_passthrough:
        response.headers["Content-Security-Policy"] = policy_for(response.get_data(as_text=True))
        response.headers["X-Frame-Options"] = "DENY"
    return response


def register(app: Flask) -> None:
    app.after_request(_html_page_headers)
