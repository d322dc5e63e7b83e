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
from test_book import CHAPTERS, HTML, ROOT

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


@pytest.mark.parametrize("docname", NOTEBOOKS)
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
