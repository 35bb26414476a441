"""Adjoint tests over every registered operator (``problems.OPERATOR_CASES``).

Dot test :math:`\\langle Ax, y\\rangle = \\langle x, A^H y\\rangle` (relative, per sample) for each
case, dtype and device, and the hand-written adjoint against autograd's vector-Jacobian product.
The tests of the checkers themselves show that they fail on wrong adjoints.
"""

from __future__ import annotations

import pytest
import torch
from problems import OPERATOR_CASES, case_ids, complex_dtype, psf, randn

from operators import Convolution, Diagonal
from operators.testing import check_adjoint, check_adjoint_autograd, default_rtol


def _vector_dtype(case, dtype: torch.dtype) -> torch.dtype:
    return complex_dtype(dtype) if case.flags.complex else dtype


@pytest.mark.parametrize("case", OPERATOR_CASES, ids=case_ids(OPERATOR_CASES))
def test_adjoint_dot_test(case, dtype, device):
    A = case.factory(dtype, device)
    vdtype = _vector_dtype(case, dtype)
    err = check_adjoint(A, dtype=vdtype, device=device)
    assert err <= default_rtol(vdtype)


@pytest.mark.parametrize("case", OPERATOR_CASES, ids=case_ids(OPERATOR_CASES))
def test_adjoint_matches_autograd_vjp(case, dtype, device):
    A = case.factory(dtype, device)
    check_adjoint_autograd(A, dtype=_vector_dtype(case, dtype), device=device)


@pytest.mark.parametrize("case", OPERATOR_CASES, ids=case_ids(OPERATOR_CASES))
def test_adjoint_on_complex_vectors(case):
    """Every operator is complex-linear: real operators also pass the dot test on complex data."""
    A = case.factory(torch.float64, "cpu")
    check_adjoint(A, dtype=torch.complex128)


@pytest.mark.parametrize(
    "case", [c for c in OPERATOR_CASES if c.name != "jacobian_batch_ndim_1"],
    ids=case_ids([c for c in OPERATOR_CASES if c.name != "jacobian_batch_ndim_1"]))
def test_adjoint_with_extra_broadcast_batch_dims(case):
    """Inputs may carry extra leading batch dims that broadcast against ``batch_shape``."""
    A = case.factory(torch.float64, "cpu")
    check_adjoint(A, dtype=_vector_dtype(case, torch.float64), batch_shape=(3, *A.batch_shape))


# ---------------------------------------------------------------------------------------------
# the checkers can fail
# ---------------------------------------------------------------------------------------------
class _ScaledAdjointConvolution(Convolution):
    """A deliberately wrong operator: its adjoint is off by a factor 1.01."""

    def adjoint(self, y):
        return 1.01 * super().adjoint(y)


class _TransposeDiagonal(Diagonal):
    """A deliberately wrong operator: transpose instead of conjugate transpose."""

    def adjoint(self, y):
        return self.d * y


def test_check_adjoint_fails_on_scaled_adjoint(dtype):
    A = _ScaledAdjointConvolution(psf(3, 3, dtype=dtype), (8, 8), padding="zeros")
    with pytest.raises(AssertionError, match="adjoint test failed"):
        check_adjoint(A)
    with pytest.raises(AssertionError, match="differs from the autograd VJP"):
        check_adjoint_autograd(A)


def test_check_adjoint_fails_on_missing_conjugate():
    A = _TransposeDiagonal(randn(4, 5, dtype=torch.complex128))
    with pytest.raises(AssertionError, match="adjoint test failed"):
        check_adjoint(A)


def test_check_adjoint_autograd_rejects_complex_adjoint_of_real_input():
    # A complex diagonal tested with real vectors: the VJP is real, A^H y is complex.
    A = Diagonal(randn(4, dtype=torch.complex128))
    with pytest.raises(AssertionError, match="complex tensor for a real input"):
        check_adjoint_autograd(A, dtype=torch.float64)


def test_check_adjoint_reports_its_error_and_respects_rtol():
    A = _ScaledAdjointConvolution(psf(3, 3), (8, 8))
    err = check_adjoint(A, rtol=1.0, generator=torch.Generator().manual_seed(3))
    assert 1e-6 < err < 1e-2  # far above round-off, below the 0.01 / 2.01 bound
    with pytest.raises(AssertionError):
        check_adjoint(A, rtol=err / 2, generator=torch.Generator().manual_seed(3))
    assert check_adjoint(A, rtol=2 * err, generator=torch.Generator().manual_seed(3)) == err
