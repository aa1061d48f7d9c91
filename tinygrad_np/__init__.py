"""tinygrad_np: reverse-mode autodiff over NumPy.

Write a model as a plain forward function; ``tg.grad`` / ``tg.value_and_grad``
give its gradient, recorded on a tape and swept backwards. NumPy functions called on
Tensors (``np.exp``, ``np.dot``, ``np.sum``, ...) run as these ops, so a forward pass
written with NumPy differentiates unchanged (see ``tinygrad_np.numpy_dispatch``).
"""

from tinygrad_np import nn, testing
from tinygrad_np.ops import (
    absolute,
    add,
    broadcast_to,
    clip,
    div,
    dot,
    exp,
    expm1,
    log,
    log1p,
    log_softmax,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mul,
    neg,
    pow,
    relu,
    reshape,
    sigmoid,
    softmax,
    sqrt,
    square,
    stop_gradient,
    sub,
    sum,
    tanh,
    transpose,
    where,
)
from tinygrad_np.tensor import Tape, Tensor
from tinygrad_np.transforms import grad, hvp, trace, value_and_grad, vjp
from tinygrad_np.tree import tree_flatten, tree_leaves, tree_map, tree_unflatten

__version__ = "0.1.0"

__all__ = [
    "Tape",
    "Tensor",
    "absolute",
    "add",
    "broadcast_to",
    "clip",
    "div",
    "dot",
    "exp",
    "expm1",
    "grad",
    "hvp",
    "log",
    "log1p",
    "log_softmax",
    "logsumexp",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "mul",
    "neg",
    "nn",
    "pow",
    "relu",
    "reshape",
    "sigmoid",
    "softmax",
    "sqrt",
    "square",
    "stop_gradient",
    "sub",
    "sum",
    "tanh",
    "testing",
    "trace",
    "transpose",
    "tree_flatten",
    "tree_leaves",
    "tree_map",
    "tree_unflatten",
    "value_and_grad",
    "vjp",
    "where",
]
