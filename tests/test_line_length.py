"""optbook's package code stays within 88 columns, so that the code the book pages
show (``literalinclude`` of marked regions) is never clipped."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "code" / "optbook"
MAX_COLUMNS = 88  # as pyproject.toml's [tool.ruff] line-length


def test_package_lines_fit_in_88_columns():
    files = sorted(PACKAGE.rglob("*.py"))
    assert files, f"no .py files under {PACKAGE}"
    too_long = [
        f"{path.relative_to(PACKAGE.parents[1])}:{number}: {len(line)} characters"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if len(line) > MAX_COLUMNS
    ]
    assert not too_long, (f"{len(too_long)} lines longer than {MAX_COLUMNS} "
                          "characters:\n" + "\n".join(too_long))
