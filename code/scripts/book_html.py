"""Sphinx extension with the book's own HTML adjustments.

1. A "run it / teach it" line at the top of every chapter page.  It links to the chapter's plain Jupyter notebook (``notebooks/<chapter>.ipynb``) and its
slide deck (``slides/<chapter>.slides.html``), which ``make book`` writes into the
built site after Sphinx (``code/scripts/bookexport.py``).  sphinx-book-theme's own
download button offers the MyST source, not a notebook plain Jupyter can render.

2. No console errors in a reader's browser (the browser tests check this):
   Jupyter Book 1 adds sphinx-thebe's inline configuration script twice, which
   throws "Identifier 'THEBE_JS_URL' has already been declared" (and it points at a
   CDN); the book has no live-code buttons, so thebe's scripts are left out.  And
   pydata-sphinx-theme logs "invalid theme mode" unless a default mode is set.
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


def drop_thebe(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if scripts is None:
        return
    kept = [s for s in scripts
            if "THEBE_JS_URL" not in (getattr(s, "attributes", {}) or {}).get("body", "")
            and "sphinx-thebe" not in str(getattr(s, "filename", s) or "")]
    scripts[:] = kept
    if not context.get("default_mode"):
        context["default_mode"] = "light"  # read by pydata-sphinx-theme's layout


def setup(app):
    app.connect("doctree-resolved", add_links)
    app.connect("html-page-context", drop_thebe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
