"""JupyterLab (`make lab`): chapters open as notebooks, render MyST, and survive a save.

Lab opens ``chapters/*.md`` through jupytext's contents manager and renders their
Markdown with jupyterlab-myst. Saving a chapter that was opened and not edited must
leave it byte-identical: the test runs jupytext's own contents manager (what Lab calls
on open and on save) on a copy of every chapter, under the repository's jupytext
configuration (``[tool.jupytext]`` in pyproject.toml).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def notebook_chapters() -> list[Path]:
    """The chapters that are MyST notebooks (a kernelspec in the front matter); the
    back-matter pages (build report, claims ledger) are plain Markdown."""
    out = []
    for path in sorted((ROOT / "chapters").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        if text.startswith("---\n") and "kernelspec:" in text.split("---\n")[1]:
            out.append(path)
    return out


@pytest.fixture(scope="module")
def lab_copy(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    shutil.copy2(ROOT / "pyproject.toml", root / "pyproject.toml")
    (root / "chapters").mkdir()
    for path in notebook_chapters():
        shutil.copy2(path, root / "chapters" / path.name)
    return root


@pytest.mark.parametrize("chapter", [p.name for p in notebook_chapters()])
def test_open_and_save_in_lab_leaves_the_chapter_unchanged(lab_copy, chapter):
    from jupytext import TextFileContentsManager

    cm = TextFileContentsManager(root_dir=str(lab_copy))
    path = lab_copy / "chapters" / chapter
    before = path.read_bytes()
    model = cm.get(f"chapters/{chapter}")
    assert model["type"] == "notebook" and model["content"]["cells"]
    cm.save(model, f"chapters/{chapter}")
    after = path.read_bytes()
    assert after == before, f"a save from Lab rewrites {chapter}"


def test_lab_has_the_myst_and_jupytext_extensions():
    out = subprocess.run([str(Path(sys.executable).parent / "jupyter"), "labextension",
                          "list"], capture_output=True, text=True, check=True)
    text = out.stdout + out.stderr
    for name in ("jupyterlab-myst", "jupyterlab-jupytext"):
        line = next((ln for ln in text.splitlines() if name in ln), "")
        assert "enabled" in line and "OK" in line, f"{name}: {line!r}\n{text}"
    assert "is not compatible" not in text, text
