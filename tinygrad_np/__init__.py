"""tinygrad_np: reverse-mode autodiff over NumPy.

Write a model as a plain forward function; ``tg.grad`` / ``tg.value_and_grad``
give its gradient, recorded on a tape and swept backwards.
"""

from tinygrad_np import nn
from tinygrad_np.ops import (
    add,
    broadcast_to,
    div,
    exp,
    log,
    log_softmax,
    logsumexp,
    matmul,
    max,
    mean,
    min,
    mul,
    neg,
    pow,
    relu,
    reshape,
    sigmoid,
    softmax,
    stop_gradient,
    sub,
    sum,
    tanh,
    transpose,
)
from tinygrad_np.tensor import Tape, Tensor
from tinygrad_np.transforms import grad, hvp, trace, value_and_grad, vjp
from tinygrad_np.tree import tree_flatten, tree_leaves, tree_map, tree_unflatten

__version__ = "0.1.0"

__all__ = [
    "Tape",
    "Tensor",
    "add",
    "broadcast_to",
    "div",
    "exp",
    "grad",
    "hvp",
    "log",
    "log_softmax",
    "logsumexp",
    "matmul",
    "max",
    "mean",
    "min",
    "mul",
    "neg",
    "nn",
    "pow",
    "relu",
    "reshape",
    "sigmoid",
    "softmax",
    "stop_gradient",
    "sub",
    "sum",
    "tanh",
    "trace",
    "transpose",
    "tree_flatten",
    "tree_leaves",
    "tree_map",
    "tree_unflatten",
    "value_and_grad",
    "vjp",
]
