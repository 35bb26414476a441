"""Plug-and-play solvers, data fidelity, priors and the deepinv adapter of ``inverse``.

The reference solutions are closed forms (quadratic priors: a dense linear solve) or
certificates (TV: the duality gap), all in float64.
"""

from __future__ import annotations

import math
from typing import ClassVar

import pytest
import torch
from torch import nn

from inverse import (
    ADMMOptions,
    HQSOptions,
    L2DataFidelity,
    LPNPrior,
    PGDOptions,
    Prior,
    TikhonovPrior,
    TVPrior,
    admm,
    hqs,
    pgd,
    to_deepinv_denoiser,
    to_deepinv_prior,
    total_variation,
    tv_prox,
)
from operators import Convolution, Dense, FiniteDifference, FourierSampling, Identity, Mask

SHAPE = (1, 10, 10)
N = math.prod(SHAPE)
F64 = torch.float64


def _gaussian_psf(sigma: float = 1.0, size: int = 5) -> torch.Tensor:
    r = torch.arange(size, dtype=F64) - size // 2
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    return g / g.sum()


def _dense(op, shape=SHAPE) -> torch.Tensor:
    """The matrix of an operator acting on ``shape`` (columns = images of the basis)."""
    eye = torch.eye(math.prod(shape), dtype=F64).reshape(-1, *shape)
    return op(eye).reshape(math.prod(shape), -1).T


def _blur_problem(batch: int = 2, noise: float = 0.02):
    op = Convolution(_gaussian_psf(), SHAPE)
    x = torch.rand(batch, *SHAPE, dtype=F64)
    y = op(x) + noise * torch.randn(batch, *SHAPE, dtype=F64)
    return op, x, y


def _laplacian():
    """Periodic finite differences: the Tikhonov prox is then a closed-form Fourier solve."""
    d = FiniteDifference(SHAPE, dims=(-2, -1), boundary="circular")
    return d, _dense(d).T @ _dense(d)


def _quadratic_minimizer(op, y, lam, reg_matrix) -> torch.Tensor:
    """argmin ½‖Ax − y‖² + λ ½ xᵀ Q x, by a dense solve (one per sample)."""
    a = _dense(op)
    rhs = (a.T @ y.reshape(y.shape[0], -1).T).T
    m = a.T @ a + lam * reg_matrix
    return torch.linalg.solve(m, rhs.T).T.reshape(y.shape[0], *SHAPE)


class FixedQuadraticProx(Prior):
    """LPN-like prior: R(x) = c/2 ‖x‖², whose prox is available at weight 1 only."""

    scalable: ClassVar[bool] = False
    cheap_value: ClassVar[bool] = True

    def __init__(self, c: float) -> None:
        super().__init__(event_ndim=3)
        self.c = c

    def prox(self, x, gamma=1.0):
        self._check_gamma(gamma)
        return x / (1.0 + self.c)

    def value(self, x):
        return 0.5 * self.c * (x * x).sum(dim=(-3, -2, -1))


class WeightIgnoringProx(FixedQuadraticProx):
    """The reference code's behaviour: claims to scale, silently returns the weight-1 prox."""

    scalable: ClassVar[bool] = True

    def prox(self, x, gamma=1.0):
        return x / (1.0 + self.c)


class QuadraticLPN(nn.Module):
    """An "LPN" with potential ψ(y) = ½ y²/(1 + c): prox of R = c/2 ‖x‖² (closed form)."""

    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = c

    def forward(self, x):
        return x / (1.0 + self.c)

    def regularizer(self, x):
        return 0.5 * self.c * (x * x).sum(dim=(-3, -2, -1))


# ------------------------------------------------------------------------------ data fidelity
@pytest.mark.parametrize("kind", ["circular", "mask", "zeros"])
def test_l2_fidelity_prox_satisfies_optimality(kind):
    if kind == "circular":
        op = Convolution(_gaussian_psf(), SHAPE)
    elif kind == "mask":
        op = Mask((torch.rand(SHAPE) < 0.5).to(F64))
    else:  # zero-padded blur: no closed form, solve_normal falls back to CG
        op = Convolution(_gaussian_psf(), SHAPE, padding="zeros")
    y = torch.randn(3, *op.out_shape, dtype=F64)
    f = L2DataFidelity(op, y, cg_rtol=1e-13)
    v = torch.randn(3, *SHAPE, dtype=F64)
    for gamma in (0.3, torch.tensor([0.1, 1.0, 5.0], dtype=F64)):
        x = f.prox(v, gamma)
        g = gamma if isinstance(gamma, float) else gamma.reshape(-1, 1, 1, 1)
        # first-order condition: γ Aᴴ(Ax − y) + x − v = 0
        assert torch.allclose(g * f.grad(x) + x - v, torch.zeros_like(v), atol=1e-8)
    # value and gradient agree with autograd
    x = torch.randn(3, *SHAPE, dtype=F64, requires_grad=True)
    (gx,) = torch.autograd.grad(f.value(x).sum(), x)
    assert torch.allclose(gx, f.grad(x.detach()), atol=1e-10)
    assert f.initial_point().shape == (3, *SHAPE)


def _symmetric_mask(shape, seed=0) -> torch.Tensor:
    """A random k-space mask with mask[k] = mask[-k] (unshifted layout)."""
    g = torch.Generator().manual_seed(seed)
    m = (torch.rand(shape, generator=g) < 0.4).to(F64)
    flip = torch.roll(torch.flip(m, dims=(-2, -1)), shifts=(1, 1), dims=(-2, -1))
    m = torch.maximum(m, flip)
    m[0, 0] = 1.0  # the mean is measured (else ½‖Ax−y‖² + λ/2‖Dx‖² is not strictly convex)
    return m


def test_l2_fidelity_real_unknown_with_fourier_sampling():
    """real=True: the prox and gradient of ½‖Ax − y‖² over *real* x (complex A and y)."""
    op = FourierSampling(_symmetric_mask(SHAPE[-2:]), SHAPE)
    x_true = torch.rand(2, *SHAPE, dtype=F64)
    g = torch.Generator().manual_seed(1)
    noise = torch.complex(torch.randn(2, *SHAPE, generator=g, dtype=F64),
                          torch.randn(2, *SHAPE, generator=g, dtype=F64))
    y = op(x_true) + 0.05 * op.mask * noise
    f = L2DataFidelity(op, y, real=True)
    assert not f.initial_point().is_complex()
    # the real-restricted normal matrix, column by column: M e_j = Re Aᴴ A e_j
    eye = torch.eye(N, dtype=F64).reshape(-1, *SHAPE)
    m = op.adjoint(op(eye)).real.reshape(N, N).T
    aty = op.adjoint(y).real.reshape(2, N)
    v = torch.randn(2, *SHAPE, dtype=F64)
    for gamma in (0.5, torch.tensor([0.2, 3.0], dtype=F64)):
        x = f.prox(v, gamma)
        assert not x.is_complex()
        gv = torch.full((2,), gamma, dtype=F64) if isinstance(gamma, float) else gamma
        ref = torch.stack([torch.linalg.solve(m + torch.eye(N, dtype=F64) / gv[i],
                                              aty[i] + v[i].reshape(-1) / gv[i])
                           for i in range(2)]).reshape(2, *SHAPE)
        assert torch.allclose(x, ref, atol=1e-10)
    # the gradient over real x is the autograd gradient of the value
    xr = torch.randn(2, *SHAPE, dtype=F64, requires_grad=True)
    (gx,) = torch.autograd.grad(f.value(xr).sum(), xr)
    assert torch.allclose(gx, f.grad(xr.detach()), atol=1e-10)
    # ADMM with a Tikhonov prior reaches the real minimiser of ½‖Ax−y‖² + λ/2‖Dx‖²
    d, q = _laplacian()
    lam = 0.1
    ref = torch.linalg.solve(m + lam * q, aty.T).T.reshape(2, *SHAPE)
    res = admm(f, TikhonovPrior(d), lam=lam,
               options=ADMMOptions(rho=0.5, max_iter=500, tol=1e-12))
    assert not res.x.is_complex() and torch.allclose(res.x, ref, atol=1e-7)


def test_l2_fidelity_real_rejects_a_gram_that_mixes_real_and_imaginary():
    m = torch.zeros(*SHAPE[-2:], dtype=F64)
    m[0, 1] = 1.0  # k = (0, 1) without its mirror (0, -1): Aᴴ A x is complex for real x
    op = FourierSampling(m, SHAPE)
    y = op(torch.rand(1, *SHAPE, dtype=F64))
    with pytest.raises(ValueError, match="symmetric"):
        L2DataFidelity(op, y, real=True)
    L2DataFidelity(op, y)  # complex unknown: fine
    # real operators are accepted as they are
    f = L2DataFidelity(Mask(torch.ones(SHAPE, dtype=F64)), torch.ones(1, *SHAPE, dtype=F64),
                       real=True)
    assert torch.equal(f.prox(torch.zeros(1, *SHAPE, dtype=F64), 1.0),
                       torch.full((1, *SHAPE), 0.5, dtype=F64))


def test_l2_fidelity_lipschitz_is_squared_opnorm():
    op = Convolution(_gaussian_psf(), SHAPE)
    f = L2DataFidelity(op, torch.zeros(1, *SHAPE, dtype=F64))
    a = _dense(op)
    assert float(f.lipschitz()) == pytest.approx(float(torch.linalg.matrix_norm(a, 2)) ** 2,
                                                 rel=1e-8)


# ------------------------------------------------------------------------------ quadratic prior
def test_tikhonov_prox_is_linear_solve():
    d = FiniteDifference(SHAPE, dims=(-2, -1))
    q = _dense(d).T @ _dense(d)  # DᵀD on vectors
    v = torch.randn(2, *SHAPE, dtype=F64)
    gamma = 0.7
    x = TikhonovPrior().prox(v, gamma)
    ref = torch.linalg.solve(torch.eye(N, dtype=F64) + gamma * q, v.reshape(2, -1).T).T
    assert torch.allclose(x.reshape(2, -1), ref, atol=1e-8)
    # the value is ½‖Dx‖²
    assert torch.allclose(TikhonovPrior().value(v),
                          0.5 * ((v.reshape(2, -1) @ q) * v.reshape(2, -1)).sum(-1))


@pytest.mark.parametrize("order", ["standard", "132"])
def test_admm_reaches_quadratic_minimizer(order):
    op, _, y = _blur_problem()
    lam = 0.05
    d, q = _laplacian()
    ref = _quadratic_minimizer(op, y, lam, q)
    res = admm(L2DataFidelity(op, y), TikhonovPrior(d), lam=lam,
               options=ADMMOptions(rho=0.2, order=order, max_iter=500, tol=1e-12))
    assert torch.allclose(res.x, ref, atol=1e-7)
    assert torch.allclose(res.state["x"], res.state["z"], atol=1e-7)
    # optimality: ∇f(x) + λ DᵀD x = 0
    f = L2DataFidelity(op, y)
    grad = f.grad(res.x) + lam * d.adjoint(d(res.x))
    assert float(grad.abs().max()) < 1e-6
    # the objective history ends at the minimum, the residual decays
    h = res.history
    assert h.objective is not None and h.objective.shape == (res.n_iter, 2)
    assert torch.allclose(h.objective[-1], f.value(ref) + lam * TikhonovPrior(d).value(ref))
    assert float(h.residual[-1].max()) < float(h.residual[0].max()) * 1e-4
    assert res.weights == {"lam": lam, "rho": 0.2}


def test_admm_orderings_share_the_tv_fixed_point():
    op, _, y = _blur_problem(batch=1)
    f, prior = L2DataFidelity(op, y), TVPrior(max_iter=20, tol=1e-12)
    opts = {"max_iter": 150, "tol": 1e-7, "rho": 0.1}
    a = admm(f, prior, lam=0.02, options=ADMMOptions(order="standard", **opts))
    prior.reset()
    b = admm(f, prior, lam=0.02, options=ADMMOptions(order="132", **opts))
    assert float((a.x - b.x).abs().max()) < 2e-3


def test_pgd_reaches_quadratic_minimizer_and_decreases_objective():
    op, _, y = _blur_problem()
    lam = 0.2
    d, q = _laplacian()
    ref = _quadratic_minimizer(op, y, lam, q)
    res = pgd(L2DataFidelity(op, y), TikhonovPrior(d), lam=lam,
              options=PGDOptions(max_iter=1000, tol=1e-12))
    assert res.converged
    assert res.weights["step"] == pytest.approx(1.0, rel=1e-6)  # 1/‖A‖², ‖A‖ = 1 for a blur
    assert torch.allclose(res.x, ref, atol=1e-7)
    obj = res.history.objective
    assert bool((obj[1:] <= obj[:-1] + 1e-12).all())  # proximal gradient is monotone


def test_hqs_fixed_point_solves_relaxed_problem():
    op, _, y = _blur_problem(batch=1)
    lam, mu = 0.2, 0.3
    d, _ = _laplacian()
    res = hqs(L2DataFidelity(op, y), TikhonovPrior(d), lam=lam,
              options=HQSOptions(mu=mu, max_iter=1000, tol=1e-12))
    assert res.converged
    x, z = res.state["x"], res.state["z"]
    f = L2DataFidelity(op, y)
    # stationarity of f(x) + λR(z) + μ/2‖x − z‖² in x and in z
    assert float((f.grad(x) + mu * (x - z)).abs().max()) < 1e-8
    assert float((lam * d.adjoint(d(z)) + mu * (z - x)).abs().max()) < 1e-8


# ------------------------------------------------------------------------------ the LPN weight
def test_admm_weight_for_non_scalable_prior():
    op, _, y = _blur_problem()
    c, lam = 0.8, 0.3
    ref = _quadratic_minimizer(op, y, lam, c * torch.eye(N, dtype=F64))
    f, prior = L2DataFidelity(op, y), FixedQuadraticProx(c)
    res = admm(f, prior, lam=lam, options=ADMMOptions(max_iter=400, tol=1e-12))
    assert res.weights["rho"] == lam  # the only consistent penalty is chosen
    assert torch.allclose(res.x, ref, atol=1e-8)
    with pytest.raises(ValueError, match=r"weight 1 only.*rho = lam"):
        admm(f, prior, lam=lam, options=ADMMOptions(rho=2 * lam))
    with pytest.raises(ValueError, match="weight 1 only"):
        hqs(f, prior, lam=lam, options=HQSOptions(mu=1.0))


def test_reference_behaviour_silently_solves_lambda_equal_rho():
    """A prior that ignores its weight (the reference code) makes ADMM solve λ = ρ."""
    op, _, y = _blur_problem(batch=1)
    c, lam, rho = 0.8, 0.3, 0.05
    res = admm(L2DataFidelity(op, y), WeightIgnoringProx(c), lam=lam,
               options=ADMMOptions(rho=rho, max_iter=3000, tol=1e-13))
    wrong = _quadratic_minimizer(op, y, rho, c * torch.eye(N, dtype=F64))
    right = _quadratic_minimizer(op, y, lam, c * torch.eye(N, dtype=F64))
    assert torch.allclose(res.x, wrong, atol=1e-7)
    assert float((res.x - right).abs().max()) > 1e-2


def test_lpn_prior_weight_mapping_and_pgd_step():
    op, _, y = _blur_problem()
    c, sigma_train, sigma = 0.5, 0.05, 0.1
    prior = LPNPrior(QuadraticLPN(c), sigma_train=sigma_train)
    lam = prior.admm_weight(sigma)
    assert lam == pytest.approx((sigma / sigma_train) ** 2)
    assert prior.pgd_step(sigma) == pytest.approx(1 / lam)
    ref = _quadratic_minimizer(op, y, lam, c * torch.eye(N, dtype=F64))
    f = L2DataFidelity(op, y)
    res = admm(f, prior, lam=lam, options=ADMMOptions(max_iter=300, tol=1e-12))
    assert torch.allclose(res.x, ref, atol=1e-8)
    # PGD: step 1/λ on the data term with the weight-1 prox; stable here since λ = 4 ≥ ‖A‖²/2
    res = pgd(f, prior, lam=lam, options=PGDOptions(max_iter=300, tol=1e-13,
                                                    track_objective=True))
    assert res.weights["step"] == pytest.approx(1 / lam)
    assert torch.allclose(res.x, ref, atol=1e-8)
    assert torch.allclose(res.history.objective[-1],
                          f.value(ref) + lam * QuadraticLPN(c).regularizer(ref))
    with pytest.raises(ValueError, match="weight 1 only"):
        pgd(f, prior, lam=lam, options=PGDOptions(step=1.0))
    with pytest.raises(ValueError, match=r"at weight 1 only.*gamma=0.5"):
        prior.prox(y, 0.5)


def test_pgd_warns_when_unit_weight_step_is_unstable():
    op, _, y = _blur_problem(batch=1)
    prior = LPNPrior(QuadraticLPN(0.5), sigma_train=0.05)
    with pytest.warns(UserWarning, match="may diverge"):
        pgd(L2DataFidelity(op, y), prior, lam=prior.admm_weight(0.01),
            options=PGDOptions(max_iter=2))


def test_per_sample_lambda_matches_separate_runs():
    op, _, y = _blur_problem(batch=2)
    lam = torch.tensor([0.01, 0.1], dtype=F64)
    opts = ADMMOptions(rho=0.1, max_iter=30, tol=0.0)
    d, _ = _laplacian()
    f = L2DataFidelity(op, y)
    both = admm(f, TikhonovPrior(d), lam=lam, options=opts)
    for i in range(2):
        one = admm(L2DataFidelity(op, y[i:i + 1]), TikhonovPrior(d), lam=float(lam[i]),
                   options=opts)
        assert torch.allclose(both.x[i], one.x[0], atol=1e-8)


# ------------------------------------------------------------------------------ TV
def test_tv_prox_duality_gap_and_optimality():
    v = torch.rand(2, 1, 16, 16, dtype=F64)
    lam = 0.1
    r = tv_prox(v, lam, max_iter=3000, tol=1e-12)
    assert float(r.gap.max()) < 1e-8
    # primal optimality: no perturbation lowers ½‖x − v‖² + λ TV(x)
    def obj(x):
        return 0.5 * ((x - v) ** 2).sum(dim=(-3, -2, -1)) + lam * total_variation(x)
    base = obj(r.x)
    for _ in range(20):
        pert = r.x + 1e-3 * torch.randn_like(v)
        assert bool((obj(pert) >= base - 1e-9).all())
    # dual feasibility and x = v − λ Dᴴ p
    assert float(r.dual.pow(2).sum(dim=-4).sqrt().max()) <= 1 + 1e-12
    d = FiniteDifference((1, 16, 16), dims=(-2, -1))
    assert torch.allclose(r.x, v - lam * d.adjoint(r.dual))
    # a short run is close to the long run (the gap bounds ½‖x − x*‖²)
    short = tv_prox(v, lam, max_iter=100, tol=0.0)
    err = 0.5 * ((short.x - r.x) ** 2).sum(dim=(-3, -2, -1))
    assert bool((err <= short.gap + 1e-10).all())


def test_tv_prior_warm_start_and_value():
    prior = TVPrior(max_iter=50, tol=1e-10)
    v = torch.rand(1, 1, 12, 12, dtype=F64)
    a = prior.prox(v, 0.1)
    b = prior.prox(v, 0.1)  # warm-started from the previous dual: closer to the prox
    ref = tv_prox(v, 0.1, max_iter=3000, tol=1e-13).x
    assert float((b - ref).abs().max()) <= float((a - ref).abs().max()) + 1e-12
    x = torch.zeros(1, 1, 4, 4, dtype=F64)
    x[..., 2:, :] = 1.0  # one horizontal edge of length 4
    assert float(prior.value(x)) == pytest.approx(4.0)


def test_tv_admm_and_pgd_agree_and_decrease_objective():
    op, _, y = _blur_problem(batch=1)
    lam = 0.05
    f = L2DataFidelity(op, y)
    a = admm(f, TVPrior(max_iter=20, tol=1e-12), lam=lam,
             options=ADMMOptions(rho=0.2, max_iter=150, tol=1e-7))
    p = pgd(f, TVPrior(max_iter=50, tol=1e-12), lam=lam,
            options=PGDOptions(max_iter=150, tol=1e-7))
    assert float((a.x - p.x).abs().max()) < 2e-3
    obj = a.history.objective[:, 0]
    start = f.value(f.initial_point()) + lam * total_variation(f.initial_point())
    assert float(obj[-1]) < float(start[0])
    assert float(obj[-1]) == pytest.approx(float(p.history.objective[-1, 0]), rel=1e-4)
    po = p.history.objective[:, 0]  # monotone up to the inexactness of the TV prox
    assert bool((po[1:] <= po[:-1] + 1e-8).all())


def test_inpainting_with_mask_operator():
    mask = (torch.rand(SHAPE) < 0.6).to(F64)
    x = torch.rand(1, *SHAPE, dtype=F64)
    op = Mask(mask)
    d, q = _laplacian()
    res = admm(L2DataFidelity(op, op(x)), TikhonovPrior(d), lam=0.1,
               options=ADMMOptions(rho=0.3, max_iter=500, tol=1e-10))
    ref = _quadratic_minimizer(op, op(x), 0.1, q)
    assert torch.allclose(res.x, ref, atol=1e-6)


# ------------------------------------------------------------------------------ error paths
def test_bad_inputs_raise_clear_errors():
    op = Identity(SHAPE)
    y = torch.zeros(1, *SHAPE)
    with pytest.raises(TypeError, match="LinearOperator"):
        L2DataFidelity(torch.eye(3), y)
    with pytest.raises(ValueError, match="shape"):
        L2DataFidelity(op, torch.zeros(1, 3, 3))
    f = L2DataFidelity(op, y)
    with pytest.raises(ValueError, match="gamma must be > 0, got -1.0"):
        f.prox(y, -1.0)
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="gamma must be finite"):
            f.prox(y, bad)
    for bad in ("0.1", True, None):
        with pytest.raises(TypeError, match="gamma must be a real number, got .*; give a "
                                            "positive float or a tensor"):
            f.prox(y, bad)
    with pytest.raises(ValueError, match="gamma must be finite and > 0, got 1 entry"):
        f.prox(y, torch.tensor([math.nan]))
    with pytest.raises(ValueError, match="cg_rtol must be finite"):
        L2DataFidelity(op, y, cg_rtol=math.nan)
    with pytest.raises(TypeError, match="inverse.Prior"):
        admm(f, lambda x: x)
    with pytest.raises(TypeError, match="AbstractDataFidelity"):
        pgd(op, TVPrior())
    with pytest.raises(ValueError, match="event_ndim=3"):
        admm(f, TVPrior(event_ndim=2))
    with pytest.raises(ValueError, match="lam must be > 0, got 0.0"):
        admm(f, TVPrior(), lam=0.0)
    with pytest.raises(TypeError, match="ADMMOptions"):
        admm(f, TVPrior(), options=PGDOptions())
    with pytest.raises(ValueError, match="order must be one of"):
        ADMMOptions(order="123")
    with pytest.raises(ValueError, match="rho must be > 0, got -1.0"):
        ADMMOptions(rho=-1.0)
    with pytest.raises(ValueError, match="max_iter must be an int >= 1"):
        PGDOptions(max_iter=0)
    with pytest.raises(ValueError, match="tol must be >= 0, got -1.0; .*0 runs max_iter"):
        HQSOptions(tol=-1.0)
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="tol must be finite"):
            PGDOptions(tol=bad)
    for bad in ("1e-3", True, None):
        with pytest.raises(TypeError, match="tol must be a real number"):
            ADMMOptions(tol=bad)
    with pytest.raises(ValueError, match="step must be > 0, got 0.0"):
        PGDOptions(step=0.0)
    with pytest.raises(TypeError, match="unexpected keyword"):
        ADMMOptions(rh0=1.0)  # typos do not pass silently
    with pytest.raises(ValueError, match="sigma_train must be > 0"):
        LPNPrior(QuadraticLPN(1.0), sigma_train=0.0)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        LPNPrior(lambda x: x, sigma_train=0.1)
    with pytest.raises(ValueError, match="lam must be > 0, got 0.0"):
        tv_prox(y, 0.0)
    with pytest.raises(ValueError, match="needs images"):
        TVPrior(event_ndim=1)
    with pytest.raises(NotImplementedError, match="no value"):
        FixedQuadraticProx.__mro__[1].value(FixedQuadraticProx(1.0), y)


# ------------------------------------------------------------------------------ deepinv
def test_deepinv_pnp_admm_with_lpn_like_denoiser():
    dinv = pytest.importorskip("deepinv")
    from operators.interop import to_deepinv

    op, _, y = _blur_problem(batch=1)
    c, lam = 0.5, 0.2
    prior = LPNPrior(QuadraticLPN(c), sigma_train=0.05)
    denoiser = to_deepinv_denoiser(prior)
    assert torch.equal(denoiser(y, 0.3), denoiser(y))  # sigma is ignored
    # deepinv's ADMM: data step prox_{γ f}, prior step D(·, sigma) → solves γ f + R, λ = 1/γ
    model = dinv.optim.ADMM(data_fidelity=dinv.optim.L2(), prior=dinv.optim.PnP(denoiser),
                            stepsize=1.0 / lam, g_param=0.05, max_iter=60)
    with torch.no_grad():
        x_dinv = model(y, to_deepinv(op))
    ref = _quadratic_minimizer(op, y, lam, c * torch.eye(N, dtype=F64))
    ours = admm(L2DataFidelity(op, y), prior, lam=lam,
                options=ADMMOptions(max_iter=60, tol=1e-12)).x
    assert torch.allclose(x_dinv, ref, atol=1e-6)
    assert torch.allclose(ours, ref, atol=1e-8)
    with pytest.raises(ValueError, match="weight 1 only"):
        to_deepinv_denoiser(prior, weight=0.5)


def test_deepinv_prior_adapter_in_pgd():
    dinv = pytest.importorskip("deepinv")
    from operators.interop import to_deepinv

    op, _, y = _blur_problem(batch=1)
    lam = 0.2
    d, q = _laplacian()
    model = dinv.optim.PGD(data_fidelity=dinv.optim.L2(), prior=to_deepinv_prior(TikhonovPrior(d)),
                           stepsize=1.0, lambda_reg=lam, max_iter=100)
    with torch.no_grad():
        x_dinv = model(y, to_deepinv(op))
    ref = _quadratic_minimizer(op, y, lam, q)
    assert torch.allclose(x_dinv, ref, atol=1e-5)
    wrapped = to_deepinv_prior(TikhonovPrior())
    assert torch.allclose(wrapped.fn(y), TikhonovPrior().value(y))
    with pytest.raises(ValueError, match="weight 1 only"):
        to_deepinv_prior(FixedQuadraticProx(1.0)).prox(y, 0.1, gamma=0.5)
    with pytest.raises(TypeError, match="inverse.Prior"):
        to_deepinv_prior(object())


def test_dense_operator_problem_any_linear_operator():
    """The solvers take any LinearOperator (here a dense, non-structured one: CG data step)."""
    m = torch.randn(6, 8, dtype=F64)
    op = Dense(m)
    y = torch.randn(3, 6, dtype=F64)
    reg = Identity((8,))
    res = admm(L2DataFidelity(op, y), TikhonovPrior(reg), lam=0.5,
               options=ADMMOptions(rho=1.0, max_iter=500, tol=1e-12))
    ref = torch.linalg.solve(m.T @ m + 0.5 * torch.eye(8, dtype=F64), (y @ m).T).T
    assert torch.allclose(res.x, ref, atol=1e-8)


def test_real_lpn_in_admm_and_deepinv_denoiser():
    """An actual inverse.lpn.LPN as the prior: runs under no_grad, batched, any image size."""
    from inverse.lpn import LPN, ImageLPNConfig

    lpn = LPN(ImageLPNConfig(in_channels=1, hidden=4, num_layers=2)).double()
    prior = LPNPrior(lpn, sigma_train=0.05)
    op = Convolution(_gaussian_psf(), (1, 12, 9))
    y = torch.rand(2, 3, 1, 12, 9, dtype=F64)  # two batch dims
    res = admm(L2DataFidelity(op, y), prior, lam=prior.admm_weight(0.02),
               options=ADMMOptions(max_iter=3, tol=0.0, track_objective=True))
    assert res.x.shape == y.shape and res.n_iter == 3
    assert res.history.objective.shape == (3, 2, 3)
    with torch.no_grad():
        out = to_deepinv_denoiser(prior)(y[0], 0.1)
    assert torch.allclose(out, lpn(y[0]).detach())
    assert prior.value(y).shape == (2, 3)


def test_vector_lpn_prior_takes_event_ndim_from_the_model():
    from inverse.lpn import LPN, VectorLPNConfig

    lpn = LPN(VectorLPNConfig(dim=4, hidden=8, num_layers=1, alpha=0.1)).double()
    prior = LPNPrior(lpn, sigma_train=0.1)
    assert prior.event_ndim == 1
    op = Dense(torch.randn(3, 4, dtype=F64))
    res = admm(L2DataFidelity(op, torch.randn(5, 3, dtype=F64)), prior, lam=0.5,
               options=ADMMOptions(max_iter=2, tol=0.0))
    assert res.x.shape == (5, 4)
