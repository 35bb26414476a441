"""Proximal matching loss and its γ schedule."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from sciml_inverse import check_int, check_number

__all__ = ["ProximalMatchingLoss", "proximal_matching_schedule"]


def _positive(name: str, value: object) -> float:
    check_number(name, value)
    return float(value)  # type: ignore[arg-type]


class ProximalMatchingLoss(nn.Module):
    """Proximal matching loss :math:`\\mathbb E\\, m_\\gamma(\\|f(y) - x\\|_2)`.

    .. math::

        m_\\gamma(r) = 1 - \\exp\\big(-(r/\\gamma)^2\\big), \\qquad
        r_i = \\|\\hat x_i - x_i\\|_2 \\ \\text{(over all entries of sample } i),

    averaged over the batch. The normalising constant :math:`(\\pi\\gamma^2)^{-n/2}` of the paper
    is dropped, as in the reference code. As γ → 0 the minimiser of the expected loss tends to the
    MAP estimator, so a prox trained with it tends to :math:`\\mathrm{prox}_{-\\sigma^2 \\log p}`.

    γ can be given on two scales (exactly one):

    * ``gamma``: the *summed* scale of the reference code, compared with the Euclidean norm
      :math:`r_i` (the reference default is :math:`\\gamma = 0.08\\sqrt n`);
    * ``gamma_rms``: the *RMS* scale of the 2025 revision, compared with
      :math:`r_i/\\sqrt n`; equivalently :math:`\\gamma = \\gamma_{\\rm rms}\\sqrt n` with ``n``
      the number of entries per sample, so the same ``gamma_rms`` fits every image size.

    With ``normalized=True`` the loss is multiplied by :math:`\\gamma^2/n`
    (:math:`= \\gamma_{\\rm rms}^2`): the same minimiser, but a gradient whose scale does not
    depend on γ — near a perfect fit it is the gradient of the mean squared error,
    :math:`\\nabla = e^{-r^2/\\gamma^2}\\,\\nabla \\tfrac1n r^2`. Without it each halving of γ
    multiplies the gradient by about 4, which Adam's slowly adapting second-moment estimate
    (β₂ = 0.999, a memory of ~1000 steps) turns into a larger effective step right where the loss
    is flat beyond ~2γ (a step that throws the outputs out of the basin is not undone: see
    ``docs/guide/lpn.rst``, *Why the GPU run diverged*).

    Parameters
    ----------
    gamma : float, optional
        γ on the summed scale.
    gamma_rms : float, optional
        γ on the RMS scale.
    normalized : bool, default False
        Multiply by :math:`\\gamma^2/n` (a γ-independent gradient scale).

    Raises
    ------
    ValueError
        If neither or both of ``gamma``, ``gamma_rms`` are given, or one is not > 0; at call time
        if the two inputs differ in shape or have no batch dimension.

    References
    ----------
    Fang, Buchanan & Sulam, ICLR 2024, arXiv:2310.14344, eq. (3.5).

    Examples
    --------
    >>> import torch
    >>> loss = ProximalMatchingLoss(gamma=1.0)
    >>> x = torch.zeros(2, 4)
    >>> xh = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0]])
    >>> round(float(loss(xh, x)), 6)  # (1 - e^{-1} + 0) / 2
    0.31606
    >>> ProximalMatchingLoss(gamma_rms=0.5).gamma_for(16)
    2.0
    """

    def __init__(self, gamma: float | None = None, *, gamma_rms: float | None = None,
                 normalized: bool = False) -> None:
        super().__init__()
        if (gamma is None) == (gamma_rms is None):
            raise ValueError(f"give exactly one of gamma (summed scale) and gamma_rms (RMS scale), "
                             f"got gamma={gamma!r}, gamma_rms={gamma_rms!r}")
        self.gamma = None if gamma is None else _positive("gamma", gamma)
        self.gamma_rms = None if gamma_rms is None else _positive("gamma_rms", gamma_rms)
        if not isinstance(normalized, bool):
            raise TypeError(f"normalized must be a bool, got {type(normalized).__name__}")
        self.normalized = normalized

    def gamma_for(self, n: int) -> float:
        """γ on the summed scale for samples of ``n`` entries."""
        if self.gamma is not None:
            return self.gamma
        return self.gamma_rms * math.sqrt(n)  # type: ignore[operator]

    def distances(self, x_hat: Tensor, x: Tensor) -> Tensor:
        """Per-sample Euclidean distances ``(B,)`` over all non-batch dimensions."""
        return self._sq_distances(x_hat, x).sqrt()

    def _sq_distances(self, x_hat: Tensor, x: Tensor) -> Tensor:
        if not isinstance(x_hat, Tensor) or not isinstance(x, Tensor):
            raise TypeError("ProximalMatchingLoss expects two tensors")
        if x_hat.shape != x.shape:
            raise ValueError(f"ProximalMatchingLoss: shapes differ, {tuple(x_hat.shape)} vs "
                             f"{tuple(x.shape)}")
        if x.ndim < 2:
            raise ValueError(f"ProximalMatchingLoss expects (B, ...) tensors with a batch "
                             f"dimension, got shape {tuple(x.shape)}")
        return (x_hat - x).flatten(1).pow(2).sum(dim=1)

    def forward(self, x_hat: Tensor, x: Tensor) -> Tensor:
        """The mean over the batch of :math:`m_\\gamma(\\|\\hat x_i - x_i\\|_2)` (a scalar)."""
        d2 = self._sq_distances(x_hat, x)  # no sqrt: its gradient at 0 is not finite
        n = x[0].numel()
        gamma = self.gamma_for(n)
        loss = (1 - torch.exp(-d2 / gamma**2)).mean()
        return loss * (gamma**2 / n) if self.normalized else loss

    def extra_repr(self) -> str:
        norm = ", normalized=True" if self.normalized else ""
        if self.gamma is not None:
            return f"gamma={self.gamma}{norm}"
        return f"gamma_rms={self.gamma_rms}{norm}"


def proximal_matching_schedule(gamma_min: float, num_stages: int) -> tuple[float, ...]:
    """The γ of each proximal-matching stage: :math:`\\gamma_s = \\gamma_{\\min} 2^{S-1-s}`.

    Stages ``s = 0..S-1`` halve γ down to ``gamma_min`` (reference
    ``lpn/train.py:get_loss_hparams_and_lr``: 8×, 4×, 2×, 1× for ``S = 4``).

    Raises
    ------
    ValueError
        If ``gamma_min <= 0`` or ``num_stages < 1``.

    Examples
    --------
    >>> proximal_matching_schedule(2.24, 4)
    (17.92, 8.96, 4.48, 2.24)
    """
    gamma_min = _positive("gamma_min", gamma_min)
    check_int("num_stages", num_stages, 1)
    return tuple(gamma_min * 2.0 ** (num_stages - 1 - s) for s in range(num_stages))
