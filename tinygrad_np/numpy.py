"""NumPy's namespace, for NumPy code that builds arrays from lists of traced values.

``import tinygrad_np.numpy as np`` (as ``autograd.numpy`` or ``jax.numpy`` are imported)
gives every public name of ``numpy``, submodules included (``np.linalg.norm``,
``np.random.default_rng``, ``np.fft``, ``import tinygrad_np.numpy.linalg``), with one
difference: NumPy never asks the elements of a Python list what they are, so
``np.array([t1, t2])``, ``np.r_[t, 0.0]`` or ``np.mean([t1, t2])`` convert traced Tensors to
ndarrays, which they refuse (a gradient would be dropped). Here, such a list is built with
``tg.array`` first, and NumPy's dispatch takes over from the Tensor it gives.

The rule, exactly:

* NumPy's functions that take part in its dispatch protocols (its ufuncs, with their
  methods ``reduce``, ``accumulate``, ``reduceat``, ``outer`` and ``at``, and every function
  that hands calls to ``__array_function__``) are called as they are. Only when that raises
  ``TypeError`` and an argument is a list or tuple (nested) holding a traced Tensor, the
  lists NumPy treats as one array are built with ``tg.array`` and the call is made again.
  Which lists those are, NumPy's own dispatcher says (asked with stand-ins, nothing runs):
  ``np.mean``'s ``a`` is one array, while ``np.concatenate`` and ``np.stack`` take a
  sequence of arrays, whose items are the arrays (and Tensors among them already dispatch).
  For a ufunc they are its operands (``np.add([t1, t2], 1)``).
* The constructors NumPy runs without dispatch are tinygrad_np's where it has them:
  ``array``, ``asarray`` (and ``asanyarray``, ``ascontiguousarray``, ``asfortranarray``,
  which differ from it only in memory layout and subclasses), ``full``, ``r_`` and ``c_``.
  They try NumPy first and build with ``tg.array`` only what NumPy could not convert.
* Everything else is NumPy's own object: classes (``np.ndarray``, ``np.float64``; so
  ``isinstance(x, np.ndarray)`` means what it means in NumPy), constants, dtypes, and the
  functions outside dispatch (``np.zeros``, ``np.arange``, ``np.random.normal``).

So plain NumPy input gives NumPy's result, exactly (the same values, type and dtype: an
ndarray, never a Tensor), and so does input holding only constant Tensors, which NumPy
converts itself. The price on plain input is one Python call around NumPy's: 0.14-0.3 us
per call (best of 9 interleaved repeats of ``python benchmarks/numpy_namespace.py`` on an
AMD EPYC shared with other work, NumPy 2.4: ``np.sin`` of 16 floats 0.69 -> 0.83 us,
``np.add.reduce`` 1.23 -> 1.43 us, ``np.mean`` 4.38 -> 4.52 us, ``np.array`` of a
3-element list 0.45 -> 0.75 us, ``np.asarray`` of an array 0.12 -> 0.35 us); an attribute
lookup is a plain module attribute after the first.

Edge cases, decided:

* ``np.array(t)`` of a traced Tensor is ``t`` (Tensors are immutable: no copy is needed);
  ``dtype=`` converts as ``tg.astype`` does (to an integer dtype the result is a constant,
  as NumPy's truncation has no gradient), ``ndmin=`` prepends axes, ``order=`` and
  ``subok=`` concern memory layout and subclasses and change nothing, ``copy=False`` raises
  NumPy's ``ValueError`` where NumPy would have to copy (a list, a dtype change).
* Lists may mix numbers, arrays, constant and traced Tensors, nested to any depth; they
  build as ``np.array`` would build them, ragged ones included (NumPy's ``ValueError``).
* A constant Tensor converts as in NumPy (``np.asarray(t)`` is its data, an ndarray).
* A generator is not a sequence to NumPy (``np.array(gen)`` is a 0-d object array): the
  same here; write ``np.array(list(gen))``.
* An object or string array cannot hold traced values: ``np.array([t, None])``,
  ``np.array([t1, t2], dtype=object)`` raise ``TypeError``.
* ``out=`` with traced values is refused as everywhere (Tensors cannot be written into).
* The functions here are wrappers: ``np.mean is numpy.mean`` is false, and a ufunc is a
  function with the ufunc's methods and attributes (``np.add.reduce``, ``np.add.nin``) and
  the ufunc itself as ``np.add.ufunc``, not an ``np.ufunc`` instance. A ufunc method
  given traced values is NumPy's dispatch as ever: ``np.add.reduce([t1, t2])`` builds
  the list, then says to write ``np.sum``.
"""

from typing import Any

import numpy as _numpy

from tinygrad_np._numpy_namespace import (
    array as array,
)
from tinygrad_np._numpy_namespace import (
    asanyarray as asanyarray,
)
from tinygrad_np._numpy_namespace import (
    asarray as asarray,
)
from tinygrad_np._numpy_namespace import (
    ascontiguousarray as ascontiguousarray,
)
from tinygrad_np._numpy_namespace import (
    asfortranarray as asfortranarray,
)
from tinygrad_np._numpy_namespace import (
    c_ as c_,
)
from tinygrad_np._numpy_namespace import (
    full as full,
)
from tinygrad_np._numpy_namespace import (
    r_ as r_,
)
from tinygrad_np._numpy_namespace import register_submodules as _register_submodules
from tinygrad_np._numpy_namespace import resolve as _resolve

__all__ = list(_numpy.__all__)

_register_submodules(__name__)


def __getattr__(name: str) -> Any:
    # Resolved names are cached as this module's attributes, so a later ``np.name`` is a
    # plain attribute lookup. (Nothing in this module may use a builtin NumPy also names,
    # such as all or max: the cache would shadow it.)
    value = _resolve(name, __name__)
    if not name.startswith("_"):
        globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(dir(_numpy)))
