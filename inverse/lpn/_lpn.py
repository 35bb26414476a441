"""Learned proximal networks: the prox ``f = ∇ψ``, its inverse and the implied regularizer."""

from __future__ import annotations

import abc
import dataclasses

import torch
from torch import Tensor, nn

from sciml_inverse import check_int, check_number

from ._icnn import ConvICNN, ImageLPNConfig, VectorICNN, VectorLPNConfig, build_icnn

__all__ = ["AbstractLPN", "LPN", "InversionResult"]

#: Status codes of :class:`InversionResult`.
CONVERGED, MAX_ITER, LINE_SEARCH_FAILED = 0, 1, 2


@dataclasses.dataclass(frozen=True)
class InversionResult:
    """Result of :meth:`AbstractLPN.invert`.

    Attributes
    ----------
    solution : Tensor, shape ``(*batch, *event)``
        ``y ≈ f⁻¹(x)`` (detached).
    n_iter : int
        Iterations run (the slowest sample's).
    grad_norm : Tensor, shape ``batch``
        Final :math:`\\|f(y) - x\\|_2` per sample (the gradient of the objective).
    converged : Tensor of bool, shape ``batch``
        ``grad_norm <= max(atol, rtol * ||x||)``.
    status : Tensor of int, shape ``batch``
        0 converged, 1 iteration limit reached, 2 line search failed (no progress possible at
        the working precision; ``grad_norm`` says how close it got).
    n_evals : int
        Batched evaluations of ``(ψ, ∇ψ)`` (each on the still-active samples only).
    """

    solution: Tensor
    n_iter: int
    grad_norm: Tensor
    converged: Tensor
    status: Tensor
    n_evals: int


def _default_tol(dtype: torch.dtype) -> float:
    return 1e-10 if dtype == torch.float64 else 1e-5


class AbstractLPN(nn.Module, abc.ABC):
    """A proximal operator given as the gradient of a convex potential ψ.

    Subclasses define ``_potential`` (ψ per sample on a flat batch), :attr:`event_ndim` and
    ``_check_event`` (shape checks), and may override :meth:`forward` with a cheaper way of
    computing ``∇ψ`` (as :class:`PatchLPN` does).
    Everything else (the inverse prox, the regularizer) is written once here against ψ and f.

    Mathematics (Fang, Buchanan & Sulam 2024; Gribonval & Nikolova 2020): with ψ convex,
    :math:`f = \\nabla\\psi` is the proximal operator of
    :math:`R = \\psi^* - \\tfrac12\\|\\cdot\\|^2`; for :math:`x = f(y)`,

    .. math::

        R(x) = \\langle x, y\\rangle - \\tfrac12\\|x\\|^2 - \\psi(y), \\qquad
        y = f^{-1}(x) = \\arg\\min_y\\ \\psi(y) - \\langle x, y\\rangle,

    and :math:`\\nabla R(x) = f^{-1}(x) - x`.
    """

    # ----------------------------------------------------------------- to be defined
    @abc.abstractmethod
    def _potential(self, x: Tensor) -> Tensor:
        """ψ per sample on a flat, unchecked batch: ``(B, *event) -> (B,)``."""

    @property
    @abc.abstractmethod
    def event_ndim(self) -> int:
        """Number of trailing (per-sample) dimensions: 1 for vectors, 3 for ``(C, H, W)``."""

    def potential(self, x: Tensor) -> Tensor:
        """ψ(x) per sample.

        Parameters
        ----------
        x : Tensor, shape ``(*batch, *event)``

        Returns
        -------
        Tensor, shape ``batch``
        """
        self._check_input(x, "potential")
        xf, batch = self._flat_batch(x)
        return self._potential(xf).reshape(batch)

    @abc.abstractmethod
    def _check_event(self, shape: tuple[int, ...], what: str) -> None:
        """Raise ``ValueError`` if ``shape`` (the per-sample shape) is not accepted."""

    def project_(self) -> None:
        """Project the constrained parameters onto their feasible set, in place (default: none)."""

    # ----------------------------------------------------------------- checks
    def _param_ref(self) -> Tensor | None:
        for p in self.parameters():
            return p
        for b in self.buffers():
            return b
        return None

    def _check_input(self, x: Tensor, what: str) -> None:
        name = f"{type(self).__name__}.{what}"
        if not isinstance(x, Tensor):
            raise TypeError(f"{name} expects a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"{name} expects a real floating-point tensor, got dtype {x.dtype}")
        nd = self.event_ndim
        if x.ndim < nd:
            raise ValueError(f"{name} expects a tensor with at least {nd} dimensions "
                             f"(*batch, *event), got shape {tuple(x.shape)}")
        self._check_event(tuple(x.shape[x.ndim - nd:]), name)
        ref = self._param_ref()
        if ref is not None:
            if x.device != ref.device:
                raise ValueError(f"{name}: the input is on {x.device} but the model is on "
                                 f"{ref.device}; move one of them (e.g. model.to(x.device))")
            if x.dtype != ref.dtype:
                raise TypeError(f"{name}: the input has dtype {x.dtype} but the model has "
                                f"{ref.dtype}; convert one of them (e.g. model.to(x.dtype))")
        if x.device.type != "meta" and not bool(torch.isfinite(x).all()):
            raise ValueError(f"{name}: the input contains NaN or infinite values")

    def _flat_batch(self, x: Tensor) -> tuple[Tensor, tuple[int, ...]]:
        nd = self.event_ndim
        batch = tuple(x.shape[: x.ndim - nd])
        return x.reshape(-1, *x.shape[x.ndim - nd:]), batch

    # ----------------------------------------------------------------- the prox
    def potential_gradient(self, x: Tensor, *, create_graph: bool | None = None) -> Tensor:
        """``∇ψ(x)`` by automatic differentiation of :meth:`potential`.

        Works on a detached copy of ``x`` (the caller's tensor is never modified); when ``x``
        requires grad and a graph is wanted, the result is differentiable w.r.t. ``x`` too.

        Parameters
        ----------
        x : Tensor, shape ``(*batch, *event)``
        create_graph : bool or None
            Keep the graph of the gradient so the result can be differentiated again (w.r.t. the
            parameters for training, or ``x`` for unrolling). ``None`` (default): when grad mode
            is on and ``x`` or a parameter requires grad; under ``torch.no_grad()`` (or with
            frozen parameters and a plain input) the result is detached.

        Returns
        -------
        Tensor, same shape as ``x``.
        """
        self._check_input(x, "forward")
        return self._grad(x, create_graph)

    def _auto_create_graph(self, x: Tensor) -> bool:
        """Keep a graph iff grad mode is on and something (x or a parameter) requires grad."""
        return torch.is_grad_enabled() and (
            x.requires_grad or any(p.requires_grad for p in self.parameters()))

    def _grad(self, x: Tensor, create_graph: bool | None) -> Tensor:
        if create_graph is None:
            create_graph = self._auto_create_graph(x)
        with torch.enable_grad():
            xi = x if (create_graph and x.requires_grad) else x.detach().requires_grad_(True)
            psi = self._potential(xi.reshape(-1, *x.shape[x.ndim - self.event_ndim:])).sum()
            (g,) = torch.autograd.grad(psi, xi, create_graph=create_graph)
        return g if create_graph else g.detach()

    def forward(self, x: Tensor, *, create_graph: bool | None = None) -> Tensor:
        """The prox :math:`f(x) = \\nabla\\psi(x)`; see :meth:`potential_gradient`.

        Raises
        ------
        TypeError
            Not a floating tensor, or a dtype different from the model's.
        ValueError
            Wrong shape or channel count, another device than the model's, NaN/inf values.
        """
        return self.potential_gradient(x, create_graph=create_graph)

    # ----------------------------------------------------------------- inverse and R
    def _psi_and_grad(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """``(ψ(y), ∇ψ(y))`` for a flat batch ``y`` (no graph); subclasses may do it cheaper."""
        with torch.enable_grad():
            yi = y.detach().requires_grad_(True)
            psi = self._potential(yi)
            (g,) = torch.autograd.grad(psi.sum(), yi)
        return psi.detach(), g

    def _value_and_grad(self, y: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(ψ(y) − <x, y>, f(y) − x)`` per sample for flat-batched ``y, x`` (no graph)."""
        psi, g = self._psi_and_grad(y)
        dims = tuple(range(1, y.ndim))
        return psi - (x * y).sum(dim=dims), g - x

    def invert(self, x: Tensor, *, atol: float | None = None, rtol: float | None = None,
               max_iter: int = 500, history_size: int = 10, y0: Tensor | None = None,
               chunk_size: int | None = None, throw: bool = False) -> InversionResult:
        """Invert the prox, :math:`y = f^{-1}(x)`, by batched convex minimization.

        Solves :math:`\\min_y \\psi(y) - \\langle x, y\\rangle` (gradient :math:`f(y) - x`) for
        all samples at once with L-BFGS: each sample has its own curvature history, its own
        backtracking line search (Armijo, or the approximate Wolfe condition of Hager & Zhang
        2005 that stays reliable when float32 values stop resolving the decrease), and stops on
        its own when :math:`\\|f(y) - x\\|_2 \\le \\max(\\mathrm{atol},
        \\mathrm{rtol}\\,\\|x\\|_2)`; converged samples are dropped from later evaluations. The
        start is ``y0 = x`` (a prox is close to the identity for mild denoising). With α > 0 the
        objective is strongly convex and the minimizer unique.

        Parameters
        ----------
        x : Tensor, shape ``(*batch, *event)``
        atol, rtol : float, optional
            Tolerances on the gradient norm; default 1e-5 each for float32, 1e-10 for float64.
        max_iter : int
            Iteration limit per sample.
        history_size : int
            L-BFGS memory.
        y0 : Tensor, optional
            Starting point (default ``x``).
        chunk_size : int, optional
            Samples per network evaluation. Default: all at once on accelerators; on the CPU,
            chunks of about 4096 input entries (large batches fall out of cache there and cost
            more per sample).
        throw : bool
            Raise ``RuntimeError`` if a sample did not converge (else report it in the result).

        Returns
        -------
        InversionResult

        Raises
        ------
        ValueError, TypeError
            Bad input (see :meth:`forward`) or bad options.
        RuntimeError
            With ``throw=True``, when some sample did not converge.

        References
        ----------
        Nocedal & Wright, *Numerical Optimization*, 2nd ed., Alg. 7.4 (two-loop recursion).
        Hager & Zhang, "A new conjugate gradient method with guaranteed descent and an efficient
        line search", SIAM J. Optim. 16 (2005).

        Examples
        --------
        >>> import torch
        >>> from inverse.lpn import LPN, VectorLPNConfig
        >>> _ = torch.manual_seed(0)
        >>> lpn = LPN(VectorLPNConfig(dim=3, hidden=8, num_layers=2, alpha=0.1)).double()
        >>> x = torch.randn(4, 3, dtype=torch.float64)
        >>> res = lpn.invert(lpn(x).detach())
        >>> bool(res.converged.all()), torch.allclose(res.solution, x, atol=1e-6)
        (True, True)
        """
        self._check_input(x, "invert")
        if y0 is not None:
            self._check_input(y0, "invert (y0)")
            if y0.shape != x.shape:
                raise ValueError(f"y0 must have the shape of x {tuple(x.shape)}, got "
                                 f"{tuple(y0.shape)}")
        atol = _default_tol(x.dtype) if atol is None else atol
        rtol = _default_tol(x.dtype) if rtol is None else rtol
        for name, v in (("atol", atol), ("rtol", rtol)):
            check_number(name, v, positive=False)
        if atol == 0 and rtol == 0:
            raise ValueError("atol and rtol cannot both be 0")
        for name, v in (("max_iter", max_iter), ("history_size", history_size),
                        ("chunk_size", 1 if chunk_size is None else chunk_size)):
            check_int(name, v, 1)
        xf, batch = self._flat_batch(x.detach())
        if chunk_size is None:
            per = max(1, xf[0].numel()) if xf.shape[0] else 1
            chunk_size = max(1, 4096 // per) if xf.device.type == "cpu" else max(1, xf.shape[0])
        start = xf if y0 is None else y0.detach().reshape(xf.shape)
        with torch.no_grad():
            y, n_iter, gnorm, conv, status, n_evals = _lbfgs(
                _chunked(self._value_and_grad, chunk_size), xf, start, atol, rtol, max_iter,
                history_size)
        if throw and not bool(conv.all()):
            bad = int((~conv).sum())
            raise RuntimeError(f"{type(self).__name__}.invert: {bad} of {conv.numel()} samples did "
                               f"not converge (max gradient norm {float(gnorm.max()):.3g}); raise "
                               f"max_iter, loosen atol/rtol, or use float64")
        return InversionResult(y.reshape(x.shape), n_iter, gnorm.reshape(batch),
                               conv.reshape(batch), status.reshape(batch), n_evals)

    def inverse(self, x: Tensor, **kwargs) -> Tensor:
        """``f⁻¹(x)``: the solution of :meth:`invert` (same keyword arguments), detached."""
        return self.invert(x, **kwargs).solution

    def regularizer(self, x: Tensor, *, y: Tensor | None = None, **kwargs) -> Tensor:
        """The regularizer :math:`R(x) = \\langle x, y\\rangle - \\tfrac12\\|x\\|^2 - \\psi(y)`.

        ``y = f⁻¹(x)`` is computed by :meth:`invert` (keyword arguments passed on) unless given.
        The result is differentiable: w.r.t. ``x`` it has the exact gradient ``y − x`` and
        w.r.t. the parameters ``−∂ψ(y)/∂θ`` (envelope theorem; ``y`` is treated as a constant).

        Parameters
        ----------
        x : Tensor, shape ``(*batch, *event)``
        y : Tensor, optional
            A precomputed ``f⁻¹(x)``.

        Returns
        -------
        Tensor, shape ``batch``

        Examples
        --------
        >>> import torch
        >>> from inverse.lpn import LPN, VectorLPNConfig
        >>> lpn = LPN(VectorLPNConfig(dim=2, hidden=8, num_layers=1, alpha=0.05))
        >>> lpn.regularizer(torch.zeros(5, 2)).shape
        torch.Size([5])
        """
        self._check_input(x, "regularizer")
        if y is None:
            y = self.invert(x, **kwargs).solution
        elif kwargs:
            raise TypeError(f"regularizer got inversion options {sorted(kwargs)} together with a "
                            f"precomputed y")
        else:
            self._check_input(y, "regularizer (y)")
            if y.shape != x.shape:
                raise ValueError(f"y must have the shape of x {tuple(x.shape)}, got "
                                 f"{tuple(y.shape)}")
        y = y.detach()
        nd = self.event_ndim
        dims = tuple(range(x.ndim - nd, x.ndim))
        batch = tuple(x.shape[: x.ndim - nd])
        psi = self._potential(y.reshape(-1, *y.shape[x.ndim - nd:])).reshape(batch)
        return (x * y).sum(dim=dims) - 0.5 * (x * x).sum(dim=dims) - psi


def _chunked(fn, chunk: int):
    """Apply ``fn(y, x) -> (values, grads)`` in chunks of ``chunk`` samples."""

    def wrapped(y: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        if y.shape[0] <= chunk:
            return fn(y, x)
        outs = [fn(y[i:i + chunk], x[i:i + chunk]) for i in range(0, y.shape[0], chunk)]
        return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])

    return wrapped


def _bdot(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).sum(dim=tuple(range(1, a.ndim)))


def _lbfgs(value_and_grad, x: Tensor, y0: Tensor, atol: float, rtol: float, max_iter: int,
           m: int, max_ls: int = 30, c1: float = 1e-4):
    """Batched L-BFGS with per-sample histories, line searches and stopping (see ``invert``)."""
    bsz = x.shape[0]
    ev = (1,) * (x.ndim - 1)
    y = y0.clone()
    val, g = value_and_grad(y, x)
    n_evals = 1
    gnorm = _bdot(g, g).sqrt()
    thresh = torch.clamp(rtol * _bdot(x, x).sqrt(), min=atol)
    status = torch.full((bsz,), MAX_ITER, dtype=torch.long, device=x.device)
    active = gnorm > thresh
    status[~active] = CONVERGED
    s_hist = x.new_zeros((bsz, m, *x.shape[1:]))
    y_hist = x.new_zeros((bsz, m, *x.shape[1:]))
    rho = x.new_zeros((bsz, m))
    eps = torch.finfo(x.dtype).eps
    n_iter = 0
    for it in range(1, max_iter + 1):
        idx = active.nonzero().squeeze(1)
        if idx.numel() == 0:
            break
        n_iter = it
        ga, sa, ya, ra = g[idx], s_hist[idx], y_hist[idx], rho[idx]
        # two-loop recursion (index 0 = newest pair; rho = 0 marks an empty slot)
        q = ga.clone()
        coef = []
        for j in range(m):
            a = ra[:, j] * _bdot(sa[:, j], q)
            q = q - a.view(-1, *ev) * ya[:, j]
            coef.append(a)
        yy = _bdot(ya[:, 0], ya[:, 0])
        sy = _bdot(sa[:, 0], ya[:, 0])
        h0 = torch.where(ra[:, 0] > 0, sy / torch.where(yy > 0, yy, torch.ones_like(yy)),
                         torch.ones_like(yy))
        r = h0.view(-1, *ev) * q
        for j in reversed(range(m)):
            b = ra[:, j] * _bdot(ya[:, j], r)
            r = r + (coef[j] - b).view(-1, *ev) * sa[:, j]
        d = -r
        slope = _bdot(ga, d)
        bad = ~(slope < 0)
        if bool(bad.any()):  # not a descent direction: restart with steepest descent
            d = torch.where(bad.view(-1, *ev), -ga, d)
            slope = torch.where(bad, -_bdot(ga, ga), slope)
            rho[idx[bad]] = 0
        # backtracking line search on the active samples
        ya0, va0, xa = y[idx], val[idx], x[idx]
        t = torch.ones_like(va0)
        acc = torch.zeros_like(va0, dtype=torch.bool)
        new_y, new_v, new_g = ya0.clone(), va0.clone(), ga.clone()
        tol_v = 10 * eps * (va0.abs() + _bdot(xa, ya0).abs() + 1)
        for _ in range(max_ls):
            pend = (~acc).nonzero().squeeze(1)
            if pend.numel() == 0:
                break
            yt = ya0[pend] + t[pend].view(-1, *ev) * d[pend]
            vt, gt = value_and_grad(yt, xa[pend])
            n_evals += 1
            dslope = _bdot(gt, d[pend])
            armijo = vt <= va0[pend] + c1 * t[pend] * slope[pend]
            approx_wolfe = (dslope <= (1 - 2 * c1) * -slope[pend]) & (
                vt <= va0[pend] + tol_v[pend])
            ok = armijo | approx_wolfe
            okp = pend[ok]
            new_y[okp], new_v[okp], new_g[okp] = yt[ok], vt[ok], gt[ok]
            acc[okp] = True
            t[pend[~ok]] *= 0.5
        failed = ~acc
        # curvature pairs
        s = new_y - ya0
        yv = new_g - ga
        sy = _bdot(s, yv)
        upd = acc & (sy > eps * _bdot(s, s).sqrt() * _bdot(yv, yv).sqrt())
        if bool(upd.any()):
            u = idx[upd]
            s_hist[u] = torch.cat([s[upd].unsqueeze(1), s_hist[u, :-1]], dim=1)
            y_hist[u] = torch.cat([yv[upd].unsqueeze(1), y_hist[u, :-1]], dim=1)
            rho[u] = torch.cat([(1 / sy[upd]).unsqueeze(1), rho[u, :-1]], dim=1)
        y[idx], val[idx], g[idx] = new_y, new_v, new_g
        gnorm[idx] = _bdot(new_g, new_g).sqrt()
        done = gnorm[idx] <= thresh[idx]
        status[idx[done]] = CONVERGED
        status[idx[failed & ~done]] = LINE_SEARCH_FAILED
        active[idx[done | failed]] = False
    converged = gnorm <= thresh
    return y, n_iter, gnorm, converged, status, n_evals


class LPN(AbstractLPN):
    """A learned proximal network: ``lpn(x) = ∇ψ(x)`` with ψ an input-convex network.

    Built from a frozen configuration (stored in checkpoints):
    :class:`VectorLPNConfig` (fully connected, inputs ``(*batch, dim)``) or
    :class:`ImageLPNConfig` (fully convolutional, inputs ``(*batch, C, H, W)`` of any size).

    ============================  ===============================================================
    ``lpn(x)``                    the prox :math:`f(x) = \\nabla\\psi(x)` (autograd on a
                                  detached copy; a graph only when grad mode is on and needed)
    ``lpn.potential(x)``          :math:`\\psi(x) = \\varphi_\\theta(x) + \\alpha\\|x\\|^2`
                                  per sample
    ``lpn.invert(x)``             batched L-BFGS for :math:`f^{-1}(x)`, with status
    ``lpn.inverse(x)``            :math:`f^{-1}(x)`
    ``lpn.regularizer(x)``        :math:`R(x) = \\langle x, y\\rangle - \\tfrac12\\|x\\|^2 -
                                  \\psi(y)`, :math:`y = f^{-1}(x)`
    ``lpn.project_()``            clamp the z-path weights to ≥ 0 in place
    ============================  ===============================================================

    The potential is convex for **any** parameter values (the forward pass uses the clamped
    z-path weights), and :meth:`project_` keeps the stored weights feasible (the training loop
    calls it after every optimizer step).

    Parameters
    ----------
    config : VectorLPNConfig or ImageLPNConfig

    Raises
    ------
    TypeError
        If ``config`` is not an LPN configuration.

    References
    ----------
    Z. Fang, S. Buchanan, J. Sulam, "What's in a Prior? Learned Proximal Networks for Inverse
    Problems", ICLR 2024, arXiv:2310.14344.

    Examples
    --------
    >>> import torch
    >>> from inverse.lpn import LPN, ImageLPNConfig
    >>> lpn = LPN(ImageLPNConfig(in_channels=1, hidden=8, num_layers=2))
    >>> with torch.no_grad():
    ...     lpn(torch.rand(2, 1, 20, 17)).shape
    torch.Size([2, 1, 20, 17])
    """

    def __init__(self, config: VectorLPNConfig | ImageLPNConfig) -> None:
        super().__init__()
        self.icnn: VectorICNN | ConvICNN = build_icnn(config)
        self.config = config

    @property
    def alpha(self) -> float:
        """The strong-convexity weight α (ψ += α‖x‖²)."""
        return self.config.alpha

    @property
    def event_ndim(self) -> int:
        return 1 if isinstance(self.config, VectorLPNConfig) else 3

    def _check_event(self, shape: tuple[int, ...], what: str) -> None:
        cfg = self.config
        if isinstance(cfg, VectorLPNConfig):
            if shape[0] != cfg.dim:
                raise ValueError(f"{what} expects vectors of shape (*batch, {cfg.dim}), got last "
                                 f"dimension {shape[0]}")
        elif shape[0] != cfg.in_channels:
            raise ValueError(f"{what} expects images of shape (*batch, {cfg.in_channels}, H, W), "
                             f"got {shape[0]} channels (shape (..., {', '.join(map(str, shape))}))")

    def _potential(self, x: Tensor) -> Tensor:
        """ψ(x) = φ_θ(x) + α‖x‖² on a flat batch ``(B, *event) -> (B,)``."""
        psi = self.icnn(x)
        if self.config.alpha:
            psi = psi + self.config.alpha * x.pow(2).sum(dim=tuple(range(1, x.ndim)))
        return psi

    def project_(self) -> None:
        """Clamp the z-path weights to ≥ 0 in place (idempotent)."""
        with torch.no_grad():
            for p in self.icnn.nonneg_parameters():
                p.clamp_(min=0.0)

    def extra_repr(self) -> str:
        n = sum(p.numel() for p in self.parameters())
        return f"config={self.config}, parameters={n}"


def num_parameters(model: nn.Module) -> int:
    """Number of scalar parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())

