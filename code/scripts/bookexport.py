"""Export the executed chapters as plain Jupyter notebooks and reveal.js slide decks.

The chapters are MyST notebooks: their Markdown uses directives (proofs, exercises,
``literalinclude``, ``glue:figure``) and roles (``{eq}``, ``{glue:text}``,
``{footcite:t}``) that plain Jupyter, Colab and nbconvert's slide exporter do not
understand.  This script rewrites each executed notebook of the build
(``_build/jupyter_execute/chapters/*.ipynb``) into plain Markdown + MathJax:

* proofs and propositions become bold-titled paragraphs, solutions ``<details>``;
* ``literalinclude`` becomes the included source, read from ``code/optbook``;
* ``{glue:text}`` becomes the value computed by the build, ``{glue:figure}`` the image;
* labelled equations get ``\\tag{N}`` with the number the HTML site shows, and
  ``{eq}`` references that number;
* citations become "Author (year)" and the bibliography a list;
* exercises are numbered as on the page (6.1, 6.2, ...).

The downloadable notebook (``html/notebooks/<chapter>.ipynb``) keeps what the page
shows: cells tagged ``remove-cell`` (slide-only titles, speaker notes) are dropped,
links to other chapters point to their ``.ipynb``, and a first cell installs optbook
from the wheel beside it (``html/notebooks/``, with ``optbook-notebooks.zip`` holding
every notebook and the wheel). The slide decks are made from the full conversion,
``_build/slides_src/<chapter>.ipynb``, remove-cell cells included.

Usage::

    bookexport.py notebooks BUILD_DIR   # -> BUILD_DIR/html/notebooks/<chapter>.ipynb, .zip
    bookexport.py slides BUILD_DIR      # -> BUILD_DIR/html/slides/<chapter>.slides.html
"""

from __future__ import annotations

import ast
import base64
import html
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:.-]+)\}\s*(?P<arg>.*)$")
PLAIN_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})")
ROLE = re.compile(r"\{(?P<name>[\w:.-]+)\}`(?P<content>[^`]*)`")
LABELLED_MATH = re.compile(r"\$\$(?P<body>.+?)\$\$\s*\((?P<label>[\w:.-]+)\)", re.S)
TARGET = re.compile(r"^\([\w:.-]+\)=\s*$", re.M)
EQ_LABEL = re.compile(r"\((eq-[\w.-]+)\)")  # an equation label in included source

PROOF_TITLES = {
    "proposition": "Proposition", "theorem": "Theorem", "lemma": "Lemma", "corollary": "Corollary",
    "definition": "Definition", "remark": "Remark", "example": "Example", "algorithm": "Algorithm",
    "conjecture": "Conjecture", "assumption": "Assumption", "observation": "Observation",
    "property": "Property", "axiom": "Axiom", "criterion": "Criterion",
}


# ----------------------------------------------------------------------------------
# What the build knows: chapters, equation numbers, glued values, the bibliography.
# ----------------------------------------------------------------------------------


#: Back-matter pages that are not chapter notebooks (no .ipynb, no deck).
BACK_MATTER = {"chapters/build_report", "chapters/claims_ledger"}


def chapters() -> list[str]:
    """The chapters of the table of contents (``$BOOK_TOC`` overrides ``_toc.yml``)."""
    toc = yaml.safe_load(Path(os.environ.get("BOOK_TOC", ROOT / "_toc.yml")).read_text())
    files = [c["file"] for part in toc.get("parts", []) for c in part["chapters"]]
    return [f for f in files if f not in BACK_MATTER]


def chapter_number(html_dir: Path, docname: str) -> str:
    """The number the site gives a chapter ("6"), or "" for an unnumbered page."""
    page = html_dir / f"{docname}.html"
    if not page.exists():
        return ""
    m = re.search(r'<h1><span class="section-number">(\d+)\. </span>',
                  page.read_text(encoding="utf-8"))
    return m[1] if m else ""


def equation_numbers(html_dir: Path) -> dict[str, tuple[str, str]]:
    """label -> (number as the site shows it, chapter docname)."""
    numbers = {}
    pattern = re.compile(r'id="equation-(?P<label>[\w.:-]+)">\s*<span class="eqno">\((?P<num>[^)]+)\)')
    for docname in chapters():
        page = html_dir / f"{docname}.html"
        if page.exists():
            for m in pattern.finditer(page.read_text(encoding="utf-8")):
                numbers[m["label"]] = (m["num"], docname)
    return numbers


def load_executed(build: Path, docname: str):
    """The executed notebook of a chapter with *all* its outputs.

    ``_build/jupyter_execute`` holds the notebook as the page shows it, but myst-nb
    drops the outputs of ``glue(..., display=False)`` there; the execution cache keeps
    them (code cells only, in order).  Put the cached outputs back into the cells.
    """
    from jupyter_cache import get_cache

    nb = nbformat.read(build / "jupyter_execute" / f"{docname}.ipynb", as_version=4)
    cache = get_cache(str(build / ".jupyter_cache"))
    source = str((ROOT / f"{docname}.md").resolve())
    # the cache keeps a record per version of the code: the newest is this build's
    records = [r for r in cache.list_cache_records() if r.uri == source]
    record = max(records, key=lambda r: r.created) if records else None
    if record is None:
        raise SystemExit(f"{docname} is not in the execution cache: run `make book` first")
    cached = [c for c in cache.get_cache_bundle(record.pk).nb.cells if c.cell_type == "code"]
    code = [c for c in nb.cells if c.cell_type == "code"]
    if len(cached) != len(code):
        raise SystemExit(f"{docname}: cache and build disagree ({len(cached)} vs {len(code)} code cells)")
    for cell, executed in zip(code, cached):
        cell.outputs = executed.outputs
    return nb


def reference_texts(html_dir: Path) -> dict[str, str]:
    """label -> the text Sphinx rendered for references to it ("Proposition 3", "Fig. 2")."""
    texts = {}
    pattern = re.compile(r'<a class="reference internal" href="[^"#]*#(?P<label>[\w.:-]+)"[^>]*>'
                         r'(?P<text>.*?)</a>', re.S)
    for docname in chapters():
        page = html_dir / f"{docname}.html"
        if page.exists():
            for m in pattern.finditer(page.read_text(encoding="utf-8")):
                text = html.unescape(re.sub(r"<[^>]+>", "", m["text"])).strip()
                if text and not text.startswith("("):
                    texts.setdefault(m["label"], text)
    return texts


def glued(nb) -> dict[str, dict]:
    """key -> output data of every value a notebook glued."""
    values = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            key = out.get("metadata", {}).get("scrapbook", {}).get("name")
            if key:
                values[key] = {k.removeprefix("application/papermill.record/"): v
                               for k, v in out.get("data", {}).items()}
    return values


def _strip_braces(s: str) -> str:
    return re.sub(r"[{}]", "", s).replace("\\'", "'").replace('\\"', '"')


@dataclass
class Bibliography:
    entries: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> "Bibliography":
        from pybtex.database import parse_file

        return cls(parse_file(str(path)).entries)

    def authors(self, key: str) -> str:
        people = self.entries[key].persons.get("author", [])
        last = [_strip_braces(" ".join(p.last_names)) for p in people]
        if len(last) == 1:
            return last[0]
        if len(last) == 2:
            return f"{last[0]} and {last[1]}"
        return f"{last[0]} et al."

    def year(self, key: str) -> str:
        return self.entries[key].fields.get("year", "n.d.")

    def textual(self, key: str) -> str:
        return f"{self.authors(key)} ({self.year(key)})"

    def parenthetical(self, key: str) -> str:
        return f"{self.authors(key)}, {self.year(key)}"

    def reference(self, key: str) -> str:
        e = self.entries[key]
        people = ", ".join(_strip_braces(str(p)) for p in e.persons.get("author", []))
        venue = e.fields.get("journal") or e.fields.get("booktitle") or e.fields.get("publisher") \
            or e.fields.get("howpublished", "")
        return f"{people} ({self.year(key)}). *{_strip_braces(e.fields['title'])}*. {_strip_braces(venue)}."


# ----------------------------------------------------------------------------------
# MyST Markdown -> plain Markdown
# ----------------------------------------------------------------------------------


@dataclass
class Context:
    docname: str
    equations: dict
    glue: dict
    bib: Bibliography
    references: dict = field(default_factory=dict)
    cited: list = field(default_factory=list)
    exercises: dict = field(default_factory=dict)
    chapter: str = ""   # the chapter's number on the site: exercises are <chapter>.<k>
    count: int = 0      # exercises seen so far

    def next_exercise(self) -> str:
        self.count += 1
        return f"{self.chapter}.{self.count}" if self.chapter else str(self.count)


def _format_glue(data: dict, spec: str) -> str:
    text = data.get("text/plain", "")
    if not spec:
        return text.strip("'\"")
    inner = re.sub(r"^np\.\w+\((.*)\)$", r"\1", text.strip())
    try:
        value = ast.literal_eval(inner)
    except (ValueError, SyntaxError):
        return text
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def _image(data: dict, alt: str) -> str:
    for mime in ("image/png", "image/jpeg"):
        if mime in data:
            payload = data[mime] if isinstance(data[mime], str) else base64.b64encode(data[mime]).decode()
            payload = payload.replace("\n", "")
            return f'<img src="data:{mime};base64,{payload}" alt="{html.escape(alt)}" style="max-width:100%"/>'
    if "text/html" in data:
        return data["text/html"]
    return f"`{data.get('text/plain', '')}`"


def convert_role(m: re.Match, ctx: Context) -> str:
    name, content = m["name"], m["content"]
    if name == "eq":
        number, doc = ctx.equations.get(content.lower(), ("?", ctx.docname))
        return f"({number})"
    if name in ("glue:text", "glue", "glue:any"):
        key, _, spec = content.partition(":")
        data = ctx.glue.get(key)
        if data is None:
            return f"`{key}`"
        return _format_glue(data, spec) if name == "glue:text" or "text/plain" in data else _image(data, key)
    if name == "glue:md":
        key = content.split(":")[0]
        return ctx.glue.get(key, {}).get("text/markdown", ctx.glue.get(key, {}).get("text/plain", ""))
    if name in ("footcite:t", "cite:t", "cite:ts"):
        keys = [k.strip() for k in content.split(",")]
        ctx.cited.extend(k for k in keys if k not in ctx.cited)
        return "; ".join(ctx.bib.textual(k) for k in keys)
    if name in ("footcite", "footcite:p", "cite", "cite:p", "cite:ps"):
        keys = [k.strip() for k in content.split(",")]
        ctx.cited.extend(k for k in keys if k not in ctx.cited)
        return "(" + "; ".join(ctx.bib.parenthetical(k) for k in keys) + ")"
    if name == "math":
        return f"${content}$"
    if name in ("numref", "ref", "doc", "prf:ref", "term", "download"):
        explicit = re.match(r"(.*)<(.+)>$", content)
        if explicit:
            return explicit[1].strip()
        if content in ctx.exercises:
            return f"Exercise {ctx.exercises[content]}"
        if content.lower() in ctx.references:
            return ctx.references[content.lower()]
        return content.replace("-", " ")
    return content


def convert_roles(text: str, ctx: Context) -> str:
    return ROLE.sub(lambda m: convert_role(m, ctx), text)


def _options(lines: list[str]) -> tuple[dict, list[str]]:
    """Split a directive body into its ``:key: value`` options and the content."""
    options, i = {}, 0
    if lines and lines[0].strip() == "---":
        end = lines.index("---", 1) if "---" in lines[1:] else 0
        options = yaml.safe_load("\n".join(lines[1:end])) or {}
        return options, lines[end + 1:]
    while i < len(lines) and re.match(r"^:[\w-]+:", lines[i]):
        key, _, value = lines[i][1:].partition(":")
        options[key] = value.strip()
        i += 1
    return options, lines[i:]


def _include(arg: str, options: dict, ctx: Context) -> str:
    path = (ROOT / "chapters" / arg).resolve()
    text = path.read_text()
    if "pyobject" in options:
        import ast as pyast

        tree = pyast.parse(text)
        for node in pyast.walk(tree):
            if getattr(node, "name", None) == options["pyobject"]:
                lines = text.splitlines()[node.lineno - 1 - len(getattr(node, "decorator_list", [])): node.end_lineno]
                text = "\n".join(lines)
                break
    unquote = lambda key: options.get(key, "").strip('"').strip("'")  # noqa: E731
    if unquote("start-after"):
        text = text.split(unquote("start-after"), 1)[1].split("\n", 1)[1]
    if unquote("start-at"):
        marker = unquote("start-at")
        text = marker + text.split(marker, 1)[1]
    if unquote("end-before"):
        text = text.split(unquote("end-before"), 1)[0]
    if unquote("end-at"):
        marker = unquote("end-at")
        head, tail = text.split(marker, 1)
        text = head + marker + tail.split("\n", 1)[0]
    if "lines" in options:
        lines, keep = text.splitlines(), []
        for part in options["lines"].split(","):
            a, _, b = part.strip().partition("-")
            keep.extend(range(int(a), (int(b) if b else (len(lines) if _ else int(a))) + 1))
        text = "\n".join(lines[i - 1] for i in keep if 0 < i <= len(lines))
    if "dedent" in options:
        import textwrap

        text = textwrap.dedent(text)
    # the page shows the labels, `(eq-adam-m)`; a notebook or slide shows the numbers
    text = EQ_LABEL.sub(lambda m: f"({ctx.equations[m[1].lower()][0]})"
                        if m[1].lower() in ctx.equations else m[0], text)
    language = options.get("language", "python")
    return f"```{language}\n{text.rstrip()}\n```"


def convert_directive(name: str, arg: str, body: list[str], ctx: Context) -> str:
    options, content_lines = _options(body)
    content = convert_markdown("\n".join(content_lines), ctx).strip()
    if name.startswith("prf:"):
        kind = name[4:]
        if kind == "proof":
            return f"*Proof.* {content} $\\blacksquare$"
        title = PROOF_TITLES.get(kind, kind.capitalize())
        extra = f" ({convert_roles(arg, ctx)})" if arg else ""
        return f"> **{title}{extra}.** " + content.replace("\n", "\n> ")
    if name == "exercise":
        number = ctx.next_exercise()
        if "label" in options:
            ctx.exercises[options["label"]] = number
        extra = f" ({arg})" if arg else ""
        return f"**Exercise {number}{extra}.** {content}"
    if name == "solution":
        return f"<details><summary><b>Solution</b></summary>\n\n{content}\n\n</details>"
    if name == "literalinclude":
        return _include(arg, options, ctx)
    if name == "glue:figure":
        data = ctx.glue.get(arg.strip(), {})
        return f"{_image(data, arg)}\n\n*{content}*" if data else f"*{content}*"
    if name == "figure":
        return f'<img src="{arg}" alt="" style="max-width:100%"/>\n\n*{content}*'
    if name in ("math",):
        return f"$$\n{content}\n$$"
    if name in ("footbibliography", "bibliography"):
        return "\n".join(f"- {ctx.bib.reference(k)}" for k in ctx.cited) or "(none)"
    if name in ("code-block", "code", "sourcecode"):
        return f"```{arg}\n" + "\n".join(content_lines) + "\n```"
    if name in ("nb-exec-table", "tableofcontents", "toctree"):
        return ""
    # admonitions (note, warning, tip, important, seealso, admonition, margin, dropdown, ...)
    title = arg or name.replace(":", " ").capitalize()
    return f"> **{convert_roles(title, ctx)}.** " + content.replace("\n", "\n> ")


def convert_markdown(text: str, ctx: Context) -> str:
    """Rewrite one Markdown cell's MyST syntax as plain Markdown (directives recursively)."""
    text = TARGET.sub("", text)
    text = LABELLED_MATH.sub(lambda m: _tag(m, ctx), text)
    # "the line marked `(eq-l2)`": the included code shows numbers here, so does the text
    text = re.sub(r"`\((eq-[\w.-]+)\)`", lambda m: f"`({ctx.equations[m[1].lower()][0]})`"
                  if m[1].lower() in ctx.equations else m[0], text)
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        plain = PLAIN_FENCE.match(lines[i]) if not m else None
        if m or plain:
            fence = (m or plain)["fence"]
            j = i + 1
            while j < len(lines) and lines[j].strip() != fence:
                j += 1
            body = lines[i + 1:j]
            out.append(convert_directive(m["name"], m["arg"].strip(), body, ctx) if m
                       else "\n".join(lines[i:j + 1]))
            i = j + 1
            continue
        out.append(convert_roles(lines[i], ctx))
        i += 1
    return "\n".join(out)


def _tag(m: re.Match, ctx: Context) -> str:
    number, _ = ctx.equations.get(m["label"].lower(), ("?", ctx.docname))
    return f"$${m['body'].rstrip()}\n\\tag{{{number}}}\n$$"


def convert_notebook(nb, docname: str, equations: dict, bib: Bibliography, references=None,
                     chapter: str = ""):
    """A plain-Jupyter copy of an executed MyST notebook (outputs kept)."""
    ctx = Context(docname, equations, glued(nb), bib, references or {}, chapter=chapter)
    out = nbformat.v4.new_notebook(metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    for index, cell in enumerate(nb.cells):
        new = nbformat.from_dict(dict(cell))
        new["id"] = cell.get("id") or f"cell-{index}"
        if cell.cell_type == "markdown":
            new.source = convert_markdown(cell.source, ctx)
        out.cells.append(new)
    nbformat.validate(out)
    return out


# ----------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------


#: Links to another chapter's page: ``](adam.md)``, ``](adam.md#section)``.
CHAPTER_LINK = re.compile(r"\]\((?P<name>[\w-]+)\.md(?P<anchor>#[^)]*)?\)")


def book_extra() -> list[str]:
    """The public packages optbook needs with its ``[book]`` extra, as installed from
    pyproject.toml (``make`` reinstalls optbook when that file changes)."""
    from importlib.metadata import requires

    out = []
    for req in requires("optbook") or []:
        name, _, marker = req.partition(";")
        if not marker or 'extra == "book"' in marker:
            out.append(name.strip())
    return out


def install_cell(wheel: str) -> "nbformat.NotebookNode":
    """The first cell of a downloaded notebook: install optbook from the wheel."""
    import textwrap

    names = ", ".join(re.split(r"[<>=!~ ]", r)[0] for r in book_extra())
    text = ("Outside the book's own environment, this cell installs what the chapter "
            "imports: optbook, the book's package, from the wheel on the book's site (its "
            "notebooks/ folder, or optbook-notebooks.zip), saved beside this notebook, and "
            f"the public packages it requires with its [book] extra: {names}. Where optbook "
            "is already installed it does nothing.")
    source = (
        "".join(f"# {line}\n" for line in textwrap.wrap(text, 86)) +
        "import importlib.util\n\n"
        'if importlib.util.find_spec("optbook") is None:\n'
        f'    %pip install "./{wheel}[book]"\n'
        "    importlib.invalidate_caches()  # so that this kernel sees the new package"
    )
    cell = nbformat.v4.new_code_cell(source, id="install-optbook")
    cell.metadata["tags"] = ["install"]
    return cell


def _relink(m: re.Match) -> str:
    """A chapter's notebook beside this one; a back-matter page (no notebook) on the site."""
    anchor = m["anchor"] or ""
    if f"chapters/{m['name']}" in BACK_MATTER:
        return f"](../chapters/{m['name']}.html{anchor})"
    return f"]({m['name']}.ipynb{anchor})"


def reader_notebook(plain, wheel: str) -> "nbformat.NotebookNode":
    """What the page shows, as a notebook: no remove-cell cells (slide titles, speaker
    notes), links to the other chapters' notebooks, an install cell first."""
    nb = nbformat.from_dict(dict(plain))
    nb.cells = [c for c in nb.cells if "remove-cell" not in c.metadata.get("tags", [])]
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = CHAPTER_LINK.sub(_relink, cell.source)
    nb.cells.insert(0, install_cell(wheel))
    nbformat.validate(nb)
    return nb


def build_wheel(target: Path) -> Path:
    """optbook's wheel (package data included), built with the environment's own
    setuptools and no download: the one that downloaded notebooks install."""
    import subprocess

    for old in target.glob("optbook-*.whl"):
        old.unlink()
    had_build = (ROOT / "build").exists()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(target), str(ROOT)], check=True)
    if not had_build:  # setuptools' scratch folder, not part of the repository
        shutil.rmtree(ROOT / "build", ignore_errors=True)
    (wheel,) = target.glob("optbook-*.whl")
    return wheel


def export_notebooks(build: Path) -> list[Path]:
    import zipfile

    html_dir = build / "html"
    equations = equation_numbers(html_dir)
    references = reference_texts(html_dir)
    bib = Bibliography.load(ROOT / "chapters" / "references.bib")
    out_dir, full_dir = html_dir / "notebooks", build / "slides_src"
    out_dir.mkdir(parents=True, exist_ok=True)
    full_dir.mkdir(parents=True, exist_ok=True)
    wheel = build_wheel(out_dir)
    written = []
    for docname in ["chapters/preface"] + chapters():
        nb = load_executed(build, docname)
        plain = convert_notebook(nb, docname, equations, bib, references,
                                 chapter=chapter_number(html_dir, docname))
        name = f"{Path(docname).name}.ipynb"
        nbformat.write(plain, full_dir / name)
        nbformat.write(reader_notebook(plain, wheel.name), out_dir / name)
        written.append(out_dir / name)
    bundle = out_dir / "optbook-notebooks.zip"
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in written + [wheel]:
            zf.write(path, f"optbook-notebooks/{path.name}")
    print(f"wrote {len(written)} notebooks, {wheel.name} and {bundle.name} to {out_dir}")
    return written


VENDOR_FILES = {  # node_modules path -> path under slides/vendor/
    "reveal.js/dist": "reveal.js/dist",
    "reveal.js/plugin/notes": "reveal.js/plugin/notes",
    "requirejs/require.js": "require.js",
    "jquery/dist/jquery.min.js": "jquery.min.js",
    "mathjax/MathJax.js": "mathjax/MathJax.js",
    "mathjax/config": "mathjax/config",
    "mathjax/extensions": "mathjax/extensions",
    "mathjax/jax/input/TeX": "mathjax/jax/input/TeX",
    "mathjax/jax/output/CommonHTML": "mathjax/jax/output/CommonHTML",
    "mathjax/jax/element": "mathjax/jax/element",
    "mathjax/localization/en": "mathjax/localization/en",
    "mathjax/fonts/HTML-CSS/TeX/woff": "mathjax/fonts/HTML-CSS/TeX/woff",
}


def _copy_vendor(node_modules: Path, vendor: Path) -> None:
    for src, dst in VENDOR_FILES.items():
        s, d = node_modules / src, vendor / dst
        if not s.exists():
            raise SystemExit(f"missing {s}: run `make slides` (it installs the pinned npm packages)")
        d.parent.mkdir(parents=True, exist_ok=True)
        if s.is_dir():
            shutil.copytree(s, d, dirs_exist_ok=True)
        else:
            shutil.copy2(s, d)


def _heading(cell) -> str | None:
    if cell.cell_type == "markdown" and cell.source.lstrip().startswith("#"):
        return cell.source.lstrip().split("\n")[0].lstrip("#").strip()
    return None


def slide_notebook(plain) -> "nbformat.NotebookNode":
    """Only the cells marked for slides; code cells show their outputs. A slide that
    starts with a figure (a code cell) gets the title of the section it stands in."""
    deck = nbformat.from_dict(dict(plain))
    cells, section = [], None
    for cell in deck.cells:
        slideshow = cell.metadata.get("slideshow", {})
        kind = slideshow.get("slide_type")
        if _heading(cell):
            section = _heading(cell)
        if kind in ("slide", "subslide") and not _heading(cell) and section:
            title = nbformat.v4.new_markdown_cell(f"## {section}")
            title.metadata["slideshow"] = {"slide_type": kind}
            cells.append(title)
            cell.metadata["slideshow"] = {**slideshow, "slide_type": "-"}
        elif not kind:
            cell.metadata["slideshow"] = {"slide_type": "skip"}
        cells.append(cell)
    deck.cells = cells
    return deck


def export_slides(build: Path) -> list[Path]:
    from nbconvert import SlidesExporter
    from traitlets.config import Config

    html_dir = build / "html"
    slides_dir = html_dir / "slides"
    vendor = slides_dir / "vendor"
    _copy_vendor(ROOT / "code" / "scripts" / "slides" / "node_modules", vendor)
    config = Config()
    config.SlidesExporter.reveal_url_prefix = "vendor/reveal.js"
    config.SlidesExporter.reveal_theme = "white"  # the default "simple" imports web fonts
    config.SlidesExporter.require_js_url = "vendor/require.js"
    config.SlidesExporter.jquery_url = "vendor/jquery.min.js"
    config.SlidesExporter.mathjax_url = "vendor/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe"
    config.SlidesExporter.font_awesome_url = ""
    # Slides show results: figures, tables, and the key code printed by a cell.
    config.SlidesExporter.exclude_input = True
    config.SlidesExporter.exclude_input_prompt = True
    config.SlidesExporter.exclude_output_prompt = True
    config.SlidesExporter.extra_template_basedirs = [str(ROOT / "code" / "scripts" / "slides")]
    config.SlidesExporter.template_name = "book_reveal"
    exporter = SlidesExporter(config=config)
    entries, written = [], []
    order = [Path(d).name for d in ["chapters/preface"] + chapters()]  # book order
    for notebook in sorted((build / "slides_src").glob("*.ipynb"),
                           key=lambda p: (order.index(p.stem) if p.stem in order else 99,
                                          p.stem)):
        plain = nbformat.read(notebook, as_version=4)
        deck = slide_notebook(plain)
        n_slides = sum(c.metadata.get("slideshow", {}).get("slide_type") == "slide" for c in deck.cells)
        if n_slides == 0:
            continue
        body, _ = exporter.from_notebook_node(deck, resources={"metadata": {"name": notebook.stem}})
        target = slides_dir / f"{notebook.stem}.slides.html"
        target.write_text(body, encoding="utf-8")
        title = next((c.source.lstrip("# ").split("\n")[0] for c in plain.cells
                      if c.cell_type == "markdown" and c.source.startswith("# ")), notebook.stem)
        entries.append((target.name, title, n_slides))
        written.append(target)
    items = "\n".join(f'<li><a href="{name}">{html.escape(title)}</a> ({n} slides; '
                      f'<a href="../chapters/{name.split(".")[0]}.html">the chapter</a>)</li>'
                      for name, title, n in entries)
    (slides_dir / "index.html").write_text(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>"
        "<title>Slide decks</title><style>body{font-family:sans-serif;max-width:40em;margin:3em auto}"
        "</style></head><body><h1>Slide decks</h1>\n<p>One reveal.js deck per chapter, in the book's order, generated "
        "from the executed chapters. They work offline: reveal.js and MathJax are served from "
        "<code>vendor/</code>. Press <kbd>s</kbd> for speaker notes.</p>\n"
        f"<ul>\n{items}\n</ul>\n<p><a href=\"../index.html\">Back to the book</a></p></body></html>\n",
        encoding="utf-8")
    print(f"wrote {len(written)} decks and an index to {slides_dir}")
    return written


def main(argv: list[str]) -> int:
    command, build = argv[1], Path(argv[2] if len(argv) > 2 else "_build")
    if command == "notebooks":
        export_notebooks(build)
    elif command == "slides":
        export_slides(build)
    else:
        raise SystemExit(__doc__)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
