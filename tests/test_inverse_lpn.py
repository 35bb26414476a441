"""Tests of ``inverse.lpn``: convexity, prox properties, inversion, patches, loss, checkpoints."""

from __future__ import annotations

import math

import pytest
import torch

from inverse.lpn import (
    LPN,
    ImageLPNConfig,
    LPNTrainOptions,
    PatchLPN,
    ProximalMatchingLoss,
    TrainPhase,
    VectorLPNConfig,
    load_lpn,
    proximal_matching_schedule,
    save_lpn,
    standard_phases,
    train_lpn,
)

F64 = torch.float64


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: intra-op threads only add synchronisation cost (badly so on a busy CPU)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _vector(alpha=0.05, dim=3, seed=0):
    torch.manual_seed(seed)
    return LPN(VectorLPNConfig(dim=dim, hidden=16, num_layers=2, alpha=alpha)).to(F64)


def _image(alpha=0.05, channels=1, seed=0, init_log_mean=None):
    torch.manual_seed(seed)
    cfg = ImageLPNConfig(in_channels=channels, hidden=6, num_layers=2,
                         alpha=alpha, init_log_mean=init_log_mean)
    return LPN(cfg).to(F64)


def _perturb_(lpn, scale=0.5):
    """Random weights of both signs (the z-path then needs the clamp in forward)."""
    with torch.no_grad():
        for p in lpn.parameters():
            p.normal_(0.0, scale)


MODELS = {
    "vector": (_vector, (3,)),
    "image": (_image, (1, 7, 6)),
}


def _rand(shape, n=5, scale=1.0):
    return scale * torch.randn(n, *shape, dtype=F64)


# ------------------------------------------------------------------------------- convexity
@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("state", ["init", "perturbed", "perturbed+projected"])
def test_potential_is_convex_along_random_lines(kind, state):
    make, shape = MODELS[kind]
    lpn = make(alpha=0.0)
    if state != "init":
        _perturb_(lpn)
    if state == "perturbed+projected":
        lpn.project_()
        assert all(bool((p >= 0).all()) for p in lpn.icnn.nonneg_parameters())
    a, d = _rand(shape), _rand(shape)
    t = torch.linspace(-3, 3, 61, dtype=F64)
    with torch.no_grad():
        vals = torch.stack([lpn.potential(a + ti * d) for ti in t])  # (T, n)
    second = vals[2:] - 2 * vals[1:-1] + vals[:-2]
    assert float(second.min()) >= -1e-9 * float(vals.abs().max())
    # not trivially linear: a perturbed network is strictly curved somewhere
    if state != "init":
        assert float(second.max()) > 1e-6


def test_project_keeps_the_function_and_makes_weights_feasible():
    lpn = _image()
    _perturb_(lpn)
    x = _rand((1, 7, 6))
    with torch.no_grad():
        before = lpn.potential(x)
        assert any(bool((p < 0).any()) for p in lpn.icnn.nonneg_parameters())
        lpn.project_()
        after = lpn.potential(x)
    assert all(bool((p >= 0).all()) for p in lpn.icnn.nonneg_parameters())
    torch.testing.assert_close(before, after)  # forward already used the clamped weights


@pytest.mark.parametrize("kind", MODELS)
def test_prox_is_strongly_monotone_with_symmetric_jacobian(kind):
    make, shape = MODELS[kind]
    alpha = 0.05
    lpn = make(alpha=alpha)
    _perturb_(lpn, 0.3)
    a, b = _rand(shape, 8), _rand(shape, 8)
    with torch.no_grad():
        fa, fb = lpn(a), lpn(b)
    dims = tuple(range(1, a.ndim))
    lhs = ((fa - fb) * (a - b)).sum(dims)
    rhs = 2 * alpha * ((a - b) ** 2).sum(dims)
    assert bool((lhs >= rhs * (1 - 1e-9)).all())
    # f = ∇ψ: the Jacobian is the (symmetric, PSD) Hessian of ψ
    x = _rand(shape, 1)
    jac = torch.autograd.functional.jacobian(lambda v: lpn(v, create_graph=True), x)
    jac = jac.reshape(x.numel(), x.numel())
    torch.testing.assert_close(jac, jac.T, atol=1e-10, rtol=1e-8)
    assert float(torch.linalg.eigvalsh(jac).min()) >= 2 * alpha - 1e-8


# ------------------------------------------------------------------------------- inverse, R
@pytest.mark.parametrize("kind", MODELS)
def test_inverse_inverts_the_prox(kind):
    make, shape = MODELS[kind]
    lpn = make()
    _perturb_(lpn, 0.3)
    lpn.project_()
    x = _rand(shape, 6)
    res = lpn.invert(x, atol=1e-9, rtol=1e-9)
    assert bool(res.converged.all()), res.status
    with torch.no_grad():
        torch.testing.assert_close(lpn(res.solution), x, atol=1e-8, rtol=0)
    # y = f(z) is recovered: f⁻¹(f(z)) = z
    z = _rand(shape, 6)
    with torch.no_grad():
        fz = lpn(z)
    torch.testing.assert_close(lpn.inverse(fz, atol=1e-10, rtol=1e-10), z, atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", MODELS)
def test_prox_optimality_inequality(kind):
    """f(v) minimises ½‖x − v‖² + R(x): ½‖f(v) − v‖² + R(f(v)) ≤ ½‖x − v‖² + R(x)."""
    make, shape = MODELS[kind]
    lpn = make(alpha=0.1)
    _perturb_(lpn, 0.3)
    lpn.project_()
    v = _rand(shape, 4)
    dims = tuple(range(1, v.ndim))
    with torch.no_grad():
        fv = lpn(v)
        r_fv = lpn.regularizer(fv, atol=1e-10, rtol=1e-10)
        best = 0.5 * ((fv - v) ** 2).sum(dims) + r_fv
        for scale in (0.01, 0.1, 1.0):
            for _ in range(5):
                x = fv + scale * torch.randn_like(fv)
                other = 0.5 * ((x - v) ** 2).sum(dims) + lpn.regularizer(x, atol=1e-10, rtol=1e-10)
                assert bool((best <= other + 1e-8).all())


def test_regularizer_gradient_is_inverse_minus_identity():
    lpn = _vector(alpha=0.1)
    _perturb_(lpn, 0.3)
    x = _rand((3,), 4).requires_grad_(True)
    r = lpn.regularizer(x, atol=1e-11, rtol=1e-11)
    (g,) = torch.autograd.grad(r.sum(), x)
    y = lpn.inverse(x.detach(), atol=1e-11, rtol=1e-11)
    torch.testing.assert_close(g, y - x.detach(), atol=1e-9, rtol=0)
    # and matches a finite difference of R
    e = torch.zeros_like(x)
    e[0, 1] = 1e-5
    with torch.no_grad():
        fd = (lpn.regularizer(x + e, atol=1e-12, rtol=1e-12)
              - lpn.regularizer(x - e, atol=1e-12, rtol=1e-12))[0] / 2e-5
    assert abs(float(fd) - float(g[0, 1])) < 1e-5


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("c", [0.5, 2.0])
def test_quadratic_potential_closed_form(kind, c):
    """ψ = (c/2)‖y‖² (all weights zero, α = c/2): f = cy, f⁻¹ = x/c, R = ½(1/c − 1)‖x‖²."""
    make, shape = MODELS[kind]
    cfg = VectorLPNConfig(dim=3, hidden=4, num_layers=1, alpha=c / 2) if kind == "vector" else \
        ImageLPNConfig(in_channels=1, hidden=4, num_layers=1, alpha=c / 2)
    lpn = LPN(cfg).to(F64)
    with torch.no_grad():
        for p in lpn.parameters():
            p.zero_()
    x = _rand(shape, 3)
    dims = tuple(range(1, x.ndim))
    with torch.no_grad():
        psi0 = lpn.potential(torch.zeros_like(x))
        torch.testing.assert_close(lpn.potential(x) - psi0, c / 2 * (x**2).sum(dims))
        torch.testing.assert_close(lpn(x), c * x)
        torch.testing.assert_close(lpn.inverse(x), x / c, atol=1e-9, rtol=0)
        r = lpn.regularizer(x) + psi0  # the constant φ(0) shifts R by −φ(0)
        torch.testing.assert_close(r, 0.5 * (1 / c - 1) * (x**2).sum(dims), atol=1e-9, rtol=0)


def test_inverse_batched_is_fast_and_reports_status():
    lpn = LPN(ImageLPNConfig(in_channels=1, hidden=8, num_layers=2))
    x = torch.rand(8, 1, 12, 12)
    res = lpn.invert(x, max_iter=2)
    assert res.n_iter <= 2 and res.status.shape == (8,)
    assert set(res.status.tolist()) <= {0, 1, 2}
    with pytest.raises(RuntimeError, match="did not converge"):
        lpn.invert(x, max_iter=1, throw=True)
    full = lpn.invert(x)
    assert bool(full.converged.all())
    assert full.grad_norm.shape == (8,)


def test_forward_does_not_touch_the_callers_tensor_and_graph_follows_grad_mode():
    lpn = _image()
    x = _rand((1, 7, 6), 2)
    out = lpn(x)
    assert not x.requires_grad and x.grad is None
    assert out.requires_grad  # grad mode on: differentiable w.r.t. the parameters
    with torch.no_grad():
        out = lpn(x)
    assert not out.requires_grad
    out = lpn(x, create_graph=False)
    assert not out.requires_grad
    lpn.requires_grad_(False)  # frozen weights, plain input: nothing to differentiate
    assert not lpn(x).requires_grad
    assert lpn(x.clone().requires_grad_(True)).requires_grad
    lpn.requires_grad_(True)
    # differentiable w.r.t. x for unrolled algorithms (float64 gradcheck, small input)
    small = _vector(dim=2)
    xx = _rand((2,), 2).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: small(v), (xx,))


# ------------------------------------------------------------------------------- image sizes
def test_image_model_any_size_and_local():
    lpn = _image(channels=2)
    _perturb_(lpn, 0.3)
    lpn.project_()
    cfg = lpn.config
    for h, w in [(5, 5), (16, 9), (33, 20)]:
        x = torch.rand(2, 2, h, w, dtype=F64)
        with torch.no_grad():
            assert lpn(x).shape == x.shape
            assert lpn.potential(x).shape == (2,)
    # fully convolutional: away from the borders f only sees receptive_field pixels
    x = torch.rand(1, 2, 40, 40, dtype=F64)
    reach = 2 * cfg.reach
    assert cfg.receptive_field == 2 * reach + 1
    with torch.no_grad():
        full = lpn(x)
        crop = lpn(x[..., 10:30, 12:32])
    m = reach
    torch.testing.assert_close(crop[..., m:-m, m:-m], full[..., 10 + m:30 - m, 12 + m:32 - m])
    # extra leading batch dimensions
    xb = torch.rand(3, 2, 2, 6, 6, dtype=F64)
    with torch.no_grad():
        assert lpn(xb).shape == xb.shape and lpn.potential(xb).shape == (3, 2)


@pytest.mark.parametrize(("patch", "stride", "size"), [(8, 4, (13, 21)), (6, 2, (7, 7)),
                                                       (4, 4, (9, 10))])
def test_patch_prox_is_the_gradient_of_the_patch_potential(patch, stride, size):
    lpn = _image(alpha=0.1)
    _perturb_(lpn, 0.3)
    plpn = PatchLPN(lpn, patch, stride, max_batch=5)  # several chunks
    x = torch.rand(2, 1, *size, dtype=F64)
    with torch.no_grad():
        avg = plpn(x)
    grad = plpn.potential_gradient(x, create_graph=False)
    torch.testing.assert_close(avg, grad, atol=1e-10, rtol=1e-10)
    # the potential is a convex function: the inverse and the regularizer work on it
    res = plpn.invert(avg, atol=1e-9, rtol=1e-9)
    assert bool(res.converged.all())
    torch.testing.assert_close(res.solution, x, atol=1e-6, rtol=0)


def test_patch_prox_covers_every_pixel_equally():
    """With ψ = α‖·‖² the patch average must be exactly 2αx (m² patches per pixel)."""
    cfg = ImageLPNConfig(in_channels=1, hidden=4, num_layers=1, alpha=0.3)
    lpn = LPN(cfg).to(F64)
    with torch.no_grad():
        for p in lpn.parameters():
            p.zero_()
    x = torch.rand(1, 1, 11, 17, dtype=F64)
    with torch.no_grad():
        for patch, stride in [(8, 4), (6, 3), (9, 3), (5, 5)]:
            torch.testing.assert_close(PatchLPN(lpn, patch, stride)(x), 0.6 * x)


def test_patch_prox_differentiable_with_graph():
    lpn = _image()
    plpn = PatchLPN(lpn, 4, 2)
    x = torch.rand(1, 1, 6, 6, dtype=F64, requires_grad=True)
    out = plpn(x)
    assert out.requires_grad
    (g,) = torch.autograd.grad(out.sum(), x)
    assert torch.isfinite(g).all()


# ------------------------------------------------------------------------------- loss
def test_proximal_matching_loss_values():
    xh = torch.tensor([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]])
    x = torch.zeros(3, 2)
    gamma = 2.0
    r = torch.tensor([5.0, 0.0, 1.0])
    expected = (1 - torch.exp(-(r / gamma) ** 2)).mean()
    torch.testing.assert_close(ProximalMatchingLoss(gamma)(xh, x), expected)
    # RMS scale: gamma = gamma_rms * sqrt(n)
    loss_rms = ProximalMatchingLoss(gamma_rms=gamma / math.sqrt(2))
    torch.testing.assert_close(loss_rms(xh, x), expected)
    assert loss_rms.gamma_for(2) == pytest.approx(gamma)
    torch.testing.assert_close(ProximalMatchingLoss(1.0).distances(xh, x), r)
    # zero residual: finite gradient (no sqrt at 0)
    xh2 = torch.zeros(2, 3, requires_grad=True)
    ProximalMatchingLoss(0.5)(xh2, torch.zeros(2, 3)).backward()
    assert torch.isfinite(xh2.grad).all()


def test_normalized_proximal_matching_loss_scale_and_gradient():
    torch.manual_seed(0)
    x = torch.rand(5, 1, 6, 6, dtype=torch.float64)
    n = 36
    for g_rms in (0.24, 0.06):
        raw = ProximalMatchingLoss(gamma_rms=g_rms)
        norm = ProximalMatchingLoss(gamma_rms=g_rms, normalized=True)
        xh = (x + 0.03 * torch.randn_like(x)).requires_grad_(True)
        # the same function up to the constant γ²/n = γ_rms² (hence the same minimiser)
        torch.testing.assert_close(norm(xh, x), g_rms**2 * raw(xh, x))
        # its gradient is exp(-mse/γ_rms²) times the gradient of the per-sample MSE
        (g,) = torch.autograd.grad(norm(xh, x), xh)
        mse = (xh - x).detach().pow(2).flatten(1).mean(1)
        w = torch.exp(-mse / g_rms**2).reshape(-1, 1, 1, 1)
        torch.testing.assert_close(g, w * 2 * (xh.detach() - x) / (n * x.shape[0]))
    # the raw loss's gradient grows by ~4 when γ halves at a fixed residual; the normalized one
    # by less than 1 (the exponential weight only shrinks)
    xh = (x + 0.01 * torch.randn_like(x)).requires_grad_(True)

    def gnorm(**kw):
        (g,) = torch.autograd.grad(ProximalMatchingLoss(**kw)(xh, x), xh)
        return float(g.norm())

    assert 3.5 < gnorm(gamma_rms=0.06) / gnorm(gamma_rms=0.12) <= 4.0
    assert gnorm(gamma_rms=0.06, normalized=True) / gnorm(gamma_rms=0.12,
                                                          normalized=True) <= 1.0
    # the summed scale normalizes by γ²/n too
    torch.testing.assert_close(ProximalMatchingLoss(gamma=0.6, normalized=True)(xh, x),
                               0.01 * ProximalMatchingLoss(gamma_rms=0.1)(xh, x))
    assert "normalized=True" in repr(ProximalMatchingLoss(gamma=1.0, normalized=True))
    with pytest.raises(TypeError, match="normalized must be a bool"):
        ProximalMatchingLoss(gamma=1.0, normalized=1)
    with pytest.raises(ValueError, match="normalized only applies"):
        TrainPhase("l1", 10, 1e-3, normalized=True)
    ph = standard_phases(steps_l1=2, steps_pm=4, num_stages=2, normalized=True)
    assert [p.normalized for p in ph] == [False, True, True]
    assert ph[1].describe() == "pm(γ_rms=0.16, normalized)"
    assert ph[1].loss_fn().normalized


def test_schedule_and_standard_phases():
    assert proximal_matching_schedule(2.24, 4) == pytest.approx((17.92, 8.96, 4.48, 2.24))
    assert proximal_matching_schedule(0.16, 1) == (0.16,)
    phases = standard_phases(steps_l1=20, steps_pm=40, num_stages=4, gamma_min=1.5)
    assert [p.loss for p in phases] == ["l1", "pm", "pm", "pm", "pm"]
    assert [p.gamma for p in phases[1:]] == pytest.approx([12.0, 6.0, 3.0, 1.5])
    assert [p.steps for p in phases] == [20, 10, 10, 10, 10]
    assert phases[0].lr == 1e-3 and phases[1].lr == 1e-4
    default = standard_phases()
    assert default[-1].gamma_rms == pytest.approx(0.08)
    cfg = LPNTrainOptions(phases=phases)
    assert cfg.steps == 60 and cfg.phase_at(0) == 0 and cfg.phase_at(20) == 1
    assert cfg.phase_at(59) == 4


@pytest.mark.parametrize(("kwargs", "match"), [
    ({}, "exactly one"), ({"gamma": 1.0, "gamma_rms": 1.0}, "exactly one"),
    ({"gamma": -1.0}, "gamma must be"), ({"gamma_rms": float("nan")}, "gamma_rms must be"),
])
def test_loss_rejects_bad_gamma(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ProximalMatchingLoss(**kwargs)


def test_loss_and_schedule_reject_bad_input():
    loss = ProximalMatchingLoss(1.0)
    with pytest.raises(ValueError, match="shapes differ"):
        loss(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="batch dimension"):
        loss(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="num_stages"):
        proximal_matching_schedule(1.0, 0)
    with pytest.raises(ValueError, match="divisible"):
        standard_phases(steps_pm=10, num_stages=4)
    with pytest.raises(ValueError, match="at most one"):
        standard_phases(gamma_min=1.0, gamma_min_rms=0.1)
    with pytest.raises(ValueError, match="exactly one of gamma"):
        TrainPhase("pm", 10, 1e-3)
    with pytest.raises(ValueError, match="only apply"):
        TrainPhase("l1", 10, 1e-3, gamma=1.0)
    with pytest.raises(ValueError, match="loss must be one of"):
        TrainPhase("huber", 10, 1e-3)
    with pytest.raises(ValueError, match="non-empty tuple"):
        LPNTrainOptions(phases=())
    with pytest.raises(ValueError, match="batch_size"):
        LPNTrainOptions(batch_size=0)


# ------------------------------------------------------------------------------- bad input
def test_bad_input_raises_clear_errors():
    lpn = LPN(ImageLPNConfig(in_channels=3, hidden=4, num_layers=1))
    with pytest.raises(ValueError, match="3, H, W.*got 1 channels"):
        lpn(torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        lpn(torch.rand(8, 8))
    bad = torch.rand(1, 3, 8, 8)
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        lpn(bad)
    with pytest.raises(ValueError, match="NaN"):
        lpn.regularizer(bad)
    with pytest.raises(ValueError, match="is on meta but the model is on cpu"):
        lpn(torch.empty(1, 3, 8, 8, device="meta"))
    with pytest.raises(TypeError, match="floating-point"):
        lpn(torch.ones(1, 3, 8, 8, dtype=torch.int64))
    with pytest.raises(TypeError, match="dtype torch.float64 but the model has torch.float32"):
        lpn.potential(torch.rand(1, 3, 8, 8, dtype=F64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        lpn([[1.0]])
    vec = LPN(VectorLPNConfig(dim=4, hidden=4, num_layers=1))
    with pytest.raises(ValueError, match=r"\(\*batch, 4\), got last dimension 3"):
        vec(torch.rand(5, 3))
    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match="max_iter must be an int >= 1"):
        lpn.invert(x, max_iter=0)
    with pytest.raises(ValueError, match="atol and rtol cannot both be 0"):
        lpn.invert(x, atol=0, rtol=0)
    with pytest.raises(ValueError, match="y0 must have the shape"):
        lpn.invert(x, y0=torch.rand(1, 3, 8, 8))
    with pytest.raises(TypeError, match="precomputed y"):
        lpn.regularizer(x, y=x, max_iter=3)


@pytest.mark.parametrize(("cls", "kwargs", "match"), [
    (ImageLPNConfig, {"kernel_size": 4}, "odd"),
    (ImageLPNConfig, {"in_channels": 0}, "in_channels"),
    (ImageLPNConfig, {"dilations": (1, 2)}, "dilations must be a tuple of 3"),
    (ImageLPNConfig, {"padding_mode": "mirror"}, "padding_mode"),
    (ImageLPNConfig, {"alpha": -1.0}, "alpha"),
    (VectorLPNConfig, {"beta": 0.0}, "beta must be > 0"),
    (VectorLPNConfig, {"dim": 1.5}, "dim must be an int"),
    (VectorLPNConfig, {"init_log_mean": math.nan}, "init_log_mean must be finite, got nan; the "
                                                   "log-mean of the initial"),
    (ImageLPNConfig, {"init_log_mean": -math.inf}, "init_log_mean must be finite, got -inf"),
])
def test_configs_reject_bad_values(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


@pytest.mark.parametrize("cls", [VectorLPNConfig, ImageLPNConfig])
@pytest.mark.parametrize("bad", ["-10", True])
def test_configs_reject_a_non_number_init_log_mean(cls, bad):
    with pytest.raises(TypeError, match="init_log_mean must be a real number"):
        cls(init_log_mean=bad)


def test_configs_and_wrappers_reject_bad_types():
    with pytest.raises(TypeError, match="VectorLPNConfig or an ImageLPNConfig"):
        LPN({"dim": 3})
    with pytest.raises(TypeError, match="image LPN"):
        PatchLPN(LPN(VectorLPNConfig()), 8)
    img = LPN(ImageLPNConfig(hidden=4, num_layers=1))
    with pytest.raises(ValueError, match="must divide"):
        PatchLPN(img, 8, 3)
    with pytest.raises(ValueError, match="patch_size must be an int >= 1"):
        PatchLPN(img, 0, 1)


def test_dilated_and_padded_variants_are_convex():
    cfg = ImageLPNConfig(in_channels=1, hidden=4, num_layers=2, dilations=(1, 2),
                         padding_mode="reflect", init_log_mean=None)
    assert cfg.reach == 3
    lpn = LPN(cfg).to(F64)
    _perturb_(lpn, 0.3)
    a, d = _rand((1, 9, 9)), _rand((1, 9, 9))
    t = torch.linspace(-2, 2, 41, dtype=F64)
    with torch.no_grad():
        vals = torch.stack([lpn.potential(a + ti * d) for ti in t])
    assert float((vals[2:] - 2 * vals[1:-1] + vals[:-2]).min()) >= -1e-9 * float(vals.abs().max())


# ------------------------------------------------------------------------------- training
def _tiny_train_setup():
    torch.manual_seed(3)
    lpn = LPN(ImageLPNConfig(in_channels=1, hidden=4, num_layers=2))
    data = torch.rand(20, 1, 8, 8)
    phases = (TrainPhase("l1", 3, 1e-2), TrainPhase("pm", 2, 1e-3, gamma_rms=0.5),
              TrainPhase("pm", 2, 1e-3, gamma=2.0))
    cfg = LPNTrainOptions(phases=phases, batch_size=4, sigma_noise=0.1, seed=5,
                         checkpoint_every=2, log_every=1)
    return lpn, data, cfg


def test_training_resume_equals_uninterrupted(tmp_path):
    lpn_a, data, cfg = _tiny_train_setup()
    init = {k: v.clone() for k, v in lpn_a.state_dict().items()}
    ends = []
    hist_a = train_lpn(lpn_a, data, cfg, progress=False,
                       on_phase_end=lambda k, m: ends.append(k))
    assert ends == [0, 1, 2] and hist_a.final_step == 7 and len(hist_a.loss) == 7
    assert all(math.isfinite(v) for v in hist_a.loss)
    assert all(bool((p >= 0).all()) for p in lpn_a.icnn.nonneg_parameters())

    lpn_b, _, _ = _tiny_train_setup()
    lpn_b.load_state_dict(init)
    ckpt = tmp_path / "run" / "lpn.pt"
    hist_1 = train_lpn(lpn_b, data, cfg, checkpoint=ckpt, stop_after=4, progress=False)
    assert hist_1.final_step == 4 and ckpt.exists()
    assert not list(ckpt.parent.glob("*.tmp"))  # atomic write left no temporary file
    lpn_c, _, _ = _tiny_train_setup()  # fresh process-like start: new model, same config
    hist_2 = train_lpn(lpn_c, data, cfg, checkpoint=ckpt, progress=False)
    assert hist_2.final_step == 7
    for k, v in lpn_a.state_dict().items():  # bitwise on the CPU
        assert torch.equal(lpn_c.state_dict()[k], v), k
    assert hist_2.loss == hist_a.loss
    # a finished run resumes to a no-op
    assert train_lpn(lpn_c, data, cfg, checkpoint=ckpt, progress=False).final_step == 7


def _adam_steps(path) -> set[float]:
    from sciml_inverse import load_checkpoint

    state = load_checkpoint(path, kind="fit").state["optimizer"]["state"]
    return {float(v["step"]) for v in state.values()}


def test_training_reset_optimizer_restarts_adam_and_resumes_exactly(tmp_path):
    lpn_a, data, cfg = _tiny_train_setup()  # phases of 3, 2 and 2 steps
    init = {k: v.clone() for k, v in lpn_a.state_dict().items()}
    reset = LPNTrainOptions.from_dict({**cfg.to_dict(), "reset_optimizer": True})
    train_lpn(lpn_a, data, reset, checkpoint=tmp_path / "a.pt", progress=False)
    assert _adam_steps(tmp_path / "a.pt") == {2.0}  # Adam restarted at the last phase
    lpn_k, _, _ = _tiny_train_setup()
    lpn_k.load_state_dict(init)
    train_lpn(lpn_k, data, cfg, checkpoint=tmp_path / "k.pt", progress=False)
    assert _adam_steps(tmp_path / "k.pt") == {7.0}  # kept across phases (reference)
    assert not all(torch.equal(lpn_k.state_dict()[k], v) for k, v in
                   lpn_a.state_dict().items())
    # interrupted one step into the second phase and resumed: bitwise the same run
    lpn_b, _, _ = _tiny_train_setup()
    lpn_b.load_state_dict(init)
    ckpt = tmp_path / "b.pt"
    train_lpn(lpn_b, data, reset, checkpoint=ckpt, stop_after=4, progress=False)
    assert _adam_steps(ckpt) == {1.0}
    lpn_c, _, _ = _tiny_train_setup()
    train_lpn(lpn_c, data, reset, checkpoint=ckpt, progress=False)
    for k, v in lpn_a.state_dict().items():
        assert torch.equal(lpn_c.state_dict()[k], v), k
    with pytest.raises(ValueError, match="disagrees"):  # the flag is part of the run
        train_lpn(lpn_c, data, cfg, checkpoint=ckpt, progress=False)
    with pytest.raises(TypeError, match="reset_optimizer"):
        LPNTrainOptions(phases=cfg.phases, reset_optimizer=1)


def test_training_grad_clip_is_applied():
    """With Adam, a gradient clipped to 1e-30 gives updates ~1e-22 (eps = 1e-8): no change."""
    lpn, data, cfg = _tiny_train_setup()
    lpn.project_()
    init = {k: v.clone() for k, v in lpn.state_dict().items()}
    clipped = LPNTrainOptions.from_dict({**cfg.to_dict(), "grad_clip": 1e-30})
    assert clipped.grad_clip == 1e-30
    train_lpn(lpn, data, clipped, progress=False)
    assert all(torch.allclose(lpn.state_dict()[k], v, atol=1e-12) for k, v in init.items())
    lpn2, _, _ = _tiny_train_setup()
    lpn2.load_state_dict(init)
    train_lpn(lpn2, data, cfg, progress=False)
    assert not all(torch.allclose(lpn2.state_dict()[k], v, atol=1e-6) for k, v in init.items())
    with pytest.raises(ValueError, match="grad_clip"):
        LPNTrainOptions(phases=cfg.phases, grad_clip=0.0)


def test_training_with_callable_data_and_checkpoint_mismatch(tmp_path):
    lpn, _, cfg = _tiny_train_setup()

    def sampler(batch_size, generator):
        return torch.rand(batch_size, 1, 6, 6, generator=generator)

    ckpt = tmp_path / "lpn.pt"
    train_lpn(lpn, sampler, cfg, checkpoint=ckpt, progress=False)
    # load_lpn rebuilds the model from the stored configuration
    loaded = load_lpn(ckpt)
    assert loaded.config == lpn.config
    x = torch.rand(2, 1, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), lpn(x))
    other = LPN(ImageLPNConfig(in_channels=1, hidden=5, num_layers=2))
    with pytest.raises(ValueError, match="was saved for ImageLPNConfig.*hidden=4"):
        load_lpn(ckpt, other)
    with pytest.raises(ValueError, match="was saved for"):
        train_lpn(other, sampler, cfg, checkpoint=ckpt, progress=False)
    changed = LPNTrainOptions(phases=cfg.phases, batch_size=8, sigma_noise=0.1, seed=5)
    with pytest.raises(ValueError, match="disagrees with"):
        train_lpn(lpn, sampler, changed, checkpoint=ckpt, progress=False)
    weights = save_lpn(lpn, tmp_path / "weights.pt")
    with pytest.raises(ValueError, match="weights only"):
        train_lpn(lpn, sampler, cfg, checkpoint=weights, progress=False)
    junk = tmp_path / "junk.pt"
    torch.save({"a": 1}, junk)
    with pytest.raises(ValueError, match="not an LPN checkpoint"):
        load_lpn(junk)
    with pytest.raises(FileNotFoundError, match="no LPN checkpoint"):
        load_lpn(tmp_path / "missing.pt")


def test_training_rejects_bad_data():
    lpn, data, cfg = _tiny_train_setup()
    with pytest.raises(ValueError, match="got 3 channels"):
        train_lpn(lpn, torch.rand(5, 3, 8, 8), cfg, progress=False)
    with pytest.raises(ValueError, match="sample dimensions"):
        train_lpn(lpn, torch.rand(5, 8, 8), cfg, progress=False)
    bad = data.clone()
    bad[0, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="NaN or infinite"):
        train_lpn(lpn, bad, cfg, progress=False)
    with pytest.raises(TypeError, match="data must be a tensor"):
        train_lpn(lpn, [1, 2, 3], cfg, progress=False)
    with pytest.raises(ValueError, match="must return a tensor of shape"):
        train_lpn(lpn, lambda b, g: torch.rand(b + 1, 1, 8, 8), cfg, progress=False)
    with pytest.raises(TypeError, match="trains an LPN"):
        train_lpn(PatchLPN(lpn, 4), data, cfg, progress=False)
    with pytest.raises(TypeError, match="LPNTrainOptions"):
        train_lpn(lpn, data, {"batch_size": 3}, progress=False)
    with pytest.raises(ValueError, match="stop_after"):
        train_lpn(lpn, data, cfg, stop_after=0, progress=False)


def test_training_nan_loss_is_reported():
    lpn, data, _ = _tiny_train_setup()
    cfg = LPNTrainOptions(phases=(TrainPhase("l2", 2, 1e30),), batch_size=2, log_every=1)
    with pytest.raises(FloatingPointError, match="loss became"):
        train_lpn(lpn, data * 1e20, cfg, progress=False)


# ------------------------------------------------------------------------------- devices
def test_device_consistency(device):
    """Same results on every device: prox, inverse, regularizer, patch prox and training."""
    cpu = _image(alpha=0.1)
    _perturb_(cpu, 0.3)
    cpu.project_()
    dev = _image(alpha=0.1).to(device)
    dev.load_state_dict(cpu.state_dict())
    x = torch.rand(3, 1, 9, 11, dtype=F64)
    xd = x.to(device)
    with torch.no_grad():
        torch.testing.assert_close(dev(xd).cpu(), cpu(x))
        torch.testing.assert_close(PatchLPN(dev, 4, 2)(xd).cpu(), PatchLPN(cpu, 4, 2)(x))
    res = dev.invert(xd, atol=1e-9, rtol=1e-9)
    assert res.solution.device.type == device.type and bool(res.converged.all())
    with torch.no_grad():
        torch.testing.assert_close(dev.regularizer(xd, atol=1e-10, rtol=1e-10).cpu(),
                                   cpu.regularizer(x, atol=1e-10, rtol=1e-10), atol=1e-6, rtol=0)
    # training: data on the CPU, model on the device; the data stream is device-independent
    lpn_a, data, cfg = _tiny_train_setup()
    lpn_b, _, _ = _tiny_train_setup()
    lpn_b.load_state_dict(lpn_a.state_dict())
    train_lpn(lpn_a, data, cfg, progress=False)
    train_lpn(lpn_b, data, cfg, device=device, progress=False)
    assert next(lpn_b.parameters()).device.type == device.type
    for k, v in lpn_a.state_dict().items():
        torch.testing.assert_close(lpn_b.state_dict()[k].cpu(), v, atol=1e-4, rtol=1e-4)


def test_inverse_chunking_gives_the_same_result():
    lpn = _image(alpha=0.1)
    _perturb_(lpn, 0.3)
    x = torch.rand(5, 1, 6, 7, dtype=F64)
    a = lpn.invert(x, atol=1e-10, rtol=1e-10, chunk_size=2)
    b = lpn.invert(x, atol=1e-10, rtol=1e-10, chunk_size=5)
    torch.testing.assert_close(a.solution, b.solution, atol=1e-9, rtol=0)
    with pytest.raises(ValueError, match="chunk_size must be an int >= 1"):
        lpn.invert(x, chunk_size=0)


def test_deprecated_config_names_are_aliases():
    """Naming scheme: training settings are ...Options; the former names stay as aliases."""
    import inverse.lpn
    import inverse.vble

    with pytest.warns(DeprecationWarning, match=r"inverse.lpn.LPNTrainConfig is deprecated, "
                                                r"use inverse.lpn.LPNTrainOptions"):
        assert inverse.lpn.LPNTrainConfig is inverse.lpn.LPNTrainOptions
    with pytest.warns(DeprecationWarning, match=r"inverse.vble.TrainConfig is deprecated"):
        from inverse.vble import TrainConfig
    assert TrainConfig is inverse.vble.TrainOptions
    assert "TrainConfig" not in inverse.vble.__all__
    assert "LPNTrainConfig" not in inverse.lpn.__all__
    with pytest.raises(AttributeError, match="has no attribute 'TrainConfg'"):
        inverse.vble.TrainConfg  # noqa: B018
