"""Encoders from a gridded coefficient field to a vector (branch input or bounded latent β)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sciml_inverse import check_int

__all__ = ["MLPEncoder", "CNNEncoder"]


class _GridEncoder(nn.Module):
    """Input checks and per-node unit-Gaussian normalisation of ``(B, n, n)`` fields."""

    def __init__(self, grid: int, out_size: int, bounded: bool, ndim: int = 2,
                 sizes: dict[str, Sequence[int]] | None = None) -> None:
        check_int("grid", grid, 2)
        check_int("out_size", out_size, 1)
        if ndim not in (1, 2) or isinstance(ndim, bool):
            raise ValueError(f"ndim must be 1 or 2, got {ndim!r}")
        for name, seq in (sizes or {}).items():  # layer widths, kernel sizes
            for v in seq:
                check_int(f"every entry of {name}", v, 1)
        super().__init__()
        self.grid = int(grid)
        self.ndim = int(ndim)
        self.field_shape = (self.grid,) * self.ndim
        self.out_size = int(out_size)
        self.bounded = bool(bounded)
        self.register_buffer("mean", torch.zeros(self.field_shape))
        self.register_buffer("std", torch.ones(self.field_shape))

    def fit_normalization(self, a: Tensor) -> None:
        """Set the per-node mean and standard deviation from training fields ``(B, n, n)``."""
        a = self._check(a)
        self.mean.copy_(a.mean(0))
        self.std.copy_(a.std(0).clamp_min(1e-6) if a.shape[0] > 1 else torch.ones_like(a[0]))

    def _check(self, a: Tensor) -> Tensor:
        if not isinstance(a, Tensor) or not a.is_floating_point():
            raise TypeError("the coefficient field must be a floating-point tensor (B, n, n)")
        if a.ndim != 1 + self.ndim or tuple(a.shape[1:]) != self.field_shape:
            dims = ", ".join(str(n) for n in self.field_shape)
            raise ValueError(f"coefficient fields must have shape (B, {dims}) "
                             f"(the encoder's grid), got {tuple(a.shape)}; resample the data or "
                             f"build the model for this grid")
        if bool(torch.isnan(a).any()):
            raise ValueError("the coefficient field contains NaN")
        return a

    def _finish(self, z: Tensor) -> Tensor:
        return torch.tanh(z) if self.bounded else z


class MLPEncoder(_GridEncoder):
    r"""Fully connected encoder of a flattened, per-node normalised field.

    ``β = tanh(FC(norm(a)))`` (``bounded=True``, the DGNO latent in :math:`(-1, 1)^{d_\beta}`);
    SiLU between layers, none after the last. The DGNO piecewise reference is
    ``hidden=(512, 256)``, ``out_size=128`` on 29 × 29 (595,328 parameters).

    Parameters
    ----------
    grid : int
        ``n`` of the ``n × n`` input.
    hidden : sequence of int
    out_size : int
    bounded : bool
        Apply tanh to the output.
    ndim : int
        2: fields ``(B, n, n)``; 1: vectors ``(B, n)`` (e.g. Burgers initial conditions at
        ``n`` points).

    Raises
    ------
    ValueError
        Input of the wrong grid size or with NaN (at call time).
    """

    def __init__(self, grid: int, hidden: Sequence[int] = (512, 256), out_size: int = 128, *,
                 bounded: bool = True, ndim: int = 2) -> None:
        super().__init__(grid, out_size, bounded, ndim, {"hidden": hidden})
        sizes = [self.grid ** self.ndim, *[int(h) for h in hidden], self.out_size]
        mods: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            mods.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                mods.append(nn.SiLU())
        self.net = nn.Sequential(*mods)

    def forward(self, a: Tensor) -> Tensor:
        """``(B, n, n)`` (or ``(B, n)``) → ``(B, out_size)``."""
        a = self._check(a)
        return self._finish(self.net(((a - self.mean) / self.std).flatten(1)))


class CNNEncoder(_GridEncoder):
    """Convolutional encoder: strided convolutions + SiLU, flatten, fully connected layers.

    Parameters
    ----------
    grid : int
    channels : sequence of int
        Output channels of the convolutions (input has one channel).
    kernel, stride : int
    hidden : sequence of int
        Hidden widths of the fully connected head.
    out_size : int
    bounded : bool
        Apply tanh to the output (DGNO latent).
    """

    def __init__(self, grid: int, channels: Sequence[int] = (32, 64), hidden: Sequence[int] = (),
                 out_size: int = 128, *, kernel: int = 5, stride: int = 2,
                 bounded: bool = False) -> None:
        super().__init__(grid, out_size, bounded, 2, {"channels": channels, "hidden": hidden,
                                                       "kernel and stride": (kernel, stride)})
        convs: list[nn.Module] = []
        c_in = 1
        for c in channels:
            convs += [nn.Conv2d(c_in, int(c), int(kernel), int(stride)), nn.SiLU()]
            c_in = int(c)
        self.convs = nn.Sequential(*convs)
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, 1, self.grid, self.grid)).numel()
        sizes = [flat, *[int(h) for h in hidden], self.out_size]
        head: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            head.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                head.append(nn.SiLU())
        self.head = nn.Sequential(*head)

    def forward(self, a: Tensor) -> Tensor:
        """``(B, n, n)`` → ``(B, out_size)``."""
        a = self._check(a)
        z = self.convs(((a - self.mean) / self.std).unsqueeze(1))
        return self._finish(self.head(z.flatten(1)))
