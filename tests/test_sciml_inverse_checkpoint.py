"""The one checkpoint format (:mod:`sciml_inverse`) and the read path of the older layouts."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import sciml_inverse
from sciml_inverse import load_checkpoint, save_checkpoint
from sciml_inverse._checkpoint import FORMAT, FORMAT_VERSION

ROOT = Path(__file__).resolve().parents[1]


def _save(tmp_path, **kw):
    return save_checkpoint(tmp_path / "c.pt", kind="demo", config={"n": 3, "name": "x"},
                           state={"w": torch.arange(6.0).reshape(2, 3)}, extra={"steps": 7},
                           **kw)


def test_roundtrip_and_layout(tmp_path):
    p = _save(tmp_path)
    ck = load_checkpoint(p, kind="demo")
    assert ck.kind == "demo" and ck.config == {"n": 3, "name": "x"} and ck.extra == {"steps": 7}
    torch.testing.assert_close(ck.state["w"], torch.arange(6.0).reshape(2, 3), rtol=0, atol=0)
    assert ck.format == FORMAT and ck.format_version == FORMAT_VERSION
    assert ck.library_version == sciml_inverse.library_version()
    raw = torch.load(p, weights_only=True)
    assert set(raw) == {"format", "format_version", "library_version", "kind", "config", "state",
                        "extra"}
    assert not list(tmp_path.glob("*.tmp"))


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="corrupted"):
        load_checkpoint(bad)
    good = _save(tmp_path)
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="corrupted"):
        load_checkpoint(trunc)
    raw = torch.load(good, weights_only=True)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.ones(1)}, other)  # foreign
    with pytest.raises(ValueError, match="is not a checkpoint written by sciml-inverse"):
        load_checkpoint(other)
    torch.save({**raw, "format_version": FORMAT_VERSION + 1}, other)  # newer
    with pytest.raises(ValueError, match="newer sciml-inverse.*upgrade"):
        load_checkpoint(other)
    torch.save({k: v for k, v in raw.items() if k != "state"}, other)  # missing entry
    with pytest.raises(ValueError, match="lacks the entry 'state'"):
        load_checkpoint(other)
    with pytest.raises(ValueError, match="holds a 'demo' checkpoint"):
        load_checkpoint(good, kind=("lpn", "vble-cae"), what="LPN checkpoint", article="an")
    torch.save({**raw, "library_version": "0.0.1"}, other)
    with pytest.warns(UserWarning, match="written by sciml-inverse 0.0.1"):
        load_checkpoint(other)
    with pytest.raises(TypeError, match="kind"):
        save_checkpoint(tmp_path / "x.pt", kind="", config={}, state={})
    with pytest.raises(TypeError, match="state must be a mapping"):
        save_checkpoint(tmp_path / "x.pt", kind="a", config={}, state=[1])


class _Evil:
    def __reduce__(self):  # what an unsafe unpickler would run
        return (print, ("executed",))


def test_arbitrary_objects_are_refused(tmp_path, capsys):
    """weights_only=True: a file holding an arbitrary object is an error, nothing is run."""
    p = tmp_path / "evil.pt"
    with open(p, "wb") as fh:
        torch.save({"format": FORMAT, "format_version": 1, "kind": "demo", "config": {},
                    "state": {"x": _Evil()}}, fh)
    with pytest.raises(ValueError, match="corrupted or not written by sciml-inverse"):
        load_checkpoint(p)
    assert "executed" not in capsys.readouterr().out


def test_legacy_converter_and_state_hook(tmp_path):
    old = tmp_path / "old.pt"
    torch.save({"format": "old/layout", "format_version": 2, "library_version": "0.1.0",
                "weights": {"w": torch.ones(2)}, "cfg": {"a": 1}}, old)

    def convert(raw):
        return {"kind": "demo", "config": raw["cfg"], "state": raw["weights"]}

    ck = load_checkpoint(old, kind="demo", legacy={("old/layout", 2): convert})
    assert ck.format == "old/layout" and ck.config == {"a": 1} and ck.extra == {}
    with pytest.raises(ValueError, match="format version 2 of the layout 'old/layout'.*\\[1\\]"):
        load_checkpoint(old, legacy={("old/layout", 1): convert})
    with pytest.raises(ValueError, match="damaged checkpoint.*'nope'"):
        load_checkpoint(old, legacy={("old/layout", 2): lambda raw: {"config": raw["nope"]}})

    def finite(c):
        if not all(torch.isfinite(v).all() for v in c.state.values()):
            raise ValueError("non-finite weights")

    p = save_checkpoint(tmp_path / "nan.pt", kind="demo", config={},
                        state={"w": torch.tensor([float("nan")])})
    with pytest.raises(ValueError, match="non-finite weights"):
        load_checkpoint(p, check_state=finite, finite_state=False)
    # by default the reader itself rejects NaN/inf tensors of the state, nested ones too
    with pytest.raises(ValueError, match=r"nan.pt: NaN or inf in the state of the checkpoint "
                                         r"\(w\); the training that wrote it probably diverged"):
        load_checkpoint(p)
    moment = torch.tensor([1.0, -math.inf])
    nested = save_checkpoint(tmp_path / "nested.pt", kind="demo", config={},
                             state={"model": {"a": torch.ones(2)},
                                    "optimizer": {"state": {0: {"m": moment}}},
                                    "rng": torch.zeros(3, dtype=torch.uint8)})
    with pytest.raises(ValueError, match=r"NaN or inf in the state of the checkpoint "
                                         r"\(optimizer.state.0.m\)"):
        load_checkpoint(nested)
    assert load_checkpoint(nested, finite_state=False).state["model"]["a"].sum() == 2


def test_load_weights_names_the_file(tmp_path):
    from sciml_inverse import load_weights

    lin = torch.nn.Linear(2, 1)
    load_weights(lin, {"weight": torch.ones(1, 2), "bias": torch.zeros(1)}, "m.pt")
    assert lin.weight.sum() == 2
    with pytest.raises(ValueError, match=r"m.pt: the weights do not fit the model \(Linear\): "
                                         r"missing 'bias'; use the checkpoint written for"):
        load_weights(lin, {"weight": torch.ones(1, 2)}, "m.pt")
    extra = {f"w{i}": torch.ones(1) for i in range(5)}
    with pytest.raises(ValueError, match=r"unexpected 'w0', 'w1', 'w2' and 2 more; other shapes "
                                         r"for weight \(3, 2\) \(the model has \(1, 2\)\)"):
        load_weights(lin, {"weight": torch.ones(3, 2), "bias": torch.zeros(1), **extra}, "m.pt")
    load_weights(lin, {"weight": torch.zeros(1, 2)}, "m.pt", strict=False)
    assert lin.weight.sum() == 0
    with pytest.raises(TypeError, match="must be a dict of tensors"):
        load_weights(lin, [torch.ones(1)], "m.pt")


def test_shipped_weights_are_old_layouts_and_load():
    """The shipped LPN and CAE weights predate the common format: read through their legacy
    converters, as every file of the old tags is."""
    from inverse.lpn import load_lpn
    from inverse.vble import load_cae

    lpn_file = ROOT / "inverse" / "lpn" / "weights" / "lpn_deblur_gray.pt"
    assert torch.load(lpn_file, weights_only=True)["format"] == "sciml-inverse/lpn-checkpoint"
    lpn = load_lpn(lpn_file)
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        assert torch.isfinite(lpn(x)).all()
    for name in ("cae_low.pt", "cae_high.pt"):
        f = ROOT / "inverse" / "vble" / "weights" / name
        assert torch.load(f, weights_only=True)["format"] == "sciml-inverse/vble-cae"
        cae = load_cae(f)
        assert not cae.training


def test_old_layout_files_roundtrip_to_the_common_format(tmp_path):
    """A file of the old LPN/CAE layout and its re-save in the common format hold the same
    model (a converter by load + save)."""
    from inverse.lpn import LPN, ImageLPNConfig, load_lpn, save_lpn
    from inverse.vble import CAEConfig, CompressiveAutoencoder, load_cae, save_cae

    torch.manual_seed(0)
    lpn = LPN(ImageLPNConfig(in_channels=1, hidden=4, num_layers=2))
    old = tmp_path / "old_lpn.pt"
    from inverse.lpn._checkpoint import config_to_dict

    torch.save({"format": "sciml-inverse/lpn-checkpoint", "format_version": 1,
                "library_version": sciml_inverse.library_version(), "model_class": "LPN",
                "model_config": config_to_dict(lpn.config), "model_state": lpn.state_dict(),
                "train": None}, old)
    new = save_lpn(load_lpn(old), tmp_path / "new_lpn.pt")
    assert torch.load(new, weights_only=True)["kind"] == "lpn"
    x = torch.rand(2, 1, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(load_lpn(new)(x), lpn(x), rtol=0, atol=0)

    cae = CompressiveAutoencoder(CAEConfig(in_channels=1, N=8, M=12))
    old = tmp_path / "old_cae.pt"
    torch.save({"format": "sciml-inverse/vble-cae", "format_version": 1,
                "library_version": sciml_inverse.library_version(),
                "config": cae.config.to_dict(), "state_dict": cae.state_dict(),
                "dtype": "float32", "extra": {"note": "old"}}, old)
    m, info = load_cae(old, with_extra=True)
    assert info == {"note": "old"}
    new = save_cae(m, tmp_path / "new_cae.pt", **info)
    m2, info2 = load_cae(new, with_extra=True)
    assert info2 == {"note": "old"}
    for (k, v), (k2, v2) in zip(cae.state_dict().items(), m2.state_dict().items(), strict=True):
        assert k == k2
        torch.testing.assert_close(v2, v, rtol=0, atol=0)


#: How each checkpoint file shipped in the repository is read (its package's public reader).
_READERS = {
    "inverse/lpn/weights": lambda p: __import__("inverse.lpn", fromlist=["x"]).load_lpn(p),
    "inverse/vble/weights": lambda p: __import__("inverse.vble", fromlist=["x"]).load_cae(p),
    # the CompressAI reference outputs of the likelihood tests: a foreign (CompressAI) file
    "tests/data": lambda p: __import__("inverse.vble", fromlist=["x"]).cae_from_compressai(
        p, alpha=0.0067),
}


def _checkpoint_files() -> list[Path]:
    skip = {".git", ".venv", "node_modules", "_build", "build", "dist"}
    found = []
    for pattern in ("*.pt", "*.pth", "*.ckpt", "*.tar"):
        found += [p for p in ROOT.rglob(pattern)
                  if not skip & set(p.relative_to(ROOT).parts)
                  and not any(part.startswith(".") for part in p.relative_to(ROOT).parts)]
    return sorted(found)


def test_every_checkpoint_in_the_repository_loads_through_the_one_reader(monkeypatch):
    """Each ``*.pt``/``*.pth``/``*.ckpt`` file of the repository loads with its package's
    reader, and every ``torch.load`` on the way is the one in :mod:`sciml_inverse` with
    ``weights_only=True`` (a new file, or a reader that calls ``torch.load`` itself, fails)."""
    import inspect

    files = _checkpoint_files()
    assert len(files) >= 4  # the LPN, the two CAEs, the CompressAI reference
    calls: list[tuple[str, object]] = []
    real = torch.load

    def spy(*args, **kwargs):
        caller = inspect.stack()[1].filename
        calls.append((caller, kwargs.get("weights_only")))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    for f in files:
        folder = f.parent.relative_to(ROOT).as_posix()
        assert folder in _READERS, (f"{f.relative_to(ROOT)}: no reader known for checkpoints in "
                                    f"{folder}; add one to _READERS")
        calls.clear()
        model = _READERS[folder](f)
        assert isinstance(model, torch.nn.Module)
        assert calls, f"{f} was read without torch.load?"
        for caller, weights_only in calls:
            assert Path(caller).as_posix().endswith("sciml_inverse/_checkpoint.py"), (f, caller)
            assert weights_only is True, (f, caller)
