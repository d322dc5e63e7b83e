"""The downloadable notebooks: plain Jupyter, runnable top to bottom, reproducible.

``make book`` exports one ``.ipynb`` per chapter into the site.  Each must contain no
MyST-only syntax, and must run in a fresh kernel without error; since seeds are set,
the re-run must also reproduce every number the build glued into the text (measures of
the machine's speed excepted: wall times under keys ending in ``_seconds`` and live
timing ratios under keys ending in ``_live``, also inside claim records).
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat
import pytest
from test_book import BUILD, CHAPTERS, HTML, ROOT

from bookexport import glued

pytestmark = pytest.mark.slow
NOTEBOOKS = ["chapters/preface"] + CHAPTERS
MYST_ONLY = re.compile(r"\{(prf:\w+|glue(:\w+)?|eq|footcite(:\w)?|cite(:\w)?|numref|ref|doc|exercise|"
                       r"solution|literalinclude|footbibliography)\}")


#: Glue keys that measure this machine's speed, not a seeded computation: wall times
#: (``..._seconds``) and live timing ratios (``..._live``).  They may differ on a re-run.
MACHINE_SPEED = re.compile(r"(_seconds|_live)$")


def comparable(data: dict) -> str:
    """What a glued value shows: its text, or for objects whose text is only a repr with
    a memory address (a pandas Styler), its HTML without the random element ids.  A
    claim record (``claim:<id>``) is compared without its machine-speed values."""
    text = data.get("text/plain", "")
    if re.search(r" at 0x[0-9a-f]+>$", text) and "text/html" in data:
        return re.sub(r"T_[0-9a-f_]+", "T_", data["text/html"])
    try:
        record = json.loads(ast.literal_eval(text))
    except (ValueError, SyntaxError, TypeError):
        return text
    if isinstance(record, dict) and "values" in record:
        record["values"] = {k: v for k, v in record["values"].items()
                            if not MACHINE_SPEED.search(k)}
        return json.dumps(record, sort_keys=True)
    return text


def exported(docname: str) -> Path:
    path = HTML / "notebooks" / f"{Path(docname).name}.ipynb"
    assert path.exists(), f"{path} missing: run `make book`"
    return path


@pytest.mark.parametrize("docname", NOTEBOOKS)
def test_exported_notebook_has_no_myst_syntax(docname):
    nb = nbformat.read(exported(docname), as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            found = MYST_ONLY.search(cell.source) or re.search(r"^(```|:::)\{", cell.source, re.M)
            assert not found, f"MyST syntax {found.group(0)!r} left in a Markdown cell"
            assert not re.search(r"^\([\w-]+\)=$", cell.source, re.M), "a MyST label target is left"


#: The notebooks that test_fresh_venv runs (in a fresh environment, with the same check
#: of every glued number) are not run a second time here.
RERUN = [d for d in NOTEBOOKS if Path(d).name not in ("bakeoff", "less_memory")]


@pytest.mark.parametrize("docname", RERUN)
def test_exported_notebook_runs_in_a_fresh_kernel_and_reproduces_the_numbers(docname):
    from nbclient import NotebookClient

    nb = nbformat.read(exported(docname), as_version=4)
    at_build = {k: comparable(v) for k, v in glued(nb).items() if not MACHINE_SPEED.search(k)}
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    # a plain kernel in the chapters/ folder, as a learner who downloaded it would run it
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "chapters")}}).execute()
    rerun = {k: comparable(v) for k, v in glued(nb).items() if not MACHINE_SPEED.search(k)}
    assert rerun == at_build, "a re-run changed glued numbers: some randomness is not seeded"


# --- what a reader downloads -----------------------------------------------------


@pytest.mark.parametrize("docname", NOTEBOOKS)
def test_exported_notebook_keeps_what_the_page_shows(docname):
    """No slide-only or speaker-note cells (the page drops remove-cell), an install cell
    first, links to the other chapters' notebooks, exercises numbered as on the page."""
    nb = nbformat.read(exported(docname), as_version=4)
    assert nb.cells[0].get("id") == "install-optbook"
    assert "%pip install" in nb.cells[0].source and "[book]" in nb.cells[0].source
    assert not [c for c in nb.cells if "remove-cell" in c.metadata.get("tags", [])]
    full = nbformat.read(BUILD / "slides_src" / f"{Path(docname).name}.ipynb", as_version=4)
    kept = [c for c in full.cells if "remove-cell" not in c.metadata.get("tags", [])]
    if docname != "chapters/preface":  # every chapter has slide-only cells or notes
        assert len(kept) < len(full.cells)
    assert [c.source for c in nb.cells[1:] if c.cell_type == "code"] == [
        c.source for c in kept if c.cell_type == "code"]
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert not re.search(r"\(eq-[\w.-]+\)", markdown), "an equation label, not its number"
    assert not re.search(r"\]\([\w-]+\.md[)#]", markdown), "a link to a .md file is left"
    for target in re.findall(r"\]\(([\w-]+)\.ipynb[)#]", markdown):
        assert (HTML / "notebooks" / f"{target}.ipynb").exists(), target
    for target in re.findall(r"\]\(\.\./chapters/([\w-]+)\.html[)#]", markdown):
        assert (HTML / "chapters" / f"{target}.html").exists(), target
    page = (HTML / f"{docname}.html").read_text(encoding="utf-8")
    on_page = re.findall(r'admonition-title"><span class="caption-number">Exercise ([\d.]+) ',
                         page)
    in_notebook = re.findall(r"^\*\*Exercise (\d+(?:\.\d+)*)[ .*]", markdown, re.M)
    assert in_notebook == on_page


def test_all_notebooks_and_the_wheel_download_as_one_zip():
    import zipfile

    (wheel,) = (HTML / "notebooks").glob("optbook-*.whl")
    with zipfile.ZipFile(HTML / "notebooks" / "optbook-notebooks.zip") as zf:
        names = sorted(Path(n).name for n in zf.namelist())
    assert names == sorted([f"{Path(d).name}.ipynb" for d in NOTEBOOKS] + [wheel.name])
    with zipfile.ZipFile(wheel) as zf:
        inside = zf.namelist()
    records = sorted(Path(n).name for n in inside if "/records/" in n)
    shipped = sorted(p.name for p in (ROOT / "code" / "optbook" / "book" / "records").iterdir()
                     if p.suffix in (".csv", ".json"))
    assert records == shipped and "fast_paths_bench.json" in records
    assert not [n for n in inside if n.endswith(".jsonl")], "the journal is not package data"
    for docname in NOTEBOOKS:  # every chapter page links the notebook, the wheel, the zip
        page = (HTML / f"{docname}.html").read_text(encoding="utf-8")
        for target in (f"{Path(docname).name}.ipynb", wheel.name, "optbook-notebooks.zip"):
            assert f'href="../notebooks/{target}" download' in page, (docname, target)
