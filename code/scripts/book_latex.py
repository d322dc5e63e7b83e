"""Sphinx extension: what the PDF (`make pdf`, Sphinx's LaTeX builder) needs beyond the
HTML site. It changes nothing in the HTML build.

* **Cross-chapter references to exercises.** sphinx-exercise labels an exercise in LaTeX
  as ``exercise:<label>``, which its own same-page references use, but a ``{ref}`` from
  another chapter is written by Sphinx as ``<docname>:<label>`` and came out as "??".
  The exercise's LaTeX visitor is wrapped to set both labels.
* **Proofs and exercises numbered as on the site.** sphinx-jupyterbook-latex sets
  ``numfig_secnum_depth = 2`` so that LaTeX resets figure and equation counters per
  chapter (the book's parts sit above its chapters), but sphinx-proof and
  sphinx-exercise take their numbers from the same setting, which made Exercise 1.1 of
  the site Exercise 1.11.1 in the PDF. The environment assigns those numbers with
  depth 1, as the site does, and the writer then sees depth 2 again.
* **Long tables wrap.** A Markdown table longer than 30 rows becomes a ``longtable``
  with ``l`` columns, which never wrap: the notation table ran off the page. Such a
  table gets column widths in proportion to its longest cell per column (within bounds),
  so that Sphinx writes wrapping ``\\X`` columns.
"""

from __future__ import annotations

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms import SphinxPostTransform

#: Sphinx's threshold: a table with more rows than this is written as a longtable.
LONGTABLE_ROWS = 30


class WrapLongTables(SphinxPostTransform):
    default_priority = 200
    formats = ("latex",)

    def run(self, **kwargs) -> None:
        for table in self.document.findall(nodes.table):
            if "colwidths-given" in table["classes"]:
                continue
            for tgroup in table.findall(nodes.tgroup):
                rows = list(tgroup.findall(nodes.row))
                if len(rows) <= LONGTABLE_ROWS:
                    continue
                specs = [c for c in tgroup.children if isinstance(c, nodes.colspec)]
                widths = [4] * len(specs)
                for row in rows:
                    for k, entry in enumerate(row.children[:len(specs)]):
                        widths[k] = max(widths[k], min(len(entry.astext()), 60))
                for spec, width in zip(specs, widths):
                    spec["colwidth"] = width
                table["classes"] = [c for c in table["classes"]
                                    if c != "colwidths-auto"]
                table["classes"].append("colwidths-given")


def _with_document_label(visit):
    def visit_exercise(self, node):
        label = node.attributes.get("label")
        registry = getattr(self.builder.env, "sphinx_exercise_registry", {})
        docname = registry.get(label, {}).get("docname")
        if label and docname:
            self.body.append(self.hypertarget(f"{docname}:{label}", withdoc=False))
        visit(self, node)
    return visit_exercise


def _wrap_exercise_visitors(app: Sphinx) -> None:
    from sphinx_exercise import nodes as ex

    for node, visit, depart in [
            (ex.exercise_node, ex.visit_exercise_node, ex.depart_exercise_node),
            (ex.exercise_enumerable_node, ex.visit_exercise_enumerable_node,
             ex.depart_exercise_enumerable_node)]:
        app.add_node(node, override=True, latex=(_with_document_label(visit), depart))


def _number_per_chapter(app: Sphinx) -> None:
    if app.builder.format == "latex":
        app.env.book_latex_secnum_depth = app.config.numfig_secnum_depth
        app.config.numfig_secnum_depth = 1


def _restore_writer_depth(app: Sphinx, doctree, docname) -> None:
    depth = getattr(app.env, "book_latex_secnum_depth", None)
    if app.builder.format == "latex" and depth is not None:
        app.config.numfig_secnum_depth = depth


def setup(app: Sphinx) -> dict:
    # after every extension's setup, so that sphinx-exercise's own handler is replaced
    app.connect("builder-inited", _wrap_exercise_visitors)
    # after sphinx-jupyterbook-latex's own builder-inited handler (priority 500)
    app.connect("builder-inited", _number_per_chapter, priority=900)
    # the LaTeX builder resolves the assembled book, then creates its writer
    app.connect("doctree-resolved", _restore_writer_depth)
    app.add_post_transform(WrapLongTables)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
