"""Book tests: the built site (``make book`` runs before the suite in ``make test``).

Every chapter is present with figures, numbered equations, proofs, exercises and
references, and shows no error output; each executed within its time budget; a cell
that raises fails the build; and a re-execution reproduces every glued number.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[1]
# BOOK_BUILD / BOOK_TOC point the tests at another build (e.g. of a few chapters).
BUILD = Path(os.environ.get("BOOK_BUILD", ROOT / "_build"))
HTML = BUILD / "html"

pytestmark = pytest.mark.slow


def toc_chapters() -> list[str]:
    toc = yaml.safe_load(Path(os.environ.get("BOOK_TOC", ROOT / "_toc.yml")).read_text())
    files = [c["file"] for part in toc.get("parts", []) for c in part["chapters"]]
    return [f for f in files if f != "chapters/build_report"]


CHAPTERS = toc_chapters()


@pytest.fixture(scope="session")
def built():
    if not (HTML / "index.html").exists():
        pytest.fail("the book is not built: run `make book` (or `make test`, which builds it)")
    return HTML


def page(built, chapter: str) -> BeautifulSoup:
    path = built / f"{chapter}.html"
    assert path.exists(), f"{chapter} missing from the built site"
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def test_toc_lists_the_seven_core_chapters_in_order():
    names = [Path(c).name for c in CHAPTERS]
    assert names[:7] == ["gradient_descent", "ewma", "momentum", "adagrad", "rmsprop", "adam", "amsgrad"]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_page_has_its_parts(built, chapter):
    soup = page(built, chapter)
    main = soup.find("main") or soup
    text = main.get_text(" ")
    images = [img for img in main.find_all("img") if "logo" not in " ".join(img.get("class", []))]
    assert len(images) >= 2, "a chapter has figures"
    for img in images:
        src = img["src"]
        assert not src.startswith("http"), f"remote image {src}"
        assert (built / chapter).parent.joinpath(src).resolve().exists(), f"missing image {src}"
    numbered = main.select("div.math[id^=equation-]")
    assert len(numbered) >= 3, "a chapter derives numbered equations"
    assert main.select(".proof, .proposition, [class*=prf]"), "claims are stated as propositions"
    exercises = main.select(".exercise")
    assert 3 <= len(exercises) <= 6, f"3-6 exercises, found {len(exercises)}"
    assert len(main.select(".solution")) >= len(exercises), "every exercise has a solution"
    assert main.select("aside.footnote, .footnote"), "the chapter cites its sources"
    assert main.select("div.cell"), "the chapter has executed code cells"
    # nothing went wrong while executing, and no MyST syntax leaked into the page
    assert not main.select(".output.stderr, .output.error, .output.traceback")
    for leak in ("Traceback (most recent call last)", "{glue", "{eq}", "{cite", "```{", ":::{"):
        assert leak not in text, f"{leak!r} in the rendered text"
    # the code shown is included from optbook (literalinclude renders a code block that
    # carries the equation labels of the optbook source's comments)
    code = " ".join(pre.get_text() for pre in main.select("div.highlight-python pre"))
    assert "# (eq-" in code, "the chapter displays optbook code annotated with equation labels"


def test_preface_has_notation_and_device_policy(built):
    soup = page(built, "chapters/preface")
    text = soup.get_text(" ")
    assert "Notation" in text and "Device policy" in text
    assert soup.select("table") and "exp_avg_sq" in text
    assert "device: " in text  # the executed cell printed the device


def test_each_chapter_executes_within_budget():
    rows = json.loads((BUILD / "exec_times.json").read_text())
    times = {r["notebook"]: r["seconds"] for r in rows}
    for chapter in CHAPTERS + ["chapters/preface"]:
        name = Path(chapter).name + ".md"
        assert name in times, f"{name} was not executed by the build"
        assert times[name] <= 40.0, f"{name} took {times[name]} s (budget 40 s)"


def mini_book(tmp_path: Path, pages: dict[str, str]) -> Path:
    """A throw-away book with this book's _config.yml and the given pages' code."""
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    config = (tmp_path / "_config.yml").read_text()
    (tmp_path / "_config.yml").write_text(config.replace("code/scripts/", f"{ROOT}/code/scripts/"))
    (tmp_path / "chapters").mkdir()
    shutil.copy(ROOT / "chapters" / "references.bib", tmp_path / "chapters" / "references.bib")
    names = list(pages)
    toc = f"format: jb-book\nroot: chapters/{names[0]}\n"
    if len(names) > 1:
        toc += "chapters:\n" + "".join(f"  - file: chapters/{n}\n" for n in names[1:])
    (tmp_path / "_toc.yml").write_text(toc)
    header = (ROOT / "chapters" / "preface.md").read_text().split("---\n")[1]
    for name, code in pages.items():
        (tmp_path / "chapters" / f"{name}.md").write_text(
            f"---\n{header}---\n\n# {name}\n\n```{{code-cell}} ipython3\n{code}\n```\n")
    return tmp_path


def jupyter_book(book: Path) -> subprocess.CompletedProcess:
    jb = Path(sys.executable).parent / "jupyter-book"
    return subprocess.run([str(jb), "build", str(book), "-W", "-n", "--keep-going"],
                          capture_output=True, text=True, timeout=300)


def test_a_raising_cell_fails_the_build(tmp_path):
    """The book's own configuration turns an exception in a cell into a failed build."""
    result = jupyter_book(mini_book(tmp_path, {"boom": "raise ValueError('cell failed')"}))
    assert result.returncode != 0
    assert "cell failed" in result.stdout + result.stderr


def test_incremental_build_re_executes_only_the_edited_chapter(tmp_path):
    """``execute_notebooks: cache``: after editing one chapter, only it runs again."""
    book = mini_book(tmp_path, {"one": "print(1)", "two": "print(2)", "three": "print(3)"})
    assert jupyter_book(book).returncode == 0
    report = [sys.executable, str(ROOT / "code" / "scripts" / "exec_report.py"), str(book / "_build")]
    source = book / "chapters" / "two.md"
    source.write_text(source.read_text().replace("print(2)", "print(22)"))
    start = time.time()
    assert jupyter_book(book).returncode == 0
    subprocess.run(report + [str(start)], check=True, capture_output=True)
    rows = {r["notebook"]: r for r in json.loads((book / "_build" / "exec_times.json").read_text())}
    executed = sorted(name for name, r in rows.items() if r["executed_this_build"])
    assert executed == ["two.md"], rows



