"""Random coefficient fields for the Darcy problem: Gaussian random fields and their transforms.

All generators return fields at the nodes of the uniform ``grid x grid`` grid on ``[0, 1]^2``
(boundary nodes included), with the layout of :func:`sciml.pde.solve_darcy`: ``a[..., i, j]`` is
the value at ``(x_i, y_j) = (i h, j h)``, ``h = 1 / (grid - 1)``.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from sciml_inverse import check_int, check_real

__all__ = ["gaussian_random_field", "piecewise_field", "smooth_field"]

#: Length scale of the reference data: tau = 1 / length_scale = 3 (DGNO note, section 8).
DEFAULT_LENGTH_SCALE = 1.0 / 3.0
#: Smoothness exponent of the reference data.
DEFAULT_ALPHA = 2.0


def _check_common(n_samples: object, grid: object, seed: object) -> None:
    check_int("n_samples", n_samples, 1, hint="the number of fields to draw")
    check_int("grid", grid, 3, hint="nodes per side including the boundary, so that there is "
                                    "at least one interior node")
    check_int("seed", seed, 0, hint="fields are always seeded: pass a non-negative int")


def _check_positive(name: str, value: object) -> float:
    return check_real(name, value, positive=True)  # type: ignore[return-value]


def gaussian_random_field(
    n_samples: int,
    grid: int,
    *,
    seed: int,
    length_scale: float = DEFAULT_LENGTH_SCALE,
    alpha: float = DEFAULT_ALPHA,
) -> np.ndarray:
    r"""Sample zero-mean Gaussian random fields by a cosine (Neumann) spectral expansion.

    With :math:`\tau = 1/\ell` (``length_scale`` :math:`\ell`) and i.i.d. standard normal
    :math:`\xi_k`, the field is the inverse orthonormal 2-D DCT of

    .. math::

        L_k = s\,\tau^{\alpha-1}\,(\pi^2 |k|^2 + \tau^2)^{-\alpha/2}\,\xi_k,
        \qquad k \in \{0,\dots,s-1\}^2,\quad L_0 = 0,

    with :math:`s` = ``grid``. This is a truncated Karhunen-Loeve expansion of the Gaussian
    measure with covariance operator :math:`C = s^2\tau^{2\alpha-2}(-\Delta + \tau^2)^{-\alpha}`
    (Neumann boundary conditions on the unit square, constant mode removed, so the field has mean
    zero), the construction used for the FNO and DGNO Darcy benchmarks (:math:`\alpha = 2`,
    :math:`\tau = 3`). The DCT-II points :math:`(j + 1/2)/s` are identified with the grid nodes.
    A larger ``length_scale`` (smaller :math:`\tau`) gives larger blobs.

    Parameters
    ----------
    n_samples
        Number of fields ``B``.
    grid
        Nodes per side ``n`` (>= 3).
    seed
        Seed of the :class:`numpy.random.Generator` (PCG64). The noise is drawn in one call in
        C order, so the first ``m`` fields of ``n_samples > m`` equal the fields drawn with
        ``n_samples = m``.
    length_scale
        :math:`\ell = 1/\tau` > 0; default ``1/3`` (the reference data).
    alpha
        Smoothness exponent :math:`\alpha` > 0; default 2.

    Returns
    -------
    numpy.ndarray
        ``(B, n, n)`` float64 fields.

    Raises
    ------
    TypeError
        If ``n_samples``, ``grid`` or ``seed`` is not an int.
    ValueError
        If ``n_samples < 1``, ``grid < 3``, ``seed < 0`` or a parameter is not positive.

    References
    ----------
    Li et al., "Fourier Neural Operator for Parametric PDEs", ICLR 2021 (data generator);
    Zang & Koutsourelakis, arXiv 2502.06250 (DGNO), data section.
    """
    from scipy.fft import idctn

    _check_common(n_samples, grid, seed)
    tau = 1.0 / _check_positive("length_scale", length_scale)
    alpha = _check_positive("alpha", alpha)
    k = np.arange(grid, dtype=np.float64)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    coef = tau ** (alpha - 1.0) * (math.pi**2 * k2 + tau**2) ** (-alpha / 2.0)
    rng = np.random.default_rng(int(seed))
    xi = rng.standard_normal((int(n_samples), grid, grid))
    spectrum = grid * coef * xi
    spectrum[:, 0, 0] = 0.0
    return idctn(spectrum, axes=(1, 2), norm="ortho")


def piecewise_field(
    n_samples: int,
    grid: int,
    *,
    seed: int,
    length_scale: float = DEFAULT_LENGTH_SCALE,
    alpha: float = DEFAULT_ALPHA,
    values: tuple[float, float] = (5.0, 10.0),
    threshold: float = 0.0,
) -> np.ndarray:
    r"""Two-phase coefficient fields: a thresholded Gaussian random field.

    :math:`a = v_\text{high}` where :math:`g \ge` ``threshold`` and :math:`v_\text{low}`
    elsewhere, with ``values = (v_low, v_high)`` and :math:`g` from
    :func:`gaussian_random_field`. The default reproduces the DGNO piecewise-constant Darcy
    benchmark (:math:`a \in \{5, 10\}`, :math:`\tau = 3`, :math:`\alpha = 2`, threshold 0). A
    different ``length_scale`` or ``threshold`` gives an out-of-distribution set.

    Parameters
    ----------
    n_samples, grid, seed, length_scale, alpha
        As in :func:`gaussian_random_field`.
    values
        ``(v_low, v_high)``, both finite and positive.
    threshold
        Level of :math:`g` separating the phases (finite).

    Returns
    -------
    numpy.ndarray
        ``(B, n, n)`` float64 with values exactly in ``values``.

    Raises
    ------
    TypeError, ValueError
        As in :func:`gaussian_random_field`; ``ValueError`` also for non-positive ``values``, a
        ``values`` that is not a pair, or a non-finite ``threshold``.
    """
    try:
        low, high = (float(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"values must be a pair (v_low, v_high) of numbers, got {values!r}"
        ) from exc
    _check_positive("values[0]", low)
    _check_positive("values[1]", high)
    threshold = check_real("threshold", threshold,  # type: ignore[assignment]
                           hint="the level of the Gaussian field that separates the two phases")
    g = gaussian_random_field(
        n_samples, grid, seed=seed, length_scale=length_scale, alpha=alpha
    )
    return np.where(g >= threshold, high, low)


def smooth_field(
    n_samples: int,
    grid: int,
    *,
    seed: int,
    length_scale: float = DEFAULT_LENGTH_SCALE,
    alpha: float = DEFAULT_ALPHA,
    transform: Literal["exp", "tanh"] = "exp",
) -> np.ndarray:
    r"""Smooth positive coefficient fields: a pointwise transform of a Gaussian random field.

    * ``transform="exp"``: :math:`a = \exp(g)` (log-normal; the default),
    * ``transform="tanh"``: :math:`a = 3 + 2\tanh(g)`, so :math:`a \in (1, 5)`,

    with :math:`g` from :func:`gaussian_random_field`. The generator of the authors' smooth-Darcy
    data is not documented (see the DGNO reference note); these are the two candidates of the
    note's CPU plan. With the defaults :math:`g` has a pointwise standard deviation of about
    0.29 (measured over 2000 fields), so ``exp`` gives :math:`a` mostly in :math:`[0.4, 2.5]`.

    Parameters
    ----------
    n_samples, grid, seed, length_scale, alpha
        As in :func:`gaussian_random_field`.
    transform
        ``"exp"`` or ``"tanh"``.

    Returns
    -------
    numpy.ndarray
        ``(B, n, n)`` float64, strictly positive.

    Raises
    ------
    TypeError, ValueError
        As in :func:`gaussian_random_field`; ``ValueError`` for an unknown ``transform``.
    """
    if transform not in ("exp", "tanh"):
        raise ValueError(f"transform must be 'exp' or 'tanh', got {transform!r}")
    g = gaussian_random_field(
        n_samples, grid, seed=seed, length_scale=length_scale, alpha=alpha
    )
    if transform == "exp":
        return np.exp(g)
    return 3.0 + 2.0 * np.tanh(g)
