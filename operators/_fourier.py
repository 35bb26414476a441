"""Fourier-diagonal operators: :class:`FourierMultiplier`, :class:`Convolution`,
:class:`FourierSampling`.

All FFTs act on the last two dimensions of a sample. Complex tensors that must survive
``Module.to(dtype)`` (which would drop imaginary parts) are stored as real views
(``torch.view_as_real``) and viewed back as complex on use.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.fft import fft2, ifft2, irfft2, rfft2

from sciml_inverse import check_finite, check_shape

from ._base import LinearOperator, _as_shape

__all__ = ["FourierMultiplier", "Convolution", "FourierSampling", "fourier_apply"]


def fourier_apply(x: Tensor, symbol: Tensor | float, real_kernel: bool,
                  symbol_half: Tensor | None = None) -> Tensor:
    r"""Apply :math:`x \mapsto \mathcal{F}^{-1}(s \cdot \mathcal{F} x)` over the last two dims.

    Uses the real FFT when ``x`` is real and the kernel is real (``s`` Hermitian-symmetric).
    """
    if not isinstance(symbol, Tensor):
        return x * symbol
    h, w = x.shape[-2:]
    if real_kernel and not x.is_complex():
        half = symbol[..., : w // 2 + 1] if symbol_half is None else symbol_half
        return irfft2(_mul_spectrum(rfft2(x), half), s=(h, w))
    return ifft2(_mul_spectrum(fft2(x), symbol))


def _mul_spectrum(xf: Tensor, s: Tensor) -> Tensor:
    """``xf * s``, in place on the temporary spectrum ``xf`` when autograd and shapes allow it."""
    if s.requires_grad or s.shape != xf.shape[xf.ndim - s.ndim:] or \
            torch.promote_types(xf.dtype, s.dtype) != xf.dtype:
        return xf * s
    return xf.mul_(s)


def _next_fast_len(n: int) -> int:
    """Smallest 2,3,5-smooth integer >= n (fast FFT sizes)."""
    m = n
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 1


def _param_batch(t: Tensor, event_ndim: int) -> tuple[int, ...]:
    return tuple(t.shape[: t.ndim - event_ndim]) if t.ndim > event_ndim else ()


class _ComplexBuffers:
    """Mixin: complex buffers stored as real views so that ``Module.to(dtype)`` keeps them."""

    def _store(self, name: str, t: Tensor | None, persistent: bool = False) -> None:
        flags = self.__dict__.setdefault("_complex_flags", {})
        flags[name] = t is not None and t.is_complex()
        self.register_buffer(name, torch.view_as_real(t) if flags[name] else t,  # type: ignore
                             persistent=persistent)

    def _get(self, name: str) -> Tensor | None:
        t = getattr(self, name)
        return torch.view_as_complex(t) if self.__dict__["_complex_flags"][name] else t


class FourierMultiplier(_ComplexBuffers, LinearOperator):
    r"""Fourier-diagonal operator :math:`A x = \mathcal{F}^{-1}(s \odot \mathcal{F} x)`.

    The FFT acts on the last two dimensions of a sample; :math:`\mathcal{F}` is the
    unnormalized 2-D DFT and :math:`\mathcal{F}^{-1}` its inverse, so ``s = 1`` is the identity
    and :math:`\|A\| = \max |s|`.

    Parameters
    ----------
    symbol : Tensor, shape ``(*batch, *in_shape[:-2] (broadcastable), H, W)``
        The multiplier in the unshifted FFT layout (frequency 0 at index 0). Real or complex.
    in_shape : sequence of int
        Sample shape, at least two dims; its last two are ``(H, W)``.
    real_kernel : bool, default False
        Declare that ``symbol`` is Hermitian-symmetric (the spatial kernel is real); real inputs
        then use the real FFT and give real outputs.

    Raises
    ------
    ValueError
        If the symbol's last two dims are not ``(H, W)``, its other dims do not broadcast to
        ``in_shape``, or it holds NaN or inf.

    Examples
    --------
    >>> import torch
    >>> from operators import FourierMultiplier
    >>> A = FourierMultiplier(torch.full((4, 4), 2.0), (4, 4), real_kernel=True)
    >>> torch.allclose(A(torch.ones(4, 4)), torch.full((4, 4), 2.0))
    True
    """

    def __init__(self, symbol: Tensor, in_shape: Sequence[int], *, real_kernel: bool = False,
                 _symbol_half: Tensor | None = None) -> None:
        in_shape = _as_shape(in_shape, "in_shape")
        super().__init__(in_shape, in_shape)
        if not isinstance(symbol, Tensor):
            raise TypeError(f"symbol must be a tensor, got {type(symbol).__name__}")
        if len(in_shape) < 2 or symbol.ndim < 2 or tuple(symbol.shape[-2:]) != in_shape[-2:]:
            raise ValueError(f"symbol must end with the image shape {in_shape[-2:]}, got "
                             f"{tuple(symbol.shape)}")
        check_shape("symbol", symbol, in_shape, broadcast=True,
                    hint=f"its dims before (H, W) must match in_shape={in_shape} (or be 1)")
        check_finite("symbol", symbol)
        if symbol.numel() == 0:
            raise ValueError(f"symbol is empty (shape {tuple(symbol.shape)})")
        self.real_kernel = bool(real_kernel)
        self._store("_symbol", symbol, persistent=True)  # the operator's state: in state_dict
        half = None
        if self.real_kernel:
            half = _symbol_half if _symbol_half is not None else \
                symbol[..., : in_shape[-1] // 2 + 1].contiguous()
        self._store("_symbol_half", half, persistent=True)

    @property
    def symbol(self) -> Tensor:
        """The full multiplier, shape ``(..., H, W)``."""
        return self._get("_symbol")

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return _param_batch(self._symbol, len(self.in_shape) + self._complex_flags["_symbol"])

    def forward(self, x: Tensor) -> Tensor:
        return fourier_apply(x, self.symbol, self.real_kernel, self._get("_symbol_half"))

    def adjoint(self, y: Tensor) -> Tensor:
        s, half = self.symbol, self._get("_symbol_half")
        if s.is_complex():
            s, half = s.conj(), (None if half is None else half.conj())
        return fourier_apply(y, s, self.real_kernel, half)

    def gram(self) -> LinearOperator:
        s, half = self.symbol, self._get("_symbol_half")
        return FourierMultiplier(s.abs() ** 2, self.in_shape, real_kernel=self.real_kernel,
                                 _symbol_half=None if half is None else half.abs() ** 2)

    def _fourier_symbol(self, like=None):
        return (self.symbol, self.real_kernel)


_PADDINGS = ("circular", "zeros", "valid")


def _check_psf_finite(psf: Tensor) -> None:
    if psf.numel() == 0:
        raise ValueError(f"psf is empty (shape {tuple(psf.shape)}); give at least one kernel of "
                         f"size >= 1 x 1")
    check_finite("psf", psf, hint="a NaN or inf in the PSF makes every output pixel NaN")


class Convolution(_ComplexBuffers, LinearOperator):
    r"""2-D convolution :math:`y = h \ast x` by FFT, with per-sample and per-channel PSFs.

    A true convolution (not a correlation). The PSF origin is at index ``(h // 2, w // 2)`` of
    the PSF array (the ``numpy.fft.fftshift`` convention; for odd sizes this is the central
    pixel, the same as ``scipy.ndimage`` and deepinv's ``BlurFFT``; for even sizes deepinv uses
    ``((h - 1) // 2, (w - 1) // 2)``, one pixel earlier).

    Parameters
    ----------
    psf : Tensor, shape ``(*batch, *channel, h, w)``
        Point-spread function. Its trailing dims are the kernel, the dims before them broadcast
        against the sample's leading dims ``in_shape[:-2]`` (e.g. channels), and any further
        leading dims are per-sample batch dims. ``(h, w)`` shares one PSF; ``(C, h, w)`` gives one
        per channel; ``(B, 1, h, w)`` one per sample for ``in_shape = (C, H, W)``.
    in_shape : sequence of int
        Sample shape ``(..., H, W)``, with ``h <= H`` and ``w <= W``.
    padding : {"circular", "zeros", "valid"}
        ``"circular"``: periodic boundary (Fourier-diagonal: closed-form Gram, ``solve_normal``
        and ``opnorm``). ``"zeros"``: linear convolution of the zero-extended image, same-size
        output (computed on a zero-padded FFT grid of a fast size >= ``H + h - 1``).
        ``"valid"``: only outputs whose support lies inside the image, of size
        ``(H - h + 1, W - w + 1)``.

    Raises
    ------
    ValueError
        Unknown padding, PSF larger than the image, PSF dims that do not broadcast to the
        sample dims ``in_shape[:-2]``, or a PSF holding NaN or inf.
    TypeError
        PSF not a floating-point or complex tensor.

    Notes
    -----
    With the circular boundary, :math:`A = \mathcal{F}^{-1}\,\mathrm{diag}(\hat h)\,\mathcal{F}`
    where :math:`\hat h` (the OTF) is the unnormalized DFT of the PSF zero-padded to ``(H, W)``
    and rolled so that its origin is at index 0; hence :math:`\|A\| = \max|\hat h|`. The OTF is
    computed once and cached, unless the PSF requires grad (then it is recomputed on every call
    so gradients reach the PSF).

    Examples
    --------
    >>> import torch
    >>> from operators import Convolution
    >>> psf = torch.ones(3, 3) / 9
    >>> A = Convolution(psf, (1, 32, 32))
    >>> A(torch.ones(2, 1, 32, 32)).mean().item()  # doctest: +ELLIPSIS
    1.0...
    >>> float(A.opnorm())  # doctest: +ELLIPSIS
    1.0...
    """

    def __init__(self, psf: Tensor, in_shape: Sequence[int], padding: str = "circular") -> None:
        in_shape = _as_shape(in_shape, "in_shape")
        if not isinstance(psf, Tensor):
            raise TypeError(f"psf must be a torch.Tensor, got {type(psf).__name__}")
        if not (psf.is_floating_point() or psf.is_complex()):
            raise TypeError(f"psf must be a floating-point or complex tensor, got {psf.dtype}")
        if padding not in _PADDINGS:
            raise ValueError(f"padding must be one of {_PADDINGS}, got {padding!r}")
        if len(in_shape) < 2:
            raise ValueError(f"in_shape must have at least two dims (..., H, W), got {in_shape}")
        if psf.ndim < 2:
            raise ValueError(f"psf must have at least two dims (..., h, w), got shape "
                             f"{tuple(psf.shape)}")
        (big_h, big_w), (h, w) = in_shape[-2:], tuple(psf.shape[-2:])
        if h > big_h or w > big_w:
            raise ValueError(f"psf of size {(h, w)} is larger than the image {(big_h, big_w)}")
        lead = in_shape[:-2]
        psf_lead = tuple(psf.shape[:-2])[-len(lead):] if lead else ()
        if any(a not in (1, b) for a, b in zip(psf_lead, lead[len(lead) - len(psf_lead):],
                                                strict=True)):
            raise ValueError(f"psf dims {tuple(psf.shape[:-2])} do not broadcast to the sample "
                             f"dims {lead} of in_shape {in_shape} (each must be equal or 1, else "
                             f"the output would not have out_shape); give in_shape "
                             f"{(*psf_lead, big_h, big_w)} or one PSF per channel")
        _check_psf_finite(psf)
        if padding == "valid":
            out_shape = (*lead, big_h - h + 1, big_w - w + 1)
        else:
            out_shape = in_shape
        super().__init__(in_shape, out_shape)
        self.padding = padding
        if padding == "zeros":
            self.grid = (_next_fast_len(big_h + h - 1), _next_fast_len(big_w + w - 1))
        else:
            self.grid = (big_h, big_w)
        if isinstance(psf, torch.nn.Parameter):
            self.psf = psf
        else:
            self.register_buffer("psf", psf)
        if psf.requires_grad:  # recompute the OTF on every call so gradients reach the PSF
            self._store("_otf_half", None)
            self._store("_otf_full", None)
        else:
            self._cache_otf()

    def _cache_otf(self) -> None:
        self.__dict__.pop("_derived_cache", None)
        full = self._compute_otf(full=True)
        self._store("_otf_full", full)
        self._store("_otf_half", None if self.psf.is_complex() else
                    full[..., : self.grid[1] // 2 + 1].contiguous())

    def __setattr__(self, name: str, value) -> None:
        super().__setattr__(name, value)
        if name == "psf" and "_otf_full" in self._buffers:  # a new PSF: refresh the cached OTF
            _check_psf_finite(value)
            if value.requires_grad:
                self._store("_otf_half", None)
                self._store("_otf_full", None)
            else:
                self._cache_otf()

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        # The cached OTF is not saved (it is derived from the PSF): refresh it after loading.
        super()._load_from_state_dict(*args, **kwargs)
        self.__dict__.pop("_derived_cache", None)
        if self._otf_full is not None:
            with torch.no_grad():
                self._cache_otf()

    # -------------------------------------------------------------- OTF
    def _compute_otf(self, full: bool) -> Tensor:
        psf = self.psf
        h, w = psf.shape[-2:]
        gh, gw = self.grid
        padded = torch.nn.functional.pad(psf, (0, gw - w, 0, gh - h))
        padded = torch.roll(padded, shifts=(-(h // 2), -(w // 2)), dims=(-2, -1))
        if full or psf.is_complex():
            return fft2(padded)
        return rfft2(padded)

    def _otf(self, full: bool) -> Tensor:
        # the complex views of the cached OTF buffers are themselves cached (hot path)
        cache = self._cache()
        key = "otf_full" if full else "otf_half"
        otf = cache.get(key)
        if otf is not None:
            return otf
        otf = self._get("_" + key)
        if otf is None:  # the PSF requires grad: recompute so gradients reach it
            return self._compute_otf(full=full)
        cache[key] = otf
        return otf

    @property
    def otf(self) -> Tensor:
        """The full optical transfer function on the FFT grid, shape ``(..., gh, gw)``."""
        return self._otf(full=True)

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return _param_batch(self.psf, len(self.in_shape))

    # -------------------------------------------------------------- application
    def _circ(self, x: Tensor, adjoint: bool) -> Tensor:
        """Circular convolution on the FFT grid (input zero-padded at the end to the grid)."""
        gh, gw = self.grid
        if x.is_complex() or self.psf.is_complex():
            otf = self._otf(full=True)
            xf = fft2(x, s=(gh, gw))
            return ifft2(_mul_spectrum(xf, otf.conj() if adjoint else otf))
        otf = self._otf(full=False)
        xf = rfft2(x, s=(gh, gw))
        return irfft2(_mul_spectrum(xf, otf.conj() if adjoint else otf), s=(gh, gw))

    def forward(self, x: Tensor) -> Tensor:
        big_h, big_w = self.in_shape[-2:]
        if self.padding == "circular":
            return self._circ(x, adjoint=False)
        if self.padding == "zeros":
            return self._circ(x, adjoint=False)[..., :big_h, :big_w]
        h, w = self.psf.shape[-2:]
        y = self._circ(x, adjoint=False)
        return y[..., h - 1 - h // 2: big_h - h // 2, w - 1 - w // 2: big_w - w // 2]

    def adjoint(self, y: Tensor) -> Tensor:
        big_h, big_w = self.in_shape[-2:]
        if self.padding == "circular":
            return self._circ(y, adjoint=True)
        if self.padding == "zeros":
            return self._circ(y, adjoint=True)[..., :big_h, :big_w]
        h, w = self.psf.shape[-2:]
        top, left = h - 1 - h // 2, w - 1 - w // 2
        yp = torch.nn.functional.pad(y, (left, big_w - left - y.shape[-1],
                                         top, big_h - top - y.shape[-2]))
        return self._circ(yp, adjoint=True)

    # -------------------------------------------------------------- structure
    def _fourier_symbol(self, like=None):
        if self.padding != "circular":
            return None
        return (self._otf(full=True), not self.psf.is_complex())

    def gram(self) -> LinearOperator:
        if self.padding != "circular":
            return super().gram()
        cache = self._cache()
        if "gram" in cache and not self.psf.requires_grad:
            return cache["gram"]
        full = self._otf(full=True)
        half = None if self.psf.is_complex() else self._otf(full=False)
        gram = FourierMultiplier(full.abs() ** 2, self.in_shape,
                                 real_kernel=not self.psf.is_complex(),
                                 _symbol_half=None if half is None else half.abs() ** 2)
        if not self.psf.requires_grad:
            cache["gram"] = gram
        return gram

    def extra_repr(self) -> str:
        return (f"psf_shape={tuple(self.psf.shape)}, in_shape={self.in_shape}, "
                f"padding={self.padding!r}")


class FourierSampling(_ComplexBuffers, LinearOperator):
    r"""Undersampled unitary Fourier transform, :math:`A = M\,\mathcal{F}` (single-coil MRI).

    :math:`\mathcal{F}` is the orthonormal 2-D DFT over the last two dims (``norm="ortho"``),
    :math:`M` a k-space sampling mask. The output is the full k-space grid with zeros where
    nothing was sampled. Complex-linear: real inputs are promoted to complex.

    Parameters
    ----------
    mask : Tensor, shape ``(*batch, *in_shape[:-2] (broadcastable), H, W)``
        Sampling pattern with values in {0, 1} (bool accepted), in the unshifted FFT layout
        (frequency 0 at index 0) unless ``centered=True``.
    in_shape : sequence of int
        Sample shape ``(..., H, W)``.
    centered : bool, default False
        The mask is given with frequency 0 in the middle (``fftshift`` layout).

    Raises
    ------
    ValueError
        A mask with values other than 0 and 1, or a shape that does not end with ``(H, W)``.

    Examples
    --------
    >>> import torch
    >>> from operators import FourierSampling
    >>> mask = torch.zeros(8, 8); mask[:, :3] = 1
    >>> A = FourierSampling(mask, (8, 8))
    >>> float(A.opnorm())
    1.0
    """

    complex_input = True

    def __init__(self, mask: Tensor, in_shape: Sequence[int], *, centered: bool = False) -> None:
        in_shape = _as_shape(in_shape, "in_shape")
        super().__init__(in_shape, in_shape)
        mask = _check_binary(mask, in_shape, "mask")
        if len(in_shape) < 2 or mask.ndim < 2 or tuple(mask.shape[-2:]) != in_shape[-2:]:
            raise ValueError(f"mask must end with the image shape {in_shape[-2:]}, got "
                             f"{tuple(mask.shape)}")
        if centered:
            mask = torch.fft.ifftshift(mask, dim=(-2, -1))
        self.register_buffer("mask", mask)

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return _param_batch(self.mask, len(self.in_shape))

    def forward(self, x: Tensor) -> Tensor:
        return self.mask * fft2(x, norm="ortho")

    def adjoint(self, y: Tensor) -> Tensor:
        return ifft2(self.mask * y, norm="ortho")

    def gram(self) -> LinearOperator:
        return FourierMultiplier(self.mask, self.in_shape)

    def extra_repr(self) -> str:
        return f"mask_shape={tuple(self.mask.shape)}, in_shape={self.in_shape}"


def _check_binary(mask: Tensor, in_shape: tuple[int, ...], name: str) -> Tensor:
    if not isinstance(mask, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(mask).__name__}")
    if mask.dtype == torch.bool:
        mask = mask.to(torch.get_default_dtype())
    if mask.is_complex():
        raise TypeError(f"{name} must be real (0/1 values), got {mask.dtype}")
    if not mask.is_floating_point():
        mask = mask.to(torch.get_default_dtype())
    if bool(((mask != 0) & (mask != 1)).any()):
        raise ValueError(f"{name} must contain only 0 and 1; use Diagonal for general weights")
    check_shape(name, mask, in_shape, broadcast=True,
                hint=f"its trailing dims must match in_shape={in_shape} (or be 1); extra leading "
                     f"dims are per-sample batch dims")
    return mask
