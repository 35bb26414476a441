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


@pytest.mark.parametrize("method", ["euler", "srk"])  # ours, and one handed to torchsde
@pytest.mark.parametrize("kw, exc, match", [
    ({"rtol": math.nan}, ValueError, "rtol must be finite, got nan"),
    ({"atol": -math.inf}, ValueError, "atol must be finite"),
    ({"atol": torch.tensor(math.nan)}, ValueError, "atol contains 1 non-finite value"),
    ({"dt": math.nan}, ValueError, "dt must be finite"),
    ({"dt_min": math.inf}, ValueError, "dt_min must be finite"),
])
def test_sdeint_non_finite_tolerances(kw, exc, match, method):
    # a NaN tolerance used to be accepted (every step then passes the error test)
    with pytest.raises(exc, match=match):
        sdeint(_OU(), torch.ones(2, 3, dtype=F64), T01, method=method, adaptive=True,
               options={"entropy": 0} if method == "euler" else None, **kw)


def test_sdeint_tolerance_type():
    with pytest.raises(TypeError, match="rtol must be a float, got str"):
        sdeint(_OU(), torch.ones(2, 3, dtype=F64), T01, method="euler", adaptive=True,
               rtol="1e-3")


def test_sdeint_adjoint_non_finite_tolerances():
    from sciml.nde import sdeint_adjoint

    with pytest.raises(ValueError, match="adjoint_rtol must be finite, got nan"):
        sdeint_adjoint(_OU(), torch.ones(2, 3, dtype=F64), T01, method="euler",
                       adjoint_rtol=math.nan)


@pytest.mark.parametrize("y0", [torch.zeros(0, dtype=F64), torch.zeros(3, 0, dtype=F64),
                                (torch.zeros(0, dtype=F64),)])
def test_odeint_empty_state(y0):
    # used to report a step-size underflow (dt=nan)
    with pytest.raises(ValueError, match=r"y0 is empty \(shapes \[\(.*\)\]\): there is nothing to "
                                         r"integrate"):
        odeint(lambda t, y: y, y0, T01)


def test_odeint_and_sdeint_still_accept_valid_tolerances():
    y = odeint(lambda t, y: -y, torch.ones(1, dtype=F64), T01, rtol=torch.tensor(1e-8),
               atol=1e-10)
    torch.testing.assert_close(y[-1], torch.exp(torch.tensor([-1.0], dtype=F64)), rtol=1e-6,
                               atol=0)
    ys = sdeint(_OU(), torch.ones(2, 3, dtype=F64), T01, method="euler", adaptive=True,
                options={"entropy": 0}, rtol=1e-2, atol=0)
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
    ("nan", r"ck.pt: NaN or inf in the state of the neural-operator checkpoint \(model\."),
    ("drop_optimizer", r"ck.pt is an incomplete training checkpoint: missing 'optimizer'"),
    ("drop_model", r"ck.pt is an incomplete training checkpoint: missing 'model'"),
    ("drop_weight", r"ck.pt: the weights do not fit the model \(MultiONet\): missing '"),
])
def test_neural_operator_resume_from_a_damaged_checkpoint(tmp_path, damage, match):
    from sciml.neural_operators import SupervisedObjective, fit

    model, a, u, x, opts = _fit_setup()
    ck = tmp_path / "ck.pt"
    fit(model, SupervisedObjective(x), (a, u), opts, checkpoint=ck, progress=False, stop_after=1)
    saved = torch.load(ck, weights_only=True)
    weights = saved["state"]["model"]
    first = next(iter(weights))
    if damage == "nan":
        weights[first] = torch.full_like(weights[first], math.nan)
    elif damage == "drop_weight":
        del weights[first]
    else:
        del saved["state"][damage.removeprefix("drop_")]
    torch.save(saved, ck)
    with pytest.raises(ValueError, match=match):
        fit(_fit_setup()[0], SupervisedObjective(x), (a, u), opts, checkpoint=ck, progress=False)


def test_neural_operator_weights_file_without_weights(tmp_path):
    from sciml.neural_operators import DeepONet, load, save

    path = save(DeepONet(2, 4, [8, 8], [8, 8]), tmp_path / "w.pt")
    raw = torch.load(path, weights_only=True)
    del raw["state"]["model"]
    torch.save(raw, path)
    with pytest.raises(ValueError, match=r"w.pt is an incomplete neural-operator checkpoint: "
                                         r"missing 'model'"):
        load(path, DeepONet(2, 4, [8, 8], [8, 8]))


# ---------------------------------------------------------------------------------------------
# sciml.neural_operators public functions and options
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, exc, match", [
    (lambda no: no.grid_points(0), ValueError, "n must be an int >= 2, got 0"),
    (lambda no: no.grid_points(-2), ValueError, "n must be an int >= 2"),
    (lambda no: no.grid_points(4.5), ValueError, r"n must be an int >= 2, got 4.5"),
    (lambda no: no.grid_points("4"), ValueError, "n must be an int >= 2, got '4'"),
    # an integer grid used to hold only the corners 0 and 1
    (lambda no: no.grid_points(4, dtype=torch.int64), TypeError,
     "dtype must be a floating-point dtype, got torch.int64"),
    (lambda no: no.quadrature_rule(0), ValueError, "n must be an int >= 2"),
    (lambda no: no.wendland(torch.ones(3), d=0), ValueError, "d must be an int >= 1"),
    (lambda no: no.wendland_grad(torch.ones(3, 2), d=1.5), ValueError, "d must be an int >= 1"),
    (lambda no: no.relative_l2(torch.ones(2, 3), torch.ones(2, 4)), ValueError,
     r"pred and target must hold the same samples .*\(2, 3\) and \(2, 4\)"),
    (lambda no: no.relative_l2([1.0], torch.ones(1)), TypeError, "pred and target must be tensors"),
    (lambda no: no.add_noise_snr(torch.ones(2, 9), math.nan), ValueError,
     "snr_db must be finite, got nan"),
    (lambda no: no.add_noise_snr(torch.ones(2, 9), "20"), TypeError,
     "snr_db must be a real number, got str"),
    (lambda no: no.add_noise_snr(torch.ones(2, 9, dtype=torch.int64), 20.0), TypeError,
     "u must be a real floating-point tensor"),
    (lambda no: no.MLPEncoder(5, (-1,), 4), ValueError,
     "every entry of hidden must be an int >= 1, got -1"),
    (lambda no: no.MLPEncoder(0, (8,), 4), ValueError, "grid must be an int >= 2, got 0"),
    (lambda no: no.CNNEncoder(9, (4, 0), out_size=4), ValueError,
     "every entry of channels must be an int >= 1, got 0"),
    (lambda no: no.MultiONet(2, -1, [8, 8], [8, 8]), ValueError,
     "in_size_a must be an int >= 1, got -1"),
    (lambda no: no.MultiONet(2, 4, [8], [8]), ValueError,
     r"need at least two widths .* got \[8\]"),
    (lambda no: no.MultiONet(2, 4, [8, 0], [8, 0]), ValueError,
     "every layer width must be an int >= 1, got 0"),
])
def test_neural_operator_functions_bad_input(call, exc, match):
    import sciml.neural_operators as no

    with pytest.raises(exc, match=match):
        call(no)


def test_relative_l2_keeps_flattened_predictions_and_empty_batches():
    from sciml.neural_operators import relative_l2

    pred, target = torch.ones(2, 25, dtype=F64), 2 * torch.ones(2, 5, 5, dtype=F64)
    torch.testing.assert_close(relative_l2(pred, target), torch.full((2,), 0.5, dtype=F64))
    assert relative_l2(torch.ones(0, 4), torch.ones(0, 4)).shape == (0,)


@pytest.mark.parametrize("cls, kw, match", [
    ("TrainOptions", {"batch_size": 2.5}, "batch_size must be an int >= 1, got 2.5"),
    ("TrainOptions", {"epochs": -1}, "epochs must be an int >= 0"),
    ("TrainOptions", {"seed": -1}, "seed must be an int >= 0"),
    ("TrainOptions", {"lr": math.nan}, "lr must be finite, got nan"),
    ("TrainOptions", {"gamma": math.inf}, "gamma must be finite"),
    ("TrainOptions", {"step_size": 2.0}, "step_size must be an int >= 1"),
    ("TrainOptions", {"lr": 0.0}, "lr must be > 0, got 0.0; the Adam learning rate"),
    ("TrainOptions", {"lr": "1e-3"}, "lr must be a real number, got str"),
    ("TrainOptions", {"weight_decay": -1.0}, "weight_decay must be >= 0, got -1.0"),
    ("TrainOptions", {"gamma": 1.5}, r"gamma must be <= 1, got 1.5; .* in \(0, 1\]"),
    ("TrainOptions", {"gamma": 0.0}, "gamma must be > 0"),
    ("TrainOptions", {"gamma": True}, "gamma must be a real number, got bool"),
    ("TrainOptions", {"grad_clip": math.nan}, "grad_clip must be a finite number > 0"),
    ("InverseOptions", {"lr": math.nan}, "lr must be a finite number > 0, got nan"),
    ("InverseOptions", {"steps": 0}, "steps must be an int >= 1, got 0"),
    ("InverseOptions", {"hidden": (64, -1)}, "every entry of hidden must be an int >= 1"),
    ("InverseOptions", {"data_weight": math.inf}, "data_weight must be a finite number >= 0"),
    ("InverseOptions", {"estimate_samples": -1}, "estimate_samples must be an int >= 0"),
    ("WeakFormOptions", {"n_centres": 2.5}, "n_centres must be an int >= 1, got 2.5"),
    ("WeakFormOptions", {"quadrature_points": 1}, "quadrature_points must be an int >= 2"),
    ("WeakFormOptions", {"radius": "small"}, "radius must be a real number, got str"),
    ("WeakFormOptions", {"radius": 0.5}, r"radius must be < 0.5, got 0.5; radius must lie in "
                                         r"\(0, 0.5\) so the supports fit"),
    ("WeakFormOptions", {"radius": 0.0}, "radius must be > 0, got 0.0"),
    ("WeakFormOptions", {"radius": math.nan}, "radius must be finite, got nan"),
    ("DGNOLossOptions", {"pde_weight": math.nan}, "pde_weight must be a finite number >= 0"),
    ("DGNOLossOptions", {"residual_weight": -1.0}, "residual_weight must be a finite number >= 0"),
    ("DGNOLossOptions", {"top_k": 0}, "top_k must be an int >= 1, got 0"),
    ("StrongFormOptions", {"n_points": 0}, "n_points must be an int >= 1, got 0; collocation"),
    ("StrongFormOptions", {"n_points": 4.0}, "n_points must be an int >= 1, got 4.0"),
    ("StrongFormOptions", {"scale": 0.0}, "scale must be > 0, got 0.0"),
    ("StrongFormOptions", {"scale": math.inf}, "scale must be finite"),
    ("StrongFormOptions", {"source": math.nan}, "source must be finite, got nan"),
    ("StrongFormOptions", {"source": "10"}, "source must be a real number, got str"),
])
def test_neural_operator_options_bad_input(cls, kw, match):
    import sciml.neural_operators as no

    with pytest.raises(ValueError if "real number" not in match else TypeError, match=match):
        getattr(no, cls)(**kw)


@pytest.mark.parametrize(("grid", "exc"), [(4, ValueError), (29.0, TypeError),
                                           (True, TypeError), ("29", TypeError)])
def test_darcy_dgno_bad_grid(grid, exc):
    from sciml.neural_operators import darcy_dgno

    with pytest.raises(exc, match=r"grid must be an int >= 5, got .*; nodes per side"):
        darcy_dgno("smooth", grid=grid)


def test_fit_bad_arguments():
    from sciml.neural_operators import SupervisedObjective, fit

    model, a, u, x, opts = _fit_setup()
    with pytest.raises(TypeError, match=r"train must be a DarcyData or a tuple of tensors, "
                                        r"e.g. \(a, u\), got Tensor"):
        fit(model, SupervisedObjective(x), a, opts, progress=False)
    with pytest.raises(ValueError, match="stop_after must be an int >= 1, got 0"):
        fit(model, SupervisedObjective(x), (a, u), opts, progress=False, stop_after=0)


def test_inverse_options_former_keyword_iterations():
    # naming scheme: a fixed number of optimizer steps is `steps`; `iterations` still works
    import dataclasses

    from sciml.neural_operators import InverseOptions

    with pytest.warns(DeprecationWarning, match=r"InverseOptions: the keyword iterations= is "
                                                r"deprecated, use steps="):
        old = InverseOptions(iterations=7)
    assert old == InverseOptions(steps=7)
    with pytest.warns(DeprecationWarning, match=r"InverseOptions.iterations is deprecated"):
        assert old.iterations == 7
    assert dataclasses.replace(old, steps=3).steps == 3
    with pytest.raises(TypeError, match=r"pass steps= only"):
        InverseOptions(steps=1, iterations=2)
    with pytest.raises(ValueError, match="steps must be an int >= 1, got 0"):
        InverseOptions(steps=0)


def test_viscosity_and_schedule_bad_input():
    from sciml.nde import ExponentialDecay
    from sciml.neural_operators import burgers_pde

    with pytest.raises(ValueError, match="nu must be finite, got inf"):
        burgers_pde(math.inf)
    with pytest.raises(ValueError, match="nu must be > 0, got 0.0"):
        burgers_pde(0.0)
    with pytest.raises(ValueError, match="epochs must be an int >= 1, got 0"):
        ExponentialDecay(1.0, 0.1, 0)
    from sciml.pde import solve_burgers

    with pytest.raises(ValueError, match="nu must be finite, got nan"):
        solve_burgers(lambda x: x, [0.0, 1.0], [0.0, 1.0], nu=math.nan)
