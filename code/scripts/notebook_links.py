"""Sphinx extension: a "run it / teach it" line at the top of every chapter page.

Links to the chapter's plain Jupyter notebook (``notebooks/<chapter>.ipynb``) and its
slide deck (``slides/<chapter>.slides.html``), which ``make book`` writes into the
built site after Sphinx (``code/scripts/bookexport.py``).  sphinx-book-theme's own
download button offers the MyST source, not a notebook plain Jupyter can render.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from docutils import nodes

SKIP = {"chapters/build_report"}


def add_links(app, doctree, docname: str) -> None:
    if not docname.startswith("chapters/") or docname in SKIP:
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        return
    name = PurePosixPath(docname).name
    depth = "../" * (len(PurePosixPath(docname).parts) - 1)
    html = (
        f'<p class="optbook-links">Run this chapter: '
        f'<a class="reference external" href="{depth}notebooks/{name}.ipynb" download>'
        f"Jupyter notebook (.ipynb)</a> &middot; teach it: "
        f'<a class="reference external" href="{depth}slides/{name}.slides.html">slides</a></p>'
    )
    title_index = next((i for i, child in enumerate(section.children)
                        if isinstance(child, nodes.title)), -1)
    section.insert(title_index + 1, nodes.raw("", html, format="html"))


def setup(app):
    app.connect("doctree-resolved", add_links)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
