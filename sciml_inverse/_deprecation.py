"""Renamed keyword arguments: the old name keeps working, with a ``DeprecationWarning``.

The naming scheme (``max_iter`` for solvers, ``steps``/``epochs`` for training, see the
contributor notes of the docs) renames public keywords; :func:`renamed_arguments` keeps the
former names as aliases for a while.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = ["renamed_arguments", "deprecated_aliases"]

T = TypeVar("T")


def renamed_arguments(**renames: str) -> Callable[[T], T]:
    """Decorator for a function or a (dataclass) class: ``old=new`` keyword aliases.

    Calling with ``old=value`` passes ``new=value`` and warns (``DeprecationWarning``); passing
    both raises ``TypeError``. On a class, ``__init__`` is wrapped and each old name becomes a
    read-only property returning the new attribute (also with a warning).

    Examples
    --------
    >>> import warnings
    >>> @renamed_arguments(n_iter="max_iter")
    ... def solve(*, max_iter=10):
    ...     return max_iter
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     solve(n_iter=3), w[0].category.__name__
    (3, 'DeprecationWarning')
    """

    def translate(owner: str, kwargs: dict[str, Any]) -> None:
        for old, new in renames.items():
            if old in kwargs:
                if new in kwargs:
                    raise TypeError(f"{owner}: pass {new}= only ({old}= is its deprecated "
                                    f"former name)")
                warnings.warn(f"{owner}: the keyword {old}= is deprecated, use {new}= (same "
                              f"meaning)", DeprecationWarning, stacklevel=3)
                kwargs[new] = kwargs.pop(old)

    def decorate(obj: Any) -> Any:
        if isinstance(obj, type):
            init = obj.__init__

            @functools.wraps(init)
            def __init__(self: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N807
                translate(obj.__name__, kwargs)
                init(self, *args, **kwargs)

            obj.__init__ = __init__  # type: ignore[misc]
            for old, new in renames.items():
                def getter(self: Any, old: str = old, new: str = new) -> Any:
                    warnings.warn(f"{type(self).__name__}.{old} is deprecated, use .{new}",
                                  DeprecationWarning, stacklevel=2)
                    return getattr(self, new)

                setattr(obj, old, property(getter, doc=f"Deprecated alias of ``{new}``."))
            return obj

        @functools.wraps(obj)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            translate(getattr(obj, "__qualname__", repr(obj)), kwargs)
            return obj(*args, **kwargs)

        return wrapper

    return decorate


def deprecated_aliases(module: str, aliases: Mapping[str, tuple[str, Any]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) serving renamed public names with a warning.

    ``aliases`` maps a former name to ``(new_name, object)``; reading ``module.former`` returns
    the object and emits a ``DeprecationWarning`` naming the new name. The former names are
    not in ``__all__`` (``from module import *`` does not warn).

    Examples
    --------
    >>> import warnings
    >>> getattr_ = deprecated_aliases("pkg", {"OldOptions": ("NewOptions", int)})
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     getattr_("OldOptions") is int, w[0].category.__name__
    (True, 'DeprecationWarning')
    """

    def __getattr__(name: str) -> Any:  # noqa: N807
        if name in aliases:
            new, obj = aliases[name]
            warnings.warn(f"{module}.{name} is deprecated, use {module}.{new} (the same class)",
                          DeprecationWarning, stacklevel=2)
            return obj
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
