"""`make pdf`: the whole book as one PDF (code/scripts/book_pdf.py), built here from the
site's execution cache and read back with poppler's pdftotext and pdfimages.

It must hold every chapter with its numbered equations, figures (as many as the site
shows), proofs and exercises (numbered as on the site), every cited work, no unresolved
reference ("??"), no solutions (the PDF leaves them out) and none of the checking code
(cells tagged ``hide-input`` show their output only).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_book import ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (shutil.which("xelatex") and shutil.which("pdftotext")),
                       reason="needs xelatex and poppler-utils (.ci/run installs "
                              "them)"),
]

LATEX = ROOT / "_build" / "latex"


@pytest.fixture(scope="module")
def book():
    run = subprocess.run([sys.executable, str(ROOT / "code/scripts/book_pdf.py"),
                          str(ROOT / "_build")], capture_output=True, text=True,
                         cwd=ROOT)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    pdf = LATEX / "book.pdf"
    pages = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True,
                           capture_output=True, text=True).stdout.split("\f")
    return {"pdf": pdf, "pages": [p for p in pages if p.strip()],
            "text": "\n".join(pages), "tex": (LATEX / "book.tex").read_text()}


def chapter_titles() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    titles = []
    for part in toc["parts"]:
        for chapter in part["chapters"]:
            source = (ROOT / f"{chapter['file']}.md").read_text(encoding="utf-8")
            titles.append(re.search(r"^# (.+)$", source, re.M).group(1).strip())
    return titles


def test_the_pdf_has_a_book_length_page_count(book):
    # 338 pages when written; a chapter lost (or a runaway table) moves it far
    assert 250 <= len(book["pages"]) <= 600, len(book["pages"])


def test_every_chapter_is_in_the_pdf(book):
    flat = re.sub(r"\s+", " ", book["text"]).lower()
    missing = [t for t in chapter_titles()
               if re.sub(r"\s+", " ", re.sub(r"[`*]", "", t)).lower() not in flat]
    assert not missing, missing


def test_no_reference_is_left_unresolved(book):
    assert "??" not in book["text"]
    log = (LATEX / "book.log").read_text(errors="replace")
    assert "There were undefined references" not in log
    assert "Missing character" not in log, re.findall(r"Missing character.*", log)[:5]


def test_equations_figures_proofs_and_exercises_are_numbered_as_on_the_site(book):
    text = book["text"]
    # chapter-level numbers, as the site shows them: (1.2), Fig. 1.1, Proposition 1.1,
    # Exercise 1.1; not 1.3.1 (section-level) and not a running count
    for pattern in [r"\(1\.2\)", r"Fig\. 1\.1\b", r"Proposition 1\.1\b",
                    r"Exercise 1\.1\b", r"\(13\.1\)", r"Exercise 13\.1\b"]:
        assert re.search(pattern, text), pattern
    assert not re.search(r"(Proposition|Exercise) \d+\.\d+\.\d+", text)
    assert len(re.findall(r"\\label\{equation:", book["tex"])) > 150


def site_figures() -> int:
    """The distinct images in the chapters' articles on the built site."""
    from bs4 import BeautifulSoup

    count = 0
    for page in (ROOT / "_build" / "html" / "chapters").glob("*.html"):
        article = BeautifulSoup(page.read_text(), "html.parser").select_one("article")
        count += len({img["src"] for img in article.select("img")})
    return count


def test_every_figure_of_the_site_is_in_the_pdf(book):
    listed = subprocess.run(["pdfimages", "-list", str(book["pdf"])], check=True,
                            capture_output=True, text=True).stdout.splitlines()[2:]
    images = [line for line in listed if line.split()[2] == "image"]
    on_site = site_figures()
    assert on_site > 50
    assert len(images) >= on_site, (len(images), on_site)


def _words(text: str) -> list[str]:
    """Lower-case words of three letters or more: what survives typesetting (dashes,
    math, line-end hyphenation) in both a BibTeX title and the PDF's text."""
    return re.findall(r"[a-z]{3,}", re.sub(r"-\s*\n\s*", "", text).lower())


def test_every_cited_work_is_printed(book):
    from pybtex.database import parse_file

    bib = parse_file(str(ROOT / "chapters" / "references.bib")).entries
    cited = set()
    for source in (ROOT / "chapters").glob("*.md"):
        text = source.read_text()
        for keys in re.findall(r"\{(?:foot)?cite(?::\w+)?\}`([^`]+)`", text):
            cited |= {key.strip() for key in keys.split(",")}
    assert len(cited) > 40
    printed = " ".join(_words(book["text"]))
    missing = [key for key in sorted(cited)
               if " ".join(_words(bib[key].fields["title"])[:4]) not in printed]
    assert not missing, missing


def test_solutions_and_checking_code_are_left_out(book):
    text = book["text"]
    assert "Solution to Exercise" not in text
    # the checks' code (a call of claim(...), as pygments marks it up); outputs stay
    assert r"\PYG{n}{claim}\PYG{p}{(}" not in book["tex"]
    assert book["tex"].count(r"\begin{sphinxuseclass}{tag_hide-input}") > 100
    assert "<pandas.io.formats.style.Styler" not in text  # tables render as tables
