"""Tests of the PDE-as-data layer of sciml.neural_operators: Darcy through ``PDE`` gives the same
numbers as the hand-written Darcy residual, Burgers' weak residual vanishes on the Cole–Hopf
solution, and a DGNO for Burgers (no a-decoder) trains end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sciml.neural_operators import (
    DGNO,
    PDE,
    BernoulliLikelihood,
    Box,
    DGNOLossOptions,
    Fields,
    GaussianLikelihood,
    Interpolation,
    MLPEncoder,
    MultiONet,
    PhysicsInformedOperator,
    WeakFormOptions,
    bilinear_with_gradient,
    burgers_pde,
    coefficient_at,
    darcy_pde,
    dgno_loss,
    grid_points,
    sample_test_functions,
    sine_mollifier,
    strong_residual,
    weak_residual,
)
from sciml.pde import burgers_exact_sine

F64 = torch.float64


def _perturb(module: torch.nn.Module, scale: float = 0.2) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))


def _dgno(mixed: bool, pde: PDE | None = None, seed: int = 0) -> DGNO:
    torch.manual_seed(seed)

    def dec() -> MultiONet:
        return MultiONet(2, 5, [8] * 3, [8] * 3)

    lik = BernoulliLikelihood() if mixed else GaussianLikelihood()
    m = DGNO(MLPEncoder(9, (16,), 5), dec(), dec(), lik,
             flux_decoders=(dec(), dec()) if mixed else None, pde=pde).to(F64)
    _perturb(m)
    return m


def _legacy_darcy_loss(model: DGNO, a: torch.Tensor, tf, opts: DGNOLossOptions) -> torch.Tensor:
    """The Darcy DGNO loss written out by hand (the formula before PDEs were data)."""
    beta = model.encode(a)
    nodes = grid_points(model.grid, dtype=a.dtype)
    nll = model.likelihood.nll(model.a_decoder(beta, nodes), a.reshape(a.shape[0], -1))
    a_pts = coefficient_at(a, tf.points, opts.interpolation)
    raw = model.u_decoder.jet(beta, tf.points, grad=True)
    m, gm, _ = sine_mollifier(tf.points)
    grad_u = raw.grad * m[..., None] + raw.value[..., None] * gm
    a_grad_u = a_pts[..., None] * grad_u
    if model.flux_decoders is not None:
        s = torch.stack([d(beta, tf.points) for d in model.flux_decoders], -1)
        pde = opts.flux_weight * ((s - a_grad_u) ** 2).sum(-1).mean()
        r = weak_residual(s, opts.source, tf)
    else:
        pde = 0.0
        r = weak_residual(a_grad_u, opts.source, tf)
    pde = pde + math.sqrt(tf.n_centres) * (r ** 2).mean()
    return opts.data_weight * nll + opts.pde_weight * pde


@pytest.mark.parametrize("mixed", [True, False], ids=["mixed", "primal"])
def test_darcy_through_pde_equals_hand_written_loss(mixed):
    a = 5 + 5 * (torch.rand(3, 9, 9, dtype=F64) > 0.5).to(F64)
    interp = Interpolation.NEAREST if mixed else Interpolation.BILINEAR
    opts = DGNOLossOptions(weak=WeakFormOptions(n_centres=6), source=7.0, flux_weight=0.7,
                           data_weight=0.3, interpolation=interp)
    tf = sample_test_functions(opts.weak, generator=torch.Generator().manual_seed(1), dtype=F64)
    default = _dgno(mixed)
    explicit = _dgno(mixed, pde=darcy_pde(7.0, mixed=mixed, interpolation=interp, grid=9))
    explicit.load_state_dict(default.state_dict())
    ref = _legacy_darcy_loss(default, a, tf, opts)
    grads = []
    for model in (default, explicit):
        loss, _ = dgno_loss(model, a, opts, test_functions=tf)
        torch.testing.assert_close(loss, ref, rtol=1e-14, atol=0.0)
        grads.append(torch.autograd.grad(loss, list(model.parameters())))
    ref_g = torch.autograd.grad(ref, list(default.parameters()))
    for g0, g1, gr in zip(*grads, ref_g, strict=True):
        torch.testing.assert_close(g0, gr, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(g1, gr, rtol=1e-12, atol=1e-14)


def test_unit_box_draws_the_same_test_functions():
    opts = WeakFormOptions(n_centres=7, radius=0.05)
    t0 = sample_test_functions(opts, generator=torch.Generator().manual_seed(3))
    t1 = sample_test_functions(opts, generator=torch.Generator().manual_seed(3),
                               domain=darcy_pde().domain)
    assert torch.equal(t0.points, t1.points) and torch.equal(t0.grad_v, t1.grad_v)


def test_strong_residual_through_pde_equals_hand_written():
    torch.manual_seed(0)
    net = MultiONet(2, 81, [8] * 3, [8] * 3, encoder=torch.nn.Flatten()).to(F64)
    _perturb(net)
    a = 1 + torch.rand(2, 9, 9, dtype=F64)
    pts = torch.rand(11, 2, dtype=F64)
    legacy = PhysicsInformedOperator(net)
    jet = legacy.jet(a, pts)
    av, ag = bilinear_with_gradient(a, pts)
    hand = av * jet.laplacian + (ag * jet.grad).sum(-1) + 3.0
    for m in (legacy, PhysicsInformedOperator(net, pde=darcy_pde(3.0))):
        torch.testing.assert_close(strong_residual(m, a, pts, 3.0), hand, rtol=1e-14, atol=0.0)


def _burgers_fields(x: torch.Tensor, nu: float) -> Fields:
    u, ux, ut = (torch.from_numpy(v) for v in burgers_exact_sine(x[:, 0].numpy(),
                                                                 x[:, 1].numpy(), nu=nu))
    return Fields(x, u[None], torch.stack([ux, ut], -1)[None])


def test_burgers_weak_residual_vanishes_on_cole_hopf_solution():
    """r_j / (size of its terms) is O(R^2) for the exact solution (consistent source scaling),
    and O(1) for the solution of another viscosity."""
    nu = 0.1 / math.pi
    pde = burgers_pde(nu)
    rel = {}
    for radius in (0.04, 0.01):
        opts = WeakFormOptions(n_centres=40, radius=radius, quadrature_points=12,
                               consistent_source=True)
        tf = sample_test_functions(opts, generator=torch.Generator().manual_seed(0), dtype=F64,
                                   domain=pde.domain)
        assert tf.grad_v.shape == (10, 1)
        assert bool((tf.points[:, 1].reshape(40, 10) == tf.centres[:, 1:]).all())
        for name, visc in (("exact", nu), ("wrong", 2 * nu)):
            f = _burgers_fields(tf.points, visc)
            r = weak_residual(pde.flux(f), pde.source_at(f), tf)
            size = ((f.grad[0, :, 1].abs() + (f.u * f.grad[..., 0])[0].abs()).reshape(40, 10)
                    .mean(-1) * tf.v.mean() + 1e-3)
            rel[name, radius] = float((r.abs() / size).max())
    # measured: 2.5e-5 (R = 0.04), 2.3e-6 (R = 0.01); another viscosity: 0.5
    assert rel["exact", 0.01] < rel["exact", 0.04] / 5
    assert rel["exact", 0.01] < 1e-4
    assert rel["wrong", 0.01] > 0.3 and rel["wrong", 0.04] > 0.3


def test_burgers_dgno_without_a_decoder_trains():
    x = torch.linspace(-1, 1, 16, dtype=F64)
    pde = burgers_pde(x_nodes=x)
    torch.manual_seed(0)

    def dec() -> MultiONet:
        return MultiONet(2, 6, [8] * 3, [8] * 3)

    model = DGNO(MLPEncoder(16, (16,), 6, ndim=1), dec(), None, GaussianLikelihood(squared=True),
                 pde=pde).to(F64)
    a = torch.sin(math.pi * x)[None] * torch.linspace(0.5, 1, 4, dtype=F64)[:, None]
    opts = DGNOLossOptions(weak=WeakFormOptions(n_centres=8, quadrature_points=12))
    gen = torch.Generator().manual_seed(0)
    loss, parts = dgno_loss(model, a, opts, generator=gen)
    assert set(parts) >= {"nll", "residual", "loss"}
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    assert all(g is not None for g in grads)
    # hard boundary condition u(±1, t) = 0 and the coefficient is u(x, 0)
    beta = model.encode(a)
    edge = torch.tensor([[-1.0, 0.3], [1.0, 0.7]], dtype=F64)
    assert float(model.decode_u(beta, edge).detach().abs().max()) < 1e-12
    rec = model.reconstruct(a)
    assert rec.shape == a.shape
    torch.testing.assert_close(rec, model.decode_u(beta, pde.coefficient_points.to(F64)))
    naive = dgno_loss(model, a, DGNOLossOptions(weak=opts.weak, shared_trunk=False),
                      test_functions=sample_test_functions(
                          opts.weak, generator=torch.Generator().manual_seed(5), dtype=F64,
                          domain=pde.domain))[0]
    shared = dgno_loss(model, a, opts, test_functions=sample_test_functions(
        opts.weak, generator=torch.Generator().manual_seed(5), dtype=F64,
        domain=pde.domain))[0]
    torch.testing.assert_close(naive, shared, rtol=1e-12, atol=1e-14)


def test_pde_bad_inputs_raise():
    with pytest.raises(ValueError, match="lower < upper"):
        Box((0.0,), (0.0,))
    with pytest.raises(ValueError, match="test_dims"):
        Box((0.0, 0.0), (1.0, 1.0), test_dims=(2,))
    with pytest.raises(TypeError, match="domain must be a Box"):
        PDE(domain=((0, 1),), flux=lambda f: f.grad)
    with pytest.raises(TypeError, match="flux"):
        PDE(domain=Box((0.0,), (1.0,)), flux=None)
    for bad in ("1", True, None):
        with pytest.raises(TypeError, match="source must be a real number, got .*; source must be "
                                            "a number or a function of Fields"):
            PDE(domain=Box((0.0,), (1.0,)), flux=lambda f: f.grad, source=bad)
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="source must be finite"):  # used to pass
            PDE(domain=Box((0.0,), (1.0,)), flux=lambda f: f.grad, source=bad)
    with pytest.raises(ValueError, match="coefficient_points"):
        PDE(domain=Box((0.0,), (1.0,)), flux=lambda f: f.grad,
            coefficient_points=torch.zeros(3, 2))
    with pytest.raises(ValueError, match="coefficient_points"):
        DGNO(MLPEncoder(9, (4,), 5), MultiONet(2, 5, [8] * 2, [8] * 2), None,
             GaussianLikelihood())
    with pytest.raises(ValueError, match="flux_decoders"):
        DGNO(MLPEncoder(9, (4,), 5), MultiONet(2, 5, [8] * 2, [8] * 2),
             MultiONet(2, 5, [8] * 2, [8] * 2), GaussianLikelihood(), pde=darcy_pde(mixed=True))
    with pytest.raises(ValueError, match="too large"):
        sample_test_functions(WeakFormOptions(radius=0.4), domain=Box((0.0,), (0.5,)))
    with pytest.raises(ValueError, match="nu"):
        burgers_pde(-1.0)
    assert np.isclose(burgers_pde().params["nu"], 0.1 / math.pi)


def test_docs_walkthrough_reaction_diffusion_trains_and_inverts():
    """The guide's 'your own PDE' code at toy sizes: definition, label-free fit, inverse."""
    from operators import PointSampling
    from sciml.neural_operators import (
        DGNOObjective,
        InverseOptions,
        TrainOptions,
        fit,
        invert_darcy,
    )
    from sciml.pde import smooth_field

    kappa, f, n = 5.0, 10.0, 9
    reaction = PDE(domain=Box((0.0, 0.0), (1.0, 1.0), names=("x", "y")),
                   flux=lambda q: q.a[..., None] * q.grad, source=lambda q: f - kappa * q.u,
                   mollifier=sine_mollifier,
                   coefficient=lambda a, x: coefficient_at(a, x, Interpolation.BILINEAR),
                   coefficient_points=grid_points(n), name="reaction-diffusion")
    a = torch.tensor(smooth_field(8, n, seed=0), dtype=torch.float32)
    torch.manual_seed(0)

    def decoder():
        return MultiONet(2, 8, [8] * 3, [8] * 3)

    model = DGNO(MLPEncoder(n, (16,), 8), decoder(), decoder(), GaussianLikelihood(),
                 pde=reaction)
    model.encoder.fit_normalization(a)
    objective = DGNOObjective(DGNOLossOptions(weak=WeakFormOptions(n_centres=6),
                                              data_weight=0.25))
    res = fit(model, objective, (a,), TrainOptions(epochs=2, batch_size=4), progress=False)
    assert len(res.history) == 2 and math.isfinite(res.history[-1]["loss"])
    # the reaction term is in the residual: the loss differs from the pure-diffusion PDE's
    tf = sample_test_functions(WeakFormOptions(n_centres=6),
                               generator=torch.Generator().manual_seed(0))
    opts = DGNOLossOptions(weak=WeakFormOptions(n_centres=6))
    l_reac = dgno_loss(model, a, opts, test_functions=tf)[0]
    model.pde = darcy_pde(f, interpolation=Interpolation.BILINEAR, grid=n)
    l_darcy = dgno_loss(model, a, opts, test_functions=tf)[0]
    model.pde = reaction
    assert abs(float(l_reac.detach()) - float(l_darcy.detach())) > 1e-6
    points = 0.05 + 0.9 * torch.rand(10, 2)
    sensors = PointSampling(points, (n, n), extent=((0.0, 1.0), (0.0, 1.0)))
    with torch.no_grad():
        y = model(a[:1], points)[0]
    out = invert_darcy(model, sensors, y, InverseOptions(steps=2, loss=opts))
    assert out.coefficient.shape == (n, n) and len(out.history) == 2
