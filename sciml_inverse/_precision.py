"""Mixed precision: choosing it at run time, and switching it off where a loss term needs float32.

``precision`` is one of

* ``"fp32"`` -- no autocast (the default);
* ``"bf16"`` -- :func:`torch.autocast` to bfloat16: on CUDA if the device supports it, on CPUs
  with native bfloat16 (AVX512-BF16 or AMX, detected at run time); elsewhere float32 with a note;
* ``"fp16"`` -- autocast to float16 with a :class:`torch.amp.GradScaler`, on CUDA only (float32
  with a note on a CPU);
* ``"auto"`` -- the fastest of these the device supports natively: bfloat16 on CUDA devices that
  have it (float16 + scaler on older ones), bfloat16 on CPUs with AVX512-BF16/AMX, float32
  otherwise.

The weights stay in float32 (autocast casts per operation: float32 "master weights"). Loss
terms that need float32 -- likelihoods and entropies, PDE residuals and their derivatives --
run inside :func:`full_precision`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Literal

import torch

__all__ = ["PRECISIONS", "Precision", "resolve_precision", "full_precision", "upcast",
           "cpu_supports_bf16"]

PRECISIONS = ("fp32", "bf16", "fp16", "auto")
PrecisionName = Literal["fp32", "bf16", "fp16", "auto"]


@dataclasses.dataclass(frozen=True)
class Precision:
    """The resolved precision of a run.

    Attributes
    ----------
    requested : str
        What was asked (``"fp32"``, ``"bf16"``, ``"fp16"`` or ``"auto"``).
    name : str
        What runs: ``"fp32"``, ``"bf16"`` or ``"fp16"``.
    dtype : torch.dtype or None
        The autocast dtype (``None`` for float32).
    device_type : str
        ``"cpu"`` or ``"cuda"``.
    scaler : bool
        Whether a gradient scaler is needed (float16).
    note : str
        Why the run differs from the request (empty if it does not).
    """

    requested: str
    name: str
    dtype: torch.dtype | None
    device_type: str
    scaler: bool
    note: str = ""

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        """The autocast context of this precision (a no-op for float32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)


def cpu_supports_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX tiles), at run time."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    for name in probes:
        probe = getattr(torch.cpu, name, None)
        if probe is not None:
            try:
                if probe():
                    return True
            except Exception:  # a probe that fails means "no"
                continue
    return False


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> Precision:
    """What ``precision`` means on ``device`` (never fails on hardware without it).

    Parameters
    ----------
    precision : {"fp32", "bf16", "fp16", "auto"}
    device : torch.device or str

    Returns
    -------
    Precision

    Raises
    ------
    ValueError
        For another ``precision``.

    Examples
    --------
    >>> from sciml_inverse import resolve_precision
    >>> resolve_precision("fp32").dtype is None
    True
    >>> resolve_precision("fp16", "cpu").name   # fp16 needs CUDA: float32, with a note
    'fp32'
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    device = torch.device(device)
    kind = "cuda" if device.type == "cuda" else "cpu"
    fp32 = Precision(precision, "fp32", None, kind, False)
    if precision == "fp32":
        return fp32
    if kind == "cuda":
        bf16_ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        if precision == "fp16" or (precision == "auto" and not bf16_ok):
            return Precision(precision, "fp16", torch.float16, kind, True)
        if bf16_ok:
            return Precision(precision, "bf16", torch.bfloat16, kind, False)
        return dataclasses.replace(fp32, note="this CUDA device has no bfloat16: float32")
    if device.type != "cpu":
        return dataclasses.replace(fp32, note=f"no mixed precision on {device.type}: float32")
    if precision == "fp16":
        return dataclasses.replace(fp32, note="float16 training needs CUDA; float32 on the CPU "
                                              "(use precision='bf16' on CPUs with AMX/AVX512-BF16)")
    if cpu_supports_bf16():
        return Precision(precision, "bf16", torch.bfloat16, kind, False)
    if precision == "auto":
        return fp32
    return dataclasses.replace(fp32, note="this CPU has no native bfloat16 (AMX or AVX512-BF16): "
                                          "float32")


@contextlib.contextmanager
def full_precision() -> Iterator[None]:
    """Switch autocast off inside the block (on CPU and CUDA), for terms that need float32.

    Tensors made under autocast may be bfloat16/float16: cast them with ``.float()`` inside the
    block. Outside an autocast region this is a no-op.

    Examples
    --------
    >>> import torch
    >>> from sciml_inverse import full_precision
    >>> a = torch.rand(4, 4)
    >>> with torch.autocast("cpu", dtype=torch.bfloat16):
    ...     low = a @ a
    ...     with full_precision():
    ...         high = a.float() @ a.float()
    >>> low.dtype, high.dtype
    (torch.bfloat16, torch.float32)
    """
    with torch.autocast("cpu", enabled=False):
        if torch.cuda.is_available():
            with torch.autocast("cuda", enabled=False):
                yield
        else:
            yield


def upcast(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 if it is float16/bfloat16 (made under autocast), else unchanged.

    Use it on the inputs of a :func:`full_precision` block; float64 stays float64.
    """
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
