"""The built site and the slide decks, checked in a real browser with no network.

Headless Chromium (Debian's ``chromium``, driven by playwright) opens every chapter
page and every deck from a local HTTP server, with every request that leaves
localhost blocked, and checks what a reader would see: mathematics typeset, images
loaded, no console errors, internal links that resolve.  Screenshots go to
``_build/screenshots/``.  Without a browser these tests skip and say how to get one.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import nbformat
import pytest

from test_book import CHAPTERS, HTML

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = HTML.parent / "screenshots"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGES = ["chapters/preface"] + CHAPTERS


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    if not (HTML / "index.html").exists():
        pytest.fail("the book is not built: run `make book`")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no Chromium: install it with `apt-get install chromium` (CI does) to run "
                    "the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


class Visit:
    """One page, offline: requests leaving localhost are aborted and recorded."""

    def __init__(self, browser, url: str, viewport=(1280, 900)):
        self.errors, self.blocked = [], []
        self.page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        self.page.route("**/*", self._route)
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url, wait_until="load")

    def _route(self, route):
        host = urlparse(route.request.url).hostname
        if route.request.url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def images_loaded(self) -> list[str]:
        """Force lazy images to load; return the sources of those that failed."""
        return self.page.evaluate("""async () => {
            const imgs = [...document.querySelectorAll('img')];
            imgs.forEach(i => i.loading = 'eager');
            await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => {
                i.addEventListener('load', r); i.addEventListener('error', r); })));
            return imgs.filter(i => !(i.naturalWidth > 0)).map(i => i.src.slice(0, 120));
        }""")

    def close(self):
        self.page.close()


def _local_target(html_root: Path, page_url: str, href: str) -> Path | None:
    url = urlparse(urljoin(page_url, href))
    if url.hostname not in ("127.0.0.1", "localhost"):
        return None
    path = unquote(url.path).lstrip("/") or "index.html"
    target = html_root / path
    return target / "index.html" if target.is_dir() else target


@pytest.mark.parametrize("docname", PAGES)
def test_chapter_page_in_browser(browser, server, docname):
    visit = Visit(browser, f"{server}{docname}.html")
    page = visit.page
    try:
        typeset = page.evaluate("""async () => {
            if (!window.MathJax || !MathJax.startup) return -1;
            await MathJax.startup.promise;
            return document.querySelectorAll('mjx-container').length; }""")
        assert typeset > 0, "MathJax did not typeset any mathematics"
        visible = page.evaluate("""() => {
            const main = document.querySelector('main').cloneNode(true);
            main.querySelectorAll('pre, code, mjx-container, script').forEach(e => e.remove());
            return main.innerText; }""")
        for raw in ("$$", "\\begin{", "\\frac", "{eq}", "{glue"):
            assert raw not in visible, f"raw {raw!r} left in the visible text"
        failed = visit.images_loaded()
        assert not failed, f"images that did not load: {failed}"
        n_images = page.evaluate("document.querySelectorAll('main img').length")
        if docname != "chapters/preface":
            assert n_images >= 2
        hrefs = page.evaluate("[...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))")
        broken = []
        for href in hrefs:
            if href.startswith(("mailto:", "javascript:")):
                continue
            if href.startswith("#"):
                anchor = unquote(href[1:])
                if anchor and not page.evaluate("(id) => !!document.getElementById(id)", anchor):
                    broken.append(href)
                continue
            target = _local_target(HTML, page.url, href)
            if target is not None and not target.exists():
                broken.append(href)
        assert not broken, f"internal links that do not resolve: {broken}"
        assert not visit.blocked, f"the page tried to reach the network: {visit.blocked[:5]}"
        assert not visit.errors, f"console errors: {visit.errors[:5]}"
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{Path(docname).name}.png"), full_page=True)
    finally:
        visit.close()


def expected_slides(name: str) -> int:
    nb = nbformat.read(HTML / "notebooks" / f"{name}.ipynb", as_version=4)
    kinds = [c.metadata.get("slideshow", {}).get("slide_type") for c in nb.cells]
    return sum(k in ("slide", "subslide") for k in kinds)


@pytest.mark.parametrize("docname", PAGES)
def test_slide_deck_in_browser(browser, server, docname):
    name = Path(docname).name
    deck = HTML / "slides" / f"{name}.slides.html"
    assert deck.exists(), f"no deck for {docname}"
    visit = Visit(browser, f"{server}slides/{name}.slides.html", viewport=(1280, 800))
    page = visit.page
    try:
        page.wait_for_function("window.Reveal && Reveal.isReady && Reveal.isReady()", timeout=30000)
        total = page.evaluate("Reveal.getTotalSlides()")
        assert total == expected_slides(name), "slides in the deck != slide cells in the chapter"
        assert total >= (2 if docname == "chapters/preface" else 4)
        rendered = page.evaluate("""() => new Promise(resolve =>
            MathJax.Hub.Queue(() => resolve(document.querySelectorAll('.MathJax_CHTML, .mjx-chtml').length)))""")
        assert rendered > 0, "no mathematics typeset in the deck"
        text = page.evaluate("""() => { const s = document.querySelector('.slides').cloneNode(true);
            s.querySelectorAll('pre, code, script, .MathJax_CHTML, .mjx-chtml').forEach(e => e.remove());
            return s.textContent; }""")
        for raw in ("{prf:", "{glue", "{eq}", "{footcite", "```{", "{exercise}", "\\begin{"):
            assert raw not in text, f"raw MyST/LaTeX {raw!r} on a slide"
        failed = visit.images_loaded()
        assert not failed, f"images that did not load: {failed}"
        if docname != "chapters/preface":
            assert page.evaluate("document.querySelectorAll('.slides img').length") >= 1, "no figure"
        assert page.evaluate("document.querySelectorAll('aside.notes').length") >= 1 or \
            docname == "chapters/preface", "no speaker notes"
        assert not visit.blocked, f"the deck tried to reach the network: {visit.blocked[:5]}"
        assert not visit.errors, f"console errors: {visit.errors[:5]}"
        SHOTS.mkdir(parents=True, exist_ok=True)
        for index in range(min(3, total)):
            page.evaluate(f"Reveal.slide({index})")
            page.wait_for_timeout(400)
            page.screenshot(path=str(SHOTS / f"{name}.slide{index + 1}.png"))
    finally:
        visit.close()


def test_slides_index_lists_every_deck():
    index = (HTML / "slides" / "index.html").read_text()
    for docname in PAGES:
        assert f"{Path(docname).name}.slides.html" in index


def test_offline_assets_are_local():
    """The site's MathJax and the decks' reveal.js/MathJax are files of the build."""
    page = (HTML / "chapters" / "preface.html").read_text()
    assert "cdn.jsdelivr" not in page and "mathjax@3" not in page.lower()
    deck = (HTML / "slides" / "preface.slides.html").read_text()
    for remote in ("unpkg.com", "cdnjs.cloudflare.com"):
        assert remote not in deck, f"{remote} in a deck"
    assert (HTML / "slides" / "vendor" / "reveal.js" / "dist" / "reveal.js").exists()
    assert (HTML / "slides" / "vendor" / "mathjax" / "MathJax.js").exists()
