"""The shared validators of :mod:`sciml_inverse` (used by every public entry of the packages)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sciml_inverse import (
    ArgumentTypeError,
    check_device,
    check_finite,
    check_finite_state_dict,
    check_int,
    check_keys,
    check_number,
    check_positive_tensor,
    check_real,
    check_representable,
    check_shape,
    check_tensor,
    check_tolerance,
)


def test_check_finite():
    check_finite("t", torch.ones(3))
    check_finite("t", torch.ones(3, dtype=torch.int64))  # integers are always finite
    check_finite("t", torch.full((2,), math.nan, device="meta"))  # no values on meta
    check_finite("t", torch.ones(2, requires_grad=True))
    check_finite("v", 1.5)
    with pytest.raises(ValueError, match=r"t contains 2 non-finite values \(NaN or inf\) out of 4; "
                                         r"fix it"):
        check_finite("t", torch.tensor([1.0, math.nan, math.inf, 0.0]), hint="fix it")
    with pytest.raises(ValueError, match=r"t contains 1 non-finite value "):
        check_finite("t", torch.tensor([complex(1, math.nan)]))
    with pytest.raises(ValueError, match="v must be finite, got inf"):
        check_finite("v", math.inf)


def test_check_shape():
    check_shape("x", torch.ones(2, 3, 4), (3, 4))
    check_shape("d", torch.ones(5, 1, 4), (3, 4), broadcast=True)
    check_shape("d", torch.ones(4), (3, 4), broadcast=True)
    with pytest.raises(ValueError, match=r"x must have shape \(\*batch, 3, 4\), got \(2, 4, 3\); "
                                         r"reshape"):
        check_shape("x", torch.ones(2, 4, 3), (3, 4), hint="reshape")
    with pytest.raises(ValueError, match=r"x must have shape \(\*batch, 3, 4\), got \(4,\)"):
        check_shape("x", torch.ones(4), (3, 4))
    with pytest.raises(ValueError, match=r"d of shape \(3, 1, 4\) does not broadcast to "
                                         r"\(1, 1, 4\)"):
        check_shape("d", torch.ones(3, 1, 4), (1, 1, 4), broadcast=True)


@pytest.mark.parametrize("dtype, value, ok", [
    (torch.float32, 1e-50, False), (torch.float32, 1e-30, True), (torch.float32, 1e39, False),
    (torch.float64, 1e-50, True), (torch.float16, 7e4, False), (torch.float16, 1e-5, False),
    (torch.bfloat16, 1e-30, True), (torch.complex64, 1e-50, False), (torch.int64, 1e-50, True),
])
def test_check_representable(dtype, value, ok):
    if ok:
        check_representable("rho", value, dtype)
        return
    with pytest.raises(ValueError, match=r"rho=.* (underflows|overflows) in torch\."):
        check_representable("rho", value, dtype)


def test_check_positive_tensor():
    check_positive_tensor("rho", torch.tensor([1.0, 2.0]))
    check_positive_tensor("rho", torch.tensor([1, 2]))
    for bad in (math.nan, math.inf, 0.0, -1.0):
        with pytest.raises(ValueError, match=r"rho must be finite and > 0, got 1 entry that is"):
            check_positive_tensor("rho", torch.tensor([1.0, bad]))
    with pytest.raises(TypeError, match="rho must be real and positive, got a complex tensor"):
        check_positive_tensor("rho", torch.tensor([1j]))


def test_check_real_and_tolerance():
    check_real("x", 1)
    check_real("x", np.float32(0.5))
    assert check_real("x", None, allow_none=True) is None
    assert check_real("x", np.float64(2.5), positive=True) == 2.5
    assert check_real("x", 0, positive=False) == 0.0
    with pytest.raises(ValueError, match=r"x must be > 0, got 0; say why"):
        check_real("x", 0, positive=True, hint="say why")
    with pytest.raises(ValueError, match=r"x must be >= 0, got -1.5"):
        check_real("x", -1.5, positive=False)
    with pytest.raises(TypeError, match=r"x must be a real number, got str '1'"):
        check_real("x", "1", positive=True)
    with pytest.raises(TypeError, match="x must be a real number, got bool"):
        check_real("x", True)
    with pytest.raises(ValueError, match="x must be finite, got nan"):
        check_real("x", math.nan)
    assert check_tolerance("rtol", torch.tensor(1e-3)) == pytest.approx(1e-3)
    with pytest.raises(TypeError, match=r"rtol must be a float \(or a one-element tensor"):
        check_tolerance("rtol", torch.ones(2))
    with pytest.raises(ValueError, match="atol must be finite, got inf"):
        check_tolerance("atol", math.inf)


def test_check_tensor_and_device():
    check_tensor("x", torch.ones(1, dtype=torch.complex64))
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got list"):
        check_tensor("x", [1.0])
    with pytest.raises(TypeError, match="x must be a real floating-point tensor, got dtype "
                                        "torch.complex64"):
        check_tensor("x", torch.ones(1, dtype=torch.complex64), allow_complex=False)
    check_device("x", torch.ones(1), "cpu")
    check_device("x", torch.ones(1), None)
    with pytest.raises(ValueError, match=r"x is on meta but must be on cpu; move it with "
                                         r"\.to\('cpu'\)"):
        check_device("x", torch.ones(1, device="meta"), "cpu")


def test_checkpoint_checks():
    state = {"a": torch.ones(2), "b": {"c": torch.tensor([math.nan])}, "n": 3,
             "i": torch.ones(2, dtype=torch.int64)}
    with pytest.raises(ValueError, match=r"f.pt: NaN or inf in the weights \(b.c\); the "
                                         r"training that wrote it probably diverged"):
        check_finite_state_dict(state, "f.pt")
    check_finite_state_dict({"a": torch.ones(2)}, "f.pt")
    with pytest.raises(ValueError, match=r"f.pt is an incomplete checkpoint: missing 'x', 'y' "
                                         r"\(it has 'a'\)"):
        check_keys({"a": 1}, ("a", "x", "y"), "f.pt")
    with pytest.raises(ValueError, match=r"f.pt is not a checkpoint \(a dict was expected, got "
                                         r"list\)"):
        check_keys([1], ("a",), "f.pt")


def test_check_real_upper_bound():
    assert check_real("mtf", 1, positive=True, maximum=1.0) == 1.0
    assert check_real("share", 0.5, positive=False, maximum=1, include_maximum=False) == 0.5
    with pytest.raises(ValueError, match=r"mtf must be <= 1, got 1.5; at Nyquist"):
        check_real("mtf", 1.5, positive=True, maximum=1.0, hint="at Nyquist")
    with pytest.raises(ValueError, match=r"share must be < 1, got 1; lower it"):
        check_real("share", 1, positive=False, maximum=1, include_maximum=False, hint="lower it")
    with pytest.raises(ValueError, match="share must be finite, got inf"):
        check_real("share", math.inf, maximum=1)
    with pytest.raises(ValueError, match="mtf must be > 0, got 0"):
        check_real("mtf", 0, positive=True, maximum=1.0)


def test_check_int_range_and_types():
    assert check_int("n", np.int64(3), 1) == 3
    assert type(check_int("n", np.int64(3), 1)) is int
    assert check_int("bits", 32, 1, maximum=32) == 32
    with pytest.raises(ValueError, match=r"bits must be an int in \[1, 32\], got 33; e.g. 12"):
        check_int("bits", 33, 1, maximum=32, hint="e.g. 12")
    with pytest.raises(ValueError, match=r"n must be an int >= 1, got 0"):
        check_int("n", 0, 1)
    # wrong types: a TypeError (check_real's convention) that is also a ValueError (as before)
    for bad in (2.0, True, "2", None, math.nan):
        with pytest.raises(TypeError, match="n must be an int >= 1") as info:
            check_int("n", bad, 1)
        assert isinstance(info.value, ValueError) and isinstance(info.value, ArgumentTypeError)
    with pytest.raises(ValueError) as info:  # a range error is not a TypeError
        check_int("n", -1, 0)
    assert not isinstance(info.value, TypeError)


def test_check_number_types():
    check_number("lr", 1e-3)
    check_number("w", 0, positive=False)
    check_number("w", None, allow_none=True)
    for bad in (True, "1", None):
        with pytest.raises(ArgumentTypeError, match="lr must be a finite number > 0"):
            check_number("lr", bad)
    for bad in (math.nan, math.inf, 0.0, -1):
        with pytest.raises(ValueError, match="lr must be a finite number > 0") as info:
            check_number("lr", bad)
        assert not isinstance(info.value, TypeError)


def test_check_tolerance_hint():
    with pytest.raises(TypeError, match="dt must be a float, got str; pass a positive float"):
        check_tolerance("dt", "0.1", hint="pass a positive float")
    with pytest.raises(ValueError, match="dt must be finite, got nan; pass a positive float"):
        check_tolerance("dt", math.nan, hint="pass a positive float")


def test_long_values_are_cut_in_messages():
    with pytest.raises(TypeError, match=r"f must be a real number, got ndarray "
                                        r"array\(\[\[1\., 1\..*\.\.\.; give a number$"):
        check_real("f", np.ones((9, 9)), hint="give a number")
    with pytest.raises(TypeError, match=r"n must be an int >= 1, got \[0, 1, .*\.\.\.$"):
        check_int("n", list(range(100)), 1)
