"""The book's Sphinx extension (code/scripts/book_html.py), without a build."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from docutils import nodes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "code" / "scripts"))
import book_html  # noqa: E402

INFO = {"version": "9.9.9", "date": "2026-01-02", "commit": "commit 0123456789ab"}


@pytest.mark.parametrize("url, expected", [
    ("", ""), (None, ""), ("  ", ""),
    (book_html.JB_DEFAULT_REPOSITORY, ""),         # Jupyter Book's own default: unset
    (book_html.JB_DEFAULT_REPOSITORY + "/", ""),
    ("https://github.com/o/optbook", "https://github.com/o/optbook"),
    ("https://gitlab.com/o/optbook", "https://gitlab.com/o/optbook"),
])
def test_repository_button_is_on_exactly_when_a_url_is_set(url, expected):
    config = SimpleNamespace(html_theme_options={"repository_url": url,
                                                 "use_repository_button": True})
    book_html.configure_repository(None, config)
    assert config.html_theme_options["repository_url"] == expected
    assert config.html_theme_options["use_repository_button"] is bool(expected)


def test_other_hosts_get_the_footer_link_but_no_button():
    # the theme cannot draw a button for an unknown host without repository_provider
    url = "https://example.org/optbook"
    config = SimpleNamespace(html_theme_options={"repository_url": url})
    book_html.configure_repository(None, config)
    assert config.html_theme_options["use_repository_button"] is False
    assert config.html_theme_options["repository_url"] == ""  # the theme would fail
    assert book_html.repository_url(config) == url
    config = SimpleNamespace(html_theme_options={"repository_url": url,
                                                 "repository_provider": "gitlab"})
    book_html.configure_repository(None, config)
    assert config.html_theme_options["use_repository_button"] is True
    assert config.html_theme_options["repository_url"] == url


def test_footer_links_the_repository_only_when_set():
    plain = book_html.footer_html(INFO, "../LICENSE.txt", "", "")
    assert "optbook 9.9.9" in plain and "built 2026-01-02" in plain
    assert "commit 0123456789ab" in plain and 'href="../LICENSE.txt"' in plain
    assert "CC BY-SA 4.0" in plain and "code MIT" in plain and "source:" not in plain
    linked = book_html.footer_html(INFO, "LICENSE.txt", "https://x.org/a?b=1&c=2",
                                   "<em>hi</em>")
    assert linked.startswith("<em>hi</em>")
    assert 'href="https://x.org/a?b=1&amp;c=2"' in linked


def test_build_date_follows_source_date_epoch(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert book_html.build_date() == "2023-11-14"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(ValueError, match="SOURCE_DATE_EPOCH.*yesterday"):
        book_html.build_date()


def test_git_commit_outside_a_checkout(tmp_path):
    assert book_html.git_commit(tmp_path) == "not built from a git checkout"


def test_index_keys_match_section_titles():
    patterns = book_html.optimizer_patterns()
    for name in ("SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "NAdam", "AMSGrad"):
        assert name in patterns
    assert "AdamNoBiasCorrection" not in patterns  # textbook variants are not indexed

    def keys(title: str) -> set[str]:
        return {k for k, p in patterns.items() if p.search(title)}

    assert keys("Adam and bias correction") == {"Adam"}
    assert keys("AdamW against Adam + L2 on digits") == {"Adam", "AdamW"}
    assert keys("AdaGrad") == {"Adagrad"}
    assert keys("Gradient descent and momentum") == {"SGD"}
    assert keys("Exponentially weighted averages") == set()


def test_plain_title_drops_tex():
    title = nodes.title("", "", nodes.Text("Adamax: the "), nodes.math("", r"\infty"),
                        nodes.Text("-norm limit of "), nodes.math("", r"\sqrt{t}"))
    assert book_html.plain_title(title) == "Adamax: the ∞-norm limit of √t"
