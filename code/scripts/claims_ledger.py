"""Sphinx extension: the claims ledger of the book.

Each qualitative sentence of a chapter is backed by ``optbook.book.claims.claim``,
which glues a JSON record under the key ``claim:<id>``.  This extension

* collects every page's records after the page is read: myst-nb writes the glue
  data of a page to ``_build/jupyter_execute/<page>.glue.json`` on every read,
  whether the notebook was executed or its outputs came from the jupyter-cache, and
  the records are kept in the Sphinx environment, so pages that an incremental build
  does not re-read keep theirs;
* fails the build when a claim id is used twice on a page (myst-nb keeps only the
  last of two glue outputs with one key and warns; the warning is observed here and
  turned into a named error that persists on rebuilds), or when a record says the
  claim FAILS (a build with ``raise_on_error`` off would otherwise publish it);
* renders the ``{claims-ledger}`` directive: one section per page, in table-of-contents
  order, with each claim's statement, id, values and result, filled in when the page
  is resolved, and rewritten whenever any page was re-read;
* writes ``claims.json`` (page, id, statement, values, result, scale per claim) into
  the HTML output folder.
"""

from __future__ import annotations

import ast
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.environment.collectors import EnvironmentCollector
from sphinx.errors import SphinxError
from sphinx.util import logging as sphinx_logging
from sphinx.util.docutils import SphinxDirective

RECORD_PREFIX = "claim:"
FIELDS = ("id", "statement", "values", "result", "scale")
DUPLICATE_GLUE = re.compile(r"glue key (?P<key>'claim:.*'|\"claim:.*\") duplicate")


class ClaimsLedgerError(SphinxError):
    category = "Claims ledger error"


class claims_ledger_node(nodes.General, nodes.Element):
    """Where the ledger goes; replaced when the page is resolved."""


class ClaimsLedgerDirective(SphinxDirective):
    """``{claims-ledger}``: every claim of the build, by page."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        ledger_docs(self.env).add(self.env.docname)
        return [claims_ledger_node("")]


# ----------------------------------------------------------------------------------
# Environment data: claims per page, duplicate ids per page, pages with a ledger.
# ----------------------------------------------------------------------------------


def page_claims(env) -> dict[str, list[dict[str, Any]]]:
    if not hasattr(env, "optbook_claims"):
        env.optbook_claims = {}
    return env.optbook_claims


def duplicate_ids(env) -> dict[str, list[str]]:
    if not hasattr(env, "optbook_claim_duplicates"):
        env.optbook_claim_duplicates = {}
    return env.optbook_claim_duplicates


def ledger_docs(env) -> set:
    if not hasattr(env, "optbook_ledger_docs"):
        env.optbook_ledger_docs = set()
    return env.optbook_ledger_docs


class DuplicateGlueObserver(logging.Handler):
    """Sees myst-nb's "glue key 'claim:…' duplicate" warnings (it prints nothing).

    Attached to Sphinx's root logger next to Sphinx's own handlers, so it sees the
    warning even where ``suppress_warnings`` hides it."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.seen: dict[str, list[str]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        match = DUPLICATE_GLUE.search(str(record.msg))
        if not match:
            return
        location = getattr(record, "location", None)
        docname = getattr(record, "docname", None)
        if docname is None and isinstance(location, tuple):
            docname = location[0]
        elif docname is None and isinstance(location, str):
            docname = location
        key = ast.literal_eval(match["key"])
        ids = self.seen.setdefault(str(docname), [])
        if key[len(RECORD_PREFIX):] not in ids:
            ids.append(key[len(RECORD_PREFIX):])


def read_records(env, docname: str) -> list[dict[str, Any]]:
    """The claim records myst-nb glued into ``docname`` (in cell order)."""
    keys = (getattr(env, "nb_metadata", {}).get(docname) or {}).get("glue") or []
    if not any(k.startswith(RECORD_PREFIX) for k in keys):
        return []
    glue_file = Path(env.mystnb_config.output_folder).joinpath(
        *f"{docname}.glue.json".split("/"))
    glued = json.loads(glue_file.read_text(encoding="utf-8"))
    records = []
    for key, output in glued.items():
        if not key.startswith(RECORD_PREFIX):
            continue
        text = output.get("data", {}).get("text/plain")
        try:
            record = json.loads(ast.literal_eval(text))  # the repr of a JSON string
            missing = [f for f in FIELDS if f not in record]
        except (ValueError, SyntaxError, TypeError):
            record, missing = None, list(FIELDS)
        if record is None or missing:
            raise ClaimsLedgerError(f"{docname}: the glue key {key!r} does not hold a "
                                    f"claim record (missing {missing}): {text!r:.200}")
        records.append({"page": docname, **{f: record[f] for f in FIELDS}})
    return records


class ClaimsCollector(EnvironmentCollector):
    """Keeps each page's claims in the environment across incremental builds."""

    def clear_doc(self, app, env, docname: str) -> None:
        page_claims(env).pop(docname, None)
        duplicate_ids(env).pop(docname, None)
        ledger_docs(env).discard(docname)
        app.optbook_claims_changed = True  # a page is re-read or removed

    def merge_other(self, app, env, docnames, other) -> None:
        for docname in docnames:
            for get in (page_claims, duplicate_ids):
                if docname in get(other):
                    get(env)[docname] = get(other)[docname]
            if docname in ledger_docs(other):
                ledger_docs(env).add(docname)

    def process_doc(self, app, doctree: nodes.document) -> None:
        env = app.env
        records = read_records(env, env.docname)
        if records:
            page_claims(env)[env.docname] = records
        duplicated = app.optbook_glue_observer.seen.pop(env.docname, [])
        if duplicated:
            duplicate_ids(env)[env.docname] = duplicated


def reset_changed(app, env, added, changed, removed) -> list[str]:
    app.optbook_claims_changed = bool(removed)
    return []


def check_claims(app, env) -> list[str]:
    """Fail on duplicate ids or false claims; rewrite the ledger if any page changed."""
    problems = [f"claim id {claim_id!r} is used more than once in {docname} "
                f"(claim ids must be unique within a page)"
                for docname, ids in sorted(duplicate_ids(env).items())
                for claim_id in ids]
    problems += [f"claim {r['id']!r} in {docname} FAILS: {r['statement']} {r['values']}"
                 for docname, records in sorted(page_claims(env).items())
                 for r in records if r["result"] != "holds"]
    if problems:
        raise ClaimsLedgerError("\n".join(problems))
    if getattr(app, "optbook_claims_changed", False):
        return sorted(ledger_docs(env) & env.found_docs)
    return []


def toc_order(env, root: str) -> Iterator[str]:
    """Documents in table-of-contents order, from the root document."""
    seen, stack = set(), [root]
    while stack:
        docname = stack.pop()
        if docname in seen:
            continue
        seen.add(docname)
        yield docname
        stack.extend(reversed(env.toctree_includes.get(docname, [])))


def all_claims(app) -> list[dict[str, Any]]:
    """Every claim of the build, pages in table-of-contents order."""
    env = app.env
    by_page = page_claims(env)
    order = [d for d in toc_order(env, app.config.root_doc) if d in by_page]
    order += sorted(set(by_page) - set(order))
    return [record for docname in order for record in by_page[docname]]


# ----------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------


def show_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        shown = ", ".join(show_value(v) for v in value[:6])
        more = f", … ({len(value)} values)" if len(value) > 6 else ""
        return f"[{shown}{more}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {show_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def scale_sentence(records: list[dict[str, Any]]) -> str:
    scales = sorted({r["scale"] for r in records})
    if not scales:
        return "No page of this build makes a claim yet."
    pages = len({r["page"] for r in records})
    count = (f"This build checked {len(records)} claim{'s' * (len(records) != 1)} "
             f"on {pages} page{'s' * (pages != 1)}")
    if len(scales) == 1:
        return f"{count}, all at OPTBOOK_SCALE={scales[0]}."
    listed = ", ".join(map(str, scales))
    return (f"{count}, at several scales (OPTBOOK_SCALE={listed}): "
            "pages read from the cache keep the scale they were executed at; "
            "each page's scale is given below.")


def claim_item(record: dict[str, Any], show_scale: bool) -> nodes.list_item:
    item = nodes.list_item(classes=["optbook-claim"])
    item += nodes.paragraph("", "", nodes.strong(text=record["statement"]))
    details = nodes.paragraph(classes=["optbook-claim-details"])
    details += nodes.Text("id ")
    details += nodes.literal(text=record["id"])
    details += nodes.Text(" · result: ")
    details += nodes.strong(text=record["result"],
                            classes=[f"optbook-claim-{record['result'].lower()}"])
    if show_scale:
        details += nodes.Text(f" · OPTBOOK_SCALE={record['scale']}")
    if record["values"]:
        details += nodes.Text(" · values: ")
        for i, (name, value) in enumerate(record["values"].items()):
            if i:
                details += nodes.Text(", ")
            details += nodes.literal(text=f"{name} = {show_value(value)}")
    item += details
    return item


def render_ledger(app, doctree: nodes.document, fromdocname: str) -> None:
    placeholders = list(doctree.findall(claims_ledger_node))
    if not placeholders:
        return
    env, records = app.env, all_claims(app)
    show_scale = len({r["scale"] for r in records}) > 1
    content: list[nodes.Node] = [nodes.paragraph(text=scale_sentence(records))]
    pages: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        pages.setdefault(record["page"], []).append(record)
    for docname, page_records in pages.items():
        title = env.titles[docname].astext() if docname in env.titles else docname
        number = env.toc_secnumbers.get(docname, {}).get("")
        section = nodes.section(ids=["claims-" + docname.replace("/", "-")])
        heading = nodes.title()
        if number:
            suffix = getattr(app.config, "html_secnumber_suffix", ". ")
            heading += nodes.Text(".".join(map(str, number)) + suffix)
        uri = app.builder.get_relative_uri(fromdocname, docname)
        heading += nodes.reference("", title, internal=True, refuri=uri)
        section += heading
        section += nodes.bullet_list(
            "", *(claim_item(r, show_scale) for r in page_records))
        content.append(section)
    for placeholder in placeholders:
        placeholder.replace_self([n.deepcopy() for n in content])


def write_json(app, exception) -> None:
    if app.builder.format != "html":
        return
    target = Path(app.outdir) / "claims.json"
    if exception is not None:
        target.unlink(missing_ok=True)  # no stale ledger beside a failed build
        return
    target.write_text(json.dumps(all_claims(app), indent=1) + "\n", encoding="utf-8")


def setup(app):
    app.optbook_glue_observer = DuplicateGlueObserver()
    logging.getLogger(sphinx_logging.NAMESPACE).addHandler(app.optbook_glue_observer)
    app.add_node(claims_ledger_node)
    app.add_directive("claims-ledger", ClaimsLedgerDirective)
    app.add_env_collector(ClaimsCollector)
    app.connect("env-get-outdated", reset_changed)
    app.connect("env-updated", check_claims)
    app.connect("doctree-resolved", render_ledger)
    app.connect("build-finished", write_json)
    # the duplicate-id check observes warnings in this process: no parallel reading
    return {"parallel_read_safe": False, "parallel_write_safe": True}
