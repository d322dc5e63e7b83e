"""A downloaded notebook runs outside the repository, from the wheel on the site.

A reader who saves a chapter's ``.ipynb`` and optbook's wheel from the site's
``notebooks/`` folder has neither the repository nor the book's environment. This test
builds that situation:

* a fresh virtual environment, without optbook and without the repository on its path;
* the public packages the chapters need, at the locked versions: the book's own
  ``.venv`` site-packages, linked entry by entry into a folder the fresh environment
  reads through a ``.pth`` file, **minus optbook** (its editable install and its
  metadata), so that nothing is downloaded at test time (the rule: only ``make``
  installs from the registries);
* two exported notebooks and the wheel copied into an empty folder outside the
  repository, run there by a kernel of the fresh environment.

The notebooks' own first cell must install optbook from the wheel (pip runs with
``PIP_NO_INDEX``: the public packages must already satisfy the ``[book]`` extra), and
every cell after it must run: the recorded data (package data) included.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest
from bookexport import glued
from test_book import HTML, ROOT
from test_notebooks import MACHINE_SPEED, comparable

pytestmark = pytest.mark.slow

#: Two chapters that need what a bare checkout used to lack: the recorded results
#: (package data), pandas, scipy, mnist1d (the bake-off); the reference packages
#: lion-pytorch and schedulefree (less memory).
NOTEBOOKS = ["bakeoff", "less_memory"]


def _public_packages(target: Path) -> None:
    """Link every entry of this environment's site-packages into ``target``, except
    optbook's (so that the fresh environment has to install it) and .pth files."""
    site = Path(sysconfig.get_paths()["purelib"])
    target.mkdir()
    for entry in site.iterdir():
        name = entry.name.lower()
        if name.startswith(("optbook", "__editable__")) or name.endswith(".pth"):
            continue
        (target / entry.name).symlink_to(entry)


@pytest.fixture
def fresh_env(tmp_path_factory):
    """A new environment per test: each notebook must install optbook itself."""
    base = tmp_path_factory.mktemp("fresh")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip())
    _public_packages(base / "public")
    (site / "public-packages.pth").write_text(str(base / "public") + "\n")
    kernels = base / "jupyter" / "kernels" / "fresh"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "fresh venv", "language": "python"}))
    return {"base": base, "python": python, "site": site}


def test_the_fresh_environment_has_no_optbook_and_no_repository(fresh_env):
    probe = ("import importlib.util, sys; print(importlib.util.find_spec('optbook') is None);"
             "print(any(p.startswith(%r) for p in sys.path))" % str(ROOT))
    out = subprocess.run([str(fresh_env["python"]), "-c", probe], check=True,
                         capture_output=True, text=True, cwd=fresh_env["base"],
                         env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert out.stdout.split() == ["True", "False"], out.stdout


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_downloaded_notebook_installs_the_wheel_and_runs(fresh_env, name, monkeypatch):
    from nbclient import NotebookClient

    (wheel,) = (HTML / "notebooks").glob("optbook-*.whl")
    reader = fresh_env["base"] / f"reader-{name}"
    reader.mkdir()
    shutil.copy2(wheel, reader)
    nb = nbformat.read(HTML / "notebooks" / f"{name}.ipynb", as_version=4)
    assert nb.cells[0].get("id") == "install-optbook"
    at_build = {k: comparable(v) for k, v in glued(nb).items() if not MACHINE_SPEED.search(k)}
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    nb.cells.append(nbformat.v4.new_code_cell(
        "import optbook\nprint('optbook from', optbook.__file__)"))
    for key in [k for k in os.environ if k.startswith("OPTBOOK") or k == "PYTHONPATH"]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("JUPYTER_PATH", str(fresh_env["base"] / "jupyter"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # the public packages must already satisfy it
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    NotebookClient(nb, timeout=600, kernel_name="fresh",
                   resources={"metadata": {"path": str(reader)}}).execute()

    install = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    assert "Successfully installed optbook" in install, install[-2000:]
    where = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert str(fresh_env["site"]) in where, where
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.get("output_type") == "error"]
    assert not errors
    # this run also stands for test_notebooks' re-run: every glued number reproduces
    rerun = {k: comparable(v) for k, v in glued(nb).items() if not MACHINE_SPEED.search(k)}
    assert rerun == at_build, "a re-run changed glued numbers: some randomness is not seeded"
