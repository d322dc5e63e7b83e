"""Handouts: one PDF per slide deck, printed by headless Chromium in reveal.js's
print mode (``make slides-pdf``).

Each deck is opened as ``<deck>.slides.html?print-pdf&pdfSeparateFragments=false``:
reveal.js lays every slide out as one page of the deck's size (960 x 700 px) and sets
that page size in CSS, which Chromium's printer takes (``prefer_css_page_size``), so
there is one page per slide (a slide taller than the deck takes whole extra pages), no
margin and no blank page at the end; fragments are
shown at once rather than one page per step. MathJax is given time to typeset first.

Usage::

    slides_pdf.py BUILD_DIR [deck ...]   # -> BUILD_DIR/html/slides/pdf/<chapter>.pdf

It prints, per deck, the pages reveal.js laid out (one per slide, more for a slide
taller than a page) and the pages the PDF has; they must be equal, so no page is blank
(``tests/test_browser.py`` checks it).
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

FLAGS = ["--no-sandbox", "--disable-gpu"]


def page_count(pdf: bytes) -> int:
    """Pages of a PDF written by Chromium (its page objects, not the /Pages tree)."""
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))


def print_decks(build: Path, names: list[str] | None = None,
                browser=None) -> dict[str, tuple[int, int]]:
    """Print the decks (all, or those named) with ``browser`` (a Playwright Chromium),
    or with a headless Chromium of its own; returns name -> (pages laid out, printed)."""
    if browser is None:
        from playwright.sync_api import sync_playwright

        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium is None:
            raise SystemExit("no Chromium: `apt-get install chromium` (.ci/run does)")
        with sync_playwright() as p:
            own = p.chromium.launch(executable_path=chromium, headless=True, args=FLAGS)
            try:
                return print_decks(build, names, own)
            finally:
                own.close()
    slides = build / "html" / "slides"
    out = slides / "pdf"
    out.mkdir(parents=True, exist_ok=True)
    decks = sorted(slides.glob("*.slides.html"))
    if names:
        decks = [d for d in decks if d.name.split(".")[0] in names]
    result = {}
    page = browser.new_page()
    try:
        for deck in decks:
            name = deck.name.split(".")[0]
            page.goto(deck.resolve().as_uri() + "?print-pdf&pdfSeparateFragments=false")
            page.wait_for_function("document.querySelectorAll('.pdf-page').length > 0",
                                   timeout=60_000)
            page.wait_for_function(  # MathJax 2 has typeset everything
                "window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0 "
                "&& MathJax.Hub.queue.running === 0", timeout=60_000)
            # reveal.js breaks the page after every slide, the last one too: Chromium
            # then ends the PDF with a blank page
            page.add_style_tag(content=".reveal .slides .pdf-page:last-of-type "
                               "{ break-after: avoid !important; "
                               "page-break-after: avoid !important; }")
            # a slide taller than a page is laid out over several (whole) pages
            laid_out = page.evaluate(
                "(() => { const pages = Array.from(document.querySelectorAll('.pdf-page'));"
                " const h = pages[0].getBoundingClientRect().height;"
                " return pages.reduce((n, p) =>"
                " n + Math.round(p.getBoundingClientRect().height / h), 0); })()")
            target = out / f"{name}.pdf"
            page.pdf(path=str(target), print_background=True, prefer_css_page_size=True)
            result[name] = (laid_out, page_count(target.read_bytes()))
            print(f"{name}: {laid_out} pages laid out, {result[name][1]} printed -> {target}")
    finally:
        page.close()
    return result


def main(argv: list[str]) -> int:
    build = Path(argv[1] if len(argv) > 1 else "_build")
    counts = print_decks(build, argv[2:] or None)
    bad = {k: v for k, v in counts.items() if v[0] != v[1]}
    if bad:
        print(f"pages laid out and printed differ: {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
