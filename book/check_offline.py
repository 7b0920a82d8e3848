"""Check that the built book loads nothing from the network.

Usage: python book/check_offline.py [_build/html]

For every .html page of the build it checks that
  * every <script src>, resource <link href> (stylesheet, icon, preload, ...), <img src>,
    <iframe src>, <source src>, <video src>, <audio src> and <embed src> is a relative
    path to a file that exists in the build (no scheme such as https:, no
    protocol-relative //host, no site-absolute /path, all of which fail offline or
    from file://); data: URIs are allowed;
  * inline <script> code and the stylesheets the pages load contain no remote URL to
    fetch (an @import or url() of http(s), or a CDN address in code);
  * MathJax is loaded at most once, and exactly once on every page that has math;
  * Plotly (for the sliders of began_lite.sliders) is loaded from the build's
    _static/plotly/plotly.min.js, exactly once on every page with a slider (a
    ``began-slider`` div) and on no other page (it weighs 4.8 MB);
and, for the build as a whole, that the local MathJax entry script and at least one of
its woff fonts exist.

It exits with status 1 and lists the offending pages, or prints a one-line summary and
exits with 0. Standard library only.
"""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

# Where `make book` puts MathJax (see _config.yml: mathjax_path, html_static_path).
MATHJAX_DIR = Path("_static") / "mathjax"
MATHJAX_ENTRY = MATHJAX_DIR / "tex-chtml-full.js"
MATHJAX_FONTS = MATHJAX_DIR / "output" / "chtml" / "fonts" / "woff-v2"

# <link rel=...> values that make the browser fetch the href.
FETCHING_RELS = {
    "stylesheet", "icon", "shortcut", "apple-touch-icon", "mask-icon", "manifest",
    "preload", "modulepreload", "prefetch", "preconnect", "dns-prefetch", "prerender",
}
SRC_TAGS = {"script", "img", "iframe", "source", "video", "audio", "embed", "track"}
# Inline <script> types that hold data, not code (e.g. ipywidgets state).
DATA_SCRIPT_TYPE = re.compile(r"json|x-thebe-config|text/template", re.I)
REMOTE_IN_CODE = re.compile(r"""["'(]\s*((?:https?:)?//[^"')\s]+)""", re.I)
REMOTE_IN_CSS = re.compile(r"""(?:@import\s+|url\(\s*)["']?((?:https?:)?//[^"')\s]+)""", re.I)
# Harmless URLs that appear in code without being fetched (XML namespaces).
NAMESPACE_URL = re.compile(r"^(?:https?:)?//www\.w3\.org/", re.I)
MATH_CLASS = re.compile(r"(?:^|\s)math(?:\s|$)")
SLIDER_CLASS = re.compile(r"(?:^|\s)began-slider(?:\s|$)")
PLOTLY_ENTRY = Path("_static") / "plotly" / "plotly.min.js"


class PageScanner(HTMLParser):
    """Collect what a page loads: resource URLs, inline code, whether it has math."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.resources: list[tuple[str, str]] = []  # (tag description, url)
        self.scripts: list[str] = []  # every <script src>
        self.inline_code: list[str] = []
        self.has_math = False
        self.has_slider = False
        self._in_code_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if MATH_CLASS.search(a.get("class", "")):
            self.has_math = True
        if SLIDER_CLASS.search(a.get("class", "")):
            self.has_slider = True
        if tag in SRC_TAGS and a.get("src"):
            self.resources.append((f"<{tag} src>", a["src"]))
            if tag == "script":
                self.scripts.append(a["src"])
        if tag in {"img", "source"} and a.get("srcset"):
            for part in a["srcset"].split(","):
                if part.strip():
                    self.resources.append((f"<{tag} srcset>", part.split()[0]))
        if tag == "link" and a.get("href"):
            rels = set(a.get("rel", "").lower().split())
            if rels & FETCHING_RELS:
                self.resources.append((f"<link rel={a.get('rel')}>", a["href"]))
        if tag == "script" and not a.get("src"):
            self._in_code_script = not DATA_SCRIPT_TYPE.search(a.get("type", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_code_script = False

    def handle_data(self, data: str) -> None:
        if self._in_code_script:
            self.inline_code.append(data)


def local_target(page: Path, url: str) -> tuple[Path | None, str | None]:
    """Resolve a resource URL of `page`; return (path, None) or (None, why it is not local)."""
    parts = urlsplit(url)
    if parts.scheme == "data":
        return None, None
    if parts.scheme or parts.netloc or url.startswith("//"):
        return None, "remote"
    if parts.path.startswith("/"):
        return None, "site-absolute (breaks from file://)"
    if not parts.path:
        return None, None
    return (page.parent / unquote(parts.path)).resolve(), None


def remote_urls(text: str, pattern: re.Pattern) -> list[str]:
    return [u for u in pattern.findall(text) if not NAMESPACE_URL.match(u)]


def html_pages(build: Path) -> list[Path]:
    """The pages of the build, not the theme's Jinja templates copied into _static/."""
    return sorted(p for p in build.rglob("*.html") if "_static" not in p.relative_to(build).parts)


def check(build: Path) -> list[str]:
    build = build.resolve()
    problems: list[str] = []
    pages = html_pages(build)
    if not pages:
        return [f"{build}: no .html pages (is this the output of `make book`?)"]

    entry = build / MATHJAX_ENTRY
    if not entry.is_file():
        problems.append(f"{MATHJAX_ENTRY}: the local MathJax entry script is missing")
    if not any(build.joinpath(MATHJAX_FONTS).glob("*.woff")):
        problems.append(f"{MATHJAX_FONTS}: no MathJax woff font in the build")

    stylesheets: set[Path] = set()
    for page in pages:
        rel = page.relative_to(build)
        scan = PageScanner()
        scan.feed(page.read_text(encoding="utf-8", errors="replace"))
        for what, url in scan.resources:
            target, why = local_target(page, url)
            if why:
                problems.append(f"{rel}: {what} {url} is {why}")
            elif target is not None and not target.exists():
                problems.append(f"{rel}: {what} {url} does not exist in the build")
            elif target is not None and target.suffix == ".css":
                stylesheets.add(target)
        for code in scan.inline_code:
            for url in remote_urls(code, REMOTE_IN_CODE):
                problems.append(f"{rel}: inline <script> refers to the remote {url}")

        mathjax = [s for s in scan.scripts if "mathjax" in s.lower()]
        if len(mathjax) > 1:
            problems.append(f"{rel}: MathJax is loaded {len(mathjax)} times: {mathjax}")
        elif scan.has_math and not mathjax:
            problems.append(f"{rel}: the page has math but does not load MathJax")
        for src in mathjax:
            target, why = local_target(page, src)
            if why or target != entry:
                problems.append(f"{rel}: MathJax is loaded from {src}, not from {MATHJAX_ENTRY}")

        problems += check_plotly(build, page, scan)

    for css in sorted(stylesheets):
        for url in remote_urls(css.read_text(encoding="utf-8", errors="replace"), REMOTE_IN_CSS):
            problems.append(f"{css.relative_to(build)}: stylesheet fetches the remote {url}")
    return problems


def check_plotly(build: Path, page: Path, scan: PageScanner) -> list[str]:
    """Plotly once, from the build, on a page with a slider; nowhere else."""
    rel = page.relative_to(build)
    plotly = [s for s in scan.scripts if "plotly" in s.lower()]
    if scan.has_slider and len(plotly) != 1:
        return [f"{rel}: the page has a slider and loads Plotly {len(plotly)} times: {plotly}"]
    if not scan.has_slider and plotly:
        return [f"{rel}: the page has no slider but loads Plotly: {plotly}"]
    problems = []
    for src in plotly:
        target, why = local_target(page, src)
        if why or target != build / PLOTLY_ENTRY:
            problems.append(f"{rel}: Plotly is loaded from {src}, not from {PLOTLY_ENTRY}")
    return problems


def main(argv: list[str]) -> int:
    build = Path(argv[1]) if len(argv) > 1 else Path("_build/html")
    problems = check(build)
    if problems:
        print(f"check_offline: {len(problems)} problem(s) in {build}: the book would "
              "need the network or would not render math:", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        return 1
    n = len(html_pages(build.resolve()))
    print(f"check_offline: {n} pages in {build} load only local files; MathJax is local.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
