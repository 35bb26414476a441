"""Fail when the built HTML documentation would load a script, style or font from the network.

Run by ``make docs`` after the build::

    python docs/check_offline.py docs/_build/html

Checks every ``.html`` file for ``<script src=...>``, ``<link href=...>`` (stylesheets, preloads,
icons), ``<img src=...>`` and ``<iframe src=...>`` with a remote URL (``http:``, ``https:`` or
protocol-relative ``//``), and every ``<style>`` element and ``.css`` file for a remote
``@import`` or ``url(...)``.
Plain hyperlinks (``<a href>``) are allowed: following one is the reader's choice. Exits 1 and
prints ``file: tag url`` for each offender; exits 2 when the directory holds no HTML.
"""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path

_REMOTE = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)
_CSS_URL = re.compile(r"""(?:@import\s+|url\(\s*)["']?((?:https?:)?//[^"')\s]+)""", re.IGNORECASE)
#: (tag, attribute) pairs whose URL the browser fetches when the page loads.
_LOADED = {("script", "src"), ("link", "href"), ("img", "src"), ("iframe", "src"),
           ("source", "src"), ("embed", "src"), ("object", "data")}


class _Finder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:  # CSS inside <style>: a remote @import or url() is fetched
            self.found += [("style", url) for url in _CSS_URL.findall(data)]

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "style":
            self._in_style = True
        for name, value in attrs:
            if (tag, name) in _LOADED and value and _REMOTE.match(value):
                if tag == "link" and _is_plain_link(attrs):
                    continue
                self.found.append((tag, value))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "style":
            self._in_style = False


def _is_plain_link(attrs: list[tuple[str, str | None]]) -> bool:
    """``<link rel="canonical|alternate|...">`` is metadata, not something the page loads."""
    rel = {r.lower() for name, v in attrs if name == "rel" and v for r in v.split()}
    loads = {"stylesheet", "preload", "modulepreload", "icon", "shortcut", "apple-touch-icon",
             "manifest", "prefetch", "preconnect", "dns-prefetch"}
    return bool(rel) and not rel & loads


def remote_loads(root: Path) -> tuple[int, list[str]]:
    """Number of HTML files under ``root`` and one ``file: tag url`` line per remote load."""
    problems: list[str] = []
    pages = sorted(root.rglob("*.html"))
    for page in pages:
        finder = _Finder()
        finder.feed(page.read_text(encoding="utf-8", errors="replace"))
        problems += [f"{page.relative_to(root)}: <{tag}> {url}" for tag, url in finder.found]
    for sheet in sorted(root.rglob("*.css")):
        text = sheet.read_text(encoding="utf-8", errors="replace")
        problems += [f"{sheet.relative_to(root)}: css {u}" for u in _CSS_URL.findall(text)]
    return len(pages), problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python docs/check_offline.py BUILD_HTML_DIR", file=sys.stderr)
        return 2
    root = Path(args[0])
    n_pages, problems = remote_loads(root)
    if n_pages == 0:
        print(f"check_offline: no .html file under {root}; build the docs first", file=sys.stderr)
        return 2
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        print(f"check_offline: {len(problems)} remote load(s) in {n_pages} pages", file=sys.stderr)
        return 1
    print(f"check_offline: {n_pages} pages, no script, style or font loaded from the network")
    return 0


if __name__ == "__main__":
    sys.exit(main())
