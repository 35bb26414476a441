"""docs/check_offline.py: remote scripts, styles and fonts in built HTML are found."""

from __future__ import annotations

import pytest
from script_loader import load_script

check_offline = load_script("docs/check_offline.py", "check_offline")

LOCAL = """<html><head><script src="_static/mathjax/tex-chtml.js"></script>
<link rel="stylesheet" href="_static/furo.css"/><link rel="canonical" href="https://x.org/a"/>
</head><body><a href="https://example.org">a plain hyperlink is fine</a>
<img src="_images/fig.png"/></body></html>"""


@pytest.mark.parametrize("snippet", [
    '<script src="https://cdn.jsdelivr.net/npm/mathjax@4/tex-mml-chtml.js"></script>',
    '<script defer src="//cdn.example.org/x.js"></script>',
    '<link href="https://cdn.datatables.net/1.13.6/css/x.css" rel="stylesheet" />',
    '<link rel="preload" href="http://fonts.example.org/f.woff2" as="font"/>',
    '<img src="https://example.org/badge.svg">',
    '<style>@import url("https://fonts.example.org/css");</style>',
])
def test_remote_load_is_reported(tmp_path, snippet, capsys):
    (tmp_path / "ok.html").write_text(LOCAL)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "bad.html").write_text(LOCAL.replace("<body>", "<body>" + snippet))
    assert check_offline.main([str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "sub/bad.html" in err and "ok.html:" not in err


def test_local_pages_pass(tmp_path, capsys):
    (tmp_path / "ok.html").write_text(LOCAL)
    (tmp_path / "style.css").write_text("body { background: url(_static/a.png); }")
    assert check_offline.main([str(tmp_path)]) == 0
    assert "1 pages" in capsys.readouterr().out


def test_remote_css_file_is_reported(tmp_path):
    (tmp_path / "ok.html").write_text(LOCAL)
    (tmp_path / "s.css").write_text("@font-face { src: url(https://fonts.example.org/a.woff2) }")
    assert check_offline.main([str(tmp_path)]) == 1


def test_empty_directory_is_an_error(tmp_path):
    assert check_offline.main([str(tmp_path)]) == 2
