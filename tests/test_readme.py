"""The README's code blocks run as printed (issue 14 item 4: forward and inverse in five lines)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def _block(marker: str) -> str:
    text = README.read_text()
    m = re.search(re.escape(marker) + r".*?\n```python\n(.*?)```", text, re.S)
    assert m, f"no python block after {marker!r} in README.md"
    return m.group(1)


def test_neural_operator_forward_and_inverse_block(tmp_path, monkeypatch):
    import sciml.neural_operators as no

    code = _block("readme-neural-operator")
    path = re.search(r'load\("([^"]+)"', code).group(1)
    # a "trained" operator: seeded weights and encoder normalisation, saved where the README
    # loads it from
    gen = torch.Generator().manual_seed(0)
    trained = no.darcy_dgno("smooth", seed=3)
    trained.encoder.fit_normalization(1.0 + torch.rand(8, 29, 29, generator=gen))
    monkeypatch.chdir(tmp_path)
    (tmp_path / path).parent.mkdir(parents=True)
    no.save(trained, path)
    # the inverse solve with 3 iterations instead of the default 500 (speed); same code path
    real = no.invert_darcy
    calls = []

    def short(model, sensors, y, options=None, **kw):
        calls.append(model)
        return real(model, sensors, y, no.InverseOptions(steps=3, estimate_samples=0), **kw)

    monkeypatch.setattr(no, "invert_darcy", short)
    a = 1.0 + torch.rand(29, 29, generator=gen)
    xy = torch.rand(100, 2, generator=gen)
    y = torch.rand(100, generator=gen)
    scope = {"a": a, "xy": xy, "y": y}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102
    model, u, a_hat = scope["model"], scope["u"], scope["a_hat"]
    assert model is not trained and calls == [model]
    # the loaded operator is the saved one: same predictions
    with torch.no_grad():
        expected = trained.eval()(a[None], no.grid_points(29))
    torch.testing.assert_close(u, expected)
    assert u.shape == (1, 29 * 29)
    assert a_hat.shape == (29, 29) and bool(torch.isfinite(a_hat).all())


def test_darcy_dgno_rejects_unknown_case():
    from sciml.neural_operators import darcy_dgno

    with pytest.raises(ValueError, match="case must be one of"):
        darcy_dgno("pwc")


def test_darcy_dgno_seed_is_reproducible_and_leaves_the_global_generator():
    from sciml.neural_operators import darcy_dgno

    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    m1, m2 = darcy_dgno("piecewise", seed=5), darcy_dgno("piecewise", seed=5)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(torch.equal(p, q) for p, q in zip(m1.parameters(), m2.parameters(), strict=True))
    assert m1.flux_decoders is not None and len(m1.flux_decoders) == 2
