"""The contenders: one module each, all training the same MLP with the same math.

Every contender takes the training set and the initial parameters once (converting them to its
own array type outside the timed region), then ``step(idx)`` performs one full SGD step --
forward, loss, backward, update -- on the training rows ``idx`` (``None``: all rows). Gathering
the batch rows is part of the step and is done with the contender's own indexing.

Frameworks are imported lazily, so this registry imports with NumPy alone.
"""

from __future__ import annotations

import importlib
import importlib.util
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from benchmarks.common import Params


class Contender(ABC):
    """One implementation of the training step."""

    name: ClassVar[str]
    label: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ()  # import names that must be available
    trains: ClassVar[bool] = True  # False for the GEMM floor (no real update)
    numpy_based: ClassVar[bool] = True  # its arrays are NumPy arrays (tracemalloc sees them)

    def __init__(self, x: np.ndarray, y: np.ndarray, params: Params, lr: float) -> None:
        self.lr = lr

    @abstractmethod
    def step(self, idx: np.ndarray | None) -> None:
        """One SGD step on rows ``idx`` of the training set (all rows when ``None``)."""

    @abstractmethod
    def last_loss(self) -> float:
        """The loss computed by the most recent step (before its update)."""

    @abstractmethod
    def params(self) -> Params:
        """Current parameters as NumPy arrays."""

    def sync(self) -> None:  # noqa: B027 - deliberately a no-op for eager frameworks
        """Block until all queued work is done (asynchronous frameworks override this)."""

    def describe(self) -> dict[str, str]:
        """Versions and settings worth recording."""
        return {}


_MODULES = {
    "numpy": "benchmarks.contenders.numpy_hand",
    "tinygrad_np": "benchmarks.contenders.tinygrad",
    "tinygrad_np_ops": "benchmarks.contenders.tinygrad:TinygradNpOps",
    "tinygrad_np_jit": "benchmarks.contenders.tinygrad:TinygradNpJit",
    "torch": "benchmarks.contenders.torch_eager",
    "jax": "benchmarks.contenders.jax_jit",
    "autograd": "benchmarks.contenders.hips_autograd",
    "floor": "benchmarks.contenders.gemm_floor",
}
ALL = tuple(_MODULES)


def missing_requirement(name: str) -> str | None:
    """Why contender ``name`` cannot run here, or None when it can."""
    if name not in _MODULES:
        return f"unknown contender {name!r} (known: {', '.join(ALL)})"
    cls = get(name)
    for mod in cls.requires:
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed"
    module = importlib.import_module(_MODULES[name].partition(":")[0])
    check = getattr(module, "unavailable", None)
    return check() if check is not None else None


def get(name: str) -> type[Contender]:
    """The contender class: a module's ``CONTENDER``, or the class named after a colon."""
    module_name, _, class_name = _MODULES[name].partition(":")
    cls: type[Contender] = getattr(importlib.import_module(module_name), class_name or "CONTENDER")
    return cls


def sgd_(params: Params, grads: Params, lr: float) -> None:
    """In-place SGD on NumPy arrays; scales the gradient arrays in place when they allow it."""
    for k, p in params.items():
        g = grads[k]
        if g.flags.writeable and g.dtype == p.dtype and g.shape == p.shape:
            g *= lr
            p -= g
        else:
            p -= lr * g
