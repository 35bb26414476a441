"""Bad input to the public API of :mod:`sciml`, as a new user would try it (issue 13, item 6)."""

from __future__ import annotations

import math

import pytest
import torch

from sciml.nde import odeint, sdeint

F64 = torch.float64
T01 = torch.tensor([0.0, 0.5, 1.0], dtype=F64)


class _OU(torch.nn.Module):
    noise_type, sde_type = "diagonal", "ito"

    def f(self, t, y):
        return -y

    def g(self, t, y):
        return 0.1 * torch.ones_like(y)


# ---------------------------------------------------------------------------------------------
# sciml.nde tolerances and states
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, exc, match", [
    ({"rtol": math.nan}, ValueError, "rtol must be finite, got nan"),
    ({"atol": math.inf}, ValueError, "atol must be finite, got inf"),
    ({"rtol": math.inf, "atol": 0.0}, ValueError, "rtol must be finite"),
    ({"atol": torch.tensor(math.nan)}, ValueError, "atol must be finite"),
    ({"rtol": True}, TypeError, "rtol must be a float, got bool"),
])
def test_odeint_non_finite_tolerances(kw, exc, match):
    # an infinite rtol used to accept every step silently
    with pytest.raises(exc, match=match):
        odeint(lambda t, y: -y, torch.ones(3, dtype=F64), T01, **kw)


@pytest.mark.parametrize("kw, exc, match", [
    ({"rtol": math.nan}, ValueError, "rtol must be finite, got nan"),
    ({"atol": -math.inf}, ValueError, "atol must be finite"),
    ({"rtol": "1e-3"}, TypeError, "rtol must be a float, got str"),
])
def test_sdeint_non_finite_tolerances(kw, exc, match):
    # a NaN tolerance used to be accepted (every step then passes the error test)
    with pytest.raises(exc, match=match):
        sdeint(_OU(), torch.ones(2, 3, dtype=F64), T01, entropy=0, **kw)


@pytest.mark.parametrize("y0", [torch.zeros(0, dtype=F64), torch.zeros(3, 0, dtype=F64),
                                (torch.zeros(0, dtype=F64),)])
def test_odeint_empty_state(y0):
    # used to report a step-size underflow (dt=nan)
    with pytest.raises(ValueError, match=r"y0 is empty \(shapes \[\(.*\)\]\): there is nothing to "
                                         r"integrate"):
        odeint(lambda t, y: y, y0, T01)


def test_odeint_and_sdeint_still_accept_valid_tolerances():
    y, _ = odeint(lambda t, y: -y, torch.ones(1, dtype=F64), T01, rtol=torch.tensor(1e-8),
                  atol=1e-10)
    torch.testing.assert_close(y[-1], torch.exp(torch.tensor([-1.0], dtype=F64)), rtol=1e-6,
                               atol=0)
    ys, _ = sdeint(_OU(), torch.ones(2, 3, dtype=F64), T01, entropy=0, rtol=1e-2, atol=0)
    assert ys.shape == (3, 2, 3) and torch.isfinite(ys).all()


# ---------------------------------------------------------------------------------------------
# sciml.neural_operators training checkpoints
# ---------------------------------------------------------------------------------------------
def _fit_setup():
    from sciml.neural_operators import MLPEncoder, MultiONet, TrainOptions, grid_points

    gen = torch.Generator().manual_seed(0)
    a = 1 + torch.rand(4, 5, 5, generator=gen, dtype=F64)
    x = grid_points(5, dtype=F64)
    u = a.mean((1, 2))[:, None, None] * torch.ones(4, 5, 5, dtype=F64)
    torch.manual_seed(0)
    model = MultiONet(2, 4, [8] * 3, [8] * 3, encoder=MLPEncoder(5, (8,), 4)).to(F64)
    return model, a, u, x, TrainOptions(epochs=2, batch_size=2, seed=0)


@pytest.mark.parametrize("damage, match", [
    ("nan", r"ck.pt: the weights contain NaN or inf in "),
    ("drop_generator", r"ck.pt is an incomplete checkpoint: missing 'generator'"),
    ("drop_model", r"ck.pt is an incomplete checkpoint: missing 'model'"),
])
def test_neural_operator_resume_from_a_damaged_checkpoint(tmp_path, damage, match):
    from sciml.neural_operators import SupervisedObjective, fit

    model, a, u, x, opts = _fit_setup()
    ck = tmp_path / "ck.pt"
    fit(model, SupervisedObjective(x), (a, u), opts, checkpoint=ck, progress=False, stop_after=1)
    saved = torch.load(ck, weights_only=False)
    if damage == "nan":
        first = next(iter(saved["model"]))
        saved["model"][first] = torch.full_like(saved["model"][first], math.nan)
    else:
        del saved[damage.removeprefix("drop_")]
    torch.save(saved, ck)
    with pytest.raises(ValueError, match=match):
        fit(_fit_setup()[0], SupervisedObjective(x), (a, u), opts, checkpoint=ck, progress=False)
