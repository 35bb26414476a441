"""Exact patch-based prox for large images: the gradient of an average of patch potentials."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from sciml_inverse import check_int

from ._lpn import LPN, AbstractLPN

__all__ = ["PatchLPN"]


class PatchLPN(AbstractLPN):
    """An image LPN applied patch by patch, still an exact prox (memory-bounded tiling).

    With patch size ``P``, stride ``S`` and ``m = P / S`` (an integer), the image is zero-padded
    by ``P − S`` pixels on the top/left and by ``P − S + ((−H) mod S)`` on the bottom/right, so
    that **every pixel lies in exactly m² patches** (Hertrich's ``pad_for_exact_prox``). The
    potential is

    .. math::

        \\Phi(x) = \\frac{1}{m^2} \\sum_{j} \\psi\\big(E_j\\, \\mathrm{pad}(x)\\big),

    with :math:`E_j` the extraction of patch ``j``. Φ is convex (ψ convex, ``pad`` and
    :math:`E_j` linear), so its gradient — the average over the m² patches covering each pixel of
    the patch proxes — is the exact prox of :math:`\\Phi^* - \\tfrac12\\|\\cdot\\|^2`; the α‖·‖²
    terms add up to α‖x‖². :meth:`forward` computes that average chunk by chunk (at most
    ``max_batch`` patches per network call), :meth:`potential_gradient` differentiates Φ with
    autograd (the "gradient mode"); the two agree (tested). :meth:`invert` and
    :meth:`regularizer` work as for :class:`LPN`, on Φ.

    A fully convolutional :class:`LPN` is already exact on any size; use this wrapper when a
    whole image does not fit in memory, or to reproduce the reference patch prox (P=128, S=64).

    Parameters
    ----------
    lpn : LPN
        An image LPN (:class:`ImageLPNConfig`).
    patch_size : int
    stride : int, optional
        Default ``patch_size // 2``; must divide ``patch_size``.
    max_batch : int
        Patches per network evaluation (bounds memory).

    Raises
    ------
    TypeError
        If ``lpn`` is not an image :class:`LPN`.
    ValueError
        Bad sizes (``stride`` not dividing ``patch_size``, non-positive numbers).

    Examples
    --------
    >>> import torch
    >>> from inverse.lpn import LPN, ImageLPNConfig, PatchLPN
    >>> lpn = LPN(ImageLPNConfig(in_channels=1, hidden=4, num_layers=1))
    >>> plpn = PatchLPN(lpn, patch_size=8, stride=4)
    >>> x = torch.rand(1, 1, 21, 30)
    >>> with torch.no_grad():
    ...     torch.allclose(plpn(x), plpn.potential_gradient(x), atol=1e-5)
    True
    """

    def __init__(self, lpn: LPN, patch_size: int, stride: int | None = None, *,
                 max_batch: int = 64) -> None:
        super().__init__()
        if not isinstance(lpn, LPN) or lpn.event_ndim != 3:
            raise TypeError(f"PatchLPN wraps an image LPN (ImageLPNConfig), got "
                            f"{type(lpn).__name__}")
        stride = patch_size // 2 if stride is None and isinstance(patch_size, int) else stride
        for name, v in (("patch_size", patch_size), ("stride", stride), ("max_batch", max_batch)):
            check_int(name, v, 1)
        if patch_size % stride:
            raise ValueError(f"stride ({stride}) must divide patch_size ({patch_size}) so every "
                             f"pixel lies in the same number of patches")
        self.lpn = lpn
        self.patch_size, self.stride, self.max_batch = patch_size, stride, max_batch
        self.m = patch_size // stride

    @property
    def event_ndim(self) -> int:
        return 3

    def _check_event(self, shape: tuple[int, ...], what: str) -> None:
        self.lpn._check_event(shape, what)

    def project_(self) -> None:
        self.lpn.project_()

    def _pads(self, h: int, w: int) -> tuple[int, int, int, int]:
        p, s = self.patch_size, self.stride
        return (p - s, p - s + (-w) % s, p - s, p - s + (-h) % s)  # left, right, top, bottom

    def _positions(self, hp: int, wp: int) -> list[tuple[int, int]]:
        p, s = self.patch_size, self.stride
        return [(i, j) for i in range(0, hp - p + 1, s) for j in range(0, wp - p + 1, s)]

    def _run(self, x: Tensor, create_graph: bool, need_grad: bool) -> tuple[Tensor, Tensor | None]:
        """Chunked ``(Φ(x), ∇Φ(x))`` for a flat batch ``(B, C, H, W)``."""
        b, c, h, w = x.shape
        pads = self._pads(h, w)
        xp = F.pad(x, pads)
        hp, wp = xp.shape[-2:]
        p = self.patch_size
        pos = self._positions(hp, wp)
        per = max(1, self.max_batch // b)
        out = torch.zeros_like(xp) if need_grad else None
        val = x.new_zeros(b)
        for start in range(0, len(pos), per):
            chunk = pos[start:start + per]
            patches = torch.stack([xp[:, :, i:i + p, j:j + p] for i, j in chunk], dim=1)
            patches = patches.reshape(b * len(chunk), c, p, p)
            if need_grad:
                with torch.enable_grad():
                    pi = patches if (create_graph and patches.requires_grad) else (
                        patches.detach().requires_grad_(True))
                    psi = self.lpn._potential(pi)
                    (g,) = torch.autograd.grad(psi.sum(), pi, create_graph=create_graph)
                if not create_graph:
                    psi = psi.detach()
                g = g.reshape(b, len(chunk), c, p, p)
                for t, (i, j) in enumerate(chunk):
                    out[:, :, i:i + p, j:j + p] = out[:, :, i:i + p, j:j + p] + g[:, t]
            else:
                psi = self.lpn._potential(patches)
            val = val + psi.reshape(b, len(chunk)).sum(dim=1)
        scale = 1.0 / self.m**2
        if out is not None:
            left, right, top, bottom = pads
            out = out[:, :, top:top + h, left:left + w] * scale
        return val * scale, out

    def _potential(self, x: Tensor) -> Tensor:
        return self._run(x, create_graph=False, need_grad=False)[0]

    def _psi_and_grad(self, y: Tensor) -> tuple[Tensor, Tensor]:
        val, g = self._run(y.detach(), create_graph=False, need_grad=True)
        return val, g  # type: ignore[return-value]

    def forward(self, x: Tensor, *, create_graph: bool | None = None) -> Tensor:
        """The exact patch-averaged prox :math:`\\nabla\\Phi(x)`, computed chunk by chunk.

        Parameters
        ----------
        x : Tensor, shape ``(*batch, C, H, W)``, any ``H, W``
        create_graph : bool or None
            As for :meth:`LPN.forward`; with a graph, memory is no longer bounded by
            ``max_batch``.

        Returns
        -------
        Tensor, same shape as ``x``.
        """
        self._check_input(x, "forward")
        if create_graph is None:
            create_graph = self._auto_create_graph(x)
        xf, _ = self._flat_batch(x)
        if not (create_graph and xf.requires_grad):
            xf = xf.detach()
        _, g = self._run(xf, create_graph=create_graph, need_grad=True)
        return g.reshape(x.shape)  # type: ignore[union-attr]
