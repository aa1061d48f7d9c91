"""Contender 4: JAX, the whole SGD step (gather, forward, grad, update) under ``jax.jit``.

The training set is put on the device once; each step receives only the row indices. The
parameters are donated to the step so XLA may update them in place. float64 needs
``jax_enable_x64``, which is switched on in the (per-configuration) worker process only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.common import Params
from benchmarks.contenders import Contender


class JaxJit(Contender):
    name = "jax"
    label = "JAX (jit step)"
    requires = ("jax", "jaxlib")
    numpy_based = False

    def __init__(self, x: np.ndarray, y: np.ndarray, params: Params, lr: float) -> None:
        super().__init__(x, y, params, lr)
        import jax as jax_module
        import jax.numpy as jnp

        jax: Any = jax_module  # jax's annotations are partial; keep mypy out of it
        if x.dtype == np.float64:
            jax.config.update("jax_enable_x64", True)
        self.jax = jax
        self.x = jax.device_put(x)
        self.y = jax.device_put(y.astype(np.int32))
        self.p = {k: jax.device_put(v) for k, v in params.items()}

        def loss_fn(p: Any, xb: Any, yb: Any) -> Any:
            hidden = jax.nn.relu(xb @ p["W1"] + p["b1"])
            logp = jax.nn.log_softmax(hidden @ p["W2"] + p["b2"], axis=1)
            return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

        def update(p: Any, xb: Any, yb: Any) -> tuple[Any, Any]:
            loss, grads = jax.value_and_grad(loss_fn)(p, xb, yb)
            return jax.tree_util.tree_map(lambda w, g: w - lr * g, p, grads), loss

        def step_rows(p: Any, x_all: Any, y_all: Any, idx: Any) -> tuple[Any, Any]:
            return update(p, x_all[idx], y_all[idx])

        self._step_rows = jax.jit(step_rows, donate_argnums=0)
        self._step_all = jax.jit(update, donate_argnums=0)
        self._loss: Any = None

    def step(self, idx: np.ndarray | None) -> None:
        if idx is None:
            self.p, self._loss = self._step_all(self.p, self.x, self.y)
        else:
            self.p, self._loss = self._step_rows(self.p, self.x, self.y, idx.astype(np.int32))

    def sync(self) -> None:
        self.jax.block_until_ready(self.p)

    def last_loss(self) -> float:
        return float(self._loss)

    def params(self) -> Params:
        return {k: np.asarray(v).copy() for k, v in self.p.items()}

    def describe(self) -> dict[str, str]:
        import jaxlib

        return {"jax": self.jax.__version__, "jaxlib": getattr(jaxlib, "__version__", "?")}


CONTENDER = JaxJit
