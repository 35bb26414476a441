"""Reference architectures, so that a trained operator can be rebuilt and loaded in one line.

A checkpoint stores weights, not code (:func:`~sciml.neural_operators.load` checks that the
model it fills has the saved architecture); :func:`darcy_dgno` builds the DGNO of
``examples/darcy_neural_operators.py`` (reference notes §1: Zang & Koutsourelakis 2025).
"""

from __future__ import annotations

import torch

from sciml_inverse import check_int

from ._base import SiLUId, SiLUSin, TanhSin
from ._dgno import DGNO, BernoulliLikelihood, GaussianLikelihood
from ._encoders import CNNEncoder, MLPEncoder
from ._multionet import MultiONet

__all__ = ["darcy_dgno"]

DARCY_CASES = ("piecewise", "smooth")


def _build_darcy_dgno(case: str, grid: int) -> DGNO:
    if case == "piecewise":
        enc = MLPEncoder(grid, (512, 256), 128, bounded=True)

        def dec() -> MultiONet:
            return MultiONet(2, 128, [100] * 5, [100] * 5, activation_trunk=TanhSin(),
                             activation_branch=TanhSin())

        a_dec = MultiONet(2, 128, [100] * 5, [100] * 5, activation_trunk=SiLUSin(),
                          activation_branch=SiLUId())
        return DGNO(enc, dec(), a_dec, BernoulliLikelihood(5.0, 10.0),
                    flux_decoders=(dec(), dec()))
    enc = CNNEncoder(grid, channels=(64, 64, 64), hidden=(128, 128), out_size=128, kernel=3,
                     bounded=True)

    def dec6(act_t, act_b) -> MultiONet:
        return MultiONet(2, 128, [100] * 6, [100] * 6, activation_trunk=act_t,
                         activation_branch=act_b)

    return DGNO(enc, dec6(TanhSin(), SiLUId()), dec6(SiLUSin(), SiLUId()), GaussianLikelihood())


def darcy_dgno(case: str, *, grid: int = 29, seed: int | None = None) -> DGNO:
    """The DGNO for Darcy flow on an ``grid × grid`` node grid, as trained by the examples.

    ``piecewise`` (two-phase ``a`` in {5, 10}): MLP encoder (512, 256) to β ∈ (−1, 1)^128,
    u- and flux decoders MultiONet [100]×5 (TanhSin), a-decoder [100]×5 (SiLUSin/SiLUId) with a
    Bernoulli likelihood (mixed weak form). ``smooth``: CNN encoder (64, 64, 64; 128, 128),
    u- and a-decoders MultiONet [100]×6, Gaussian likelihood (primal weak form).

    Parameters
    ----------
    case : {"piecewise", "smooth"}
    grid : int
        Nodes per side of the coefficient field (29 in the benchmarks).
    seed : int, optional
        Seed of the initial weights (the global generator is left as it was). ``None``: draw
        them from the global generator (as ``torch.manual_seed(s); darcy_dgno(case)``, which
        the example does).

    Returns
    -------
    DGNO
        Untrained; fill it with :func:`~sciml.neural_operators.load`.

    Raises
    ------
    ValueError
        Unknown ``case`` or ``grid`` < 5.

    Examples
    --------
    >>> from sciml.neural_operators import darcy_dgno
    >>> model = darcy_dgno("smooth", seed=0)
    >>> model.grid
    29
    """
    if case not in DARCY_CASES:
        raise ValueError(f"case must be one of {DARCY_CASES}, got {case!r}")
    check_int("grid", grid, 5, hint="nodes per side of the Darcy grid (29 by default)")
    if seed is None:
        return _build_darcy_dgno(case, grid)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _build_darcy_dgno(case, grid)
