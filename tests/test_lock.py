"""requirements.lock pins all that `make` installs, and agrees with requirements.txt.

`make` installs the lock (hashes required), never requirements.txt, so a pin changed in
requirements.txt without re-compiling the lock would silently not take effect: these
tests catch that, and a lock that leaves some package unpinned or unhashed.
"""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def direct_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"requirements.txt: {line!r} is not pinned"
            pins[canonicalize_name(req.name)] = spec.version
    return pins


def locked() -> list[tuple[str, str, str, int]]:
    """(name, version, marker, number of hashes) for each entry of the lock."""
    text = (ROOT / "requirements.lock").read_text()
    entries = []
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        head = block.splitlines()[0].rstrip(" \\")
        if head.startswith("#") or not head.strip():
            continue
        req = Requirement(head)
        (spec,) = req.specifier
        assert spec.operator == "==", f"requirements.lock: {head!r} is not pinned"
        marker = str(req.marker or "")
        hashes = block.count("--hash=sha256:")
        entries.append((canonicalize_name(req.name), spec.version, marker, hashes))
    return entries


def test_every_locked_package_is_pinned_and_hashed():
    entries = locked()
    assert len(entries) > 100  # torch, Jupyter Book, JupyterLab and their dependencies
    unhashed = [name for name, _, _, hashes in entries if hashes == 0]
    assert not unhashed, f"no hash in requirements.lock for {unhashed}"


def test_lock_agrees_with_requirements_txt():
    lock = {}
    for name, version, marker, _ in locked():
        lock.setdefault(name, set()).add(version)
    for name, version in direct_pins().items():
        assert lock.get(name) == {version}, (
            f"{name}=={version} in requirements.txt but {lock.get(name)} in the lock: "
            "re-compile it (README: Updating the pinned versions)")


def test_known_pairs_are_locked():
    lock = {name: version for name, version, marker, _ in locked() if not marker}
    # the theme pair whose menu button works (1.3.0 with 0.17.1 leaves it dead)
    themes = lock["sphinx-book-theme"], lock["pydata-sphinx-theme"]
    assert themes == ("1.2.0", "0.16.1")
    assert (lock["torch"], lock["torchvision"]) == ("2.15.0", "0.29.2")
    assert lock["jupyter-book"] == "1.0.4.post1"
    assert "d2l" not in lock  # installed --no-deps: its own pins do not install
