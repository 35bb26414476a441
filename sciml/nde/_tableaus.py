"""Butcher tableaus as data: the explicit Runge-Kutta schemes of :func:`sciml.nde.odeint`.

Every scheme is a frozen :class:`ButcherTableau`; the adaptive ones carry an embedded error
estimate, a dense-output midpoint and the pair of stages used for Shampine's stiffness estimate.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

__all__ = ["ButcherTableau", "DOPRI5", "TSIT5", "BOSH3", "EULER", "MIDPOINT", "RK4", "RK4_38",
           "TABLEAUS",
           "get_tableau"]


@dataclass(frozen=True)
class ButcherTableau:
    r"""An explicit Runge-Kutta scheme, optionally with an embedded error estimate.

    For a step of size :math:`h` from :math:`(t, y)` the stages are
    :math:`g_i = y + h\sum_{j<i} a_{ij} k_j`, :math:`k_i = f(t + c_i h, g_i)`, the solution is
    :math:`y^+ = y + h\sum_i b_i k_i` and the error estimate
    :math:`y^+ - \tilde y^+ = h\sum_i e_i k_i` with :math:`e = b - \tilde b`.

    Attributes
    ----------
    name : str
    c : tuple of float, length ``s``
        Nodes (``c[0] == 0``).
    a : tuple of tuples of float
        Strictly lower-triangular rows: ``a[i]`` has ``i`` entries.
    b : tuple of float, length ``s``
        Weights of the propagated solution.
    order : int
        Order of the propagated solution.
    error : tuple of float or None
        Error weights :math:`e = b - \tilde b` of the embedded pair (``None``: fixed-step only).
    embedded_order : int or None
        Order of the embedded solution :math:`\tilde b`.
    mid : tuple of float or None
        Weights :math:`m` with :math:`y(t + h/2) \approx y + h\sum_i m_i k_i` (the continuous
        extension at :math:`\theta = 1/2`), fed to the quartic dense output (as torchdiffeq).
    stiffness_stages : tuple of int or None
        0-based indices ``(i, j)`` of the stages whose difference gives Shampine's estimate
        :math:`|\hat\lambda| = \|k_j - k_i\| / \|g_j - g_i\|` (Hairer & Wanner II, IV.2).
    stability_size : float or None
        Where the stability region of the propagated solution meets the negative real axis
        (:math:`|R(-x)| = 1`): the estimate is reported as :math:`|\hat\lambda| / x`.

    Raises
    ------
    ValueError
        If the arrays have inconsistent lengths, ``c[0] != 0`` or an optional block is half given.
    """

    name: str
    c: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    order: int
    error: tuple[float, ...] | None = None
    embedded_order: int | None = None
    mid: tuple[float, ...] | None = None
    stiffness_stages: tuple[int, int] | None = None
    stability_size: float | None = None

    def __post_init__(self) -> None:
        s = len(self.c)
        if s < 1 or self.c[0] != 0.0:
            raise ValueError(f"{self.name}: c must be non-empty with c[0] == 0, got {self.c}")
        if len(self.a) != s or any(len(row) != i for i, row in enumerate(self.a)):
            raise ValueError(f"{self.name}: a must have {s} rows, row i with i entries")
        if len(self.b) != s:
            raise ValueError(f"{self.name}: b must have {s} entries, got {len(self.b)}")
        for nm in ("error", "mid"):
            v = getattr(self, nm)
            if v is not None and len(v) != s:
                raise ValueError(f"{self.name}: {nm} must have {s} entries, got {len(v)}")
        if (self.error is None) != (self.embedded_order is None):
            raise ValueError(f"{self.name}: give both error and embedded_order, or neither")
        if (self.stiffness_stages is None) != (self.stability_size is None):
            raise ValueError(f"{self.name}: give both stiffness_stages and stability_size")
        if self.stiffness_stages is not None and not all(
                0 <= i < s for i in self.stiffness_stages):
            raise ValueError(f"{self.name}: stiffness_stages out of range: {self.stiffness_stages}")

    @property
    def n_stages(self) -> int:
        """Number of stages ``s``."""
        return len(self.c)

    @property
    def fsal(self) -> bool:
        """First same as last: the last stage is evaluated at ``(t + h, y^+)`` (so ``k_s`` is the
        next step's ``k_1``)."""
        return self.c[-1] == 1.0 and self.b[-1] == 0.0 and tuple(self.a[-1]) == self.b[:-1]

    @property
    def adaptive(self) -> bool:
        """Whether the scheme has an embedded error estimate."""
        return self.error is not None


def _tensors(tab: ButcherTableau, dtype: torch.dtype, device: torch.device) -> dict:
    return _tensors_cached(tab, dtype, str(device))


@functools.lru_cache(maxsize=64)
def _tensors_cached(tab: ButcherTableau, dtype: torch.dtype, device: str) -> dict:
    def t(v):  # noqa: ANN001, ANN202
        return None if v is None else torch.tensor(v, dtype=dtype, device=device)

    return {"a": [t(row) for row in tab.a], "b": t(tab.b), "error": t(tab.error),
            "mid": t(tab.mid)}


#: Dormand & Prince (1980) 5(4), with Shampine's (1986) dense-output midpoint, as in torchdiffeq.
DOPRI5 = ButcherTableau(
    name="dopri5",
    c=(0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0),
    a=((),
       (1 / 5,),
       (3 / 40, 9 / 40),
       (44 / 45, -56 / 15, 32 / 9),
       (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
       (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
       (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84)),
    b=(35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0),
    order=5,
    error=(35 / 384 - 1951 / 21600, 0.0, 500 / 1113 - 22642 / 50085, 125 / 192 - 451 / 720,
           -2187 / 6784 - -12231 / 42400, 11 / 84 - 649 / 6300, -1.0 / 60.0),
    embedded_order=4,
    mid=(6025192743 / 30085553152 / 2, 0.0, 51252292925 / 65400821598 / 2,
         -2691868925 / 45128329728 / 2, 187940372067 / 1594534317056 / 2,
         -1776094331 / 19743644256 / 2, 11237099 / 235043384 / 2),
    stiffness_stages=(5, 6),
    stability_size=3.3065678926349436,
)

_TSIT5_B = (0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742,
            -3.290069515436081, 2.324710524099774, 0.0)

#: Tsitouras (2011) 5(4). Propagates the 5th-order solution (``b`` = last row of ``a``); the
#: error weights are the paper's :math:`b - \hat b` (``e_7 = 1/66``). Midpoint from its free
#: 4th-order continuous extension.
TSIT5 = ButcherTableau(
    name="tsit5",
    c=(0.0, 0.161, 0.327, 0.9, 0.9800255409045097, 1.0, 1.0),
    a=((),
       (0.161,),
       (-0.008480655492356989, 0.335480655492357),
       (2.897153057105493, -6.359448489975075, 4.3622954328695815),
       (5.325864828439257, -11.748883564062828, 7.4955393428898365, -0.09249506636175525),
       (5.86145544294642, -12.92096931784711, 8.159367898576159, -0.071584973281401,
        -0.028269050394068383),
       _TSIT5_B[:6]),
    b=_TSIT5_B,
    order=5,
    error=(-0.00178001105222577714, -0.0008164344596567469, 0.007880878010261995,
           -0.1447110071732629, 0.5823571654525552, -0.45808210592918697, 1 / 66),
    embedded_order=4,
    mid=(0.10741235230096878, 0.011356249999999998, 0.3956090305604531, -0.3447521435259353,
         1.316185364958165, -1.0170608542936517, 0.03125),
    stiffness_stages=(5, 6),
    stability_size=3.5068469938049365,
)

#: Bogacki & Shampine (1989) 3(2). Dense output: the cubic Hermite interpolant (its value at
#: theta = 1/2 is ``(y0 + y1)/2 + h (k1 - k4)/8``), 3rd order. torchdiffeq's bosh3 uses
#: ``y0 + h k2 / 2`` there, which is only 1st-order accurate, so interpolated outputs differ from
#: torchdiffeq's by its interpolation error (the steps and NFE are identical).
BOSH3 = ButcherTableau(
    name="bosh3",
    c=(0.0, 1 / 2, 3 / 4, 1.0),
    a=((), (1 / 2,), (0.0, 3 / 4), (2 / 9, 1 / 3, 4 / 9)),
    b=(2 / 9, 1 / 3, 4 / 9, 0.0),
    order=3,
    error=(2 / 9 - 7 / 24, 1 / 3 - 1 / 4, 4 / 9 - 1 / 3, -1 / 8),
    embedded_order=2,
    mid=(1 / 9 + 1 / 8, 1 / 6, 2 / 9, -1 / 8),
    stiffness_stages=(2, 3),
    stability_size=2.5127453266183286,
)

#: Forward Euler (fixed step only).
EULER = ButcherTableau(name="euler", c=(0.0,), a=((),), b=(1.0,), order=1)

#: Explicit midpoint (fixed step only).
MIDPOINT = ButcherTableau(name="midpoint", c=(0.0, 1 / 2), a=((), (1 / 2,)), b=(0.0, 1.0),
                          order=2)

#: Classical 4th-order Runge-Kutta (fixed step only).
RK4 = ButcherTableau(name="rk4", c=(0.0, 1 / 2, 1 / 2, 1.0),
                     a=((), (1 / 2,), (0.0, 1 / 2), (0.0, 0.0, 1.0)),
                     b=(1 / 6, 1 / 3, 1 / 3, 1 / 6), order=4)

#: Kutta's 3/8 rule (4th order, fixed step): what torchdiffeq's ``method="rk4"`` runs.
RK4_38 = ButcherTableau(name="rk4_38", c=(0.0, 1 / 3, 2 / 3, 1.0),
                        a=((), (1 / 3,), (-1 / 3, 1.0), (1.0, -1.0, 1.0)),
                        b=(1 / 8, 3 / 8, 3 / 8, 1 / 8), order=4)

#: Schemes by name.
TABLEAUS: dict[str, ButcherTableau] = {t.name: t for t in (DOPRI5, TSIT5, BOSH3, EULER, MIDPOINT,
                                                          RK4, RK4_38)}


def get_tableau(method: str | ButcherTableau) -> ButcherTableau:
    """The tableau for a method name or tableau.

    Raises
    ------
    TypeError
        If ``method`` is neither a string nor a :class:`ButcherTableau`.
    ValueError
        If the name is unknown.
    """
    if isinstance(method, ButcherTableau):
        return method
    if not isinstance(method, str):
        raise TypeError(f"method must be a name or a ButcherTableau, got {type(method).__name__}")
    try:
        return TABLEAUS[method]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(TABLEAUS)} or pass a "
                         "ButcherTableau") from None
