"""Every ``href`` and ``src`` of the study's generated pages, and whether it resolves to a file."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlparse

LINK = re.compile(r"""(?:href|src)\s*=\s*["']([^"']*)["']""", re.I)


def local_links(page: Path) -> list[str]:
    """The page's links to files (not to the web, a data: URI, a mail address or an anchor of the page)."""
    out = []
    for link in LINK.findall(page.read_text(encoding="utf-8", errors="replace")):
        parsed = urlparse(link)
        if parsed.scheme in ("http", "https", "data", "mailto", "javascript") or link.startswith(("#", "//")):
            continue
        out.append(link)
    return out


def broken_links(reports: Path) -> dict[str, list[str]]:
    """``{page: [links that resolve to no existing file]}`` over every HTML page under ``reports``."""
    broken = {}
    pages = sorted(reports.glob("*.html"))
    assert pages, f"no pages in {reports}"
    for page in pages:
        missing = [link for link in local_links(page)
                   if not (page.parent / unquote(urlparse(link).path)).resolve().is_file()]
        if missing:
            broken[page.name] = missing
    return broken
