"""`make pdf`: the whole book as one PDF, ``_build/latex/book.pdf``.

Sphinx's LaTeX builder writes ``book.tex`` from the same sources and the same execution
cache as the HTML site (``_build/.jupyter_cache``: a chapter the site build executed is
not executed again; without a site build, it executes them), then ``latexmk`` runs it
through xelatex (``_config.yml``: ``latex.latex_engine``), which reads the prose's
Unicode (η, β, ≤) directly. The LaTeX
packages are Debian's ``texlive-xetex``, ``texlive-latex-extra`` and friends, which
``.ci/run`` installs.

The build differs from the site's in one setting: ``hide_solutions``. The PDF keeps
every exercise and leaves the solutions out (they are on the site, behind each
exercise), so that a printed chapter can be set as homework. As on the site, the cells
tagged ``hide-input`` (the checks: claims, asserts, glue) show their output without
their code. Warnings fail the build, as they fail the site's. What the LaTeX output
needs beyond the site is in the local extension ``book_latex.py``.

Usage: ``python code/scripts/book_pdf.py [BUILD_DIR]`` (default ``_build``).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(build: Path) -> int:
    from jupyter_book.sphinx import build_sphinx

    start = time.time()
    latex = build / "latex"
    status = build_sphinx(
        ROOT, latex, use_external_toc=True, noconfig=True,
        path_config=str(ROOT / "_config.yml"),
        confoverrides={"external_toc_path": (ROOT / "_toc.yml").as_posix(),
                       "latex_individualpages": False, "hide_solutions": True},
        # its own doctrees: the site's (_build/.doctrees) stay valid for `make site`
        doctreedir=latex / ".doctrees", builder="latex", warningiserror=True,
        keep_going=True)
    if status:
        print(f"book_pdf: the LaTeX build failed ({status})", file=sys.stderr)
        return 1
    # -halt-on-error: a LaTeX error stops the run instead of leaving a damaged PDF
    run = subprocess.run(["make", "all-pdf", "LATEXMKOPTS=-halt-on-error -silent"],
                         cwd=latex)
    pdf = latex / "book.pdf"
    if run.returncode or not pdf.exists():
        print(f"book_pdf: xelatex failed; see {latex / 'book.log'}", file=sys.stderr)
        return 1
    size, seconds = pdf.stat().st_size / 1e6, time.time() - start
    print(f"PDF: {pdf} ({size:.1f} MB) in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "_build"))
