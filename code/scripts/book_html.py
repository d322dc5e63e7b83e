"""Sphinx extension with the book's own HTML adjustments.

1. A "run it / teach it" line at the top of every chapter page.  It links to the
chapter's plain Jupyter notebook (``notebooks/<chapter>.ipynb``), optbook's wheel and
the zip of all notebooks with the wheel (which its first cell installs), and its
slide deck (``slides/<chapter>.slides.html``), which ``make book`` writes into the
built site after Sphinx (``code/scripts/bookexport.py``).  sphinx-book-theme's own
download button offers the MyST source, not a notebook plain Jupyter can render.

2. No console errors in a reader's browser (the browser tests check this):
   Jupyter Book 1 adds sphinx-thebe's inline configuration script twice, which
   throws "Identifier 'THEBE_JS_URL' has already been declared" (and it points at a
   CDN); the book has no live-code buttons, so thebe's scripts are left out.  And
   pydata-sphinx-theme logs "invalid theme mode" unless a default mode is set.

3. Wide content scrolls in its own box (``book_html_static/book_html.css``), so that no
   page is wider than a 390 px phone screen and nothing slides under the right-hand
   contents panel at 1280 px.

4. A footer on every page: optbook's version, the build date, the git commit, the two
   licences (``LICENSE`` is copied into the site as ``LICENSE.txt``, so a copied site
   carries it) and, when ``repository: url:`` is set in ``_config.yml``, a link to the
   repository (and, for GitHub, GitLab or Bitbucket, the theme's repository button).

5. The general index lists each optimizer with the sections that name it, and the
   proof index shows "Proposition 4.2 (title)" rather than the raw label.

6. Search from a ``file://`` page: the browser forbids the fetches that fill in result
   summaries, so ``book_html.js`` turns them off (no console errors) and says so.
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import subprocess
from html import escape
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from docutils import nodes

STATIC = Path(__file__).resolve().parent / "book_html_static"
# Jupyter Book fills in its own repository when _config.yml names none: not this book's.
JB_DEFAULT_REPOSITORY = "https://github.com/executablebooks/jupyter-book"
CC_BY_SA = "https://creativecommons.org/licenses/by-sa/4.0/"

SKIP = {"chapters/build_report", "chapters/claims_ledger"}


def add_links(app, doctree, docname: str) -> None:
    if not docname.startswith("chapters/") or docname in SKIP:
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        return
    name = PurePosixPath(docname).name
    depth = "../" * (len(PurePosixPath(docname).parts) - 1)
    from importlib.metadata import version

    wheel = f"optbook-{version('optbook')}-py3-none-any.whl"
    html = (
        f'<p class="optbook-links">Run this chapter: '
        f'<a class="reference external" href="{depth}notebooks/{name}.ipynb" download>'
        f"Jupyter notebook (.ipynb)</a>, whose first cell installs "
        f'<a class="reference external" href="{depth}notebooks/{wheel}" download>'
        f"optbook's wheel</a> saved beside it, or "
        f'<a class="reference external" href="{depth}notebooks/optbook-notebooks.zip" '
        f"download>all notebooks with the wheel (.zip)</a> &middot; teach it: "
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


# --- footer: version, build date, commit, licences, repository ---------------------

def repository_url(config) -> str:
    """The repository named in _config.yml (``repository: url:``), or ""."""
    chosen = getattr(config, "optbook_repository_url", "")
    url = chosen or str((config.html_theme_options or {}).get("repository_url") or "")
    url = url.strip()
    return "" if url.rstrip("/") == JB_DEFAULT_REPOSITORY else url


def configure_repository(app, config) -> None:
    """The theme's repository button is on exactly when a repository URL is set.

    The theme knows GitHub, GitLab and Bitbucket; given another host's URL it fails
    the build unless ``repository_provider`` is set, so there only the footer links.
    """
    options = dict(config.html_theme_options or {})
    url = repository_url(config)
    host = urlparse(url).netloc.lower()
    known = any(name in host for name in ("github", "gitlab", "bitbucket"))
    button = bool(url) and (known or bool(options.get("repository_provider")))
    config.optbook_repository_url = url  # what the footer links to
    options["repository_url"] = url if button else ""
    options["use_repository_button"] = button
    config.html_theme_options = options


def build_date() -> str:
    """Today (UTC), or SOURCE_DATE_EPOCH's day, so that a rebuild can be reproduced."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            moment = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc)
        except ValueError:
            raise ValueError(
                f"SOURCE_DATE_EPOCH must be an integer, got {epoch!r}") from None
    else:
        moment = datetime.datetime.now(datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d")


def git_commit(root: Path) -> str:
    """The checkout's short commit, marked when the working tree differs from it."""
    # GIT_OPTIONAL_LOCKS=0: `git status` must not refresh (write) the index
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                              text=True, timeout=30, check=True, env=env).stdout.strip()
    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "not built from a git checkout"
    return f"commit {commit}" + (" + uncommitted changes" if dirty else "")


def collect_footer(app) -> None:
    import optbook

    app.env.optbook_footer = {
        "version": optbook.__version__,
        "date": build_date(),
        "commit": git_commit(Path(app.srcdir)),
    }


def footer_html(info: dict, license_href: str, url: str, user_footer: str) -> str:
    parts = [
        f"optbook {escape(info['version'])}",
        f"built {escape(info['date'])}",
        escape(info["commit"]),
        f'text <a href="{CC_BY_SA}">CC BY-SA 4.0</a>, code MIT '
        f'(<a href="{escape(license_href)}">LICENSE</a>)',
    ]
    if url:
        parts.append(f'source: <a href="{escape(url)}">{escape(url)}</a>')
    spans = "".join(f"<span>{part}</span>" for part in parts)
    return f'{user_footer}<p class="optbook-footer">{spans}</p>'


def add_footer(app, pagename, templatename, context, doctree) -> None:
    info = getattr(app.env, "optbook_footer", None)
    if info is None or "pathto" not in context:
        return
    user_footer = (app.config.html_theme_options or {}).get("extra_footer") or ""
    license_href = context["pathto"]("LICENSE.txt", 1)
    context["theme_extra_footer"] = footer_html(
        info, license_href, repository_url(app.config), user_footer)


def copy_license(app, exception) -> None:
    """The repository's LICENSE, served beside the pages the footer links it from (a
    book without one, such as the tests' throw-away books, has nothing to copy)."""
    license_file = Path(app.srcdir) / "LICENSE"
    if exception is None and app.builder.format == "html" and license_file.exists():
        shutil.copyfile(license_file, Path(app.outdir) / "LICENSE.txt")


# --- the general index: each optimizer, with the sections that name it -------------

def optimizer_patterns() -> dict[str, re.Pattern]:
    """Index key -> the words in a section title that mean it.

    The keys are optbook's optimizer classes (so a new optimizer is indexed without
    touching this file), plus AMSGrad, which is ``Adam(amsgrad=True)``.
    """
    import torch

    import optbook

    names = sorted(
        name for name in optbook.__all__
        if isinstance(getattr(optbook, name), type)
        and issubclass(getattr(optbook, name), torch.optim.Optimizer)
        and getattr(optbook, name).__module__ != "optbook.variants")
    words = {name: [name] for name in names}
    words.setdefault("SGD", ["SGD"]).extend(["gradient descent", "momentum"])
    words["AMSGrad"] = ["AMSGrad"]
    return {name: re.compile("|".join(rf"\b{re.escape(w)}\b" for w in ws), re.I)
            for name, ws in words.items()}


GREEK = {r"\eta": "η", r"\epsilon": "ε", r"\beta": "β", r"\infty": "∞",
         r"\theta": "θ", r"\rho": "ρ", r"\mu": "μ", r"\lambda": "λ",
         r"\sqrt": "√"}


def plain_title(title: nodes.Node) -> str:
    """A section title as text, its mathematics made readable (no backslashes)."""
    text = title.astext()
    for tex, char in GREEK.items():
        text = text.replace(tex, char)
    text = re.sub(r"\\[A-Za-z]+", "", text)
    return re.sub(r"\s+", " ", text.replace("{", "").replace("}", "")).strip()


def index_optimizers(app, doctree) -> None:
    """Index entries for every section whose title names an optimizer.

    Added straight to the index domain: its own collector has already run by the
    time ``doctree-read`` fires.
    """
    docname = app.env.docname
    if not docname.startswith("chapters/") or docname in SKIP:
        return
    patterns = getattr(app, "_optbook_patterns", None)
    if patterns is None:
        patterns = app._optbook_patterns = optimizer_patterns()
    entries = app.env.get_domain("index").entries.setdefault(docname, [])
    for section in doctree.findall(nodes.section):
        if not section["ids"] or not section.children:
            continue
        title = section.children[0]
        if not isinstance(title, nodes.title):
            continue
        text = plain_title(title)
        chapter = isinstance(section.parent, nodes.document)
        for name, pattern in patterns.items():
            if pattern.search(text):
                entries.append(("single", f"{name}; {text}", section["ids"][0],
                                "main" if chapter else "", None))


# --- the proof index: numbers and titles, not raw labels ---------------------------

def collect_proof_titles(app, doctree) -> None:
    titles = app.env.__dict__.setdefault("optbook_proof_titles", {})
    # sphinx-proof's nodes (one class per kind) all carry "realtype" and "label"
    for node in doctree.findall(nodes.Element):
        if "realtype" in node.attributes and node.get("label"):
            # the title as the page shows it, "(Bias of m_t)", less the parentheses;
            # plain text, since the index page does not typeset mathematics
            heads = [c for c in node.children if isinstance(c, nodes.title)]
            text = plain_title(heads[0]) if heads else node.get("title", "")
            title = re.sub(r"^\((.*)\)$", r"\1", text.strip())
            titles[node["label"]] = (app.env.docname, title)


def purge_proof_titles(app, env, docname) -> None:
    titles = getattr(env, "optbook_proof_titles", {})
    for label in [k for k, (doc, _) in titles.items() if doc == docname]:
        del titles[label]


def merge_proof_titles(app, env, docnames, other) -> None:
    env.__dict__.setdefault("optbook_proof_titles", {}).update(
        getattr(other, "optbook_proof_titles", {}))


def make_proof_index(base):
    class ProofIndex(base):
        """sphinx-proof's index, grouped by kind, each entry named as on the page.

        The stock index lists every label (``prop-adam-bias``) as its own heading.
        """

        def generate(self, docnames=None):
            env = self.domain.env
            proofs = getattr(env, "proof_list", {})
            titles = getattr(env, "optbook_proof_titles", {})
            numbered = getattr(env, "toc_fignumbers", {})
            groups: dict[str, list] = {}
            for label, info in proofs.items():
                docname, kind = info["docname"], info["realtype"].capitalize()
                if docnames and docname not in docnames:
                    continue
                anchor = info["ids"][0]
                counters = numbered.get(docname, {}).get(info["countertype"], {})
                number = tuple(counters.get(anchor, ()))
                name = f"{kind} {'.'.join(map(str, number))}" if number else kind
                title = titles.get(label, ("", ""))[1]
                chapter = env.titles[docname].astext() if docname in env.titles else ""
                # numbers start with the chapter's, so they sort in reading order
                key = (number or (10**6,), docname, label)
                groups.setdefault(kind + "s", []).append(
                    (key, [name, 0, docname, anchor, title, "", chapter]))
            content = [(group, [entry for _, entry in sorted(items)])
                       for group, items in sorted(groups.items())]
            return content, True

    ProofIndex.__name__ = base.__name__
    return ProofIndex


def setup(app):
    import sphinx_proof.domain

    app.connect("doctree-resolved", add_links)
    app.connect("html-page-context", drop_thebe, priority=900)
    # The book's layout fixes and the file:// search note, on every page.
    app.add_config_value("optbook_repository_url", "", "html")
    app.connect("config-inited", configure_repository)
    app.connect("builder-inited", lambda app: app.config.html_static_path.append(
        str(STATIC)))
    app.add_css_file("book_html.css")
    app.add_js_file("book_html.js")
    app.connect("builder-inited", collect_footer)
    app.connect("html-page-context", add_footer)
    app.connect("build-finished", copy_license)
    app.connect("doctree-read", index_optimizers)
    app.connect("doctree-read", collect_proof_titles)
    app.connect("env-purge-doc", purge_proof_titles)
    app.connect("env-merge-info", merge_proof_titles)
    # Replace (not add to) sphinx-proof's index, so that prf-prf.html keeps its name.
    domain = sphinx_proof.domain.ProofDomain
    domain.indices = {make_proof_index(sphinx_proof.domain.ProofIndex)}
    return {"parallel_read_safe": True, "parallel_write_safe": True}
