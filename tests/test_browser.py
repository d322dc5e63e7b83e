"""The built site and the slide decks, checked in a real browser with no network.

Headless Chromium (Debian's ``chromium``, driven by playwright) opens every chapter
page and every deck from a local HTTP server, with every request that leaves
localhost blocked, and checks what a reader would see: mathematics typeset, images
loaded, no console errors, internal links that resolve.  At a phone's 390 x 844 the
menu button opens the chapter list and a chapter can be reached from it; at 390 px and
1280 px no page is wider than the window (wide tables and figures scroll in their own
boxes).  Search works from the local server and, titles only with a note saying so,
from ``file://``.  The footer, the general index and the proof index are checked on
the built pages.  Screenshots go to ``_build/screenshots/``.  Without a browser these
tests skip and say how to get one.
"""

from __future__ import annotations

import datetime
import functools
import html
import http.server
import re
import shutil
import subprocess
import threading
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import nbformat
import pytest
import yaml
from bs4 import BeautifulSoup
from test_book import BUILD, CHAPTERS, HTML, ROOT

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
        if route.request.url.startswith(("data:", "blob:", "file:")) or \
                host in ("127.0.0.1", "localhost"):
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
        assert not visit.blocked, f"requests to the network: {visit.blocked[:5]}"
        assert not visit.errors, f"console errors: {visit.errors[:5]}"
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{Path(docname).name}.png"), full_page=True)
    finally:
        visit.close()


def expected_slides(name: str) -> int:
    nb = nbformat.read(BUILD / "slides_src" / f"{name}.ipynb", as_version=4)  # what the deck shows
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
    """In the book's order, each with its chapter's title, its page, and a deck that
    links back to its page."""
    index = (HTML / "slides" / "index.html").read_text()
    decks = [f"{Path(d).name}.slides.html" for d in PAGES]
    for deck in decks:
        assert deck in index
    positions = [index.index(f'href="{deck}"') for deck in decks]
    assert positions == sorted(positions), "the decks are not in the book's order"
    for docname in PAGES:
        name = Path(docname).name
        assert f'href="../chapters/{name}.html"' in index
        deck = (HTML / "slides" / f"{name}.slides.html").read_text()
        assert f'href="../chapters/{name}.html"' in deck
        page = (HTML / f"{docname}.html").read_text()
        title = re.sub(r"<[^>]+>", "", re.search(r"<h1>(.*?)</h1>", page, re.S)[1])
        title = re.sub(r"^\d+\.\s*", "", title.replace("#", "")).strip()
        assert f">{html.escape(title)}</a>" in index.replace("&#x27;", "'").replace(
            "&#39;", "'") or f">{title}</a>" in index, title


def test_slide_handouts_have_one_page_per_slide_page(browser):
    """`make slides-pdf` (two decks here): every page reveal.js laid out is printed, and
    no more (no blank last page); a deck has at least a page per slide."""
    import slides_pdf

    counts = slides_pdf.print_decks(BUILD, ["preface", "adam"], browser=browser)
    assert set(counts) == {"preface", "adam"}
    for name, (laid_out, printed) in counts.items():
        assert printed == laid_out >= expected_slides(name), (name, laid_out, printed)
        pdf = HTML / "slides" / "pdf" / f"{name}.pdf"
        assert pdf.read_bytes().startswith(b"%PDF")
        if shutil.which("pdftotext"):  # .ci/run installs it (poppler-utils)
            text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True,
                                  capture_output=True, text=True).stdout
            pages = text.split("\f")[:-1]  # each page ends with a form feed
            assert len(pages) == printed and all(p.strip() for p in pages), (
                f"{name}: a blank page")
            assert "??" not in "".join(pages)


def deck_slides(name: str) -> list:
    """The slides of a deck, in order: vertical stacks count each of their slides."""
    html = (HTML / "slides" / f"{name}.slides.html").read_text()
    top = BeautifulSoup(html, "html.parser").select("div.reveal > div.slides > section")
    slides = []
    for section in top:
        slides += section.find_all("section", recursive=False) or [section]
    return slides


@pytest.mark.parametrize("docname", PAGES)
def test_every_slide_has_a_title(docname):
    """A slide that starts with a figure is titled with its section's heading."""
    slides = deck_slides(Path(docname).name)
    assert len(slides) == expected_slides(Path(docname).name)
    untitled = [i for i, s in enumerate(slides, 1) if not s.find(["h1", "h2", "h3"])]
    assert not untitled, f"slides without a title: {untitled}"


@pytest.mark.parametrize("docname", PAGES)
def test_every_slide_has_speaker_notes(docname):
    """reveal.js shows a slide's <aside class="notes"> in the speaker view (key s)."""
    name = Path(docname).name
    slides = deck_slides(name)
    assert len(slides) == expected_slides(name)
    bare = [i for i, s in enumerate(slides, 1)
            if not any(a.get_text(strip=True) for a in s.find_all("aside", class_="notes"))]
    assert not bare, f"{name}: slides without speaker notes: {bare}"


def test_offline_assets_are_local():
    """The site's MathJax and the decks' reveal.js/MathJax are files of the build."""
    page = (HTML / "chapters" / "preface.html").read_text()
    assert "cdn.jsdelivr" not in page and "mathjax@3" not in page.lower()
    deck = (HTML / "slides" / "preface.slides.html").read_text()
    for remote in ("unpkg.com", "cdnjs.cloudflare.com"):
        assert remote not in deck, f"{remote} in a deck"
    assert (HTML / "slides" / "vendor" / "reveal.js" / "dist" / "reveal.js").exists()
    assert (HTML / "slides" / "vendor" / "mathjax" / "MathJax.js").exists()


# --- the site on a phone and on a laptop ---------------------------------------------

PHONE, LAPTOP = (390, 844), (1280, 900)


def site_pages() -> list[str]:
    """Every HTML page of the site a reader can reach (not the slide decks)."""
    pages = sorted(str(p.relative_to(HTML)) for p in (HTML / "chapters").glob("*.html"))
    return pages + [n for n in ("genindex.html", "prf-prf.html", "search.html")
                    if (HTML / n).exists()]


def in_view(page, selector: str) -> bool:
    """Whether the element is displayed and lies (mostly) inside the window."""
    return page.evaluate("""(sel) => { const e = document.querySelector(sel);
        if (!e || e.offsetParent === null && getComputedStyle(e).position !== 'fixed')
            return false;
        const r = e.getBoundingClientRect();
        return r.width > 0 && r.left >= -1 && r.right <= innerWidth + 1; }""", selector)


def test_phone_menu_opens_and_navigates(browser, server):
    """At 390 x 844 the menu button opens the chapter list; a link in it works."""
    start, target = PAGES[1], PAGES[2]
    visit = Visit(browser, f"{server}{start}.html", viewport=PHONE)
    page = visit.page
    try:
        sidebar = ".bd-sidebar-primary"
        assert not in_view(page, sidebar), "the chapter list is open before the tap"
        buttons = page.locator(".primary-toggle:visible")
        assert buttons.count() >= 1, "no visible menu button at 390 px"
        buttons.first.click()
        page.wait_for_timeout(600)  # the drawer slides in
        assert in_view(page, sidebar), "the menu button did not open the chapter list"
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "phone-menu.png"))
        href = f"{Path(target).name}.html"
        link = page.locator(f"{sidebar} a[href$='{href}']:visible").first
        link.click()
        page.wait_for_url(f"**/{target}.html", timeout=15000)
        assert page.url.endswith(f"{target}.html")
        assert not in_view(page, sidebar), "the chapter list stays open on the new page"
        assert not visit.errors, f"console errors: {visit.errors[:5]}"
        assert not visit.blocked, f"requests to the network: {visit.blocked[:5]}"
    finally:
        visit.close()


def test_laptop_header_has_no_empty_strip(browser, server):
    """At 1280 px: one search box, and no empty header bar above the article."""
    visit = Visit(browser, f"{server}{PAGES[1]}.html", viewport=LAPTOP)
    page = visit.page
    try:
        fields = page.evaluate("""[...document.querySelectorAll('.search-button-field')]
            .filter(e => e.offsetParent !== null).length""")
        assert fields <= 1, f"{fields} search boxes visible at 1280 px"
        strip = page.evaluate("""(() => {
            const h = document.querySelector('.bd-header');
            return h ? h.getBoundingClientRect().height : 0; })()""")
        assert strip < 1, f"an empty {strip:.0f} px header strip above the article"
        assert in_view(page, ".bd-sidebar-primary"), "no chapter list at 1280 px"
        assert not visit.errors, f"console errors: {visit.errors[:5]}"
    finally:
        visit.close()


@pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["390px", "1280px"])
def test_no_page_wider_than_the_window(browser, server, viewport):
    """scrollWidth <= innerWidth on every page: wide content scrolls in its own box."""
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    page.route("**/*", lambda route: route.continue_() if urlparse(route.request.url)
               .hostname in ("127.0.0.1", "localhost") else route.abort())
    too_wide = {}
    try:
        pages = site_pages()
        assert len(pages) >= len(PAGES)
        for name in pages:
            page.goto(f"{server}{name}", wait_until="load")
            page.evaluate("""async () => { if (window.MathJax && MathJax.startup)
                await MathJax.startup.promise; }""")
            width, window = page.evaluate(
                "[document.documentElement.scrollWidth, window.innerWidth]")
            if width > window:
                too_wide[name] = width
            if name == "chapters/bakeoff.html":  # its wide table, in view
                page.evaluate("""() => { const t = [...document.querySelectorAll(
                    'article table')].sort((a, b) => b.scrollWidth - a.scrollWidth)[0];
                    if (t) t.scrollIntoView({block: "center", behavior: "instant"});
                    }""")
                SHOTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SHOTS / f"bakeoff-{viewport[0]}.png"))
    finally:
        page.close()
    assert not too_wide, f"pages wider than {viewport[0]} px: {too_wide}"


def _search(page, url: str) -> list[str]:
    page.goto(url, wait_until="load")
    page.wait_for_selector("#search-results li", timeout=30000)
    page.wait_for_timeout(1500)  # summaries, when fetched, arrive after the titles
    return page.evaluate("[...document.querySelectorAll('#search-results li')]"
                         ".map(li => li.innerText)")


def test_search_over_http_shows_summaries(browser, server):
    visit = Visit(browser, f"{server}search.html")
    page = visit.page
    try:
        results = _search(page, f"{server}search.html?q=adam")
        assert len(results) >= 3, results
        assert page.locator("#search-results p.context").count() >= 1, "no summaries"
        assert page.locator(".optbook-search-note").count() == 0
        assert not visit.errors, f"console errors: {visit.errors[:5]}"
    finally:
        visit.close()


def test_search_from_a_file_says_titles_only(browser):
    """Opened as file://, search lists titles, logs no CORS error, and says why."""
    visit = Visit(browser, (HTML / "search.html").as_uri())
    page = visit.page
    try:
        results = _search(page, (HTML / "search.html").as_uri() + "?q=adam")
        assert len(results) >= 3, results
        note = page.locator("#search-results").locator("xpath=..").locator(
            ".optbook-search-note")
        assert note.count() == 1 and note.first.is_visible()
        assert "http.server" in note.first.inner_text()
        assert not visit.errors, f"console errors: {visit.errors[:5]}"
        assert not visit.blocked, f"requests to the network: {visit.blocked[:5]}"
    finally:
        visit.close()


# --- footer, licences, indexes (the built pages, no browser) -------------------------

def _soup(name: str) -> BeautifulSoup:
    return BeautifulSoup((HTML / name).read_text(), "html.parser")


def _book_config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def test_footer_gives_version_date_commit_and_licences():
    import optbook

    url = str((_book_config().get("repository") or {}).get("url") or "").strip()
    commits = set()
    for name in site_pages():
        footer = _soup(name).select_one(".optbook-footer")
        assert footer is not None, f"no footer on {name}"
        text = footer.get_text(" ", strip=True)
        assert f"optbook {optbook.__version__}" in text, text
        day = re.search(r"built (\d{4}-\d{2}-\d{2})", text)
        assert day, text
        assert datetime.date.fromisoformat(day.group(1)) <= datetime.date.today()
        commit = re.search(r"commit ([0-9a-f]{7,40})", text)
        if (ROOT / ".git").exists():
            assert commit, text
            commits.add(commit.group(1))
        else:
            assert "not built from a git checkout" in text, text
        assert "CC BY-SA 4.0" in text and "MIT" in text
        hrefs = [a["href"] for a in footer.select("a[href]")]
        assert "https://creativecommons.org/licenses/by-sa/4.0/" in hrefs
        licence = [h for h in hrefs if h.endswith("LICENSE.txt")]
        assert licence and (HTML / name).parent.joinpath(licence[0]).resolve().exists()
        button = _soup(name).select(f'a[href="{url}"]') if url else []
        if url:
            assert url in hrefs and button, f"{name} does not link to {url}"
        else:
            assert not any("github.com" in h for h in hrefs), hrefs
    assert len(commits) <= 1, commits
    if commits and shutil.which("git"):
        sha = commits.pop()
        known = subprocess.run(
            ["git", "-C", str(ROOT), "cat-file", "-e", f"{sha}^{{commit}}"],
            capture_output=True)
        assert known.returncode == 0, f"the footer's commit {sha} is not in the repo"
    assert (HTML / "LICENSE.txt").read_text() == (ROOT / "LICENSE").read_text()


def _index_links(name: str) -> list[tuple[str, str]]:
    article = _soup(name).select_one("article")
    return [(a.get_text(" ", strip=True), a["href"]) for a in article.select("a[href]")
            if not a["href"].startswith("#")]


@functools.cache
def _ids(path: str) -> frozenset[str] | None:
    """The element ids of a built page (None if there is no such page), parsed once:
    the index tests resolve hundreds of links into a dozen large pages."""
    target = HTML / path
    if not target.is_file():
        return None
    soup = BeautifulSoup(target.read_text(), "html.parser")
    return frozenset(tag["id"] for tag in soup.find_all(id=True))


def _resolves(href: str) -> bool:
    path, _, anchor = href.partition("#")
    ids = _ids(unquote(path))
    return ids is not None and (not anchor or unquote(anchor) in ids)


def test_general_index_lists_the_optimizers():
    soup = _soup("genindex.html")
    text = soup.select_one("article").get_text(" ", strip=True)
    for name in ("SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "AMSGrad", "NAdam",
                 "RAdam", "Adamax", "Adadelta"):
        assert re.search(rf"(^|\s){name}(\s|,|$)", text), f"{name} is not in the index"
    links = _index_links("genindex.html")
    assert len(links) >= 20, f"only {len(links)} index entries"
    broken = [href for _, href in links if not _resolves(href)]
    assert not broken, f"index entries that do not resolve: {broken[:5]}"


def test_proof_index_names_entries_as_the_pages_do():
    links = _index_links("prf-prf.html")
    assert links, "the proof index is empty"
    labels = {href.partition("#")[2] for _, href in links}
    for text, href in links:
        assert re.fullmatch(r"[A-Z][a-z]+ \d+(\.\d+)*", text), f"{text!r} ({href})"
        assert text not in labels
    broken = [href for _, href in links if not _resolves(href)]
    assert not broken, f"proof index entries that do not resolve: {broken[:5]}"


#: Type a lecture room can read, in pixels of the 960x700 slide canvas (a projector
#: scales it up): prose and tables at least 22 px; code at least 15 px, the size at which
#: the book's 88-column lines fit the slide's width. Nothing runs off the slide: a slide
#: fits the canvas, and a listing too long for it scrolls inside its own box.
SLIDE_MIN_TEXT_PX, SLIDE_MIN_CODE_PX = 22, 15


@pytest.mark.parametrize("docname", PAGES)
def test_slide_text_is_large_enough_and_stays_on_the_slide(browser, server, docname):
    name = Path(docname).name
    visit = Visit(browser, f"{server}slides/{name}.slides.html", viewport=(960, 700))
    page = visit.page
    try:
        page.wait_for_function("window.Reveal && Reveal.isReady && Reveal.isReady()",
                               timeout=30000)
        page.evaluate("""() => new Promise(r => MathJax.Hub.Queue(r))""")
        visit.images_loaded()
        problems = page.evaluate("""([minPx, minCode]) => {
            const out = [], cfg = Reveal.getConfig();
            Reveal.getSlides().forEach((slide, i) => {
                Reveal.slide(...Object.values(Reveal.getIndices(slide)));
                // text: every element holding its own text, in canvas pixels
                slide.querySelectorAll('*').forEach(el => {
                    if (el.closest('aside.notes, .MathJax_CHTML, .mjx-chtml, script, style'))
                        return;
                    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
                    if (!own || !el.getClientRects().length) return;
                    const px = parseFloat(getComputedStyle(el).fontSize);
                    if (px < (el.closest('pre') ? minCode : minPx)) out.push(`slide ${i + 1}: ${px}px text "${el.textContent.trim().slice(0, 30)}"`);
                });
                if (slide.scrollHeight > cfg.height + 1 || slide.scrollWidth > cfg.width + 1)
                    out.push(`slide ${i + 1}: ${slide.scrollWidth}x${slide.scrollHeight} on a ${cfg.width}x${cfg.height} canvas`);
                slide.querySelectorAll('.MathJax_Preview *, .mjx-math ~ .mjx-math').forEach(m => {
                    if (m.getBoundingClientRect().width > 1)
                        out.push(`slide ${i + 1}: a formula shows twice`);
                });
                slide.querySelectorAll('pre').forEach(pre => {
                    if (pre.scrollWidth > pre.clientWidth + 1)
                        out.push(`slide ${i + 1}: code wider than its box`);
                });
            });
            return out;
        }""", [SLIDE_MIN_TEXT_PX, SLIDE_MIN_CODE_PX])
        assert not problems, f"{name}: {len(problems)} problems: {problems[:6]}"
    finally:
        visit.close()
