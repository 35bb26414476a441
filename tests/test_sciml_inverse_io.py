"""The one way to write files (:mod:`sciml_inverse`): atomic writers, the JSON writer, and a
scan of the sources for copies of them or for checkpoint reads outside the one reader."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
import torch

from sciml_inverse import atomic_path, write_atomic, write_bytes_atomic, write_json

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("operators", "inverse", "sciml", "sciml_inverse", "examples", "scripts", "benchmarks")

#: Where the primitives of atomic writing and checkpoint reading may appear.
OWNERS = {"sciml_inverse/_io.py", "sciml_inverse/_checkpoint.py"}
#: Known exceptions: (file, pattern) -> why.
ALLOWED = {
    # the COG conversion copies the finished temporary file and moves the copy back onto that
    # temporary file (still under the atomic_path of the sink): not a writer of its own
    ("inverse/satellite/_writers.py", "os.replace("): "COG copy onto the sink's temporary file",
}
PATTERNS = ("torch.load(", "os.replace(", "tempfile.mkstemp(", "NamedTemporaryFile(",
            "json.dump(",
            # and no script works around module shadowing by editing the import path
            "sys.path.insert(", "sys.path.append(")


def _sources() -> list[Path]:
    return sorted(p for d in SOURCES for p in (ROOT / d).rglob("*.py"))


def test_no_copy_of_the_writers_or_of_the_checkpoint_reader():
    """Outside :mod:`sciml_inverse`, no file replaces files by hand, makes its own temporary
    files, dumps JSON to a file or calls ``torch.load``: they use ``atomic_path``,
    ``write_json``, ``write_atomic`` and ``load_checkpoint``; none edits ``sys.path``."""
    files = _sources()
    assert len(files) > 100
    found = []
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        if rel in OWNERS:
            continue
        text = path.read_text(encoding="utf-8")
        for pattern in PATTERNS:
            for m in re.finditer(re.escape(pattern), text):
                line = text[:m.start()].count("\n") + 1
                if (rel, pattern) not in ALLOWED and not _in_docstring(text, m.start()):
                    found.append(f"{rel}:{line}: {pattern}")
    assert not found, "copies of the runtime's writers/reader:\n" + "\n".join(found)


def _in_docstring(text: str, pos: int) -> bool:
    """Inside a triple-quoted string (docs that name the primitives)."""
    return text[:pos].count('"""') % 2 == 1


def test_the_scan_finds_a_copy(tmp_path, monkeypatch):
    """The scan above can fail: a hand-made writer in a source file is reported."""
    bad = tmp_path / "examples" / "bad.py"
    bad.parent.mkdir()
    bad.write_text('import os\n"""os.replace( in a docstring is fine"""\nos.replace("a", "b")\n')
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    monkeypatch.setitem(globals(), "_sources", lambda: [bad] * 101)
    with pytest.raises(AssertionError, match=r"examples/bad.py:3: os.replace\("):
        test_no_copy_of_the_writers_or_of_the_checkpoint_reader()


def test_writers_are_atomic_and_json_is_sorted(tmp_path):
    p = write_json(tmp_path / "sub" / "r.json", {"b": torch.tensor([1.0, 2.0]), "a": 1})
    assert p.read_text() == json.dumps({"a": 1, "b": [1.0, 2.0]}, indent=2) + "\n"
    write_bytes_atomic(b"xyz", tmp_path / "b.bin")
    assert (tmp_path / "b.bin").read_bytes() == b"xyz"
    write_atomic({"w": torch.ones(2)}, tmp_path / "w.pt")
    assert torch.equal(torch.load(tmp_path / "w.pt", weights_only=True)["w"], torch.ones(2))
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "b.bin").stat().st_mode) == 0o666 & ~umask
    # an exception inside the block leaves the target untouched and no temporary file
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "b.bin") as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("interrupted")
    assert (tmp_path / "b.bin").read_bytes() == b"xyz"
    assert sorted(q.name for q in tmp_path.iterdir()) == ["b.bin", "sub", "w.pt"]
    with pytest.raises(TypeError, match="data must be bytes"):
        write_bytes_atomic("text", tmp_path / "t.txt")
